"""Tests of dsmtheory.mixture: every closed form against an independent computation.

Independent references: scipy.stats.multivariate_normal (log-density, responsibilities),
jax.grad / jax.hessian of log_prob (score, Hessian), NumPy Gaussian conditioning
(posterior moments), Monte Carlo with a z-score bound (sampling, posterior moments by
importance weighting over the prior).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from tolerances import EXACT_ATOL, EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory.mixture import GaussianMixture, posterior_cov, posterior_mean

# jax.hessian differentiates the uncentred form sum_k r_k g_k g_k^T - s s^T, which cancels
# terms of size max|g|^2; relative to the Hessian's own scale this leaves ~1e-12 at the
# well-conditioned random mixtures used here (covariance eigenvalues >= 0.05, points within
# a few standard deviations). 1e-9 keeps a wide margin over that rounding.
AUTODIFF_HESS_RTOL = 1e-9

# Tweedie's mean (x + sigma^2 s)/alpha divides a difference by alpha; for small alpha (VP at
# low SNR) that amplifies rounding by |x|/alpha relative to the posterior mean itself.
TWEEDIE_RTOL = 1e-8

# eigvalsh has backward error ~ D * eps * ||C||; an exactly PSD matrix may show a minimum
# eigenvalue of about -1e-15 ||C||. 1e-13 relative is the bound for "PSD up to the solver".
EIGH_RTOL = 1e-13


# ---------------------------------------------------------------------------------------
# fixtures: raw NumPy parameters (the independent description) and their mixtures
# ---------------------------------------------------------------------------------------
def _random_spd(rng, d, lo=0.05, hi=2.0):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    e = rng.uniform(lo, hi, size=d)
    c = (q * e) @ q.T
    return 0.5 * (c + c.T)


def _raw_params(kind: str, k: int, d: int, seed: int = 0):
    """weights, means, covs as given to the constructor, and the full (K,D,D) covs."""
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(k, 2.0))
    mu = 1.5 * rng.standard_normal((k, d))
    if kind == "full":
        covs = np.stack([_random_spd(rng, d) for _ in range(k)])
        full = covs
    elif kind == "diagonal":
        covs = rng.uniform(0.05, 2.0, size=(k, d))
        full = np.stack([np.diag(c) for c in covs])
    elif kind == "isotropic":
        covs = rng.uniform(0.05, 2.0, size=k)
        full = np.stack([c * np.eye(d) for c in covs])
    else:  # pragma: no cover
        raise AssertionError(kind)
    return w, mu, covs, full


def _scipy_log_prob(w, mu, full, x):
    x = np.asarray(x).reshape(-1, mu.shape[1])
    comp = np.stack(
        [np.log(w[k]) + multivariate_normal(mu[k], full[k]).logpdf(x) for k in range(len(w))],
        axis=-1,
    ).reshape(x.shape[0], len(w))
    return logsumexp(comp, axis=-1), comp


@jax.jit
def _autodiff(gm, x):
    """Score and Hessian of ``gm.log_prob`` by autodiff (one compilation per shape)."""
    return jax.vmap(jax.grad(gm.log_prob))(x), jax.vmap(jax.hessian(gm.log_prob))(x)


@jax.jit
def _closed(gm, x):
    return gm.log_prob(x), *gm.score_and_hessian(x)


@jax.jit
def _noised_closed(gm, x, alpha, sigma):
    return gm.noised(alpha, sigma).score_and_hessian(x)


@jax.jit
def _posterior(gm, x, alpha, sigma):
    return posterior_mean(gm, x, alpha, sigma), posterior_cov(gm, x, alpha, sigma)


def _close(a, b, rtol=EXACT_RTOL, atol=EXACT_ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _scaled_close(a, b, rtol):
    """|a - b| <= rtol * max|b| (elementwise, relative to the array's scale)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(b)), 1.0)
    assert np.max(np.abs(a - b)) <= rtol * scale, np.max(np.abs(a - b)) / scale


KINDS = ["full", "diagonal", "isotropic"]
DIMS = [1, 2, 5]


@pytest.fixture(params=[(k, d) for k in KINDS for d in DIMS], ids=lambda p: f"{p[0]}-D{p[1]}")
def case(request):
    kind, d = request.param
    w, mu, covs, full = _raw_params(kind, 3, d, seed=d)
    gm = GaussianMixture(w, mu, covs)
    x = np.random.default_rng(100 + d).standard_normal((7, d)) * 2.0
    return gm, w, mu, full, x


# ---------------------------------------------------------------------------------------
# log-density, score, Hessian, responsibilities
# ---------------------------------------------------------------------------------------
@jax.jit
def _case_values(gm, x):
    """All per-point closed forms and their autodiff references, one compilation per case."""
    lp, s, h = _closed(gm, x)
    s_ad, h_ad = _autodiff(gm, x)
    return {
        "log_prob": lp,
        "score": s,
        "hessian": h,
        "component_log_prob": gm.component_log_prob(x),
        "responsibilities": gm.responsibilities(x),
        "score_only": gm.score(x),
        "hessian_only": gm.hessian(x),
        "grad": s_ad,
        "autodiff_hessian": h_ad,
    }


def test_log_prob_matches_scipy(case):
    gm, w, mu, full, x = case
    ref, _ = _scipy_log_prob(w, mu, full, x)
    _close(_case_values(gm, x)["log_prob"], ref)
    _close(gm.log_prob(x), ref)  # the eager entry point too


def test_component_log_prob_and_responsibilities_match_bayes(case):
    gm, w, mu, full, x = case
    lp, comp = _scipy_log_prob(w, mu, full, x)
    v = _case_values(gm, x)
    _close(v["component_log_prob"], comp)
    _close(v["responsibilities"], np.exp(comp - lp[:, None]))
    _close(jnp.sum(v["responsibilities"], axis=-1), np.ones(x.shape[0]))


def test_score_matches_grad(case):
    gm, _, _, _, x = case
    v = _case_values(gm, x)
    _close(v["score_only"], v["grad"])
    _close(v["score"], v["grad"])


def test_hessian_matches_autodiff_and_is_symmetric(case):
    gm, _, _, _, x = case
    v = _case_values(gm, x)
    h = np.asarray(v["hessian"])
    _scaled_close(h, v["autodiff_hessian"], AUTODIFF_HESS_RTOL)
    np.testing.assert_array_equal(h, np.swapaxes(h, -1, -2))
    _close(v["hessian_only"], h)


# The score-and-Hessian kernel has separate code paths: components and coordinates summed
# term by term (K <= 32 and D <= 16) or by reductions; g_k = -P_k d_k elementwise (D <= 6),
# as a dot (D >= 7) or by division (diagonal); and one block of points or a loop over blocks
# whose last block overlaps the one before. Each case below takes a different combination.
KERNEL_CASES = [
    ("full", 3, 2),  # unrolled, elementwise product
    ("full", 16, 8),  # unrolled, dot
    ("diagonal", 5, 9),  # unrolled, division
    ("full", 40, 3),  # reductions over components
    ("full", 2, 20),  # reductions over coordinates, dot
]


@pytest.mark.parametrize(
    "kind,k,d", KERNEL_CASES, ids=[f"{c[0]}-K{c[1]}-D{c[2]}" for c in KERNEL_CASES]
)
def test_hessian_kernel_paths_and_blocks(kind, k, d):
    w, mu, covs, _ = _raw_params(kind, k, d, seed=k + d)
    gm = GaussianMixture(w, mu, covs).noised(1.0, 0.3)
    x = gm.sample(jax.random.PRNGKey(k), 50)
    s_ad, h_ad = _autodiff(gm, x)
    blocked = jax.jit(lambda g, y, b: g._score_and_hessian_impl(y, block=b), static_argnums=2)
    s1, h1 = (np.asarray(a) for a in blocked(gm, x, 50))  # one block
    _close(s1, s_ad)
    _scaled_close(h1, h_ad, AUTODIFF_HESS_RTOL)
    np.testing.assert_array_equal(h1, np.swapaxes(h1, -1, -2))
    # 50 = 3 x 16 + 2: four blocks, the last one shifted back to overlap the third
    s_b, h_b = (np.asarray(a) for a in blocked(gm, x, 16))
    np.testing.assert_array_equal(h_b, np.swapaxes(h_b, -1, -2))
    # Row for row the same arithmetic; only a dot's summation order may depend on how many
    # rows it is given, so allow a few ulps of the result's scale.
    _scaled_close(s_b, s1, 1e-14)
    _scaled_close(h_b, h1, 1e-14)


def test_hessian_default_blocks_cover_every_point():
    """More points than one default block: every row is written, and matches autodiff."""
    from dsmtheory.mixture import _block_size

    gm = dsm.random_anisotropic(seed=5, num_components=16, dim=8).noised(1.0, 0.5)
    n = _block_size(16, 8) + 37
    x = gm.sample(jax.random.PRNGKey(6), n)
    s, h = gm.score_and_hessian(x)
    rows = np.r_[0:40, n - 80 : n]  # both ends, and across the last block's overlap
    s_ad, h_ad = _autodiff(gm, x[rows])
    _close(np.asarray(s)[rows], s_ad)
    _scaled_close(np.asarray(h)[rows], h_ad, AUTODIFF_HESS_RTOL)
    assert np.all(np.isfinite(np.asarray(h)))
    np.testing.assert_array_equal(np.asarray(h), np.swapaxes(np.asarray(h), -1, -2))


def test_every_per_point_method_covers_every_block():
    """More points than one default block: each blocked method's rows equal the same rows
    computed alone (one block), at both ends and across the overlap of the last block."""
    from dsmtheory.mixture import _block_size

    gm = dsm.random_anisotropic(seed=9, num_components=16, dim=8)
    n = _block_size(16, 8) + 37
    x = gm.noised(0.8, 0.6).sample(jax.random.PRNGKey(10), n)
    rows = np.r_[0:8, n - 80 : n]
    methods = {
        "log_prob": gm.log_prob,
        "component_log_prob": gm.component_log_prob,
        "responsibilities": gm.responsibilities,
        "score": gm.score,
        "posterior_mean": lambda y: posterior_mean(gm, y, 0.8, 0.6),
        "posterior_cov": lambda y: posterior_cov(gm, y, 0.8, 0.6),
        "posterior_cov_trace": lambda y: dsm.posterior_cov_trace(gm, y, 0.8, 0.6),
    }
    for name, fn in methods.items():
        full = np.asarray(fn(x))
        assert full.shape[0] == n and np.all(np.isfinite(full)), name
        # same arithmetic row by row; a dot's summation order may depend on its row count
        _scaled_close(full[rows], fn(x[rows]), 1e-14)


def test_block_size():
    from dsmtheory.mixture import _block_size

    assert _block_size(16, 8) == 4096  # 4096 x 16 x 8 float64 = 4 MiB
    assert _block_size(1, 64) == 128  # the (B, D, D) Hessian block is the larger
    assert _block_size(1, 1) == 1 << 14  # capped
    assert _block_size(4096, 4096) == 16  # floored


def test_batch_shapes():
    gm = dsm.random_anisotropic(seed=3, num_components=3, dim=2)
    x = jnp.zeros((4, 5, 2))
    assert gm.log_prob(x).shape == (4, 5)
    assert gm.score(x).shape == (4, 5, 2)
    assert gm.hessian(x).shape == (4, 5, 2, 2)
    assert gm.responsibilities(x).shape == (4, 5, 3)
    assert posterior_mean(gm, x, 0.8, 0.6).shape == (4, 5, 2)
    assert posterior_cov(gm, x, 0.8, 0.6).shape == (4, 5, 2, 2)
    assert dsm.posterior_cov_trace(gm, x, 0.8, 0.6).shape == (4, 5)
    # an unbatched point
    assert gm.log_prob(jnp.zeros(2)).shape == ()
    assert gm.hessian(jnp.zeros(2)).shape == (2, 2)


def test_single_component_equals_scipy_gaussian():
    rng = np.random.default_rng(7)
    mu = rng.standard_normal(3)
    cov = _random_spd(rng, 3)
    gm = GaussianMixture([1.0], mu[None], cov[None])
    x = rng.standard_normal((6, 3))
    ref = multivariate_normal(mu, cov)
    _close(gm.log_prob(x), ref.logpdf(x))
    prec = np.linalg.inv(cov)
    _close(gm.score(x), -(x - mu) @ prec)
    _close(gm.hessian(x), np.broadcast_to(-prec, (6, 3, 3)))
    assert gm.num_components == 1 and gm.dim == 3


def test_single_gaussian_constructor():
    gm = dsm.single_gaussian([1.0, -2.0], 0.5)
    x = np.array([[0.3, 0.1], [5.0, -7.0]])
    _close(gm.log_prob(x), multivariate_normal([1.0, -2.0], 0.25 * np.eye(2)).logpdf(x))


def test_duplicated_components_equal_one():
    rng = np.random.default_rng(8)
    mu = rng.standard_normal(2)
    cov = _random_spd(rng, 2)
    one = GaussianMixture([1.0], mu[None], cov[None])
    dup = GaussianMixture([0.3, 0.7], np.stack([mu, mu]), np.stack([cov, cov]))
    x = rng.standard_normal((5, 2)) * 3
    _close(dup.log_prob(x), one.log_prob(x))
    _close(dup.score(x), one.score(x))
    _close(dup.hessian(x), one.hessian(x))
    _close(posterior_cov(dup, x, 0.6, 0.8), posterior_cov(one, x, 0.6, 0.8))
    _close(dup.responsibilities(x), np.broadcast_to([0.3, 0.7], (5, 2)))


# ---------------------------------------------------------------------------------------
# noising
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha,sigma", [(1.0, 0.3), (0.6, 0.8), (2.0, 0.01), (1e-3, 5.0)])
def test_noised_equals_mixture_built_from_scratch(alpha, sigma):
    w, mu, covs, full = _raw_params("full", 4, 3, seed=11)
    gm = GaussianMixture(w, mu, covs)
    s_k = alpha**2 * full + sigma**2 * np.eye(3)
    scratch = GaussianMixture(w, alpha * mu, s_k)
    noised = gm.noised(alpha, sigma)
    x = np.random.default_rng(12).standard_normal((6, 3)) * 2
    ref, _ = _scipy_log_prob(w, alpha * mu, s_k, x)
    _close(noised.log_prob(x), ref)
    _close(noised.log_prob(x), scratch.log_prob(x))
    _close(noised.score(x), scratch.score(x))
    _close(noised.hessian(x), scratch.hessian(x))
    _close(noised.covs, s_k)
    _close(noised.means, alpha * mu)
    assert noised.diagonal == gm.diagonal


def test_noised_keeps_diagonal_flag():
    gm = GaussianMixture([0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], [[1.0, 2.0], [0.5, 0.3]])
    n = gm.noised(0.5, 0.1)
    assert n.diagonal
    _close(n.covs, [np.diag([0.26, 0.51]), np.diag([0.135, 0.085])])


# ---------------------------------------------------------------------------------------
# sampling and moments
# ---------------------------------------------------------------------------------------
def test_sample_moments_match_mean_and_covariance():
    w, mu, covs, full = _raw_params("full", 3, 2, seed=21)
    gm = GaussianMixture(w, mu, covs)
    n = 200_000
    x = np.asarray(gm.sample(jax.random.PRNGKey(0), n))
    assert x.shape == (n, 2)
    # independent moments from the raw parameters
    m_ref = w @ mu
    c_ref = np.einsum("k,kij->ij", w, full) + np.einsum("k,ki,kj->ij", w, mu - m_ref, mu - m_ref)
    _close(gm.mean(), m_ref)
    _close(gm.covariance(), c_ref)
    se_mean = np.sqrt(np.diag(c_ref) / n)
    assert np.all(np.abs(x.mean(0) - m_ref) <= Z_BOUND * se_mean)
    dx = x - m_ref
    prods = dx[:, :, None] * dx[:, None, :]
    se_cov = prods.std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(prods.mean(0) - c_ref) <= Z_BOUND * se_cov)


