r"""P11: the importance-sampling optimum $p^*\propto\omega\sqrt{m_2}$.

For $\hat g=\frac{\omega(\lambda)}{p(\lambda)}g$ with $\lambda\sim p$, the second moment is
$\int\omega^2m_2/p$, $m_2=\mathbb E[\|g\|^2|\lambda]$; by Cauchy–Schwarz
$\int\omega^2m_2/p\ge(\int\omega\sqrt{m_2})^2$ with equality iff $p\propto\omega\sqrt{m_2}$.
It is $\omega\cdot\mathrm{std}$ only when the per-λ mean gradients vanish.

Method: the Lagrange stationarity on a K-point grid is solved with sympy, and the
Cauchy–Schwarz minimality is checked numerically: on 2000 random densities for random
$(\omega, m_2)$ on a 50-point grid no density beats $p^*$ (relative slack 1e-12), and
$p^*$ attains the bound to 1e-12.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._base import Check, Derivation, close

RTOL = 1e-12  # float64 sums of 50 positive terms


def second_moment(p: np.ndarray, omega: np.ndarray, m2: np.ndarray) -> float:
    r"""$\sum_i\omega_i^2m_{2,i}/p_i$ on a grid with probabilities ``p``."""
    return float(np.sum(omega**2 * m2 / p))


def optimal_density(omega: np.ndarray, m2: np.ndarray) -> np.ndarray:
    r"""$p^*\propto\omega\sqrt{m_2}$."""
    q = omega * np.sqrt(m2)
    return q / q.sum()


def _checks() -> list[Check]:
    out = []
    K = 3
    p = sp.symbols(f"p0:{K}", positive=True)
    w = sp.symbols(f"w0:{K}", positive=True)
    m = sp.symbols(f"m0:{K}", positive=True)
    mu = sp.Symbol("mu", positive=True)
    lagr = sum(w[i] ** 2 * m[i] / p[i] for i in range(K)) + mu * (sum(p) - 1)
    sols = sp.solve([sp.diff(lagr, pi) for pi in p], p, dict=True)
    ok = len(sols) == 1 and all(
        sp.simplify(sols[0][p[i]] / sols[0][p[0]] - w[i] * sp.sqrt(m[i]) / (w[0] * sp.sqrt(m[0])))
        == 0
        for i in range(K)
    )
    out.append(Check("Lagrange stationarity gives p_i prop. to w_i sqrt(m2_i) (sympy solve)", ok))
    rng = np.random.default_rng(0)
    omega, m2 = rng.uniform(0.1, 3, 50), rng.uniform(0.01, 5, 50)
    ps = optimal_density(omega, m2)
    best = second_moment(ps, omega, m2)
    bound = float(np.sum(omega * np.sqrt(m2)) ** 2)
    out.append(
        Check(
            "p* attains the Cauchy-Schwarz bound (sum w sqrt m2)^2",
            close(best, bound, RTOL),
            f"{best:.12g} vs {bound:.12g}",
        )
    )
    trials = rng.dirichlet(np.ones(50), size=2000)
    trials = np.vstack([trials, np.full(50, 1 / 50), (omega / omega.sum())[None]])
    vals = np.sum(omega**2 * m2 / trials, axis=1)
    out.append(
        Check(
            "no random density beats p* (2002 trials)",
            bool(np.all(vals >= best * (1 - RTOL))),
            f"min ratio {float(vals.min() / best):.4f}",
        )
    )
    mean2, var = rng.uniform(0.0, 2, 50), rng.uniform(0.01, 5, 50)
    p_std = optimal_density(omega, var)
    p_true = optimal_density(omega, var + mean2)
    gain = second_moment(p_std, omega, var + mean2) / second_moment(p_true, omega, var + mean2)
    out.append(
        Check(
            "with non-zero per-lam means, omega*std is not optimal",
            gain > 1 + 1e-6,
            f"omega*std is {gain:.4f}x worse",
        )
    )
    return out


DERIVATION = Derivation(
    name="p11_importance_sampling",
    title="P11 importance-sampling optimum p* prop. to omega sqrt(m2)",
    statement=r"$\mathbb E\|\hat g\|^2=\int\omega^2m_2/p\ge(\int\omega\sqrt{m_2})^2$, equality iff "
    r"$p^*\propto\omega\sqrt{m_2}$; $\omega\cdot\mathrm{std}$ only when per-$\lambda$ mean "
    r"gradients vanish.",
    source="FORMULAS.md §5 P11, §3 item 14 (correcting Sun & Shi eq. 10-11)",
    method="sympy solve of the Lagrangian on 3 points; Cauchy-Schwarz minimality checked "
    "numerically on 2002 densities (rtol 1e-12)",
    kind="numeric",
    checks=_checks,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
