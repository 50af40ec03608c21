r"""P9: the σ² heuristic is the first-order term of the variance-optimal weight (Zhang et al.).

$\Lambda^*(\sigma)=\sigma^2/(1-\sigma^2J(\sigma))$ with $J=\mathrm{tr}\,I_t/D$; if
$J(\sigma)=J_0+J_2\sigma^2+O(\sigma^4)$ then $\Lambda^*/\sigma^2-1=\sigma^2J_0+O(\sigma^4)$ and
$\Lambda^*=\sigma^2+\sigma^4J_0+O(\sigma^6)$. For Gaussian data $N(m,s^2)$ under VE,
$J=1/(s^2+\sigma^2)$ and $c^*=\Lambda^*/\sigma^2=1+\sigma^2/s^2$ exactly.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import sigma

J0, J2, J4 = sp.symbols("J0 J2 J4", real=True)
s_data = sp.Symbol("s", positive=True)


def optimal_weight(J: sp.Expr) -> sp.Expr:
    r"""$\Lambda^*=\sigma^2/(1-\sigma^2J)$ (FORMULAS §3 item 15, §6 (c))."""
    return sigma**2 / (1 - sigma**2 * J)


def _checks() -> list[Check]:
    J = J0 + J2 * sigma**2 + J4 * sigma**4
    lam_star = optimal_weight(J)
    ser = sp.series(lam_star, sigma, 0, 7).removeO()
    out = [
        Check(
            "Lambda* = sigma^2 + J0 sigma^4 + (J0^2 + J2) sigma^6 + ...",
            is_identity(ser, sigma**2 + J0 * sigma**4 + (J0**2 + J2) * sigma**6),
        ),
        Check(
            "Lambda*/sigma^2 - 1 ~ sigma^2 J0",
            is_identity(sp.limit((lam_star / sigma**2 - 1) / sigma**2, sigma, 0), J0),
        ),
    ]
    c_gauss = sp.cancel(optimal_weight(1 / (s_data**2 + sigma**2)) / sigma**2)
    out.append(
        Check(
            "Gaussian VE: c* = 1 + sigma^2/s^2 exactly",
            is_identity(c_gauss, 1 + sigma**2 / s_data**2),
        )
    )
    return out


def expressions() -> dict:
    """c* for N(m, s^2 I) data under VE, c* = 1/(1 - sigma^2 J) from a Fisher information
    J = tr I_t / D, and its first-order form, for ``optimal.homoskedastic_multiplier``."""
    J = sp.Symbol("J", positive=True)
    return {
        "c_star_gaussian_ve": (1 + sigma**2 / s_data**2, (sigma, s_data)),
        "c_star_from_fisher": (optimal_weight(J) / sigma**2, (sigma, J)),
        "c_star_first_order": (1 + sigma**2 * J0, (sigma, J0)),
    }


DERIVATION = Derivation(
    name="p09_sigma2_first_order",
    title="P9 sigma^2 is the first-order term of the optimal weight",
    statement=r"$\Lambda^*=\sigma^2/(1-\sigma^2J(\sigma))=\sigma^2+\sigma^4J_0+O(\sigma^6)$, so "
    r"$\Lambda^*/\sigma^2-1\sim\sigma^2J_0$; Gaussian VE data: $c^*=1+\sigma^2/s^2$.",
    source="Zhang et al. 2025 [R]; FORMULAS.md §3 item 15, §5 P9, §6 (c)",
    method="sympy series in sigma with J(sigma) = J0 + J2 sigma^2 + J4 sigma^4; limit; cancel",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