def test_sample_component_frequencies():
    gm = dsm.ring(num_modes=4, radius=10.0, std=0.1)
    n = 40_000
    x = np.asarray(gm.sample(jax.random.PRNGKey(5), n))
    labels = np.argmax(np.asarray(gm.responsibilities(x)), axis=-1)
    counts = np.bincount(labels, minlength=4)
    p = 0.25
    se = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) <= Z_BOUND * se)


def test_sample_is_reproducible_and_diagonal_path():
    gm = GaussianMixture([0.4, 0.6], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 0.04], [0.25, 4.0]])
    a = gm.sample(jax.random.PRNGKey(1), 50_000)
    b = gm.sample(jax.random.PRNGKey(1), 50_000)
    np.testing.assert_array_equal(a, b)
    x = np.asarray(a)
    c_ref = np.asarray(gm.covariance())
    se = np.sqrt(np.diag(c_ref) / x.shape[0])
    assert np.all(np.abs(x.mean(0) - np.asarray(gm.mean())) <= Z_BOUND * se)


# ---------------------------------------------------------------------------------------
# Tweedie posterior
# ---------------------------------------------------------------------------------------
def _numpy_posterior(w, mu, full, x_t, alpha, sigma):
    """Posterior mean and covariance of x0 | x_t by textbook Gaussian conditioning."""
    k, d = mu.shape
    x_t = np.asarray(x_t).reshape(-1, d)
    s_k = alpha**2 * full + sigma**2 * np.eye(d)
    logr = np.stack(
        [np.log(w[j]) + multivariate_normal(alpha * mu[j], s_k[j]).logpdf(x_t) for j in range(k)],
        -1,
    ).reshape(-1, k)
    r = np.exp(logr - logsumexp(logr, axis=-1, keepdims=True))
    means = np.empty((x_t.shape[0], k, d))
    covs = np.empty((k, d, d))
    for j in range(k):
        gain = alpha * full[j] @ np.linalg.inv(s_k[j])  # Cov(x0, x_t) Var(x_t)^-1
        means[:, j] = mu[j] + (x_t - alpha * mu[j]) @ gain.T
        covs[j] = full[j] - gain @ (alpha * full[j])
    mbar = np.einsum("nk,nkd->nd", r, means)
    second = np.einsum("nk,kij->nij", r, covs) + np.einsum("nk,nki,nkj->nij", r, means, means)
    return mbar, second - mbar[:, :, None] * mbar[:, None, :]


