r"""P3: P2 and its relatives at high SNR (smoothed-KL Cor. 3.5) [R].

$(k+\mathrm{SNR})^{-\gamma}=
\mathrm{SNR}^{-\gamma}\big(1-\gamma k/\mathrm{SNR}+O(\mathrm{SNR}^{-2})\big)$;
with exponent 1, Min-SNR-γ, P2(k=1) and Ours-τ all decay as $1/\mathrm{SNR}$ with prefactors
γ, 1 and τ⁻², and
$\omega_\tau=\tau^{-2}\mathrm{SNR}^{-1}-(\tau^{-2}+\tau^{-4})\mathrm{SNR}^{-2}+\dots$
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import gamma, k, snr, tau

u = sp.Symbol("u", positive=True)  # u = 1/SNR


def _lead(expr: sp.Expr, order: int = 3) -> sp.Expr:
    """Series of ``expr`` (in SNR) at SNR → ∞, via u = 1/SNR, as a polynomial in u."""
    return sp.series(expr.subs(snr, 1 / u), u, 0, order).removeO()


def _checks() -> list[Check]:
    out = []
    # (k+SNR)^-gamma * SNR^gamma = (1 + k u)^-gamma
    rel = sp.series((1 + k * u) ** (-gamma), u, 0, 2).removeO()
    out.append(
        Check(
            "(k+SNR)^-gamma = SNR^-gamma (1 - gamma k/SNR + O(SNR^-2))",
            is_identity(rel, 1 - gamma * k * u),
        )
    )
    omega_tau = 1 / (1 + tau**2 * (1 + snr))
    ser = _lead(omega_tau)
    out.append(
        Check(
            "omega_tau = tau^-2/SNR - (tau^-2 + tau^-4)/SNR^2 + ...",
            is_identity(ser, tau**-2 * u - (tau**-2 + tau**-4) * u**2),
        )
    )
    pref = {
        "min_snr": sp.limit((gamma / snr) * snr, snr, sp.oo),  # clipped branch gamma/SNR
        "p2_k1": sp.limit(1 / (1 + snr) * snr, snr, sp.oo),
        "ours": sp.limit(omega_tau * snr, snr, sp.oo),
    }
    out.append(
        Check(
            "1/SNR prefactors gamma, 1, tau^-2",
            is_identity(pref["min_snr"], gamma)
            and pref["p2_k1"] == 1
            and is_identity(pref["ours"], tau**-2),
            f"{pref}",
        )
    )
    return out


def expressions() -> dict:
    """P2 weight as a function of λ, for ``weightings.get('p2', k=, gamma=)``."""
    from ._common import lam, omega_p2

    return {"p2": (omega_p2(), (lam, k, gamma))}


DERIVATION = Derivation(
    name="p03_p2_high_snr",
    title="P3 P2 / Min-SNR / smoothed-KL at high SNR",
    statement=r"$(k+\mathrm{SNR})^{-\gamma}=\mathrm{SNR}^{-\gamma}(1-\gamma k/\mathrm{SNR}"
    r"+O(\mathrm{SNR}^{-2}))$; Min-SNR-$\gamma$, P2$(k=1,\gamma=1)$ and $\omega_\tau$ decay as "
    r"$1/\mathrm{SNR}$ with prefactors $\gamma$, 1, $\tau^{-2}$; $\omega_\tau=\tau^{-2}"
    r"\mathrm{SNR}^{-1}-(\tau^{-2}+\tau^{-4})\mathrm{SNR}^{-2}+O(\mathrm{SNR}^{-3})$.",
    source="Smoothed-KL paper Cor. 3.5 [R]; FORMULAS.md §5 P3",
    method="sympy series in u = 1/SNR and limits",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
