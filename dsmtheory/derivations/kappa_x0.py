r"""Parameterization conversion: $\kappa_{x_0}=e^{-\lambda}$.

With $\hat x=(x_t-\sigma\hat\varepsilon)/\alpha$ and $x_0=(x_t-\sigma\varepsilon)/\alpha$,
$x_0-\hat x=-(\sigma/\alpha)(\varepsilon-\hat\varepsilon)$, so
$\|x_0-\hat x\|^2=(\sigma^2/\alpha^2)\|\varepsilon-\hat\varepsilon\|^2=e^{-\lambda}\|\cdot\|^2$
for any $(\alpha,\sigma)$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import alpha, lam, sigma

xt, eps, eps_hat = sp.symbols("x_t epsilon epsilon_hat", real=True)


def error_factor() -> sp.Expr:
    """(x0 - x_hat)^2 / (eps - eps_hat)^2 from the prediction conversions."""
    x0 = (xt - sigma * eps) / alpha
    x_hat = (xt - sigma * eps_hat) / alpha
    return sp.cancel((x0 - x_hat) ** 2 / (eps - eps_hat) ** 2)


def _checks() -> list[Check]:
    kf = error_factor()
    lam_of = sp.log(alpha**2 / sigma**2)
    return [
        Check("kappa_x0 = sigma^2/alpha^2", is_identity(kf, sigma**2 / alpha**2)),
        Check("= e^-lam for lam = log(alpha^2/sigma^2)", is_identity(sp.exp(-lam_of), kf)),
    ]


def expressions() -> dict:
    """kappa_x0(lam) (process-independent)."""
    return {"kappa_x0": (sp.exp(-lam), (lam,))}


DERIVATION = Derivation(
    name="kappa_x0",
    title="kappa for x0-prediction is e^-lam",
    statement=r"$\|x_0-\hat x\|^2=e^{-\lambda}\|\varepsilon-\hat\varepsilon\|^2$ for any "
    r"$(\alpha,\sigma)$.",
    source="FORMULAS.md §1 (per-sample error factors)",
    method="sympy cancel of the converted errors",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
