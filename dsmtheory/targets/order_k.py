r"""Order-$k$ DSM targets with exact conditional moments on mixtures (Zhang et al. 2025,
FORMULAS.md §3 item 15, §8 "Order-2 target, exact identity").

$h_k(x_0,x_t)=\nabla^k_{x_t}q(x_t\mid x_0)/q(x_t\mid x_0)$ with $q=N(\alpha x_0,\sigma^2I)$:

$$h_1=u:=-\frac{x_t-\alpha x_0}{\sigma^2},\qquad h_2=uu^\top-\frac{I}{\sigma^2},\qquad
\mathbb E[h_k\mid x_t]=\frac{\nabla^k p_t}{p_t}.$$

Given $x_t$ and the posterior component $k$, $u\sim N(g_k, C_k)$ with $g_k=-S_k^{-1}d_k$ the
noised component score and $C_k=\frac{\alpha^2}{\sigma^4}V_k=\frac{I}{\sigma^2}-S_k^{-1}$;
fourth moments follow from Isserlis' theorem per component, and the law of total variance
over components keeps every variance a sum of non-negative terms. The irreducible variance
$R_k(t)=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(h_k\mid x_t)$ is averaged over $x_t$ by the
expectation engine (:mod:`dsmtheory.expectations`). Since $\mathbb E\|h_2\|_F^2=D(D+1)/\sigma^4$
exactly, $R_2=D(D+1)/\sigma^4-\mathbb E_{p_t}\|H_t+s_ts_t^\top\|_F^2$ for any smooth data
(FORMULAS.md §8). In 1-D any order $k$ is available:
$h_k=(-1/\sigma)^k\mathrm{He}_k\big((x_t-\alpha x_0)/\sigma\big)$ (probabilists' Hermite
polynomials), integrated exactly by $k+1$-node Gauss–Hermite per component.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import expectations
from .._numerics import lead
from .._validation import check_count, check_positive, real_array
from ..expectations import Estimate
from ..mixture import GaussianMixture, check_mixture, posterior_components
from ._common import (
    MAX_ORDER_1D,
    check_alpha_sigma,
    check_mixture_inputs,
    check_order,
    cov_mats,
    rotate_in,
    score_parts,
)

__all__ = [
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
]


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
    order = check_order(order)
    check_alpha_sigma(alpha, sigma)
    x0 = real_array(x0, "x0", finite=True)
    x_t = real_array(x_t, "x_t", finite=True)
    if np.shape(x0)[-1:] != np.shape(x_t)[-1:]:
        raise ValueError(f"x0 and x_t must share the last dimension, got {x0.shape}, {x_t.shape}")
    return _dsm_target_jit(x0, x_t, alpha, sigma, order)


@partial(jax.jit, static_argnums=(4,))
def _dsm_target_jit(x0, x_t, alpha, sigma, order):
    x0, x_t = jnp.broadcast_arrays(x0, x_t)
    u = -(x_t - alpha * x0) / sigma**2
    if order == 1:
        return u
    eye = jnp.eye(u.shape[-1], dtype=u.dtype)
    return u[..., :, None] * u[..., None, :] - eye / sigma**2


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
    order = check_mixture_inputs(gm, alpha, sigma, order)
    return _mean_jit(gm, gm.check_points(x_t, "x_t"), alpha, sigma, order)


def target_mean_impl(gm, x_t, alpha, sigma, order):
    r, g, c = score_parts(gm, x_t, alpha, sigma)
    s = jnp.einsum("...k,...kd->...d", r, g)
    if order == 1:
        return s
    ck = cov_mats(gm, c)
    second = jnp.einsum("...k,...ki,...kj->...ij", r, g, g) + jnp.einsum("...k,kij->...ij", r, ck)
    return second - lead(jnp.eye(gm.dim, dtype=second.dtype) / sigma**2, second.ndim)


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
    order = check_mixture_inputs(gm, alpha, sigma, order)
    return _cov_jit(gm, gm.check_points(x_t, "x_t"), alpha, sigma, order)


def target_cov_impl(gm, x_t, alpha, sigma, order):
    r, g, c = score_parts(gm, x_t, alpha, sigma)
    ck = cov_mats(gm, c)
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
        + lead(jnp.einsum("kil,kjm->kijlm", ck, ck), g.ndim + 3)
        + lead(jnp.einsum("kim,kjl->kijlm", ck, ck), g.ndim + 3)
    )
    mk = gg + lead(ck, gg.ndim)
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
    order = check_mixture_inputs(gm, alpha, sigma, order)
    return _trace_jit(gm, gm.check_points(x_t, "x_t"), alpha, sigma, order)


def target_trace_impl(gm, x_t, alpha, sigma, order):
    r, g, c = score_parts(gm, x_t, alpha, sigma)
    s = jnp.einsum("...k,...kd->...d", r, g)
    trc = jnp.sum(c, axis=-1)  # (K,)
    if order == 1:
        spread = jnp.sum((g - s[..., None, :]) ** 2, axis=-1)
        return jnp.einsum("...k,...k->...", r, lead(trc, spread.ndim) + spread)
    gr = rotate_in(gm, g)  # (..., K, D) in each component's eigenbasis
    g2 = jnp.sum(g * g, axis=-1)
    gcg = jnp.sum(gr * gr * lead(c, gr.ndim), axis=-1)
    nd = g2.ndim
    within = (
        2.0 * g2 * lead(trc, nd) + 2.0 * gcg + lead(trc**2, nd) + lead(jnp.sum(c * c, axis=-1), nd)
    )
    mk = g[..., :, None] * g[..., None, :] + lead(cov_mats(gm, c), g.ndim + 1)
    mbar = jnp.einsum("...k,...kij->...ij", r, mk)
    between = jnp.sum((mk - mbar[..., None, :, :]) ** 2, axis=(-2, -1))
    return jnp.einsum("...k,...k->...", r, within + between)


_mean_jit = jax.jit(target_mean_impl, static_argnums=(4,))
_cov_jit = jax.jit(target_cov_impl, static_argnums=(4,))
_trace_jit = jax.jit(target_trace_impl, static_argnums=(4,))


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
    order = check_order(order, range(1, MAX_ORDER_1D + 1))
    check_alpha_sigma(alpha, sigma)
    return _moments_1d_jit(gm, gm.check_points(x_t, "x_t"), alpha, sigma, order)


@partial(jax.jit, static_argnums=(4,))
def _moments_1d_jit(gm, x_t, alpha, sigma, order):
    r, g, c = score_parts(gm, x_t, alpha, sigma)
    # u = -z/sigma ~ N(g, c)  =>  z ~ N(-sigma g, sigma^2 c)
    nodes, wts = np.polynomial.hermite_e.hermegauss(order + 1)
    wts = jnp.asarray(wts / wts.sum())
    zmean = -sigma * g[..., 0]  # (..., K)
    zstd = sigma * jnp.sqrt(c[:, 0])  # (K,)
    spread = zstd[:, None] * jnp.asarray(nodes)[None, :]  # (K, n)
    z = zmean[..., None] + lead(spread, zmean.ndim + 1)  # (..., K, n)
    coef = np.zeros(order + 1)
    coef[order] = 1.0
    he = jnp.polyval(jnp.asarray(np.polynomial.hermite_e.herme2poly(coef)[::-1]), z)
    h = (-1.0 / sigma) ** order * he
    wts = lead(wts, h.ndim)
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
    check_alpha_sigma(alpha, sigma)
    return _sample_posterior_jit(gm, gm.check_points(x_t, "x_t"), alpha, sigma, key, n)


def sample_posterior_impl(gm, x_t, alpha, sigma, key, n):
    """Unchecked body of :func:`sample_posterior` (traceable; ``n`` static)."""
    r, m, v = posterior_components(gm, x_t, alpha, sigma)
    kc, ke = jax.random.split(key)
    comp = jax.random.categorical(kc, jnp.log(r), shape=(n,) + r.shape[:-1])  # (n, ...)
    mk = jnp.take_along_axis(m[None], comp[..., None, None], axis=-2)[..., 0, :]
    eps = jax.random.normal(ke, comp.shape + (gm.dim,), dtype=m.dtype)
    z = jnp.sqrt(v[comp]) * eps
    if not gm.diagonal:
        z = jnp.einsum("...de,...e->...d", gm.eigvecs[comp], z)
    return mk + z


_sample_posterior_jit = jax.jit(sample_posterior_impl, static_argnums=(5,))


def _trace_order1(x, alpha, sigma, gm):
    """Engine integrand: tr Var(h_1 | x_t = x)."""
    return target_trace_impl(gm, x, alpha, sigma, 1)


def _trace_order2(x, alpha, sigma, gm):
    """Engine integrand: tr Var(h_2 | x_t = x)."""
    return target_trace_impl(gm, x, alpha, sigma, 2)


_TRACE_INTEGRANDS = {1: _trace_order1, 2: _trace_order2}


def irreducible_target_variance(
    gm: GaussianMixture,
    alpha,
    sigma,
    order: int = 1,
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    rtol: float | None = None,
    grid_size: int | None = None,
) -> Estimate:
    r"""$R_k(t)=\mathbb E_{x_t\sim p_t}\,\mathrm{tr}\,\mathrm{Var}(h_k\mid x_t)$, the irreducible
    part of the order-$k$ DSM loss (Zhang et al. 2025; FORMULAS.md §3 item 15, §4).

    Rao–Blackwellized: the closed-form conditional variance is averaged over $x_t$ by the
    engine (:mod:`dsmtheory.expectations`), never taken as a difference of Monte Carlo
    means. ``R_1`` equals $D/\sigma^2-\mathrm{tr}I_t$; ``R_2`` equals
    $D(D+1)/\sigma^4-\mathbb E\|H_t+s_ts_t^\top\|_F^2$.

    Args:
        gm: clean mixture.
        alpha, sigma: scalars > 0.
        order: 1 or 2.
        method: ``"auto"``, ``"adaptive"``, ``"gauss_hermite"`` or ``"monte_carlo"`` (the old
            ``"mc"`` and ``"grid"`` are deprecated aliases).
        key: Monte Carlo key (``None``: ``PRNGKey(0)``).
        num_samples: Monte Carlo draws (default 20 000).
        rtol: relative tolerance of the deterministic rules.
        grid_size: deprecated and ignored (the grid rule is gone).

    Returns:
        :class:`~dsmtheory.expectations.Estimate`.
    """
    order = check_mixture_inputs(gm, alpha, sigma, order)
    if grid_size is not None:
        warnings.warn(
            "grid_size is deprecated and ignored: the engine's rules replace the grid",
            DeprecationWarning,
            stacklevel=2,
        )
    return expectations.expect(
        _TRACE_INTEGRANDS[order],
        gm.noised(alpha, sigma),
        (jnp.asarray(alpha), jnp.asarray(sigma), gm),
        method=method,
        key=key,
        num_samples=num_samples,
        rtol=rtol,
    )


def inverse_variance_weight(gm: GaussianMixture, alpha, sigma, order: int = 1, **kw) -> Estimate:
    r"""Scalar inverse-variance weighting of the order-$k$ loss,
    $\Lambda_k^*=D^k/R_k(t)$ (one over the mean per-entry irreducible variance; FORMULAS.md
    §3 item 15). $\Lambda_1^*=D/(D\sigma^{-2}-\mathrm{tr}I_t)$; for small σ,
    $\Lambda_2^*=\frac{D}{D+1}\sigma^4(1+O(\sigma^4))$: $\sigma^4$ plays the heuristic's role.
    Standard error by the delta method. Keyword arguments go to
    :func:`irreducible_target_variance`.
    """
    order = check_order(order)
    est = irreducible_target_variance(gm, alpha, sigma, order, **kw)
    lam = gm.dim**order / est.value
    return est._replace(value=lam, stderr=lam * est.stderr / est.value)


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
    order = check_order(order)
    check_count(dim, "dim")
    check_positive(std, "std")
    check_alpha_sigma(alpha, sigma)
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
