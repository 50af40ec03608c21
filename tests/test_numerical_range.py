"""The valid numerical domain of DESIGN.md: sigma from 1e-4 to 1e4 (VE alpha = 1 and VP
alpha), |x| up to 1e3, K up to 256, D up to 64, with no NaN or inf on the exact paths, in
float64, and without the package flipping JAX's global configuration on import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.mixture import posterior_cov, posterior_mean

# VE-equivalent noise levels sigma/alpha spanning the valid domain.
SIGMAS = (1e-4, 1e-2, 1.0, 1e2, 1e4)

# eigvalsh backward error ~ D eps ||C||: with D = 64 a PSD matrix can show -1e-14 ||C||.
EIGH_RTOL = 1e-12


def _pairs():
    """(alpha, sigma) pairs: VE (alpha = 1) and VP (alpha^2 + sigma^2 = 1) at each level."""
    out = []
    for s in SIGMAS:
        out.append((1.0, s))
        lam = -2.0 * np.log(s)  # VP with sigma/alpha = s
        out.append((float(np.sqrt(1 / (1 + np.exp(-lam)))), float(np.sqrt(1 / (1 + np.exp(lam))))))
    return out


@jax.jit
def _everything(gm, x, alpha, sigma):
    pt = gm.noised(alpha, sigma)
    s, h = pt.score_and_hessian(x)
    return {
        "log_prob": pt.log_prob(x),
        "score": s,
        "hessian": h,
        "responsibilities": pt.responsibilities(x),
        "posterior_mean": posterior_mean(gm, x, alpha, sigma),
        "posterior_cov": posterior_cov(gm, x, alpha, sigma),
        "posterior_cov_trace": dsm.posterior_cov_trace(gm, x, alpha, sigma),
        "clean_log_prob": gm.log_prob(x),
        "clean_hessian": gm.hessian(x),
    }


def _points(d, rng):
    """Near a mode, at the origin, and far away (|x| = 1e3) along axes and a diagonal."""
    far_axis = np.zeros(d)
    far_axis[0] = 1e3
    far_diag = np.full(d, 1e3 / np.sqrt(d))
    return np.stack([rng.standard_normal(d), np.zeros(d), far_axis, -far_diag, far_diag])


def _check_all_finite(out, k, d, n):
    for name, v in out.items():
        v = np.asarray(v)
        assert v.dtype == np.float64, name
        assert np.all(np.isfinite(v)), f"{name} has NaN/inf"
    np.testing.assert_allclose(np.asarray(out["responsibilities"]).sum(-1), 1.0, rtol=1e-12)
    assert out["hessian"].shape == (n, d, d)
    assert out["responsibilities"].shape == (n, k)
    cov = np.asarray(out["posterior_cov"])
    ev = np.linalg.eigvalsh(cov)
    assert np.all(ev.min(-1) >= -EIGH_RTOL * ev.max(-1))
    # the Hessian of a Gaussian mixture's log-density is >= -max precision (bounded below)
    assert np.all(np.diagonal(np.asarray(out["hessian"]), axis1=-2, axis2=-1) < np.inf)


@pytest.mark.parametrize(
    "k,d",
    [(3, 2), (256, 64)],
    ids=["small", "K256-D64"],
)
def test_no_nan_across_the_domain(k, d):
    gm = dsm.random_anisotropic(seed=k + d, num_components=k, dim=d, std_range=(0.05, 1.0))
    x = jnp.asarray(_points(d, np.random.default_rng(0)))
    for alpha, sigma in _pairs():
        out = _everything(gm, x, alpha, sigma)
        _check_all_finite(out, k, d, x.shape[0])


def test_limits_at_the_ends_of_the_domain():
    """Values, not just finiteness: at sigma/alpha = 1e-4 the posterior mean is x_t/alpha up
    to O(sigma^2/alpha^2 |score|); at 1e4 it is the prior mean and the posterior covariance
    the prior covariance; far points get the score of their dominant component."""
    gm = dsm.random_anisotropic(seed=3, num_components=3, dim=2)
    x = jnp.asarray([[0.1, -0.2], [1e3, 0.0]])
    for alpha, sigma in _pairs():
        tilde = sigma / alpha
        out = _everything(gm, x, alpha, sigma)
        if tilde == 1e4:
            np.testing.assert_allclose(
                out["posterior_mean"], np.broadcast_to(gm.mean(), (2, 2)), rtol=0, atol=1e-4
            )
            np.testing.assert_allclose(
                out["posterior_cov"], np.broadcast_to(gm.covariance(), (2, 2, 2)), rtol=1e-4
            )
        if tilde == 1e-4:
            # a point near the data: E[x0|x_t] ~ x_t/alpha (posterior width ~ sigma/alpha)
            np.testing.assert_allclose(out["posterior_mean"][0], x[0] / alpha, atol=1e-6)
    # far from every mode the score is that of the dominant component, -P_k (x - mu_k)
    far = jnp.asarray([[1e3, -1e3]])
    k = int(np.argmax(np.asarray(gm.responsibilities(far))[0]))
    ref = -np.asarray(gm.precisions[k]) @ (np.asarray(far[0]) - np.asarray(gm.means[k]))
    np.testing.assert_allclose(np.asarray(gm.score(far))[0], ref, rtol=1e-10)
    np.testing.assert_allclose(
        np.asarray(gm.hessian(far))[0], -np.asarray(gm.precisions[k]), rtol=1e-8, atol=1e-8
    )


def test_extreme_weights_and_tiny_variances():
    """Weights down to 1e-300 and component variances of 1e-8: log space keeps it finite."""
    w = np.array([1e-300, 1.0 - 1e-300 - 1e-12, 1e-12])
    gm = dsm.GaussianMixture(w, [[0.0], [1.0], [-1.0]], [1e-8, 1.0, 1e-8])
    x = jnp.asarray([[0.0], [1e3], [-1e3], [1e-5]])
    for alpha, sigma in _pairs():
        out = _everything(gm, x, alpha, sigma)
        _check_all_finite(out, 3, 1, 4)


def test_import_does_not_flip_x64_and_enable_x64_does():
    code = textwrap.dedent(
        """
        import jax
        before = bool(jax.config.jax_enable_x64)
        import dsmtheory, dsmtheory.mixture, dsmtheory.schedules
        assert bool(jax.config.jax_enable_x64) == before == False, "import flipped x64"
        assert not dsmtheory.x64_enabled()
        dsmtheory.enable_x64()
        assert jax.config.jax_enable_x64 and dsmtheory.x64_enabled()
        import jax.numpy as jnp
        gm = dsmtheory.bimodal_1d()
        assert gm.means.dtype == jnp.float64
        assert gm.noised(1.0, 0.1).hessian(jnp.zeros(1)).dtype == jnp.float64
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_exact_paths_are_float64_here():
    gm = dsm.ring()
    x = jnp.zeros((3, 2))
    assert gm.score(x).dtype == jnp.float64
    assert posterior_cov(gm, x, 0.6, 0.8).dtype == jnp.float64
    assert dsm.schedules.get("vp_linear").lam(jnp.asarray([0.5])).dtype == jnp.float64


