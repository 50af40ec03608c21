r"""P2: Min-SNR matching rule $\gamma=\tau^{-2}$ (smoothed-KL Prop. 3.4) [R].

For $v<\tau^2$: $\omega_\tau=\sum_{j\ge1}(-1)^{j-1}(v/\tau^2)^j$. With $\gamma=\tau^{-2}$ on the
clipped branch $\mathrm{SNR}\ge\gamma$ (where $\omega_{MinSNR}=\gamma/\mathrm{SNR}$):
$\omega_\tau/\omega_{MinSNR}=\mathrm{SNR}/(\mathrm{SNR}+1+\gamma)$, relative error
$(1+\gamma)/(\mathrm{SNR}+1+\gamma)\le(1+\tau^2)\gamma/\mathrm{SNR}$. At $\tau=0.1$ the
maxima over $\mathrm{SNR}\ge10\gamma$ and $\ge100\gamma$ are exactly $101/1101=9.17\,\%$ and
$101/10101=0.9999\,\%$. On DDPM-linear ($\beta$ from $10^{-4}$ to $0.02$, $T=1000$) the
condition $v_t<\tau^2$ holds for the first 11, 27, 59, 165 steps at $\tau=0.05,0.1,0.2,0.5$
(exact rational arithmetic).
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import gamma, snr, tau

v = sp.Symbol("v", positive=True)


def ddpm_linear_steps(tau_value: Fraction, T: int = 1000) -> int:
    r"""Number of leading DDPM-linear steps with $v_i=1-\bar\alpha_i<\tau^2$ (exact).

    $\beta_i$ is ``linspace(1e-4, 0.02, T)``; $\bar\alpha_i=\prod_{j\le i}(1-\beta_j)$ is
    computed in rationals, so the count has no rounding.
    """
    b0, b1 = Fraction(1, 10**4), Fraction(2, 100)
    abar, n = Fraction(1), 0
    for i in range(T):
        abar *= 1 - (b0 + (b1 - b0) * i / (T - 1))
        if 1 - abar < tau_value**2:
            n += 1
        else:
            break  # v_i increases with i
    return n


def relative_error_at(ratio: sp.Expr, tau_value: sp.Expr) -> sp.Expr:
    """Exact relative error of the Min-SNR match at SNR = ratio * gamma, gamma = tau^-2."""
    g = tau_value**-2
    return (1 + g) / (ratio * g + 1 + g)


def _checks() -> list[Check]:
    out = []
    omega = v / (v + tau**2)
    j = sp.Symbol("j", integer=True, positive=True)
    r = v / tau**2
    series = sp.summation((-1) ** (j - 1) * r**j, (j, 1, sp.oo))
    # sympy returns a Piecewise whose |r|<1 branch is the closed form
    series = sp.piecewise_fold(series)
    branch = series.args[0][0] if isinstance(series, sp.Piecewise) else series
    out.append(
        Check(
            "alternating series sum_j (-1)^(j-1) (v/tau^2)^j = omega_tau for v<tau^2",
            is_identity(branch, omega),
        )
    )
    lead = sp.series(omega, v, 0, 2).removeO()
    out.append(Check("leading term v/tau^2", is_identity(lead, v / tau**2)))
    omega_snr = 1 / (1 + tau**2 * (1 + snr))
    ratio = (omega_snr / (gamma / snr)).subs(tau, 1 / sp.sqrt(gamma))
    out.append(
        Check(
            "ratio to Min-SNR on SNR>=gamma is SNR/(SNR+1+gamma)",
            is_identity(ratio, snr / (snr + 1 + gamma)),
        )
    )
    rel = 1 - snr / (snr + 1 + gamma)
    bound = (1 + tau**2) * gamma / snr
    gap = sp.factor(sp.cancel(bound.subs(tau, 1 / sp.sqrt(gamma)) - rel))
    out.append(
        Check(
            "relative error <= (1+tau^2) gamma/SNR", bool(gap.is_positive), f"bound - error = {gap}"
        )
    )
    e10 = relative_error_at(10, sp.Rational(1, 10))
    e100 = relative_error_at(100, sp.Rational(1, 10))
    out.append(
        Check(
            "tau=0.1: max rel. error 101/1101 (<=10%) at SNR>=10 gamma",
            e10 == sp.Rational(101, 1101) and e10 <= sp.Rational(1, 10),
            f"{float(e10) * 100:.4f} %",
        )
    )
    out.append(
        Check(
            "tau=0.1: max rel. error 101/10101 (<=1%) at SNR>=100 gamma",
            e100 == sp.Rational(101, 10101) and e100 <= sp.Rational(1, 100),
            f"{float(e100) * 100:.5f} %",
        )
    )
    # the error is decreasing in SNR, so the maximum over SNR >= c*gamma sits at c*gamma
    out.append(
        Check("relative error decreasing in SNR", bool(sp.factor(sp.diff(rel, snr)).is_negative))
    )
    counts = {
        t: ddpm_linear_steps(Fraction(t).limit_denominator(100)) for t in (0.05, 0.1, 0.2, 0.5)
    }
    out.append(
        Check(
            "DDPM-linear steps with v_t<tau^2 are 11, 27, 59, 165",
            [counts[t] for t in (0.05, 0.1, 0.2, 0.5)] == [11, 27, 59, 165],
            f"{counts}",
        )
    )
    return out


DERIVATION = Derivation(
    name="p02_min_snr_matching",
    title="P2 Min-SNR matching gamma = tau^-2 and its error bounds",
    statement=r"For $v_t<\tau^2$, $\omega_\tau=\sum_{j\ge1}(-1)^{j-1}(v_t/\tau^2)^j$. With "
    r"$\gamma=\tau^{-2}$ and $\mathrm{SNR}\ge\gamma$: $\omega_\tau/\omega_{MinSNR}="
    r"\mathrm{SNR}/(\mathrm{SNR}+1+\gamma)$, relative error $(1+\gamma)/(\mathrm{SNR}+1+\gamma)"
    r"\le(1+\tau^2)\gamma/\mathrm{SNR}$; at $\tau=0.1$ the maxima for $\mathrm{SNR}\ge10\gamma$, "
    r"$100\gamma$ are $101/1101=9.17\%$ and $101/10101=0.9999\%$; DDPM-linear ($T=1000$) "
    r"satisfies $v_t<\tau^2$ for the first 11, 27, 59, 165 steps at $\tau=0.05,0.1,0.2,0.5$.",
    source="Smoothed-KL paper Prop. 3.4 [R]; FORMULAS.md §5 P2",
    method="sympy summation/series/cancel/factor; exact rational arithmetic for the step counts",
    kind="symbolic",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