@pytest.mark.parametrize(
    "alpha,sigma",
    [(1.0, 0.5), (1.0, 3.0), (0.8, 0.6), (np.sqrt(0.99), 0.1), (0.3, 0.2), (2.5, 1.5)],
    ids=["ve", "ve-large", "vp", "vp-low-noise", "general-a", "general-b"],
)
def test_posterior_matches_gaussian_conditioning(alpha, sigma):
    w, mu, covs, full = _raw_params("full", 3, 3, seed=31)
    gm = GaussianMixture(w, mu, covs)
    x_t = np.random.default_rng(32).standard_normal((6, 3)) * 2
    m_ref, c_ref = _numpy_posterior(w, mu, full, x_t, alpha, sigma)
    _close(posterior_mean(gm, x_t, alpha, sigma), m_ref)
    _close(posterior_cov(gm, x_t, alpha, sigma), c_ref)
    _close(dsm.posterior_cov_trace(gm, x_t, alpha, sigma), np.trace(c_ref, axis1=1, axis2=2))


@pytest.mark.parametrize(
    "alpha,sigma",
    [(1.0, 0.4), (1.0, 2.0), (0.8, 0.6), (np.sqrt(0.5), np.sqrt(0.5)), (0.05, 0.3), (3.0, 0.7)],
    ids=["ve", "ve-large", "vp", "vp-mid", "general-small-alpha", "general-large-alpha"],
)
def test_tweedie_both_ways(alpha, sigma):
    """Tweedie's formulas, with the score and Hessian of p_t from autodiff (independent):
    E[x0|x_t] = (x_t + sigma^2 s)/alpha, Cov = sigma^2/alpha^2 (I + sigma^2 H), and back:
    s = (alpha E - x_t)/sigma^2, H = (alpha^2 Cov/sigma^2 - I)/sigma^2."""
    gm = dsm.random_anisotropic(seed=41, num_components=4, dim=2)
    pt = gm.noised(alpha, sigma)
    x_t = np.asarray(pt.sample(jax.random.PRNGKey(2), 8))
    s, h = (np.asarray(a) for a in _autodiff(pt, jnp.asarray(x_t)))
    mean, cov = (np.asarray(a) for a in _posterior(gm, x_t, alpha, sigma))
    eye = np.eye(2)
    _scaled_close(mean, (x_t + sigma**2 * s) / alpha, TWEEDIE_RTOL)
    _scaled_close(cov, sigma**2 / alpha**2 * (eye + sigma**2 * h), TWEEDIE_RTOL)
    _scaled_close(pt.score(x_t), (alpha * mean - x_t) / sigma**2, TWEEDIE_RTOL)
    _scaled_close(pt.hessian(x_t), (alpha**2 * cov / sigma**2 - eye) / sigma**2, TWEEDIE_RTOL)


