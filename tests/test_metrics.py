"""Tests of dsmtheory.metrics: energy distance against dcor and a brute-force NumPy sum,
blocking, properties, the sliced estimator, NLL against scipy, mode coverage, bad input."""

import math

import dcor
import jax
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from scipy.stats import chi2, multivariate_normal
from tolerances import EXACT_ATOL, EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory.metrics import (
    energy_distance,
    mode_coverage,
    nll,
    sliced_energy_distance,
    slicing_constant,
)

# The brief's bar for agreement with dcor (float64, sums of ~1e5 distances).
DCOR_ATOL = 1e-10

# Sliced-ED calibration: the sample sd of 60 z-scores (t-distributed, 31 dof, sd 1.03) has a
# sampling sd of about 0.1; 0.35 is > 3 of those while still catching a stderr off by 1.5x.
ZSD_TOL = 0.35


def _pair(seed, n, m, d, shift=0.3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.2 + shift


def _mixture_samples(rng, gm, n):
    """Exact samples drawn with NumPy (keeps these tests free of JAX sampling compiles)."""
    w = np.asarray(gm.weights)
    comp = rng.choice(len(w), size=n, p=w / w.sum())
    chol = np.linalg.cholesky(np.asarray(gm.covs))
    z = rng.normal(size=(n, gm.dim))
    return np.asarray(gm.means)[comp] + np.einsum("nij,nj->ni", chol[comp], z)


def _brute_force(x, y, unbiased):
    """The definition, written out with scipy's cdist (independent of the blocked code)."""
    n, m = len(x), len(y)
    cx = n * (n - 1) if unbiased else n * n
    cy = m * (m - 1) if unbiased else m * m
    return 2 * cdist(x, y).mean() - cdist(x, x).sum() / cx - cdist(y, y).sum() / cy


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("n,m,d", [(60, 45, 1), (120, 120, 2), (80, 33, 5)])
def test_energy_distance_matches_dcor_and_brute_force(unbiased, n, m, d):
    x, y = _pair(n + d, n, m, d)
    stat = "U_STATISTIC" if unbiased else "V_STATISTIC"
    ours = float(energy_distance(x, y, unbiased=unbiased))
    ref = dcor.energy_distance(x, y, estimation_stat=stat)
    assert abs(ours - ref) <= DCOR_ATOL
    np.testing.assert_allclose(ours, _brute_force(x, y, unbiased), rtol=EXACT_RTOL)


def test_energy_distance_accepts_1d_arrays():
    x, y = _pair(1, 50, 40, 1)
    ref = dcor.energy_distance(x[:, 0], y[:, 0])
    assert abs(float(energy_distance(x[:, 0], y[:, 0])) - ref) <= DCOR_ATOL


@pytest.mark.parametrize("unbiased", [False, True])
def test_blocked_equals_unblocked(unbiased):
    x, y = _pair(2, 97, 61, 3)
    whole = float(energy_distance(x, y, block_size=10_000, unbiased=unbiased))
    for block in (1, 7, 97):
        got = float(energy_distance(x, y, block_size=block, unbiased=unbiased))
        np.testing.assert_allclose(got, whole, rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_properties_zero_nonnegative_symmetric():
    x, y = _pair(3, 70, 50, 2)
    assert abs(float(energy_distance(x, x))) <= EXACT_ATOL
    for seed in range(5):
        a, b = _pair(10 + seed, 40, 30, 2, shift=0.0)
        v = float(energy_distance(a, b))
        assert v >= -EXACT_ATOL
        np.testing.assert_allclose(v, float(energy_distance(b, a)), rtol=EXACT_RTOL)
    u = float(energy_distance(x, y, unbiased=True))
    np.testing.assert_allclose(u, float(energy_distance(y, x, unbiased=True)), rtol=EXACT_RTOL)


def test_translation_and_rotation_invariance():
    x, y = _pair(4, 50, 40, 2)
    th = 0.7
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    shift = np.array([3.0, -1.0])
    base = float(energy_distance(x, y))
    moved = float(energy_distance(x @ rot.T + shift, y @ rot.T + shift))
    np.testing.assert_allclose(moved, base, rtol=1e-9)  # rotations round at ~1e-15 per entry


def test_energy_distance_float32_inputs_stay_float32():
    x, y = _pair(5, 30, 30, 2)
    out = energy_distance(x.astype(np.float32), y.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(float(out), dcor.energy_distance(x, y), rtol=1e-4)


def test_slicing_constant_closed_forms():
    assert slicing_constant(1) == pytest.approx(1.0, rel=EXACT_RTOL)
    assert slicing_constant(2) == pytest.approx(2 / math.pi, rel=EXACT_RTOL)
    assert slicing_constant(3) == pytest.approx(0.5, rel=EXACT_RTOL)  # |u_z| ~ U(0,1) on S^2


@pytest.mark.parametrize("unbiased", [False, True])
def test_sliced_is_exact_in_one_dimension(unbiased):
    x, y = _pair(6, 80, 55, 1)
    res = sliced_energy_distance(jax.random.key(0), x, y, num_projections=4, unbiased=unbiased)
    stat = "U_STATISTIC" if unbiased else "V_STATISTIC"
    ref = dcor.energy_distance(x, y, estimation_stat=stat)
    np.testing.assert_allclose(np.asarray(res.per_projection), ref, atol=DCOR_ATOL)
    assert abs(float(res.value) - ref) <= DCOR_ATOL
    assert float(res.stderr) <= 1e-12


@pytest.mark.parametrize("unbiased", [False, True])
def test_sliced_unbiased_for_full_energy_distance(unbiased):
    x, y = _pair(7, 150, 120, 3)
    exact = float(energy_distance(x, y, unbiased=unbiased))
    res = sliced_energy_distance(jax.random.key(1), x, y, num_projections=400, unbiased=unbiased)
    assert abs(float(res.value) - exact) <= Z_BOUND * float(res.stderr)


def test_sliced_stderr_is_calibrated():
    x, y = _pair(8, 100, 100, 4)
    exact = float(energy_distance(x, y))
    z = []
    for seed in range(60):
        r = sliced_energy_distance(jax.random.key(seed), x, y, num_projections=32)
        z.append((float(r.value) - exact) / float(r.stderr))
    z = np.asarray(z)
    assert abs(z.mean()) <= Z_BOUND / math.sqrt(len(z))
    assert abs(z.std(ddof=1) - 1.0) <= ZSD_TOL


def test_nll_matches_scipy():
    gm = dsm.random_anisotropic(3, 4, 3)
    x = _mixture_samples(np.random.default_rng(2), gm, 200)
    w = np.asarray(gm.weights)
    comps = [
        np.log(w[k])
        + multivariate_normal(np.asarray(gm.means[k]), np.asarray(gm.covs[k])).logpdf(x)
        for k in range(gm.num_components)
    ]
    nlp = -logsumexp(np.stack(comps), axis=0)
    res = nll(gm, x)
    np.testing.assert_allclose(float(res.value), nlp.mean(), rtol=EXACT_RTOL)
    np.testing.assert_allclose(float(res.stderr), nlp.std(ddof=1) / math.sqrt(len(x)), rtol=1e-9)


def test_nll_of_exact_samples_near_entropy_of_single_gaussian():
    gm = dsm.single_gaussian([0.0, 1.0], 0.5)
    res = nll(gm, _mixture_samples(np.random.default_rng(3), gm, 4000))
    entropy = 0.5 * 2 * (1 + math.log(2 * math.pi * 0.25))  # D/2 (1 + log 2 pi s^2)
    assert abs(float(res.value) - entropy) <= Z_BOUND * float(res.stderr)


def test_mode_coverage_full_ring_and_dropped_mode():
    gm = dsm.ring(8, 2.0, 0.25)
    n = 4000
    full = mode_coverage(gm, _mixture_samples(np.random.default_rng(4), gm, n), radius_std=3.0)
    assert full.fraction == 1.0 and full.covered.all()
    p_in = chi2.cdf(9.0, df=2)  # radius 3 std in 2-D: 1 - exp(-4.5)
    assert abs(full.in_mode_fraction - p_in) <= Z_BOUND * math.sqrt(p_in * (1 - p_in) / n)
    assert full.counts.sum() == round(full.in_mode_fraction * n)
    np.testing.assert_allclose(full.expected, n / 8 * p_in, rtol=EXACT_RTOL)

    means = np.asarray(gm.means)
    keep = np.arange(8) != 5
    seven = dsm.GaussianMixture(np.full(7, 1 / 7), means[keep], np.full(7, 0.0625))
    dropped = mode_coverage(
        gm, _mixture_samples(np.random.default_rng(5), seven, n), radius_std=3.0
    )
    assert dropped.fraction == 7 / 8
    # A neighbour's far tail can land within 3 std of the empty mode (adjacent modes are
    # 6.1 std apart), so its count is small but not necessarily 0.
    assert not dropped.covered[5] and dropped.counts[5] < 0.05 * dropped.expected[5]
    assert dropped.covered[keep].all()


def test_mode_coverage_far_samples_count_nowhere():
    gm = dsm.ring()
    res = mode_coverage(gm, np.full((10, 2), 50.0))
    assert res.fraction == 0.0 and res.counts.sum() == 0 and res.in_mode_fraction == 0.0


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), "same number of dimensions"),
        (np.zeros((0, 2)), np.zeros((5, 2)), "^x must hold at least 1"),
        (np.zeros((5, 2)), np.array([[0.0, np.nan]]), "^y must be finite"),
        (np.zeros((5, 2, 1)), np.zeros((5, 2)), r"^x must have shape \(N, D\)"),
    ],
)
def test_energy_distance_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        energy_distance(x, y)


