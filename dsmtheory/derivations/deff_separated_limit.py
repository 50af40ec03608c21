r"""The low-noise limit of the effective dimension of a mixture with separated
(non-overlapping) components: $d_{\rm eff}\to\bar d=\sum_k\pi_k\,\mathrm{rank}\,\Sigma_k$
(FORMULAS.md §8; issue 14 item 4). Derived here.

**Decomposition (any mixture, any noise).** By the law of total variance over the
component label, $\mathrm{Cov}(x_0\mid x_t)=\sum_kr_kV_k+\sum_kr_k(m_k-\bar m)(m_k-\bar m)^\top$,
where the Gaussian component posterior covariance $V_k$ does not depend on $x_t$ and
$\mathbb E[r_k(x_t)]=\pi_k$. Hence, with $d_k=\sum_ie_{ki}/(e_{ki}+\tilde\sigma^2)$
(:mod:`deff_gaussian`),

$$d_{\rm eff}=\sum_k\pi_kd_k+\frac{B}{\tilde\sigma^2},\qquad
B=\mathbb E\sum_kr_k\|m_k-\bar m\|^2=\sum_{j<l}\mathbb E\big[r_jr_l\|m_j-m_l\|^2\big]\ge0.$$

**Pairwise Bhattacharyya bound.** $r_jr_l\,p_t=\pi_jp_j\pi_lp_l/p_t\le
\pi_jp_j\pi_lp_l/(\pi_jp_j+\pi_lp_l)\le\tfrac12\sqrt{\pi_j\pi_l\,p_jp_l}$ (AM–GM), so

$$0\le B\le\tfrac12\sum_{j<l}\sqrt{\pi_j\pi_l}\int\sqrt{p_jp_l}\,\|m_j-m_l\|^2\,dx,$$

with $p_k=N(\mu_k,S_k)$ the noised components. When the affine supports of two components
are disjoint, the integral decays like $e^{-\delta^2/(8\tilde\sigma^2)}$ ($\delta$ their
distance), so $B/\tilde\sigma^2\to0$ and $d_{\rm eff}\to\sum_k\pi_k\mathrm{rank}_k$: the
posterior concentrates on one component. Closed in sympy for a line and a point off it, two
parallel lines, and two atoms. Overlapping supports (crossing lines, a point on a line) are
the numeric derivation :mod:`deff_overlapping_limit`.
"""

from __future__ import annotations

import functools

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

st, e, e1, e2, h, mu = sp.symbols("sigma_tilde e e1 e2 h mu", positive=True)
pi1 = sp.Symbol("pi1", positive=True)
x = sp.Symbol("x", real=True)


