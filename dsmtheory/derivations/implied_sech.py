r"""Kingma & Gao Table 1: ε-prediction with the cosine schedule implies
$w=\mathrm{sech}(\lambda/2)$.

With $t\sim U(0,1)$ and $\lambda=-2\log\tan(\pi t/2)$, $p(\lambda)=-dt/d\lambda
=\mathrm{sech}(\lambda/2)/(2\pi)$; the ε-loss multiplier is 1, so
$w=p\,\omega_\varepsilon\propto\mathrm{sech}(\lambda/2)$ (not monotone).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import lam, sech, to_snr

t = sp.Symbol("t", positive=True)


def cosine_density(shift: sp.Expr = 0) -> sp.Expr:
    r"""$p(\lambda)=-dt/d\lambda$ for $\lambda=-2\log\tan(\pi t/2)+2s$, derived by inverting."""
    t_of_lam = 2 / sp.pi * sp.atan(sp.exp(-(lam - 2 * shift) / 2))
    return -sp.diff(t_of_lam, lam)


def _checks() -> list[Check]:
    out = []
    t_of_lam = 2 / sp.pi * sp.atan(sp.exp(-lam / 2))
    lam_of_t = -2 * sp.log(sp.tan(sp.pi * t / 2))
    out.append(
        Check(
            "t(lam) inverts lam(t): lam(t(lam)) = lam", is_identity(lam_of_t.subs(t, t_of_lam), lam)
        )
    )
    p = cosine_density()
    out.append(
        Check(
            "p(lam) = sech(lam/2)/(2 pi)",
            is_identity(to_snr(p), to_snr(sech(lam / 2) / (2 * sp.pi))),
        )
    )
    mass = sp.limit(t_of_lam, lam, -sp.oo) - sp.limit(t_of_lam, lam, sp.oo)
    out.append(Check("p integrates to 1 over R: t(-oo) - t(+oo) = 1", mass == 1))
    w = p * 1
    mono = sp.solve(sp.diff(to_snr(w), sp.Symbol("snr", positive=True)), dict=True)
    out.append(
        Check("w = p * 1 is not monotone (stationary point at lam = 0)", len(mono) == 1, f"{mono}")
    )
    return out


def expressions() -> dict:
    """Cosine-schedule density for ``schedules.get('cosine')`` (untruncated form)."""
    return {"cosine_density": (cosine_density(), (lam,))}


DERIVATION = Derivation(
    name="implied_sech",
    title="Table 1: eps-prediction + cosine implies w = sech(lam/2)",
    statement=r"For the cosine schedule $p(\lambda)=\mathrm{sech}(\lambda/2)/(2\pi)$; with "
    r"$\omega_\varepsilon=1$ the implied weight is $w\propto\mathrm{sech}(\lambda/2)$, "
    "not monotone.",
    source="Kingma & Gao 2023 Table 1, App. A; FORMULAS.md §3 item 3, §5 P8",
    method="sympy diff of the inverse schedule, cancel in SNR, integrate, solve",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
