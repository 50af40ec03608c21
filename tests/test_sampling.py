"""Tests of dsmtheory.sampling: grids, Heun against the closed-form Gaussian flow and a naive
loop, and both samplers driven by the exact mixture score against the mixture itself."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerances import EXACT_ATOL, EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory.metrics import energy_distance
from dsmtheory.models import as_score_fn, mlp_for_param_count
from dsmtheory.sampling import (
    edm_sigmas,
    euler_maruyama_sde,
    geometric_sigmas,
    heun_pf_ode,
    sample_pf_ode,
    sample_sde,
)

RING = dsm.ring(8, 2.0, 0.25)
BIMODAL = dsm.bimodal_1d(4.0, 0.25, weight=0.3)


def ring_score(x, sigma):
    return RING.noised(1.0, sigma).score(x)


def bimodal_score(x, sigma):
    return BIMODAL.noised(1.0, sigma).score(x)


GAUSS_MEAN = jnp.array([[1.0, -1.0]])  # (1, D): one row, broadcast over the points
GAUSS_VAR = 0.25


def gauss_score(x, sigma):
    return -(x - GAUSS_MEAN) / (GAUSS_VAR + sigma**2)


def test_edm_sigmas_formula():
    n, smin, smax, rho = 10, 0.002, 80.0, 7.0
    s = np.asarray(edm_sigmas(n, sigma_min=smin, sigma_max=smax, rho=rho))
    assert s.shape == (n + 1,) and s[-1] == 0.0
    np.testing.assert_allclose([s[0], s[n - 1]], [smax, smin], rtol=EXACT_RTOL)
    # the rho-th roots are equally spaced
    np.testing.assert_allclose(np.diff(np.diff(s[:n] ** (1 / rho))), 0.0, atol=1e-12)
    assert np.all(np.diff(s) < 0)


def test_geometric_sigmas_formula():
    s = np.asarray(geometric_sigmas(6, sigma_min=0.01, sigma_max=50.0))
    assert s.shape == (7,) and s[-1] == 0.0
    np.testing.assert_allclose([s[0], s[5]], [50.0, 0.01], rtol=EXACT_RTOL)
    ratios = s[1:6] / s[:5]
    np.testing.assert_allclose(ratios, (0.01 / 50.0) ** 0.2, rtol=EXACT_RTOL)


def _naive_heun(score_fn, x, sigmas):
    """Karras et al. Algorithm 1 written as a plain Python loop."""
    x = np.asarray(x)
    sig = np.asarray(sigmas)
    score_fn = jax.jit(score_fn)  # one compile for all calls (same shapes)
    for i in range(len(sig) - 1):
        d = -sig[i] * np.asarray(score_fn(jnp.asarray(x), sig[i]))
        x_next = x + (sig[i + 1] - sig[i]) * d
        if sig[i + 1] != 0:
            d2 = -sig[i + 1] * np.asarray(score_fn(jnp.asarray(x_next), sig[i + 1]))
            x_next = x + (sig[i + 1] - sig[i]) * 0.5 * (d + d2)
        x = x_next
    return x


def test_heun_matches_naive_loop():
    sigmas = edm_sigmas(6, sigma_max=10.0)
    x0 = 10.0 * jax.random.normal(jax.random.key(0), (5, 2))
    res = heun_pf_ode(ring_score, x0, sigmas, return_trajectory=True)
    np.testing.assert_allclose(
        res.samples, _naive_heun(ring_score, x0, sigmas), rtol=EXACT_RTOL, atol=EXACT_ATOL
    )
    assert res.nfe == 2 * 6 - 1
    assert res.trajectory.shape == (7, 5, 2)
    np.testing.assert_array_equal(res.trajectory[0], x0)
    np.testing.assert_array_equal(res.trajectory[-1], res.samples)


def test_heun_second_order_on_gaussian_flow():
    """For N(m, v I) the flow is x(s) - m = (x(S) - m) sqrt((v + s^2)/(v + S^2)); Heun's
    error at sigma_min falls ~4x when the steps double, and the last step is Euler to 0."""
    x0 = 80.0 * jax.random.normal(jax.random.key(1), (4, 2))
    errs = []
    for n in (16, 32, 64):
        sig = edm_sigmas(n)
        res = heun_pf_ode(gauss_score, x0, sig, return_trajectory=True)
        smin, smax = float(sig[-2]), float(sig[0])
        exact = GAUSS_MEAN + (x0 - GAUSS_MEAN) * math.sqrt(
            (GAUSS_VAR + smin**2) / (GAUSS_VAR + smax**2)
        )
        errs.append(float(jnp.max(jnp.abs(res.trajectory[-2] - exact))))
        last = res.trajectory[-2]
        euler = last - smin * (-smin) * gauss_score(last, smin)
        np.testing.assert_allclose(res.samples, euler, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    assert errs[-1] < 5e-3  # measured 2.2e-3 at 64 steps (data std 0.5, sigma_max 80)
    for coarse, fine in zip(errs[:-1], errs[1:], strict=True):
        assert 3.0 < coarse / fine < 5.5  # second order: ratio -> 4


def _null_energy(gm, n, reps):
    """ED between two independent exact sample sets: the two-sample noise floor."""
    vals = [
        float(
            energy_distance(
                gm.sample(jax.random.key(1000 + r), n), gm.sample(jax.random.key(2000 + r), n)
            )
        )
        for r in range(reps)
    ]
    return float(np.mean(vals)), float(np.std(vals, ddof=1))


@pytest.mark.slow
def test_samplers_with_exact_score_reach_the_ring():
    n, reps = 800, 30
    mu0, sd0 = _null_energy(RING, n, reps)
    bound = mu0 + Z_BOUND * sd0
    ref = RING.sample(jax.random.key(7), n)
    ode = sample_pf_ode(ring_score, jax.random.key(1), n, 2, num_steps=32)
    sde = sample_sde(ring_score, jax.random.key(2), n, 2, num_steps=400, sigma_max=80.0)
    assert ode.nfe == 63 and sde.nfe == 400
    assert ode.trajectory is None and sde.trajectory is None
    for res in (ode, sde):
        assert res.samples.shape == (n, 2) and bool(jnp.all(jnp.isfinite(res.samples)))
        assert float(energy_distance(res.samples, ref)) <= bound
    # power: mode collapse (one of the 8 modes missing) lands far above the bound
    means = np.asarray(RING.means)[np.arange(8) != 5]
    collapsed = dsm.GaussianMixture(np.full(7, 1 / 7), means, np.full(7, 0.0625))
    assert float(energy_distance(collapsed.sample(jax.random.key(3), n), ref)) > bound


def test_samplers_get_bimodal_weights():
    n, w = 2000, 0.3
    ode = sample_pf_ode(bimodal_score, jax.random.key(3), n, 1, num_steps=32, sigma_max=20.0)
    sde = sample_sde(bimodal_score, jax.random.key(4), n, 1, num_steps=300, sigma_max=20.0)
    se = math.sqrt(w * (1 - w) / n)
    for res in (ode, sde):
        left = float(jnp.mean(res.samples[:, 0] < 0))
        assert abs(left - w) <= Z_BOUND * se
        # and the samples sit in the modes: |x| close to 2 (4 std = 1)
        assert float(jnp.mean(jnp.abs(jnp.abs(res.samples[:, 0]) - 2.0) < 1.0)) > 0.99


def test_sde_determinism_and_trajectory():
    sig = geometric_sigmas(20, sigma_max=10.0)
    x0 = 10.0 * jax.random.normal(jax.random.key(5), (6, 2))
    a = euler_maruyama_sde(ring_score, jax.random.key(6), x0, sig, return_trajectory=True)
    # same static arguments as `a`, so one compiled kernel serves all three calls
    b = euler_maruyama_sde(ring_score, jax.random.key(6), x0, sig, return_trajectory=True)
    c = euler_maruyama_sde(ring_score, jax.random.key(7), x0, sig, return_trajectory=True)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.allclose(a.samples, c.samples)
    assert a.trajectory.shape == (21, 6, 2)
    last = a.trajectory[-2]
    tweedie = last + 0.01**2 * ring_score(last, 0.01)
    np.testing.assert_allclose(a.samples, tweedie, rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_model_driven_sampling_runs_in_float32():
    model = mlp_for_param_count(jax.random.key(0), 2, 100)
    res = sample_pf_ode(
        as_score_fn(model), jax.random.key(1), 16, 2, num_steps=8, dtype=jnp.float32
    )
    assert res.samples.shape == (16, 2) and res.samples.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(res.samples)))


def test_bad_input_named():
    sig = edm_sigmas(4)
    x = jnp.zeros((3, 2))
    with pytest.raises(TypeError, match="score_fn"):
        heun_pf_ode(None, x, sig)
    with pytest.raises(ValueError, match="end with 0"):
        heun_pf_ode(ring_score, x, sig[:-1])
    with pytest.raises(ValueError, match="decreasing"):
        heun_pf_ode(ring_score, x, jnp.array([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="x_init"):
        heun_pf_ode(ring_score, jnp.zeros(3), sig)
    with pytest.raises(ValueError, match="x_init must be finite"):
        heun_pf_ode(ring_score, jnp.full((3, 2), jnp.nan), sig)
    with pytest.raises(ValueError, match="num_steps"):
        edm_sigmas(1)
    with pytest.raises(ValueError, match="sigma_min must be < sigma_max"):
        geometric_sigmas(10, sigma_min=5.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="sigma_max must be > 0"):
        edm_sigmas(10, sigma_max=-1.0)
    with pytest.raises(ValueError, match="num_samples"):
        sample_sde(ring_score, jax.random.key(0), 0, 2)
    with pytest.raises(ValueError, match="at least 3 levels"):
        euler_maruyama_sde(ring_score, jax.random.key(0), x, jnp.array([1.0, 0.0]))
