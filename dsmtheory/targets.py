r"""Lower-variance regression targets beyond first-order DSM, with exact variances on mixtures.

Everything here is computed from the Tweedie posterior of a Gaussian mixture (FORMULAS.md §4):
given $x_t=\alpha x_0+\sigma\varepsilon$, $x_0\mid x_t$ is the mixture
$\sum_k r_k N(m_k, V_k)$, so every polynomial target in $x_0$ has exact conditional moments.

**Order-$k$ DSM targets** (Zhang et al. 2025, FORMULAS.md §3 item 15).
$h_k(x_0,x_t)=\nabla^k_{x_t}q(x_t\mid x_0)/q(x_t\mid x_0)$ with $q=N(\alpha x_0,\sigma^2I)$:

$$h_1=u:=-\frac{x_t-\alpha x_0}{\sigma^2},\qquad h_2=uu^\top-\frac{I}{\sigma^2},\qquad
\mathbb E[h_k\mid x_t]=\frac{\nabla^k p_t}{p_t}.$$

Given $x_t$ and the posterior component $k$, $u\sim N(g_k, C_k)$ with $g_k=-S_k^{-1}d_k$ the
noised component score and $C_k=\frac{\alpha^2}{\sigma^4}V_k=\frac{I}{\sigma^2}-S_k^{-1}$;
fourth moments follow from Isserlis' theorem per component, and the law of total variance
over components keeps every variance a sum of non-negative terms. The irreducible variance
$R_k(t)=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(h_k\mid x_t)$ is averaged over $x_t$ by
Rao–Blackwellized Monte Carlo or, for $D\le2$, by grid quadrature. In 1-D any order $k$ is
available: $h_k=(-1/\sigma)^k\mathrm{He}_k\big((x_t-\alpha x_0)/\sigma\big)$ (probabilists'
Hermite polynomials), integrated exactly by $k+1$-node Gauss–Hermite per component.

**Target score matching** (De Bortoli et al. 2024, FORMULAS.md §3 item 17). The target
$a=\alpha^{-1}\nabla\log p_0(x_0)$ has $\mathbb E[a\mid x_t]=s^*(x_t)$, and so does every mix
$\kappa a+(1-\kappa)u$. Since $\mathbb E[a^\top u]=0$ ($\varepsilon\perp x_0$),

$$V(\kappa)=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(\kappa a+(1-\kappa)u\mid x_t)
=\kappa^2\frac{\mathrm{tr}I_0}{\alpha^2}+(1-\kappa)^2\frac{D}{\sigma^2}-\mathrm{tr}I_t,$$

minimised at $\kappa^*=\mathrm{sigmoid}(\lambda-\log J_0)$ with $J_0=\mathrm{tr}I_0/D$ (for
$N(m,s^2I)$ data $J_0=s^{-2}$: $\kappa^*=\mathrm{sigmoid}(\lambda+\log s^2)$); the DSM and TSM
variances cross exactly at $\lambda=\log J_0$.

**IWSM** (Wang et al. 2025, FORMULAS.md §3 item 16): spatial importance weights
$w=p_t/p_{B_t}$ for a proposal mixture $B$, self-normalised; see
:func:`iwsm_variance_comparison` for exactly what is compared.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import (
    check_count,
    check_finite,
    check_mixture,
    check_positive,
    is_concrete,
)
from .mixture import GaussianMixture, _posterior_parts
from .variance import Estimate  # (value, stderr, method), shared with dsmtheory.variance

__all__ = [
    "SUPPORTED_ORDERS",
    "Estimate",
    "TSMMoments",
    "IWSMComparison",
    "dsm_target",
    "target_mean",
    "target_cov",
    "target_variance_trace",
    "target_moments_1d",
    "sample_posterior",
    "irreducible_target_variance",
    "inverse_variance_weight",
    "order2_gls_weight",
    "gaussian_target_variance",
    "gaussian_inverse_variance_weight",
    "tsm_target",
    "mixed_target",
    "fisher_trace",
    "kappa_star",
    "kappa_star_gaussian",
    "mix_variance",
    "crossing_lambda",
    "tsm_moments",
    "iwsm_log_weights",
    "self_normalized_estimate",
    "iwsm_variance_comparison",
]

SUPPORTED_ORDERS = (1, 2)
_MAX_ORDER_1D = 12


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------
def _check_order(order, supported=SUPPORTED_ORDERS):
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"order must be an integer, got {type(order).__name__}")
    if order not in supported:
        raise ValueError(
            f"order must be one of {tuple(supported)} for this function, got {order!r}"
        )
    return int(order)


def _check_as(alpha, sigma):
    for name, v in (("alpha", alpha), ("sigma", sigma)):
        if is_concrete(v):
            if np.ndim(v) != 0:
                raise ValueError(f"{name} must be a scalar, got shape {np.shape(v)}")
            check_positive(v, name)


def _check_mixture_inputs(gm, alpha, sigma, order) -> int:
    """The common checks of the functions of a mixture at (α, σ) and an order; returns the
    order as an int."""
    order = _check_order(order)
    check_mixture(gm)
    _check_as(alpha, sigma)
    return order


def _check_kappa(kappa):
    if is_concrete(kappa):
        k = np.asarray(kappa, dtype=np.float64)
        if not np.all(np.isfinite(k)) or np.any(k < 0) or np.any(k > 1):
            raise ValueError(f"kappa must lie in [0, 1], got {kappa!r}")


# ---------------------------------------------------------------------------------------
# order-k DSM targets
# ---------------------------------------------------------------------------------------
def dsm_target(x0, x_t, alpha, sigma, order: int = 1) -> jax.Array:
    r"""The order-$k$ DSM regression target $h_k(x_0,x_t)=\nabla^k_{x_t}q/q$ for
    $q(x_t\mid x_0)=N(\alpha x_0,\sigma^2I)$ (Zhang et al. 2025; FORMULAS.md §3 item 15).

    $$h_1=-\frac{x_t-\alpha x_0}{\sigma^2},\qquad h_2=h_1h_1^\top-\frac{I}{\sigma^2}.$$

    Args:
        x0: ``(..., D)`` clean points.
        x_t: ``(..., D)`` noisy points (broadcast against ``x0``).
        alpha, sigma: scalars > 0.
        order: 1 or 2.

    Returns:
        ``(..., D)`` for order 1, ``(..., D, D)`` for order 2.

    Raises:
        ValueError: ``order`` unsupported, ``alpha``/``sigma`` <= 0, or shapes disagree.
    """
    order = _check_order(order)
    _check_as(alpha, sigma)
    x0 = jnp.asarray(x0)
    x_t = jnp.asarray(x_t)
    if np.shape(x0)[-1:] != np.shape(x_t)[-1:]:
        raise ValueError(f"x0 and x_t must share the last dimension, got {x0.shape}, {x_t.shape}")
    return _dsm_target_jit(x0, x_t, alpha, sigma, order)


@partial(jax.jit, static_argnums=(4,))
def _dsm_target_jit(x0, x_t, alpha, sigma, order):
    u = -(x_t - alpha * x0) / sigma**2
    if order == 1:
        return u
    eye = jnp.eye(u.shape[-1], dtype=u.dtype)
    return u[..., :, None] * u[..., None, :] - eye / sigma**2


def _score_parts(gm: GaussianMixture, x_t, alpha, sigma):
    r"""Per-component law of $u=h_1$ given $x_t$: responsibilities ``r (..., K)``, means
    $g_k$ ``(..., K, D)`` and covariance eigenvalues $c_k$ ``(K, D)`` in the eigenbasis
    ``gm.eigvecs`` ($C_k=U_k\,\mathrm{diag}(c_k)U_k^\top$)."""
    check_mixture(gm)
    _check_as(alpha, sigma)
    r, m, v = _posterior_parts(gm, x_t, alpha, sigma)
    x_t = jnp.asarray(x_t)
    g = (alpha * m - x_t[..., None, :]) / sigma**2
    c = alpha**2 * v / sigma**4
    return r, g, c


def _cov_mats(gm: GaussianMixture, c):
    """``(K, D, D)`` matrices ``U diag(c) Uᵀ``."""
    return jnp.einsum("kij,kj,klj->kil", gm.eigvecs, c, gm.eigvecs)


def target_mean(gm: GaussianMixture, x_t, alpha, sigma, order: int = 1) -> jax.Array:
    r"""Posterior mean $\mathbb E[h_k\mid x_t]=\nabla^kp_t(x_t)/p_t(x_t)$ of the order-$k$
    target (FORMULAS.md §3 item 15, §4).

    $$\mathbb E[h_1\mid x_t]=\sum_kr_kg_k=s^*,\qquad
    \mathbb E[h_2\mid x_t]=\sum_kr_k(g_kg_k^\top+C_k)-\frac I{\sigma^2}=H_t+s^*s^{*\top}.$$

    Args:
        gm: the clean mixture $p_0$.
        x_t: ``(..., D)``.
        alpha, sigma: scalars > 0.
        order: 1 or 2.

    Returns:
        ``(..., D)`` (order 1) or ``(..., D, D)`` (order 2).
    """
    order = _check_mixture_inputs(gm, alpha, sigma, order)
    return _mean_jit(gm, gm._check_x(x_t, "x_t"), alpha, sigma, order)


def _mean_impl(gm, x_t, alpha, sigma, order):
    r, g, c = _score_parts(gm, x_t, alpha, sigma)
    s = jnp.einsum("...k,...kd->...d", r, g)
    if order == 1:
        return s
    ck = _cov_mats(gm, c)
    second = jnp.einsum("...k,...ki,...kj->...ij", r, g, g) + jnp.einsum("...k,kij->...ij", r, ck)
    return second - jnp.eye(gm.dim, dtype=second.dtype) / sigma**2


def target_cov(gm: GaussianMixture, x_t, alpha, sigma, order: int = 1) -> jax.Array:
    r"""Exact conditional covariance $\mathrm{Cov}(h_k\mid x_t)$ (FORMULAS.md §3 item 15).

    Order 1: $\sum_kr_k\big(C_k+(g_k-s)(g_k-s)^\top\big)=\frac{\alpha^2}{\sigma^4}
    \mathrm{Cov}(x_0\mid x_t)$, ``(..., D, D)``.

    Order 2: the ``(..., D, D, D, D)`` tensor $\mathrm{Cov}(h_{ij},h_{lm}\mid x_t)$ by the law of
    total covariance over components, with Isserlis' theorem within a component:

    $$\mathrm{Cov}_k(u_iu_j,u_lu_m)=g_ig_lC_{jm}+g_ig_mC_{jl}+g_jg_lC_{im}+g_jg_mC_{il}
    +C_{il}C_{jm}+C_{im}C_{jl},$$

    plus $\sum_kr_k\,\mathrm{vec}(M_k-\bar M)\mathrm{vec}(M_k-\bar M)^\top$ with
    $M_k=g_kg_k^\top+C_k$. Memory is $O(KD^4)$ per point: meant for small $D$.
    """
    order = _check_mixture_inputs(gm, alpha, sigma, order)
    return _cov_jit(gm, gm._check_x(x_t, "x_t"), alpha, sigma, order)


def _cov_impl(gm, x_t, alpha, sigma, order):
    r, g, c = _score_parts(gm, x_t, alpha, sigma)
    ck = _cov_mats(gm, c)
    s = jnp.einsum("...k,...kd->...d", r, g)
    if order == 1:
        dg = g - s[..., None, :]
        return jnp.einsum("...k,kij->...ij", r, ck) + jnp.einsum(
            "...k,...ki,...kj->...ij", r, dg, dg
        )
    gg = g[..., :, None] * g[..., None, :]  # (..., K, D, D)
    within = (
        jnp.einsum("...ki,...kl,kjm->...kijlm", g, g, ck)
        + jnp.einsum("...ki,...km,kjl->...kijlm", g, g, ck)
        + jnp.einsum("...kj,...kl,kim->...kijlm", g, g, ck)
        + jnp.einsum("...kj,...km,kil->...kijlm", g, g, ck)
        + jnp.einsum("kil,kjm->kijlm", ck, ck)
        + jnp.einsum("kim,kjl->kijlm", ck, ck)
    )
    mk = gg + ck
    mbar = jnp.einsum("...k,...kij->...ij", r, mk)
    dm = mk - mbar[..., None, :, :]
    between = jnp.einsum("...k,...kij,...klm->...ijlm", r, dm, dm)
    return jnp.einsum("...k,...kijlm->...ijlm", r, within) + between


def target_variance_trace(gm: GaussianMixture, x_t, alpha, sigma, order: int = 1) -> jax.Array:
    r"""$\mathrm{tr}\,\mathrm{Var}(h_k\mid x_t)$: the sum of the per-entry conditional variances,
    without forming the $D^2\times D^2$ covariance (FORMULAS.md §3 item 15).

    Order 1: $\sum_kr_k(\mathrm{tr}C_k+\|g_k-s\|^2)$. Order 2:

    $$\sum_kr_k\big[2\|g_k\|^2\mathrm{tr}C_k+2g_k^\top C_kg_k+(\mathrm{tr}C_k)^2
    +\mathrm{tr}C_k^2\big]+\sum_kr_k\|M_k-\bar M\|_F^2.$$

    Returns:
        ``(...)``.
    """
    order = _check_mixture_inputs(gm, alpha, sigma, order)
    return _trace_jit(gm, gm._check_x(x_t, "x_t"), alpha, sigma, order)


def _trace_impl(gm, x_t, alpha, sigma, order):
    r, g, c = _score_parts(gm, x_t, alpha, sigma)
    s = jnp.einsum("...k,...kd->...d", r, g)
    trc = jnp.sum(c, axis=-1)  # (K,)
    if order == 1:
        spread = jnp.sum((g - s[..., None, :]) ** 2, axis=-1)
        return jnp.einsum("...k,...k->...", r, trc + spread)
    gr = gm._rotate_in(g)  # (..., K, D) in each component's eigenbasis
    g2 = jnp.sum(g * g, axis=-1)
    gcg = jnp.sum(gr * gr * c, axis=-1)
    within = 2.0 * g2 * trc + 2.0 * gcg + trc**2 + jnp.sum(c * c, axis=-1)
    mk = g[..., :, None] * g[..., None, :] + _cov_mats(gm, c)
    mbar = jnp.einsum("...k,...kij->...ij", r, mk)
    between = jnp.sum((mk - mbar[..., None, :, :]) ** 2, axis=(-2, -1))
    return jnp.einsum("...k,...k->...", r, within + between)


_mean_jit = jax.jit(_mean_impl, static_argnums=(4,))
_cov_jit = jax.jit(_cov_impl, static_argnums=(4,))
_trace_jit = jax.jit(_trace_impl, static_argnums=(4,))


def target_moments_1d(gm: GaussianMixture, x_t, alpha, sigma, order: int):
    r"""Any-order target in 1-D: $E[h_k\mid x_t]$ and $\mathrm{Var}(h_k\mid x_t)$.

    In one dimension $h_k=(-1/\sigma)^k\,\mathrm{He}_k(z)$ with $z=(x_t-\alpha x_0)/\sigma$
    ($\mathrm{He}_k$ the probabilists' Hermite polynomial), since
    $\partial_x^k e^{-x^2/2\sigma^2}=(-1/\sigma)^k\mathrm{He}_k(x/\sigma)e^{-x^2/2\sigma^2}$.
    Given component $k$ of the posterior, $z$ is Gaussian, so $(k+1)$-node Gauss–Hermite
    integrates $h_k$ and $(h_k-E_kh_k)^2$ (degree $\le 2k$) exactly; components combine by the
    law of total variance. Zhang et al. 2025, FORMULAS.md §3 item 15.

    Args:
        gm: a 1-D clean mixture.
        x_t: ``(..., 1)``.
        alpha, sigma: scalars > 0.
        order: 1 to 12.

    Returns:
        ``(mean, var)``, each ``(...)``.
    """
    check_mixture(gm)
    if gm.dim != 1:
        raise ValueError(f"target_moments_1d needs a 1-D mixture, got gm.dim = {gm.dim}")
    order = _check_order(order, range(1, _MAX_ORDER_1D + 1))
    _check_as(alpha, sigma)
    return _moments_1d_jit(gm, gm._check_x(x_t, "x_t"), alpha, sigma, order)


@partial(jax.jit, static_argnums=(4,))
def _moments_1d_jit(gm, x_t, alpha, sigma, order):
    r, g, c = _score_parts(gm, x_t, alpha, sigma)
    # u = -z/sigma ~ N(g, c)  =>  z ~ N(-sigma g, sigma^2 c)
    nodes, wts = np.polynomial.hermite_e.hermegauss(order + 1)
    wts = jnp.asarray(wts / wts.sum())
    zmean = -sigma * g[..., 0]  # (..., K)
    zstd = sigma * jnp.sqrt(c[:, 0])  # (K,)
    z = zmean[..., None] + zstd[:, None] * jnp.asarray(nodes)  # (..., K, n)
    coef = np.zeros(order + 1)
    coef[order] = 1.0
    he = jnp.polyval(jnp.asarray(np.polynomial.hermite_e.herme2poly(coef)[::-1]), z)
    h = (-1.0 / sigma) ** order * he
    mk = jnp.sum(h * wts, axis=-1)
    vk = jnp.sum((h - mk[..., None]) ** 2 * wts, axis=-1)
    mean = jnp.sum(r * mk, axis=-1)
    var = jnp.sum(r * (vk + (mk - mean[..., None]) ** 2), axis=-1)
    return mean, var


def sample_posterior(gm: GaussianMixture, x_t, alpha, sigma, key, n: int) -> jax.Array:
    r"""Exact draws of $x_0\mid x_t$: a component by $r_k$, then $N(m_k,V_k)$ (FORMULAS.md §4).

    Args:
        gm: the clean mixture.
        x_t: ``(..., D)`` noisy points.
        alpha, sigma: scalars > 0.
        key: JAX PRNG key.
        n: draws per point.

    Returns:
        ``(n, ..., D)``.
    """
    check_mixture(gm)
    n = check_count(n, "n")
    _check_as(alpha, sigma)
    return _sample_posterior_jit(gm, gm._check_x(x_t, "x_t"), alpha, sigma, key, n)


@partial(jax.jit, static_argnums=(5,))
def _sample_posterior_jit(gm, x_t, alpha, sigma, key, n):
    r, m, v = _posterior_parts(gm, x_t, alpha, sigma)
    kc, ke = jax.random.split(key)
    comp = jax.random.categorical(kc, jnp.log(r), shape=(n,) + r.shape[:-1])  # (n, ...)
    mk = jnp.take_along_axis(m[None], comp[..., None, None], axis=-2)[..., 0, :]
    eps = jax.random.normal(ke, comp.shape + (gm.dim,), dtype=m.dtype)
    z = jnp.sqrt(v[comp]) * eps
    if not gm.diagonal:
        z = jnp.einsum("...de,...e->...d", gm.eigvecs[comp], z)
    return mk + z


# ---------------------------------------------------------------------------------------
# expectations over x_t ~ p_t
# ---------------------------------------------------------------------------------------
def _default_grid(dim, grid_size):
    """Nodes per axis: 2001 in 1-D, 301 in 2-D unless given."""
    if grid_size is not None:
        return grid_size
    return 2001 if dim == 1 else 301


def _grid(mixtures, dim: int, n: int, width: float = 10.0):
    """Tensor grid covering every component (±``width`` std) of the mixtures
    ``[(gm, alpha, sigma), ...]`` noised by their (α, σ). Returns nodes ``(N, D)`` and the
    cell volume (uniform spacing: the trapezoid rule on a box whose boundary values are
    negligible)."""
    if dim > 2:
        raise ValueError(f"grid quadrature needs D <= 2, got D = {dim}; use method='mc'")
    lo = np.full(dim, np.inf)
    hi = np.full(dim, -np.inf)
    for q, a, s in mixtures:
        a, s = float(a), float(s)
        mu = a * np.asarray(q.means)
        sd = math.sqrt(a**2 * float(np.max(q.eigvals)) + s**2)
        lo = np.minimum(lo, mu.min(0) - width * sd)
        hi = np.maximum(hi, mu.max(0) + width * sd)
    axes = [np.linspace(lo[i], hi[i], n) for i in range(dim)]
    vol = float(np.prod([(hi[i] - lo[i]) / (n - 1) for i in range(dim)]))
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)
    return jnp.asarray(mesh), vol


def irreducible_target_variance(
    gm: GaussianMixture,
    alpha,
    sigma,
    order: int = 1,
    *,
    method: str = "mc",
    key=None,
    num_samples: int = 4096,
    grid_size: int | None = None,
) -> Estimate:
    r"""$R_k(t)=\mathbb E_{x_t\sim p_t}\,\mathrm{tr}\,\mathrm{Var}(h_k\mid x_t)$, the irreducible
    part of the order-$k$ DSM loss (Zhang et al. 2025; FORMULAS.md §3 item 15, §4).

    Rao–Blackwellized: the closed-form conditional variance is averaged over $x_t$, never
    taken as a difference of Monte Carlo means. ``R_1`` equals $D/\sigma^2-\mathrm{tr}I_t$.

    Args:
        gm: clean mixture.
        alpha, sigma: scalars > 0.
        order: 1 or 2.
        method: ``"mc"`` (``num_samples`` draws of $x_t$, needs ``key``) or ``"grid"``
            (uniform tensor grid, ``grid_size`` nodes per axis, default 2001 in 1-D and 301
            in 2-D, $D\le2$).

    Returns:
        :class:`Estimate` (stderr 0 for the grid).
    """
    order = _check_mixture_inputs(gm, alpha, sigma, order)
    alpha, sigma = _f64(alpha), _f64(sigma)
    if method == "mc":
        if key is None:
            raise ValueError("key is required for method='mc'")
        n = check_count(num_samples, "num_samples", 2)
        vals = np.asarray(_rb_mc(gm, alpha, sigma, key, n, order))
        return Estimate(
            float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(n)), f"rao-blackwell mc n={n}"
        )
    if method == "grid":
        n = check_count(_default_grid(gm.dim, grid_size), "grid_size", 3)
        x, vol = _grid([(gm, alpha, sigma)], gm.dim, n)
        val = float(_grid_expect(gm, x, alpha, sigma, order)) * vol
        return Estimate(val, 0.0, f"grid trapezoid {n}^{gm.dim}")
    raise ValueError(f"method must be 'mc' or 'grid', got {method!r}")


def _f64(v):
    return jnp.asarray(v, dtype=jnp.result_type(float))


@partial(jax.jit, static_argnums=(4, 5))
def _rb_mc(gm, alpha, sigma, key, n, order):
    x = gm.noised(alpha, sigma).sample(key, n)
    return _trace_impl(gm, x, alpha, sigma, order)


@partial(jax.jit, static_argnums=(4,))
def _grid_expect(gm, x, alpha, sigma, order):
    lp = gm.noised(alpha, sigma).log_prob(x)
    return jnp.sum(jnp.exp(lp) * _trace_impl(gm, x, alpha, sigma, order))


@jax.jit
def _fisher_grid(gm, x):
    return jnp.sum(jnp.exp(gm.log_prob(x)) * jnp.sum(gm.score(x) ** 2, -1))


@partial(jax.jit, static_argnums=(2,))
def _fisher_mc(gm, key, n):
    return jnp.sum(gm.score(gm.sample(key, n)) ** 2, -1)


def inverse_variance_weight(gm: GaussianMixture, alpha, sigma, order: int = 1, **kw) -> Estimate:
    r"""Scalar inverse-variance weighting of the order-$k$ loss,
    $\Lambda_k^*=D^k/R_k(t)$ (one over the mean per-entry irreducible variance; FORMULAS.md
    §3 item 15). $\Lambda_1^*=D/(D\sigma^{-2}-\mathrm{tr}I_t)$; for small σ,
    $\Lambda_2^*=\frac{D}{D+1}\sigma^4(1+O(\sigma^4))$: $\sigma^4$ plays the heuristic's role.
    Standard error by the delta method. Keyword arguments go to
    :func:`irreducible_target_variance`.
    """
    order = _check_order(order)
    est = irreducible_target_variance(gm, alpha, sigma, order, **kw)
    lam = gm.dim**order / est.value
    return Estimate(lam, lam * est.stderr / est.value, est.method)


def order2_gls_weight(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""Matrix (GLS) inverse-variance weight of the order-2 target at $x_t$: the inverse of
    the covariance of the $P=D(D+1)/2$ distinct entries $\mathrm{vech}(h_2)$ (the $D^2\times D^2$
    covariance of $\mathrm{vec}\,h_2$ is singular because $h_2$ is symmetric). The order-2
    analogue of $W^*=C_t^{-1}$ (FORMULAS.md §3 item 15).

    Returns:
        ``(..., P, P)`` with the entries ordered as ``numpy.triu_indices(D)``.
    """
    cov = target_cov(gm, x_t, alpha, sigma, order=2)
    d = gm.dim
    iu, ju = np.triu_indices(d)
    sub = cov[..., iu, ju, :, :][..., iu, ju]
    return jnp.linalg.inv(sub)


def gaussian_target_variance(dim: int, std, alpha, sigma, order: int = 1):
    r"""$R_k$ for Gaussian data $N(m,s^2I_D)$ in closed form (derived here; proved in
    ``derivations/t_order2_variance.py``). With $a=\alpha^2s^2$, $S=a+\sigma^2$:

    $$R_1=\frac{Da}{\sigma^2S},\qquad R_2=\frac{D(D+1)\,a\,(a+2\sigma^2)}{\sigma^4S^2}
    =\frac{D(D+1)}{\sigma^4}\Big(1-\frac{\sigma^4}{S^2}\Big).$$
    """
    order = _check_order(order)
    check_count(dim, "dim")
    check_positive(std, "std")
    _check_as(alpha, sigma)
    a = alpha**2 * std**2
    big_s = a + sigma**2
    if order == 1:
        return dim * a / (sigma**2 * big_s)
    return dim * (dim + 1) * a * (a + 2 * sigma**2) / (sigma**4 * big_s**2)


def gaussian_inverse_variance_weight(dim: int, std, alpha, sigma, order: int = 1):
    r"""$\Lambda_k^*=D^k/R_k$ for $N(m,s^2I_D)$ data:
    $\Lambda_1^*=\sigma^2/(1-\sigma^2/S)$, $\Lambda_2^*=\frac{D}{D+1}\,\sigma^4/(1-\sigma^4/S^2)$
    with $S=\alpha^2s^2+\sigma^2$. Small σ: $\Lambda_1^*=\sigma^2+\sigma^4/a+\dots$ and
    $\Lambda_2^*=\frac{D}{D+1}(\sigma^4+\sigma^8/a^2+\dots)$ (FORMULAS.md §3 item 15)."""
    return dim**order / gaussian_target_variance(dim, std, alpha, sigma, order)


# ---------------------------------------------------------------------------------------
# target score matching
# ---------------------------------------------------------------------------------------
def tsm_target(gm: GaussianMixture, x0, alpha) -> jax.Array:
    r"""The TSM target $a=\alpha^{-1}\nabla\log p_0(x_0)$ (De Bortoli et al. 2024; FORMULAS.md
    §3 item 17), exact for a mixture. ``(..., D)`` → ``(..., D)``."""
    check_mixture(gm)
    _check_as(alpha, 1.0)
    return _tsm_target_jit(gm, gm._check_x(x0, "x0"), alpha)


@jax.jit
def _tsm_target_jit(gm, x0, alpha):
    return gm.score(x0) / alpha


def mixed_target(gm: GaussianMixture, x0, x_t, alpha, sigma, kappa) -> jax.Array:
    r"""The unbiased affine mix $\kappa\,\alpha^{-1}\nabla\log p_0(x_0)+(1-\kappa)h_1$
    (FORMULAS.md §3 item 17). Both parts have conditional mean $s^*(x_t)$, so any real κ is
    unbiased; κ is required to lie in [0, 1] (a convex mix: the variance-optimal κ* always
    does), and ValueError is raised otherwise."""
    _check_kappa(kappa)
    return kappa * tsm_target(gm, x0, alpha) + (1 - kappa) * dsm_target(x0, x_t, alpha, sigma)


def fisher_trace(
    gm: GaussianMixture,
    *,
    key=None,
    num_samples: int = 200_000,
    method: str = "mc",
    grid_size: int | None = None,
) -> Estimate:
    r"""$\mathrm{tr}I=\mathbb E_{x\sim p}\|\nabla\log p(x)\|^2$ of ``gm``'s own density, by Monte
    Carlo (with stderr) or, for $D\le2$, grid quadrature (FORMULAS.md §4)."""
    check_mixture(gm)
    if method == "mc":
        if key is None:
            raise ValueError("key is required for method='mc'")
        n = check_count(num_samples, "num_samples", 2)
        v = np.asarray(_fisher_mc(gm, key, n))
        return Estimate(float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)), f"mc n={n}")
    if method == "grid":
        n = check_count(_default_grid(gm.dim, grid_size), "grid_size", 3)
        x, vol = _grid([(gm, 1.0, 0.0)], gm.dim, n)
        val = float(_fisher_grid(gm, x)) * vol
        return Estimate(float(val), 0.0, f"grid trapezoid {n}^{gm.dim}")
    raise ValueError(f"method must be 'mc' or 'grid', got {method!r}")