def test_posterior_cov_psd_where_tweedie_form_is_not():
    """At sigma = 1e8 the form sigma^2 (I + sigma^2 H) cancels to rounding noise and has
    negative eigenvalues; the mixture-moment form stays PSD."""
    gm = dsm.random_anisotropic(seed=1, num_components=4, dim=5)
    sigma = 1e8
    x_t = gm.noised(1.0, sigma).sample(jax.random.PRNGKey(0), 50)
    cov = np.asarray(posterior_cov(gm, x_t, 1.0, sigma))
    tweedie = sigma**2 * (np.eye(5) + sigma**2 * np.asarray(gm.noised(1.0, sigma).hessian(x_t)))
    assert np.linalg.eigvalsh(tweedie).min() < 0  # the failure the design avoids
    ev = np.linalg.eigvalsh(cov)
    assert np.all(ev.min(-1) >= -EIGH_RTOL * ev.max(-1))
    # and the prior covariance limit: Cov[x0 | x_t] -> Cov[x0] as sigma -> inf
    _scaled_close(cov.mean(0), np.asarray(gm.covariance()), 1e-6)


@pytest.mark.parametrize("sigma", [1e-4, 1e-2, 1.0, 1e2, 1e4])
def test_posterior_cov_psd_across_noise(sigma):
    gm = dsm.grid_2d(n=3, spacing=2.0, std=0.25)
    # points between the modes: responsibilities split, large between-component term
    g = np.linspace(-3.0, 3.0, 13)
    x_t = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    ev = np.linalg.eigvalsh(np.asarray(posterior_cov(gm, x_t, 1.0, sigma)))
    assert np.all(np.isfinite(ev))
    assert np.all(ev.min(-1) >= -EIGH_RTOL * ev.max(-1))


