"""Tests of the stateful training weightings ``edm2_learned`` and ``online_c_star``: the loss
against EDM2's per-element x0-space form computed independently, the online state against
the estimator fed by hand, the optimum of u, and a sweep that reproduces ``train``."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsmtheory import adaptive
from dsmtheory import train as T
from dsmtheory.train import _weighting as W

from .conftest import F32_ATOL, F32_RTOL, TINY


def _batch(cfg, key):
    return T.make_problem(cfg).sample(key)


@pytest.mark.slow
def test_edm2_loss_is_edm2s_per_element_form_in_x0_space():
    # EDM2 (NVlabs/edm2 training_loop.py): loss = (w / e^u) * (D - y)**2 + u per element,
    # summed over elements; w = (σ̃² + σd²) / (σ̃ σd)². Computed here in x0-space from
    # D = (x_t - σ ε̂) / α, independently of the ε-space form the training uses.
    cfg = T.TrainConfig(weighting="edm2_learned", capacity=25, **TINY)
    problem = T.make_problem(cfg)
    st = problem.init(jax.random.PRNGKey(0))
    b = problem.sample(jax.random.PRNGKey(1))
    ours = np.asarray(problem.loss(st, b.x0, b.eps, b.lam), np.float64)
    eps_hat = problem.eps_hat(st.params, b.x_t, b.alpha, b.sigma, b.lam)
    den = (b.x_t - b.sigma[:, None] * eps_hat) / b.alpha[:, None]
    u = W.edm2_log_variance(st.weighting_state[0], b.lam)
    sd, st_ = T.sigma_data(cfg.mixture), np.asarray(b.sigma / b.alpha, np.float64)
    w = (st_**2 + sd**2) / (st_ * sd) ** 2
    per_element = (w / np.exp(u))[:, None] * np.asarray(den - b.x0) ** 2 + np.asarray(u)[:, None]
    np.testing.assert_allclose(ours, per_element.sum(-1), rtol=1e-4, atol=1e-5)  # float32


def test_edm2_optimal_u_gives_the_multiplier_dim_over_mean_loss():
    # d/du mean(ω e^{-u} sq + D u) = 0 at e^{u*} = ω mean(sq) / D, where the multiplier
    # ω e^{-u*} = D / mean(sq) (c* at the Bayes denoiser). Check with the hooks' loss by
    # finite differences in a constant shift of u (the layer's output is linear in ŵ).
    base = lambda lam: jnp.full(jnp.shape(lam), 3.0)  # noqa: E731
    hooks = W.edm2_learned_hooks(base, dim=4)
    ws = hooks.init(jax.random.PRNGKey(2))
    sq = jnp.asarray([1.0, 2.5, 0.5, 4.0])
    lam = jnp.zeros(4)
    u0 = float(W.edm2_log_variance(ws, 0.0))
    u_star = math.log(3.0 * float(jnp.mean(sq)) / 4)

    class B:
        weight = base(lam)

    B.lam = lam

    def mean_loss(shift):  # u = u0 + shift at λ = 0 for every example
        return float(jnp.mean(3.0 * jnp.exp(-(u0 + shift)) * sq + 4 * (u0 + shift)))

    ls = np.asarray([mean_loss(s) for s in (u_star - u0 - 0.01, u_star - u0, u_star - u0 + 0.01)])
    assert ls[1] < ls[0] and ls[1] < ls[2]
    np.testing.assert_allclose(
        float(jnp.mean(hooks.loss(ws.weight, ws, B, sq))), mean_loss(0.0), rtol=1e-6
    )
    assert abs(3.0 * math.exp(-u_star) - 4 / float(jnp.mean(sq))) < 1e-12


@pytest.mark.slow
def test_online_c_star_step_feeds_the_unweighted_losses_and_weighs_by_the_old_state():
    cfg = T.TrainConfig(weighting="online_c_star", capacity=25, **TINY)
    problem = T.make_problem(cfg)
    st = problem.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(5)
    b = problem.sample(key)
    sched = cfg.build_schedule()
    est = adaptive.online_c_star(32, (sched.lam_min, sched.lam_max), 0.99, dim=cfg.mixture.dim)
    e = problem.eps_hat(st.params, b.x_t, b.alpha, b.sigma, b.lam) - b.eps
    sq = jnp.sum(e**2, -1)
    new, info = problem.step(st, key)
    # the first batch is weighed by the empty state: multiplier 1, the σ² heuristic
    np.testing.assert_allclose(np.asarray(info.per_example_loss), np.asarray(sq), rtol=F32_RTOL)
    want = est.update(est.init(), b.lam, sq)
    for got, ref in zip(new.weighting_state[0], want, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=F32_RTOL, atol=F32_ATOL)
    # the second batch is weighed by ĉ* of that state
    b2 = problem.sample(jax.random.PRNGKey(6))
    lo = problem.loss(new, b2.x0, b2.eps, b2.lam)
    e2 = problem.eps_hat(new.params, b2.x_t, b2.alpha, b2.sigma, b2.lam) - b2.eps
    hand = est.weight(want, b2.lam) * jnp.sum(e2**2, -1)
    np.testing.assert_allclose(np.asarray(lo), np.asarray(hand), rtol=F32_RTOL)
    assert float(jnp.max(est.weight(want, b2.lam))) > 1.0  # it really reweighs


@pytest.mark.slow
def test_stateful_weighting_in_a_sweep_reproduces_train():
    base = T.TrainConfig(steps=6, batch_size=8, capacity=25)
    ev = T.EvalConfig(
        num_checkpoints=1, num_bins=3, fisher_points=4, grad_points=2, ed_samples=4, ode_steps=1
    )
    names = ["edm", "edm2_learned", "online_c_star"]
    res = T.sweep(base, weightings=names, capacities=[25], seeds=[0], evaluation=ev, progress=False)
    assert [c["weighting"] for c in res.configs] == names
    for i, name in enumerate(names[1:], start=1):
        one = T.train(base.replace(weighting=name), jax.random.PRNGKey(0))
        np.testing.assert_allclose(one.loss, res.loss[i], rtol=F32_RTOL, atol=F32_ATOL)
        for a, b in zip(
            jax.tree_util.tree_leaves(one.state.weighting_state),
            jax.tree_util.tree_leaves(res.weighting_states[i]),
            strict=True,
        ):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=F32_RTOL, atol=F32_ATOL)
        # the recorded multiplier at the last checkpoint is the final state's
        centres = 0.5 * (res.lam_edges[1:] + res.lam_edges[:-1])
        m = T.weighting_multiplier(base.replace(weighting=name), one.state, centres)
        np.testing.assert_allclose(res.multiplier[i, -1], np.asarray(m), rtol=F32_RTOL)
    # a fixed weighting records its own ω_ε: EDM's 1 + e^{-λ}/σd² (registry default σd = 0.5)
    edm = 1.0 + np.exp(-centres) / 0.25
    np.testing.assert_allclose(res.multiplier[0, 0], edm, rtol=1e-5)
    assert res.weighting_states[0] is None


def test_stateful_weighting_parameters_are_checked():
    with pytest.raises(ValueError, match="unknown parameter"):
        T.make_problem(
            T.TrainConfig(weighting="online_c_star", weighting_params={"bins": 3}, **TINY)
        )
    assert {"edm2_learned", "online_c_star"} <= set(T.weighting_names())
