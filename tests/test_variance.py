"""Tests of dsmtheory.variance: Fisher information, irreducible DSM variance, mmse, the
DSM = SM + R decomposition and the heteroskedasticity curve (FORMULAS.md §4, §5 P12).

Expected values come from hand derivations (single Gaussian), from an independent
quadrature rule or integrand form, from Monte Carlo with a z-score bound, or from the
published c* table of FORMULAS.md §4, never from the code under test.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerances import EXACT_RTOL, QUAD_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory import variance as var

# The FORMULAS.md §4 c* table prints J to 5 significant digits.
TABLE_RTOL = 1e-3

RING = dsm.ring()
ANISO = dsm.random_anisotropic(0, 4, 2)
BIMODAL = dsm.bimodal_1d()


@functools.cache
def _quad_fisher(name: str, sigma: float) -> np.ndarray:
    gm = {"ring": RING, "aniso": ANISO, "bimodal": BIMODAL}[name]
    return np.asarray(var.fisher_information(gm.noised(1.0, sigma), "adaptive").matrix)


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


# ---------------------------------------------------------------------------------------
# Fisher information by quadrature
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,sigma",
    [("bimodal", 0.05), ("bimodal", 0.5), ("bimodal", 5.0), ("ring", 0.05), ("aniso", 0.5)],
)
def test_fisher_adaptive_matches_hessian_form(name, sigma):
    """Score-form adaptive rule vs the Hessian form -E[H], an independent integrand."""
    gm = {"ring": RING, "aniso": ANISO, "bimodal": BIMODAL}[name].noised(1.0, sigma)
    primary = _quad_fisher(name, sigma)
    check = var.fisher_information(gm, "adaptive", form="hessian")
    assert check.method == "adaptive" and "hessian form" in check.rule
    assert _rel(primary, check.matrix) <= QUAD_RTOL
    assert np.all(np.asarray(check.stderr) == 0.0)
    np.testing.assert_allclose(primary, primary.T, rtol=0, atol=0)


def test_fisher_gauss_hermite_rule_agrees_where_smooth():
    """At high noise the integrand is smooth and Gauss-Hermite, a third rule, agrees."""
    gm = BIMODAL.noised(1.0, 5.0)
    gh = var.fisher_information(gm, "gauss_hermite", num_nodes=64)
    assert gh.method == "gauss_hermite" and "64 nodes" in gh.rule
    assert _rel(gh.matrix, _quad_fisher("bimodal", 5.0)) <= QUAD_RTOL


def test_irreducible_adaptive_matches_fisher_form():
    """R by the posterior-trace integrand vs D/sigma^2 - tr I_t (1-D, cheap)."""
    sigma = 0.5
    a = var.irreducible_variance(BIMODAL, 1.0, sigma, method="adaptive")
    assert a.method == "adaptive"
    fisher_form = 1 / sigma**2 - _quad_fisher("bimodal", sigma)[0, 0]
    assert a.value == pytest.approx(fisher_form, rel=QUAD_RTOL)


@pytest.mark.parametrize("sigma,expected", [(0.05, 15.385), (0.1, 13.793), (0.25, 8.000)])
def test_bimodal_fisher_matches_formulas_cstar_table(sigma, expected):
    """FORMULAS.md §4 table: J = tr I_t / D for means ±2, std 0.25 (published figures)."""
    j = np.trace(_quad_fisher("bimodal", sigma)) / 1
    assert j == pytest.approx(expected, rel=TABLE_RTOL)


def test_fisher_monte_carlo_within_z_bound_of_quadrature():
    gm = RING.noised(1.0, 1.0)
    mc = var.fisher_information(gm, "monte_carlo", key=jax.random.PRNGKey(1), num_samples=10_000)
    ref = _quad_fisher("ring", 1.0)
    se = np.asarray(mc.stderr)
    assert mc.method == "monte_carlo" and np.all(se > 0)
    z = np.abs(np.asarray(mc.matrix) - ref) / se
    assert np.all(z <= Z_BOUND), z
    hess = var.fisher_information(
        gm, "monte_carlo", key=jax.random.PRNGKey(2), num_samples=10_000, form="hessian"
    )
    z = np.abs(np.asarray(hess.matrix) - ref) / np.asarray(hess.stderr)
    assert np.all(z <= Z_BOUND), z


def test_fisher_auto_picks_adaptive_in_2d_and_monte_carlo_in_4d():
    assert var.fisher_information(dsm.single_gaussian([0.0, 0.0], 1.0)).method == "adaptive"
    gm3 = dsm.single_gaussian([0.0, 1.0, 2.0, 3.0], 0.5)
    fi = var.fisher_information(gm3, key=jax.random.PRNGKey(0), num_samples=4000)
    assert fi.method == "monte_carlo" and "4002 draws" in fi.rule
    # Single Gaussian: I = I_D / s^2 = 4 I; MC within Z_BOUND stderr on the diagonal.
    diag = np.diag(np.asarray(fi.matrix))
    assert np.all(np.abs(diag - 4.0) <= Z_BOUND * np.diag(np.asarray(fi.stderr)))


# ---------------------------------------------------------------------------------------
# single Gaussian closed forms, derived by hand (FORMULAS.md §4 "Single Gaussian")
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim,alpha,sigma", [(1, 1.0, 0.3), (2, 0.8, 0.6)])  # VE, VP
def test_single_gaussian_closed_forms(dim, alpha, sigma):
    s = 0.7
    mean = np.linspace(-0.4, 0.5, dim)
    gm = dsm.single_gaussian(mean, s)
    big_s = alpha**2 * s**2 + sigma**2  # S = alpha^2 s^2 + sigma^2
    fi = var.fisher_information(gm.noised(alpha, sigma), "adaptive")
    np.testing.assert_allclose(
        np.asarray(fi.matrix), np.eye(dim) / big_s, rtol=QUAD_RTOL, atol=1e-13
    )
    r_hand = dim * alpha**2 * s**2 / (sigma**2 * big_s)
    mmse_hand = dim * sigma**2 * s**2 / big_s
    r_q = var.irreducible_variance(gm, alpha, sigma, method="adaptive")
    assert r_q.value == pytest.approx(r_hand, rel=QUAD_RTOL) and r_q.stderr == 0.0
    # Rao-Blackwell: the posterior covariance of one Gaussian does not depend on x_t, so
    # every sample gives the exact value (zero spread).
    r_rb = var.irreducible_variance(gm, alpha, sigma, method="monte_carlo", num_samples=64)
    assert r_rb.value == pytest.approx(r_hand, rel=EXACT_RTOL)
    assert r_rb.stderr <= EXACT_RTOL * r_hand
    m = var.mmse(gm, alpha, sigma, method="adaptive")
    assert m.value == pytest.approx(mmse_hand, rel=QUAD_RTOL)
    m_rb = var.mmse(gm, alpha, sigma, method="monte_carlo", num_samples=64)
    assert m_rb.value == pytest.approx(mmse_hand, rel=EXACT_RTOL)


def test_k1_equals_duplicated_components():
    one = dsm.single_gaussian([0.3], 0.5)
    dup = dsm.GaussianMixture([0.25, 0.75], [[0.3], [0.3]], [0.25, 0.25])
    for alpha, sigma in [(0.6, 0.8)]:
        a = var.fisher_information(one.noised(alpha, sigma), "adaptive").matrix
        b = var.fisher_information(dup.noised(alpha, sigma), "adaptive").matrix
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=QUAD_RTOL)
        ra = var.irreducible_variance(one, alpha, sigma, method="adaptive").value
        rb = var.irreducible_variance(dup, alpha, sigma, method="adaptive").value
        assert rb == pytest.approx(ra, rel=QUAD_RTOL)
        key = jax.random.PRNGKey(3)
        rba = var.irreducible_variance(one, alpha, sigma, method="monte_carlo", num_samples=50)
        rbb = var.irreducible_variance(
            dup, alpha, sigma, method="monte_carlo", key=key, num_samples=50
        )
        assert rbb.value == pytest.approx(rba.value, rel=EXACT_RTOL)


# ---------------------------------------------------------------------------------------
# R = D / sigma^2 - tr I_t (P12), Rao-Blackwell vs quadrature
# ---------------------------------------------------------------------------------------
def test_rao_blackwell_matches_fisher_identity_within_z_bound():
    sigma = 1.0
    fisher_form = 2 / sigma**2 - np.trace(_quad_fisher("ring", sigma))
    rb = var.irreducible_variance(
        RING, 1.0, sigma, method="monte_carlo", key=jax.random.PRNGKey(5), num_samples=20_000
    )
    assert abs(rb.value - fisher_form) <= Z_BOUND * rb.stderr
    # Quadrature of the posterior trace equals the Fisher form to quadrature accuracy
    # (no cancellation at this sigma: R is about 0.57 D / sigma^2).
    q = var.irreducible_variance(RING, 1.0, sigma)
    assert q.method == "adaptive"
    assert q.value == pytest.approx(fisher_form, rel=QUAD_RTOL)


def test_rao_blackwell_vp_anisotropic_within_z_bound():
    sigma = 0.8
    alpha = math.sqrt(1 - sigma**2)
    q = var.irreducible_variance(ANISO, alpha, sigma, method="adaptive")
    rb = var.irreducible_variance(
        ANISO, alpha, sigma, method="monte_carlo", key=jax.random.PRNGKey(6), num_samples=20_000
    )
    assert abs(rb.value - q.value) <= Z_BOUND * rb.stderr
    m = var.mmse(ANISO, alpha, sigma, method="adaptive")
    assert q.value == pytest.approx(alpha**2 / sigma**4 * m.value, rel=EXACT_RTOL)


def test_small_sigma_rao_blackwell_has_small_relative_error_where_naive_cancels():
    """At sigma = 1e-3, R ~ D/sigma^2 and the naive difference of two MC means cancels."""
    sigma, n = 1e-3, 4000
    key = jax.random.PRNGKey(7)
    rb = var.irreducible_variance(RING, 1.0, sigma, method="monte_carlo", key=key, num_samples=n)
    # Naive: mean ||eps||^2 / sigma^2 - mean ||s*(x_t)||^2 on n draws.
    k0, ke = jax.random.split(jax.random.PRNGKey(8))
    x0 = RING.sample(k0, n)
    eps = jax.random.normal(ke, x0.shape)
    s_star = RING.noised(1.0, sigma).score(x0 + sigma * eps)
    naive_a = np.asarray(jnp.sum(eps**2, -1)) / sigma**2
    naive_b = np.asarray(jnp.sum(s_star**2, -1))
    naive_se = math.sqrt(naive_a.var(ddof=1) / n + naive_b.var(ddof=1) / n)
    assert rb.stderr / rb.value < 1e-4
    assert naive_se / rb.value > 100 * rb.stderr / rb.value
    # R -> D / sigma^2 as sigma -> 0: the leading term, corrected at order sigma^2 J.
    assert rb.value == pytest.approx(2 / sigma**2, rel=1e-4)


# ---------------------------------------------------------------------------------------
# DSM = SM + R with a deliberately wrong score
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("process", ["ve", "vp"])
def test_dsm_gap_equals_irreducible_variance(process):
    sigma = 0.6
    alpha = 1.0 if process == "ve" else math.sqrt(1 - sigma**2)
    gm = BIMODAL if process == "ve" else RING
    noised = gm.noised(alpha, sigma)
    shift = jnp.full((1, gm.dim), 0.3)  # one row, broadcast over the samples

    def wrong_score(x, s):
        return 0.7 * noised.score(x) + shift

    dec = var.dsm_decomposition(
        gm, wrong_score, alpha, sigma, key=jax.random.PRNGKey(9), num_samples=20_000
    )
    assert dec.irreducible_stderr == 0.0  # adaptive for D <= 2
    assert abs(dec.gap - dec.irreducible) <= Z_BOUND * dec.gap_stderr
    assert dec.fisher_divergence > 0 and dec.dsm_loss > dec.fisher_divergence
    # The identity holds for the means too: DSM - SM - R within the combined error bound.
    assert abs(dec.dsm_loss - dec.fisher_divergence - dec.irreducible) <= Z_BOUND * (
        dec.dsm_stderr + dec.fisher_stderr
    )


def test_dsm_decomposition_true_score_has_zero_fisher_divergence():
    noised = BIMODAL.noised(1.0, 0.4)
    dec = var.dsm_decomposition(
        BIMODAL,
        lambda x, s: noised.score(x),
        1.0,
        0.4,
        key=jax.random.PRNGKey(0),
        num_samples=20_000,
    )
    assert dec.fisher_divergence == 0.0 and dec.num_samples == 20_000


# ---------------------------------------------------------------------------------------
# curve and slope
# ---------------------------------------------------------------------------------------
def test_fit_loglog_slope_recovers_power_law():
    x = np.geomspace(0.1, 10.0, 7)
    assert var.fit_loglog_slope(x, 3.0 * x**-2.5) == pytest.approx(-2.5, rel=EXACT_RTOL)


def test_heteroskedasticity_curve_ve_and_vp():
    sig = np.array([1e-3, 3e-3, 1e-2])
    c = var.heteroskedasticity_curve(RING, sig, method="monte_carlo", num_samples=2000)
    assert c.method == "monte_carlo"
    np.testing.assert_allclose(c.alpha, 1.0)
    np.testing.assert_allclose(c.lam, -2 * np.log(sig), rtol=EXACT_RTOL)
    np.testing.assert_allclose(c.reference, 2 / sig**2, rtol=EXACT_RTOL)
    assert var.fit_loglog_slope(c.sigma, c.R) == pytest.approx(-2.0, abs=0.05)
    v = var.heteroskedasticity_curve(
        BIMODAL, [0.1, 0.5], process="vp", method="monte_carlo", num_samples=500
    )
    np.testing.assert_allclose(v.alpha**2 + v.sigma**2, 1.0, rtol=EXACT_RTOL)
    np.testing.assert_allclose(v.lam, np.log((1 - v.sigma**2) / v.sigma**2), rtol=EXACT_RTOL)
    assert np.all(v.stderr > 0) and np.all(v.R > 0)


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
GM1 = dsm.single_gaussian([0.0], 1.0)
KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: var.irreducible_variance(GM1, 1.0, 0.0), "sigma"),
        (lambda: var.irreducible_variance(GM1, 1.0, -1.0), "sigma"),
        (lambda: var.irreducible_variance(GM1, 0.0, 1.0), "alpha"),
        (lambda: var.irreducible_variance(GM1, 1.0, float("nan")), "sigma"),
        (lambda: var.irreducible_variance(GM1, float("inf"), 1.0), "alpha"),
        (lambda: var.irreducible_variance(GM1, 1.0, [0.1, 0.2]), "sigma"),
        (lambda: var.irreducible_variance(GM1, 1.0, 1.0, method="simpson"), "monte_carlo"),
        (lambda: var.mmse(GM1, 1.0, -0.5), "sigma"),
        (
            lambda: var.irreducible_variance(
                dsm.single_gaussian(np.zeros(4), 1.0), 1.0, 1.0, method="adaptive"
            ),
            "D <= 3",
        ),
        (
            lambda: var.irreducible_variance(GM1, 1.0, 1.0, method="monte_carlo", num_samples=0),
            "num_samples",
        ),
        (lambda: var.fisher_information(GM1, "simpson"), "monte_carlo"),
        (
            lambda: var.fisher_information(GM1, "monte_carlo", key=KEY, num_samples=-3),
            "num_samples",
        ),
        (
            lambda: var.fisher_information(dsm.single_gaussian(np.zeros(4), 1.0), "adaptive"),
            "D <= 3",
        ),
        (lambda: var.fisher_information(GM1, "quadrature", form="laplacian"), "form"),
        (lambda: var.heteroskedasticity_curve(GM1, [0.5, 1.5], process="vp"), "< 1"),
        (lambda: var.heteroskedasticity_curve(GM1, [0.5], process="ode"), "process"),
        (lambda: var.heteroskedasticity_curve(GM1, []), "sigmas"),
        (lambda: var.heteroskedasticity_curve(GM1, [0.1, -0.1]), "sigmas"),
        (lambda: var.fit_loglog_slope([1.0, 2.0], [1.0]), "same length"),
        (lambda: var.fit_loglog_slope([1.0, 2.0], [1.0, -1.0]), "y"),
        (lambda: var.fit_loglog_slope([1.0], [1.0]), "two points"),
        (
            lambda: var.dsm_decomposition(
                GM1, lambda x, s: x[:, :0], 1.0, 0.5, key=KEY, num_samples=10
            ),
            "score_fn",
        ),
        (
            lambda: var.dsm_decomposition(GM1, lambda x, s: x, 1.0, 0.5, key=KEY, num_samples=1),
            "num_samples",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: var.fisher_information("not a mixture"),
        lambda: var.irreducible_variance(np.zeros(3), 1.0, 1.0),
        lambda: var.irreducible_variance(GM1, "one", 1.0),
        # a count of the wrong type is a TypeError (a count < 1 is a ValueError, above)
        lambda: var.irreducible_variance(GM1, 1.0, 1.0, method="monte_carlo", num_samples=2.5),
        lambda: var.dsm_decomposition(GM1, 3.0, 1.0, 0.5, key=KEY, num_samples=10),
    ],
)
def test_bad_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call()