def test_posterior_moments_vs_importance_sampling():
    """E[x0|x_t], E[x0 x0^T|x_t] by self-normalized importance sampling from the prior with
    weights N(x_t; alpha x0, sigma^2 I); z-score with the delta-method standard error."""
    gm = dsm.random_anisotropic(seed=51, num_components=3, dim=2)
    alpha, sigma = 0.8, 0.6
    n = 400_000
    x0 = np.asarray(gm.sample(jax.random.PRNGKey(3), n))
    rng = np.random.default_rng(52)
    for x_t in (alpha * x0[0] + sigma * rng.standard_normal(2), np.array([0.3, -0.4])):
        logw = -0.5 * np.sum((x_t - alpha * x0) ** 2, -1) / sigma**2
        wts = np.exp(logw - logw.max())
        wsum = wts.sum()
        f = np.concatenate([x0, (x0[:, :, None] * x0[:, None, :]).reshape(n, -1)], axis=1)
        est = wts @ f / wsum
        se = np.sqrt((wts**2) @ (f - est) ** 2) / wsum
        mean = np.asarray(posterior_mean(gm, x_t, alpha, sigma))
        cov = np.asarray(posterior_cov(gm, x_t, alpha, sigma))
        truth = np.concatenate([mean, (cov + np.outer(mean, mean)).ravel()])
        z = np.abs(est - truth) / se
        assert np.all(z <= Z_BOUND), z


