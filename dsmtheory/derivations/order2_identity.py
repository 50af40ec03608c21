r"""The order-2 DSM target: an exact identity for its irreducible variance, for any smooth
data density and any $\alpha$ (FORMULAS.md §3 item 15, §8; issue 13 item 7). Derived here.

For $q(x_t|x_0)=N(x_t;\alpha x_0,\sigma^2I_D)$ and $\varepsilon=(x_t-\alpha x_0)/\sigma$:

$$h_1=\frac{\nabla q}q=-\frac\varepsilon\sigma,\qquad
h_2=\frac{\nabla^2q}q=\frac{\varepsilon\varepsilon^\top-I}{\sigma^2},\qquad
\mathbb E\|h_2\|_F^2=\frac{1}{\sigma^4}\sum_{i,j}\mathbb E(\varepsilon_i\varepsilon_j-\delta_{ij})^2
=\frac{D(D+1)}{\sigma^4}$$

(Isserlis: $\mathbb E[\varepsilon_i^2\varepsilon_j^2]=1+2\delta_{ij}$), whatever $p_0$ is,
because $\varepsilon$ is independent of $x_0$. Differentiating
$p_t=\int q\,p_0$ under the integral, $\mathbb E[h_2\mid x_t]=\nabla^2p_t/p_t
=H_t+s_ts_t^\top$ ($H_t=\nabla^2\log p_t$, $s_t=\nabla\log p_t$). By the law of total
variance,

$$R_2(t)=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(h_2\mid x_t)
=\frac{D(D+1)}{\sigma^4}-\mathbb E_{p_t}\big\|H_t+s_ts_t^\top\big\|_F^2
\ \le\ \frac{D(D+1)}{\sigma^4}.$$

So the leading term is exact, not a numerical finding, and $\sigma^4R_2/(D(D+1))\le1$
exactly: a value above 1 can only be Monte Carlo noise. For $N(m,s^2I)$ data
$\mathbb E\|H+ss^\top\|_F^2=D(D+1)/S^2$, recovering :mod:`t_order2_variance`.
"""

from __future__ import annotations

import itertools

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero
from .t_order2_variance import r2_gaussian

sigma, alpha = sp.symbols("sigma alpha", positive=True)
D = sp.Symbol("D", positive=True, integer=True)
i, j = sp.symbols("i j", integer=True, positive=True)


def isserlis(a, b, c, d) -> sp.Expr:
    r"""$\mathbb E[\varepsilon_a\varepsilon_b\varepsilon_c\varepsilon_d]
    =\delta_{ab}\delta_{cd}+\delta_{ac}\delta_{bd}+\delta_{ad}\delta_{bc}$."""
    kd = sp.KroneckerDelta
    return kd(a, b) * kd(c, d) + kd(a, c) * kd(b, d) + kd(a, d) * kd(b, c)


def second_moment_h2(dim=D) -> sp.Expr:
    r"""$\sigma^4\,\mathbb E\|h_2\|_F^2=\sum_{i,j=1}^D\mathbb E(\varepsilon_i\varepsilon_j
    -\delta_{ij})^2$ for symbolic ``dim``, from :func:`isserlis`."""
    kd = sp.KroneckerDelta
    term = isserlis(i, j, i, j) - 2 * kd(i, j) * kd(i, j) + kd(i, j) ** 2
    inner = sp.Sum(sp.expand(term), (i, 1, dim)).doit()
    inner = sp.refine(inner, sp.Q.le(j, dim))  # j runs over 1..dim in the outer sum
    return sp.factor(sp.Sum(inner, (j, 1, dim)).doit())


def _mgf_second_moment(dim: int) -> sp.Expr:
    """sum_ij E(eps_i eps_j - delta_ij)^2 from the moment generating function of N(0, I)."""
    t = sp.symbols(f"t0:{dim}", real=True)
    mgf = sp.exp(sum(ti**2 for ti in t) / 2)
    at0 = {ti: 0 for ti in t}

    def moment(*idx):
        e = mgf
        for k in idx:
            e = sp.diff(e, t[k])
        return e.subs(at0)

    total = 0
    for a, b in itertools.product(range(dim), repeat=2):
        dl = 1 if a == b else 0
        total += moment(a, b, a, b) - 2 * dl * moment(a, b) + dl
    return sp.simplify(total)


