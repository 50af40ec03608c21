r"""Adaptive noise-level sampling and weighting: Kingma & Gao's adaptive schedule (App. F) as
a pure ``(init, update, sample)`` triple, the online estimate of the optimal multiplier
$c^*(\lambda)$ as a pure ``(init, update, weight)`` triple, and the ALSR (Sun & Shi)
effective-width helpers.

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

Online $c^*$ (FORMULAS.md §8; issue 15 item 3): at the Bayes denoiser the per-sample
unweighted ε-space loss has mean $d_{\rm eff}(\lambda)=D/c^*(\lambda)$, so a per-bin moving
average of a model's losses gives $\hat c^*(\lambda)=D/\hat L(\lambda)$ (biased low by the
model's Fisher divergence, see the derivation ``edm2_learned_weighting``)::

    est = online_c_star(num_bins=32, lam_range=(-8.0, 8.0), decay=0.99, dim=D)
    state = est.init()
    ...  # per-sample loss_i = |eps_i - eps_hat_i|^2 at log-SNR lam_i
    state = est.update(state, lam, loss)
    multiplier = est.weight(state, lam)  # c*_hat(lam): train on multiplier * loss
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import (
    as_float_array,
    check_count,
    check_finite,
    check_positive,
    check_scalar,
    is_concrete,
)

__all__ = [
    "AdaptiveState",
    "AdaptiveSchedule",
    "kingma_gao_adaptive",
    "OnlineCStarState",
    "OnlineCStar",
    "OnlineCStarBins",
    "online_c_star",
    "online_c_star_bins",
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
    lo, hi = check_scalar(lam_min, "lam_min"), check_scalar(lam_max, "lam_max")
    if not lo < hi:
        raise ValueError(f"lam_min must be < lam_max (both finite), got {lam_min} and {lam_max}")
    check_count(num_bins, "num_bins")
    if not 0.0 < check_scalar(decay, "decay") < 1.0:
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


# ---------------------------------------------------------------------------------------
# Online c*(lambda): FORMULAS.md §8, issue 15 item 3
# ---------------------------------------------------------------------------------------
class OnlineCStarState(NamedTuple):
    r"""State of :func:`online_c_star`: per-bin sums with exponential forgetting.

    Every :func:`update` multiplies all four sums by ``decay`` (``decay²`` for
    ``count_sq``) and adds the batch's contribution, so a sample that is ``k`` updates old
    carries the weight ``decay**k``.

    Attributes:
        loss_sum: ``(B,)`` $\sum_i d^{k_i}\ell_i$ over the samples of each bin.
        loss_sq_sum: ``(B,)`` $\sum_i d^{k_i}\ell_i^2$ (for the standard error).
        count: ``(B,)`` $\sum_i d^{k_i}$, the EMA normaliser (Adam's $1-\beta^t$ up to the
            batch count): 0 for a bin that never had a sample.
        count_sq: ``(B,)`` $\sum_i d^{2k_i}$ (effective sample size
            ``count**2 / count_sq``).
        step: number of :func:`update` calls so far.
    """

    loss_sum: jax.Array
    loss_sq_sum: jax.Array
    count: jax.Array
    count_sq: jax.Array
    step: jax.Array


class OnlineCStar(NamedTuple):
    r"""Pure functions of the online $c^*$ estimator (no hidden state; all jittable).

    Attributes:
        init: ``() -> OnlineCStarState``, every bin empty.
        update: ``(state, lam, loss) -> state`` with ``lam`` and ``loss`` of shape ``(n,)``:
            per-sample log-SNR and *unweighted* ε-space loss
            $\|\varepsilon-\hat\varepsilon\|^2$ (summed over the D coordinates).
            Samples with λ outside ``lam_range`` are ignored.
        weight: ``(state, lam) -> multiplier`` of ``lam``'s shape: $\hat c^*(\lambda)$, the
            per-sample multiplier on $\|\varepsilon-\hat\varepsilon\|^2$.
    """

    init: Callable
    update: Callable
    weight: Callable


class OnlineCStarBins(NamedTuple):
    r"""Per-bin read-out of an :class:`OnlineCStarState` (see :func:`online_c_star_bins`).

    Attributes:
        centres: ``(B,)`` bin centres in λ.
        loss: ``(B,)`` $\hat L_b$, the decay-weighted mean loss (NaN where empty).
        c_star: ``(B,)`` $D/\hat L_b$ (NaN where empty; no floor, no interpolation).
        stderr: ``(B,)`` standard error of ``c_star`` by the delta method,
            $\hat c^*\,\mathrm{se}(\hat L)/\hat L$ with
            $\mathrm{se}(\hat L)^2=\hat s^2\sum_iw_i^2/(\sum_iw_i)^2$ and $\hat s^2$ the
            weighted per-sample variance (NaN where empty).
        ess: ``(B,)`` effective number of samples, $(\sum w)^2/\sum w^2$ (0 where empty).
    """

    centres: jax.Array
    loss: jax.Array
    c_star: jax.Array
    stderr: jax.Array
    ess: jax.Array


def _c_star_config(num_bins, lam_range, decay, dim, floor):
    nb = check_count(num_bins, "num_bins")
    try:
        lo, hi = (float(v) for v in lam_range)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lam_range must be a pair (lam_min, lam_max), got {lam_range!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"lam_range must be finite with lam_min < lam_max, got {lam_range!r}")
    if isinstance(decay, bool) or not isinstance(decay, (int, float, np.floating, np.integer)):
        raise TypeError(f"decay must be a real number in [0, 1), got {type(decay).__name__}")
    if not 0.0 <= float(decay) < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    d = None if dim is None else check_count(dim, "dim")
    if isinstance(floor, bool) or not isinstance(floor, (int, float, np.floating, np.integer)):
        raise TypeError(f"floor must be a real number >= 0, got {type(floor).__name__}")
    if not (math.isfinite(float(floor)) and float(floor) >= 0.0):
        raise ValueError(f"floor must be finite and >= 0, got {floor!r}")
    return nb, lo, hi, float(decay), d, float(floor)


def _bin_centres(nb: int, lo: float, hi: float) -> jax.Array:
    width = (hi - lo) / nb
    return lo + (jnp.arange(nb) + 0.5) * width


def _bin_read(state: OnlineCStarState):
    """Per-bin mean loss and whether the bin holds data (count above the smallest normal
    float: an unvisited bin decays to 0 after ~log(tiny)/log(decay) updates)."""
    tiny = jnp.finfo(state.count.dtype).tiny
    full = state.count > tiny
    mean = state.loss_sum / jnp.where(full, state.count, 1.0)
    return mean, full


def online_c_star(
    num_bins: int = 32,
    lam_range: tuple[float, float] = (-8.0, 8.0),
    decay: float = 0.99,
    *,
    dim: int | None = None,
    floor: float = 1.0,
) -> OnlineCStar:
    r"""Online estimate of the variance-optimal multiplier $c^*(\lambda)$ from a model's own
    per-sample ε-space losses (FORMULAS.md §6 (c), §8; issue 15 item 3).

    At the Bayes denoiser $\mathbb E[\|\varepsilon-\hat\varepsilon\|^2\mid\lambda]
    =d_{\rm eff}(\lambda)=D/c^*(\lambda)$ (derivation ``deff_gaussian``), so per log-SNR bin

    $$\hat L_b=\frac{\sum_id^{k_i}\ell_i}{\sum_id^{k_i}},\qquad
    \hat c^*(\lambda_b)=\frac{D}{\hat L_b},$$

    a moving average of the per-bin mean loss with decay $d$ ($k_i$ = age of sample $i$ in
    updates). The denominator is the same moving average of the sample counts, so bins that
    start empty are bias-corrected exactly as Adam's EMA is ($\hat m=m/(1-\beta^t)$, to
    which this reduces when a bin gets the same number of samples every update); batches
    count by how many of their samples fell in the bin. ``decay=0`` keeps only the latest
    batch.

    **Reading it out** (:attr:`OnlineCStar.weight`): $\log\hat L$ is interpolated linearly
    in λ between the centres of the bins that hold data; an empty bin between two such
    bins takes the interpolated value, λ beyond the outermost non-empty centres (or beyond
    ``lam_range``) takes the nearest non-empty bin's value (held constant). Then
    $\hat c^*=\max(D/\hat L,\ \text{floor})$; the default floor 1 is the exact lower
    bound $c^*\ge1$ ($d_{\rm eff}\le D$), reached by a model no better than
    $\hat\varepsilon=0$. Before any data (every bin empty) the multiplier is 1, the
    $\sigma^2$ heuristic. $\hat L$ is floored at the smallest normal float, so a zero
    loss gives a large finite multiplier, not inf.

    **Bias.** For a model with Fisher divergence $\mathrm{FD}_t$ the mean loss is
    $d_{\rm eff}+\sigma^2\mathrm{FD}_t$, so $\hat c^*$ estimates
    $c^*d_{\rm eff}/(d_{\rm eff}+\sigma^2\mathrm{FD}_t)\le c^*$ (derivation
    ``edm2_learned_weighting``); a bin also averages $d_{\rm eff}$ over its width. Its
    Monte Carlo error: :func:`online_c_star_bins`.

    Args:
        num_bins: number of equal-width log-SNR bins.
        lam_range: ``(lam_min, lam_max)``, finite, lam_min < lam_max.
        decay: forgetting factor in [0, 1).
        dim: the data dimension D (keyword-only; the loss is a sum over D coordinates, and
            $c^*=D/d_{\rm eff}$ needs it — the estimator cannot infer it from scalar losses).
            ``None`` (the default): $c^*$ up to a constant factor, $\hat c\propto1/\hat L$
            scaled to 1 at the geometric mean of the non-empty bins' losses — all that a
            scale-invariant optimizer such as Adam uses; ``floor`` is then not applied.
        floor: lower bound on the returned multiplier when ``dim`` is given (>= 0; 0
            disables it).

    Returns:
        :class:`OnlineCStar` ``(init, update, weight)``.

    Raises:
        ValueError: a bad bin count, range, decay, dim or floor; at ``update``, ``lam`` and
            ``loss`` of different sizes, non-finite λ, or a negative or non-finite loss
            (checked for concrete arrays; under ``jit`` the inputs are not inspected).
        TypeError: a non-numeric decay or floor.

    Example:
        >>> est = online_c_star(16, (-6.0, 6.0), 0.9, dim=2)
        >>> state = est.update(est.init(), jnp.array([0.1, 0.2]), jnp.array([1.0, 1.5]))
        >>> round(float(est.weight(state, 0.0)), 6)  # 2 / 1.25
        1.6
    """
    nb, lo, hi, d, dm, fl = _c_star_config(num_bins, lam_range, decay, dim, floor)
    width = (hi - lo) / nb
    centres = _bin_centres(nb, lo, hi)
    dtype = jnp.result_type(float)

    def init() -> OnlineCStarState:
        z = jnp.zeros((nb,), dtype)
        return OnlineCStarState(z, z, z, z, jnp.zeros((), jnp.int32))

    def update(state: OnlineCStarState, lam, loss) -> OnlineCStarState:
        lam = jnp.ravel(jnp.asarray(lam))
        loss = jnp.ravel(jnp.asarray(loss))
        if is_concrete((lam, loss)):
            if lam.shape != loss.shape:
                raise ValueError(
                    f"lam and loss must have the same size, got {lam.shape} and {loss.shape}"
                )
            check_finite(lam, "lam")
            check_positive(loss, "loss", allow_zero=True)
        return _update(state, lam, loss)

    @jax.jit
    def _update(state, lam, loss):
        inside = (lam >= lo) & (lam <= hi)
        b = jnp.clip(jnp.floor((lam - lo) / width).astype(jnp.int32), 0, nb - 1)
        one = inside.astype(state.count.dtype)
        ls = loss.astype(state.count.dtype) * one
        add = jnp.zeros((nb,), state.count.dtype)
        return OnlineCStarState(
            d * state.loss_sum + add.at[b].add(ls),
            d * state.loss_sq_sum + add.at[b].add(ls * ls),
            d * state.count + add.at[b].add(one),
            d * d * state.count_sq + add.at[b].add(one),
            state.step + 1,
        )

    @jax.jit
    def weight(state: OnlineCStarState, lam):
        lam = jnp.asarray(lam, dtype=state.count.dtype)
        mean, full = _bin_read(state)
        tiny = jnp.finfo(mean.dtype).tiny
        logl = jnp.log(jnp.maximum(mean, tiny))
        idx = jnp.arange(nb)
        # nearest non-empty bin at or left / right of each bin (-1 / nb when there is none)
        left = jax.lax.cummax(jnp.where(full, idx, -1), axis=0)
        right = jax.lax.cummin(jnp.where(full, idx, nb), axis=0, reverse=True)
        has_l, has_r = left >= 0, right < nb
        li, ri = jnp.clip(left, 0, nb - 1), jnp.clip(right, 0, nb - 1)
        gap = jnp.maximum(ri - li, 1)
        frac = (idx - li) / gap
        between = (1.0 - frac) * logl[li] + frac * logl[ri]
        filled = jnp.where(
            full, logl, jnp.where(has_l & has_r, between, jnp.where(has_l, logl[li], logl[ri]))
        )
        logl_q = jnp.interp(lam, centres.astype(lam.dtype), filled)
        if dm is None:  # c* up to a constant: 1 at the geometric mean of the bins' losses
            n_full = jnp.maximum(jnp.sum(full), 1)
            log_scale = jnp.sum(jnp.where(full, logl, 0.0)) / n_full
            c = jnp.exp(log_scale - logl_q)
            return jnp.where(jnp.any(full), c, jnp.ones_like(c))
        c = dm * jnp.exp(-logl_q)
        c = jnp.where(jnp.any(full), c, jnp.ones_like(c))
        return jnp.maximum(c, fl)

    return OnlineCStar(init, update, weight)


def online_c_star_bins(
    state: OnlineCStarState, lam_range: tuple[float, float], *, dim: int
) -> OnlineCStarBins:
    r"""Per-bin estimates of :func:`online_c_star`'s state, with standard errors: what the
    estimator knows at its bin centres before interpolation and flooring.

    The samples of a bin are i.i.d. given the bin (fresh $x_0,\varepsilon$ and λ uniform or
    as drawn), so $\hat L_b$ is a weighted mean with weights $w_i=d^{k_i}$:
    $\mathrm{se}(\hat L_b)^2=\hat s_b^2\sum w_i^2/(\sum w_i)^2$ with
    $\hat s_b^2=\sum w_i\ell_i^2/\sum w_i-\hat L_b^2$, and
    $\mathrm{se}(\hat c^*_b)=\hat c^*_b\,\mathrm{se}(\hat L_b)/\hat L_b$.

    Args:
        state: an :class:`OnlineCStarState`.
        lam_range: the estimator's ``lam_range``.
        dim: the estimator's ``dim``.

    Returns:
        :class:`OnlineCStarBins` (NaN for empty bins).
    """
    nb = int(np.shape(state.count)[0])
    _, lo, hi, _, dm, _ = _c_star_config(nb, lam_range, 0.0, dim, 0.0)
    if dm is None:
        raise ValueError("dim must be the data dimension D here (c* = D / L per bin), got None")
    mean, full = _bin_read(state)
    cnt = jnp.where(full, state.count, 1.0)
    var = jnp.maximum(state.loss_sq_sum / cnt - mean**2, 0.0)
    ess = jnp.where(full, state.count**2 / jnp.where(full, state.count_sq, 1.0), 0.0)
    se_l = jnp.sqrt(var / jnp.where(full, ess, 1.0))
    c = dm / mean
    nan = jnp.full_like(mean, jnp.nan)
    return OnlineCStarBins(
        _bin_centres(nb, lo, hi),
        jnp.where(full, mean, nan),
        jnp.where(full, c, nan),
        jnp.where(full, c * se_l / mean, nan),
        ess,
    )


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
    x = as_float_array(x, "x")
    w = as_float_array(weights, "weights")
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
