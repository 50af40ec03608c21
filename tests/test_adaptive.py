"""Tests of dsmtheory.adaptive: the Kingma-Gao adaptive schedule and the ALSR width."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerances import Z_BOUND

from dsmtheory import adaptive, schedules, weightings

# After 600 updates of 2048 samples with decay 0.99, each bin's EMA averages ~2000 losses
# with multiplicative U(0.5, 1.5) noise (relative std 0.29): relative error ~0.7 %, and the
# uniform start is forgotten to 0.99^600 ≈ 0.2 %; expected TV ≈ 0.005, bound 5x that.
TV_BOUND = 0.025


def _target(lam):
    """Exact per-λ expected weighted loss of the optimal denoiser for N(0, 0.5²) data under
    KG's sigmoid weight (k = 2): w(λ) · ½ · sigmoid(λ + log s²) (FORMULAS §4, ε-irreducible)."""
    return jax.nn.sigmoid(2.0 - lam) * 0.5 * jax.nn.sigmoid(lam + math.log(0.25))


def test_density_converges_to_target():
    sched = adaptive.kingma_gao_adaptive(-8.0, 10.0, init_value=0.1)  # 100 bins, decay 0.99

    def step(state, key):
        k1, k2 = jax.random.split(key)
        lam, _ = sched.sample(state, k1, (2048,))
        loss = _target(lam) * jax.random.uniform(k2, lam.shape, minval=0.5, maxval=1.5)
        return sched.update(state, lam, loss), None

    keys = jax.random.split(jax.random.PRNGKey(0), 600)
    state, _ = jax.jit(lambda s: jax.lax.scan(step, s, keys))(sched.init())
    assert int(state.step) == 600 and int(state.counts.min()) > 0
    # target bin probabilities: the bin averages of the target (fine midpoint rule)
    edges = np.asarray(sched.edges)
    fine = edges[:-1, None] + (np.arange(64) + 0.5)[None, :] / 64 * np.diff(edges)[:, None]
    tgt = np.asarray(_target(jnp.asarray(fine))).mean(1)
    probs = np.asarray(sched.density(state, jnp.asarray(fine[:, 0]))) * np.diff(edges)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)
    tv = adaptive.total_variation(edges, probs, tgt)
    assert tv < TV_BOUND, tv
    # the uniform start is far from the target: the schedule really moved
    assert adaptive.total_variation(edges, np.ones(100), tgt) > 5 * TV_BOUND


def test_sampling_matches_density_and_weights_unbiased():
    sched = adaptive.kingma_gao_adaptive(-2.0, 3.0, num_bins=10, floor=0.05)
    state = sched.init()
    lam0 = jnp.linspace(-2.0, 3.0, 1000)
    state = sched.update(state, lam0, jnp.exp(-lam0))
    n = 100_000
    lam, p = sched.sample(state, jax.random.PRNGKey(1), (n,))
    assert float(lam.min()) >= -2.0 and float(lam.max()) <= 3.0
    np.testing.assert_allclose(p, sched.density(state, lam), rtol=1e-14)
    counts, _ = np.histogram(np.asarray(lam), bins=np.asarray(sched.edges))
    pb = np.asarray(sched.density(state, sched.edges[:-1] + 0.25)) * 0.5
    z = (counts - n * pb) / np.sqrt(n * pb * (1 - pb))
    assert np.all(np.abs(z) < Z_BOUND)
    # importance weighting: E_p[w/p] = ∫ w over the range, here w = cos(λ)+2
    w = jnp.cos(lam) + 2.0
    iw = np.asarray(sched.importance_weight(state, lam, w))
    exact = (math.sin(3.0) - math.sin(-2.0)) + 2.0 * 5.0
    assert abs(iw.mean() - exact) < Z_BOUND * iw.std(ddof=1) / math.sqrt(n)
    assert float(sched.density(state, jnp.array(3.5))) == 0.0