# ---------------------------------------------------------------------------------------
# pytree behaviour
# ---------------------------------------------------------------------------------------
def test_jit_equals_eager():
    gm = dsm.random_anisotropic(seed=61, num_components=3, dim=3)
    x = np.random.default_rng(62).standard_normal((5, 3))

    @jax.jit
    def f(g, x):
        s, h = g.score_and_hessian(x)
        return g.log_prob(x), s, h, posterior_cov(g, x, 0.6, 0.8), posterior_mean(g, x, 0.6, 0.8)

    out = f(gm, x)
    ref = (
        gm.log_prob(x),
        gm.score(x),
        gm.hessian(x),
        posterior_cov(gm, x, 0.6, 0.8),
        posterior_mean(gm, x, 0.6, 0.8),
    )
    for a, b in zip(out, ref, strict=True):
        _close(a, b)


def test_vmap_over_sigma_of_noised_score():
    gm = dsm.bimodal_1d()
    x = jnp.array([0.7])
    sigmas = jnp.array([0.01, 0.1, 1.0, 10.0])
    got = jax.vmap(lambda s: gm.noised(1.0, s).score(x))(sigmas)
    ref = np.stack([np.asarray(gm.noised(1.0, float(s)).score(x)) for s in sigmas])
    _close(got, ref)
    # and a vmap over mixtures: the pytree's leaves batch
    stacked = jax.tree_util.tree_map(lambda *l: jnp.stack(l), gm.noised(1.0, 0.1), gm)
    lp = jax.vmap(lambda g: g.log_prob(x))(stacked)
    _close(lp, [gm.noised(1.0, 0.1).log_prob(x), gm.log_prob(x)])


