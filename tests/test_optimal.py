"""Tests of dsmtheory.optimal: c*(t), the `optimal` weighting, W*, residual variances,
importance-sampling densities."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from tolerances import EXACT_ATOL, EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory import optimal, weightings

# FORMULAS.md §4 prints c* to 4 significant digits.
TABLE_RTOL = 1e-3
# The engine's default rule ("auto": adaptive in D <= 2) promises 1e-10 relative; c* must be
# within 1e-8 (issue 12). Checked against scipy quad and an independent integrand below.
ENGINE_RTOL = 1e-10
# The `optimal` registry entry interpolates log c* by a natural cubic spline on a 129-point
# λ grid (spacing 0.25): measured at most 4.0e-4 relative at the midpoints on bimodal_1d
# (1.7e-5 on the ring), where c* has its sharpest bump.
INTERP_RTOL = 1e-3


def _gauss(std, dim=1):
    return dsm.single_gaussian(np.zeros(dim), std)


# --------------------------------------------------------------------------- c*
def test_c_star_table_bimodal():
    # FORMULAS.md §4 table (VE, means ±2, std 0.25)
    sigmas = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0]
    expected = [1.040, 1.160, 2.000, 4.867, 2.959, 2.193, 4.963, 25.62]
    got = optimal.c_star_curve(dsm.bimodal_1d(), sigmas)
    np.testing.assert_allclose(got, expected, rtol=TABLE_RTOL)


@pytest.mark.parametrize("s", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("dim", [1, 2])
def test_c_star_gaussian_ve_is_edm(s, dim):
    # by hand: mmse = D σ² s² / (s² + σ²), so c* = D σ² / mmse = 1 + σ²/s²
    sig = np.array([1e-3, 0.1, 0.7, 3.0, 40.0])
    got = optimal.c_star_curve(_gauss(s, dim), sig)
    np.testing.assert_allclose(got, 1.0 + sig**2 / s**2, rtol=EXACT_RTOL)
    # = EDM's ε-space weight with σ_d = s (P14)
    lam = -2.0 * np.log(sig)
    np.testing.assert_allclose(got, optimal.equivalent_c("edm", lam, sigma_data=s), rtol=1e-10)


def test_c_star_depends_on_lambda_only():
    gm = dsm.bimodal_1d()
    sig_vp = np.array([0.05, 0.3, 0.8, 0.99])
    vp = optimal.c_star_curve(gm, sig_vp, process="vp")
    ve = optimal.c_star_curve(gm, sig_vp / np.sqrt(1 - sig_vp**2), process="ve")
    np.testing.assert_allclose(vp, ve, rtol=1e-10)
    one = optimal.homoskedastic_multiplier(gm, math.sqrt(1 - 0.3**2), 0.3)
    np.testing.assert_allclose(one.value, vp[1], rtol=1e-12)


def test_c_star_limits_small_sigma():
    for gm in (dsm.bimodal_1d(), dsm.ring()):
        c = optimal.c_star_curve(gm, [1e-4, 1e-3])
        assert np.all(c >= 1.0)
        assert abs(c[0] - 1.0) < 1e-6
    c = np.asarray(optimal.c_star_curve(dsm.bimodal_1d(), np.geomspace(1e-3, 1e-1, 5)))
    assert np.all(np.diff(c) > 0)


def test_p9_first_order_term():
    # FORMULAS P9: "c* = 1.001597 vs 1 + σ²J0 = 1.001597 at σ = 0.02" -- reproduced by
    # the bimodal with separation 4 and std 0.5 (not the default std 0.25, where c* = 1.0064).
    gm = dsm.bimodal_1d(separation=4.0, std=0.5)
    j0 = optimal.small_noise_fisher(gm)
    c = float(optimal.homoskedastic_multiplier(gm, 1.0, 0.02).value)
    assert round(c, 6) == 1.001597 or round(c, 6) == 1.001598
    assert abs(c - (1 + 0.02**2 * j0)) < 1e-6
    # the remainder is O(σ⁴): halving σ divides it by ~16
    sig = np.array([0.04, 0.02])
    rem = np.abs(np.asarray(optimal.c_star_curve(gm, sig)) - 1 - sig**2 * j0)
    ratio = rem[0] / rem[1]
    assert 12.0 < ratio < 20.0


def test_fisher_trace_gaussian_and_default_bimodal():
    # N(0, s² I): tr I = D / s²
    assert abs(float(dsm.variance.fisher_trace(_gauss(0.5, 2)).value) - 8.0) < 1e-10
    # bimodal, std 0.25, well separated: J0 = 16 up to the overlap (1e-10 scale)
    assert abs(optimal.small_noise_fisher(dsm.bimodal_1d()) - 16.0) < 1e-8


def _np_bimodal_integrand(x, sigma, mu=2.0, v=0.0625):
    """NumPy p_t(x) * tr Cov(x0 | x_t = x) for the equal-weight 1-D bimodal, by hand."""
    s2 = v + sigma**2
    logn = np.array([-0.5 * (x - m) ** 2 / s2 for m in (-mu, mu)])
    p = 0.5 * np.exp(logn).sum(0) / math.sqrt(2 * math.pi * s2)
    r = np.exp(logn - np.logaddexp(logn[0], logn[1]))
    means = np.array([m + v / s2 * (x - m) for m in (-mu, mu)])
    mbar = (r * means).sum(0)
    return p * (v * sigma**2 / s2 + (r * (means - mbar) ** 2).sum(0))


@pytest.mark.parametrize("sigma", [0.25, 1.0])
def test_mmse_quadrature_vs_scipy_quad(sigma):
    ref, _ = integrate.quad(
        _np_bimodal_integrand,
        -14,
        14,
        args=(sigma,),
        points=[-2, 0, 2],
        limit=400,
        epsabs=1e-14,
        epsrel=1e-12,
    )
    got = dsm.variance.mmse(dsm.bimodal_1d(), 1.0, sigma)
    assert got.method == "adaptive" and float(got.stderr) == 0.0
    np.testing.assert_allclose(float(got.value), ref, rtol=ENGINE_RTOL)
    # and c* at the same point, to 1e-8 at least (the bound)
    c = optimal.homoskedastic_multiplier(dsm.bimodal_1d(), 1.0, sigma)
    np.testing.assert_allclose(c.value, sigma**2 / ref, rtol=1e-8)


def test_p12_identity_two_computations():
    # R = D/σ² − tr I_t (Fisher of the noised density, from the score) equals
    # α² mmse / σ⁴ (from the posterior covariance): two different integrands.
    gm = dsm.random_anisotropic(3, 3, 2)
    for alpha, sigma in [(1.0, 0.7), (0.8, 0.6), (1.0, 2.0)]:
        tr_i = float(dsm.variance.fisher_trace(gm.noised(alpha, sigma)).value)
        mmse = float(dsm.variance.mmse(gm, alpha, sigma).value)
        r = alpha**2 * mmse / sigma**4
        # the difference D/σ² - tr I_t loses digits where R << D/σ²
        np.testing.assert_allclose(2 / sigma**2 - tr_i, r, rtol=ENGINE_RTOL * 2 / (sigma**2 * r))


def test_monte_carlo_matches_quadrature_ring():
    gm = dsm.ring()
    q = optimal.homoskedastic_multiplier(gm, 1.0, 0.3)
    mc = optimal.homoskedastic_multiplier(
        gm, 1.0, 0.3, method="monte_carlo", key=jax.random.PRNGKey(0), num_samples=5000
    )
    assert mc.method == "monte_carlo" and float(mc.stderr) > 0
    assert abs(float(mc.value) - float(q.value)) < Z_BOUND * float(mc.stderr)
    sw = optimal.score_weight(gm, 1.0, 0.3)
    np.testing.assert_allclose(float(sw.value), 0.09 * float(q.value), rtol=1e-14)


# --------------------------------------------------------------------------- registry entry
@pytest.mark.slow
def test_optimal_registry_entry():
    gm = dsm.bimodal_1d()
    w = weightings.get("optimal", gm=gm, process="ve")
    assert "optimal" in weightings.names()
    lam = jnp.array([-5.3, -1.1, 0.77, 2.9, 6.1])
    np.testing.assert_allclose(w(lam), optimal.c_star_of_lambda(gm, lam), rtol=INTERP_RTOL)
    np.testing.assert_allclose(jax.jit(w)(lam), w(lam), rtol=1e-14)
    # asymptotes beyond the table: continuous at the edges, c* → 1 at high λ
    edge = jnp.array([16.0 - 1e-9, 16.0 + 1e-9, -16.0 + 1e-9, -16.0 - 1e-9])
    v = np.asarray(w(edge))
    np.testing.assert_allclose(v[0], v[1], rtol=1e-7)
    np.testing.assert_allclose(v[2], v[3], rtol=1e-7)
    assert abs(float(w(jnp.array(40.0))) - 1.0) < 1e-15
    # total weight = p * omega
    sched = dsm.schedules.get("edm_training")
    np.testing.assert_allclose(w.total(lam, sched), sched.density(lam) * w(lam), rtol=1e-14)


# --------------------------------------------------------------------------- W*
def test_matrix_weight_equals_gls_inverse():
    gm = dsm.random_anisotropic(1, 3, 2)
    x = gm.noised(0.9, 0.5).sample(jax.random.PRNGKey(2), 5)
    w = optimal.matrix_weight(gm, x, 0.9, 0.5)
    # independent: σ²(I + σ² H_t)⁻¹ from the Hessian of the noised mixture
    h = gm.noised(0.9, 0.5).hessian(x)
    ref = 0.25 * jnp.linalg.inv(jnp.eye(2)[None] + 0.25 * h)
    np.testing.assert_allclose(w, ref, rtol=1e-9, atol=EXACT_ATOL)
    np.testing.assert_allclose(
        optimal.matrix_weight_trace(gm, x, 0.9, 0.5), jnp.trace(ref, axis1=-2, axis2=-1), rtol=1e-9
    )
    assert np.all(np.linalg.eigvalsh(np.asarray(w)) > 0)


def test_matrix_weight_taylor_sigma6():
    gm = dsm.random_anisotropic(4, 2, 2)
    x = gm.means[0] + 0.1  # near a mode: the expansion is uniform there
    h0 = gm.hessian(x)
    res = []
    for s in (0.02, 0.01):
        w = optimal.matrix_weight(gm, x, 1.0, s)
        res.append(float(jnp.max(jnp.abs(w - (s**2 * jnp.eye(2) - s**4 * h0)))))
    ratio = res[0] / res[1]
    assert 2**6 * 0.7 < ratio < 2**6 * 1.3, ratio


# --------------------------------------------------------------------------- P16
def test_residual_variance_p16_numbers():
    # FORMULAS P16 "9.62e-3 vs 1.040e-2 at σ = 0.1": reproduced by N(0, 0.5²) (J = 1/0.26)
    g = _gauss(0.5)
    heur = optimal.residual_variance(g, 1.0, 0.1, 0.01)
    opt = optimal.residual_variance(g, 1.0, 0.1, "matrix")
    j = 1.0 / 0.26
    np.testing.assert_allclose(heur.raw, 0.01 - 1e-4 * j, rtol=1e-12)  # σ² − σ⁴J
    np.testing.assert_allclose(opt.raw, 1.0 / (100.0 - j), rtol=1e-12)  # 1/(σ⁻² − J)
    assert round(heur.raw, 5) == 0.00962 and round(opt.raw, 5) == 0.0104
    # for a Gaussian C_t is constant: scale-free variances coincide
    np.testing.assert_allclose(heur.scale_free, opt.scale_free, rtol=1e-12)


@pytest.mark.slow
def test_residual_variance_matrix_wins_scale_free():
    gm = dsm.ring()
    for s in (0.3, 1.0):
        c = float(optimal.homoskedastic_multiplier(gm, 1.0, s).value)
        scal = optimal.residual_variance(gm, 1.0, s, s**2 * c)
        mat = optimal.residual_variance(gm, 1.0, s, "matrix")
        # scalar: raw = Λ² R / D with Λ = σ² c* = D/R, so raw = Λ
        np.testing.assert_allclose(scal.raw, s**2 * c, rtol=1e-10)
        assert mat.scale_free < scal.scale_free  # Jensen: D²/E tr C⁻¹ < E tr C


def test_per_direction_residual():
    h = np.array([-3.0, 0.0, 2.0])
    heur, opt = optimal.per_direction_residual(h, 0.2)
    a = 25.0 + h
    np.testing.assert_allclose(heur, 0.0016 * a)
    np.testing.assert_allclose(opt, 1 / a)
    assert heur[0] < opt[0] and heur[2] > opt[2]


# --------------------------------------------------------------------------- P11
@pytest.mark.slow
def test_importance_sampling_optimum():
    lam = np.linspace(-6, 8, 401)
    w = np.exp(-0.5 * ((lam - 2.4) / 2.4) ** 2)
    m2 = np.asarray(optimal.label_noise_second_moment(dsm.bimodal_1d(), lam))
    loss = 0.5 * (1 + np.tanh(-lam / 3))
    base = np.full_like(lam, 1.0)
    cmp = optimal.compare_densities(lam, w, m2, loss=loss, baseline=base)
    best = cmp.second_moments["optimal"]
    np.testing.assert_allclose(best, cmp.bound, rtol=1e-10)  # Cauchy–Schwarz attained
    for name, v in cmp.second_moments.items():
        if name != "optimal":
            assert v > best * (1 + 1e-6), name
    for p in cmp.densities.values():
        np.testing.assert_allclose(np.trapezoid(p, lam), 1.0, rtol=1e-12)
    # with a mean gradient, the variance subtracts |∫ w m1|²
    m1 = np.ones((lam.size, 1)) * 0.1
    v = optimal.is_variance(lam, w, m2, cmp.densities["optimal"], m1)
    np.testing.assert_allclose(v, best - (0.1 * np.trapezoid(w, lam)) ** 2, rtol=1e-12)


def test_label_noise_second_moment_is_4R():
    lam = np.array([-1.0, 2.0])
    g = _gauss(0.5)
    sig2 = np.exp(-lam)
    r = 0.25 / (sig2 * (0.25 + sig2))  # R = D s² / (σ² (s² + σ²))
    np.testing.assert_allclose(optimal.label_noise_second_moment(g, lam), 4 * r, rtol=1e-12)


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    gm = dsm.bimodal_1d()
    with pytest.raises(ValueError, match="sigma"):
        optimal.homoskedastic_multiplier(gm, 1.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        optimal.homoskedastic_multiplier(gm, -1.0, 0.1)
    with pytest.raises(ValueError, match="method"):
        optimal.homoskedastic_multiplier(gm, 1.0, 0.1, method="magic")
    with pytest.raises(TypeError, match="key"):
        optimal.homoskedastic_multiplier(gm, 1.0, 0.1, method="monte_carlo", key=3)
    with pytest.raises(TypeError, match="gm"):
        optimal.c_star_curve([1.0], [0.1])
    with pytest.raises(ValueError, match="sigmas"):
        optimal.c_star_curve(gm, [0.1, -1.0])
    with pytest.raises(ValueError, match="sigmas"):
        optimal.c_star_curve(gm, [0.5, 1.2], process="vp")
    with pytest.raises(ValueError, match="process"):
        optimal.c_star_curve(gm, [0.5], process="xx")
    with pytest.raises(ValueError, match="num_nodes"):
        optimal.c_star_curve(gm, [0.5], num_nodes=0)
    with pytest.raises(ValueError, match="weight"):
        optimal.residual_variance(gm, 1.0, 0.1, "diagonal")
    with pytest.raises(ValueError, match="weight"):
        optimal.residual_variance(gm, 1.0, 0.1, -2.0)
    with pytest.raises(ValueError, match="lam"):
        optimal.optimal_density([0.0, 0.0], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="m2"):
        optimal.optimal_density([0.0, 1.0], [1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="p"):
        optimal.is_second_moment([0.0, 1.0], [1, 1], [1, 1], [1, 0])
    with pytest.raises(ValueError, match="lam_min"):
        optimal.OptimalWeighting(gm, lam_min=3.0, lam_max=1.0)
    with pytest.raises(ValueError, match="x_t"):
        optimal.matrix_weight(gm, jnp.zeros((3, 2)), 1.0, 0.1)
    with pytest.raises(ValueError, match="h"):
        optimal.per_direction_residual(-200.0, 0.1)


def test_c_star_agrees_with_variance_module():
    # dsmtheory.variance computes R by its own adaptive quadrature: c* = D / (σ² R)
    from dsmtheory import variance

    gm = dsm.bimodal_1d()
    r = variance.irreducible_variance(gm, 1.0, 1.0)
    c = optimal.homoskedastic_multiplier(gm, 1.0, 1.0)
    np.testing.assert_allclose(float(c.value), 1.0 / float(r.value), rtol=ENGINE_RTOL)
