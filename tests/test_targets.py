"""Tests for dsmtheory.targets: order-k DSM targets, TSM mixes and IWSM variances.

Every closed form is checked against an independent computation: autodiff of the noise
kernel or of the noised mixture density, exact posterior sampling (z-bounds), a second
formula, or quadrature of a Fisher information.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import EXACT_ATOL, EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory import targets as T
from dsmtheory.derivations import t_kappa_star, t_order2_variance, t_tsm_identity

# The engine's default rule promises 1e-10 relative in D <= 2 (tests/test_expectations.py).
ENGINE_RTOL = 1e-10

GM2 = dsm.random_anisotropic(seed=3, num_components=3, dim=2)
GM3 = dsm.random_anisotropic(seed=5, num_components=2, dim=3)
XT2 = jnp.array([[0.3, -0.2], [1.0, 2.0], [-2.5, 0.7]])
XT3 = jnp.array([[0.1, -0.4, 0.9], [1.5, 0.2, -1.0]])


def _z(est, truth, se):
    return np.abs(np.asarray(est) - np.asarray(truth)) / np.asarray(se)


# --------------------------------------------------------------------------------------
# order-k targets
# --------------------------------------------------------------------------------------
def test_dsm_target_is_kernel_derivative_ratio():
    """h_1 = ∇q/q and h_2 = ∇²q/q by autodiff of the Gaussian kernel density itself."""
    alpha, sigma = 0.7, 0.4
    x0 = jnp.array([0.2, -1.1])
    xt = jnp.array([0.5, 0.3])

    def q(x):
        return jnp.exp(-jnp.sum((x - alpha * x0) ** 2) / (2 * sigma**2))

    np.testing.assert_allclose(
        T.dsm_target(x0, xt, alpha, sigma, 1), jax.grad(q)(xt) / q(xt), rtol=EXACT_RTOL
    )
    np.testing.assert_allclose(
        T.dsm_target(x0, xt, alpha, sigma, 2),
        jax.jit(jax.hessian(q))(xt) / q(xt),
        rtol=EXACT_RTOL,
        atol=EXACT_ATOL,
    )


@pytest.mark.parametrize("gm,xt", [(GM2, XT2), (GM3, XT3)])
def test_target_mean_is_grad_ratio_of_density(gm, xt):
    """E[h_1|x_t] = s*, E[h_2|x_t] = ∇²p_t/p_t = H + s sᵀ (mixture's score_and_hessian)."""
    alpha, sigma = 0.8, 0.6
    s, h = jax.jit(lambda g, x: g.noised(alpha, sigma).score_and_hessian(x))(gm, xt)
    np.testing.assert_allclose(T.target_mean(gm, xt, alpha, sigma, 1), s, rtol=EXACT_RTOL)
    want = h + s[..., :, None] * s[..., None, :]
    np.testing.assert_allclose(
        T.target_mean(gm, xt, alpha, sigma, 2), want, rtol=1e-9, atol=1e-9 * np.abs(want).max()
    )


def test_order1_cov_is_scaled_posterior_cov_and_traces_agree():
    alpha, sigma = 0.9, 0.5
    cov1 = T.target_cov(GM3, XT3, alpha, sigma, 1)
    want = alpha**2 / sigma**4 * jax.jit(dsm.posterior_cov)(GM3, XT3, alpha, sigma)
    np.testing.assert_allclose(cov1, want, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    tr1 = T.target_variance_trace(GM3, XT3, alpha, sigma, 1)
    np.testing.assert_allclose(tr1, jnp.einsum("nii->n", cov1), rtol=EXACT_RTOL)
    # order 2: the Isserlis tensor's trace vs the separately coded trace formula
    cov2 = T.target_cov(GM3, XT3, alpha, sigma, 2)
    tr2 = T.target_variance_trace(GM3, XT3, alpha, sigma, 2)
    np.testing.assert_allclose(tr2, jnp.einsum("nijij->n", cov2), rtol=EXACT_RTOL)


@pytest.mark.parametrize("gm,xt", [(GM2, XT2), (GM3, XT3)])
def test_order2_moments_against_posterior_monte_carlo(gm, xt):
    """Mean and every entry of the D²×D² covariance of h_2 vs exact posterior draws."""
    alpha, sigma, n = 0.8, 0.7, 10_000
    x0 = np.asarray(T.sample_posterior(gm, xt, alpha, sigma, jax.random.PRNGKey(7), n))
    # h_2 coded here independently of dsm_target
    u = (alpha * x0 - np.asarray(xt)) / sigma**2
    h = u[..., :, None] * u[..., None, :] - np.eye(gm.dim) / sigma**2  # (n, B, D, D)
    mean = np.asarray(T.target_mean(gm, xt, alpha, sigma, 2))
    se_mean = h.std(0) / np.sqrt(n)
    assert np.max(_z(h.mean(0), mean, se_mean)) < Z_BOUND
    dh = h - mean  # centred at the exact mean: E[dh ⊗ dh] is the covariance exactly
    prod = dh[..., :, :, None, None] * dh[..., None, None, :, :]
    cov = np.asarray(T.target_cov(gm, xt, alpha, sigma, 2))
    assert np.max(_z(prod.mean(0), cov, prod.std(0) / np.sqrt(n))) < Z_BOUND
    # the sampler itself: posterior mean and covariance of x0 (mixture.py's Tweedie forms)
    m = np.asarray(jax.jit(dsm.posterior_mean)(gm, xt, alpha, sigma))
    assert np.max(_z(x0.mean(0), m, x0.std(0) / np.sqrt(n))) < Z_BOUND
    d = x0 - m
    dd = d[..., :, None] * d[..., None, :]
    c = np.asarray(jax.jit(dsm.posterior_cov)(gm, xt, alpha, sigma))
    assert np.max(_z(dd.mean(0), c, dd.std(0) / np.sqrt(n))) < Z_BOUND


def test_any_order_1d_against_noised_density_and_order2_formula():
    """Orders 1-6: E[h_k|x_t] vs ∇ᵏp_t/p_t from the *noised* mixture, using
    dᵏN(x; μ, S)/dxᵏ = (−1)ᵏ S^{−k/2} He_k((x−μ)/√S) N (NumPy, independent of the posterior
    path); order 2 variance vs the Isserlis path; order 3 variance by posterior MC."""
    gm = dsm.bimodal_1d(separation=3.0, std=0.4, weight=0.3)
    alpha, sigma = 0.9, 0.5
    xt = jnp.array([[-0.7], [0.2], [1.9]])
    x = np.asarray(xt)[:, 0]
    w = np.array([0.3, 0.7])
    mu = alpha * np.array([-1.5, 1.5])
    big_s = alpha**2 * 0.16 + sigma**2
    z = (x[:, None] - mu) / np.sqrt(big_s)
    dens = w * np.exp(-0.5 * z**2)  # common normalisation cancels in the ratio
    for k in range(1, 7):
        coef = np.zeros(k + 1)
        coef[k] = 1.0
        he = np.polynomial.hermite_e.hermeval(z, coef)
        want = np.sum(dens * (-1) ** k * big_s ** (-k / 2) * he, -1) / dens.sum(-1)
        mean, var = T.target_moments_1d(gm, xt, alpha, sigma, k)
        np.testing.assert_allclose(mean, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
        assert np.all(np.asarray(var) > 0)
        if k == 2:  # Hermite path vs the Isserlis path
            tr2 = T.target_variance_trace(gm, xt, alpha, sigma, 2)
            np.testing.assert_allclose(var, tr2, rtol=1e-9)
    # order 3 variance vs posterior Monte Carlo with h_3 = -(u^3 - 3u/σ²) ... coded directly
    n = 50_000
    x0 = np.asarray(T.sample_posterior(gm, xt, alpha, sigma, jax.random.PRNGKey(2), n))[..., 0]
    u = -(np.asarray(xt)[:, 0] - alpha * x0) / sigma**2
    h3 = u**3 - 3 * u / sigma**2
    mean3, var3 = (np.asarray(v) for v in T.target_moments_1d(gm, xt, alpha, sigma, 3))
    d2 = (h3 - mean3) ** 2
    assert np.max(_z(d2.mean(0), var3, d2.std(0) / np.sqrt(n))) < Z_BOUND


# --------------------------------------------------------------------------------------
# irreducible variance and optimal weighting
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [1, 2])
def test_irreducible_variance_gaussian_closed_form(order):
    std, alpha, sigma = 0.7, 0.8, 0.6
    g1 = dsm.single_gaussian([0.3], std)
    est = T.irreducible_target_variance(g1, alpha, sigma, order)
    want = T.gaussian_target_variance(1, std, alpha, sigma, order)
    np.testing.assert_allclose(est.value, want, rtol=ENGINE_RTOL)
    # D = 3 by Rao-Blackwellized MC: Gaussian data has a constant conditional covariance,
    # so only the ‖g‖² term varies over x_t
    g3 = dsm.single_gaussian([0.0, 1.0, -1.0], std)
    est = T.irreducible_target_variance(g3, alpha, sigma, order, key=jax.random.PRNGKey(0))
    want = T.gaussian_target_variance(3, std, alpha, sigma, order)
    assert abs(est.value - want) <= Z_BOUND * est.stderr + EXACT_RTOL * want


def test_order1_matches_variance_module():
    """R_1 here (the order-1 target trace, tr C_k + ||g_k - s||^2 per component) vs
    dsmtheory.variance's α²/σ⁴ tr Cov(x0|x_t): two integrands of the same quantity."""
    from dsmtheory import variance

    g1 = dsm.bimodal_1d()
    mine = T.irreducible_target_variance(g1, 0.9, 0.3, 1).value
    theirs = variance.irreducible_variance(g1, 0.9, 0.3, method="adaptive").value
    np.testing.assert_allclose(mine, theirs, rtol=ENGINE_RTOL)


def test_gaussian_weights_small_sigma_powers():
    """Λ_1* = σ² + σ⁴/a + …; Λ_2* = D/(D+1)(σ⁴ + σ⁸/a² + …): σ⁴ is the order-2 heuristic."""
    d, std, alpha = 2, 0.5, 1.0
    a = alpha**2 * std**2
    for sigma in (1e-2, 1e-3):
        l1 = T.gaussian_inverse_variance_weight(d, std, alpha, sigma, 1)
        l2 = T.gaussian_inverse_variance_weight(d, std, alpha, sigma, 2)
        np.testing.assert_allclose((l1 / sigma**2 - 1) / sigma**2, 1 / a, rtol=5 * sigma**2 / a)
        np.testing.assert_allclose(
            (l2 * (d + 1) / (d * sigma**4) - 1) / sigma**4, 1 / a**2, rtol=5 * sigma**2 / a
        )


def test_order2_relative_correction_is_fourth_order_on_a_mixture():
    """σ⁴R_2/(D(D+1)) − 1 = O(σ⁴) on a bimodal mixture (the σ² terms cancel because
    E[H] = −E[ssᵀ]), while σ²R_1/D − 1 = −σ²J_t → −σ²J_0 (FORMULAS P9)."""
    gm = dsm.bimodal_1d()  # modes ±2, std 0.25: J_0 = 16
    coef2, coef1 = [], []
    for sigma in (0.02, 0.01):
        r2 = T.irreducible_target_variance(gm, 1.0, sigma, 2).value
        r1 = T.irreducible_target_variance(gm, 1.0, sigma, 1).value
        coef2.append((sigma**4 * r2 / 2 - 1) / sigma**4)
        coef1.append((sigma**2 * r1 - 1) / sigma**2)
    # halving σ changes the σ⁴-coefficient by < 2%; the σ² coefficient of R_2 is zero
    np.testing.assert_allclose(coef2[0], coef2[1], rtol=0.02)
    j0 = dsm.variance.fisher_trace(gm).value
    np.testing.assert_allclose(-coef1[1], j0, rtol=0.01)  # O(σ²) next term: 1e-4 · O(J0²)


def test_inverse_variance_weight_and_gls():
    est = T.inverse_variance_weight(GM2, 0.9, 0.4, 2, key=jax.random.PRNGKey(4), num_samples=2048)
    r = T.irreducible_target_variance(GM2, 0.9, 0.4, 2, key=jax.random.PRNGKey(4), num_samples=2048)
    np.testing.assert_allclose(est.value, 4 / r.value, rtol=EXACT_RTOL)
    np.testing.assert_allclose(est.stderr / est.value, r.stderr / r.value, rtol=EXACT_RTOL)
    w = T.order2_gls_weight(GM2, XT2, 0.9, 0.4)
    cov = T.target_cov(GM2, XT2, 0.9, 0.4, 2)
    iu, ju = np.triu_indices(2)
    sub = cov[:, iu, ju][:, :, iu, ju]
    np.testing.assert_allclose(w @ sub, np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-9)
    g1 = dsm.bimodal_1d()
    x = jnp.array([[0.4]])
    np.testing.assert_allclose(
        T.order2_gls_weight(g1, x, 1.0, 0.5)[..., 0, 0],
        1 / T.target_variance_trace(g1, x, 1.0, 0.5, 2),
        rtol=EXACT_RTOL,
    )


# --------------------------------------------------------------------------------------
# TSM
# --------------------------------------------------------------------------------------
def test_tsm_identity_by_posterior_sampling():
    """s*(x_t) = α⁻¹ E[∇log p_0(x_0) | x_t] (De Bortoli et al.), z-bound."""
    alpha, sigma, n = 0.7, 0.5, 20_000
    x0 = T.sample_posterior(GM2, XT2, alpha, sigma, jax.random.PRNGKey(3), n)
    a = np.asarray(T.tsm_target(GM2, x0, alpha))
    s = np.asarray(jax.jit(lambda g, x: g.noised(alpha, sigma).score(x))(GM2, XT2))
    assert np.max(_z(a.mean(0), s, a.std(0) / np.sqrt(n))) < Z_BOUND


def test_kappa_star_gaussian_gives_zero_variance_mix():
    std, alpha, sigma = 0.6, 0.8, 0.5
    lam = np.log(alpha**2 / sigma**2)
    g = dsm.single_gaussian([0.5, -0.5], std)
    k_closed = T.kappa_star(lam, 2 / std**2, 2)
    np.testing.assert_allclose(k_closed, T.kappa_star_gaussian(lam, std), rtol=EXACT_RTOL)
    np.testing.assert_allclose(k_closed, alpha**2 * std**2 / (alpha**2 * std**2 + sigma**2))
    xt = jnp.array([[0.2, 0.1]])
    x0 = T.sample_posterior(g, xt, alpha, sigma, jax.random.PRNGKey(0), 1000)
    mixed = np.asarray(T.mixed_target(g, x0, xt, alpha, sigma, float(k_closed)))
    assert np.max(np.std(mixed, 0)) < 1e-10 * np.max(np.abs(mixed))
    np.testing.assert_allclose(mixed[0], g.noised(alpha, sigma).score(xt), rtol=1e-9)


def test_tsm_moments_match_fisher_identities():
    """Nested MC A, C, κ vs A = trI_0/α² − trI_t, C = −trI_t, κ* = sigmoid(λ − log J_0)
    (trI_0 by quadrature, trI_t = D/σ² − R_1 by quadrature)."""
    gm = dsm.ring(num_modes=4, radius=1.5, std=0.4)
    alpha, sigma = 0.8, 0.6
    m = T.tsm_moments(gm, alpha, sigma, key=jax.random.PRNGKey(11), num_outer=2048, num_inner=8)
    i0 = dsm.variance.fisher_trace(gm).value
    r1 = T.irreducible_target_variance(gm, alpha, sigma, 1).value
    it = 2 / sigma**2 - r1
    assert abs(m.var_dsm.value - r1) < Z_BOUND * m.var_dsm.stderr
    assert abs(m.var_tsm.value - (i0 / alpha**2 - it)) < Z_BOUND * m.var_tsm.stderr
    assert abs(m.cov.value + it) < Z_BOUND * m.cov.stderr
    lam = np.log(alpha**2 / sigma**2)
    assert abs(m.kappa.value - T.kappa_star(lam, i0, 2)) < Z_BOUND * m.kappa.stderr
    vmin = T.mix_variance(float(T.kappa_star(lam, i0, 2)), alpha, sigma, i0, it, 2)
    assert abs(m.var_mix.value - vmin) < Z_BOUND * m.var_mix.stderr
    assert m.var_mix.value < min(m.var_tsm.value, m.var_dsm.value)
    # at the crossing the two variances are equal and κ* = 1/2
    lx = T.crossing_lambda(i0, 2)
    np.testing.assert_allclose(T.kappa_star(lx, i0, 2), 0.5, rtol=EXACT_RTOL)


# --------------------------------------------------------------------------------------
# IWSM
# --------------------------------------------------------------------------------------
RING = dsm.ring()
HALF = dsm.GaussianMixture(np.full(4, 0.25), np.asarray(RING.means)[::2], np.full(4, 0.0625))


@pytest.mark.slow
def test_iwsm_proposal_equal_to_target_is_plain_sm():
    c = T.iwsm_variance_comparison(RING, RING, 1.0, 0.8)
    np.testing.assert_allclose(c.var_iwsm, c.var_sm, rtol=EXACT_RTOL)
    np.testing.assert_allclose(c.ess_fraction, 1.0, rtol=ENGINE_RTOL)
    r1 = T.irreducible_target_variance(RING, 1.0, 0.8, 1).value
    np.testing.assert_allclose(c.irreducible, r1, rtol=EXACT_RTOL)


@pytest.mark.slow
def test_iwsm_comparison_against_monte_carlo():
    alpha, sigma, n = 1.0, 1.0, 50_000
    c = T.iwsm_variance_comparison(RING, HALF, alpha, sigma)
    fit = dsm.GaussianMixture(
        [1.0], np.asarray(RING.mean())[None], np.asarray(RING.covariance())[None]
    )
    model = fit.noised(alpha, sigma)
    pt = RING.noised(alpha, sigma)
    score = jax.jit(lambda g, x: g.score(x))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(5), 3)
    # plain DSM: x0 ~ p0, x_t = αx0 + σε, loss ‖s_θ − h_1‖²
    x0 = np.asarray(jax.jit(lambda k: RING.sample(k, n))(k1))
    xt = alpha * x0 + sigma * np.random.default_rng(0).standard_normal(x0.shape)
    loss = np.sum((np.asarray(score(model, xt)) + (xt - alpha * x0) / sigma**2) ** 2, -1)
    assert abs(loss.mean() - (c.objective + c.irreducible)) < Z_BOUND * loss.std() / np.sqrt(n)
    sq = (loss - (c.objective + c.irreducible)) ** 2
    assert abs(sq.mean() - c.var_dsm) < Z_BOUND * sq.std() / np.sqrt(n)
    # IWSM: x_t ~ p_Bt, exact score, self-normalised weights
    xb = jax.jit(lambda k: HALF.noised(alpha, sigma).sample(k, n))(k3)
    lw = np.asarray(T.iwsm_log_weights(RING, HALF, xb, alpha, sigma))
    f = np.sum(np.asarray(score(model, xb) - score(pt, xb)) ** 2, -1)
    est = T.self_normalized_estimate(lw, f)
    assert abs(est.value - c.objective) < Z_BOUND * est.stderr
    y = np.exp(2 * lw) * (f - c.objective) ** 2
    assert abs(y.mean() - c.var_iwsm) < Z_BOUND * y.std() / np.sqrt(n)


@pytest.mark.slow
def test_iwsm_missing_modes_hurts_at_low_noise_helps_at_high():
    lo = T.iwsm_variance_comparison(RING, HALF, 1.0, 0.15)
    hi = T.iwsm_variance_comparison(RING, HALF, 1.0, 3.0)
    # An independent computation where the weights are ~1e8 (σ = 0.15, missing modes): the
    # trapezoid rule on a uniform 401² grid over ±10 std of every component (spectrally
    # convergent here: 301² and 401² agree to 3e-11). Gauss-Hermite is *not* a check here:
    # the weighted integrand peaks 6 std out, where its nodes are sparse (off by 1.2e-3).
    sig = 0.15
    pt, bt = RING.noised(1.0, sig), HALF.noised(1.0, sig)
    fit = dsm.GaussianMixture(
        [1.0], np.asarray(RING.mean())[None], np.asarray(RING.covariance())[None]
    )
    mt = fit.noised(1.0, sig)
    ax = np.linspace(-2.0 - 10 * 0.3, 2.0 + 10 * 0.3, 401)
    xg = jnp.asarray(np.stack(np.meshgrid(ax, ax, indexing="ij"), -1).reshape(-1, 2))
    cell = (ax[1] - ax[0]) ** 2
    lp, lb = np.asarray(pt.log_prob(xg)), np.asarray(bt.log_prob(xg))
    f = np.sum(np.asarray(mt.score(xg) - pt.score(xg)) ** 2, -1)
    big_f = cell * np.sum(np.exp(lp) * f)
    var_iwsm = cell * np.sum(np.exp(2 * lp - lb) * (f - big_f) ** 2)
    ess = 1.0 / (cell * np.sum(np.exp(2 * lp - lb)))
    np.testing.assert_allclose(lo.objective, big_f, rtol=1e-9)
    np.testing.assert_allclose(lo.var_iwsm, var_iwsm, rtol=1e-9)
    np.testing.assert_allclose(lo.ess_fraction, ess, rtol=1e-9)
    assert lo.var_iwsm > 10 * lo.var_dsm and lo.ess_fraction < 0.01
    assert hi.var_iwsm < 0.01 * hi.var_dsm and hi.ess_fraction > 0.99


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    x = jnp.zeros((1, 2))
    with pytest.raises(ValueError, match="order"):
        T.target_mean(GM2, x, 1.0, 0.5, order=3)
    with pytest.raises(ValueError, match="order"):
        T.target_variance_trace(GM2, x, 1.0, 0.5, order=0)
    with pytest.raises(TypeError, match="order"):
        T.dsm_target(x, x, 1.0, 0.5, order=1.5)
    with pytest.raises(ValueError, match="order"):
        T.target_moments_1d(dsm.bimodal_1d(), jnp.zeros((1, 1)), 1.0, 0.5, 13)
    with pytest.raises(ValueError, match="1-D"):
        T.target_moments_1d(GM2, x, 1.0, 0.5, 2)
    with pytest.raises(ValueError, match="sigma"):
        T.target_variance_trace(GM2, x, 1.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        T.dsm_target(x, x, -1.0, 0.5)
    with pytest.raises(ValueError, match="sigma"):
        T.irreducible_target_variance(GM2, 1.0, -0.1, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="proposal"):
        T.iwsm_variance_comparison(GM2, dsm.bimodal_1d(), 1.0, 0.5)
    with pytest.raises(ValueError, match="proposal"):
        T.iwsm_log_weights(GM2, GM3, x, 1.0, 0.5)
    with pytest.raises(ValueError, match="kappa"):
        T.mixed_target(GM2, x, x, 1.0, 0.5, 1.5)
    with pytest.raises(ValueError, match="kappa"):
        T.mix_variance(-0.1, 1.0, 0.5, 1.0, 1.0, 2)
    with pytest.raises(TypeError, match="GaussianMixture"):
        T.target_mean("ring", x, 1.0, 0.5)
    with pytest.raises(ValueError, match="D <= 3"):
        T.irreducible_target_variance(
            dsm.single_gaussian(np.zeros(4), 1.0), 1.0, 0.5, method="adaptive"
        )
    with pytest.raises(ValueError, match="method"):
        T.irreducible_target_variance(GM2, 1.0, 0.5, method="exact")
    with pytest.raises(TypeError, match="key"):
        T.tsm_moments(GM2, 1.0, 0.5, key="seed")


# --------------------------------------------------------------------------------------
# derivations (sympy), lambdified against the implementation
# --------------------------------------------------------------------------------------
_pos = st.floats(min_value=-3.0, max_value=3.0).map(lambda e: float(10.0**e))


def _fn(mod, name):
    expr, syms = mod.expressions()[name]
    return sp.lambdify(syms, expr, "numpy")


@given(d=st.integers(1, 8), std=_pos, alpha=_pos, sigma=_pos)
def test_gaussian_variance_closed_forms_match_sympy(d, std, alpha, sigma):
    for order, name in ((1, "R1"), (2, "R2")):
        want = _fn(t_order2_variance, name)(d, std, alpha, sigma)
        got = T.gaussian_target_variance(d, std, alpha, sigma, order)
        np.testing.assert_allclose(got, want, rtol=1e-9)
    want = _fn(t_order2_variance, "Lambda2")(d, std, alpha, sigma)
    got = T.gaussian_inverse_variance_weight(d, std, alpha, sigma, 2)
    np.testing.assert_allclose(got, want, rtol=1e-9)


@given(
    lam=st.floats(-20.0, 20.0),
    j0=_pos,
    d=st.integers(1, 8),
    kappa=st.floats(0.0, 1.0),
    alpha=_pos,
    sigma=_pos,
    it=_pos,
)
def test_kappa_star_and_mix_variance_match_sympy(lam, j0, d, kappa, alpha, sigma, it):
    np.testing.assert_allclose(
        T.kappa_star(lam, j0 * d, d), _fn(t_kappa_star, "kappa_star")(lam, j0), rtol=1e-9
    )
    want = _fn(t_kappa_star, "mix_variance")(kappa, alpha, sigma, j0 * d, it, d)
    got = T.mix_variance(kappa, alpha, sigma, j0 * d, it, d)
    np.testing.assert_allclose(
        got, want, rtol=1e-9, atol=1e-12 * (j0 * d / alpha**2 + d / sigma**2)
    )


@settings(max_examples=10)
@given(
    x=st.floats(-5.0, 5.0),
    m=st.floats(-2.0, 2.0),
    std=st.floats(0.1, 3.0),
    alpha=st.floats(0.1, 1.0),
    sigma=st.floats(0.05, 3.0),
)
def test_tsm_identity_gaussian_matches_sympy(x, m, std, alpha, sigma):
    g = dsm.single_gaussian([m], std)
    got = float(T.target_mean(g, jnp.array([x]), alpha, sigma, 1)[0])
    want = _fn(t_tsm_identity, "tsm_mean_gaussian")(x, m, std, alpha, sigma)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
