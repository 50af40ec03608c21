r"""Effective dimension: definitions, the Gaussian closed form, its limits, and when
$c^*\approx1$ (FORMULAS.md §8; issue 14 item 4). Derived here.

With $\tilde\sigma=\sigma/\alpha$, $R=\alpha^2\mathrm{mmse}/\sigma^4=D/\sigma^2-\mathrm{tr}I_t$
(FORMULAS.md §4, P12) and $c^*=D/(\sigma^2R)$ (§6 (c)):

$$d_{\rm eff}=\frac{\alpha^2\mathrm{mmse}}{\sigma^2}=\frac{\mathrm{mmse}}{\tilde\sigma^2}
=\sigma^2R=D-\sigma^2\mathrm{tr}I_t,\qquad c^*=\frac D{d_{\rm eff}},$$

and $d_{\rm eff}=\mathbb E\|\varepsilon-\mathbb E[\varepsilon\mid x_t]\|^2$, the per-sample
ε-space loss of the Bayes denoiser. For Gaussian data with covariance eigenvalues
$e_i\ge0$ the posterior covariance is $\Sigma-\alpha^2\Sigma S^{-1}\Sigma$ with eigenvalues
$e_i\tilde\sigma^2/(e_i+\tilde\sigma^2)$ (also for $e_i=0$), so
$d_{\rm eff}=\sum_ie_i/(e_i+\tilde\sigma^2)$: $\to\mathrm{rank}$ as $\tilde\sigma\to0$ and
$\to0$ as $\tilde\sigma\to\infty$.

**When $c^*\approx1$** (full rank, $x_i=\tilde\sigma^2/e_i$, $J_0=\frac1D\sum_i1/e_i
=\mathrm{tr}I_0/D$): $c^*-1=\sum_i\frac{x_i}{1+x_i}\big/\sum_i\frac1{1+x_i}$, hence

$$\frac{\tilde\sigma^2J_0}{1+\tilde\sigma^2/e_{\min}}\ \le\ c^*-1\ \le\ \tilde\sigma^2J_0
\ \le\ \tilde\sigma^2/e_{\min}$$

(upper: Jensen for the convex $1/(1+x)$; lower: $x/(1+x)\ge x/(1+x_{\max})$). So P9's
first-order term $\tilde\sigma^2J_0$ is an upper bound on $c^*-1$, within the factor
$1+\tilde\sigma^2/e_{\min}$ of it, and the series of $d_{\rm eff}$ in $\tilde\sigma^2$ has
radius of convergence exactly $e_{\min}$. With $n$ eigenvalues $\le e_f$ (e.g. a fit's
regularisation floor), $c^*\ge D/(D-n\tilde\sigma^2/(e_f+\tilde\sigma^2))$, i.e.
$c^*\ge D/(D-n/2)$ already at $\tilde\sigma^2=e_f$: $c^*\approx1$ requires
$\tilde\sigma\ll\sqrt{e_f}$, and above it the data behave as if rank-deficient.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

alpha, sigma, mmse, st = sp.symbols("alpha sigma mmse sigma_tilde", positive=True)
D = sp.Symbol("D", positive=True, integer=True)
e, e1, e2, e3, emin, ef, x, m = sp.symbols("e e1 e2 e3 e_min e_f x m", positive=True)
n = sp.Symbol("n", positive=True, integer=True)


def deff_gaussian(eigs, s_tilde=st) -> sp.Expr:
    r"""$d_{\rm eff}=\sum_ie_i/(e_i+\tilde\sigma^2)$ for Gaussian data."""
    return sum(ei / (ei + s_tilde**2) for ei in eigs)


def c_star_gaussian(eigs, s_tilde=st) -> sp.Expr:
    r"""$c^*=D/d_{\rm eff}$ for Gaussian data, D = ``len(eigs)``."""
    return len(eigs) / deff_gaussian(eigs, s_tilde)


def upper_bound_holds(bound: sp.Expr) -> bool:
    r"""Whether ``bound`` $\ge c^*-1$ follows from the tangent-line argument, i.e. equals the
    Jensen bound $\tilde\sigma^2J_0$ (3 eigenvalues). Used by the tests to show that a wrong
    bound is rejected by the same check."""
    eigs = (e1, e2, e3)
    j0 = sum(1 / ei for ei in eigs) / 3
    return is_identity(bound, st**2 * j0)


def _checks() -> list[Check]:
    out = []
    st_def = sigma / alpha
    R = alpha**2 * mmse / sigma**4
    d_eff = alpha**2 * mmse / sigma**2
    tr_i = D / sigma**2 - R
    out.append(
        Check(
            "d_eff = alpha^2 mmse/sigma^2 = mmse/st^2 = sigma^2 R = D - sigma^2 tr I_t",
            is_identity(d_eff, mmse / st_def**2)
            and is_identity(d_eff, sigma**2 * R)
            and is_identity(d_eff, D - sigma**2 * tr_i),
        )
    )
    out.append(Check("c* = D/(sigma^2 R) = D/d_eff", is_identity(D / (sigma**2 * R), D / d_eff)))
    # Bayes denoiser in eps-space: eps - eps_hat = -(alpha/sigma)(x0 - x0_hat), per coordinate
    xt, x0, x0h = sp.symbols("x_t x_0 x0_hat", real=True)
    eps = (xt - alpha * x0) / sigma
    eps_h = (xt - alpha * x0h) / sigma
    out.append(
        Check(
            "|eps - eps_hat|^2 = (alpha/sigma)^2 |x0 - x0_hat|^2, "
            "so E = d_eff at the Bayes denoiser",
            is_identity((eps - eps_h) ** 2, alpha**2 / sigma**2 * (x0 - x0h) ** 2),
        )
    )
    # Gaussian posterior variance per eigen-direction, covariance form (valid at e = 0)
    v_cov = e - alpha**2 * e**2 / (alpha**2 * e + sigma**2)
    out.append(
        Check(
            "Var(x0|x_t) per direction = e st^2/(e + st^2) = 1/(1/e + alpha^2/sigma^2), "
            "and 0 at e = 0",
            is_identity(v_cov, e * st_def**2 / (e + st_def**2))
            and is_identity(v_cov, 1 / (1 / e + alpha**2 / sigma**2))
            and v_cov.subs(e, 0) == 0,
        )
    )
    # full 2x2 covariance: tr of Sigma - Sigma S^-1 Sigma (VE-equivalent) via trace/det
    a, c = sp.symbols("a c", positive=True)
    b = sp.Symbol("b", real=True)
    sig_m = sp.Matrix([[a, b], [b, c]])
    s_m = sig_m + st**2 * sp.eye(2)
    post = sig_m - sig_m * s_m.inv() * sig_m
    trace, det = a + c, a * c - b**2
    out.append(
        Check(
            "2x2 covariance: tr Cov(x0|x~)/st^2 = sum_i e_i/(e_i + st^2) (trace/det form)",
            is_identity(
                post.trace() / st**2,
                (2 * det + st**2 * trace) / (det + st**2 * trace + st**4),
            ),
        )
    )
    # limits
    out.append(
        Check(
            "e/(e + st^2) -> 1 (st -> 0) and -> 0 (st -> oo), rank-2 Gaussian in 3-D: d_eff -> 2",
            sp.limit(e / (e + st**2), st, 0) == 1
            and sp.limit(e / (e + st**2), st, sp.oo) == 0
            and sp.limit(deff_gaussian((e1, e2, 0)), st, 0) == 2
            and sp.limit(deff_gaussian((e1, e2, 0)), st, sp.oo) == 0,
        )
    )
    # c* - 1 as a ratio of sums (3 eigenvalues, x_i = st^2/e_i)
    xs = [st**2 / ei for ei in (e1, e2, e3)]
    ratio = sum(xi / (1 + xi) for xi in xs) / sum(1 / (1 + xi) for xi in xs)
    out.append(
        Check(
            "c* - 1 = sum x_i/(1+x_i) / sum 1/(1+x_i)",
            is_identity(c_star_gaussian((e1, e2, e3)) - 1, ratio),
        )
    )
    # upper bound: tangent line of the convex 1/(1+x) at the mean m of the x_i
    tangent = 1 / (1 + m) - (x - m) / (1 + m) ** 2
    out.append(
        Check(
            "1/(1+x) - tangent at m = (x-m)^2/((1+x)(1+m)^2) >= 0, so c* - 1 <= st^2 J0",
            is_identity(1 / (1 + x) - tangent, (x - m) ** 2 / ((1 + x) * (1 + m) ** 2))
            and upper_bound_holds(sum(xs) / 3),
        )
    )
    # lower bound: x/(1+x) >= x/(1+X) for x <= X = st^2/e_min
    X = sp.Symbol("X", positive=True)
    out.append(
        Check(
            "x/(1+x) - x/(1+X) = x(X-x)/((1+x)(1+X)) >= 0 for x <= X, so "
            "c* - 1 >= st^2 J0/(1 + st^2/e_min)",
            is_identity(x / (1 + x) - x / (1 + X), x * (X - x) / ((1 + x) * (1 + X))),
        )
    )
    # series radius: e/(e+x) = sum (-x/e)^k, nearest singularity x = -e
    ser = sp.series(e / (e + x), x, 0, 7).removeO()
    z = sp.Symbol("z")  # complex: where the pole is
    out.append(
        Check(
            "series e/(e+x) = sum_k (-x/e)^k (radius e): d_eff's series in st^2 has radius e_min",
            is_zero(sp.expand(ser - sum((-x / e) ** k for k in range(7))))
            and sp.solve(sp.denom(sp.together(e / (e + z))), z) == [-e],
        )
    )
    # floor corollary: n eigenvalues <= e_f each remove at least st^2/(e_f + st^2)
    out.append(
        Check(
            "n eigenvalues <= e_f: c* >= D/(D - n st^2/(e_f + st^2)), = D/(D - n/2) at st^2 = e_f",
            is_identity(1 - ef / (ef + st**2), st**2 / (ef + st**2))
            and sp.diff(x / (1 + x), x).equals(1 / (1 + x) ** 2)
            and is_identity(
                (D / (D - n * st**2 / (ef + st**2))).subs(st, sp.sqrt(ef)), D / (D - n / 2)
            ),
        )
    )
    return out


def expressions() -> dict:
    """d_eff and c* of a 2-D Gaussian with covariance eigenvalues e1, e2 (VE-equivalent
    sigma_tilde), for ``optimal.homoskedastic_multiplier``."""
    return {
        "d_eff_gaussian_2d": (deff_gaussian((e1, e2)), (st, e1, e2)),
        "c_star_gaussian_2d": (c_star_gaussian((e1, e2)), (st, e1, e2)),
    }


DERIVATION = Derivation(
    name="deff_gaussian",
    title="Effective dimension d_eff = D/c_star: definitions, Gaussian closed form, when "
    "c_star ~ 1",
    statement=r"$d_{\rm eff}=\alpha^2\mathrm{mmse}/\sigma^2=\sigma^2R=D-\sigma^2\mathrm{tr}I_t"
    r"=\mathbb E\|\varepsilon-\mathbb E[\varepsilon|x_t]\|^2$, $c^*=D/d_{\rm eff}$; Gaussian "
    r"data: $d_{\rm eff}=\sum_ie_i/(e_i+\tilde\sigma^2)\to\mathrm{rank}$ ($\tilde\sigma\to0$), "
    r"$\to0$ ($\tilde\sigma\to\infty$); full rank: $\tilde\sigma^2J_0/(1+\tilde\sigma^2/e_{\min})"
    r"\le c^*-1\le\tilde\sigma^2J_0$, series radius $e_{\min}$; $n$ eigenvalues $\le e_f$: "
    r"$c^*\ge D/(D-n\tilde\sigma^2/(e_f+\tilde\sigma^2))$.",
    source="Derived (FORMULAS.md §4, §6 (c), §8; issue 14 item 4)",
    method="sympy cancel of the definitions and of 2x2 Gaussian conditioning; limits; "
    "tangent-line and monotonicity identities for the bounds; series",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