def test_grad_through_mixture_parameters():
    """The pytree differentiates w.r.t. its leaves: d log p / d mu_k = r_k Sigma_k^-1 (x-mu_k)."""
    gm = dsm.random_anisotropic(seed=63, num_components=2, dim=2)
    x = jnp.array([0.2, -0.1])
    grads = jax.grad(lambda g: g.log_prob(x))(gm)
    r = gm.responsibilities(x)
    ref = r[:, None] * jnp.einsum("kij,kj->ki", gm.precisions, x[None] - gm.means)
    _close(grads.means, ref)


def test_traced_construction_inside_jit():
    w, mu, covs, _ = _raw_params("full", 2, 2, seed=64)
    x = np.array([[0.1, 0.2]])

    @jax.jit
    def f(mu):
        return GaussianMixture(w, mu, covs).log_prob(x)

    _close(f(mu), GaussianMixture(w, mu, covs).log_prob(x))


def test_immutable():
    gm = dsm.bimodal_1d()
    with pytest.raises(AttributeError):
        gm.means = jnp.zeros((2, 1))


# ---------------------------------------------------------------------------------------
# JSON and constructors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_json_round_trip(kind, tmp_path):
    w, mu, covs, full = _raw_params(kind, 3, 2, seed=71)
    gm = GaussianMixture(w, mu, covs)
    text = dsm.to_json(gm)
    data = json.loads(text)
    assert set(data) == {"weights", "means", "covs"}
    back = dsm.from_json(text)
    path = tmp_path / "gm.json"
    path.write_text(text)
    back_file = dsm.from_json(str(path))
    x = np.random.default_rng(72).standard_normal((4, 2))
    for g in (back, back_file):
        _close(g.log_prob(x), gm.log_prob(x))
        _close(g.covs, full)
        _close(g.weights, w)
    # the native format with diagonal / isotropic covariances is accepted as well
    native = json.dumps({"weights": w.tolist(), "means": mu.tolist(), "covs": covs.tolist()})
    _close(dsm.from_json(native).log_prob(x), gm.log_prob(x))


def test_ring():
    gm = dsm.ring(num_modes=8, radius=2.0, std=0.25)
    ang = 2 * np.pi * np.arange(8) / 8
    _close(gm.means, 2.0 * np.stack([np.cos(ang), np.sin(ang)], -1))
    _close(gm.weights, np.full(8, 1 / 8))
    _close(gm.covs, np.broadcast_to(0.0625 * np.eye(2), (8, 2, 2)))
    _close(np.linalg.norm(np.asarray(gm.means), axis=-1), np.full(8, 2.0))
    assert dsm.ring(num_modes=3).num_components == 3


def test_bimodal_1d():
    gm = dsm.bimodal_1d()
    _close(gm.means, [[-2.0], [2.0]])
    _close(gm.weights, [0.5, 0.5])
    _close(gm.covs, np.full((2, 1, 1), 0.0625))
    g = dsm.bimodal_1d(separation=6.0, std=0.5, weight=0.3)
    _close(g.means, [[-3.0], [3.0]])
    _close(g.weights, [0.3, 0.7])
    # symmetric mixture: the score at the origin vanishes
    _close(gm.noised(1.0, 0.1).score(jnp.array([0.0])), [0.0])


def test_grid_2d():
    gm = dsm.grid_2d(n=3, spacing=2.0, std=0.25)
    expected = {(a, b) for a in (-2.0, 0.0, 2.0) for b in (-2.0, 0.0, 2.0)}
    got = {tuple(np.round(m, 12)) for m in np.asarray(gm.means)}
    assert got == expected
    _close(gm.weights, np.full(9, 1 / 9))
    _close(gm.mean(), [0.0, 0.0])
    assert dsm.grid_2d(n=2).num_components == 4


def test_random_anisotropic_reproducible():
    a = dsm.random_anisotropic(seed=5, num_components=4, dim=3)
    b = dsm.random_anisotropic(seed=5, num_components=4, dim=3)
    c = dsm.random_anisotropic(seed=6, num_components=4, dim=3)
    for leaf_a, leaf_b in zip(
        jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True
    ):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    assert not np.allclose(a.means, c.means)
    covs = np.asarray(a.covs)
    _close(covs, np.swapaxes(covs, -1, -2))
    ev = np.linalg.eigvalsh(covs)
    # standard deviations are drawn in the default std_range (0.1, 0.6)
    assert np.all(ev >= 0.1**2 * (1 - 1e-9)) and np.all(ev <= 0.6**2 * (1 + 1e-9))
    assert not a.diagonal and a.num_components == 4 and a.dim == 3
    _close(jnp.sum(a.weights), 1.0)


