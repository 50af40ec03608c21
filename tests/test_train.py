"""Tests of dsmtheory.train: tiny budgets, exact references, float32 training tolerances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerances import Z_BOUND

import dsmtheory as dsm
from dsmtheory import losses, models
from dsmtheory import train as T

# Training runs in float32; two float32 evaluations of the same function that differ only in
# summation order (padded vs unpadded matrix products, vmapped vs single) agree to a few ulps
# per step, amplified over a few Adam steps: 2e-5 relative leaves room for that and nothing
# else (a wrong mask or key moves results by O(1)).
F32_RTOL = 2e-5
F32_ATOL = 1e-6
# The c* weighting is a table interpolated linearly in log c*, on 257 λ points: the
# interpolation error is h²/8·max|(log c*)''| ≈ (0.05)²/8·0.25 < 1e-4.
TABLE_RTOL = 1e-4

TINY = dict(steps=3, batch_size=8)


def _bimodal_cfg(**kw):
    base = dict(mixture=dsm.bimodal_1d(), capacity=100, **TINY)
    base.update(kw)
    return T.TrainConfig(**base)


# --- configuration errors -----------------------------------------------------------------
def test_unknown_weighting_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown weighting 'nope'.*matrix_optimal.*simple"):
        T.TrainConfig(weighting="nope")


@pytest.mark.parametrize("field", ["capacity", "steps", "batch_size"])
def test_counts_below_one_name_the_argument(field):
    with pytest.raises(ValueError, match=f"{field} must be >= 1"):
        T.TrainConfig(**{field: 0})


def test_other_bad_settings():
    with pytest.raises(TypeError, match="capacity must be an integer"):
        T.TrainConfig(capacity=2.5)
    with pytest.raises(ValueError, match="learning_rate"):
        T.TrainConfig(learning_rate=-1.0)
    with pytest.raises(ValueError, match="unknown parameterization"):
        T.TrainConfig(parameterization="y")
    with pytest.raises(ValueError, match="batch_size must be even"):
        T.TrainConfig(noise_sampling="antithetic", batch_size=3)
    with pytest.raises(ValueError, match="capacity 3 is too small"):
        T.TrainConfig(capacity=3)
    with pytest.raises(TypeError, match="mixture must be a GaussianMixture"):
        T.TrainConfig(mixture=[0.0])


def test_mismatched_sample_dimensions():
    cfg = _bimodal_cfg()
    st = T.init_state(cfg, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"x0 and eps must both have shape \(N, 1\)"):
        T.loss_per_example(cfg, st, jnp.zeros((4, 2)), jnp.zeros((4, 2)), jnp.zeros(4))
    with pytest.raises(ValueError, match=r"x_t must have shape \(N, 1\)"):
        T.fisher_divergence(lambda x: x, dsm.bimodal_1d(), jnp.zeros((3, 2)), 1.0, 0.5)
    with pytest.raises(ValueError, match="same number of dimensions"):
        dsm.metrics.energy_distance(jnp.zeros((3, 1)), jnp.zeros((3, 2)))


# --- exact identities -----------------------------------------------------------------------
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


@pytest.mark.parametrize("param", ["eps", "x0", "v", "F"])
def test_loss_equals_losses_dsm_loss(param):
    # independent path: dsmtheory.losses converts ω_ε with κ_a in the output's own space
    cfg = T.TrainConfig(parameterization=param, weighting="min_snr", capacity=100, **TINY)
    st = T.init_state(cfg, jax.random.PRNGKey(1))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
    x0 = cfg.mixture.sample(k1, 32)
    eps = jax.random.normal(k2, x0.shape)
    lam = jax.random.uniform(k3, (32,), minval=-2.5, maxval=9.0)
    ours = T.loss_per_example(cfg, st, x0, eps, lam)
    prob = T._problem_for(cfg)
    x_t = np.asarray(x0) + np.exp(-0.5 * np.asarray(lam))[:, None] * np.asarray(eps)
    raw = T._mlp(
        st.params, st.mask, jnp.asarray(x_t, jnp.float32), lam.astype(jnp.float32), prob.sigma_data
    )
    ref = losses.dsm_loss(
        jnp.asarray(raw, jnp.float64),
        x0,
        eps,
        lam,
        parameterization=param,
        weighting=dsm.weightings.get("min_snr"),
        process="ve",
        sigma_data=prob.sigma_data,
    )
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_exported_model_matches_models_predict_eps(tiny_sweep):
    base, res = tiny_sweep
    i = 1  # simple, capacity 100: width 6 (98 parameters), stored padded to width 6
    cfg = base.replace(weighting="simple", capacity=100)
    st = jax.tree_util.tree_map(lambda a: a[i], res.final_state)
    model = T.to_model(cfg, st)
    assert models.num_params(model) == T.num_params(6, 2) == 98
    x0 = cfg.mixture.sample(jax.random.PRNGKey(6), 16)
    lam = jnp.linspace(-2.0, 8.0, 16)
    x_t = jnp.asarray(np.asarray(x0) + np.exp(-0.5 * np.asarray(lam))[:, None] * 0.3, jnp.float32)
    ref = models.predict_eps(model, x_t, 1.0, jnp.exp(-0.5 * lam).astype(jnp.float32))
    ours = T._problem_for(cfg).eps_hat(st.params, st.mask, x_t, lam.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_noise_sampling_modes():
    prob = T._problem_for(T.TrainConfig(noise_sampling="stratified", batch_size=16))
    _, _, lam = prob.draw_batch(jax.random.PRNGKey(0), 16)
    t = np.asarray(prob.schedule.t(jnp.asarray(lam, jnp.float64)))
    assert np.all(np.floor(t * 16).astype(int) == np.arange(16))  # one draw per slot
    prob = T._problem_for(T.TrainConfig(noise_sampling="antithetic", batch_size=16))
    _, eps, lam = prob.draw_batch(jax.random.PRNGKey(0), 16)
    t = np.asarray(prob.schedule.t(jnp.asarray(lam, jnp.float64)))
    np.testing.assert_allclose(t[:8] + t[8:], 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(eps[:8]), -np.asarray(eps[8:]))


# --- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_sweep():
    """One tiny evaluated sweep shared by several tests (compiling is the expensive part)."""
    base = T.TrainConfig(steps=6, batch_size=8)
    ev = T.EvalConfig(
        num_checkpoints=2, num_bins=3, fisher_points=16, grad_points=4, ed_samples=16, ode_steps=3
    )
    res = T.sweep(
        base,
        weightings=["simple", "matrix_optimal"],
        capacities=[25, 100],
        seeds=[0],
        evaluation=ev,
        progress=False,
    )
    return base, res


def test_sweep_result_shapes_and_padding_stays_zero(tiny_sweep):
    base, res = tiny_sweep
    assert [(c["weighting"], c["capacity"], c["width"], c["num_params"]) for c in res.configs] == [
        ("simple", 25, 2, 26),
        ("simple", 100, 6, 98),
        ("matrix_optimal", 25, 2, 26),
        ("matrix_optimal", 100, 6, 98),
    ]
    assert res.loss.shape == (4, 6)
    assert list(res.checkpoint_steps) == [0, 3, 6]
    assert res.energy_distance.shape == (4, 3) and res.grad_std.shape == (4, 3, 3)
    assert res.fisher.shape == (4, 3, 3) and res.fisher_total.shape == (4, 3)
    for a in (res.energy_distance, res.grad_std, res.fisher, res.fisher_se, res.fisher_total):
        assert np.all(np.isfinite(a))
    assert np.all(res.fisher_se > 0) and np.all(res.grad_std > 0)
    np.testing.assert_allclose(
        np.sort(res.sigma_centers)[[0, -1]],
        base.build_schedule().sigma(
            np.asarray(res.lam_edges[[-2, 0]]) / 2 + np.asarray(res.lam_edges[[-1, 1]]) / 2
        ),
        rtol=1e-12,
    )
    # capacity-25 configurations (width 2 of 6): padded units stay exactly zero (zero grad)
    (w1, b1), (w2, _), (w3, _) = jax.tree_util.tree_map(lambda a: a[0], res.final_state.params)
    assert np.all(np.asarray(w1[:, 2:]) == 0) and np.all(np.asarray(b1[2:]) == 0)
    assert np.all(np.asarray(w2[2:]) == 0) and np.all(np.asarray(w2[:, 2:]) == 0)
    assert np.all(np.asarray(w3[2:]) == 0)
    assert np.all(np.asarray(w1[:, :2]) != 0)


def test_vmapped_sweep_equals_each_configuration_alone(tiny_sweep):
    base, res = tiny_sweep
    for i in (1, 2):  # (simple, 100) and (matrix_optimal, 25, padded in the sweep)
        c = res.configs[i]
        cfg = base.replace(weighting=c["weighting"], capacity=c["capacity"])
        alone = T.train(cfg, jax.random.PRNGKey(c["seed"]))
        np.testing.assert_allclose(res.loss[i], alone.loss, rtol=F32_RTOL, atol=F32_ATOL)
        st = jax.tree_util.tree_map(lambda a, i=i: a[i], res.final_state)
        m_sweep, m_alone = T.to_model(cfg, st), T.to_model(cfg, alone.state)
        assert models.num_params(m_sweep) == models.num_params(m_alone) == c["num_params"]
        for x, y in zip(
            jax.tree_util.tree_leaves(m_sweep), jax.tree_util.tree_leaves(m_alone), strict=True
        ):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=F32_RTOL, atol=F32_ATOL)
        # the same seed gives the same numbers (a second run reuses the compiled program)
        again = T.train(cfg, jax.random.PRNGKey(c["seed"]))
        np.testing.assert_array_equal(again.loss, alone.loss)
        for x, y in zip(
            jax.tree_util.tree_leaves(again.state),
            jax.tree_util.tree_leaves(alone.state),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_train_step_is_pure():
    cfg = T.TrainConfig(capacity=25, weighting="edm", **TINY)
    st0 = T.init_state(cfg, jax.random.PRNGKey(11))
    step = jax.jit(lambda s, k: T.train_step(cfg, s, k))
    a, la = step(st0, jax.random.PRNGKey(1))
    b, lb = step(st0, jax.random.PRNGKey(1))
    c, lc = step(st0, jax.random.PRNGKey(2))
    assert float(la) == float(lb) != float(lc)
    assert int(a.step) == 1 and int(st0.step) == 0
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_training_reduces_exact_fisher_divergence_on_bimodal():
    cfg = _bimodal_cfg(steps=400, batch_size=64, learning_rate=1e-2, capacity=100)
    ev = T.EvalConfig(
        num_checkpoints=1, num_bins=4, fisher_points=128, grad_points=4, ed_samples=16, ode_steps=4
    )
    ev_res = T.train(cfg, jax.random.PRNGKey(0), evaluation=ev).evaluation
    assert list(ev_res.checkpoint_steps) == [0, 400]  # checkpoint 0 is the initialization
    (f0, f1), (s0, s1) = ev_res.fisher_total_sigma2[0], ev_res.fisher_total_sigma2_se[0]
    assert f1 < 0.5 * f0, (f0, f1)
    assert f0 - f1 > Z_BOUND * np.hypot(s0, s1)
    assert np.all(np.isfinite(ev_res.fisher)) and np.all(ev_res.fisher_se > 0)


def test_fisher_divergence_helper_is_zero_for_the_true_score():
    gm = dsm.ring()
    x = gm.noised(1.0, 0.3).sample(jax.random.PRNGKey(0), 50)
    f = T.fisher_divergence(gm.noised(1.0, 0.3).score, gm, x, 1.0, 0.3)
    np.testing.assert_array_equal(np.asarray(f), 0.0)
