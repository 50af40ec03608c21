r"""P7: a monotone weighting defines a probability density (Kingma & Gao eq. 11).

If $w'\le0$ on $[\lambda_{min},\lambda_{max}]$, then $p_w=-w'/w(\lambda_{min})$ plus an atom
of mass $w(\lambda_{max})/w(\lambda_{min})$ at $\lambda_{max}$ integrates to 1, and
$\mathcal L_w=w(\lambda_{min})\,\mathbb E_{p_w}[\mathcal L(\lambda)]$ (with P6's right side).
KG's text gives the atom as $w(\lambda_{max})$: that is right only when $w(\lambda_{min})=1$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero
from ._common import lam, sigmoid

lo, hi = sp.symbols("lam_min lam_max", real=True)
w = sp.Function("w")
L = sp.Function("L")


def total_mass(atom: sp.Expr, weight: sp.Expr | None = None) -> sp.Expr:
    r"""$\int_{\lambda_{min}}^{\lambda_{max}}-w'/w(\lambda_{min})\,d\lambda+\text{atom}$."""
    wt = w(lam) if weight is None else weight
    cont = sp.integrate(-sp.diff(wt, lam), (lam, lo, hi)) / wt.subs(lam, lo)
    return cont + atom


def atom_is_normalised(atom: sp.Expr, weight: sp.Expr | None = None) -> bool:
    """Whether the density with this atom has total mass exactly 1 (symbolic)."""
    return is_zero(total_mass(atom, weight) - 1)


def _checks() -> list[Check]:
    out = []
    out.append(
        Check(
            "generic w: mass with atom w(lam_max)/w(lam_min) is 1",
            atom_is_normalised(w(hi) / w(lo)),
        )
    )
    ws = sigmoid(2 - lam)
    out.append(
        Check(
            "sigmoid(2-lam): mass with the normalised atom is 1",
            atom_is_normalised(ws.subs(lam, hi) / ws.subs(lam, lo), ws),
        )
    )
    kg = sp.simplify(total_mass(w(hi)) - 1)
    out.append(
        Check(
            "KG's unnormalised atom w(lam_max) leaves mass - 1 = "
            "w(lam_max)(1 - 1/w(lam_min)), zero only if w(lam_min) = 1",
            is_identity(kg, w(hi) * (1 - 1 / w(lo))),
        )
    )
    # L_w = w(lam_min) E_{p_w}[L] equals P6's right side w(hi)L(hi) - int w' L
    expect = sp.Integral(-sp.diff(w(lam), lam) * L(lam), (lam, lo, hi)) / w(lo) + w(hi) / w(lo) * L(
        hi
    )
    rhs = w(hi) * L(hi) - sp.Integral(sp.diff(w(lam), lam) * L(lam), (lam, lo, hi))
    diff = sp.expand(w(lo) * expect - rhs)
    out.append(
        Check("w(lam_min) E_{p_w}[L] = w(lam_max)L(lam_max) - int w'L (eq. 11)", is_zero(diff))
    )
    return out


def expressions() -> dict:
    r"""$p_w$ and the atom for $w=c\,\mathrm{sigmoid}(k-\lambda)$, for
    ``parameterization.augmentation_density``."""
    from ._common import k

    c = sp.Symbol("c", positive=True)
    ws = c * sigmoid(k - lam)
    syms = (lam, k, c, lo, hi)
    return {
        "density": (-sp.diff(ws, lam) / ws.subs(lam, lo), syms),
        "atom_mass": (ws.subs(lam, hi) / ws.subs(lam, lo), syms),
    }


DERIVATION = Derivation(
    name="p07_monotone_density",
    title="P7 monotone weighting -> density with atom w(lam_max)/w(lam_min) (KG eq. 11)",
    statement=r"If $w'\le0$, $p_w=-w'/w(\lambda_{min})$ on $[\lambda_{min},\lambda_{max}]$ plus an "
    r"atom of mass $w(\lambda_{max})/w(\lambda_{min})$ at $\lambda_{max}$ integrates to 1 and "
    r"$\mathcal L_w=w(\lambda_{min})\mathbb E_{p_w}[\mathcal L]$; KG's atom $w(\lambda_{max})$ "
    r"is right only when $w(\lambda_{min})=1$.",
    source="Kingma & Gao 2023 §3.6 eq. 11; FORMULAS.md §5 P7",
    method="sympy integrate of -w' (fundamental theorem, generic w and sigmoid), simplify",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
