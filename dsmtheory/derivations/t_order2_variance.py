r"""Order-2 DSM target variance for Gaussian data (derived here; Zhang et al. 2025 item on
arbitrary orders, FORMULAS.md §3 item 15).

For $x_0\sim N(m,s^2I_D)$, $x_t=\alpha x_0+\sigma\varepsilon$, $a=\alpha^2s^2$, $S=a+\sigma^2$,
and $h_2=uu^\top-I/\sigma^2$ with $u=-(x_t-\alpha x_0)/\sigma^2$:

$$u\mid x_t\sim N\Big(-\frac{x_t-\alpha m}{S},\ cI\Big),\quad c=\frac{a}{\sigma^2S},\qquad
\mathrm{tr}\,\mathrm{Var}(h_2\mid x_t)=2(D+1)c\|\mu\|^2+D(D+1)c^2,$$

$$R_2=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(h_2\mid x_t)=\frac{D(D+1)\,a(a+2\sigma^2)}{\sigma^4S^2}
=\frac{D(D+1)}{\sigma^4}\Big(1-\frac{\sigma^4}{S^2}\Big),$$

so the scalar inverse-variance weight $\Lambda_2^*=D^2/R_2=\frac{D}{D+1}\,
\sigma^4/(1-\sigma^4/S^2)=\frac{D}{D+1}(\sigma^4+\sigma^8/a^2+O(\sigma^{10}))$: $\sigma^4$ plays
the role that $\sigma^2$ plays at order 1 ($R_1=Da/(\sigma^2S)$,
$\Lambda_1^*=\sigma^2+\sigma^4/a$ exactly).
"""

from __future__ import annotations

import itertools

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero

alpha, sigma, s = sp.symbols("alpha sigma s", positive=True)
D = sp.Symbol("D", positive=True, integer=True)
x, m, x0 = sp.symbols("x m x0", real=True)

A = alpha**2 * s**2
S = A + sigma**2


def r1_gaussian() -> sp.Expr:
    r"""$R_1=Da/(\sigma^2S)$."""
    return D * A / (sigma**2 * S)


def r2_gaussian() -> sp.Expr:
    r"""$R_2=D(D+1)a(a+2\sigma^2)/(\sigma^4S^2)$."""
    return D * (D + 1) * A * (A + 2 * sigma**2) / (sigma**4 * S**2)


def lambda2_gaussian() -> sp.Expr:
    r"""$\Lambda_2^*=D^2/R_2$."""
    return D**2 / r2_gaussian()


def _gaussian_moment_trace(dim: int) -> tuple[sp.Expr, sp.Expr, tuple]:
    """Σ_ij Var(u_i u_j) for u ~ N(μ, cI_dim) from the moment generating function, and the
    claimed closed form 2(D+1)c‖μ‖² + D(D+1)c²."""
    c = sp.Symbol("c", positive=True)
    mu = sp.symbols(f"mu0:{dim}", real=True)
    t = sp.symbols(f"t0:{dim}", real=True)
    mgf = sp.exp(
        sum(ti * mi for ti, mi in zip(t, mu, strict=True)) + c * sum(ti**2 for ti in t) / 2
    )
    at0 = {ti: 0 for ti in t}

    def moment(*idx):
        e = mgf
        for i in idx:
            e = sp.diff(e, t[i])
        return sp.expand(sp.simplify(e.subs(at0)))

    total = 0
    for i, j in itertools.product(range(dim), repeat=2):
        total += moment(i, j, i, j) - moment(i, j) ** 2
    closed = 2 * (dim + 1) * c * sum(mi**2 for mi in mu) + dim * (dim + 1) * c**2
    return sp.expand(total), closed, (c, *mu)