def normal(xx, mean, var):
    """$N(x;\\mu,v)$."""
    return sp.exp(-((xx - mean) ** 2) / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def sqrt_product_gaussian(m1, v1, m2, v2) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    r"""$\sqrt{N(x;m_1,v_1)N(x;m_2,v_2)}=\mathrm{BC}\cdot N(x;\bar m,\bar v)$: returns
    $(\mathrm{BC},\bar m,\bar v)$ with $\bar v=2v_1v_2/(v_1+v_2)$,
    $\bar m=(m_1v_2+m_2v_1)/(v_1+v_2)$ and the Bhattacharyya coefficient
    $\mathrm{BC}=\sqrt{2\sqrt{v_1v_2}/(v_1+v_2)}\,e^{-(m_1-m_2)^2/(4(v_1+v_2))}$."""
    vb = 2 * v1 * v2 / (v1 + v2)
    mb = (m1 * v2 + m2 * v1) / (v1 + v2)
    bc = sp.sqrt(2 * sp.sqrt(v1 * v2) / (v1 + v2)) * sp.exp(-((m1 - m2) ** 2) / (4 * (v1 + v2)))
    return bc, mb, vb


def sqrt_product_holds(m1, v1, m2, v2) -> bool:
    """The identity of :func:`sqrt_product_gaussian`, checked on the log scale (a quadratic
    in x must cancel)."""
    bc, mb, vb = sqrt_product_gaussian(m1, v1, m2, v2)
    lhs = (sp.log(normal(x, m1, v1)) + sp.log(normal(x, m2, v2))) / 2
    rhs = sp.log(bc) + sp.log(normal(x, mb, vb))
    return is_zero(sp.expand(sp.expand_log(lhs - rhs, force=True)))


def total_variance_checks() -> list[Check]:
    """The law of total variance over the component label (K = 3, D = 2) and its pairwise
    form; E[r_k] = pi_k; V_k free of x_t. Shared with :mod:`within_component_bound` (the
    symbolic work is done once per process: it has no inputs)."""
    return list(_total_variance_checks())


@functools.cache
def _total_variance_checks() -> tuple[Check, ...]:
    r1, r2 = sp.symbols("r1 r2", positive=True)
    r = [r1, r2, 1 - r1 - r2]
    ms = [sp.Matrix(sp.symbols(f"m{k}_0:2", real=True)) for k in range(3)]
    vs = [sp.Matrix(2, 2, sp.symbols(f"V{k}_0:4", real=True)) for k in range(3)]
    mbar = sum((rk * mk for rk, mk in zip(r, ms, strict=True)), sp.zeros(2, 1))
    second = sum(
        (rk * (vk + mk * mk.T) for rk, vk, mk in zip(r, vs, ms, strict=True)), sp.zeros(2, 2)
    )
    cov = second - mbar * mbar.T
    within = sum((rk * vk for rk, vk in zip(r, vs, strict=True)), sp.zeros(2, 2))
    between = sum(
        (rk * (mk - mbar) * (mk - mbar).T for rk, mk in zip(r, ms, strict=True)), sp.zeros(2, 2)
    )
    pair = sum(
        r[j] * r[k] * ((ms[j] - ms[k]).T * (ms[j] - ms[k]))[0, 0]
        for j in range(3)
        for k in range(j + 1, 3)
    )
    out = [
        Check(
            "Cov(x0|x_t) = sum r_k V_k + sum r_k (m_k - mbar)(m_k - mbar)^T (K=3, D=2)",
            all(is_zero(sp.expand(v)) for v in (cov - within - between)),
        ),
        Check(
            "sum_k r_k |m_k - mbar|^2 = sum_{j<l} r_j r_l |m_j - m_l|^2",
            is_zero(sp.expand(between.trace() - pair)),
        ),
    ]
    # E[r_k(x_t)] = int p_t pi_k p_k / p_t = pi_k int p_k = pi_k (1-D, any noised component)
    a = sp.Symbol("a", real=True)
    v = sp.Symbol("v", positive=True)
    out.append(
        Check(
            "E[r_k] = pi_k int p_k dx = pi_k",
            is_identity(sp.integrate(pi1 * normal(x, a, v), (x, -sp.oo, sp.oo)), pi1),
        )
    )
    # V_k: posterior variance of one component from its log joint has no x_t in it
    xt, x0, m0 = sp.symbols("x_t x_0 m_0", real=True)
    alpha, sigma = sp.symbols("alpha sigma", positive=True)
    logjoint = -((x0 - m0) ** 2) / (2 * e) - (xt - alpha * x0) ** 2 / (2 * sigma**2)
    prec = -sp.diff(logjoint, x0, 2)
    out.append(
        Check(
            "component posterior variance 1/(1/e + alpha^2/sigma^2) does not depend on x_t",
            xt not in prec.free_symbols and is_identity(prec, 1 / e + alpha**2 / sigma**2),
        )
    )
    return tuple(out)


def amgm_checks() -> list[Check]:
    """r_j r_l p_t <= sqrt(pi_j p_j pi_l p_l)/2: the AM-GM step."""
    a, b, c = sp.symbols("a b c", positive=True)
    return [
        Check(
            "ab/(a+b+c) <= ab/(a+b) and sqrt(ab)/2 - ab/(a+b) = sqrt(ab)(sqrt a - sqrt b)^2/"
            "(2(a+b)) >= 0",
            is_identity(a * b / (a + b) - a * b / (a + b + c), a * b * c / ((a + b) * (a + b + c)))
            and is_identity(
                sp.sqrt(a * b) / 2 - a * b / (a + b),
                sp.sqrt(a * b) * (sp.sqrt(a) - sp.sqrt(b)) ** 2 / (2 * (a + b)),
            ),
        )
    ]


def _gauss_moment(poly: sp.Expr, mean: sp.Expr, var: sp.Expr) -> sp.Expr:
    """E[poly(x)] for x ~ N(mean, var), poly of degree <= 2 in x."""
    p = sp.Poly(sp.expand(poly), x)
    c2, c1, c0 = (p.coeff_monomial(x**k) for k in (2, 1, 0))
    return c2 * (var + mean**2) + c1 * mean + c0


def bhattacharyya_term(xpart, ypart) -> sp.Expr:
    r"""$\int\sqrt{p_1p_2}\,\|m_1-m_2\|^2$ for 2-D components that factorise over the axes:
    ``xpart = (m1, v1, m2, v2, poly_x)``, ``ypart`` likewise, with
    $\|m_1-m_2\|^2=\mathrm{poly}_x(x)+\mathrm{poly}_y(y)$."""
    bx, mx, vx = sqrt_product_gaussian(*xpart[:4])
    by, my, vy = sqrt_product_gaussian(*ypart[:4])
    return bx * by * (_gauss_moment(xpart[4], mx, vx) + _gauss_moment(ypart[4], my, vy))


def examples() -> dict[str, tuple[sp.Expr, sp.Expr, sp.Expr]]:
    r"""Separated two-component examples: name -> (within part $\sum\pi_kd_k$, Bhattacharyya
    bound on $B$, the limit $\bar d$). Weights $\pi_1$, $1-\pi_1$."""
    s2 = st**2
    w = sp.sqrt(pi1 * (1 - pi1)) / 2
    # a line {y = 0} (variance e along x) and a point (0, h)
    line_point = bhattacharyya_term(
        (0, e + s2, 0, s2, (e * x / (e + s2)) ** 2), (0, s2, h, s2, h**2 + 0 * x)
    )
    # two parallel lines y = +-h with variances e1, e2 along x
    k = e1 / (e1 + s2) - e2 / (e2 + s2)
    lines = bhattacharyya_term(
        (0, e1 + s2, 0, e2 + s2, (k * x) ** 2), (h, s2, -h, s2, 4 * h**2 + 0 * x)
    )
    # two atoms +-mu in 1-D: m_k = +-mu
    bc, _, _ = sqrt_product_gaussian(-mu, s2, mu, s2)
    atoms = bc * 4 * mu**2
    return {
        "line and a point off it": (pi1 * e / (e + s2), w * line_point, pi1),
        "two parallel lines": (pi1 * e1 / (e1 + s2) + (1 - pi1) * e2 / (e2 + s2), w * lines, 1),
        "two atoms (1-D)": (sp.Integer(0), w * atoms, sp.Integer(0)),
    }


def _checks() -> list[Check]:
    out = total_variance_checks() + amgm_checks()
    s2 = st**2
    ok = all(
        sqrt_product_holds(*args)
        for args in ((0, e + s2, 0, s2), (0, s2, h, s2), (h, s2, -h, s2), (-mu, s2, mu, s2))
    )
    out.append(Check("sqrt(N(m1,v1) N(m2,v2)) = BC N(mbar, vbar) (used below)", ok))
    for name, (within, bound, limit) in examples().items():
        lo = sp.limit(within, st, 0)
        gap = sp.limit(bound / s2, st, 0)  # both limits exist, so that of the sum is lo + gap
        out.append(
            Check(
                f"{name}: sum pi_k d_k <= d_eff <= sum pi_k d_k + bound/st^2, both -> {limit}",
                is_identity(lo, limit) and gap == 0,
                "bound on B decays as "
                + " ".join(
                    sorted(
                        str(a) for a in bound.atoms(sp.exp) if a.args[0].could_extract_minus_sign()
                    )
                ),
            )
        )
    return out


DERIVATION = Derivation(
    name="deff_separated_limit",
    title="d_eff -> sum_k pi_k rank_k as sigma -> 0 for separated components",
    statement=r"$d_{\rm eff}=\sum_k\pi_k\sum_i\frac{e_{ki}}{e_{ki}+\tilde\sigma^2}"
    r"+B/\tilde\sigma^2$ "
    r"with $0\le B\le\tfrac12\sum_{j<l}\sqrt{\pi_j\pi_l}\int\sqrt{p_jp_l}\|m_j-m_l\|^2$; for "
    r"components with disjoint affine supports $B/\tilde\sigma^2\to0$, so "
    r"$d_{\rm eff}\to\sum_k\pi_k\mathrm{rank}\Sigma_k$ and $c^*(0^+)=D/\bar d$ (a line and a "
    r"point off it, two parallel lines, two atoms).",
    source="Derived (FORMULAS.md §4, §8; issue 14 item 4)",
    method="sympy: law of total variance (K = 3, D = 2), E r_k = pi_k, AM-GM, Gaussian "
    "Bhattacharyya integrals in closed form, limits of both sides of the squeeze",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
