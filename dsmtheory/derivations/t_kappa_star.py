r"""The variance-minimising TSM/DSM mix $\kappa^*$ (derived here; De Bortoli et al. 2024,
FORMULAS.md §3 item 17).

With $a=\alpha^{-1}\nabla\log p_0(x_0)$, $u=h_1=-\varepsilon/\sigma$ and $s^*$ their common
conditional mean, $\mathbb E\|a\|^2=\mathrm{tr}I_0/\alpha^2$, $\mathbb E\|u\|^2=D/\sigma^2$,
$\mathbb E[a^\top u]=0$ ($\varepsilon\perp x_0$) and $\mathbb E\|s^*\|^2=\mathrm{tr}I_t$, so

$$A=\frac{\mathrm{tr}I_0}{\alpha^2}-\mathrm{tr}I_t,\quad B=\frac D{\sigma^2}-\mathrm{tr}I_t,\quad
C=-\mathrm{tr}I_t,$$

$$V(\kappa)=\kappa^2A+(1-\kappa)^2B+2\kappa(1-\kappa)C
=\kappa^2\frac{\mathrm{tr}I_0}{\alpha^2}+(1-\kappa)^2\frac D{\sigma^2}-\mathrm{tr}I_t,$$

$$\kappa^*=\frac{D/\sigma^2}{\mathrm{tr}I_0/\alpha^2+D/\sigma^2}=\mathrm{sigmoid}(\lambda-\log J_0),
\quad J_0=\mathrm{tr}I_0/D,$$

for any $(\alpha,\sigma)$ (VE, VP or other). Gaussian $N(m,s^2I)$ data: $J_0=s^{-2}$, so
$\kappa^*=\mathrm{sigmoid}(\lambda+\log s^2)$ and $V(\kappa^*)=0$. DSM and TSM variances cross
at $\lambda=\log J_0$, where $\kappa^*=1/2$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero
from ._common import sigmoid

alpha, sigma, s, i0, it, dd = sp.symbols("alpha sigma s I0 It D", positive=True)
kappa = sp.Symbol("kappa", real=True)
lam = sp.Symbol("lam", real=True)
j0 = sp.Symbol("J0", positive=True)


def mix_variance() -> sp.Expr:
    r"""$V(\kappa)=\kappa^2\mathrm{tr}I_0/\alpha^2+(1-\kappa)^2D/\sigma^2-\mathrm{tr}I_t$."""
    return kappa**2 * i0 / alpha**2 + (1 - kappa) ** 2 * dd / sigma**2 - it


def kappa_star_expr() -> sp.Expr:
    r"""$\kappa^*(\lambda)=\mathrm{sigmoid}(\lambda-\log J_0)$."""
    return sigmoid(lam - sp.log(j0))


def _checks() -> list[Check]:
    out = []
    a_ = i0 / alpha**2 - it
    b_ = dd / sigma**2 - it
    c_ = -it
    v = kappa**2 * a_ + (1 - kappa) ** 2 * b_ + 2 * kappa * (1 - kappa) * c_
    out.append(
        Check(
            "V(kappa) = kappa^2 trI0/alpha^2 + (1-kappa)^2 D/sigma^2 - trI_t",
            is_identity(v, mix_variance()),
        )
    )
    sol = sp.solve(sp.diff(v, kappa), kappa)
    ks = sol[0] if len(sol) == 1 else None
    out.append(
        Check(
            "unique stationary point kappa* = (D/sigma^2)/(trI0/alpha^2 + D/sigma^2)",
            ks is not None and is_identity(ks, (dd / sigma**2) / (i0 / alpha**2 + dd / sigma**2)),
        )
    )
    out.append(
        Check(
            "d2V/dkappa2 = 2(A + B - 2C) = 2(trI0/alpha^2 + D/sigma^2) > 0",
            is_identity(sp.diff(v, kappa, 2), 2 * (i0 / alpha**2 + dd / sigma**2)),
        )
    )
    # sigmoid form with lambda = log(alpha^2/sigma^2), J0 = trI0/D, any alpha
    ks_sig = kappa_star_expr().subs({lam: sp.log(alpha**2 / sigma**2), j0: i0 / dd})
    out.append(
        Check(
            "kappa* = sigmoid(lambda - log J0) for any (alpha, sigma)",
            ks is not None and is_identity(sp.expand_log(ks_sig, force=True), ks),
        )
    )
    # VP and VE parametrisations give the same kappa*(lambda)
    vp = ks.subs({alpha: sp.sqrt(sigmoid(lam)), sigma: sp.sqrt(sigmoid(-lam))})
    ve = ks.subs({alpha: 1, sigma: sp.exp(-lam / 2)})
    target = kappa_star_expr().subs(j0, i0 / dd)
    out.append(
        Check(
            "VP (alpha^2 = sigmoid(lam)) and VE (alpha = 1) give the same kappa*(lam)",
            is_identity(vp, target) and is_identity(ve, target),
        )
    )
    # Gaussian data
    gauss = ks.subs(i0, dd / s**2)
    out.append(
        Check(
            "Gaussian N(m, s^2 I): kappa* = sigmoid(lambda + log s^2)",
            is_identity(gauss, sigmoid(sp.log(alpha**2 / sigma**2) + sp.log(s**2))),
        )
    )
    big_s = alpha**2 * s**2 + sigma**2
    vmin = v.subs(kappa, ks).subs({i0: dd / s**2, it: dd / big_s})
    out.append(
        Check("Gaussian data: V(kappa*) = 0 (the mixed target is deterministic)", is_zero(vmin))
    )
    out.append(
        Check(
            "V(kappa*) = D trI0/(D alpha^2 + sigma^2 trI0) - trI_t",
            is_identity(v.subs(kappa, ks), dd * i0 / (dd * alpha**2 + sigma**2 * i0) - it),
        )
    )
    # crossing: A = B <=> alpha^2/sigma^2 = J0, where kappa* = 1/2
    cross = sp.solve(sp.Eq(a_, b_), alpha)
    ok = len(cross) == 1 and is_identity(cross[0] ** 2 / sigma**2, i0 / dd)
    out.append(
        Check(
            "DSM and TSM variances cross at lambda = log J0, kappa* = 1/2 there",
            ok and is_identity(kappa_star_expr().subs(lam, sp.log(j0)), sp.Rational(1, 2)),
        )
    )
    return out


def expressions() -> dict:
    """Sympy forms for ``targets.kappa_star`` and ``targets.mix_variance``."""
    return {
        "kappa_star": (kappa_star_expr(), (lam, j0)),
        "mix_variance": (mix_variance(), (kappa, alpha, sigma, i0, it, dd)),
    }


DERIVATION = Derivation(
    name="t_kappa_star",
    title="Variance-optimal TSM/DSM mix kappa* = sigmoid(lambda - log J0)",
    statement=r"$V(\kappa)=\kappa^2\mathrm{tr}I_0/\alpha^2+(1-\kappa)^2D/\sigma^2-\mathrm{tr}I_t$ "
    r"is minimised at $\kappa^*=\mathrm{sigmoid}(\lambda-\log J_0)$, $J_0=\mathrm{tr}I_0/D$; "
    r"Gaussian data: $\kappa^*=\mathrm{sigmoid}(\lambda+\log s^2)$ with zero variance.",
    source="De Bortoli et al. 2024 (TSM) [derived here]; FORMULAS.md §3 item 17",
    method="cancel of the quadratic; solve of the stationarity condition; VP/VE substitution",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