def test_bad_arguments_named():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="^y must hold at least 2"):
        energy_distance(x, x[:1], unbiased=True)
    with pytest.raises(ValueError, match="block_size"):
        energy_distance(x, x, block_size=0)
    with pytest.raises(TypeError, match="block_size"):
        energy_distance(x, x, block_size=2.5)
    with pytest.raises(TypeError, match="^x must be an array of real numbers"):
        energy_distance(np.array(["a", "b"]), x)
    with pytest.raises(ValueError, match="num_projections"):
        sliced_energy_distance(jax.random.key(0), x, x, num_projections=1)
    with pytest.raises(ValueError, match="same number of dimensions"):
        sliced_energy_distance(jax.random.key(0), x, np.zeros((4, 3)))
    gm = dsm.ring()
    with pytest.raises(ValueError, match=r"samples must have shape \(n, 2\)"):
        nll(gm, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="^samples must hold at least 1"):
        nll(gm, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="^samples must be finite"):
        mode_coverage(gm, np.array([[np.inf, 0.0]]))
    with pytest.raises(TypeError, match="^gm must be a GaussianMixture"):
        nll(np.zeros(3), x)
    with pytest.raises(ValueError, match="radius_std"):
        mode_coverage(gm, x, radius_std=0.0)
    with pytest.raises(ValueError, match="threshold"):
        mode_coverage(gm, x, threshold=1.5)
