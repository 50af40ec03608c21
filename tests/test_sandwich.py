"""Tests of dsmtheory.sandwich: asymptotic variance of the linear DSM estimator vs the spread
of independent fits, a Gaussian closed form, and P10 with optax training runs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate
from tolerances import Z_BOUND

import dsmtheory as dsm
from dsmtheory import sandwich as sw
from dsmtheory import schedules, weightings

# A sandwich is an O(1/N) approximation: with N = 500 samples per fit the O(1/N²) remainder
# is ~1 % of tr Var, well inside the ~7 % Monte Carlo error of a 200-fit variance estimate;
# the z-bound below covers the Monte Carlo error only.
N_PER_FIT = 500
NUM_FITS = 200


@pytest.fixture(scope="module")
def setup():
    gm = dsm.bimodal_1d(separation=2.0, std=0.5)
    var = float(gm.covariance()[0, 0])
    model = sw.random_fourier_model(jax.random.PRNGKey(0), 1, 2, var, bandwidth=1.5)
    sched = schedules.get("ve", sigma_min=0.05, sigma_max=5.0)
    return gm, var, model, sched


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simple", "edm"])
def test_sandwich_matches_spread_of_fits(setup, name):
    gm, var, model, sched = setup
    c_fn = weightings.get("edm", sigma_data=var**0.5) if name == "edm" else weightings.get(name)
    pred = sw.sandwich_variance(gm, model, sched, c_fn, N_PER_FIT)
    emp = sw.simulate_fits(jax.random.PRNGKey(11), gm, model, sched, c_fn, N_PER_FIT, NUM_FITS)
    assert emp.thetas.shape == (NUM_FITS, model.num_params)
    z = (emp.trace - pred.trace) / emp.trace_stderr
    assert abs(z) < Z_BOUND, (emp.trace, pred.trace, emp.trace_stderr)
    # the fits scatter around θ*
    se_mean = np.sqrt(np.diag(np.asarray(pred.cov)) / NUM_FITS)
    assert np.all(np.abs(np.asarray(emp.thetas.mean(0) - pred.theta_star)) < Z_BOUND * se_mean)


@pytest.mark.slow
def test_sandwich_gaussian_closed_form():
    # N(0, s²), features ψ = −u only (F = 0): s* = −x/S is representable, θ* = 1, δ = 0.
    # By hand with ω = σ² (c = 1), p uniform in λ on [lo, hi] (VE, σ² = e^{−λ}):
    #   a = E[Φ²] = 1/S, b = E[Φ² C] = s²/(σ² S²)  (C = s²/(σ² S), E u² = 1)
    #   A = ∫ p σ²/S dλ, B = ∫ p σ⁴ s²/(σ² S²) dλ, Var = B / (A² N).
    s2 = 0.3**2
    gm = dsm.single_gaussian([0.0], 0.3)
    model = sw.random_fourier_model(jax.random.PRNGKey(0), 1, 0, s2)
    sched = schedules.get("ve", sigma_min=0.1, sigma_max=3.0)
    lo, hi = sched.lam_min, sched.lam_max
    p = 1.0 / (hi - lo)
    A = integrate.quad(lambda l: p * np.exp(-l) / (s2 + np.exp(-l)), lo, hi, epsrel=1e-13)[0]
    B = integrate.quad(
        lambda l: p * np.exp(-l) * s2 / (s2 + np.exp(-l)) ** 2, lo, hi, epsrel=1e-13
    )[0]
    res = sw.sandwich_variance(gm, model, sched, weightings.get("simple"), 100)
    np.testing.assert_allclose(res.theta_star, [1.0], rtol=1e-10)
    assert res.fisher_divergence < 1e-20
    np.testing.assert_allclose(res.trace, B / A**2 / 100, rtol=1e-8)


@pytest.mark.slow
def test_scalar_optimum_not_worse_than_sigma2(setup):
    gm, var, model, sched = setup
    c_opt = sw.optimal_scalar_weight(gm, model, sched, iterations=2)
    t_opt = sw.sandwich_variance(gm, model, sched, c_opt, 1).trace
    t_s2 = sw.sandwich_variance(gm, model, sched, weightings.get("simple"), 1).trace
    assert t_opt < t_s2


# --------------------------------------------------------------------------- P10
def _train(setup, c_fn, opt, steps=20):
    gm, _, model, sched = setup
    return sw.train_linear(
        jax.random.PRNGKey(3), gm, model, sched, c_fn, opt, steps=steps, batch_size=32
    )


@pytest.mark.slow
def test_p10_adam_invariant_to_constant_c(setup):
    opt = optax.adam(1e-2, eps=1e-16)  # ε tiny: Adam's only scale-dependent term
    t1 = _train(setup, lambda l: jnp.ones_like(l), opt)
    t10 = _train(setup, lambda l: 10.0 * jnp.ones_like(l), opt)
    rel = float(jnp.max(jnp.abs(t10 - t1)) / jnp.max(jnp.abs(t1)))
    assert rel < 1e-6
    # a time-varying c(λ) changes the trajectory
    tv = _train(setup, lambda l: 1.0 + jnp.exp(-l), opt)
    assert float(jnp.max(jnp.abs(tv - t1)) / jnp.max(jnp.abs(t1))) > 1e-3


@pytest.mark.slow
def test_p10_sgd_constant_c_is_learning_rate(setup):
    sgd_small = optax.sgd(1e-3)
    a = _train(setup, lambda l: 10.0 * jnp.ones_like(l), sgd_small)
    b = _train(setup, lambda l: jnp.ones_like(l), optax.sgd(1e-2))
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    c = _train(setup, lambda l: jnp.ones_like(l), sgd_small)
    assert float(jnp.max(jnp.abs(a - c))) > 1e-3


def test_features_shape_and_gaussian_column(setup):
    _, var, model, _ = setup
    x = jnp.array([[0.3], [-1.0]])
    phi = sw.features(model, x, jnp.ones(2), jnp.array([0.5, 2.0]))
    assert phi.shape == (2, 1, model.num_params)
    S = var + jnp.array([0.25, 4.0])
    np.testing.assert_allclose(phi[:, 0, 0], -x[:, 0] / S, rtol=1e-14)


def test_bad_input(setup):
    gm, var, model, sched = setup
    with pytest.raises(TypeError, match="schedule"):
        sw.sandwich_variance(gm, model, "ve", weightings.get("simple"), 10)
    with pytest.raises(TypeError, match="c_fn"):
        sw.sandwich_variance(gm, model, sched, 3.0, 10)
    with pytest.raises(ValueError, match="num_samples"):
        sw.sandwich_variance(gm, model, sched, weightings.get("simple"), 0)
    with pytest.raises(ValueError, match="c_fn"):
        sw.sandwich_variance(gm, model, sched, lambda l: -jnp.ones_like(l), 10)
    with pytest.raises(ValueError, match="dim"):
        sw.sandwich_variance(dsm.ring(), model, sched, weightings.get("simple"), 10)
    with pytest.raises(ValueError, match="num_fits"):
        sw.simulate_fits(jax.random.PRNGKey(0), gm, model, sched, weightings.get("simple"), 10, 1)
    with pytest.raises(ValueError, match="data_var"):
        sw.random_fourier_model(jax.random.PRNGKey(0), 1, 2, -1.0)
    with pytest.raises(ValueError, match="steps"):
        sw.train_linear(
            jax.random.PRNGKey(0),
            gm,
            model,
            sched,
            weightings.get("simple"),
            optax.sgd(0.1),
            steps=0,
            batch_size=4,
        )
