r"""Parameterization conversion: $\kappa_v=\alpha^2(1+e^{-\lambda})^2$ ($1+e^{-\lambda}$ in VP).

$v=\alpha\varepsilon-\sigma x_0$, $\hat v=\alpha\hat\varepsilon-\sigma\hat x$, and
$x_0-\hat x=-(\sigma/\alpha)(\varepsilon-\hat\varepsilon)$, so
$v-\hat v=\frac{\alpha^2+\sigma^2}{\alpha}(\varepsilon-\hat\varepsilon)$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import alpha, lam, sigma, to_snr, vp_alpha2

xt, eps, eps_hat = sp.symbols("x_t epsilon epsilon_hat", real=True)


def _checks() -> list[Check]:
    x0 = (xt - sigma * eps) / alpha
    x_hat = (xt - sigma * eps_hat) / alpha
    v = alpha * eps - sigma * x0
    v_hat = alpha * eps_hat - sigma * x_hat
    kf = sp.cancel((v - v_hat) ** 2 / (eps - eps_hat) ** 2)
    general = alpha**2 * (1 + sigma**2 / alpha**2) ** 2  # e^-lam = sigma^2/alpha^2
    vp = 1 / vp_alpha2()  # alpha^2 + sigma^2 = 1 => kappa = 1/alpha^2
    return [
        Check(
            "kappa_v = (alpha^2+sigma^2)^2/alpha^2 = alpha^2 (1+e^-lam)^2", is_identity(kf, general)
        ),
        Check("VP: 1/alpha^2 = 1 + e^-lam", is_identity(to_snr(vp), to_snr(1 + sp.exp(-lam)))),
    ]


def expressions() -> dict:
    """kappa_v for VP (and VE: alpha = 1 gives (1+e^-lam)^2)."""
    return {
        "kappa_v_vp": (1 + sp.exp(-lam), (lam,)),
        "kappa_v_ve": ((1 + sp.exp(-lam)) ** 2, (lam,)),
    }


DERIVATION = Derivation(
    name="kappa_v",
    title="kappa for v-prediction is alpha^2 (1+e^-lam)^2",
    statement=r"$\|v-\hat v\|^2=\alpha^2(1+e^{-\lambda})^2\|\varepsilon-\hat\varepsilon\|^2$; VP: "
    r"$1+e^{-\lambda}$.",
    source="FORMULAS.md §1 (per-sample error factors); Salimans & Ho 2022",
    method="sympy cancel of the converted errors",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
