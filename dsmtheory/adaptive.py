r"""Adaptive noise-level sampling: Kingma & Gao's adaptive schedule (App. F) as a pure
``(init, update, sample)`` triple, and the ALSR (Sun & Shi) effective-width helpers.

Kingma–Gao adaptive schedule (FORMULAS.md §3.13): the target density is
$p(\lambda)\propto\mathbb E_x[w(\lambda)\,\mathcal L'(\lambda)]$, estimated by a per-bin
exponential moving average (EMA) of $w\cdot\tfrac12\|\varepsilon-\hat\varepsilon\|^2$ over
100 equal-width bins on $[\lambda_{min},\lambda_{max}]$; the density is piecewise constant
$\propto$ EMA (× bin width), sampled by choosing a bin and then a uniform point inside it;
every sample is multiplied by the importance weight $w/p$. The paper does not give the EMA
decay; 0.99 is this module's default.

Usage (optax style)::

    sched = kingma_gao_adaptive(-10.0, 10.0)
    state = sched.init()
    lam, p = sched.sample(state, key, (batch,))
    ...  # loss_i = w(lam_i) * 0.5 * |eps - eps_hat|^2 ; train on loss_i / p
    state = sched.update(state, lam, loss)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_finite, check_positive, is_concrete

__all__ = [
    "AdaptiveState",
    "AdaptiveSchedule",
    "kingma_gao_adaptive",
    "total_variation",
    "alsr_effective_width",
    "weighted_std",
    "WeightedStd",
]


class AdaptiveState(NamedTuple):
    """State of the Kingma–Gao adaptive schedule.

    Attributes:
        ema: ``(B,)`` per-bin EMA of the weighted per-sample loss
            $w\\cdot\\tfrac12\\|\\varepsilon-\\hat\\varepsilon\\|^2$ (positive).
        counts: ``(B,)`` how many updates each bin has received.
        step: number of :func:`update` calls so far.
    """

    ema: jax.Array
    counts: jax.Array
    step: jax.Array


class AdaptiveSchedule(NamedTuple):
    """Pure functions of the adaptive schedule (no hidden state).

    Attributes:
        init: ``() -> AdaptiveState`` (EMA = ``init_value`` everywhere: uniform density).
        update: ``(state, lam, loss) -> state``; ``lam`` and ``loss`` of shape ``(n,)``: each
            bin hit by the batch moves its EMA towards the batch mean of its losses,
            ``ema ← decay·ema + (1 − decay)·mean``; bins not hit are unchanged.
        sample: ``(state, key, shape) -> (lam, p)``: λ draws and their density p(λ).
        density: ``(state, lam) -> p(lam)``, piecewise constant, zero outside the range.
        importance_weight: ``(state, lam, w) -> w / p`` with ``w`` an array of total weights.
        edges: ``(B + 1,)`` bin edges.
    """

    init: Callable
    update: Callable
    sample: Callable
    density: Callable
    importance_weight: Callable
    edges: jax.Array


def kingma_gao_adaptive(
    lam_min: float,
    lam_max: float,
    num_bins: int = 100,
    decay: float = 0.99,
    init_value: float = 1.0,
    floor: float = 0.0,
) -> AdaptiveSchedule:
    r"""Kingma & Gao's adaptive noise schedule (App. F; FORMULAS.md §3.13).

    $$p(\lambda)=\frac{\max(\mathrm{ema}_b,\,f\,\overline{\mathrm{ema}})}
    {\sum_{b'}\max(\mathrm{ema}_{b'},\,f\,\overline{\mathrm{ema}})\,\Delta}
    \quad\text{for }\lambda\text{ in bin }b,$$

    with Δ the common bin width and $f$ = ``floor`` (0: the paper's rule; a small floor
    keeps every bin reachable).

    Args:
        lam_min, lam_max: the λ range, lam_min < lam_max.
        num_bins: number of equal-width bins (paper: 100).
        decay: EMA decay in (0, 1) (not given in the paper; 0.99 suggested).
        init_value: initial EMA value (> 0) of every bin.
        floor: relative floor in [0, 1) on each bin's EMA, as a fraction of the mean EMA.

    Returns:
        :class:`AdaptiveSchedule`.

    Raises:
        ValueError: for a bad range, bin count, decay, init value or floor.
    """
    lo, hi = float(lam_min), float(lam_max)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"lam_min must be < lam_max (both finite), got {lam_min} and {lam_max}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    if not 0.0 < float(decay) < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay!r}")
    check_positive(init_value, "init_value")
    if not 0.0 <= float(floor) < 1.0:
        raise ValueError(f"floor must be in [0, 1), got {floor!r}")
    nb = int(num_bins)
    width = (hi - lo) / nb
    edges = jnp.linspace(lo, hi, nb + 1)
    d = float(decay)

    def _bin(lam):
        return jnp.clip(jnp.floor((lam - lo) / width).astype(jnp.int32), 0, nb - 1)

    def _probs(state):
        ema = jnp.maximum(state.ema, floor * jnp.mean(state.ema))
        return ema / jnp.sum(ema)

    def init() -> AdaptiveState:
        return AdaptiveState(
            jnp.full((nb,), float(init_value)),
            jnp.zeros((nb,), jnp.int32),
            jnp.zeros((), jnp.int32),
        )

    def update(state: AdaptiveState, lam, loss) -> AdaptiveState:
        lam = jnp.ravel(jnp.asarray(lam))
        loss = jnp.ravel(jnp.asarray(loss))
        if is_concrete((lam, loss)):
            if lam.shape != loss.shape:
                raise ValueError(
                    f"lam and loss must have the same size, got {lam.shape} and {loss.shape}"
                )
            check_finite(lam, "lam")
            check_positive(loss, "loss", allow_zero=True)
        b = _bin(lam)
        sums = jnp.zeros((nb,), loss.dtype).at[b].add(loss)
        n = jnp.zeros((nb,), jnp.int32).at[b].add(1)
        hit = n > 0
        mean = sums / jnp.maximum(n, 1)
        ema = jnp.where(hit, d * state.ema + (1.0 - d) * mean, state.ema)
        return AdaptiveState(ema, state.counts + hit.astype(jnp.int32), state.step + 1)

    def density(state: AdaptiveState, lam):
        lam = jnp.asarray(lam)
        p = _probs(state)[_bin(lam)] / width
        return jnp.where((lam >= lo) & (lam <= hi), p, 0.0)

    def sample(state: AdaptiveState, key, shape=()):
        # inverse CDF of the piecewise-constant density: pick the bin by the cumulative
        # probabilities, then a uniform point inside it
        u = jax.random.uniform(key, shape, dtype=edges.dtype)
        cdf = jnp.cumsum(_probs(state))
        b = jnp.clip(jnp.searchsorted(cdf, u * cdf[-1], side="right"), 0, nb - 1)
        lower = jnp.where(b > 0, cdf[jnp.maximum(b - 1, 0)], 0.0)
        frac = jnp.clip((u * cdf[-1] - lower) / (cdf[b] - lower), 0.0, 1.0)
        lam = lo + (b + frac) * width
        return lam, density(state, lam)

    def importance_weight(state: AdaptiveState, lam, w):
        return jnp.asarray(w) / density(state, lam)

    return AdaptiveSchedule(init, update, sample, density, importance_weight, edges)


def total_variation(edges, probs_a, probs_b) -> float:
    """Total-variation distance ½Σ|a − b| between two bin-probability vectors on the same
    ``edges`` (each normalised here)."""
    a = np.asarray(probs_a, dtype=np.float64)
    b = np.asarray(probs_b, dtype=np.float64)
    if a.shape != b.shape or a.shape[0] != np.size(edges) - 1:
        raise ValueError(f"probs_a and probs_b must both have shape ({np.size(edges) - 1},)")
    return 0.5 * float(np.sum(np.abs(a / a.sum() - b / b.sum())))


# ---------------------------------------------------------------------------------------
# ALSR (Sun & Shi), FORMULAS.md §3.12 / P15
# ---------------------------------------------------------------------------------------
def alsr_effective_width(p_std, alpha):
    r"""Width of ALSR-Gaussian on EDM's log-normal, in $\ln\tilde\sigma$ units:

    $$P_s^{eff}=(P_s^{-2}+8\alpha)^{-1/2}.$$

    Derivation: $\lambda=-2\ln\tilde\sigma\sim N(m,4P_s^2)$; multiplying by
    $e^{-\alpha(\lambda-\mu)^2}$ adds $2\alpha$ to the precision of λ, giving λ-variance
    $(1/(4P_s^2)+2\alpha)^{-1}$, i.e. $\ln\tilde\sigma$-variance $(P_s^{-2}+8\alpha)^{-1}$
    (conditional on the batch mean μ, which only shifts the centre). Values 1.136, 0.956,
    0.818 for α = 0.01, 0.05, 0.1 at $P_s=1.2$.
    """
    check_positive(p_std, "p_std")
    check_positive(alpha, "alpha", allow_zero=True)
    return (jnp.asarray(p_std) ** -2 + 8.0 * jnp.asarray(alpha)) ** -0.5


class WeightedStd(NamedTuple):
    """A weighted standard deviation with its standard error.

    Attributes:
        value: mean over batches of each batch's weighted std.
        stderr: standard error of that mean (std over batches / √batches).
        ess: mean effective sample size per batch, $(\\sum w)^2/\\sum w^2$.
    """

    value: float
    stderr: float
    ess: float


def weighted_std(x, weights) -> WeightedStd:
    r"""Weighted std of ``x`` ``(batches, n)`` under ``weights`` ``(batches, n)``, one value
    per batch (each batch has its own weights, e.g. ALSR's batch-mean centre), averaged
    over batches; the standard error is the between-batch spread over $\sqrt{\text{batches}}$.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.ndim != 2 or x.shape != w.shape or x.shape[0] < 2:
        raise ValueError(
            f"x and weights must have the same shape (batches >= 2, n), got {x.shape}, {w.shape}"
        )
    check_positive(w, "weights", allow_zero=True)
    ws = w.sum(1, keepdims=True)
    m = (w * x).sum(1, keepdims=True) / ws
    std = np.sqrt((w * (x - m) ** 2).sum(1) / ws[:, 0])
    ess = ws[:, 0] ** 2 / (w**2).sum(1)
    return WeightedStd(
        float(std.mean()), float(std.std(ddof=1) / math.sqrt(len(std))), float(ess.mean())
    )
