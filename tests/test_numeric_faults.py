"""Numerical corners of issue 13 item 4: g² at the ends of t for every schedule, R and c*
from σ = 1e-80 to 1e80, mode coverage in 64-D, K = 1 everywhere, and the key rule (every
Monte Carlo estimate takes ``key=None`` as ``PRNGKey(0)``). docs/reliability.md cites these.

Closed forms used as independent references (not the code under test): for N(μ, s² I) in D
dimensions, $d_{\\rm eff}=D\\,s^2/(s^2+\\tilde\\sigma^2)$, $R=d_{\\rm eff}/\\sigma^2$,
$c^*=1+\\tilde\\sigma^2/s^2$, $\\tilde\\sigma=\\sigma/\\alpha$.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from scipy.stats import chi2

import dsmtheory as dsm
from dsmtheory import optimal, schedules, targets, variance
from dsmtheory.schedules import Schedule

SIGMAS = [1e-80, 1e-40, 1e-10, 1.0, 1e10, 1e40, 1e80]


# ---------------------------------------------------------------------------------------
# g² at the ends of t
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("process", ["ve", "vp"])
@pytest.mark.parametrize("name", schedules.names())
def test_g2_at_both_ends_of_t_is_never_nan(name, process):
    sched = schedules.get(name, process=process)
    t = np.array([0.0, 1e-12, 0.25, 0.5, 0.75, 1.0 - 1e-12, 1.0])
    g2 = np.asarray(sched.g2(t))
    assert not np.any(np.isnan(g2)), g2
    assert np.all(g2 > 0), g2
    # inside (0, 1) g² equals the defining formula -σ² dλ/dt (Schedule's generic form)
    inner = np.asarray(Schedule.g2(sched, t[1:-1]))
    np.testing.assert_allclose(g2[1:-1], inner, rtol=1e-12)
    # jit gives the same numbers
    np.testing.assert_allclose(np.asarray(jax.jit(sched.g2)(t)), g2, rtol=1e-12)


@pytest.mark.parametrize("process", ["ve", "vp"])
def test_edm_training_g2_ends_are_the_infinite_limit(process):
    # untruncated: lam -> +-inf at t = 0, 1, and g² = 2 P_s sqrt(2 pi) sigma² e^{z²/2} -> inf
    sched = schedules.get("edm_training", process=process)
    g2 = np.asarray(sched.g2(np.array([0.0, 1.0])))
    assert np.all(np.isposinf(g2))
    # and it grows towards both ends (the limit is approached, not jumped to)
    near = np.asarray(sched.g2(np.array([1e-300, 1e-100, 1e-10, 0.5, 1 - 1e-10])))
    assert near[0] > near[1] > near[2] > near[3] and near[4] > near[3]
    # a truncated EDM schedule has finite g² at both ends
    trunc = schedules.get("edm_training", process=process, lam_min=-10.0, lam_max=12.0)
    assert np.all(np.isfinite(np.asarray(trunc.g2(np.array([0.0, 1.0])))))


# ---------------------------------------------------------------------------------------
# R, d_eff and c* over 160 decades of sigma
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", SIGMAS)
def test_r_and_c_star_from_1e_minus_80_to_1e80_gaussian(sigma):
    d, s2 = 2, 0.49
    gm = dsm.single_gaussian([0.0, 0.0], math.sqrt(s2))
    st2 = sigma**2
    d_eff = d * s2 / (s2 + st2)
    r = dsm.irreducible_variance(gm, 1.0, sigma).value
    # R = d_eff / sigma² spans 1e160 .. 1e-320 (subnormal at the top end: relative 1e-3)
    rtol_r = 1e-10 if d_eff / st2 > 1e-300 else 1e-3
    assert math.isfinite(r) and r > 0
    np.testing.assert_allclose(r, d_eff / st2, rtol=rtol_r)
    np.testing.assert_allclose(dsm.effective_dimension(gm, 1.0, sigma).value, d_eff, rtol=1e-10)
    c = optimal.homoskedastic_multiplier(gm, 1.0, sigma).value
    np.testing.assert_allclose(c, 1.0 + st2 / s2, rtol=1e-10)


def test_r_and_c_star_extremes_on_a_mixture():
    """bimodal_1d (modes ±2, std 0.25): at σ → 0 d_eff → 1 (R = 1/σ², c* = 1); at σ → ∞
    d_eff → tr Cov(p₀)/σ² = (4 + 0.0625)/σ². Before the fix 1e-80 raised (the Monte Carlo
    check's squares underflowed) and below σ ≈ 1e-16 the spread of the posterior means was
    rounding noise."""
    gm = dsm.bimodal_1d()
    sig = np.array([1e-80, 1e-20, 1e20, 1e80])
    c = optimal.c_star_curve(gm, sig)
    np.testing.assert_allclose(c[:2], 1.0, rtol=1e-10)
    np.testing.assert_allclose(c[2:], sig[2:] ** 2 / 4.0625, rtol=1e-10)
    curve = variance.heteroskedasticity_curve(gm, sig)
    np.testing.assert_allclose(curve.R[:2], 1.0 / sig[:2] ** 2, rtol=1e-10)
    np.testing.assert_allclose(curve.d_eff[2:], 4.0625 / sig[2:] ** 2, rtol=1e-10)
    one = dsm.irreducible_variance(gm, 1.0, 1e-80).value
    np.testing.assert_allclose(one, 1e160, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# mode coverage in any dimension
# ---------------------------------------------------------------------------------------
def test_mode_coverage_64d_exact_samples():
    k, d, n = 4, 64, 2000
    gm = dsm.GaussianMixture(np.full(k, 0.25), 20.0 * np.eye(k, d), np.full(k, 1.0))
    x = np.asarray(gm.sample(jax.random.PRNGKey(1), n))
    res = dsm.metrics.mode_coverage(gm, x)
    assert res.fraction == 1.0
    p = dsm.metrics.DEFAULT_COVERAGE_MASS
    assert abs(res.in_mode_fraction - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1.0 / n
    np.testing.assert_allclose(res.expected, n * 0.25 * p, rtol=1e-9)
    # the radius is the chi²_64 quantile (10.0), not 3: with radius_std=3 nothing lands
    assert math.isclose(math.sqrt(chi2.ppf(p, d)), 9.9988, rel_tol=1e-4)
    assert dsm.metrics.mode_coverage(gm, x, radius_std=3.0).in_mode_fraction == 0.0
    # dropping a mode is seen in 64-D too
    nearest = np.argmax(x[:, :k], axis=1)
    assert dsm.metrics.mode_coverage(gm, x[nearest != 2]).fraction == 0.75


def test_mode_coverage_1d_default_is_three_std():
    gm = dsm.single_gaussian([0.0], 1.0)
    x = np.array([[2.99], [3.01], [-2.99]])
    res = dsm.metrics.mode_coverage(gm, x)
    assert res.counts.tolist() == [2]


# ---------------------------------------------------------------------------------------
# K = 1 everywhere (closed forms of one Gaussian as the reference)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one():
    return dsm.single_gaussian([0.0, 0.0], 0.7)


def test_k1_variance_and_c_star(one):
    a, s, s2, d = 1.0, 0.5, 0.49, 2
    d_eff = d * s2 / (s2 + s**2)
    np.testing.assert_allclose(dsm.irreducible_variance(one, a, s).value, d_eff / s**2, 1e-10)
    np.testing.assert_allclose(optimal.homoskedastic_multiplier(one, a, s).value, d / d_eff)
    np.testing.assert_allclose(
        optimal.c_star_curve(one, [0.1, 1.0]), [1 + 0.01 / s2, 1 + 1 / s2], rtol=1e-10
    )
    np.testing.assert_allclose(
        variance.fisher_information(one).value, np.eye(2) / s2, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("order", [1, 2])
def test_k1_targets_match_gaussian_closed_forms(one, order):
    a, s = 1.0, 0.5
    got = targets.irreducible_target_variance(one, a, s, order).value
    want = targets.gaussian_target_variance(2, 0.7, a, s, order)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    ivw = targets.inverse_variance_weight(one, a, s, order).value
    np.testing.assert_allclose(ivw, targets.gaussian_inverse_variance_weight(2, 0.7, a, s, order))


def test_k1_kappa_star_and_pieces(one):
    f0 = variance.fisher_trace(one).value
    np.testing.assert_allclose(f0, 2 / 0.49, rtol=1e-10)
    np.testing.assert_allclose(
        targets.kappa_star(0.3, f0, 2), targets.kappa_star_gaussian(0.3, 0.7), rtol=1e-10
    )
    assert math.isfinite(targets.crossing_lambda(f0, 2))
    x = np.array([[0.3, -0.2]])
    assert np.all(np.isfinite(np.asarray(targets.order2_gls_weight(one, x, 1.0, 0.5))))
    assert dsm.train.sigma_data(one) == pytest.approx(0.7)
    assert math.isfinite(dsm.train.default_sigma_max(one))
    assert dsm.metrics.mode_coverage(one, np.zeros((4, 2))).fraction == 1.0


# ---------------------------------------------------------------------------------------
# the key rule
# ---------------------------------------------------------------------------------------
_GM4 = None


def _gm4():
    global _GM4
    if _GM4 is None:
        _GM4 = dsm.random_anisotropic(dim=4, num_components=2)
    return _GM4


_N = 128
MC_ENTRY_POINTS = {
    "variance.fisher_information": lambda k: (
        variance.fisher_information(_gm4(), key=k, num_samples=_N).value
    ),
    "variance.mmse": lambda k: variance.mmse(_gm4(), 1.0, 0.5, key=k, num_samples=_N).value,
    "variance.irreducible_variance": lambda k: (
        variance.irreducible_variance(_gm4(), 1.0, 0.5, key=k, num_samples=_N).value
    ),
    "variance.heteroskedasticity_curve": lambda k: (
        variance.heteroskedasticity_curve(_gm4(), [0.5], key=k, num_samples=_N).R
    ),
    "optimal.homoskedastic_multiplier": lambda k: (
        optimal.homoskedastic_multiplier(_gm4(), 1.0, 0.5, key=k, num_samples=_N).value
    ),
    "optimal.c_star_of_lambda": lambda k: optimal.c_star_of_lambda(
        _gm4(), [0.0], key=k, num_samples=_N
    ),
    "optimal.residual_variance": lambda k: (
        optimal.residual_variance(_gm4(), 1.0, 0.5, key=k, num_samples=_N).raw
    ),
    "targets.irreducible_target_variance": lambda k: (
        targets.irreducible_target_variance(_gm4(), 1.0, 0.5, 1, key=k, num_samples=_N).value
    ),
    "targets.tsm_moments": lambda k: (
        targets.tsm_moments(_gm4(), 1.0, 0.5, key=k, num_outer=32, num_inner=4).var_tsm.value
    ),
    "metrics.sliced_energy_distance": lambda k: (
        dsm.metrics.sliced_energy_distance(
            k, np.arange(12.0).reshape(6, 2), np.ones((5, 2)), num_projections=8
        ).value
    ),
}


@pytest.mark.parametrize("name", sorted(MC_ENTRY_POINTS))
def test_key_none_means_prngkey_0(name):
    fn = MC_ENTRY_POINTS[name]
    none, zero, one_ = fn(None), fn(jax.random.PRNGKey(0)), fn(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(none), np.asarray(zero))
    assert not np.array_equal(np.asarray(none), np.asarray(one_))  # the key is used
