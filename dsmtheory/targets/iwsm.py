r"""Importance-weighted score matching (Wang et al. 2025, FORMULAS.md §3 item 16): spatial
importance weights $w=p_t/p_{B_t}$ for a proposal mixture $B$, self-normalised; see
:func:`iwsm_variance_comparison` for exactly what is compared.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import expectations
from .._validation import check_finite
from ..expectations import Estimate
from ..mixture import GaussianMixture, check_mixture
from ._common import check_alpha_sigma, rotate_in, score_parts
from .order_k import target_trace_impl

__all__ = [
    "IWSMComparison",
    "iwsm_log_weights",
    "self_normalized_estimate",
    "iwsm_variance_comparison",
]


def _f64(v):
    return jnp.asarray(v, dtype=jnp.result_type(float))


def _check_proposal(gm, proposal):
    check_mixture(gm)
    check_mixture(proposal, "proposal")
    if proposal.dim != gm.dim:
        raise ValueError(
            f"proposal must have the same dimension as gm: proposal.dim = {proposal.dim}, "
            f"gm.dim = {gm.dim}"
        )


def iwsm_log_weights(gm: GaussianMixture, proposal: GaussianMixture, x_t, alpha, sigma):
    r"""Log spatial importance weights $\log w=\log p_t(x_t)-\log p_{B_t}(x_t)$ of IWSM
    (Wang et al. 2025; FORMULAS.md §3 item 16), both mixtures noised by the same
    $(\alpha,\sigma)$. ``(..., D)`` → ``(...)``."""
    _check_proposal(gm, proposal)
    check_alpha_sigma(alpha, sigma)
    return _log_w_jit(gm, proposal, gm.check_points(x_t, "x_t"), alpha, sigma)


@jax.jit
def _log_w_jit(gm, proposal, x_t, alpha, sigma):
    return gm.noised(alpha, sigma).log_prob(x_t) - proposal.noised(alpha, sigma).log_prob(x_t)


def self_normalized_estimate(log_weights, values) -> Estimate:
    r"""Self-normalised importance estimate $\hat F=\sum_iw_if_i/\sum_iw_i$ (weights by
    softmax of the log-weights), with the delta-method standard error
    $\sqrt{\sum_i\bar w_i^2(f_i-\hat F)^2}$, $\bar w=w/\sum w$ (FORMULAS.md §3 item 16)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    f = np.asarray(values, dtype=np.float64)
    if lw.shape != f.shape or lw.ndim != 1:
        raise ValueError(
            f"log_weights and values must be 1-D of equal length, got {lw.shape}, {f.shape}"
        )
    check_finite(lw, "log_weights")
    check_finite(f, "values")
    wn = np.exp(lw - lw.max())
    wn /= wn.sum()
    est = float(np.sum(wn * f))
    se = float(np.sqrt(np.sum(wn**2 * (f - est) ** 2)))
    return Estimate(est, se, "monte_carlo", f"self-normalised importance sampling, n={f.shape[0]}")


class IWSMComparison(NamedTuple):
    r"""Per-sample variances of three estimators of the same objective
    $F(t)=\mathbb E_{p_t}\|s_\theta-s^*\|^2$ for a fixed model $s_\theta$ at one noise level.

    Attributes:
        objective: $F$.
        irreducible: $R_1$ (the DSM loss estimates $F+R_1$; same θ-gradient).
        var_dsm: $\mathrm{Var}\|s_\theta(x_t)-h_1\|^2$, $x_0\sim p_0$ (plain DSM).
        var_sm: $\mathrm{Var}_{p_t}\|s_\theta-s^*\|^2$ (oracle: $x_t\sim p_t$, exact score).
        var_iwsm: $\mathbb E_{p_{B_t}}[w^2(f-F)^2]$, the asymptotic per-sample variance of the
            self-normalised IWSM estimator ($x_t\sim p_{B_t}$, exact score).
        ess_fraction: $1/\mathbb E_{p_{B_t}}[w^2]$, the effective sample size per draw.
        method: the engine's account of the rule.
    """

    objective: float
    irreducible: float
    var_dsm: float
    var_sm: float
    var_iwsm: float
    ess_fraction: float
    method: str


def _gaussian_fit(gm: GaussianMixture) -> GaussianMixture:
    c = np.asarray(gm.covariance())
    return GaussianMixture([1.0], np.asarray(gm.mean())[None], c[None])