def kappa_star(lam, fisher_trace_0, dim: int):
    r"""Variance-minimising TSM/DSM mix $\kappa^*(\lambda)=\mathrm{sigmoid}(\lambda-\log J_0)$,
    $J_0=\mathrm{tr}I_0/D$, for any $(\alpha,\sigma)$ (derived here; proved in
    ``derivations/t_kappa_star.py``; FORMULAS.md §3 item 17).

    From $V(\kappa)=\kappa^2\mathrm{tr}I_0/\alpha^2+(1-\kappa)^2D/\sigma^2-\mathrm{tr}I_t$,
    $\kappa^*=\frac{D/\sigma^2}{\mathrm{tr}I_0/\alpha^2+D/\sigma^2}$.
    """
    check_count(dim, "dim")
    check_positive(fisher_trace_0, "fisher_trace_0")
    check_finite(lam, "lam")
    return jax.nn.sigmoid(jnp.asarray(lam) - jnp.log(fisher_trace_0 / dim))


def kappa_star_gaussian(lam, std):
    r"""$\kappa^*=\mathrm{sigmoid}(\lambda+\log s^2)$ for $N(m,s^2I)$ data (any α, σ)."""
    check_positive(std, "std")
    return jax.nn.sigmoid(jnp.asarray(lam) + jnp.log(std**2))


