r"""When is $c^*\approx1$? For full-rank Gaussian data, $c^*(\sigma)-1=O(\tilde\sigma^2/e_{\min})$,
with the expansion and two-sided bounds (issue 14 item 4; FORMULAS.md §8). Derived here.

Gaussian data with covariance eigenvalues $e_1,\dots,e_D>0$, smallest $e_{\min}$,
$\tilde\sigma=\sigma/\alpha$: $d_{\rm eff}=\sum_ie_i/(e_i+\tilde\sigma^2)$ and $c^*=D/d_{\rm eff}$
(derivation ``deff_gaussian``). Write $x_i=\tilde\sigma^2/e_i$, $u=\tilde\sigma^2/e_{\min}=
\max_ix_i$, $J_0=\frac1D\sum_i1/e_i$, $J_0^{(2)}=\frac1D\sum_i1/e_i^2$. Then

$$c^*-1=\frac{\sum_ix_i/(1+x_i)}{\sum_i1/(1+x_i)}.$$

**Expansion.** With power sums $p_k=\sum_ix_i^k$, $d_{\rm eff}=\sum_i(1+x_i)^{-1}=D-p_1+p_2
-\dots$, so

$$c^*=1+\frac{p_1}D+\Big(\frac{p_1^2}{D^2}-\frac{p_2}D\Big)+O(x^3)
=1+\tilde\sigma^2J_0-\tilde\sigma^4\big(J_0^{(2)}-J_0^2\big)+O(\tilde\sigma^6/e_{\min}^3),$$

the second-order coefficient minus the variance of $1/e_i$ over the spectrum (so $\le0$), and
the series converges for $\tilde\sigma^2<e_{\min}$ only (the pole of $e_{\min}/(e_{\min}+
\tilde\sigma^2)$ at $\tilde\sigma^2=-e_{\min}$).

**Bounds.** Each $x_i\le u$, $1/(1+x_i)\le1$ and $x_i/(1+x_i)\ge0$ give

$$\frac1D\,\frac u{1+u}\le c^*-1\le\tilde\sigma^2J_0\le u=\frac{\tilde\sigma^2}{e_{\min}}$$

(upper: Jensen for the convex $1/(1+x)$, as in ``deff_gaussian``, then $1/e_i\le1/e_{\min}$;
lower: keep only the term of $e_{\min}$ in the numerator, bound the denominator by $D$; as
the other eigenvalues grow without bound $c^*-1\to w/(D-w)$, $w=u/(1+u)$, so the lower bound
is tight to the factor $D/(D-1)$).
The upper bound is attained by the isotropic spectrum ($e_i=e_{\min}$ for all $i$:
$c^*=1+\tilde\sigma^2/e_{\min}$ exactly), so over all spectra with smallest eigenvalue
$e_{\min}$,

$$\sup\,(c^*-1)=\tilde\sigma^2/e_{\min}:$$

$c^*\le1+\delta$ holds for every such spectrum iff $\tilde\sigma^2\le\delta\,e_{\min}$, i.e.
$c^*\approx1$ is guaranteed only for $\tilde\sigma\ll\sqrt{e_{\min}}$. With $n$ eigenvalues
at $e_{\min}$ the lower bound improves to $\frac nD\,\frac u{1+u}$: at $\tilde\sigma=
\sqrt{e_{\min}}$, $c^*-1\ge n/(2D)$ (a fit's regularisation floor, $n$ = 15-34 of 64 on the
digits, gives $c^*\gtrsim1.1$-$1.4$ there).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

st, t, u, x, m = sp.symbols("sigma_tilde t u x m", positive=True)
e1, e2, e3, emin = sp.symbols("e1 e2 e3 e_min", positive=True)
D = sp.Symbol("D", positive=True, integer=True)
n = sp.Symbol("n", positive=True, integer=True)
p1, p2, p3 = sp.symbols("p1 p2 p3", real=True)


def c_star(eigs, s_tilde=st) -> sp.Expr:
    r"""$c^*=D/\sum_ie_i/(e_i+\tilde\sigma^2)$ for Gaussian data, D = ``len(eigs)``."""
    return len(eigs) / sum(ei / (ei + s_tilde**2) for ei in eigs)


def _checks() -> list[Check]:
    out = []
    eigs = (e1, e2, e3)
    xs = [st**2 / ei for ei in eigs]
    ratio = sum(xi / (1 + xi) for xi in xs) / sum(1 / (1 + xi) for xi in xs)
    out.append(
        Check(
            "c* - 1 = sum x_i/(1+x_i) / sum 1/(1+x_i), x_i = st^2/e_i (3 eigenvalues)",
            is_identity(c_star(eigs) - 1, ratio),
        )
    )
    # expansion for general D via power sums: d_eff = D - p1 t + p2 t^2 - p3 t^3 + O(t^4)
    deff = D - p1 * t + p2 * t**2 - p3 * t**3
    ser = sp.series(D / deff, t, 0, 3).removeO()
    out.append(
        Check(
            "general D: c* = 1 + p1/D + (p1^2/D^2 - p2/D) + O(x^3) (power sums p_k of x_i)",
            is_zero(sp.expand(ser - (1 + p1 / D * t + (p1**2 / D**2 - p2 / D) * t**2))),
        )
    )
    # the same on an explicit spectrum, in st: 1 + st^2 J0 - st^4 (J0^(2) - J0^2) + O(st^6)
    j0 = sum(1 / ei for ei in eigs) / 3
    j02 = sum(1 / ei**2 for ei in eigs) / 3
    ser3 = sp.series(c_star(eigs), st, 0, 6).removeO()
    var = sum((1 / ei - j0) ** 2 for ei in eigs) / 3
    out.append(
        Check(
            "3 eigenvalues: c* = 1 + st^2 J0 - st^4 (J0^(2) - J0^2) + O(st^6), and "
            "J0^(2) - J0^2 = variance of 1/e_i >= 0",
            is_zero(sp.simplify(ser3 - (1 + st**2 * j0 - st**4 * (j02 - j0**2))))
            and is_identity(j02 - j0**2, var),
        )
    )
    # series radius e_min: the pole of e/(e + st^2) in st^2
    z = sp.Symbol("z")
    out.append(
        Check(
            "the series in st^2 converges only for st^2 < e_min (pole of e_min/(e_min + z) "
            "at z = -e_min)",
            sp.solve(sp.denom(sp.together(emin / (emin + z))), z) == [-emin],
        )
    )
    # upper bound: tangent line of the convex 1/(1+x) at the mean m (Jensen), then 1/e_i <= 1/e_min
    tangent = 1 / (1 + m) - (x - m) / (1 + m) ** 2
    out.append(
        Check(
            "1/(1+x) - tangent at m = (x-m)^2/((1+x)(1+m)^2) >= 0 (so c* - 1 <= st^2 J0), and "
            "1/e_min - 1/e_i = (e_i - e_min)/(e_i e_min) >= 0 (so st^2 J0 <= st^2/e_min)",
            is_identity(1 / (1 + x) - tangent, (x - m) ** 2 / ((1 + x) * (1 + m) ** 2))
            and is_identity(1 / emin - 1 / e1, (e1 - emin) / (e1 * emin)),
        )
    )
    # tightness: the isotropic spectrum attains the upper bound exactly
    out.append(
        Check(
            "isotropic spectrum e_i = e_min: c* - 1 = st^2/e_min exactly (the sup of c* - 1)",
            is_identity(c_star((emin, emin, emin)) - 1, st**2 / emin),
        )
    )
    # lower bound: numerator >= u/(1+u) (the e_min term; x/(1+x) increasing, others >= 0),
    # denominator <= D (1 - 1/(1+x) = x/(1+x) >= 0)
    out.append(
        Check(
            "1 - 1/(1+x) = x/(1+x) >= 0 and d/dx x/(1+x) = 1/(1+x)^2 > 0: "
            "c* - 1 >= (1/D) u/(1+u), u = st^2/e_min; (n/D) u/(1+u) with n eigenvalues at e_min",
            is_identity(1 - 1 / (1 + x), x / (1 + x))
            and is_identity(sp.diff(x / (1 + x), x), 1 / (1 + x) ** 2)
            and is_identity((n / D * u / (1 + u)).subs(u, 1), n / (2 * D)),
        )
    )
    # the lower bound on an explicit instance: e1 = e_min, e2, e3 -> oo (two directions
    # resolved at once): c* - 1 -> w/(D - w), w = u/(1+u), within D/(D-1) of w/D
    inst = c_star((emin, e2, e3)) - 1
    lim = sp.limit(sp.limit(inst, e2, sp.oo), e3, sp.oo)
    w = (st**2 / emin) / (1 + st**2 / emin)
    out.append(
        Check(
            "other eigenvalues -> oo (D = 3): c* - 1 -> w/(D - w), w = u/(1+u), so the lower "
            "bound w/D is tight to the factor D/(D - 1)",
            is_identity(lim, w / (3 - w)),
        )
    )
    return out


def expressions() -> dict:
    """c* of a 3-D Gaussian with eigenvalues e1, e2, e3 (VE-equivalent sigma_tilde) and its
    bounds, for a numeric cross-check against ``optimal.homoskedastic_multiplier``."""
    return {
        "c_star_gaussian_3d": (c_star((e1, e2, e3)), (st, e1, e2, e3)),
        "c_star_upper_bound": (1 + st**2 / emin, (st, emin)),
    }


DERIVATION = Derivation(
    name="c_star_near_one",
    title="c_star - 1 = O(sigma_tilde^2/e_min) for full-rank Gaussian data: expansion and "
    "two-sided bounds; c_star ~ 1 only for sigma_tilde << sqrt(e_min)",
    statement=r"Gaussian data, eigenvalues $e_i>0$, $u=\tilde\sigma^2/e_{\min}$: "
    r"$c^*=1+\tilde\sigma^2J_0-\tilde\sigma^4(J_0^{(2)}-J_0^2)+O(\tilde\sigma^6/e_{\min}^3)$ "
    r"(series radius $e_{\min}$); $\frac1D\frac u{1+u}\le c^*-1\le\tilde\sigma^2J_0\le u$, the "
    r"upper bound attained by the isotropic spectrum, the lower one to the factor $D/(D-1)$ as "
    r"the other eigenvalues $\to\infty$: $c^*\le1+\delta$ for every spectrum with this "
    r"$e_{\min}$ iff $\tilde\sigma^2\le\delta e_{\min}$.",
    source="Derived (FORMULAS.md §8; issue 14 item 4; builds on deff_gaussian)",
    method="sympy series of D/d_eff in power sums and on a 3-eigenvalue spectrum; tangent-line "
    "and monotonicity identities for the bounds; exact isotropic case and limit for tightness",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