def _checks() -> list[Check]:
    out = []
    # 1. h1, h2 by differentiation of q in D = 3
    x = sp.Matrix(sp.symbols("x0:3", real=True))
    x0 = sp.Matrix(sp.symbols("y0:3", real=True))
    eps = (x - alpha * x0) / sigma
    q = sp.exp(-(eps.T * eps)[0, 0] / 2)  # the normalising constant cancels in grad q / q
    grad = sp.Matrix([sp.diff(q, xi) for xi in x]) / q
    hess = sp.Matrix(3, 3, lambda a, b: sp.diff(q, x[a], x[b])) / q
    out.append(
        Check(
            "grad q/q = -eps/sigma and hess q/q = (eps eps^T - I)/sigma^2 (D = 3)",
            all(is_zero(sp.simplify(v)) for v in grad + eps / sigma)
            and all(is_zero(sp.simplify(v)) for v in hess - (eps * eps.T - sp.eye(3)) / sigma**2),
        )
    )
    # 2. E|h2|^2 = D(D+1)/sigma^4 for symbolic D (Isserlis), and by the MGF for D = 1, 2, 3
    general = second_moment_h2()
    out.append(
        Check(
            "sigma^4 E|h2|_F^2 = sum_ij (1 + delta_ij) = D(D+1) for any D (Isserlis)",
            is_identity(general, D * (D + 1)),
            f"sympy: {general}",
        )
    )
    out.append(
        Check(
            "the same from the MGF of N(0, I) for D = 1, 2, 3",
            all(_mgf_second_moment(d) == d * (d + 1) for d in (1, 2, 3)),
        )
    )
    # 3. hess p / p = H + s s^T for a generic positive p (2-D)
    u, v = sp.symbols("u v", real=True)
    p = sp.Function("p", positive=True)(u, v)
    lp = sp.log(p)
    hl = sp.hessian(lp, (u, v))
    sv = sp.Matrix([sp.diff(lp, u), sp.diff(lp, v)])
    out.append(
        Check(
            "hess p/p = hess log p + grad log p grad log p^T (any smooth p > 0)",
            all(is_zero(sp.simplify(w)) for w in hl + sv * sv.T - sp.hessian(p, (u, v)) / p),
        )
    )
    # 4. E[h2 | x_t] = p_t''/p_t: the posterior mean of q''/q (1-D, atoms at a, b; by
    #    linearity of differentiation this is every p0 that is a mixture of such)
    xt, a, b = sp.symbols("x_t a b", real=True)
    w = sp.Symbol("w", positive=True)

    def qq(c):
        return sp.exp(-((xt - alpha * c) ** 2) / (2 * sigma**2))

    pt = w * qq(a) + (1 - w) * qq(b)

    def h2(c):
        return sp.diff(qq(c), xt, 2) / qq(c)

    post = (w * qq(a) * h2(a) + (1 - w) * qq(b) * h2(b)) / pt
    out.append(
        Check(
            "E[h2 | x_t] = p_t''/p_t (posterior mean of q''/q, differentiation under the sum)",
            is_zero(sp.simplify(post - sp.diff(pt, xt, 2) / pt)),
        )
    )
    # 5. law of total variance: tr Var(h2|x_t) = E[|h2|^2|x_t] - |E[h2|x_t]|^2, averaged:
    #    R2 = E|h2|^2 - E|hess p_t/p_t|^2; exact leading term, R2 <= D(D+1)/sigma^4
    e_h2sq, e_mean_sq = sp.symbols("E_h2sq E_meansq", positive=True)
    r2 = e_h2sq - e_mean_sq
    out.append(
        Check(
            "R2 = D(D+1)/sigma^4 - E|H + s s^T|_F^2 <= D(D+1)/sigma^4",
            is_identity(r2.subs(e_h2sq, general / sigma**4), D * (D + 1) / sigma**4 - e_mean_sq),
        )
    )
    # 6. Gaussian N(m, s^2 I): H + s s^T = (w w^T - I)/S, w ~ N(0, I): E|.|^2 = D(D+1)/S^2
    s = sp.Symbol("s", positive=True)
    S = alpha**2 * s**2 + sigma**2
    wv = sp.Matrix(sp.symbols("w0:2", real=True))
    score = -sp.sqrt(S) * wv / S  # x_t - alpha m = sqrt(S) w
    out.append(
        Check(
            "N(m, s^2 I): H + s s^T = (w w^T - I)/S with w ~ N(0, I), and "
            "D(D+1)/sigma^4 - D(D+1)/S^2 = t_order2_variance.r2_gaussian",
            all(is_zero(c) for c in -sp.eye(2) / S + score * score.T - (wv * wv.T - sp.eye(2)) / S)
            and is_identity(D * (D + 1) / sigma**4 - general / S**2, r2_gaussian()),
        )
    )
    return out


def expressions() -> dict:
    """The exact leading term D(D+1)/sigma^4 of R2, for the cross-check against
    ``targets.irreducible_target_variance`` (order 2) plus E|H + s s^T|_F^2."""
    return {"r2_leading": (D * (D + 1) / sigma**4, (D, sigma))}


DERIVATION = Derivation(
    name="order2_identity",
    title="Order-2 target: R_2 = D(D+1)/sigma^4 - E Frob(H + s s^T)^2 exactly, for any p_0",
    statement=r"$h_2=\nabla^2q/q=(\varepsilon\varepsilon^\top-I)/\sigma^2$, "
    r"$\mathbb E\|h_2\|_F^2=D(D+1)/\sigma^4$, "
    r"$\mathbb E[h_2|x_t]=\nabla^2p_t/p_t=H_t+s_ts_t^\top$, "
    r"so $R_2=D(D+1)/\sigma^4-\mathbb E_{p_t}\|H_t+s_ts_t^\top\|_F^2\le D(D+1)/\sigma^4$ for any "
    r"smooth $p_0$ and any $\alpha$.",
    source="Derived (FORMULAS.md §3 item 15, §8; issue 13 item 7); Zhang et al. 2025 [R]",
    method="sympy derivatives of q (D = 3); Isserlis sums with KroneckerDelta for symbolic D "
    "and the MGF for D = 1, 2, 3; derivatives of a generic p; differentiation under the "
    "sum for a two-atom p_0",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