def mix_variance(kappa, alpha, sigma, fisher_trace_0, fisher_trace_t, dim: int):
    r"""$V(\kappa)=\kappa^2\,\mathrm{tr}I_0/\alpha^2+(1-\kappa)^2D/\sigma^2-\mathrm{tr}I_t$,
    the expected conditional variance of the mixed target (derived; FORMULAS.md §3 item 17).
    κ must lie in [0, 1]."""
    _check_kappa(kappa)
    _check_as(alpha, sigma)
    return kappa**2 * fisher_trace_0 / alpha**2 + (1 - kappa) ** 2 * dim / sigma**2 - fisher_trace_t


def crossing_lambda(fisher_trace_0, dim: int) -> float:
    r"""The log-SNR where the DSM and TSM variances are equal: $\lambda_\times=\log J_0$
    ($\mathrm{tr}I_0/\alpha^2=D/\sigma^2$); there $\kappa^*=1/2$."""
    check_positive(fisher_trace_0, "fisher_trace_0")
    return float(math.log(fisher_trace_0 / dim))


class TSMMoments(NamedTuple):
    r"""Expected conditional (co)variances of the TSM target $a$ and the DSM target $u=h_1$,
    averaged over $x_t\sim p_t$, each an :class:`Estimate`.

    Attributes:
        var_tsm: $A=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(a\mid x_t)$ (nested MC).
        var_dsm: $B=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(u\mid x_t)=R_1$ (Rao–Blackwellized).
        cov: $C=\mathbb E\,\mathrm{tr}\,\mathrm{Cov}(a,u\mid x_t)$ (nested MC).
        kappa: $\kappa=(B-C)/(A+B-2C)$ from these estimates (delta-method stderr).
        var_mix: $V(\kappa^*)=(AB-C^2)/(A+B-2C)$ at that κ.
    """

    var_tsm: Estimate
    var_dsm: Estimate
    cov: Estimate
    kappa: Estimate
    var_mix: Estimate


