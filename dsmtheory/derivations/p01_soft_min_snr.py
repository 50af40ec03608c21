r"""P1: the smoothed-KL weight is a constant multiple of Soft-Min-SNR (smoothed-KL Prop. 3.3).

$$\omega_\tau(\lambda)=\frac{1}{1+\tau^2}\,\omega_{SMS}\Big(\lambda;\sigma_d^2=\frac{\tau^2}{1+\tau^2}\Big),
\qquad \omega_\tau=\frac{v}{v+\tau^2},\ v=\frac1{1+e^\lambda},\quad
\omega_{SMS}=\frac1{1+\sigma_d^2e^\lambda}.$$

Also $\omega_\tau=\tau^{-2}\,\mathrm{P2}(k=1+\tau^{-2},\gamma=1)
=\frac1{1+\tau^2}\mathrm{sigmoid}(\log(1+\tau^{-2})-\lambda)$, and the constant and mapping
are the unique ones (coefficient matching in SNR).
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import (
    lam,
    omega_p2,
    omega_smoothed_kl,
    omega_soft_min_snr,
    sigma_data,
    sigmoid,
    snr,
    tau,
    to_snr,
)


def soft_min_snr_mapping_holds(const: sp.Expr, sd2: sp.Expr) -> bool:
    r"""Whether $\omega_\tau\equiv c\,\omega_{SMS}(\sigma_d^2)$ for all λ, τ (symbolic)."""
    rhs = const * omega_soft_min_snr(lam, sp.sqrt(sd2))
    return is_identity(to_snr(omega_smoothed_kl()), to_snr(rhs))


def _checks() -> list[Check]:
    out = []
    out.append(
        Check(
            "omega_tau = v/(v+tau^2) = 1/(1+tau^2(1+SNR))",
            is_identity(to_snr(omega_smoothed_kl()), 1 / (1 + tau**2 * (1 + snr))),
        )
    )
    out.append(
        Check(
            "omega_tau = omega_SMS(sigma_d^2=tau^2/(1+tau^2))/(1+tau^2)",
            soft_min_snr_mapping_holds(1 / (1 + tau**2), tau**2 / (1 + tau**2)),
        )
    )
    out.append(
        Check(
            "omega_tau = tau^-2 P2(k=1+tau^-2, gamma=1)",
            is_identity(
                to_snr(omega_smoothed_kl()), to_snr(omega_p2(lam, 1 + tau**-2, 1) / tau**2)
            ),
        )
    )
    out.append(
        Check(
            "omega_tau = sigmoid(log(1+tau^-2) - lam)/(1+tau^2)",
            is_identity(
                to_snr(omega_smoothed_kl()),
                to_snr(sigmoid(sp.log(1 + tau**-2) - lam) / (1 + tau**2)),
            ),
        )
    )
    # uniqueness: omega_tau = c/(1+d*SNR) for all SNR  <=>  1 + d SNR = c(1+tau^2+tau^2 SNR)
    c, d = sp.symbols("c d", positive=True)
    poly = sp.Poly(sp.expand(1 + d * snr - c * (1 + tau**2 + tau**2 * snr)), snr)
    sol = sp.solve(poly.coeffs(), [c, d], dict=True)
    unique = (
        len(sol) == 1
        and is_identity(sol[0][c], 1 / (1 + tau**2))
        and is_identity(sol[0][d], tau**2 / (1 + tau**2))
    )
    out.append(Check("the constant 1/(1+tau^2) and sigma_d^2 = tau^2/(1+tau^2) are unique", unique))
    t2 = sp.Symbol("t2", positive=True)  # tau^2
    inv = sp.solve(sp.Eq(sigma_data**2, t2 / (1 + t2)), t2)
    out.append(
        Check(
            "inverse mapping tau^2 = sigma_d^2/(1-sigma_d^2)",
            len(inv) == 1 and is_identity(inv[0], sigma_data**2 / (1 - sigma_data**2)),
        )
    )
    return out


def expressions() -> dict:
    """Sympy forms for cross-checking ``weightings`` (``smoothed_kl``, ``soft_min_snr``)."""
    return {
        "smoothed_kl": (omega_smoothed_kl(), (lam, tau)),
        "soft_min_snr": (omega_soft_min_snr(), (lam, sigma_data)),
    }


DERIVATION = Derivation(
    name="p01_soft_min_snr",
    title="P1 Soft-Min-SNR equivalence of the smoothed-KL weight",
    statement=r"$\omega_\tau(\lambda)=(1+\tau^2)^{-1}\,"
    r"\omega_{SMS}(\lambda;\sigma_d^2=\tau^2/(1+\tau^2))$"
    r" for all $\lambda$ and $\tau>0$; equivalently "
    r"$\omega_\tau=\tau^{-2}\mathrm{P2}(1+\tau^{-2},1)"
    r"=\mathrm{sigmoid}(\log(1+\tau^{-2})-\lambda)/(1+\tau^2)$; "
    r"the constant and mapping are unique.",
    source="Smoothed-KL paper Prop. 3.3 [R]; FORMULAS.md §5 P1, §3 item 11",
    method="cancel of the difference as rational functions of SNR; coefficient matching (solve)",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
