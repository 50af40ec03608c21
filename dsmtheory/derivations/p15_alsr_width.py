r"""P15: ALSR (Gaussian variant) on EDM is EDM with a narrower $P_{std}$ (Sun & Shi; derived).

$p(\lambda)=N(\lambda;-2P_m,4P_s^2)$ times $w=\exp(-\alpha(\lambda-\mu)^2)$ is again Gaussian
with variance $4P_s^2/(1+8\alpha P_s^2)$, i.e. $P_s^{eff}=(P_s^{-2}+8\alpha)^{-1/2}$ and mean
$(-2P_m+8\alpha P_s^2\mu)/(1+8\alpha P_s^2)$: 1.136, 0.956, 0.818 for α = 0.01, 0.05, 0.1.

Method: the product is completed symbolically; then a Monte Carlo histogram check: λ drawn
from EDM's log-normal, weighted by $w$, self-normalised weighted mean and standard deviation
vs the formula, each within 5 standard errors (delta method).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Check, Derivation, is_identity, is_zero
from ._common import lam, normal_pdf

Z_BOUND = 5.0
a, Ps = sp.symbols("alpha P_s", positive=True)
Pm, mu = sp.symbols("P_m mu", real=True)


def effective_p_std(alpha_value: float, p_std: float = 1.2) -> float:
    r"""$P_s^{eff}=(P_s^{-2}+8\alpha)^{-1/2}$."""
    return float((p_std**-2 + 8 * alpha_value) ** -0.5)


def _checks() -> list[Check]:
    out = []
    var_eff = 4 * Ps**2 / (1 + 8 * a * Ps**2)
    mean_eff = (-2 * Pm + 8 * a * Ps**2 * mu) / (1 + 8 * a * Ps**2)
    log_prod = sp.log(normal_pdf(lam, -2 * Pm, 2 * Ps)) - a * (lam - mu) ** 2
    log_target = sp.log(normal_pdf(lam, mean_eff, sp.sqrt(var_eff)))
    d2 = sp.diff(sp.expand(log_prod - log_target), lam)  # constant difference <=> zero slope
    out.append(
        Check(
            "p w is N(mean_eff, 4 P_s^2/(1+8 alpha P_s^2)) up to a constant", is_zero(sp.expand(d2))
        )
    )
    out.append(
        Check(
            "P_s_eff = (P_s^-2 + 8 alpha)^(-1/2)",
            is_identity(sp.sqrt(var_eff) / 2, (Ps**-2 + 8 * a) ** sp.Rational(-1, 2)),
        )
    )
    vals = [effective_p_std(x) for x in (0.01, 0.05, 0.1)]
    out.append(
        Check(
            "alpha = 0.01, 0.05, 0.1 give 1.136, 0.956, 0.818",
            [round(x, 3) for x in vals] == [1.136, 0.956, 0.818],
            ", ".join(f"{x:.4f}" for x in vals),
        )
    )
    rng = np.random.default_rng(0)
    n, p_mean, p_std, alpha_v, mu_v = 400_000, -1.2, 1.2, 0.05, 1.0
    x = rng.normal(-2 * p_mean, 2 * p_std, n)
    w = np.exp(-alpha_v * (x - mu_v) ** 2)
    wn = w / w.sum()
    m_hat = float(np.sum(wn * x))
    v_hat = float(np.sum(wn * (x - m_hat) ** 2))
    # delta-method standard errors of self-normalised estimators
    se_m = float(np.sqrt(np.sum(wn**2 * (x - m_hat) ** 2)))
    se_v = float(np.sqrt(np.sum(wn**2 * ((x - m_hat) ** 2 - v_hat) ** 2)))
    m_true = (-2 * p_mean + 8 * alpha_v * p_std**2 * mu_v) / (1 + 8 * alpha_v * p_std**2)
    v_true = 4 * effective_p_std(alpha_v, p_std) ** 2
    zm, zv = abs(m_hat - m_true) / se_m, abs(v_hat - v_true) / se_v
    out.append(
        Check(
            "MC (alpha=0.05, mu=1): weighted mean and variance within 5 SE",
            bool(zm <= Z_BOUND and zv <= Z_BOUND),
            f"mean {m_hat:.4f}±{se_m:.4f} vs {m_true:.4f}; "
            f"std/2 {np.sqrt(v_hat) / 2:.4f} vs {np.sqrt(v_true) / 2:.4f}, z={zv:.2f}",
        )
    )
    return out


DERIVATION = Derivation(
    name="p15_alsr_width",
    title="P15 ALSR-Gaussian on EDM = EDM with P_std_eff = (P_s^-2 + 8 alpha)^-1/2",
    statement=r"$N(\lambda;-2P_m,4P_s^2)\,e^{-\alpha(\lambda-\mu)^2}\propto N(\lambda;m',"
    r"4(P_s^{eff})^2)$ with $P_s^{eff}=(P_s^{-2}+8\alpha)^{-1/2}$ (1.136, 0.956, 0.818 for "
    r"$\alpha=$ 0.01, 0.05, 0.1), conditional on the batch mean $\mu$.",
    source="Sun & Shi (ALSR main text); FORMULAS.md §3 item 12, §5 P15",
    method="sympy completing the square; Monte Carlo weighted moments within 5 standard errors",
    kind="numeric",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
