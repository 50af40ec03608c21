r"""The low-rank-plus-diagonal kind (issue 14 item 2): $\Sigma_k=F_kF_k^\top+\mathrm{diag}(d_k)$
computed by Woodbury and the matrix determinant lemma, checked against the dense kind.

References, independent of the low-rank kernels: the dense kind of the same mixture
(``gm.to_dense()``, itself checked against NumPy's $FF^\top+\mathrm{diag}(d)$ and scipy's
density), scipy.stats (Kolmogorov–Smirnov), Monte Carlo with a z-score bound.

Few shapes on purpose (JAX compiles once per mixture and point shape): (K, D, r) =
(3, 6, 2) and (3, 20, 3), points (N, D) with N = 9.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from tolerances import EXACT_RTOL, Z_BOUND

from dsmtheory import optimal, variance
from dsmtheory.mixture import (
    DENSE_VIEW_MAX_DIM,
    GaussianMixture,
    from_json,
    posterior_cov,
    posterior_cov_trace,
    posterior_mean,
    to_json,
)

N_POINTS = 9


def _params(d: int, r: int, diag: str, seed: int = 0):
    """weights, means, factors, diag as given to from_low_rank. ``diag``: "full" (K, D)
    entries > 0, "iso" (K,), "zeros" (K, D) with zeros (component 0: three zero entries,
    component 1: all zero, i.e. rank r)."""
    k = 3
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(k, 3.0))
    mu = 0.7 * rng.standard_normal((k, d))
    f = 0.6 * rng.standard_normal((k, d, r))
    if diag == "iso":
        dg = rng.uniform(0.05, 0.4, size=k)
    else:
        dg = rng.uniform(0.05, 0.4, size=(k, d))
        if diag == "zeros":
            dg[0, :3] = 0.0
            dg[1] = 0.0
    return w, mu, f, dg


def _dense_covs(f, dg):
    """NumPy F Fᵀ + diag(d), the independent description."""
    k, d, _ = f.shape
    dg = np.broadcast_to(np.asarray(dg).reshape(k, -1), (k, d))
    return np.einsum("kir,kjr->kij", f, f) + np.stack([np.diag(x) for x in dg])


def _points(d: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = 1.2 * rng.standard_normal((N_POINTS, d))
    x[-1] *= 6.0  # one far point: log-densities of ~-100s, responsibilities ~0/1
    return x


# D = 20 only where a kernel's contraction order differs from D = 6 (the per-point
# methods; see test_d20_against_dense): every case costs its own compilations.
CASES = [(6, 2, "full"), (6, 2, "iso")]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"D{c[0]}-r{c[1]}-{c[2]}")
def case(request):
    d, r, diag = request.param
    w, mu, f, dg = _params(d, r, diag)
    lr = GaussianMixture.from_low_rank(w, mu, f, dg)
    return lr, lr.to_dense(), (w, mu, f, dg)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------------------------------
# the kind itself
# ---------------------------------------------------------------------------------------
def test_kind_shapes_and_dense_form(case):
    lr, de, (w, mu, f, dg) = case
    k, d, r = f.shape
    assert lr.kind == "low_rank" and de.kind == "dense"
    assert isinstance(lr, GaussianMixture)
    assert (lr.num_components, lr.dim, lr.rank, lr.latent_dim) == (k, d, r, r + d)
    assert de.latent_dim == d
    assert lr.diag.shape == (k, d)  # (K,) diagonals broadcast
    full = _dense_covs(f, dg)
    assert _rel(de.covs, full) < EXACT_RTOL
    assert _rel(lr.covs, full) < EXACT_RTOL
    assert _rel(lr.precisions, np.linalg.inv(full)) < EXACT_RTOL
    assert _rel(lr.covariance(), de.covariance()) < EXACT_RTOL
    assert _rel(lr.mean(), de.mean()) < EXACT_RTOL
    assert np.array_equal(np.asarray(lr.ranks), np.full(k, d))
    assert not lr.rank_deficient
    assert "low-rank" in repr(lr)


def test_density_score_responsibilities_against_dense(case):
    lr, de, (w, mu, f, dg) = case
    x = _points(lr.dim)
    assert _rel(lr.log_prob(x), de.log_prob(x)) < EXACT_RTOL
    assert _rel(lr.component_log_prob(x), de.component_log_prob(x)) < EXACT_RTOL
    assert _rel(lr.score(x), de.score(x)) < EXACT_RTOL
    assert _rel(lr.responsibilities(x), de.responsibilities(x)) < EXACT_RTOL
    # and against scipy directly (independent of both kinds)
    full = _dense_covs(f, dg)
    comp = np.stack(
        [np.log(w[i]) + stats.multivariate_normal(mu[i], full[i]).logpdf(x) for i in range(3)],
        axis=-1,
    )
    assert _rel(lr.log_prob(x), logsumexp(comp, axis=-1)) < EXACT_RTOL


def test_hessian_products_and_diagonal_against_dense(case):
    lr, de, _ = case
    x = _points(lr.dim)
    v = np.random.default_rng(2).standard_normal(x.shape)
    h = de.hessian(x)
    assert _rel(lr.hessian_vector_product(x, v), de.hessian_vector_product(x, v)) < EXACT_RTOL
    assert _rel(lr.hessian_vector_product(x, v), np.einsum("bij,bj->bi", h, v)) < EXACT_RTOL
    assert _rel(lr.hessian_diagonal(x), np.diagonal(h, axis1=-2, axis2=-1)) < EXACT_RTOL
    s, hl = lr.score_and_hessian(x)
    assert _rel(hl, h) < EXACT_RTOL and _rel(s, de.score(x)) < EXACT_RTOL
    assert np.array_equal(np.asarray(hl), np.swapaxes(np.asarray(hl), -1, -2))


def test_component_points_are_the_component_laws(case):
    lr, de, (w, mu, f, dg) = case
    k, d, r = f.shape
    # x = mu + A z is affine in z: recover A column by column, check A Aᵀ = Σ_k exactly
    full = _dense_covs(f, dg)
    eye = np.eye(r + d)
    for comp in range(k):
        base = np.asarray(lr.component_points(np.full(1, comp), np.zeros((1, r + d))))[0]
        assert _rel(base, mu[comp]) < EXACT_RTOL
        cols = np.asarray(lr.component_points(np.full(r + d, comp), eye)) - base
        a = cols.T  # (D, r + D)
        assert _rel(a @ a.T, full[comp]) < EXACT_RTOL
    # batched: each row its own component
    z = np.random.default_rng(3).standard_normal((4, r + d))
    comps = np.array([0, 2, 1, 0])
    want = mu[comps] + np.einsum("bdr,br->bd", f[comps], z[:, :r])
    want += np.sqrt(np.asarray(lr.diag)[comps]) * z[:, r:]
    assert _rel(lr.component_points(comps, z), want) < EXACT_RTOL


@pytest.mark.parametrize("alpha, sigma", [(1.0, 0.3), (0.8, 0.6)], ids=["VE", "VP"])
def test_noised_and_posterior_against_dense(case, alpha, sigma):
    lr, de, _ = case
    x = _points(lr.dim)
    lt, dt = lr.noised(alpha, sigma), de.noised(alpha, sigma)
    assert lt.kind == "low_rank"
    assert _rel(lt.covs, dt.covs) < EXACT_RTOL
    assert _rel(lt.log_prob(x), dt.log_prob(x)) < EXACT_RTOL
    assert _rel(lt.score(x), dt.score(x)) < EXACT_RTOL
    assert _rel(posterior_mean(lr, x, alpha, sigma), posterior_mean(de, x, alpha, sigma)) < (
        EXACT_RTOL
    )
    tr = posterior_cov_trace(lr, x, alpha, sigma)
    assert _rel(tr, posterior_cov_trace(de, x, alpha, sigma)) < EXACT_RTOL
    cov = posterior_cov(lr, x, alpha, sigma)
    assert _rel(cov, posterior_cov(de, x, alpha, sigma)) < EXACT_RTOL
    assert _rel(tr, np.trace(np.asarray(cov), axis1=-2, axis2=-1)) < EXACT_RTOL


@jax.jit
def _all_methods(gm, x, v, alpha, sigma):
    """Every O(KDr) method at once: one compilation per kind (the public methods call the
    same kernels; at D = 6 they are tested one by one)."""
    return {
        "log_prob": gm.log_prob(x),
        "score": gm.score(x),
        "responsibilities": gm.responsibilities(x),
        "hvp": gm.hessian_vector_product(x, v),
        "hessian_diagonal": gm.hessian_diagonal(x),
        "noised_score": gm.noised(alpha, sigma).score(x),
        "posterior_mean": posterior_mean(gm, x, alpha, sigma),
        "posterior_cov_trace": posterior_cov_trace(gm, x, alpha, sigma),
    }


def test_d20_against_dense():
    w, mu, f, dg = _params(20, 3, "full")
    lr = GaussianMixture.from_low_rank(w, mu, f, dg)
    de = lr.to_dense()
    assert _rel(de.covs, _dense_covs(f, dg)) < EXACT_RTOL
    x = jnp.asarray(_points(20))
    v = jnp.asarray(np.random.default_rng(2).standard_normal(x.shape))
    for alpha, sigma in [(1.0, 0.3), (0.8, 0.6)]:
        a, s = jnp.asarray(alpha), jnp.asarray(sigma)
        got, want = _all_methods(lr, x, v, a, s), _all_methods(de, x, v, a, s)
        for name in got:
            assert _rel(got[name], want[name]) < EXACT_RTOL, name


# ---------------------------------------------------------------------------------------
# zero diagonal entries: p0 possibly rank-deficient, p_t and the posteriors as usual
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zeros_case():
    w, mu, f, dg = _params(6, 2, "zeros")
    lr = GaussianMixture.from_low_rank(w, mu, f, dg)
    return lr, lr.to_dense(), (w, mu, f, dg)


def test_zero_diagonal_ranks_and_refusals(zeros_case):
    lr, de, _ = zeros_case
    # component 0: 3 free coordinates + rank of F on the other 3 (2); component 1: rank r
    assert np.asarray(lr.ranks).tolist() == [5, 2, 6]
    assert np.array_equal(np.asarray(lr.ranks), np.asarray(de.ranks))
    assert lr.rank_deficient and de.rank_deficient
    x = _points(6)
    for name in ("log_prob", "score", "responsibilities", "hessian_diagonal"):
        with pytest.raises(ValueError, match=f"{name}: .*zero diagonal entries"):
            getattr(lr, name)(x)
    with pytest.raises(ValueError, match="precisions"):
        lr.precisions  # noqa: B018
    # zero entries that still leave every component full rank: not rank-deficient, but
    # sigma^2 must not underflow (the noised diagonal would have a zero)
    w, mu, f, dg = _params(6, 2, "full")
    dg[0, 0] = 0.0
    full_rank = GaussianMixture.from_low_rank(w, mu, f, dg)
    assert not full_rank.rank_deficient
    for gm in (lr, full_rank):
        with pytest.raises(ValueError, match="sigma = 1e-160 is too small"):
            gm.noised(1.0, 1e-160)


@pytest.mark.parametrize("alpha, sigma", [(1.0, 0.3), (0.8, 0.6)], ids=["VE", "VP"])
def test_zero_diagonal_noised_and_posterior_against_dense(zeros_case, alpha, sigma):
    lr, de, _ = zeros_case
    x = _points(6)
    lt, dt = lr.noised(alpha, sigma), de.noised(alpha, sigma)
    assert not lt.rank_deficient
    assert _rel(lt.log_prob(x), dt.log_prob(x)) < EXACT_RTOL
    assert _rel(lt.score(x), dt.score(x)) < EXACT_RTOL
    v = np.random.default_rng(2).standard_normal(x.shape)
    assert _rel(lt.hessian_vector_product(x, v), dt.hessian_vector_product(x, v)) < EXACT_RTOL
    assert _rel(lt.hessian_diagonal(x), dt.hessian_diagonal(x)) < EXACT_RTOL
    assert _rel(posterior_mean(lr, x, alpha, sigma), posterior_mean(de, x, alpha, sigma)) < (
        EXACT_RTOL
    )
    tr = posterior_cov_trace(lr, x, alpha, sigma)
    assert _rel(tr, posterior_cov_trace(de, x, alpha, sigma)) < EXACT_RTOL


def test_zero_diagonal_samples_lie_on_the_support(zeros_case):
    lr, _, (w, mu, f, dg) = zeros_case
    z = np.random.default_rng(4).standard_normal((5, 2 + 6))
    x = np.asarray(lr.component_points(np.ones(5, dtype=int), z))
    # component 1 has diag 0: x - mu_1 lies in the span of F_1
    resid = (x - mu[1]) - (x - mu[1]) @ np.linalg.pinv(f[1]).T @ f[1].T
    assert np.max(np.abs(resid)) < 1e-12 * np.max(np.abs(x - mu[1]))


# ---------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------
def test_sample_moments_and_ks(case):
    lr, de, (w, mu, f, dg) = case
    n = 20_000
    x = np.asarray(lr.sample(jax.random.PRNGKey(0), n))
    assert x.shape == (n, lr.dim) and np.all(np.isfinite(x))
    # mean: z-scores per coordinate against the mixture covariance
    cov = np.asarray(de.covariance())
    z = (x.mean(0) - np.asarray(de.mean())) / np.sqrt(np.diag(cov) / n)
    assert np.max(np.abs(z)) < Z_BOUND
    # second moment along a fixed direction u: E(uᵀx)² has variance Var((uᵀx)²)/n
    u = np.random.default_rng(5).standard_normal(lr.dim)
    u /= np.linalg.norm(u)
    p = x @ u
    m2 = float(u @ (cov + np.outer(de.mean(), de.mean())) @ u)
    assert abs(np.mean(p**2) - m2) < Z_BOUND * np.std(p**2) / np.sqrt(n)
    # KS of the projection against the exact 1-D mixture law of uᵀx
    full = _dense_covs(f, dg)
    locs, scales = mu @ u, np.sqrt(np.einsum("i,kij,j->k", u, full, u))

    def cdf(t):
        return np.sum(w * stats.norm.cdf((np.asarray(t)[:, None] - locs) / scales), axis=-1)

    assert stats.kstest(p, cdf).pvalue > 1e-4
    # reproducible
    assert np.array_equal(x, np.asarray(lr.sample(jax.random.PRNGKey(0), n)))


# ---------------------------------------------------------------------------------------
# jit, vmap, grad
# ---------------------------------------------------------------------------------------
def test_jit_vmap_grad():
    w, mu, f, dg = _params(6, 2, "full")
    lr = GaussianMixture.from_low_rank(w, mu, f, dg)
    de = lr.to_dense()
    x = jnp.asarray(_points(6))
    # the mixture as a jit argument, and built inside jit (traced construction)
    assert _rel(jax.jit(lambda g, y: g.score(y))(lr, x), de.score(x)) < EXACT_RTOL
    built = jax.jit(lambda a, b, c, e: GaussianMixture.from_low_rank(a, b, c, e).log_prob(x))
    assert _rel(built(w, mu, f, dg), de.log_prob(x)) < EXACT_RTOL
    # grad of log_prob is the score
    g = jax.grad(lambda y: lr.log_prob(y))(x[0])
    assert _rel(g, de.score(x[0])) < EXACT_RTOL
    # vmap over sigma (noised and posterior mean) and over a batch of mixtures
    sig = jnp.array([0.2, 0.7])
    lp = jax.vmap(lambda s: lr.noised(1.0, s).log_prob(x))(sig)
    pm = jax.vmap(lambda s: posterior_mean(lr, x, 1.0, s))(sig)
    for i, s in enumerate([0.2, 0.7]):
        assert _rel(lp[i], de.noised(1.0, s).log_prob(x)) < EXACT_RTOL
        assert _rel(pm[i], posterior_mean(de, x, 1.0, s)) < EXACT_RTOL
    other = GaussianMixture.from_low_rank(w, mu + 1.0, 2.0 * f, dg)
    batch = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), lr, other)
    out = jax.vmap(lambda g: g.log_prob(x))(batch)
    assert _rel(out[1], other.to_dense().log_prob(x)) < EXACT_RTOL
    assert _rel(out[0], de.log_prob(x)) < EXACT_RTOL


# ---------------------------------------------------------------------------------------
# serialization
# ---------------------------------------------------------------------------------------
def test_json_round_trip(zeros_case, tmp_path):
    lr = zeros_case[0]
    text = to_json(lr)
    assert set(json.loads(text)) == {"weights", "means", "factors", "diag"}
    back = from_json(text)
    assert back.kind == "low_rank"
    for a, b in zip(jax.tree_util.tree_leaves(lr), jax.tree_util.tree_leaves(back), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-15, atol=0)
    assert back.zero_diag and back.rank_deficient
    path = tmp_path / "lr.json"
    path.write_text(text)
    assert from_json(path).kind == "low_rank"
    with pytest.raises(ValueError, match="lacks key"):
        from_json(json.dumps({k: v for k, v in json.loads(text).items() if k != "diag"}))


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
def _bad(**change):
    w, mu, f, dg = _params(6, 2, "full")
    args = {"weights": w, "means": mu, "factors": f, "diag": dg, **change}
    return lambda: GaussianMixture.from_low_rank(**args)


@pytest.mark.parametrize(
    "change, exc, pattern",
    [
        ({"factors": np.ones((3, 6))}, ValueError, r"factors must have shape \(K, D, r\)"),
        ({"factors": np.ones((2, 6, 2))}, ValueError, r"factors must have shape"),
        ({"factors": np.ones((3, 5, 2))}, ValueError, r"factors must have shape"),
        ({"factors": np.ones((3, 6, 0))}, ValueError, r"r >= 1"),
        ({"diag": np.ones((3, 5))}, ValueError, r"diag must have shape"),
        ({"diag": np.ones(2)}, ValueError, r"diag must have shape"),
        ({"diag": -np.ones(3)}, ValueError, r"diag\[0\] must be >= 0 \(component 0"),
        ({"factors": np.full((3, 6, 2), np.nan)}, ValueError, r"factors must be finite"),
        ({"diag": np.array([1.0, np.inf, 1.0])}, ValueError, r"diag must be finite"),
        ({"factors": "abc"}, TypeError, r"factors"),
        ({"diag": [True, False, True]}, TypeError, r"diag"),
        ({"weights": [0.5, 0.6, -0.1]}, ValueError, r"weights"),
        ({"means": np.ones((3, 6, 1))}, ValueError, r"means must have shape"),
    ],
)
def test_bad_input_names_the_argument(change, exc, pattern):
    with pytest.raises(exc, match=pattern):
        _bad(**change)()


def test_bad_input_negative_entry_names_component_and_entry():
    w, mu, f, dg = _params(6, 2, "full")
    dg[2, 4] = -0.1
    with pytest.raises(ValueError, match=r"diag\[2\] must be >= 0 \(component 2: entry 4"):
        GaussianMixture.from_low_rank(w, mu, f, dg)
    # rounding-size negatives (within RANK_RTOL of the largest variance) are zero
    dg[2, 4] = -1e-15
    gm = GaussianMixture.from_low_rank(w, mu, f, dg)
    assert float(gm.diag[2, 4]) == 0.0


def test_bad_input_of_the_methods(case):
    lr = case[0]
    d, r = lr.dim, lr.rank
    with pytest.raises(ValueError, match=r"x"):
        lr.log_prob(np.ones((2, d + 1)))
    with pytest.raises(ValueError, match=r"x must be finite"):
        lr.score(np.full((2, d), np.nan))
    with pytest.raises(ValueError, match=r"v must have the shape of x"):
        lr.hessian_vector_product(np.ones((2, d)), np.ones((3, d)))
    with pytest.raises(ValueError, match=r"z must have shape \(B, latent_dim\)"):
        lr.component_points(np.zeros(2, dtype=int), np.ones((2, d)))
    with pytest.raises(ValueError, match=r"comp"):
        lr.component_points(np.array([0, 3]), np.ones((2, r + d)))
    with pytest.raises(ValueError, match=r"sigma must be > 0"):
        lr.noised(1.0, 0.0)


def test_dense_views_refused_above_the_limit():
    d = DENSE_VIEW_MAX_DIM + 1
    gm = GaussianMixture.from_low_rank([1.0], np.zeros((1, d)), np.ones((1, d, 1)), [0.5])
    for what in ("covs", "eigvals", "precisions"):
        with pytest.raises(ValueError, match="DENSE_VIEW_MAX_DIM"):
            getattr(gm, what)
    x = np.zeros((1, d))
    with pytest.raises(ValueError, match="DENSE_VIEW_MAX_DIM"):
        gm.hessian(x)
    with pytest.raises(ValueError, match="DENSE_VIEW_MAX_DIM"):
        posterior_cov(gm, x, 1.0, 0.5)
    # the O(KDr) methods work at this D; the single component's closed form is exact
    lp = float(gm.log_prob(x)[0])
    # det(I/2 + 11ᵀ) = 2^-d (1 + 2d), Mahalanobis term 0
    want = -0.5 * (d * np.log(2 * np.pi) - d * np.log(2.0) + np.log1p(2.0 * d))
    assert abs(lp - want) < EXACT_RTOL * abs(want)
    # posterior trace of one Gaussian: sigma^2 tr(Σ S⁻¹) with eigenvalues 0.5 (d - 1 times)
    # and 0.5 + d
    tr = float(posterior_cov_trace(gm, x, 1.0, 0.5)[0])
    want = (d - 1) * 0.5 * 0.25 / 0.75 + (0.5 + d) * 0.25 / (0.75 + d)
    assert abs(tr - want) < EXACT_RTOL * want


# ---------------------------------------------------------------------------------------
# the expectation engine's Monte Carlo rule on a low-rank law
# ---------------------------------------------------------------------------------------
def test_monte_carlo_engine_low_rank_equals_dense():
    w, mu, f, dg = _params(20, 3, "full")
    lr = GaussianMixture.from_low_rank(w, 0.3 * mu, f, dg)  # overlapping components
    de = lr.to_dense()
    opts = {"method": "monte_carlo", "key": jax.random.PRNGKey(7), "num_samples": 2000}
    a, s = 0.8, 0.6
    est = {g.kind: variance.mmse(g, a, s, **opts) for g in (lr, de)}
    e_lr, e_de = est["low_rank"], est["dense"]
    assert e_lr.method == "monte_carlo" and e_lr.stderr > 0
    # independent draws (r + D latent coordinates against D): a two-sample z bound
    assert abs(e_lr.value - e_de.value) < Z_BOUND * np.hypot(e_lr.stderr, e_de.stderr)
    # the derived quantities use the same estimate, scaled
    deff = variance.effective_dimension(lr, a, s, **opts)
    assert abs(deff.value - e_lr.value * (a / s) ** 2) < 1e-12 * deff.value
    irr = variance.irreducible_variance(lr, a, s, **opts)
    assert abs(irr.value - deff.value / s**2) < 1e-12 * irr.value
    c = optimal.homoskedastic_multiplier(lr, a, s, **opts)
    assert abs(c.value - 20 / deff.value) < 1e-12 * c.value
    c_de = optimal.homoskedastic_multiplier(de, a, s, **opts)
    assert abs(c.value - c_de.value) < Z_BOUND * np.hypot(c.stderr, c_de.stderr)
