r"""Kingma & Gao Table 1 / eq. 36: v-prediction with the cosine schedule implies
$w=e^{-\lambda/2}/\pi$.

$\omega_\varepsilon=\kappa_v=1+e^{-\lambda}$ (VP) and $p=\mathrm{sech}(\lambda/2)/(2\pi)$, so
$w=(1+e^{-\lambda})\,\mathrm{sech}(\lambda/2)/(2\pi)=e^{-\lambda/2}/\pi$. KG's eq. 36 writes the
constant as $\pi$; the correct one is $1/\pi$ (harmless, a constant).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, sech, to_snr


def v_cosine_weight() -> sp.Expr:
    """w(λ) = (1 + e^{-λ}) sech(λ/2)/(2π)."""
    return (1 + sp.exp(-lam)) * sech(lam / 2) / (2 * sp.pi)


def constant_holds(const: sp.Expr) -> bool:
    r"""Whether $w\equiv\mathrm{const}\cdot e^{-\lambda/2}$ (symbolic)."""
    return is_identity(to_snr(v_cosine_weight()), to_snr(const * sp.exp(-lam / 2)))


def _checks() -> list[Check]:
    return [
        Check("w = (1+e^-lam) sech(lam/2)/(2 pi) = e^(-lam/2)/pi", constant_holds(1 / sp.pi)),
        Check("KG eq. 36's constant pi is wrong", not constant_holds(sp.pi)),
        Check("w is monotone decreasing", bool(sp.diff(sp.exp(-lam / 2) / sp.pi, lam).is_negative)),
    ]


def expressions() -> dict:
    """Implied total weight of ``weightings.get('v')`` under the cosine density."""
    return {"v_cosine_total": (v_cosine_weight(), (lam,)), "v_eps": (1 + sp.exp(-lam), (lam,))}


DERIVATION = Derivation(
    name="implied_v_cosine",
    title="Table 1 / eq. 36: v-prediction + cosine implies w = e^(-lam/2)/pi",
    statement=r"$(1+e^{-\lambda})\,\mathrm{sech}(\lambda/2)/(2\pi)=e^{-\lambda/2}/\pi$ "
    r"(KG eq. 36 gives the constant as $\pi$; it is $1/\pi$).",
    source="Kingma & Gao 2023 App. A.4 eqs. 34-36; FORMULAS.md §3 item 6, §5 P8",
    method="cancel in SNR (sqrt(SNR) = e^{lam/2})",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
