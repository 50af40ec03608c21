r"""P8: all of Kingma & Gao's Table 1 implied weightings at once.

sech(λ/2) for ε + cosine, $N(2.4,2.4^2)(e^{-\lambda}+0.25)$ for EDM, $e^{-\lambda/2}/\pi$ for
v + cosine, 1 for the ELBO, and the shifted-cosine counterexample; each is its own
derivation (``implied_*``), and this one holds iff they all do.
"""

from __future__ import annotations

from . import implied_edm, implied_elbo, implied_sech, implied_shifted_cosine, implied_v_cosine
from ._base import Check, Derivation

PARTS = (implied_sech, implied_edm, implied_v_cosine, implied_elbo, implied_shifted_cosine)


def _checks() -> list[Check]:
    out = []
    for mod in PARTS:
        r = mod.DERIVATION.verify()
        out.append(Check(r.title, r.holds, "" if r.holds else r.detail))
    return out


DERIVATION = Derivation(
    name="p08_table1_weightings",
    title="P8 Kingma-Gao Table 1 implied weightings",
    statement=r"ε+cosine: $w\propto\mathrm{sech}(\lambda/2)$; EDM: $w\propto N(\lambda;2.4,2.4^2)"
    r"(e^{-\lambda}+0.25)$; v+cosine: $w=e^{-\lambda/2}/\pi$; ELBO: $w=1$; shifted cosine: "
    r"$w\not\propto e^{-\lambda/2}$ for $s\ne0$.",
    source="Kingma & Gao 2023 Table 1, App. A; FORMULAS.md §5 P8",
    method="runs implied_sech, implied_edm, implied_v_cosine, implied_elbo, implied_shifted_cosine",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
