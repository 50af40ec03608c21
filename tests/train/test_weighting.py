"""Tests of the weighting of a training run: the oracle weights against hand-derived values,
registry weightings defined through a density get the training schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import train as T

from .conftest import F32_RTOL, TABLE_RTOL, TINY


@pytest.mark.slow
def test_matrix_optimal_equals_c_star_for_one_gaussian_in_1d():
    # x0 ~ N(m, s²), VE: Cov[x0|x_t] = s²σ²/(s²+σ²), so Cov[ε|x_t] = s²/(s²+σ²) and the
    # ε-space matrix weight is the scalar 1/Cov[ε|x_t] = 1 + σ²/s² = c*(σ) (derived by hand).
    s_data = 0.7
    gm = dsm.single_gaussian([0.3], s_data)
    kw = dict(mixture=gm, sigma_max=5.0, capacity=30, **TINY)
    cfg_m = T.TrainConfig(weighting="matrix_optimal", **kw)
    cfg_c = T.TrainConfig(weighting="c_star", **kw)
    key = jax.random.PRNGKey(3)
    st = T.init_state(cfg_m, key)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
    x0 = 0.3 + s_data * jax.random.normal(k1, (64, 1))
    eps = jax.random.normal(k2, (64, 1))
    sig = jnp.exp(jax.random.uniform(k3, (64,), minval=np.log(0.01), maxval=np.log(5.0)))
    lam = -2 * jnp.log(sig)
    lm = np.asarray(T.loss_per_example(cfg_m, st, x0, eps, lam), np.float64)
    lc = np.asarray(T.loss_per_example(cfg_c, st, x0, eps, lam), np.float64)
    ls = np.asarray(T.loss_per_example(cfg_m.replace(weighting="simple"), st, x0, eps, lam))
    hand = (1.0 + np.asarray(sig, np.float64) ** 2 / s_data**2) * ls
    np.testing.assert_allclose(lm, hand, rtol=F32_RTOL * 10)  # eigh of a 1x1 in float32
    np.testing.assert_allclose(lc, hand, rtol=TABLE_RTOL)


def test_density_weighting_gets_the_training_schedule():
    # elbo is defined through the sampling density: w = 1 means ω_ε = 1/p(λ), and for the
    # VE geometric schedule p(λ) = 1/(2 log(σ_max/σ_min)) (FORMULAS.md §2), a constant.
    cfg = T.TrainConfig(weighting="elbo", sigma_max=4.0, capacity=25, **TINY)
    batch = jax.jit(T.make_problem(cfg).sample)(jax.random.PRNGKey(0))
    # weights are computed in float64 and rounded to float32 (6e-8 relative)
    np.testing.assert_allclose(np.asarray(batch.weight), 2 * np.log(4.0 / 0.01), rtol=1e-6)
    # a schedule given by the user is kept: the cosine density truncated to [-20, 20] is
    # sech(λ/2)/(2π) / (t1 − t0) with t = (2/π) arctan(e^{-λ/2}), so ω_ε = 2π cosh(λ/2)(t1 − t0)
    cfg = cfg.replace(weighting_params={"schedule": dsm.schedules.get("cosine")})
    batch = jax.jit(T.make_problem(cfg).sample)(jax.random.PRNGKey(0))
    lam = np.asarray(batch.lam, np.float64)
    mass = 2 / np.pi * (np.arctan(np.exp(10.0)) - np.arctan(np.exp(-10.0)))
    hand = 2 * np.pi * np.cosh(lam / 2) * mass
    np.testing.assert_allclose(np.asarray(batch.weight), hand, rtol=1e-6)