def test_precisions_and_covs_are_inverse():
    gm = dsm.random_anisotropic(seed=7, num_components=3, dim=4)
    _close(
        jnp.einsum("kij,kjl->kil", gm.covs, gm.precisions), np.broadcast_to(np.eye(4), (3, 4, 4))
    )


# ---------------------------------------------------------------------------------------
# hypothesis properties over random mixtures
# ---------------------------------------------------------------------------------------
K_SLOTS = 5  # the property test's mixtures are padded to this many components


@st.composite
def random_mixtures(draw):
    """A random mixture with K in 1..5 components in D in 1..3 dimensions, returned as its
    raw parameters (w, mu, covs), 3 points x, and the same mixture padded to K_SLOTS
    components by splitting components into duplicates with the weight shared out.

    The padded mixture has the same density (checked against scipy on the raw K), and it
    keeps the compiled shapes to one per D: jit compilation, not arithmetic, is what costs
    time here (25 examples would otherwise compile up to 15 shape pairs)."""
    k = draw(st.integers(1, 5))
    d = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(k, draw(st.sampled_from([0.3, 1.0, 5.0]))))
    w = np.maximum(w, 1e-6)
    w = w / w.sum()
    spread = draw(st.sampled_from([0.1, 1.0, 4.0]))
    mu = spread * rng.standard_normal((k, d))
    covs = np.stack([_random_spd(rng, d, 0.05, 3.0) for _ in range(k)])
    x = rng.standard_normal((3, d)) * (spread + 1.0)
    # pad: component j of the padded mixture copies raw component src[j]
    src = np.concatenate([np.arange(k), rng.integers(0, k, K_SLOTS - k)])
    copies = np.bincount(src, minlength=k)
    w_pad = w[src] / copies[src]
    return w, mu, covs, x, (w_pad, mu[src], covs[src])


@jax.jit
def _property_values(gm, x, alpha, sigma):
    """Everything the property test compares, in one compilation per (K, D)."""
    lp, s, h = _closed(gm, x)
    s_ad, h_ad = _autodiff(gm, x)
    mean, cov = _posterior(gm, x, alpha, sigma)
    s_t, h_t = _noised_closed(gm, x, alpha, sigma)
    return lp, s, h, s_ad, h_ad, mean, cov, s_t, h_t


def _alpha_sigma(lam, process):
    if process == "ve":
        return 1.0, float(np.exp(-lam / 2))
    if process == "vp":
        return float(np.sqrt(1 / (1 + np.exp(-lam)))), float(np.sqrt(1 / (1 + np.exp(lam))))
    return 2.0, 2.0 * float(np.exp(-lam / 2))  # a general (alpha, sigma) pair


@given(random_mixtures(), st.floats(-12.0, 12.0), st.sampled_from(["ve", "vp", "general"]))
def test_property_random_mixtures(params, lam, process):
    """Over random mixtures (K 1..5, padded to 5 by duplicates; D 1..3; SPD covariances;
    Dirichlet weights) and log-SNR lam in [-12, 12]: score vs jax.grad, Hessian symmetric
    and vs jax.hessian,
    log-density vs scipy, posterior covariance PSD, Tweedie's mean and covariance."""
    w, mu, covs, x, padded = params
    gm = GaussianMixture(*padded)
    alpha, sigma = _alpha_sigma(lam, process)
    out = _property_values(gm, jnp.asarray(x), alpha, sigma)
    lp, s, h, s_ad, h_ad, mean, cov, s_t, h_t = (np.asarray(a) for a in out)
    _scaled_close(s, s_ad, AUTODIFF_HESS_RTOL)
    _scaled_close(h, h_ad, AUTODIFF_HESS_RTOL)
    np.testing.assert_array_equal(h, np.swapaxes(h, -1, -2))
    _close(lp, _scipy_log_prob(w, mu, covs, x)[0])
    ev = np.linalg.eigvalsh(cov)
    assert np.all(ev.min(-1) >= -EIGH_RTOL * np.abs(ev).max(-1))
    # Tweedie in the score/Hessian direction, which is well conditioned for every lambda
    eye = np.eye(gm.dim)
    _scaled_close((alpha * mean - x) / sigma**2, s_t, TWEEDIE_RTOL)
    _scaled_close((alpha**2 * cov / sigma**2 - eye) / sigma**2, h_t, TWEEDIE_RTOL)
