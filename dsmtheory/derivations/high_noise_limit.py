r"""The high-noise limit of mmse and $c^*$ (FORMULAS.md §8; issue 13 item 7). Derived here.

Let $\Sigma$ be the total covariance of $p_0$ (eigenvalues $e_i$), $T_k=\mathrm{tr}\,\Sigma^k$,
$y=x_0+\tilde\sigma\varepsilon$ (VE-equivalent) and $L(y)=\mu+\Sigma(\Sigma+\tilde\sigma^2I)^{-1}
(y-\mu)$ the linear MMSE estimator, whose error depends on the first two moments only:

$$\mathrm{lmmse}=\sum_i\frac{e_i\tilde\sigma^2}{e_i+\tilde\sigma^2}
=T_1-\frac{T_2}{\tilde\sigma^2}+\frac{T_3}{\tilde\sigma^4}-\dots$$

(for Gaussian data this *is* the mmse). For any $p_0$, the orthogonality of the MMSE error to
every function of $y$ gives the exact Pythagorean identity
$\mathrm{mmse}=\mathrm{lmmse}-\mathbb E\|\mathbb E[x_0|y]-L(y)\|^2$, and the tilted-moment
expansion of the posterior mean in $h=1/\tilde\sigma$ at fixed $z=hy$ (1-D shown; any
distribution with finite moments, e.g. a mixture) is

$$\mathbb E[x_0\mid y]=L(y)+\tfrac12h^2\kappa_3(z^2-1)+O(h^3),$$

so $\mathbb E[x_0|y]-L(y)=O(\tilde\sigma^{-2})$ and
$\mathrm{mmse}=T_1-T_2/\tilde\sigma^2+O(\tilde\sigma^{-4})$. Hence

$$c^*=\frac{D\tilde\sigma^2}{\mathrm{mmse}}=\frac{D\tilde\sigma^2}{T_1}+\frac{DT_2}{T_1^2}
+O(\tilde\sigma^{-2}),\qquad\frac{DT_2}{T_1^2}\ge1$$

with equality iff $\Sigma=s^2I$, where $c^*=1+\tilde\sigma^2/s^2$ exactly for Gaussian data.
The expansion is formal (term by term in the moments); the mixture case, including the next
coefficient $T_3-\tfrac12\|\kappa_3\|_F^2$ of the mmse, is the numeric derivation
:mod:`high_noise_mixture`.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

u = sp.Symbol("u", positive=True)  # 1/sigma_tilde^2
st, s_data = sp.symbols("sigma_tilde s", positive=True)
e1, e2, e3 = sp.symbols("e1 e2 e3", positive=True)
h, z, xx = sp.symbols("h z x", real=True)
MOM = sp.symbols("m1:6", real=True)


def lmmse(eigs, uu=u) -> sp.Expr:
    r"""$\sum_ie_i/(1+e_iu)$ with $u=\tilde\sigma^{-2}$."""
    return sum(e / (1 + e * uu) for e in eigs)


def c_star_high_noise(eigs) -> sp.Expr:
    r"""The two leading terms $D\tilde\sigma^2/T_1+DT_2/T_1^2$."""
    d = len(eigs)
    t1, t2 = sum(eigs), sum(e**2 for e in eigs)
    return d * st**2 / t1 + d * t2 / t1**2


def pythagoras_holds() -> bool:
    r"""For a finite joint law of $(y,x)$ (2 × 3 atoms, symbolic probabilities and values)
    and any function $d(y)$: $\mathbb E[(d-m)(m-x)]=0$ with $m(y)=\mathbb E[x|y]$, hence
    $\mathbb E(d-x)^2=\mathbb E(m-x)^2+\mathbb E(d-m)^2$."""
    p = sp.Matrix(2, 3, sp.symbols("p0:6", positive=True))
    xs = sp.symbols("x0:3", real=True)
    ds = sp.symbols("d0:2", real=True)
    m = [sum(p[i, j] * xs[j] for j in range(3)) / sum(p[i, j] for j in range(3)) for i in range(2)]
    # the cross term sum_ij p_ij (d_i - m_i)(m_i - x_j) factors as sum_i (d_i - m_i) T_i with
    # T_i = sum_j p_ij (m_i - x_j): each T_i must vanish (the tower property) ...
    tower = all(is_zero(sum(p[i, j] * (m[i] - xs[j]) for j in range(3))) for i in range(2))
    cross = sum(p[i, j] * (ds[i] - m[i]) * (m[i] - xs[j]) for i in range(2) for j in range(3))
    factored = sum(
        (ds[i] - m[i]) * sum(p[i, j] * (m[i] - xs[j]) for j in range(3)) for i in range(2)
    )
    # ... and (d - x)^2 - (m - x)^2 - (d - m)^2 = 2 (d - m)(m - x) pointwise
    d_, m_, x_ = sp.symbols("d m x", real=True)
    pointwise = is_zero(
        sp.expand((d_ - x_) ** 2 - (m_ - x_) ** 2 - (d_ - m_) ** 2 - 2 * (d_ - m_) * (m_ - x_))
    )
    return tower and is_zero(sp.expand(cross - factored)) and pointwise


def _expect_poly(poly: sp.Expr) -> sp.Expr:
    """Replace x^k by the raw moment m_k in a polynomial in x."""
    p = sp.Poly(sp.expand(poly), xx)
    return sum(c * (MOM[k - 1] if k > 0 else 1) for (k,), c in p.terms())


def posterior_mean_gap() -> sp.Expr:
    r"""$\mathbb E[x_0|y]-L(y)-\tfrac12h^2\kappa_3(z^2-1)$ through $O(h^2)$ (should be 0):
    the posterior is $p_0$ tilted by $e^{hzx-h^2x^2/2}$."""
    tilt = sp.exp(h * z * xx - h**2 * xx**2 / 2)
    num = _expect_poly(sp.series(xx * tilt, h, 0, 4).removeO())
    den = _expect_poly(sp.series(tilt, h, 0, 4).removeO())
    post = sp.series(num / den, h, 0, 3).removeO()
    m1, m2, m3 = MOM[:3]
    k2 = m2 - m1**2
    k3 = m3 - 3 * m1 * m2 + 2 * m1**3
    lin = sp.series(m1 + k2 * h**2 * (z / h - m1) / (1 + k2 * h**2), h, 0, 3).removeO()
    return sp.expand(post - lin - h**2 * k3 * (z**2 - 1) / 2)


def _checks() -> list[Check]:
    eigs = (e1, e2, e3)
    t1, t2, t3 = (sum(e**k for e in eigs) for k in (1, 2, 3))
    ser = sp.series(lmmse(eigs), u, 0, 3).removeO()
    out = [
        Check(
            "lmmse = sum e_i st^2/(e_i + st^2) = T1 - T2/st^2 + T3/st^4 + O(st^-6) (D=3)",
            is_zero(sp.expand(ser - (t1 - t2 * u + t3 * u**2)))
            and is_identity(lmmse(eigs, 1 / st**2), sum(e * st**2 / (e + st**2) for e in eigs)),
        )
    ]
    c = 3 / (u * lmmse(eigs))
    cser = sp.series(c, u, 0, 1).removeO()
    lead = c_star_high_noise(eigs).subs(st, 1 / sp.sqrt(u))
    out.append(
        Check(
            "c* = D st^2/T1 + D T2/T1^2 + O(st^-2) (D=3)",
            is_zero(sp.expand(sp.together(cser - lead))),
        )
    )
    out.append(
        Check(
            "isotropic s^2 I: c* = 1 + st^2/s^2 exactly, = the two leading terms",
            is_identity((3 / (u * lmmse((s_data**2,) * 3))).subs(u, st**-2), 1 + st**2 / s_data**2)
            and is_identity(c_star_high_noise((s_data**2,) * 3), 1 + st**2 / s_data**2),
        )
    )
    out.append(
        Check(
            "D T2 - T1^2 = (1/2) sum_ij (e_i - e_j)^2 >= 0: the constant D T2/T1^2 >= 1, "
            "= 1 iff isotropic",
            is_zero(sp.expand(3 * t2 - t1**2 - sum((a - b) ** 2 for a in eigs for b in eigs) / 2)),
        )
    )
    # any 1-D distribution: the linear MMSE estimator and its error
    a, k, mu_ = sp.symbols("a k mu", real=True)
    v = sp.Symbol("kappa2", positive=True)
    # x0 = mu + c with E c = 0, E c^2 = kappa2; y = x0 + st eps
    err = sp.expand((mu_ - a - k * mu_) ** 2 + (1 - k) ** 2 * v + k**2 * st**2)
    sol = sp.solve([sp.diff(err, a), sp.diff(err, k)], [a, k], dict=True)[0]
    out.append(
        Check(
            "any p0: L(y) = mu + kappa2/(kappa2 + st^2)(y - mu), error kappa2 st^2/(kappa2+st^2)",
            is_identity(sol[k], v / (v + st**2))
            and is_identity(sol[a], mu_ * st**2 / (v + st**2))
            and is_identity(err.subs(sol), v * st**2 / (v + st**2)),
        )
    )
    out.append(
        Check(
            "orthogonality: E(x - L)^2 = E(x - E[x|y])^2 + E(E[x|y] - L)^2 for any L(y)",
            pythagoras_holds(),
        )
    )
    out.append(
        Check(
            "any p0 (moments m1..m5): E[x0|y] = L(y) + h^2 kappa3 (z^2-1)/2 + O(h^3), h = 1/st, "
            "z = y/st, so mmse = lmmse + O(st^-4)",
            posterior_mean_gap() == 0,
        )
    )
    return out


def expressions() -> dict:
    """The two-term high-noise c* of a 2-D distribution with covariance eigenvalues e1, e2."""
    return {"c_star_high_noise_2d": (c_star_high_noise((e1, e2)), (st, e1, e2))}


DERIVATION = Derivation(
    name="high_noise_limit",
    title="High-noise limit: c_star = D st^2/tr S + D tr S^2/(tr S)^2 + O(st^-2)",
    statement=r"$\mathrm{mmse}=\mathrm{tr}\Sigma-\mathrm{tr}\Sigma^2/\tilde\sigma^2+"
    r"O(\tilde\sigma^{-4})$ for any $p_0$ with finite moments ($\Sigma$ its covariance), so "
    r"$c^*=D\tilde\sigma^2/\mathrm{tr}\Sigma+D\,\mathrm{tr}\Sigma^2/(\mathrm{tr}\Sigma)^2+"
    r"O(\tilde\sigma^{-2})$, the constant $\ge1$ with equality iff $\Sigma=s^2I$ "
    r"($c^*=1+\tilde\sigma^2/s^2$); $\mathbb E[x_0|y]-L(y)=\tfrac12\kappa_3(z^2-1)/"
    r"\tilde\sigma^2+O(\tilde\sigma^{-3})$.",
    source="Derived (FORMULAS.md §8; issue 13 item 7)",
    method="sympy series of the Gaussian/LMMSE error and of c* in 1/sigma~^2 (D = 3); "
    "LMMSE normal equations; orthogonality on a finite joint law; tilted-moment series of the "
    "posterior mean in 1-D",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
