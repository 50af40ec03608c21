r"""Kingma & Gao eq. 38 counterexample: with the shifted cosine schedule
$p=\mathrm{sech}(\lambda/2-s)/(2\pi)$, v-prediction gives
$w=(1+e^{-\lambda})\,p(\lambda)$, and $w/e^{-\lambda/2}$ is **not** constant for $s\ne0$:
it runs from $e^{s}/\pi$ ($\lambda\to+\infty$) to $e^{-s}/\pi$ ($\lambda\to-\infty$). KG's
eq. 38 ($w=(2/\pi)e^{-s}e^{-\lambda/2}$) holds for no $s$ (at $s=0$ the constant is $1/\pi$).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero
from ._common import lam, s, sech, to_snr


def ratio() -> sp.Expr:
    r"""$w(\lambda)/e^{-\lambda/2}$ for the shifted cosine."""
    return (1 + sp.exp(-lam)) * sech(lam / 2 - s) / (2 * sp.pi) / sp.exp(-lam / 2)


def _checks() -> list[Check]:
    r = ratio()
    d = sp.diff(r, lam)
    at0 = sp.simplify(d.subs(lam, 1).subs(s, sp.Rational(1, 2)))
    out = [
        Check(
            "d/dlam [w e^(lam/2)] != 0 for s = 1/2 (w not prop. to e^(-lam/2))",
            at0 != 0 and not is_zero(at0),
            f"derivative at lam=1: {sp.N(at0, 6)}",
        ),
        Check("s = 0: ratio is the constant 1/pi", is_identity(to_snr(r.subs(s, 0)), 1 / sp.pi)),
        Check(
            "limit lam -> +oo is e^s/pi", is_identity(sp.limit(r, lam, sp.oo), sp.exp(s) / sp.pi)
        ),
        Check(
            "limit lam -> -oo is e^-s/pi", is_identity(sp.limit(r, lam, -sp.oo), sp.exp(-s) / sp.pi)
        ),
        Check(
            "KG eq. 38 constant (2/pi)e^-s is wrong even at s = 0",
            not is_identity(to_snr(r.subs(s, 0)), 2 / sp.pi),
        ),
    ]
    return out


def expressions() -> dict:
    """Shifted cosine density, for ``schedules.get('cosine', shift=s)``."""
    return {"shifted_cosine_density": (sech(lam / 2 - s) / (2 * sp.pi), (lam, s))}


DERIVATION = Derivation(
    name="implied_shifted_cosine",
    title="eq. 38 counterexample: shifted cosine + v is not e^(-lam/2)",
    statement=r"For $p=\mathrm{sech}(\lambda/2-s)/(2\pi)$, $w=(1+e^{-\lambda})p$ satisfies "
    r"$w e^{\lambda/2}\to e^{s}/\pi$ ($\lambda\to\infty$) and $\to e^{-s}/\pi$ "
    r"($\lambda\to-\infty$), so it is not $\propto e^{-\lambda/2}$ for $s\ne0$.",
    source="Kingma & Gao 2023 App. A.4.1 eqs. 37-38; FORMULAS.md §3 item 6, §5 P8",
    method="sympy limits at +-oo, a non-zero derivative at one point, cancel at s = 0",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
