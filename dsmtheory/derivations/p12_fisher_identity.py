r"""P12: Fisher identity for the irreducible DSM variance (Zhang et al.).

$\mathrm{tr}\,\mathbb E\,\mathrm{Var}_{x_0|x_t}(s_c)=D/\sigma^2-\mathrm{tr}\,I_t$ with
$s_c=-\varepsilon/\sigma$. General argument (law of total variance, Tweedie
$\mathbb E[s_c|x_t]=s^*$): $\mathbb E\|s_c\|^2=D/\sigma^2$ and $\mathbb E\|s^*\|^2=\mathrm{tr}I_t$.
Proved in closed form for Gaussian data $N(m,s^2I)$ ($S=\alpha^2s^2+\sigma^2$):
$\mathrm{Var}(\varepsilon|x_t)=1-\sigma^2/S$ per coordinate, $I_t=I/S$, so both sides are
$D(1/\sigma^2-1/S)=D\alpha^2s^2/(\sigma^2S)$, and the posterior mean of $s_c$ is the score.
"""

from __future__ import annotations

import sympy as sp

from ._base import Check, Derivation, is_identity
from ._common import alpha, sigma

s_data = sp.Symbol("s", positive=True)
x, m = sp.symbols("x m", real=True)
D = sp.Symbol("D", positive=True, integer=True)


def _checks() -> list[Check]:
    S = alpha**2 * s_data**2 + sigma**2
    # joint Gaussian (eps, x_t): cov(eps, x_t) = sigma, Var x_t = S
    post_mean_eps = sigma / S * (x - alpha * m)
    post_var_eps = 1 - sigma**2 / S
    log_p = -((x - alpha * m) ** 2) / (2 * S)
    score = sp.diff(log_p, x)
    fisher = sp.integrate(score**2 * sp.exp(log_p) / sp.sqrt(2 * sp.pi * S), (x, -sp.oo, sp.oo))
    out = [
        Check(
            "Tweedie: E[s_c | x_t] = -E[eps|x_t]/sigma = score",
            is_identity(-post_mean_eps / sigma, score),
        ),
        Check(
            "Fisher information of N(alpha m, S) is 1/S (sympy integrate)",
            is_identity(fisher, 1 / S),
        ),
        Check(
            "tr E Var(s_c|x_t) = D/sigma^2 - tr I_t",
            is_identity(D * post_var_eps / sigma**2, D / sigma**2 - D * fisher),
        ),
        Check(
            "= D alpha^2 s^2 / (sigma^2 S) = alpha^2 mmse / sigma^4",
            is_identity(D * post_var_eps / sigma**2, D * alpha**2 * s_data**2 / (sigma**2 * S))
            and is_identity(
                D * post_var_eps / sigma**2, alpha**2 * (D * sigma**2 * s_data**2 / S) / sigma**4
            ),
        ),
    ]
    return out


def expressions() -> dict:
    """Single-Gaussian closed forms for ``single_gaussian(m, s).noised(alpha, sigma)``."""
    S = alpha**2 * s_data**2 + sigma**2
    return {
        "score": (-(x - alpha * m) / S, (x, m, s_data, alpha, sigma)),
        "hessian": (-1 / S, (x, m, s_data, alpha, sigma)),
        "posterior_var": (sigma**2 * s_data**2 / S, (x, m, s_data, alpha, sigma)),
        "posterior_mean": (
            m + alpha * s_data**2 / S * (x - alpha * m),
            (x, m, s_data, alpha, sigma),
        ),
    }


DERIVATION = Derivation(
    name="p12_fisher_identity",
    title="P12 irreducible DSM variance = D/sigma^2 - tr I_t",
    statement=r"$\mathrm{tr}\,\mathbb E\,\mathrm{Var}_{x_0|x_t}(s_c)=D/\sigma^2-\mathrm{tr}I_t"
    r"=\alpha^2\mathrm{mmse}/\sigma^4$ (closed form for Gaussian data; the general case is the "
    r"law of total variance with $\mathbb E[s_c|x_t]=s^*$).",
    source="Zhang et al. 2025 [R]; FORMULAS.md §4, §5 P12",
    method="sympy: Gaussian conditioning, integrate for the Fisher information, cancel",
    kind="symbolic",
    checks=_checks,
    expressions=expressions,
)


verify = DERIVATION.verify  # run this derivation's proof: dsmtheory prove --only NAME