def tsm_moments(
    gm: GaussianMixture, alpha, sigma, *, key, num_outer: int = 2048, num_inner: int = 16
) -> TSMMoments:
    r"""Nested Monte Carlo of the TSM/DSM conditional moments (FORMULAS.md §3 item 17).

    Outer: $x_t^{(i)}\sim p_t$. Inner: $x_0^{(ij)}\sim p(x_0\mid x_t^{(i)})$ exactly. With the
    known conditional mean $s^*=\mathbb E[a\mid x_t]=\mathbb E[u\mid x_t]$ the per-point
    estimates $\frac1J\sum_j\|a_{ij}-s_i\|^2$ and $\frac1J\sum_j(a_{ij}-s_i)^\top(u_{ij}-s_i)$
    are unbiased; $\mathrm{tr}\,\mathrm{Var}(u\mid x_t)$ is the closed form
    (Rao–Blackwellized). Standard errors come from the spread over the outer points.
    """
    check_mixture(gm)
    _check_as(alpha, sigma)
    n = check_count(num_outer, "num_outer", 2)
    j = check_count(num_inner, "num_inner", 1)
    if key is None:
        raise ValueError("key is required (a JAX PRNG key)")
    a_i, b_i, c_i = _tsm_pointwise(gm, _f64(alpha), _f64(sigma), key, n, j)
    a_i, b_i, c_i = (np.asarray(v) for v in (a_i, b_i, c_i))
    meth = f"nested mc {n}x{j}"

    def est(v, m):
        return Estimate(float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)), m)

    ea, eb, ec = est(a_i, meth), est(b_i, "rao-blackwell " + meth), est(c_i, meth)
    a, b, c = ea.value, eb.value, ec.value
    den = a + b - 2 * c
    kap = (b - c) / den
    # per-point influence of kappa (delta method), on the shared outer sample
    infl_k = ((b_i - c_i) * den - (b - c) * (a_i + b_i - 2 * c_i)) / den**2
    vmix = (a * b - c * c) / den
    infl_v = kap**2 * a_i + (1 - kap) ** 2 * b_i + 2 * kap * (1 - kap) * c_i
    return TSMMoments(
        ea,
        eb,
        ec,
        Estimate(kap, float(infl_k.std(ddof=1) / math.sqrt(n)), meth + " (delta method)"),
        Estimate(vmix, float(infl_v.std(ddof=1) / math.sqrt(n)), meth),
    )


