"""Tests of dsmtheory.schedules, registry-driven: every schedule, default and truncated range.

Independent references: scipy.integrate.quad for normalisation, a cumulative quadrature of
the density for a Kolmogorov-Smirnov test of lam(t) with t ~ U(0, 1), central finite
differences for dlam/dt, scipy.stats.norm for EDM training, and FORMULAS.md §2 values.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from scipy import integrate, stats
from tolerances import EXACT_ATOL, EXACT_RTOL

from dsmtheory import schedules

# quad's own error estimate on these smooth densities is ~1e-10 or better; 1e-8 leaves room
# for the sech/Gaussian tails over infinite ranges.
QUAD_NORM_TOL = 1e-8

# Kolmogorov-Smirnov p-value floor: 5.7e-7 is the two-sided tail mass beyond Z_BOUND = 5
# standard deviations, the same false-alarm rate as the z-bounded Monte Carlo tests.
KS_PMIN = 5.7e-7

# Central differences with step h: truncation O(h^2 lam''') plus rounding O(eps |lam| / h);
# h = 1e-5 gives ~1e-9 relative. 1e-6 relative leaves margin.
FD_STEP = 1e-5
FD_RTOL = 1e-6

# t(lam(t)) round trip: ndtri/ndtr (EDM training) and log/tan compositions lose a few digits
# near the ends of [0, 1].
ROUNDTRIP_ATOL = 1e-10

NAMES = schedules.names()
T_GRID = np.linspace(0.02, 0.98, 25)


def _truncated(name):
    """A schedule truncated to the middle of its default range: lam(0.8) .. lam(0.25)."""
    base = schedules.get(name)
    lo, hi = float(base.lam(0.8)), float(base.lam(0.25))
    return schedules.get(name, lam_min=lo, lam_max=hi)


@pytest.fixture(
    params=[(n, trunc) for n in NAMES for trunc in (False, True)],
    ids=lambda p: f"{p[0]}-{'truncated' if p[1] else 'default'}",
)
def sched(request):
    name, trunc = request.param
    return _truncated(name) if trunc else schedules.get(name)


def test_registry_names():
    assert set(NAMES) >= {"ve", "vp_linear", "cosine", "edm_training", "edm_sampling"}


def _density_np(s):
    return lambda lam: np.asarray(s.density(np.asarray(lam, dtype=np.float64)))


def test_density_integrates_to_one(sched):
    f = _density_np(sched)
    val, err = integrate.quad(lambda l: float(f(l)), sched.lam_min, sched.lam_max, limit=200)
    assert abs(val - 1.0) <= QUAD_NORM_TOL, (val, err)
    # zero outside a finite range
    if math.isfinite(sched.lam_min):
        assert float(sched.density(sched.lam_min - 1.0)) == 0.0
    if math.isfinite(sched.lam_max):
        assert float(sched.density(sched.lam_max + 1.0)) == 0.0


def _cdf_by_quadrature(s):
    """CDF of lam from a cumulative Simpson rule on a fine grid of the density."""
    lo, hi = s.lam_min, s.lam_max
    if not math.isfinite(lo) or not math.isfinite(hi):
        # infinite tails (EDM training): cover +- 12 standard deviations of the density
        m, sd = 2.4, 2.4
        lo = max(lo, m - 12 * sd)
        hi = min(hi, m + 12 * sd)
    grid = np.linspace(lo, hi, 20_001)
    cdf = integrate.cumulative_simpson(_density_np(s)(grid), x=grid, initial=0.0)
    return lambda x: np.interp(x, grid, cdf)


def test_lam_of_uniform_t_has_the_density(sched):
    n = 4000
    t = np.random.default_rng(1).uniform(0.0, 1.0, n)
    lam = np.asarray(sched.lam(t))
    assert np.all(np.isfinite(lam))
    res = stats.kstest(lam, _cdf_by_quadrature(sched))
    assert res.pvalue >= KS_PMIN, res
    # the schedule's own sampler draws the same law
    lam_s = np.asarray(sched.sample(jax.random.PRNGKey(2), (n,)))
    assert lam_s.shape == (n,)
    assert np.all((lam_s >= sched.lam_min) & (lam_s <= sched.lam_max))
    res = stats.kstest(lam_s, _cdf_by_quadrature(sched))
    assert res.pvalue >= KS_PMIN, res


def test_lam_is_decreasing_and_spans_the_range(sched):
    lam = np.asarray(sched.lam(np.linspace(0.0, 1.0, 101)))
    assert np.all(np.diff(lam) < 0)
    if math.isfinite(sched.lam_max):
        np.testing.assert_allclose(lam[0], sched.lam_max, rtol=1e-9, atol=1e-9)
    if math.isfinite(sched.lam_min):
        np.testing.assert_allclose(lam[-1], sched.lam_min, rtol=1e-9, atol=1e-9)


def test_g2_and_dlam_dt_match_finite_differences(sched):
    t = T_GRID
    fd = (np.asarray(sched.lam(t + FD_STEP)) - np.asarray(sched.lam(t - FD_STEP))) / (2 * FD_STEP)
    np.testing.assert_allclose(np.asarray(sched.dlam_dt(t)), fd, rtol=FD_RTOL)
    sigma2 = np.asarray(sched.sigma(sched.lam(t))) ** 2
    np.testing.assert_allclose(np.asarray(sched.g2(t)), -sigma2 * fd, rtol=FD_RTOL)
    assert np.all(np.asarray(sched.g2(t)) > 0)


def test_density_is_jacobian_of_t(sched):
    """p(lam) = |dt/dlam| = 1/|dlam/dt| at lam = lam(t)."""
    t = T_GRID
    p = np.asarray(sched.density(sched.lam(t)))
    np.testing.assert_allclose(p, 1.0 / np.abs(np.asarray(sched.dlam_dt(t))), rtol=1e-9)


def test_t_inverts_lam(sched):
    t = np.linspace(0.01, 0.99, 33)
    np.testing.assert_allclose(np.asarray(sched.t(sched.lam(t))), t, atol=ROUNDTRIP_ATOL)


def test_alpha_sigma_define_lam(sched):
    lam = np.asarray(sched.lam(T_GRID))
    a, s = np.asarray(sched.alpha(lam)), np.asarray(sched.sigma(lam))
    np.testing.assert_allclose(np.log(a**2 / s**2), lam, rtol=EXACT_RTOL, atol=1e-11)
    if sched.process == "vp":
        np.testing.assert_allclose(a**2 + s**2, 1.0, rtol=EXACT_RTOL)
    else:
        np.testing.assert_array_equal(a, 1.0)
        np.testing.assert_allclose(s, np.exp(-lam / 2), rtol=EXACT_RTOL)
    np.testing.assert_allclose(np.asarray(sched.snr(lam)), np.exp(lam), rtol=EXACT_RTOL)


def test_jit_equals_eager(sched):
    t = T_GRID
    lam_j = jax.jit(sched.lam)(t)
    np.testing.assert_allclose(lam_j, sched.lam(t), rtol=EXACT_RTOL, atol=EXACT_ATOL)
    np.testing.assert_allclose(jax.jit(sched.density)(lam_j), sched.density(lam_j), rtol=EXACT_RTOL)


# ---------------------------------------------------------------------------------------
# FORMULAS.md §2 specific values
# ---------------------------------------------------------------------------------------
def test_vp_linear_default_range():
    s = schedules.get("vp_linear")
    b = lambda t: 0.1 * t + 0.5 * (20.0 - 0.1) * t**2
    lam_lo, lam_hi = -np.log(np.expm1(b(1.0))), -np.log(np.expm1(b(1e-5)))
    np.testing.assert_allclose([s.lam_min, s.lam_max], [lam_lo, lam_hi], rtol=1e-12)
    # FORMULAS.md: t in [1e-5, 1] gives lam in [-10.05, 13.81] (two decimals)
    assert round(s.lam_min, 2) == -10.05
    assert abs(s.lam_max - 13.81) < 0.01
    assert s.process == "vp"
    # density formula of FORMULAS.md §2
    lam = np.linspace(-10.0, 13.0, 7)
    sp = np.log1p(np.exp(-lam))
    p = (1 / (1 + np.exp(lam))) / np.sqrt(0.1**2 + 2 * 19.9 * sp)
    t0, t1 = 1e-5, 1.0
    np.testing.assert_allclose(np.asarray(s.density(lam)), p / (t1 - t0), rtol=1e-10)


def test_edm_sampling_range_and_density():
    s = schedules.get("edm_sampling")
    np.testing.assert_allclose(
        [s.lam_min, s.lam_max], [-2 * np.log(80.0), -2 * np.log(0.002)], rtol=1e-12
    )
    assert round(s.lam_min, 2) == -8.76 and round(s.lam_max, 2) == 12.43
    rho, a, b = 7.0, 0.002 ** (1 / 7), 80.0 ** (1 / 7)
    lam = np.linspace(-8.0, 12.0, 9)
    np.testing.assert_allclose(
        np.asarray(s.density(lam)), np.exp(-lam / (2 * rho)) / (2 * rho * (b - a)), rtol=1e-12
    )
    # sigma_tilde(t) = (a + t (b - a))^rho
    t = T_GRID
    np.testing.assert_allclose(
        np.exp(-np.asarray(s.lam(t)) / 2), (a + t * (b - a)) ** rho, rtol=1e-12
    )


def test_ve_geometric_g2_and_uniform_density():
    s = schedules.get("ve")
    smin, smax = 0.01, 50.0
    t = T_GRID
    sigma_t = smin * (smax / smin) ** t
    np.testing.assert_allclose(np.asarray(s.sigma(s.lam(t))), sigma_t, rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(s.g2(t)), 2 * sigma_t**2 * np.log(smax / smin), rtol=1e-12
    )
    lam = np.linspace(s.lam_min, s.lam_max, 5)
    np.testing.assert_allclose(
        np.asarray(s.density(lam)), 1 / (2 * np.log(smax / smin)), rtol=1e-12
    )


def test_edm_training_is_lognormal():
    s = schedules.get("edm_training")
    assert s.lam_min == -math.inf and s.lam_max == math.inf
    lam = np.linspace(-8.0, 14.0, 12)
    np.testing.assert_allclose(
        np.asarray(s.density(lam)), stats.norm(2.4, 2.4).pdf(lam), rtol=1e-12
    )
    t = T_GRID
    np.testing.assert_allclose(
        np.asarray(s.lam(t)), -2 * (-1.2 + 1.2 * stats.norm.ppf(t)), rtol=1e-10
    )


@pytest.mark.parametrize("shift", [0.0, math.log(64 / 256), math.log(64 / 32)])
def test_cosine_density_and_shift(shift):
    full = schedules.get("cosine", shift=shift, lam_min=-math.inf, lam_max=math.inf)
    lam = np.linspace(-15.0, 15.0, 13)
    ref = 1.0 / (2 * np.pi * np.cosh(lam / 2 - shift))
    np.testing.assert_allclose(np.asarray(full.density(lam)), ref, rtol=1e-12)
    t = T_GRID
    np.testing.assert_allclose(
        np.asarray(full.lam(t)), -2 * np.log(np.tan(np.pi * t / 2)) + 2 * shift, rtol=1e-10
    )
    # the default truncation [-20, 20] renormalises by the mass inside it:
    # int sech(u) du = 2 arctan(tanh(u/2)), u = lam/2 - shift
    default = schedules.get("cosine", shift=shift)
    u = np.array([-10.0 - shift, 10.0 - shift])
    mass = (2 / np.pi) * (np.arctan(np.tanh(u[1] / 2)) - np.arctan(np.tanh(u[0] / 2)))
    np.testing.assert_allclose(np.asarray(default.density(lam)), ref / mass, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_truncation_renormalises(name):
    base = schedules.get(name)
    tr = _truncated(name)
    lam = np.linspace(tr.lam_min, tr.lam_max, 9)
    mass, _ = integrate.quad(
        lambda l: float(base.density(l)), tr.lam_min, tr.lam_max, epsabs=1e-13, epsrel=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(tr.density(lam)), np.asarray(base.density(lam)) / mass, rtol=1e-9
    )
    assert float(tr.density(tr.lam_min - 0.1)) == 0.0
    assert float(tr.density(tr.lam_max + 0.1)) == 0.0
    # truncated t runs over the same lam values as the base schedule, rescaled (KG E.3.1)
    t0, t1 = float(base.t(tr.lam_max)), float(base.t(tr.lam_min))
    t = T_GRID
    np.testing.assert_allclose(
        np.asarray(tr.lam(t)), np.asarray(base.lam(t0 + (t1 - t0) * t)), rtol=1e-9, atol=1e-9
    )


def test_module_alpha_sigma():
    lam = np.array([-30.0, -1.0, 0.0, 2.0, 30.0])
    a, s = schedules.alpha_sigma(lam, "vp")
    np.testing.assert_allclose(np.asarray(a) ** 2, 1 / (1 + np.exp(-lam)), rtol=EXACT_RTOL)
    np.testing.assert_allclose(np.asarray(s) ** 2, 1 / (1 + np.exp(lam)), rtol=EXACT_RTOL)
    a, s = schedules.alpha_sigma(lam, "ve")
    np.testing.assert_array_equal(np.asarray(a), 1.0)
    np.testing.assert_allclose(np.asarray(s), np.exp(-lam / 2), rtol=EXACT_RTOL)


def test_process_override():
    s = schedules.get("cosine", process="ve")
    assert s.process == "ve"
    np.testing.assert_array_equal(np.asarray(s.alpha(np.array([0.5, 3.0]))), 1.0)


# ---------------------------------------------------------------------------------------
# Truncation constants at construction; maps from lam under jit
# ---------------------------------------------------------------------------------------
def test_truncation_constants_are_set_at_construction(sched):
    # t0, t1 are plain floats from the start (not computed on first use), outside the
    # dataclass fields: equal schedules stay equal and hash alike
    assert isinstance(sched.t0, float) and isinstance(sched.t1, float)
    assert {"t0", "t1"} <= set(vars(sched)) and sched.t0 < sched.t1
    again = schedules.get(sched.name, lam_min=sched.lam_min, lam_max=sched.lam_max)
    assert again == sched and hash(again) == hash(sched)
    # lam(0) = lam_max and lam(1) = lam_min (the truncation, Kingma & Gao App. E.3.1)
    lam_ends = np.asarray(sched.lam(np.array([0.0, 1.0])))
    np.testing.assert_allclose(lam_ends, [sched.lam_max, sched.lam_min], rtol=1e-9, atol=1e-9)


def test_schedule_built_inside_jit_and_dlam_dt_of_lam(sched):
    name, lo, hi = sched.name, sched.lam_min, sched.lam_max

    @jax.jit
    def lam_of_t(t):  # the schedule is constructed while tracing
        return schedules.get(name, lam_min=lo, lam_max=hi).lam(t)

    np.testing.assert_allclose(lam_of_t(T_GRID), sched.lam(T_GRID), rtol=EXACT_RTOL)
    lam = np.asarray(sched.lam(T_GRID))
    direct = jax.jit(sched.dlam_dt_of_lam)(lam)
    np.testing.assert_allclose(direct, sched.dlam_dt(T_GRID), rtol=ROUNDTRIP_ATOL)


def test_lam_outside_the_range_names_the_schedule():
    s = schedules.get("cosine")
    with pytest.raises(ValueError, match="lam must lie in the 'cosine' schedule's range"):
        s.check_lam(np.array([0.0, 25.0]))
    with pytest.raises(ValueError, match="'cosine' schedule's range"):
        s.dlam_dt_of_lam(-21.0)
    np.testing.assert_array_equal(np.asarray(s.check_lam([1.0, -2.0])), [1.0, -2.0])