def iwsm_variance_comparison(
    gm: GaussianMixture,
    proposal: GaussianMixture,
    alpha,
    sigma,
    *,
    model: GaussianMixture | None = None,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    grid_size: int | None = None,
) -> IWSMComparison:
    r"""Exact variance comparison of IWSM against plain DSM at one noise level (Wang et al.
    2025; FORMULAS.md §3 item 16), every integral over $x_t\sim p_t$ by the engine.

    The fixed model is $s_\theta=\nabla\log(\text{model noised by }(\alpha,\sigma))$, by
    default the moment-matched Gaussian of ``gm``. With $f(x)=\|s_\theta(x)-s^*(x)\|^2$ and
    $w=p_t/p_{B_t}$:

    * plain DSM: $\mathrm{Var}\|s_\theta(x_t)-h_1\|^2$ over $x_0\sim p_0,\varepsilon$, from
      $\mathbb E[\|s_\theta-u\|^4\mid x_t]$ in closed form per component
      ($(\|m\|^2+\mathrm{tr}C)^2+4m^\top Cm+2\mathrm{tr}C^2$) integrated over $x_t$;
    * IWSM (self-normalised, exact score, $x_t\sim p_{B_t}$):
      $\mathbb E_{p_t}[w(f-F)^2]=\int p_t^2(f-F)^2/p_{B_t}\,dx$;
    * oracle SM: $\mathbb E_{p_t}[(f-F)^2]$.

    Two passes (the second needs $F$). ``grid_size`` is deprecated and ignored. The Monte
    Carlo sanity check of the deterministic rules is off for the second pass, the terms in
    the weight $w$, whose Monte Carlo variance is infinite when the proposal is narrower
    than $p_t$.
    """
    _check_proposal(gm, proposal)
    check_alpha_sigma(alpha, sigma)
    if model is None:
        model = _gaussian_fit(gm)
    _check_proposal(gm, model)
    if grid_size is not None:
        warnings.warn(
            "grid_size is deprecated and ignored: the engine's rules replace the grid",
            DeprecationWarning,
            stacklevel=2,
        )
    alpha, sigma = _f64(alpha), _f64(sigma)
    law = gm.noised(alpha, sigma)
    opts = {"method": method, "key": key, "num_samples": num_samples}
    args = (alpha, sigma, gm, proposal, model)
    first = expectations.expect(_iwsm_first, law, args, **opts)
    f_mean, r1, m4, f2 = (float(v) for v in first.value)
    second = expectations.expect(
        _iwsm_weighted, law, (*args, _f64(f_mean)), sanity_check=False, **opts
    )
    w1, iw = (float(v) for v in second.value)
    return IWSMComparison(
        f_mean,
        r1,
        m4 - (f_mean + r1) ** 2,
        f2 - f_mean**2,
        iw,
        1.0 / w1,
        first.rule,
    )


def _iwsm_parts(x, alpha, sigma, gm, proposal, model):
    pt = gm.noised(alpha, sigma)
    bt = proposal.noised(alpha, sigma)
    mt = model.noised(alpha, sigma)
    lp = pt.log_prob(x)
    d = mt.score(x)
    s = pt.score(x)
    f = jnp.sum((d - s) ** 2, -1)
    w = jnp.exp(lp - bt.log_prob(x))
    return f, d, w


def _iwsm_first(x, alpha, sigma, gm, proposal, model):
    """Per point: f, tr Var(h1|x), E[||s_theta - u||^4 | x] and f^2 (``(B, 4)``)."""
    f, d, w = _iwsm_parts(x, alpha, sigma, gm, proposal, model)
    r, g, c = score_parts(gm, x, alpha, sigma)
    trv = target_trace_impl(gm, x, alpha, sigma, 1)
    mres = d[..., None, :] - g  # (B, K, D): mean of s_theta - u in component k
    mr = rotate_in(gm, mres)
    trc = jnp.sum(c, -1)
    m2 = jnp.sum(mres**2, -1)
    e4 = (m2 + trc[None]) ** 2 + 4 * jnp.sum(mr * mr * c[None], -1) + 2 * jnp.sum(c * c, -1)[None]
    e4 = jnp.sum(r * e4, -1)
    return jnp.stack([f, trv, e4, f * f], axis=-1)


def _iwsm_weighted(x, alpha, sigma, gm, proposal, model, f_mean):
    """Per point: w and w (f - F)^2 (centred, so nothing cancels), ``(B, 2)``."""
    f, _, w = _iwsm_parts(x, alpha, sigma, gm, proposal, model)
    return jnp.stack([w, w * (f - f_mean) ** 2], axis=-1)