def _checks() -> list[Check]:
    out = []
    # 1. posterior of x0 | x_t for N(m, s²) data and q = N(αx0, σ²) (per coordinate)
    logpost = -((x0 - m) ** 2) / (2 * s**2) - (x - alpha * x0) ** 2 / (2 * sigma**2)
    prec = -sp.diff(logpost, x0, 2)
    mean = sp.solve(sp.diff(logpost, x0), x0)[0]
    v = 1 / prec
    out.append(Check("Var(x0|x_t) = s^2 sigma^2 / S", is_identity(v, s**2 * sigma**2 / S)))
    mu_u = (alpha * mean - x) / sigma**2
    out.append(
        Check(
            "E[u|x_t] = -(x_t - alpha m)/S (the noised score)",
            is_identity(mu_u, -(x - alpha * m) / S),
        )
    )
    c = alpha**2 * v / sigma**4
    out.append(Check("Var(u|x_t) = c = a/(sigma^2 S)", is_identity(c, A / (sigma**2 * S))))
    # 2. Isserlis trace formula, from the MGF, in 1, 2 and 3 dimensions
    for dim in (1, 2, 3):
        total, closed, _ = _gaussian_moment_trace(dim)
        out.append(
            Check(
                f"sum_ij Var(u_i u_j) = 2(D+1)c|mu|^2 + D(D+1)c^2 (D={dim}, MGF)",
                is_zero(total - closed),
            )
        )
    # 3. average over x_t ~ N(alpha m, S I): E|mu|^2 = D/S
    cc = A / (sigma**2 * S)
    r2 = 2 * (D + 1) * cc * D / S + D * (D + 1) * cc**2
    out.append(
        Check("R_2 = D(D+1) a (a + 2 sigma^2) / (sigma^4 S^2)", is_identity(r2, r2_gaussian()))
    )
    out.append(
        Check(
            "R_2 = D(D+1)/sigma^4 (1 - sigma^4/S^2)",
            is_identity(r2_gaussian(), D * (D + 1) / sigma**4 * (1 - sigma**4 / S**2)),
        )
    )
    r1 = D * cc
    out.append(
        Check(
            "R_1 = D c = D/sigma^2 - tr I_t with I_t = I/S",
            is_identity(r1, D / sigma**2 - D / S) and is_identity(r1, r1_gaussian()),
        )
    )
    # 4. small-sigma expansions: sigma^4 is the order-2 heuristic
    lam2 = sp.simplify(lambda2_gaussian() * (D + 1) / D)
    ser2 = sp.series(lam2, sigma, 0, 11).removeO()
    out.append(
        Check(
            "Lambda_2* (D+1)/D = sigma^4 + sigma^8/a^2 - 2 sigma^10/a^3 + O(sigma^12)",
            is_zero(sp.expand(ser2 - (sigma**4 + sigma**8 / A**2 - 2 * sigma**10 / A**3))),
        )
    )
    lam1 = D / r1_gaussian()
    ser1 = sp.series(lam1, sigma, 0, 5).removeO()
    out.append(
        Check(
            "Lambda_1* = sigma^2 + sigma^4/a exactly",
            is_zero(sp.expand(ser1 - (sigma**2 + sigma**4 / A)))
            and is_identity(lam1, sigma**2 + sigma**4 / A),
        )
    )
    out.append(
        Check(
            "sigma^4 R_2 -> D(D+1) as sigma -> 0",
            is_zero(sp.limit(sigma**4 * r2_gaussian(), sigma, 0) - D * (D + 1)),
        )
    )
    return out


def expressions() -> dict:
    """Sympy forms for cross-checking ``targets.gaussian_target_variance`` and
    ``targets.gaussian_inverse_variance_weight``."""
    syms = (D, s, alpha, sigma)
    return {
        "R1": (r1_gaussian(), syms),
        "R2": (r2_gaussian(), syms),
        "Lambda2": (lambda2_gaussian(), syms),
    }


DERIVATION = Derivation(
    name="t_order2_variance",
    title="Order-2 DSM target variance for Gaussian data; sigma^4 is the order-2 heuristic",
    statement=r"For $N(m,s^2I_D)$ data, $R_2=\frac{D(D+1)}{\sigma^4}(1-\sigma^4/S^2)$ with "
    r"$S=\alpha^2s^2+\sigma^2$, so "
    r"$\Lambda_2^*=D^2/R_2=\frac{D}{D+1}(\sigma^4+\sigma^8/a^2+\dots)$.",
    source="Zhang et al. 2025 (arbitrary-order targets) [R]; FORMULAS.md §3 item 15",
    method="completing the square for the posterior; Gaussian 4th moments from the MGF "
    "(D = 1, 2, 3); cancel/series/limit",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