@pytest.mark.parametrize("dim", [2, 8])  # the written-out rotations and the dot path
def test_mahalanobis_accurate_at_condition_number_1e8(dim):
    """Component log-densities stay accurate to rounding for ill-conditioned covariances
    (eigenvalues 1e-8 and 1) at offsets along the large eigen-directions. The reference is
    sum z^2/e in long double from the same eigenbasis; the precision form d^T S^{-1} d
    would be off by ~1e-9 relative here (eps x condition number)."""
    rng = np.random.default_rng(dim)
    k = 3
    q = np.stack([np.linalg.qr(rng.standard_normal((dim, dim)))[0] for _ in range(k)])
    e = np.ones(dim)
    e[0] = 1e-8
    covs = np.einsum("kij,j,klj->kil", q, e, q)
    mu = rng.standard_normal((k, dim))
    gm = dsm.GaussianMixture(np.full(k, 1.0 / k), mu, covs)
    # points: mean of component 0 plus an offset in its large-eigenvalue subspace
    u = np.asarray(gm.eigvecs[0])
    big = np.asarray(gm.eigvals[0]) > 1e-4
    x = mu[0] + (0.5 * rng.standard_normal((16, int(big.sum())))) @ u[:, big].T
    kernel = jax.jit(lambda g, y: g._block_terms(y)[0])  # the score / Hessian kernel
    for comp in (np.asarray(gm.component_log_prob(x))[:, 0], np.asarray(kernel(gm, x))[:, 0]):
        _check_log_density(comp, x, mu[0], gm, k, dim)
    # and the score of score_and_hessian is the score of score() (the same arithmetic;
    # separately compiled, XLA may contract a multiply-add differently: ulps of the scale)
    s_only = np.asarray(gm.score(x))
    s_both = np.asarray(gm.score_and_hessian(x)[0])
    assert np.max(np.abs(s_only - s_both)) <= 1e-14 * np.max(np.abs(s_only))


def _check_log_density(comp, x, mu0, gm, k, dim):
    """Component 0's log-density against a long-double evaluation in its eigenbasis."""
    u = np.asarray(gm.eigvecs[0])
    d = (x - mu0).astype(np.longdouble)
    z = d @ u.astype(np.longdouble)
    maha = np.sum(z * z / np.asarray(gm.eigvals[0]).astype(np.longdouble), axis=1)
    logdet = np.sum(np.log(np.asarray(gm.eigvals[0]).astype(np.longdouble)))
    ref = np.log(np.longdouble(1.0 / k)) - 0.5 * (dim * np.log(2 * np.pi) + logdet + maha)
    # The log-density is a sum of terms up to |log det| / 2 ~ 9; rounding in float64 is a
    # few ulps of that scale (the reference's own rounding, long double, is ~1e-19).
    scale = 0.5 * (abs(float(logdet)) + dim * np.log(2 * np.pi) + maha.astype(np.float64))
    err = np.abs(comp - ref.astype(np.float64))
    assert np.all(err <= 1e-13 * scale), np.max(err / scale)
