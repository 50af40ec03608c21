r"""Target score matching (De Bortoli et al. 2024, FORMULAS.md §3 item 17, §8 "TSM/DSM mix").

The target $a=\alpha^{-1}\nabla\log p_0(x_0)$ has $\mathbb E[a\mid x_t]=s^*(x_t)$, and so does
every mix $\kappa a+(1-\kappa)u$ with the DSM target $u=h_1$. Since
$\mathbb E[a^\top u]=0$ ($\varepsilon\perp x_0$),

$$V(\kappa)=\mathbb E\,\mathrm{tr}\,\mathrm{Var}(\kappa a+(1-\kappa)u\mid x_t)
=\kappa^2\frac{\mathrm{tr}I_0}{\alpha^2}+(1-\kappa)^2\frac{D}{\sigma^2}-\mathrm{tr}I_t,$$

minimised at $\kappa^*=\mathrm{sigmoid}(\lambda-\log J_0)$ with $J_0=\mathrm{tr}I_0/D$ (for
$N(m,s^2I)$ data $J_0=s^{-2}$: $\kappa^*=\mathrm{sigmoid}(\lambda+\log s^2)$); the DSM and TSM
variances cross exactly at $\lambda=\log J_0$. The TSM target needs $\nabla\log p_0$, which a
rank-deficient $p_0$ does not have.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import variance
from .._validation import check_count, check_finite, check_positive
from ..expectations import Estimate, resolve_key
from ..mixture import GaussianMixture, check_mixture
from ._common import check_alpha_sigma, check_kappa
from .order_k import dsm_target, sample_posterior_impl, target_mean_impl, target_trace_impl

__all__ = [
    "TSMMoments",
    "tsm_target",
    "mixed_target",
    "fisher_trace",
    "kappa_star",
    "kappa_star_gaussian",
    "mix_variance",
    "crossing_lambda",
    "tsm_moments",
]


def _f64(v):
    return jnp.asarray(v, dtype=jnp.result_type(float))


def tsm_target(gm: GaussianMixture, x0, alpha) -> jax.Array:
    r"""The TSM target $a=\alpha^{-1}\nabla\log p_0(x_0)$ (De Bortoli et al. 2024; FORMULAS.md
    §3 item 17), exact for a mixture. ``(..., D)`` → ``(..., D)``.

    Raises:
        ValueError: ``gm`` is rank-deficient (``gm.rank_deficient``): such a $p_0$ has no
            density, so no $\nabla\log p_0$ and no TSM target (its Fisher information
            $\mathrm{tr}I_0$ is infinite and $\kappa^*=0$: plain DSM).
    """
    check_mixture(gm)
    _refuse_rank_deficient(gm, "tsm_target")
    check_alpha_sigma(alpha, 1.0)
    return _tsm_target_jit(gm, gm.check_points(x0, "x0"), alpha)


def _refuse_rank_deficient(gm: GaussianMixture, where: str) -> None:
    if gm.rank_deficient:
        raise ValueError(
            f"{where}: gm is rank-deficient (a component covariance has a zero eigenvalue; "
            "component ranks "
            f"{np.asarray(gm.ranks).tolist()} in D = {gm.dim}), so p0 has no density and the "
            "TSM target alpha^-1 grad log p0 does not exist (tr I0 = inf, kappa* = 0: use the "
            "DSM target)"
        )


@jax.jit
def _tsm_target_jit(gm, x0, alpha):
    return gm.score(x0) / alpha


def mixed_target(gm: GaussianMixture, x0, x_t, alpha, sigma, kappa) -> jax.Array:
    r"""The unbiased affine mix $\kappa\,\alpha^{-1}\nabla\log p_0(x_0)+(1-\kappa)h_1$
    (FORMULAS.md §3 item 17). Both parts have conditional mean $s^*(x_t)$, so any real κ is
    unbiased; κ is required to lie in [0, 1] (a convex mix: the variance-optimal κ* always
    does), and ValueError is raised otherwise."""
    check_kappa(kappa)
    return kappa * tsm_target(gm, x0, alpha) + (1 - kappa) * dsm_target(x0, x_t, alpha, sigma)


def fisher_trace(gm: GaussianMixture, *, method: str = "auto", **options) -> Estimate:
    r"""Deprecated alias of :func:`dsmtheory.variance.fisher_trace` (one release):
    $\mathrm{tr}I=\mathbb E_{x\sim p}\|\nabla\log p(x)\|^2$ of ``gm``'s own density."""
    warnings.warn(
        "targets.fisher_trace is deprecated; use variance.fisher_trace",
        DeprecationWarning,
        stacklevel=2,
    )
    options.pop("grid_size", None)
    return variance.fisher_trace(gm, method=method, **options)


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
    check_kappa(kappa)
    check_alpha_sigma(alpha, sigma)
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
    gm: GaussianMixture, alpha, sigma, *, key=None, num_outer: int = 2048, num_inner: int = 16
) -> TSMMoments:
    r"""Nested Monte Carlo of the TSM/DSM conditional moments (FORMULAS.md §3 item 17).

    Outer: $x_t^{(i)}\sim p_t$. Inner: $x_0^{(ij)}\sim p(x_0\mid x_t^{(i)})$ exactly. With the
    known conditional mean $s^*=\mathbb E[a\mid x_t]=\mathbb E[u\mid x_t]$ the per-point
    estimates $\frac1J\sum_j\|a_{ij}-s_i\|^2$ and $\frac1J\sum_j(a_{ij}-s_i)^\top(u_{ij}-s_i)$
    are unbiased; $\mathrm{tr}\,\mathrm{Var}(u\mid x_t)$ is the closed form
    (Rao–Blackwellized). Standard errors come from the spread over the outer points. (The
    per-point quantities are themselves Monte Carlo estimates, so this nested estimator is
    not a job for the expectation engine, which averages closed-form per-point functions.)
    ``key=None`` means ``PRNGKey(0)``, as everywhere.
    """
    check_mixture(gm)
    _refuse_rank_deficient(gm, "tsm_moments")
    check_alpha_sigma(alpha, sigma)
    n = check_count(num_outer, "num_outer", 2)
    j = check_count(num_inner, "num_inner", 1)
    key, kdesc = resolve_key(key)
    a_i, b_i, c_i = _tsm_pointwise(gm, _f64(alpha), _f64(sigma), key, n, j)
    a_i, b_i, c_i = (np.asarray(v) for v in (a_i, b_i, c_i))
    rule = f"nested Monte Carlo, {n} draws of x_t x {j} exact posterior draws of x0, {kdesc}"

    def est(v, r):
        return Estimate(float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)), "monte_carlo", r)

    ea, ec = est(a_i, rule), est(c_i, rule)
    eb = est(b_i, f"Rao-Blackwellized closed form averaged over the {n} draws of x_t")
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
        est(infl_k, rule + " (delta method)")._replace(value=kap),
        est(infl_v, rule)._replace(value=vmix),
    )


@partial(jax.jit, static_argnums=(4, 5))
def _tsm_pointwise(gm, alpha, sigma, key, n, j):
    k1, k2 = jax.random.split(key)
    x_t = gm.noised(alpha, sigma).sample(k1, n)
    x0 = sample_posterior_impl(gm, x_t, alpha, sigma, k2, j)
    s = target_mean_impl(gm, x_t, alpha, sigma, 1)
    b = target_trace_impl(gm, x_t, alpha, sigma, 1)
    a = gm.score(x0) / alpha - s[None]  # (J, n, D)
    u = (alpha * x0 - x_t[None]) / sigma**2 - s[None]
    return jnp.mean(jnp.sum(a * a, -1), 0), b, jnp.mean(jnp.sum(a * u, -1), 0)
