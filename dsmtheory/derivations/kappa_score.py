r"""Parameterization conversion: $\kappa_{score}=1/\sigma^2$
($e^\lambda$ in VE, $1+e^\lambda$ in VP).

$\hat s=-\hat\varepsilon/\sigma$ and $s_c=-\varepsilon/\sigma$, so
$\|s_c-\hat s\|^2=\sigma^{-2}\|\varepsilon-\hat\varepsilon\|^2$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, sigma, to_snr, vp_sigma2

eps, eps_hat = sp.symbols("epsilon epsilon_hat", real=True)


def _checks() -> list[Check]:
    kf = sp.cancel(((-eps / sigma) - (-eps_hat / sigma)) ** 2 / (eps - eps_hat) ** 2)
    return [
        Check("kappa_score = 1/sigma^2", is_identity(kf, 1 / sigma**2)),
        Check(
            "VE (sigma^2 = e^-lam): e^lam",
            is_identity(kf.subs(sigma, sp.exp(-lam / 2)), sp.exp(lam)),
        ),
        Check(
            "VP (sigma^2 = sigmoid(-lam)): 1 + e^lam",
            is_identity(to_snr(1 / vp_sigma2()), to_snr(1 + sp.exp(lam))),
        ),
    ]


def expressions() -> dict:
    """kappa_score for VE and VP."""
    return {"kappa_score_ve": (sp.exp(lam), (lam,)), "kappa_score_vp": (1 + sp.exp(lam), (lam,))}


DERIVATION = Derivation(
    name="kappa_score",
    title="kappa for score-prediction is 1/sigma^2",
    statement=r"$\|s_c-\hat s\|^2=\sigma^{-2}\|\varepsilon-\hat\varepsilon\|^2$: $e^\lambda$ (VE), "
    r"$1+e^\lambda$ (VP).",
    source="FORMULAS.md §1 (per-sample error factors)",
    method="sympy cancel",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