@partial(jax.jit, static_argnums=(4, 5))
def _tsm_pointwise(gm, alpha, sigma, key, n, j):
    k1, k2 = jax.random.split(key)
    x_t = gm.noised(alpha, sigma).sample(k1, n)
    x0 = _sample_posterior_jit.__wrapped__(gm, x_t, alpha, sigma, k2, j)
    s = _mean_impl(gm, x_t, alpha, sigma, 1)
    b = _trace_impl(gm, x_t, alpha, sigma, 1)
    a = gm.score(x0) / alpha - s  # (J, n, D)
    u = (alpha * x0 - x_t) / sigma**2 - s
    return jnp.mean(jnp.sum(a * a, -1), 0), b, jnp.mean(jnp.sum(a * u, -1), 0)


# ---------------------------------------------------------------------------------------
# IWSM
# ---------------------------------------------------------------------------------------
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
    _check_as(alpha, sigma)
    return _log_w_jit(gm, proposal, gm._check_x(x_t, "x_t"), alpha, sigma)


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
    return Estimate(est, se, f"self-normalised IS n={f.shape[0]}")


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
        method: the quadrature rule.
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
    grid_size: int = 401,
) -> IWSMComparison:
    r"""Exact (quadrature) variance comparison of IWSM against plain DSM at one noise level
    (Wang et al. 2025; FORMULAS.md §3 item 16).

    The fixed model is $s_\theta=\nabla\log(\text{model noised by }(\alpha,\sigma))$, by
    default the moment-matched Gaussian of ``gm``. With $f(x)=\|s_\theta(x)-s^*(x)\|^2$ and
    $w=p_t/p_{B_t}$:

    * plain DSM: $\mathrm{Var}\|s_\theta(x_t)-h_1\|^2$ over $x_0\sim p_0,\varepsilon$, from
      $\mathbb E[\|s_\theta-u\|^4\mid x_t]$ in closed form per component
      ($(\|m\|^2+\mathrm{tr}C)^2+4m^\top Cm+2\mathrm{tr}C^2$) integrated over $x_t$;
    * IWSM (self-normalised, exact score, $x_t\sim p_{B_t}$):
      $\int p_t^2(f-F)^2/p_{B_t}\,dx$ (computed as $\exp(2\log p_t-\log p_{B_t})$);
    * oracle SM: $\int p_t(f-F)^2dx$.

    All integrals on a uniform ``grid_size``$^D$ tensor grid covering ±10 std of every
    component ($D\le2$).
    """
    _check_proposal(gm, proposal)
    _check_as(alpha, sigma)
    if model is None:
        model = _gaussian_fit(gm)
    _check_proposal(gm, model)
    n = check_count(grid_size, "grid_size", 3)
    alpha, sigma = _f64(alpha), _f64(sigma)
    x, vol = _grid([(gm, alpha, sigma), (proposal, alpha, sigma)], gm.dim, n)
    out = _iwsm_integrals(gm, proposal, model, x, alpha, sigma, _f64(vol))
    f_mean, r1, m4, sm2, w2, iw = (float(v) * vol for v in out)
    return IWSMComparison(
        f_mean,
        r1,
        m4 - (f_mean + r1) ** 2,
        sm2 - f_mean**2,
        iw,
        1.0 / w2,
        f"grid trapezoid {n}^{gm.dim}",
    )


