r"""Sample-quality metrics: energy distance (exact, blocked, and sliced), exact NLL under the
true mixture, and mode coverage (FORMULAS.md §7, the Zhang et al. protocol).

The **squared energy distance** (Székely & Rizzo) between the laws of $X$ and $Y$ is

$$\mathcal E(X,Y)=2\,\mathbb E\|X-Y\|-\mathbb E\|X-X'\|-\mathbb E\|Y-Y'\|\ \ge 0,$$

zero if and only if the laws agree. From samples $x_{1:n}$, $y_{1:m}$ the **V-statistic**
averages over all ordered pairs, diagonal included,

$$\hat{\mathcal E}_V=\frac{2}{nm}\sum_{i,j}\|x_i-y_j\|-\frac{1}{n^2}\sum_{i,j}\|x_i-x_j\|
-\frac{1}{m^2}\sum_{i,j}\|y_i-y_j\|,$$

and the **U-statistic** (unbiased) divides the within-sample sums by $n(n-1)$ and $m(m-1)$
instead (the diagonal terms are zero). These are exactly ``dcor.energy_distance`` with
``estimation_stat="V_STATISTIC"`` / ``"U_STATISTIC"``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._numerics import lead
from ._validation import check_key, check_scalar
from .mixture import GaussianMixture, check_mixture

__all__ = [
    "energy_distance",
    "sliced_energy_distance",
    "SlicedEnergyDistance",
    "nll",
    "NLL",
    "mode_coverage",
    "ModeCoverage",
]

# Pairs per block when ``block_size`` is left to its default: 2**22 distances (32 MiB in
# float64 for the (block, m) distance tile) keeps memory O(N * block) and flat in N.
_PAIRS_PER_BLOCK = 2**22


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------
def _as_samples(x, name: str, *, min_rows: int = 1) -> jax.Array:
    """``(N, D)`` samples from an ``(N, D)`` or ``(N,)`` array, checked at the boundary."""
    if isinstance(x, jax.core.Tracer):
        return x if x.ndim == 2 else x.reshape(x.shape[0], -1)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be an array of real numbers") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) or (N,), got {np.shape(x)}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} must hold at least {min_rows} sample(s), got shape {np.shape(x)}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one dimension, got shape {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, but it contains NaN or inf")
    out = jnp.asarray(x)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        out = out.astype(jnp.result_type(float))
    return out.reshape(arr.shape)


def _check_same_dim(x: jax.Array, y: jax.Array, xname: str = "x", yname: str = "y") -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{xname} and {yname} must have the same number of dimensions, "
            f"got {xname} {tuple(x.shape)} and {yname} {tuple(y.shape)}"
        )


def _mixture_samples(gm, samples) -> jax.Array:
    """``samples`` as an ``(n, D)`` array matching the mixture ``gm``, or a clear error."""
    check_mixture(gm)
    x = _as_samples(samples, "samples")
    if x.shape[1] != gm.dim:
        raise ValueError(
            f"samples must have shape (n, {gm.dim}) to match the mixture, got {tuple(x.shape)}"
        )
    return x


def _check_block_size(block_size) -> None:
    if block_size is None:
        return
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"block_size must be a positive integer or None, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")


# ---------------------------------------------------------------------------------------
# Exact energy distance, blocked
# ---------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("block_size",))
def _distance_sum(a: jax.Array, b: jax.Array, block_size: int) -> jax.Array:
    r"""$\sum_{i,j}\|a_i-b_j\|$ over rows of ``a`` in blocks of ``block_size``.

    Only a ``(block_size, M)`` tile of distances exists at a time; rows of ``a`` are padded
    to a whole number of blocks and the padding is masked out of each block's sum.
    """
    n, d = a.shape
    num_blocks = -(-n // block_size)
    pad = num_blocks * block_size - n
    blocks = jnp.pad(a, ((0, pad), (0, 0))).reshape(num_blocks, block_size, d)
    mask = (jnp.arange(num_blocks * block_size) < n).astype(a.dtype)
    mask = mask.reshape(num_blocks, block_size)

    b_t = b.T  # (D, M): one contiguous row per coordinate, so each tile op vectorizes

    def block_sum(args):
        blk, m = args
        sq = jnp.zeros((block_size, b.shape[0]), a.dtype)
        for k in range(d):  # D is static; a Python loop keeps tiles 2-D (block, M)
            diff = blk[:, k, None] - b_t[k][None, :]
            sq = sq + diff * diff
        return jnp.sum(jnp.sum(jnp.sqrt(sq), axis=1) * m)

    return jnp.sum(jax.lax.map(block_sum, (blocks, mask)))


def _auto_block(n: int, m: int, block_size: int | None) -> int:
    if block_size is None:
        block_size = max(1, _PAIRS_PER_BLOCK // max(m, 1))
    return int(min(block_size, n))


def energy_distance(x, y, *, block_size: int | None = None, unbiased: bool = False) -> jax.Array:
    r"""Squared energy distance between two samples, exact, computed in blocks.

    $$\hat{\mathcal E}=\frac{2}{nm}\sum_{i,j}\|x_i-y_j\|-\frac{1}{c_n}\sum_{i,j}\|x_i-x_j\|
    -\frac{1}{c_m}\sum_{i,j}\|y_i-y_j\|,$$

    with $c_n=n^2$ (V-statistic, the default; DESIGN.md contract) or $c_n=n(n-1)$
    (U-statistic, ``unbiased=True``, the estimator of Zhang et al. 2508.01597, FORMULAS.md
    §7). Equal to ``dcor.energy_distance(x, y, estimation_stat=...)`` to rounding.

    Memory is $O(\text{block}\times\max(n,m))$: each of the three double sums is taken over a
    ``(block_size, m)`` tile of distances at a time (``jax.lax.map`` over row blocks).
    Time is $O((n+m)^2 D)$.

    Args:
        x: ``(n, D)`` samples (or ``(n,)`` for $D=1$).
        y: ``(m, D)`` samples with the same ``D``.
        block_size: rows per block; ``None`` picks ``2**22 // max(n, m)`` (about 4 million
            distances, 32 MiB in float64, per tile).
        unbiased: U-statistic instead of the V-statistic (needs $n,m\ge2$).

    Returns:
        Scalar array in the inputs' floating dtype. The V-statistic is $\ge0$ up to rounding;
        the U-statistic can be slightly negative when the laws agree.

    Raises:
        ValueError: shapes that are not ``(N, D)``, different ``D``, empty samples, fewer
            than two samples with ``unbiased=True``, non-finite values, bad ``block_size``.
        TypeError: non-numeric input or a non-integer ``block_size``.

    Example:
        >>> import jax.numpy as jnp
        >>> float(energy_distance(jnp.array([[0.0], [1.0]]), jnp.array([[0.0], [1.0]])))
        0.0
    """
    min_rows = 2 if unbiased else 1
    x = _as_samples(x, "x", min_rows=min_rows)
    y = _as_samples(y, "y", min_rows=min_rows)
    _check_same_dim(x, y)
    _check_block_size(block_size)
    dtype = jnp.result_type(x.dtype, y.dtype)
    x, y = x.astype(dtype), y.astype(dtype)
    n, m = x.shape[0], y.shape[0]
    big = max(n, m)
    s_xy = _distance_sum(x, y, _auto_block(n, big, block_size))
    s_xx = _distance_sum(x, x, _auto_block(n, big, block_size))
    s_yy = _distance_sum(y, y, _auto_block(m, big, block_size))
    c_x = n * (n - 1) if unbiased else n * n
    c_y = m * (m - 1) if unbiased else m * m
    return 2.0 * s_xy / (n * m) - s_xx / c_x - s_yy / c_y


# ---------------------------------------------------------------------------------------
# Sliced energy distance: 1-D projections, O(N log N) by sorting
# ---------------------------------------------------------------------------------------
def _sorted_pair_sum(z: jax.Array) -> jax.Array:
    r"""$\sum_{i<j}|z_i-z_j|$ along the last axis: with $z_{(k)}$ sorted ascending
    (0-based), $\sum_k z_{(k)}(2k-n+1)$. ``(..., n)`` → ``(...)``."""
    n = z.shape[-1]
    coef = 2.0 * jnp.arange(n, dtype=z.dtype) - (n - 1)
    return jnp.sum(jnp.sort(z, axis=-1) * lead(coef, z.ndim), axis=-1)


def _energy_distance_1d(u: jax.Array, v: jax.Array, unbiased: bool) -> jax.Array:
    """Exact 1-D energy distances along the last axis from three sorted pair sums; the cross
    sum is ``S(u ∪ v) - S(u) - S(v)``, each ``S`` a sum over unordered pairs."""
    n, m = u.shape[-1], v.shape[-1]
    s_uu = _sorted_pair_sum(u)
    s_vv = _sorted_pair_sum(v)
    s_uv = _sorted_pair_sum(jnp.concatenate([u, v], axis=-1)) - s_uu - s_vv
    c_u = n * (n - 1) if unbiased else n * n
    c_v = m * (m - 1) if unbiased else m * m
    return 2.0 * s_uv / (n * m) - 2.0 * s_uu / c_u - 2.0 * s_vv / c_v


@partial(jax.jit, static_argnames=("num_projections", "unbiased"))
def _sliced_values(key, x, y, num_projections: int, unbiased: bool) -> jax.Array:
    theta = jax.random.normal(key, (num_projections, x.shape[1]), dtype=x.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=1, keepdims=True)
    # (P, n) and (P, m) projections; memory O(P (n + m)), one batched sort per set
    return _energy_distance_1d(theta @ x.T, theta @ y.T, unbiased)


def slicing_constant(dim: int) -> float:
    r"""$c_D=\mathbb E_\theta|\theta^\top e|=\Gamma(D/2)/(\sqrt\pi\,\Gamma((D+1)/2))$ for a
    unit vector $e$ and $\theta$ uniform on the sphere $S^{D-1}$ ($c_1=1$, $c_2=2/\pi$)."""
    return math.exp(math.lgamma(dim / 2) - math.lgamma((dim + 1) / 2)) / math.sqrt(math.pi)


class SlicedEnergyDistance(NamedTuple):
    """Result of :func:`sliced_energy_distance`.

    Attributes:
        value: the estimate of the full energy distance, ``mean(per_projection) / c_D``.
        stderr: its Monte Carlo standard error over projections, ``std / sqrt(P) / c_D``.
        per_projection: ``(P,)`` 1-D energy distances of the projected samples (raw, not
            divided by ``c_D``).
        constant: the slicing constant ``c_D``.
    """

    value: jax.Array
    stderr: jax.Array
    per_projection: jax.Array
    constant: float


def sliced_energy_distance(
    key: jax.Array | None, x, y, *, num_projections: int = 128, unbiased: bool = False
) -> SlicedEnergyDistance:
    r"""Energy distance estimated from random 1-D projections, $O(P(n+m)\log(n+m))$.

    For $\theta$ uniform on the sphere, $\mathbb E_\theta|\theta^\top v|=c_D\|v\|$ with
    $c_D=\Gamma(D/2)/(\sqrt\pi\,\Gamma((D+1)/2))$, so by linearity the 1-D energy distance
    of the projected samples satisfies
    $\mathbb E_\theta\,\hat{\mathcal E}(\theta^\top x,\theta^\top y)=c_D\,\hat{\mathcal E}(x,y)$
    *exactly*, for the V- and the U-statistic alike. The returned ``value`` is the mean over
    projections divided by $c_D$: an unbiased estimate of the full :func:`energy_distance` of
    the same samples, with a standard error over projections. Each 1-D energy distance is
    exact in $O(N\log N)$ from sorted pair sums
    $\sum_{i<j}|z_i-z_j|=\sum_k z_{(k)}(2k-n+1)$.

    Args:
        key: JAX PRNG key for the projection directions (``None``: ``PRNGKey(0)``, the
            key rule of every Monte Carlo estimate, docs/reliability.md).
        x: ``(n, D)`` samples (or ``(n,)``).
        y: ``(m, D)`` samples.
        num_projections: number $P\ge2$ of random directions.
        unbiased: U-statistic instead of the V-statistic.

    Returns:
        :class:`SlicedEnergyDistance` ``(value, stderr, per_projection, constant)``.

    Raises:
        ValueError / TypeError: as :func:`energy_distance`, or ``num_projections < 2``.
    """
    if (
        isinstance(num_projections, bool)
        or not isinstance(num_projections, (int, np.integer))
        or num_projections < 2
    ):
        raise ValueError(f"num_projections must be an integer >= 2, got {num_projections!r}")
    key = jax.random.PRNGKey(0) if key is None else check_key(key)
    min_rows = 2 if unbiased else 1
    x = _as_samples(x, "x", min_rows=min_rows)
    y = _as_samples(y, "y", min_rows=min_rows)
    _check_same_dim(x, y)
    dtype = jnp.result_type(x.dtype, y.dtype)
    vals = _sliced_values(key, x.astype(dtype), y.astype(dtype), int(num_projections), unbiased)
    c = slicing_constant(x.shape[1])
    mean = jnp.mean(vals) / c
    stderr = jnp.std(vals, ddof=1) / math.sqrt(num_projections) / c
    return SlicedEnergyDistance(mean, stderr, vals, c)


# ---------------------------------------------------------------------------------------
# Exact negative log-likelihood under the true mixture
# ---------------------------------------------------------------------------------------
class NLL(NamedTuple):
    """Result of :func:`nll`.

    Attributes:
        value: mean negative log-likelihood (nats per sample).
        stderr: its standard error, ``std(-log p) / sqrt(n)`` (``nan`` when ``n = 1``).
    """

    value: jax.Array
    stderr: jax.Array


def nll(gm: GaussianMixture, samples) -> NLL:
    r"""Mean negative log-likelihood of samples under the true mixture, exact per sample.

    $$\widehat{\mathrm{NLL}}=-\frac1n\sum_i\log p_0(x_i),\qquad
    \mathrm{se}=\frac{\mathrm{sd}_i(\log p_0(x_i))}{\sqrt n}.$$

    $\log p_0$ is the mixture's closed-form log-density (log-sum-exp, FORMULAS.md §4). For
    samples drawn from $p_0$ itself the expectation is the entropy $H(p_0)$; the excess over
    it measures how far generated samples sit from the modes (it is *not* the model's own
    likelihood, which needs the model's density).

    Args:
        gm: the true (clean) mixture.
        samples: ``(n, D)`` samples with ``D = gm.dim``.

    Returns:
        :class:`NLL` ``(value, stderr)``.

    Raises:
        TypeError: ``gm`` is not a :class:`~dsmtheory.GaussianMixture`.
        ValueError: wrong shape, empty or non-finite ``samples``.
    """
    x = _mixture_samples(gm, samples)
    nlp = -gm.log_prob(x)
    n = nlp.shape[0]
    se = jnp.std(nlp, ddof=1) / math.sqrt(n) if n > 1 else jnp.asarray(jnp.nan, nlp.dtype)
    return NLL(jnp.mean(nlp), se)


# ---------------------------------------------------------------------------------------
# Mode coverage
# ---------------------------------------------------------------------------------------
#: default probability mass of a mode's ball in :func:`mode_coverage`: P(|N(0, 1)| <= 3)
DEFAULT_COVERAGE_MASS = 0.9973002039367398


class ModeCoverage(NamedTuple):
    r"""Result of :func:`mode_coverage`.

    Attributes:
        fraction: fraction of the $K$ modes that are covered.
        covered: ``(K,)`` bool, mode $k$ covered.
        counts: ``(K,)`` samples assigned to mode $k$ (nearest mode in Mahalanobis distance,
            and within the radius $r$ of it).
        expected: ``(K,)`` expected counts for exact samples,
            $n\,\pi_k\,P(\chi^2_D\le r^2)$.
        in_mode_fraction: fraction of all samples within the radius $r$ of their nearest
            mode ("high-quality samples").
    """

    fraction: float
    covered: np.ndarray
    counts: np.ndarray
    expected: np.ndarray
    in_mode_fraction: float


def mode_coverage(
    gm: GaussianMixture,
    samples,
    *,
    mass: float | None = None,
    radius_std: float | None = None,
    threshold: float = 0.5,
) -> ModeCoverage:
    r"""Fraction of the mixture's modes that receive their share of samples.

    Each sample is assigned to the component $k$ with the smallest Mahalanobis distance
    $d_k(x)=\|\Sigma_k^{-1/2}(x-\mu_k)\|$, and counted for it only if $d_k\le r$. The
    radius is a $\chi^2_D$ quantile, $r^2=F^{-1}_{\chi^2_D}(\text{mass})$, so that an exact
    sample of a well-separated mode lands inside with probability ``mass`` in every
    dimension D (default $P(|N(0,1)|\le3)=0.9973$, "3 standard deviations" in 1-D; in 64-D
    the radius is 10.0, not 3, since $\|z\|\approx\sqrt D$). ``radius_std`` fixes $r$
    instead. The expected count is $e_k=n\pi_kP(\chi^2_D\le r^2)$; mode $k$ is *covered*
    when its count is at least ``threshold`` $\cdot\,e_k$. Meant for ring- or grid-like
    mixtures of separated modes (the coverage metric of the mode-collapse literature,
    FORMULAS.md §7).

    Args:
        gm: the true (clean) mixture.
        samples: ``(n, D)`` samples with ``D = gm.dim``.
        mass: probability in (0, 1) that the ball of a mode holds for exact samples.
        radius_std: radius $r>0$ in standard deviations (Mahalanobis units), instead of
            ``mass`` (give one of the two).
        threshold: share in $(0, 1]$ of the expected count a covered mode must reach.

    Returns:
        :class:`ModeCoverage`.

    Raises:
        TypeError: ``gm`` is not a :class:`~dsmtheory.GaussianMixture`; ``mass``,
            ``radius_std`` or ``threshold`` not a real number.
        ValueError: wrong shape, empty or non-finite ``samples``; ``mass`` outside (0, 1);
            ``radius_std`` not > 0; both given; ``threshold`` outside (0, 1].
    """
    from scipy.stats import chi2  # here, not at import: scipy.stats costs 0.7 s

    x = _mixture_samples(gm, samples)
    threshold = check_scalar(threshold, "threshold")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if mass is not None and radius_std is not None:
        raise ValueError("give mass or radius_std, not both")
    if radius_std is not None:
        r2 = check_scalar(radius_std, "radius_std", positive=True) ** 2
    else:
        mass = DEFAULT_COVERAGE_MASS if mass is None else check_scalar(mass, "mass")
        if not 0 < mass < 1:
            raise ValueError(f"mass must be in (0, 1), got {mass!r}")
        r2 = float(chi2.ppf(mass, df=gm.dim))
    d = x[:, None, :] - gm.means[None]  # (n, K, D)
    z = d if gm.diagonal else jnp.einsum("nkd,kde->nke", d, gm.eigvecs)
    maha2 = np.asarray(jnp.sum(z * z / gm.eigvals[None], axis=-1))  # (n, K)
    nearest = np.argmin(maha2, axis=1)
    inside = maha2[np.arange(maha2.shape[0]), nearest] <= r2
    k = gm.num_components
    counts = np.bincount(nearest[inside], minlength=k)
    n = x.shape[0]
    p_in = chi2.cdf(r2, df=gm.dim)
    expected = n * np.asarray(gm.weights, dtype=np.float64) * p_in
    covered = counts >= threshold * expected
    return ModeCoverage(
        fraction=float(np.mean(covered)),
        covered=covered,
        counts=counts,
        expected=expected,
        in_mode_fraction=float(np.mean(inside)),
    )
