r"""Parameterization conversion: EDM's $F$, $\kappa_F=1+e^{-\lambda}/\sigma_d^2$.

$F=(x_0-c_{skip}\tilde x)/c_{out}$ with $\tilde x=x_t/\alpha=x_0+\tilde\sigma\varepsilon$, so
$F-\hat F=(x_0-\hat x)/c_{out}$ and $\kappa_F=\kappa_{x_0}/c_{out}^2=e^{-\lambda}
(\tilde\sigma^2+\sigma_d^2)/(\tilde\sigma\sigma_d)^2=1+e^{-\lambda}/\sigma_d^2$ (the VP v factor at
$\sigma_d=1$).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, sigma_data

st = sp.exp(-lam / 2)
xt_tilde, eps, eps_hat = sp.symbols("x_tilde epsilon epsilon_hat", real=True)


def _checks() -> list[Check]:
    c_skip = sigma_data**2 / (st**2 + sigma_data**2)
    c_out = st * sigma_data / sp.sqrt(st**2 + sigma_data**2)
    x0 = xt_tilde - st * eps
    x_hat = xt_tilde - st * eps_hat
    F = (x0 - c_skip * xt_tilde) / c_out
    F_hat = (x_hat - c_skip * xt_tilde) / c_out
    kf = sp.simplify(sp.cancel((F - F_hat) ** 2 / (eps - eps_hat) ** 2))
    target = 1 + sp.exp(-lam) / sigma_data**2
    return [
        Check("kappa_F = 1 + e^-lam/sigma_d^2", is_identity(kf, target)),
        Check(
            "sigma_d = 1: equals the VP v factor 1 + e^-lam",
            is_identity(target.subs(sigma_data, 1), 1 + sp.exp(-lam)),
        ),
    ]


def expressions() -> dict:
    """kappa_F(lam, sigma_data)."""
    return {"kappa_edm": (1 + sp.exp(-lam) / sigma_data**2, (lam, sigma_data))}


DERIVATION = Derivation(
    name="kappa_edm",
    title="kappa for EDM's F is 1 + e^-lam/sigma_d^2",
    statement=r"$\|F-\hat F\|^2=(1+e^{-\lambda}/\sigma_d^2)\|\varepsilon-\hat\varepsilon\|^2$ with "
    r"EDM's $c_{skip}, c_{out}$.",
    source="Karras et al. 2022; FORMULAS.md §1 (per-sample error factors)",
    method="sympy cancel/simplify of the converted errors",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
