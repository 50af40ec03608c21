"""Tests of dsmtheory.train.sweep and train: shapes, the grouped program against each
configuration alone, zero padding of the stacked state, training reduces the exact Fisher
divergence."""

import jax
import numpy as np
import pytest
from tolerances import Z_BOUND

import dsmtheory as dsm
from dsmtheory import models
from dsmtheory import train as T

from .conftest import F32_ATOL, F32_RTOL, TINY


def test_sweep_result_shapes_and_padding_stays_zero(tiny_sweep):
    base, res = tiny_sweep
    assert [(c["weighting"], c["capacity"], c["width"], c["num_params"]) for c in res.configs] == [
        ("simple", 25, 2, 26),
        ("simple", 100, 6, 98),
        ("matrix_optimal", 25, 2, 26),
        ("matrix_optimal", 100, 6, 98),
    ]
    assert res.timings["groups"] == 4  # (width 2, width 6) × (scalar, matrix)
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


@pytest.mark.slow
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
        # the same seed gives the same numbers
        again = T.train(cfg, jax.random.PRNGKey(c["seed"]))
        np.testing.assert_array_equal(again.loss, alone.loss)
        for x, y in zip(
            jax.tree_util.tree_leaves(again.state),
            jax.tree_util.tree_leaves(alone.state),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_training_reduces_exact_fisher_divergence_on_bimodal():
    cfg = T.TrainConfig(
        mixture=dsm.bimodal_1d(), steps=400, batch_size=64, learning_rate=1e-2, capacity=100
    )
    ev = T.EvalConfig(
        num_checkpoints=1, num_bins=4, fisher_points=128, grad_points=4, ed_samples=16, ode_steps=4
    )
    ev_res = T.train(cfg, jax.random.PRNGKey(0), evaluation=ev).evaluation
    assert list(ev_res.checkpoint_steps) == [0, 400]  # checkpoint 0 is the initialization
    (f0, f1), (s0, s1) = ev_res.fisher_total_sigma2[0], ev_res.fisher_total_sigma2_se[0]
    assert f1 < 0.5 * f0, (f0, f1)
    assert f0 - f1 > Z_BOUND * np.hypot(s0, s1)
    assert np.all(np.isfinite(ev_res.fisher)) and np.all(ev_res.fisher_se > 0)


def test_bad_grids_name_the_argument():
    base = T.TrainConfig(**TINY)
    import pytest

    with pytest.raises(ValueError, match="must each be non-empty"):
        T.sweep(base, weightings=[], capacities=[25], seeds=[0], progress=False)
    with pytest.raises(TypeError, match="seeds must be integers"):
        T.sweep(base, weightings=["simple"], capacities=[25], seeds=[0.5], progress=False)