@jax.jit
def _iwsm_integrals(gm, proposal, model, x, alpha, sigma, vol):
    pt = gm.noised(alpha, sigma)
    bt = proposal.noised(alpha, sigma)
    mt = model.noised(alpha, sigma)
    lp = pt.log_prob(x)
    p = jnp.exp(lp)
    d = mt.score(x)
    s = pt.score(x)
    f = jnp.sum((d - s) ** 2, -1)
    r, g, c = _score_parts(gm, x, alpha, sigma)
    trv = _trace_impl(gm, x, alpha, sigma, 1)
    mres = d[..., None, :] - g  # (N, K, D): mean of s_theta - u in component k
    mr = gm._rotate_in(mres)
    trc = jnp.sum(c, -1)
    m2 = jnp.sum(mres**2, -1)
    e4 = (m2 + trc) ** 2 + 4 * jnp.sum(mr * mr * c, -1) + 2 * jnp.sum(c * c, -1)
    e4 = jnp.sum(r * e4, -1)
    ratio = jnp.exp(2 * lp - bt.log_prob(x))
    big_f = vol * jnp.sum(p * f)  # F = ∫ p_t f
    return (
        jnp.sum(p * f),
        jnp.sum(p * trv),
        jnp.sum(p * e4),
        jnp.sum(p * f * f),
        jnp.sum(ratio),
        jnp.sum(ratio * (f - big_f) ** 2),  # centred: no cancellation in E_B[w²(f−F)²]
    )