def test_update_rule_by_hand():
    sched = adaptive.kingma_gao_adaptive(0.0, 4.0, num_bins=4, decay=0.9, init_value=2.0)
    s = sched.update(sched.init(), jnp.array([0.5, 0.7, 3.2]), jnp.array([1.0, 3.0, 5.0]))
    np.testing.assert_allclose(s.ema, [0.9 * 2 + 0.1 * 2.0, 2.0, 2.0, 0.9 * 2 + 0.1 * 5.0])
    np.testing.assert_array_equal(s.counts, [1, 0, 0, 1])


@pytest.mark.parametrize(("alpha", "expected"), [(0.01, 1.136), (0.05, 0.956), (0.1, 0.818)])
def test_alsr_effective_width_formula(alpha, expected):
    assert abs(float(adaptive.alsr_effective_width(1.2, alpha)) - expected) < 5e-4


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_alsr_gaussian_on_edm_is_lognormal_mc(alpha):
    # λ ~ EDM training density; weight each batch by the registry's ALSR-Gaussian factor
    # (ω_ALSR / ω_EDM, with μ = the batch mean); weighted std of ln σ̃ = −λ/2.
    edm = schedules.get("edm_training")
    lam = edm.sample(jax.random.PRNGKey(7), (48, 4096))
    alsr = weightings.get("alsr", alpha=alpha, variant="gaussian")
    base = weightings.get("edm", sigma_data=0.5)
    r = jax.vmap(lambda row: alsr(row) / base(row))(lam)
    # μ = batch mean: check the factor against its definition
    row = lam[0]
    np.testing.assert_allclose(r[0], jnp.exp(-alpha * (row - row.mean()) ** 2), rtol=1e-10)
    est = adaptive.weighted_std(-0.5 * np.asarray(lam), np.asarray(r))
    want = float(adaptive.alsr_effective_width(1.2, alpha))
    assert abs(est.value - want) < Z_BOUND * est.stderr, (est, want)
    assert est.ess > 1000


def test_alsr_rational_variant_narrows_less_at_large_offsets():
    lam = jnp.linspace(-10, 14, 25)
    g = weightings.get("alsr", alpha=0.05, variant="gaussian", mu=2.4)(lam)
    q = weightings.get("alsr", alpha=0.05, variant="rational", mu=2.4 + math.log(0.25))(lam)
    # same centre (s = λ + log σ_d²), rational has polynomial, Gaussian exponential tails
    assert np.all(np.asarray(q) >= np.asarray(g) * (1 - 1e-12))


def test_bad_input():
    with pytest.raises(ValueError, match="lam_min"):
        adaptive.kingma_gao_adaptive(1.0, 1.0)
    with pytest.raises(ValueError, match="num_bins"):
        adaptive.kingma_gao_adaptive(0.0, 1.0, num_bins=0)
    with pytest.raises(ValueError, match="decay"):
        adaptive.kingma_gao_adaptive(0.0, 1.0, decay=1.0)
    with pytest.raises(ValueError, match="init_value"):
        adaptive.kingma_gao_adaptive(0.0, 1.0, init_value=0.0)
    with pytest.raises(ValueError, match="floor"):
        adaptive.kingma_gao_adaptive(0.0, 1.0, floor=1.5)
    sched = adaptive.kingma_gao_adaptive(0.0, 1.0)
    with pytest.raises(ValueError, match="loss"):
        sched.update(sched.init(), jnp.array([0.5]), jnp.array([-1.0]))
    with pytest.raises(ValueError, match="same size"):
        sched.update(sched.init(), jnp.array([0.5, 0.6]), jnp.array([1.0]))
    with pytest.raises(ValueError, match="alpha"):
        adaptive.alsr_effective_width(1.2, -0.1)
    with pytest.raises(ValueError, match="weights"):
        adaptive.weighted_std(np.ones((3, 4)), np.ones((3, 5)))
