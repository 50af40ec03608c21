"""Tests of dsmtheory.models: parameter counts, the forward pass against a NumPy
re-implementation, jit/vmap/grad, determinism, dtypes, conversions, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerances import EXACT_RTOL

from dsmtheory.models import (
    MLPScoreModel,
    as_score_fn,
    init_mlp,
    mlp_for_param_count,
    num_params,
    predict_eps,
    widths_for_param_count,
)

# float32 forward passes of a few small layers: rounding of ~1e-7 per op, amplified by sums.
F32_RTOL = 1e-5


def _count(dim, width, depth, emb):
    """Parameter count written from the layer list: (fan_in + 1) * fan_out per layer."""
    fans = [dim + emb] + [width] * depth + [dim]
    return sum((fans[i] + 1) * fans[i + 1] for i in range(len(fans) - 1))


def _numpy_forward(model, x, lam):
    """Independent forward pass in NumPy float64 from the documented formulas."""
    x = np.asarray(x, np.float64)
    sigma2 = math.exp(-lam)
    c_in = 1 / math.sqrt(sigma2 + model.sigma_data**2)
    c = -lam / 8
    feats = [c] if model.embedding_dim % 2 else []
    sins = [math.sin(2**j * c) for j in range(model.embedding_dim // 2)]
    coss = [math.cos(2**j * c) for j in range(model.embedding_dim // 2)]
    h = np.concatenate([c_in * x, feats, sins, coss])
    for w, b in model.layers[:-1]:
        a = h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        h = a / (1 + np.exp(-a))
    w, b = model.layers[-1]
    return h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)


@pytest.mark.parametrize("target", [25, 100, 500, 1000, 5000, 20000])
@pytest.mark.parametrize("dim,depth,emb", [(2, 2, 4), (2, 1, 3), (5, 3, 4)])
def test_param_count_is_closest_reachable(target, dim, depth, emb):
    smallest = _count(dim, 1, depth, emb)
    if target < smallest:
        with pytest.raises(ValueError, match="target_params"):
            widths_for_param_count(dim, target, depth=depth, embedding_dim=emb)
        return
    widths = widths_for_param_count(dim, target, depth=depth, embedding_dim=emb)
    assert widths == (widths[0],) * depth
    got = _count(dim, widths[0], depth, emb)
    best = min(abs(_count(dim, w, depth, emb) - target) for w in range(1, 5000))
    assert abs(got - target) == best


@pytest.mark.parametrize("dim,depth,emb,target", [(2, 2, 4, 1000), (5, 3, 3, 5000), (2, 1, 1, 25)])
def test_model_has_the_counted_params(dim, depth, emb, target):
    model = mlp_for_param_count(jax.random.key(0), dim, target, depth=depth, embedding_dim=emb)
    widths = widths_for_param_count(dim, target, depth=depth, embedding_dim=emb)
    assert model.widths == widths
    leaves = jax.tree_util.tree_leaves(model)
    assert (
        num_params(model) == sum(leaf.size for leaf in leaves) == _count(dim, widths[0], depth, emb)
    )


def test_zhang_targets_in_two_dimensions():
    # D = 2, E = 4, depth 2: count = h^2 + 10 h + 2 (see the docstring).
    expected = {25: ((2, 2), 26), 100: ((6, 6), 98), 500: ((18, 18), 506), 1000: ((27, 27), 1001)}
    for target, (widths, count) in expected.items():
        m = mlp_for_param_count(jax.random.key(0), 2, target)
        assert (m.widths, num_params(m)) == (widths, count)
        assert abs(count - target) / target <= 0.05


@pytest.mark.parametrize("emb", [1, 3, 4])
def test_forward_matches_numpy(emb):
    model = init_mlp(jax.random.key(1), 3, (7, 5), embedding_dim=emb, dtype=jnp.float64)
    x = np.array([0.3, -1.2, 2.0])
    for lam in (-6.0, 0.0, 4.5):
        np.testing.assert_allclose(
            np.asarray(model(x, lam)), _numpy_forward(model, x, lam), rtol=EXACT_RTOL, atol=1e-14
        )


@pytest.mark.slow
def test_jit_vmap_and_broadcast_agree():
    model = mlp_for_param_count(jax.random.key(2), 2, 500)
    x = jax.random.normal(jax.random.key(3), (4, 2))
    lam = jnp.linspace(-8.0, 8.0, 4)
    per_example = jnp.stack([model(x[i], lam[i]) for i in range(4)])
    vm = jax.vmap(model)(x, lam)
    jitted = jax.jit(jax.vmap(model))(x, lam)
    broadcast = model(x, lam)
    np.testing.assert_allclose(vm, per_example, rtol=F32_RTOL, atol=1e-6)
    np.testing.assert_allclose(jitted, per_example, rtol=F32_RTOL, atol=1e-6)
    np.testing.assert_allclose(broadcast, per_example, rtol=F32_RTOL, atol=1e-6)
    # a jitted function taking the model as a pytree argument
    f = jax.jit(lambda m, x, l: m(x, l))
    np.testing.assert_allclose(f(model, x[0], lam[0]), per_example[0], rtol=F32_RTOL, atol=1e-6)


def test_same_seed_same_params_and_dtypes():
    a = mlp_for_param_count(jax.random.key(4), 2, 100)
    b = mlp_for_param_count(jax.random.key(4), 2, 100)
    c = mlp_for_param_count(jax.random.key(5), 2, 100)
    la, lb, lc = (jax.tree_util.tree_leaves(m) for m in (a, b, c))
    assert all(np.array_equal(u, v) for u, v in zip(la, lb, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(la, lc, strict=True))
    assert all(leaf.dtype == jnp.float32 for leaf in la)
    assert a(jnp.zeros(2), 0.0).dtype == jnp.float32
    d = mlp_for_param_count(jax.random.key(4), 2, 100, dtype=jnp.float64)
    assert d(jnp.zeros(2), 0.0).dtype == jnp.float64


def test_pytree_roundtrip_immutability_and_grad():
    model = init_mlp(jax.random.key(6), 2, (4,), dtype=jnp.float64)
    leaves, treedef = jax.tree_util.tree_flatten(model)
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert isinstance(again, MLPScoreModel) and again.parameterization == "eps"
    with pytest.raises(AttributeError):
        model.dim = 3

    @jax.jit
    def loss(m):
        return jnp.sum(m(jnp.ones(2), 1.0) ** 2)

    g = jax.grad(loss)(model)
    assert jax.tree_util.tree_structure(g) == treedef
    # directional derivative vs a central finite difference (float64)
    direction = jax.tree_util.tree_map(jnp.ones_like, model)
    h = 1e-6
    plus = jax.tree_util.tree_map(lambda p, d: p + h * d, model, direction)
    minus = jax.tree_util.tree_map(lambda p, d: p - h * d, model, direction)
    fd = (loss(plus) - loss(minus)) / (2 * h)
    dd = sum(jnp.sum(a) for a in jax.tree_util.tree_leaves(g))
    np.testing.assert_allclose(dd, fd, rtol=1e-6)  # FD truncation error ~h^2, rounding ~1e-10/h


def test_conversions_eps_and_x0():
    x = jnp.array([0.4, -0.7])
    sigma, alpha = 0.8, 0.6
    eps_model = init_mlp(jax.random.key(7), 2, (5,), dtype=jnp.float64)
    lam = 2 * math.log(alpha / sigma)
    np.testing.assert_allclose(
        predict_eps(eps_model, x, alpha, sigma), eps_model(x / alpha, lam), rtol=EXACT_RTOL
    )
    np.testing.assert_allclose(
        as_score_fn(eps_model)(x, sigma),
        -eps_model(x, -2 * math.log(sigma)) / sigma,
        rtol=EXACT_RTOL,
    )
    x0_model = init_mlp(jax.random.key(7), 2, (5,), parameterization="x0", dtype=jnp.float64)
    x0_hat = x0_model(x, -2 * math.log(sigma))
    # VE: score = (x0_hat - x) / sigma^2 (Tweedie)
    np.testing.assert_allclose(
        as_score_fn(x0_model)(x, sigma), (x0_hat - x) / sigma**2, rtol=EXACT_RTOL
    )


def test_bad_input_named():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="target_params must be >= 13"):
        mlp_for_param_count(key, 2, 10)
    with pytest.raises(ValueError, match="parameterization"):
        init_mlp(key, 2, (3,), parameterization="v")
    with pytest.raises(ValueError, match="dim"):
        init_mlp(key, 0, (3,))
    with pytest.raises(TypeError, match="widths"):
        init_mlp(key, 2, (3.5,))
    with pytest.raises(ValueError, match="widths"):
        init_mlp(key, 2, ())
    with pytest.raises(ValueError, match="sigma_data"):
        init_mlp(key, 2, (3,), sigma_data=-1.0)
    with pytest.raises(ValueError, match="depth"):
        mlp_for_param_count(key, 2, 100, depth=0)
