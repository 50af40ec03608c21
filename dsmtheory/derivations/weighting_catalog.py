r"""The weighting catalog in ε-space (FORMULAS.md §3), with its internal identities.

Sympy forms of $\omega_\varepsilon(\lambda)$ (or of the total weight $w$ for weightings defined
by it) for each registry name, and the identities that tie them together:

* Min-SNR-γ is one weighting in three spaces: $\min(\mathrm{SNR},\gamma)$ on the x-loss,
  $\min(1,\gamma e^{-\lambda})$ on the ε-loss, $\min(\mathrm{SNR},\gamma)/(\mathrm{SNR}+1)$ on the
  (VP) v-loss, converted with $\kappa_{x_0}$ and $\kappa_v$;
* Soft-Min-SNR: the F-loss multiplier $(\tilde\sigma\sigma_d)^2/(\tilde\sigma^2+\sigma_d^2)^2$
  gives the x-weight $(\mathrm{SNR}^{-1}+\gamma^{-1})^{-1}$ with $\gamma=\sigma_d^{-2}$ and the
  ε-weight $\mathrm{sigmoid}(-\lambda-\log\sigma_d^2)$;
* the family $\omega_\varepsilon\propto1/(k+e^\lambda)$ contains P2(γ=1), Soft-Min-SNR
  ($k=\sigma_d^{-2}$), smoothed-KL ($k=1+\tau^{-2}$) and KG's sigmoid used as a per-sample
  multiplier ($k=e^{k_{KG}}$);
* ALSR-Gaussian is $\omega_{EDM}\,e^{-\alpha(\lambda-\mu)^2}$.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import (
    gamma,
    k,
    lam,
    normal_pdf,
    omega_p2,
    omega_smoothed_kl,
    omega_soft_min_snr,
    sech,
    sigma_data,
    sigmoid,
    snr,
    tau,
    to_snr,
)

alsr_alpha, mu = sp.symbols("alsr_alpha mu", real=True)
c = sp.Symbol("c", positive=True)


def eps_multipliers() -> dict[str, tuple[sp.Expr, tuple]]:
    """ω_ε(λ) of the schedule-free registry entries, keyed by registry name."""
    return {
        "simple": (sp.Integer(1), (lam,)),
        "edm": (1 + sp.exp(-lam) / sigma_data**2, (lam, sigma_data)),
        "v": (1 + sp.exp(-lam), (lam,)),
        "min_snr": (sp.Min(1, gamma * sp.exp(-lam)), (lam, gamma)),
        "soft_min_snr": (omega_soft_min_snr(), (lam, sigma_data)),
        "p2": (omega_p2(), (lam, k, gamma)),
        "smoothed_kl": (omega_smoothed_kl(), (lam, tau)),
        "alsr": (
            (1 + sp.exp(-lam) / sigma_data**2) * sp.exp(-alsr_alpha * (lam - mu) ** 2),
            (lam, sigma_data, alsr_alpha, mu),
        ),
    }


def total_weights() -> dict[str, tuple[sp.Expr, tuple]]:
    """Total weights w(λ) of the entries defined by one (ω_ε = w / p)."""
    pm, ps = sp.symbols("p_mean p_std", real=True)
    return {
        "elbo": (sp.Integer(1), (lam,)),
        "sech": (sech(lam / 2), (lam,)),
        "sigmoid": (sigmoid(k - lam), (lam, k)),
        "edm_total": (
            normal_pdf(lam, -2 * pm, 2 * ps) * (1 + sp.exp(-lam) / sigma_data**2),
            (lam, sigma_data, pm, ps),
        ),
    }


def _checks() -> list[Check]:
    out = []
    kx, kv = sp.exp(-lam), 1 + sp.exp(-lam)
    # Min-SNR on the clipped (SNR >= gamma) and unclipped branches
    for label, mn in (("SNR >= gamma", gamma), ("SNR < gamma", sp.exp(lam))):
        eps_from_x = to_snr(mn * kx)
        eps_from_v = to_snr(mn / (sp.exp(lam) + 1) * kv)
        eps_direct = to_snr(gamma * sp.exp(-lam) if mn == gamma else sp.Integer(1))
        out.append(
            Check(
                f"Min-SNR ({label}): x-, v- and eps-forms agree via kappa",
                is_identity(eps_from_x, eps_direct) and is_identity(eps_from_v, eps_direct),
            )
        )
    st2 = sp.exp(-lam)
    f_mult = st2 * sigma_data**2 / (st2 + sigma_data**2) ** 2
    kF = 1 + sp.exp(-lam) / sigma_data**2
    x_w = f_mult / (st2 * sigma_data**2 / (st2 + sigma_data**2))  # omega_x = omega_F / c_out^2
    out.append(
        Check(
            "Soft-Min-SNR: x-weight = (1/SNR + 1/gamma)^-1, gamma = sigma_d^-2",
            is_identity(to_snr(x_w), to_snr(1 / (sp.exp(-lam) + sigma_data**2))),
        )
    )
    out.append(
        Check(
            "Soft-Min-SNR: eps-weight = F-mult * kappa_F = sigmoid(-lam - log sd^2)",
            is_identity(to_snr(f_mult * kF), to_snr(sigmoid(-lam - sp.log(sigma_data**2))))
            and is_identity(to_snr(f_mult * kF), to_snr(omega_soft_min_snr())),
        )
    )
    fam = 1 / (k + snr)
    kk = sp.Symbol("kk", positive=True)
    out.append(
        Check("family 1/(k+SNR): P2(gamma=1)", is_identity(to_snr(omega_p2(lam, k, 1)), fam))
    )
    out.append(
        Check(
            "family: Soft-Min-SNR = sigma_d^-2 / (sigma_d^-2 + SNR)",
            is_identity(to_snr(omega_soft_min_snr()), sigma_data**-2 * fam.subs(k, sigma_data**-2)),
        )
    )
    out.append(
        Check(
            "family: smoothed-KL = tau^-2/(1+tau^-2+SNR)",
            is_identity(to_snr(omega_smoothed_kl()), tau**-2 * fam.subs(k, 1 + tau**-2)),
        )
    )
    out.append(
        Check(
            "family: sigmoid(k_KG - lam) = e^k_KG/(e^k_KG + SNR)",
            is_identity(to_snr(sigmoid(sp.log(kk) - lam)), kk * fam.subs(k, kk)),
        )
    )
    return out


def expressions() -> dict:
    """ε multipliers and total weights keyed by registry name (totals as ``<name>_total``)."""
    out = dict(eps_multipliers())
    for name, val in total_weights().items():
        out[name if name.endswith("_total") else f"{name}_total"] = val
    return out


DERIVATION = Derivation(
    name="weighting_catalog",
    title="Weighting catalog: Min-SNR forms, Soft-Min-SNR, the 1/(k+SNR) family",
    statement=r"Min-SNR's x-, ε- and v-forms are one weighting; Soft-Min-SNR's F-multiplier is the "
    r"x-weight $(\mathrm{SNR}^{-1}+\gamma^{-1})^{-1}$ and the ε-weight "
    r"$\mathrm{sigmoid}(-\lambda-\log\sigma_d^2)$; P2(γ=1), Soft-Min-SNR, smoothed-KL and the "
    r"sigmoid multiplier are all $\propto1/(k+e^\lambda)$.",
    source="Hang et al. 2023; Crowson et al. 2024; Choi et al. 2022; FORMULAS.md §3 items 8-12",
    method="sympy cancel in SNR, branch by branch for Min-SNR",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
