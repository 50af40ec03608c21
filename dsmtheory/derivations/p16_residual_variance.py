r"""P16: heuristic vs optimal residual variance (Zhang et al.'s claim, sharpened).

Per eigen-direction of $H$ with eigenvalue $h$, $a=\sigma^{-2}+h>0$ is the target variance;
the heuristic weight $\sigma^2$ leaves residual variance $\sigma^4a$, the optimal $1/a$ leaves
$1/a$; $\sigma^4a-1/a=\sigma^2h(\sigma^2a+1)/a$, so the heuristic is smaller iff $h<0$. In
expectation ($\mathbb E h=-J$) the heuristic gives $\sigma^2-\sigma^4J$ exactly and the
optimum $\mathbb E[1/a]\ge\sigma^2/(1-\sigma^2J)\ge\sigma^2+\sigma^4J$ (Jensen).

Numeric part: 1-D mixture $\tfrac12N(-1,0.5^2)+\tfrac12N(1,0.5^2)$, VE at $\sigma=0.1$,
expectations by adaptive quadrature (``scipy.integrate.quad``, epsrel 1e-12): the heuristic
equals $\sigma^2-\sigma^4J$ to 1e-9 and the optimum obeys both inequalities.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy.integrate import quad

from ._base import Check, Derivation, close, is_identity
from ._common import sigma

RTOL = 1e-9  # two adaptive quadratures (epsrel 1e-12) of smooth integrands
h = sp.Symbol("h", real=True)

MIX_W, MIX_M, MIX_S = (0.5, 0.5), (-1.0, 1.0), 0.5


def _mixture_log_terms(x: float, sig: float):
    var = MIX_S**2 + sig**2
    return [
        np.log(wk) - 0.5 * np.log(2 * np.pi * var) - 0.5 * (x - mk) ** 2 / var
        for wk, mk in zip(MIX_W, MIX_M, strict=True)
    ], var


def noised_density_score_hessian(x: float, sig: float) -> tuple[float, float, float]:
    """p_t, score and Hessian of the 1-D test mixture under VE noise (log-space)."""
    logs, var = _mixture_log_terms(x, sig)
    mx = max(logs)
    e = np.exp(np.array(logs) - mx)
    r = e / e.sum()
    g = np.array([-(x - mk) / var for mk in MIX_M])
    score = float(r @ g)
    hess = float(r @ (g**2 - 1 / var) - score**2)
    return float(np.exp(mx) * e.sum()), score, hess


def expectations(sig: float) -> dict[str, float]:
    """J, E[heuristic residual], E[optimal residual] by quadrature."""

    def integ(f):
        return quad(
            lambda x: noised_density_score_hessian(x, sig)[0] * f(x),
            -8,
            8,
            epsabs=0,
            epsrel=1e-12,
            limit=400,
        )[0]

    J = integ(lambda x: noised_density_score_hessian(x, sig)[1] ** 2)
    heur = integ(lambda x: sig**4 * (sig**-2 + noised_density_score_hessian(x, sig)[2]))
    opt = integ(lambda x: 1 / (sig**-2 + noised_density_score_hessian(x, sig)[2]))
    return {"J": J, "heuristic": heur, "optimal": opt}


def _checks() -> list[Check]:
    a = sigma**-2 + h
    gap = sp.factor(sigma**4 * a - 1 / a)
    out = [
        Check(
            "sigma^4 a - 1/a = sigma^2 h (sigma^2 a + 1)/a: heuristic smaller iff h < 0",
            is_identity(gap, sigma**2 * h * (sigma**2 * a + 1) / a),
        ),
        Check(
            "heuristic expectation sigma^4 (sigma^-2 - J) = sigma^2 - sigma^4 J",
            is_identity(
                sigma**4 * (sigma**-2 - sp.Symbol("J")), sigma**2 - sigma**4 * sp.Symbol("J")
            ),
        ),
    ]
    sig = 0.1
    e = expectations(sig)
    J = e["J"]
    out.append(
        Check(
            "quadrature: E[heuristic] = sigma^2 - sigma^4 J",
            close(e["heuristic"], sig**2 - sig**4 * J, RTOL),
            f"{e['heuristic']:.6e} vs {sig**2 - sig**4 * J:.6e}, J = {J:.6g}",
        )
    )
    jensen = sig**2 / (1 - sig**2 * J)
    out.append(
        Check(
            "E[optimal] >= sigma^2/(1-sigma^2 J) >= sigma^2 + sigma^4 J",
            e["optimal"] >= jensen * (1 - RTOL) and jensen >= sig**2 + sig**4 * J,
            f"optimal {e['optimal']:.6e}, heuristic {e['heuristic']:.6e} at sigma=0.1",
        )
    )
    return out


DERIVATION = Derivation(
    name="p16_residual_variance",
    title="P16 heuristic vs optimal residual variance",
    statement=r"Per direction $a=\sigma^{-2}+h$: heuristic $\sigma^4a$, optimal $1/a$, heuristic "
    r"smaller iff $h<0$; in expectation heuristic $=\sigma^2-\sigma^4J$, optimal "
    r"$\ge\sigma^2/(1-\sigma^2J)\ge\sigma^2+\sigma^4J$.",
    source="Zhang et al. 2025 [R]; FORMULAS.md §5 P16",
    method="sympy factor; expectations on a 1-D two-component mixture by scipy quad (rtol 1e-9)",
    kind="numeric",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
