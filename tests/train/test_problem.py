"""Tests of make_problem / TrainProblem: the loss against an independent path, the exported
model, noise sampling, purity, the step's Info, and the engine against the plain step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tolerances import Z_BOUND

import dsmtheory as dsm
from dsmtheory import losses, models
from dsmtheory import train as T

from .conftest import F32_ATOL, F32_RTOL, TINY


def _bimodal_cfg(**kw):
    base = dict(mixture=dsm.bimodal_1d(), capacity=100, **TINY)
    base.update(kw)
    return T.TrainConfig(**base)


def test_mismatched_sample_dimensions():
    cfg = _bimodal_cfg()
    st = T.init_state(cfg, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"x0 and eps must both have shape \(N, 1\)"):
        T.loss_per_example(cfg, st, jnp.zeros((4, 2)), jnp.zeros((4, 2)), jnp.zeros(4))
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        T.make_problem("simple")


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
    sd = T.sigma_data(cfg.mixture)
    x_t = np.asarray(x0) + np.exp(-0.5 * np.asarray(lam))[:, None] * np.asarray(eps)
    network = models.MLPScoreModel(st.params, 2, T.EMBEDDING_DIM, "eps", sd)  # raw output
    raw = network(jnp.asarray(x_t, jnp.float32), lam.astype(jnp.float32))
    ref = losses.dsm_loss(
        jnp.asarray(raw, jnp.float64),
        x0,
        eps,
        lam,
        parameterization=param,
        weighting=dsm.weightings.get("min_snr"),
        process="ve",
        sigma_data=sd,
    )
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
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
    sigma = jnp.exp(-0.5 * lam).astype(jnp.float32)
    ref = models.predict_eps(model, x_t, 1.0, sigma)
    ones = jnp.ones_like(sigma)
    ours = T.make_problem(cfg).eps_hat(st.params, x_t, ones, sigma, lam.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_noise_sampling_modes():
    cfg = T.TrainConfig(noise_sampling="stratified", batch_size=16)
    lam = jax.jit(T.make_problem(cfg).sample)(jax.random.PRNGKey(0)).lam
    t = np.asarray(cfg.build_schedule().t(jnp.asarray(lam, jnp.float64)))
    assert np.all(np.floor(t * 16).astype(int) == np.arange(16))  # one draw per slot
    cfg = T.TrainConfig(noise_sampling="antithetic", batch_size=16)
    batch = jax.jit(T.make_problem(cfg).sample)(jax.random.PRNGKey(0))
    t = np.asarray(cfg.build_schedule().t(jnp.asarray(batch.lam, jnp.float64)))
    np.testing.assert_allclose(t[:8] + t[8:], 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(batch.eps[:8]), -np.asarray(batch.eps[8:]))


def test_batches_follow_the_mixture_and_the_schedule():
    # one draw of 8192 examples from a full-covariance mixture: the moments of x0 and ε and
    # the uniformity of t(λ) within Monte Carlo z-bounds (independent of the sampler's code)
    gm = dsm.random_anisotropic(seed=3, num_components=3, dim=2)
    n = 8192
    cfg = T.TrainConfig(mixture=gm, capacity=30, steps=1, batch_size=n)
    batch = jax.jit(T.make_problem(cfg).sample)(jax.random.PRNGKey(5))
    x = np.asarray(batch.x0, np.float64)
    mean, cov = np.asarray(gm.mean()), np.asarray(gm.covariance())
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < Z_BOUND * se_mean)
    d = x - mean
    prods = d[:, :, None] * d[:, None, :]
    se_cov = prods.std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(prods.mean(0) - cov) < Z_BOUND * se_cov)  # true mean: unbiased
    e = np.asarray(batch.eps, np.float64)
    assert np.all(np.abs(e.mean(0)) < Z_BOUND / np.sqrt(n))
    assert np.all(np.abs(e.var(0) - 1.0) < Z_BOUND * np.sqrt(2.0 / n))
    t = np.asarray(cfg.build_schedule().t(jnp.asarray(batch.lam, jnp.float64)))
    assert abs(t.mean() - 0.5) < Z_BOUND * np.sqrt(1 / 12 / n)
    counts = np.histogram(t, bins=8, range=(0, 1))[0]  # 8 equal bins of probability 1/8
    assert np.all(np.abs(counts - n / 8) < Z_BOUND * np.sqrt(n / 8 * 7 / 8))


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


def test_plain_step_loop_equals_the_sweep_and_reports_its_info(tiny_sweep):
    # the sweep draws the batches of blocks of steps at once and runs every configuration in
    # one program; a Python loop over jit(problem.step) with fold_in(data_key, i) must give
    # the same run as the sweep's (seed 0, simple, capacity 100)
    base, res = tiny_sweep
    cfg = base.replace(weighting="simple", capacity=100)
    problem = T.make_problem(cfg)
    init_key, data_key = jax.random.split(jax.random.PRNGKey(0))
    st0 = problem.init(init_key)
    step = jax.jit(problem.step)
    st1, info1 = step(st0, jax.random.fold_in(data_key, 0))
    st, loop = st1, [float(info1.loss)]
    for i in range(1, cfg.steps):
        st, info = step(st, jax.random.fold_in(data_key, i))
        loop.append(float(info.loss))
    np.testing.assert_allclose(res.loss[1], loop, rtol=F32_RTOL, atol=F32_ATOL)
    final = jax.tree_util.tree_map(lambda a: a[1], res.final_state)
    for x, y in zip(jax.tree_util.tree_leaves(final), jax.tree_util.tree_leaves(st), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=F32_RTOL, atol=F32_ATOL)
    assert int(st.step) == cfg.steps and st.weighting_state == ()

    # the first step's info, and its Adam update, from jax.grad of the loss on its batch
    @jax.jit
    def first_batch(key):
        batch = problem.sample(key)

        def mean_loss(params):
            return jnp.mean(problem.loss(st0._replace(params=params), *batch[:2], batch.lam))

        per = problem.loss(st0, batch.x0, batch.eps, batch.lam)
        return per, jax.grad(mean_loss)(st0.params)

    per, grads = first_batch(jax.random.fold_in(data_key, 0))
    np.testing.assert_allclose(np.asarray(info1.per_example_loss), np.asarray(per), rtol=1e-6)
    np.testing.assert_allclose(float(info1.loss), float(jnp.mean(per)), rtol=1e-6)
    np.testing.assert_allclose(float(info1.grad_norm), float(optax.tree.norm(grads)), rtol=1e-5)
    # first Adam step: m̂ = g, v̂ = g², so each parameter moves by -lr·g/(|g| + 1e-8); the
    # float32 difference p1 − p0 of parameters |p| < 2 is exact to 2 ulp(2) ≈ 3e-7
    leaves = [jax.tree_util.tree_leaves(t) for t in (st0.params, st1.params, grads)]
    for p0, p1, g in zip(*leaves, strict=True):
        g = np.asarray(g, np.float64)
        assert np.max(np.abs(np.asarray(p0))) < 2
        np.testing.assert_allclose(
            np.asarray(p1, np.float64) - np.asarray(p0, np.float64),
            -1e-3 * g / (np.abs(g) + 1e-8),
            rtol=1e-4,
            atol=3e-7,
        )


def test_padded_initial_state_is_the_model_with_zero_units():
    cfg = T.TrainConfig(capacity=25, **TINY)  # width 2
    own = T.init_state(cfg, jax.random.PRNGKey(3))
    padded = T.init_state(cfg, jax.random.PRNGKey(3), width_padded=5)
    (w1, b1), (w2, b2), (w3, _) = padded.params
    assert w1.shape == (6, 5) and w2.shape == (5, 5) and w3.shape == (5, 2)
    assert np.all(np.asarray(w1[:, 2:]) == 0) and np.all(np.asarray(w2[2:]) == 0)
    assert np.all(np.asarray(w2[:, 2:]) == 0) and np.all(np.asarray(w3[2:]) == 0)
    a, b = (jax.tree_util.tree_leaves(T.to_model(cfg, s)) for s in (padded, own))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ValueError, match="width_padded must be >= the model width 2"):
        T.init_state(cfg, jax.random.PRNGKey(3), width_padded=1)
