r"""Gaussian mixtures and their exact closed forms under noise (FORMULAS.md §4).

A mixture $p_0=\sum_k\pi_k N(\mu_k,\Sigma_k)$ is stored by the eigendecomposition
$\Sigma_k=U_k\,\mathrm{diag}(e_k)\,U_k^\top$ of each component covariance. Noising
$x_t=\alpha x_0+\sigma\varepsilon$ keeps the eigenvectors and maps the eigenvalues to
$\alpha^2 e_k+\sigma^2$, so every noised mixture, its precisions, log-determinants and the
Tweedie posterior moments are exact and cheap for any $(\alpha,\sigma)$, with no further
matrix factorization.

Everything is computed in log space: component log-densities, then log-sum-exp for
$\log p$ and log-softmax for the responsibilities.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np

from ._config import warn_if_float32
from ._numerics import LOG_2PI
from ._validation import (
    as_float_array,
    check_count,
    check_finite,
    check_last_dim,
    check_positive,
    is_concrete,
)

__all__ = [
    "GaussianMixture",
    "check_mixture",
    "posterior_mean",
    "posterior_cov",
    "posterior_cov_trace",
    "posterior_components",
    "ring",
    "bimodal_1d",
    "grid_2d",
    "random_anisotropic",
    "single_gaussian",
    "from_json",
    "to_json",
]

_WEIGHT_TOL = 1e-8
_SYM_TOL = 1e-10


@jax.tree_util.register_pytree_node_class
class GaussianMixture:
    r"""An immutable Gaussian mixture $\sum_k \pi_k N(\mu_k, \Sigma_k)$ in $D$ dimensions.

    A JAX pytree: it passes through ``jit``, ``vmap`` and ``grad`` (validation runs only on
    concrete inputs).

    Args:
        weights: ``(K,)`` mixture weights, each > 0, summing to 1 (within 1e-8).
        means: ``(K, D)`` component means.
        covs: ``(K, D, D)`` full, ``(K, D)`` diagonal or ``(K,)`` isotropic covariances; each
            full covariance must be symmetric positive definite.

    Raises:
        ValueError: naming the argument (and the component) that is wrong.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> gm = dsm.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [0.0625, 0.0625])
        >>> float(gm.noised(1.0, 0.1).score(jnp.array([0.0]))[0])
        0.0
    """

    __slots__ = ("log_weights", "means", "eigvals", "eigvecs", "diagonal")

    def __init__(self, weights, means, covs):
        if not is_concrete((weights, means, covs)):
            # Traced construction (inside jit/vmap): no checks possible, factorize in JAX.
            means = jnp.asarray(means)
            covs = jnp.asarray(covs)
            k, d = means.shape
            full = _expand_covs_jnp(covs, k, d)
            e, u = jnp.linalg.eigh(full)
            self._set(jnp.log(jnp.asarray(weights)), means, e, u, False)
            return
        warn_if_float32("GaussianMixture")
        w, mu, e, u, diagonal = _validate(weights, means, covs)
        self._set(jnp.asarray(np.log(w)), jnp.asarray(mu), jnp.asarray(e), jnp.asarray(u), diagonal)

    def _set(self, log_weights, means, eigvals, eigvecs, diagonal):
        object.__setattr__(self, "log_weights", log_weights)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "eigvals", eigvals)
        object.__setattr__(self, "eigvecs", eigvecs)
        object.__setattr__(self, "diagonal", bool(diagonal))

    def __setattr__(self, name, value):
        raise AttributeError("GaussianMixture is immutable")

    # -- pytree -----------------------------------------------------------------------
    def tree_flatten(self):
        return (self.log_weights, self.means, self.eigvals, self.eigvecs), (self.diagonal,)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj._set(*children, aux[0])
        return obj

    @classmethod
    def from_eig(cls, weights, means, eigvals, eigvecs=None) -> GaussianMixture:
        """Build from component eigendecompositions ``Σ_k = U_k diag(e_k) U_kᵀ`` (no checks
        beyond shapes and positivity). ``eigvecs=None`` means axis-aligned components."""
        means = jnp.asarray(means)
        eigvals = jnp.asarray(eigvals)
        if is_concrete(eigvals):
            check_positive(eigvals, "eigvals")
        diagonal = eigvecs is None
        if diagonal:
            k, d = means.shape
            eigvecs = jnp.broadcast_to(jnp.eye(d, dtype=means.dtype), (k, d, d))
        obj = object.__new__(cls)
        obj._set(jnp.log(jnp.asarray(weights)), means, eigvals, jnp.asarray(eigvecs), diagonal)
        return obj

    # -- basic properties ---------------------------------------------------------------
    @property
    def dim(self) -> int:
        """The dimension D."""
        return self.means.shape[-1]

    @property
    def num_components(self) -> int:
        """The number of components K."""
        return self.means.shape[0]

    @property
    def weights(self) -> jax.Array:
        """``(K,)`` mixture weights π."""
        return jnp.exp(self.log_weights)

    @property
    def covs(self) -> jax.Array:
        """``(K, D, D)`` component covariances ``U diag(e) Uᵀ`` (exactly symmetric)."""
        return _sym(jnp.einsum("kij,kj,klj->kil", self.eigvecs, self.eigvals, self.eigvecs))

    @property
    def precisions(self) -> jax.Array:
        """``(K, D, D)`` component precisions ``Σ_k⁻¹`` (exactly symmetric)."""
        return _sym(jnp.einsum("kij,kj,klj->kil", self.eigvecs, 1.0 / self.eigvals, self.eigvecs))

    def mean(self) -> jax.Array:
        r"""``(D,)`` mean of the whole mixture, $\sum_k\pi_k\mu_k$."""
        return self.weights @ self.means

    def covariance(self) -> jax.Array:
        r"""``(D, D)`` covariance of the whole mixture,
        $\sum_k\pi_k(\Sigma_k+\mu_k\mu_k^\top)-\bar\mu\bar\mu^\top$."""
        mbar = self.mean()
        dm = self.means - mbar
        return jnp.einsum("k,kij->ij", self.weights, self.covs) + jnp.einsum(
            "k,ki,kj->ij", self.weights, dm, dm
        )

    def __repr__(self) -> str:
        kind = "axis-aligned" if self.diagonal else "full"
        return f"GaussianMixture(K={self.num_components}, D={self.dim}, {kind} covariances)"

    # -- noising ------------------------------------------------------------------------
    def noised(self, alpha, sigma) -> GaussianMixture:
        r"""The law of $x_t=\alpha x_0+\sigma\varepsilon$: means $\alpha\mu_k$, covariances
        $S_k=\alpha^2\Sigma_k+\sigma^2 I$ (same eigenvectors, eigenvalues $\alpha^2e+\sigma^2$).

        Args:
            alpha: scalar α > 0 (1 for VE).
            sigma: scalar σ > 0.
        """
        _check_alpha_sigma(alpha, sigma)
        alpha = jnp.asarray(alpha, dtype=self.means.dtype)
        sigma = jnp.asarray(sigma, dtype=self.means.dtype)
        return _jit_noised(self, alpha, sigma)

    def _noised_impl(self, alpha, sigma):
        return GaussianMixture.tree_unflatten(
            (self.diagonal,),
            (
                self.log_weights,
                alpha * self.means,
                alpha**2 * self.eigvals + sigma**2,
                self.eigvecs,
            ),
        )

    # -- per-point closed forms ----------------------------------------------------------
    def _rotate_in(self, d):
        """``(..., K, D)`` → coordinates in each component's eigenbasis, ``U_kᵀ d_k``."""
        if self.diagonal:
            return d
        return jnp.einsum("...kd,kde->...ke", d, self.eigvecs)

    def _rotate_out(self, z):
        """Inverse of :meth:`_rotate_in`: ``U_k z_k``."""
        if self.diagonal:
            return z
        return jnp.einsum("kde,...ke->...kd", self.eigvecs, z)

    def check_points(self, x, name: str = "x") -> jax.Array:
        """``x`` as a JAX array of points ``(..., D)`` of this mixture's dimension; raises
        TypeError/ValueError naming ``name`` if it is not real, finite and ``(..., D)``
        (checks run on concrete values only)."""
        if is_concrete(x):
            arr = as_float_array(x, name)
            check_last_dim(arr, self.dim, name)
            check_finite(arr, name)
            x = jnp.asarray(arr, dtype=self.means.dtype)
        return jnp.asarray(x)

    _check_x = check_points

    # Public per-point methods validate concrete input, then call one jitted kernel per
    # method (module level, below): eager calls compile once per input shape instead of
    # dispatching every primitive separately, and calls under an outer jit inline them.
    def component_log_prob(self, x) -> jax.Array:
        r"""``(..., K)``: $\log\pi_k+\log N(x;\mu_k,\Sigma_k)$."""
        return _jit_component_log_prob(self, self._check_x(x))

    def log_prob(self, x) -> jax.Array:
        r"""Log-density $\log p(x)$ by log-sum-exp over components. ``(..., D)`` → ``(...)``."""
        return _jit_log_prob(self, self._check_x(x))

    def responsibilities(self, x) -> jax.Array:
        r"""Posterior component probabilities $r_k(x)=\pi_kN_k(x)/p(x)$ by log-softmax.
        ``(..., D)`` → ``(..., K)``."""
        return _jit_responsibilities(self, self._check_x(x))

    def score(self, x) -> jax.Array:
        r"""The score $\nabla\log p(x)=\sum_k r_k g_k$ with $g_k=-\Sigma_k^{-1}(x-\mu_k)$.
        ``(..., D)`` → ``(..., D)``."""
        return _jit_score(self, self._check_x(x))

    def score_and_hessian(self, x) -> tuple[jax.Array, jax.Array]:
        r"""Score and Hessian of $\log p$ in one pass.

        $H=\sum_k r_k (g_k-s)(g_k-s)^\top-\sum_k r_k\Sigma_k^{-1}$, the centred form of
        $\sum_k r_k(g_kg_k^\top-\Sigma_k^{-1})-ss^\top$ (no cancellation of large terms far
        from the modes). Returns ``(..., D)`` and ``(..., D, D)``; the Hessian is exactly
        symmetric.
        """
        return _jit_score_and_hessian(self, self._check_x(x))

    def hessian(self, x) -> jax.Array:
        r"""Hessian $\nabla^2\log p(x)$, ``(..., D)`` → ``(..., D, D)``
        (see :meth:`score_and_hessian`)."""
        return self.score_and_hessian(x)[1]

    # -- kernels (no validation; traced under jit) ------------------------------------------
    # log_prob, responsibilities and component_log_prob keep plain reductions and einsum
    # rotations (blocked all the same): these are what users differentiate, and autodiff
    # of the written-out sums of _block_terms costs far more time and memory (jax.hessian
    # of log_prob at 1e5 points: 10.7 s and 10.7 GB instead of 2.8 s and 2.6 GB).
    def _components(self, x):
        """Component log-densities ``(..., K)`` (eigenbasis form, as in _block_terms)."""
        d = x[..., None, :] - self.means
        z = self._rotate_in(d)
        maha = jnp.sum(z * z / self.eigvals, axis=-1)
        logdet = jnp.sum(jnp.log(self.eigvals), axis=-1)
        return self.log_weights - 0.5 * (self.dim * LOG_2PI + logdet + maha)

    def _component_log_prob_impl(self, x, block=None):
        return self._blocks(lambda xb: (self._components(xb),), x, block)[0]

    def _log_prob_impl(self, x, block=None):
        fn = lambda xb: (jax.nn.logsumexp(self._components(xb), axis=-1),)  # noqa: E731
        return self._blocks(fn, x, block)[0]

    def _responsibilities_impl(self, x, block=None):
        fn = lambda xb: (jax.nn.softmax(self._components(xb), axis=-1),)  # noqa: E731
        return self._blocks(fn, x, block)[0]

    def _score_impl(self, x, block=None):
        return self._blocks(self._score_block, x, block)[0]

    def _blocks(self, fn, x, block: int | None = None):
        """Apply the per-point kernel ``fn`` (``(B, D)`` → tuple of ``(B, ...)``) to the
        points ``x`` of shape ``(..., D)``, a block of rows at a time; reshape to the batch.

        The (N, K, D) intermediates are what cost time at large N: written whole, they leave
        the cache (and fresh pages fault in on every call). So the points are taken in blocks
        of ``block`` rows whose intermediates stay in cache, by a fori_loop that writes each
        block's rows into the outputs; the last block is shifted back to end at row N (its
        overlap is recomputed, bit for bit the same). See docs/mixture.md#performance.
        """
        batch = x.shape[:-1]
        xf = x.reshape(-1, self.dim)
        n = xf.shape[0]
        if block is None:
            block = _block_size(self.num_components, self.dim)
        if n <= block:
            outs = fn(xf)
        else:
            shapes = jax.eval_shape(fn, jax.ShapeDtypeStruct((block, self.dim), xf.dtype))

            def body(i, outs):
                start = jnp.minimum(i * block, n - block)
                res = fn(jax.lax.dynamic_slice_in_dim(xf, start, block))
                return tuple(
                    jax.lax.dynamic_update_slice_in_dim(o, r, start, 0)
                    for o, r in zip(outs, res, strict=True)
                )

            init = tuple(jnp.zeros((n, *sd.shape[1:]), sd.dtype) for sd in shapes)
            outs = jax.lax.fori_loop(0, -(-n // block), body, init)
        return tuple(o.reshape(*batch, *o.shape[1:]) for o in outs)

    def _score_and_hessian_impl(self, x, block: int | None = None):
        return self._blocks(self._score_and_hessian_block, x, block)

    def _block_terms(self, x):
        """Per block of points ``(B, D)``: component log-densities and responsibilities
        ``(B, K)``, component scores ``g_k = -S_k⁻¹ d_k`` ``(B, K, D)``."""
        # g_k is computed from d_k = x - mu_k itself (not S⁻¹mu_k - S⁻¹x, which would lose
        # digits far from the origin), in each component's eigenbasis: z = Uᵀd, the
        # Mahalanobis term sum z²/e (a sum of non-negative terms, accurate to rounding
        # however ill-conditioned S_k is), g = -U(z/e). For D >= 7 the rotations are
        # (B, D) @ (D, D) products per component: a dot, which XLA computes once, where an
        # elementwise form would be fused into, and recomputed by, each of its consumers;
        # for D <= 6 the elementwise form is cheaper. For small K and D the sums over
        # components and coordinates are written out term by term: XLA on CPU fuses those
        # into elementwise loops, several times faster than its reductions over these
        # short axes.
        num_k, dim = self.num_components, self.dim
        unroll = num_k <= _UNROLL_MAX_COMPONENTS and dim <= _UNROLL_MAX_DIM
        if self.diagonal or dim <= _ELEMENTWISE_MAX_DIM:
            d = x[:, None, :] - self.means  # (B, K, D)
            z = d if self.diagonal else self._rotate_terms(d, transpose=True)
            ze = z / self.eigvals
            g = -(ze if self.diagonal else self._rotate_terms(ze, transpose=False))
        else:
            d_kb = x[None, :, :] - self.means[:, None, :]  # (K, B, D)
            z_kb = jnp.einsum("kbj,kje->kbe", d_kb, self.eigvecs)
            ze_kb = z_kb / self.eigvals[:, None, :]
            g = -jnp.swapaxes(jnp.einsum("kbe,kde->kbd", ze_kb, self.eigvecs), 0, 1)
            z, ze = jnp.swapaxes(z_kb, 0, 1), jnp.swapaxes(ze_kb, 0, 1)
        zz = z * ze
        maha = _sum_terms([zz[..., e] for e in range(dim)]) if unroll else zz.sum(-1)
        logdet = jnp.sum(jnp.log(self.eigvals), axis=-1)
        comp = self.log_weights - 0.5 * (dim * LOG_2PI + logdet + maha)  # (B, K)
        if unroll:
            top = comp[:, 0]
            for k in range(1, num_k):
                top = jnp.maximum(top, comp[:, k])
            ex = jnp.exp(comp - top[:, None])
            r = ex / _sum_terms([ex[:, k] for k in range(num_k)])[:, None]
        else:
            r = jax.nn.softmax(comp, axis=-1)
        return comp, r, g

    def _rotate_terms(self, v, transpose: bool):
        """``U_kᵀ v_k`` (``transpose``) or ``U_k v_k`` for ``(B, K, D)``, written out over
        D (used for D <= 6)."""
        u = self.eigvecs if transpose else jnp.swapaxes(self.eigvecs, -1, -2)
        out = v[..., 0, None] * u[:, 0, :]
        for j in range(1, self.dim):
            out = out + v[..., j, None] * u[:, j, :]
        return out

    def _score_block(self, x):
        _, r, g = self._block_terms(x)
        return (jnp.einsum("nk,nkd->nd", r, g),)

    def _score_and_hessian_block(self, x):
        """Score and Hessian of ``(B, D)`` points (one block; see :meth:`_blocks`)."""
        num_k, dim = self.num_components, self.dim
        _, r, g = self._block_terms(x)
        s = jnp.einsum("nk,nkd->nd", r, g)
        c = jnp.sqrt(r)[..., None] * (g - s[:, None, :])  # (B, K, D)
        # Both halves of the Hessian are exactly equal: the outer products are the same
        # products summed in the same order, and the within term is gathered from one
        # triangle of the precisions.
        prec = self.precisions  # (K, D, D), exactly symmetric
        rows, cols = np.triu_indices(dim)
        tri = np.zeros((dim, dim), dtype=np.int32)
        tri[rows, cols] = tri[cols, rows] = np.arange(rows.size)
        within = (r @ prec[:, rows, cols])[:, tri]  # (B, D, D)
        if num_k <= _UNROLL_MAX_COMPONENTS and dim <= _UNROLL_MAX_DIM:
            outer = _sum_terms([c[:, k, :, None] * c[:, k, None, :] for k in range(num_k)])
        else:
            outer = _sym(jnp.einsum("nki,nkj->nij", c, c))
        return s, outer - within

    # -- sampling -----------------------------------------------------------------------
    def sample(self, key, n: int) -> jax.Array:
        """Draw ``n`` samples, shape ``(n, D)``, with a JAX PRNG ``key``."""
        return _jit_sample(self, key, check_count(n, "n"))

    def _sample_impl(self, key, n):
        kc, ke = jax.random.split(key)
        comps = jax.random.categorical(kc, self.log_weights, shape=(n,))
        eps = jax.random.normal(ke, (n, self.dim), dtype=self.means.dtype)
        z = jnp.sqrt(self.eigvals[comps]) * eps
        if not self.diagonal:
            z = jnp.einsum("nde,ne->nd", self.eigvecs[comps], z)
        return self.means[comps] + z

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-Python description ``{"weights", "means", "covs"}`` (full covariances)."""
        return {
            "weights": np.asarray(self.weights).tolist(),
            "means": np.asarray(self.means).tolist(),
            "covs": np.asarray(self.covs).tolist(),
        }


def check_mixture(gm, name: str = "gm") -> GaussianMixture:
    """Raise TypeError unless ``gm`` is a :class:`GaussianMixture`; return it."""
    if not isinstance(gm, GaussianMixture):
        raise TypeError(f"{name} must be a GaussianMixture, got {type(gm).__name__}")
    return gm


# ---------------------------------------------------------------------------------------
# Tweedie posterior moments
# ---------------------------------------------------------------------------------------
def _posterior_inputs(gm: GaussianMixture, x_t, alpha, sigma):
    """Validate and convert the posterior functions' arguments."""
    _check_alpha_sigma(alpha, sigma)
    x_t = gm._check_x(x_t, "x_t")
    alpha = jnp.asarray(alpha, dtype=gm.means.dtype)
    sigma = jnp.asarray(sigma, dtype=gm.means.dtype)
    return x_t, alpha, sigma


def _posterior_parts(gm: GaussianMixture, x_t, alpha, sigma):
    """Responsibilities (..., K), component posterior means (..., K, D) and component
    posterior covariance eigenvalues (K, D) of x0 | x_t (no validation)."""
    et = alpha**2 * gm.eigvals + sigma**2  # eigenvalues of S_k
    d = x_t[..., None, :] - alpha * gm.means
    z = gm._rotate_in(d)
    maha = jnp.sum(z * z / et, axis=-1)
    comp = gm.log_weights - 0.5 * (gm.dim * LOG_2PI + jnp.sum(jnp.log(et), -1) + maha)
    r = jax.nn.softmax(comp, axis=-1)
    # m_k = mu_k + alpha Σ_k S_k^{-1} d_k ; V_k = Σ_k - α² Σ_k S_k⁻¹ Σ_k = U diag(e σ²/e_t) Uᵀ
    m = gm.means + alpha * gm._rotate_out(gm.eigvals / et * z)
    v = gm.eigvals * sigma**2 / et
    return r, m, v


def posterior_components(gm: GaussianMixture, x_t, alpha, sigma):
    r"""The posterior of $x_0$ given $x_t$ as a mixture: $x_0\mid x_t\sim\sum_kr_k(x_t)\,
    N(m_k(x_t), V_k)$ with responsibilities $r_k$ under the noised mixture, component means
    $m_k=\mu_k+\alpha\Sigma_kS_k^{-1}(x_t-\alpha\mu_k)$ and covariances
    $V_k=\Sigma_k-\alpha^2\Sigma_kS_k^{-1}\Sigma_k=U_k\,\mathrm{diag}(v_k)\,U_k^\top$
    (FORMULAS.md §4).

    Args:
        gm: the clean mixture $p_0$.
        x_t: ``(..., D)`` noisy points.
        alpha, sigma: scalars > 0.

    Returns:
        ``(r, m, v)``: ``(..., K)``, ``(..., K, D)`` and the eigenvalues ``(K, D)`` of
        $V_k$ in the eigenbasis ``gm.eigvecs``.
    """
    x_t, alpha, sigma = _posterior_inputs(gm, x_t, alpha, sigma)
    return _posterior_parts(gm, x_t, alpha, sigma)


def _posterior_mean_block(gm, x_t, alpha, sigma):
    r, m, _ = _posterior_parts(gm, x_t, alpha, sigma)
    return (jnp.einsum("...k,...kd->...d", r, m),)


def _posterior_cov_block(gm, x_t, alpha, sigma):
    r, m, v = _posterior_parts(gm, x_t, alpha, sigma)
    mbar = jnp.einsum("...k,...kd->...d", r, m)
    c = jnp.sqrt(r)[..., None] * (m - mbar[..., None, :])
    between = jnp.einsum("...ki,...kj->...ij", c, c)
    vk = jnp.einsum("kij,kj,klj->kil", gm.eigvecs, v, gm.eigvecs)
    within = jnp.einsum("...k,kij->...ij", r, vk)
    return (_sym(within + between),)


def _posterior_cov_trace_block(gm, x_t, alpha, sigma):
    r, m, v = _posterior_parts(gm, x_t, alpha, sigma)
    mbar = jnp.einsum("...k,...kd->...d", r, m)
    spread = jnp.sum((m - mbar[..., None, :]) ** 2, axis=-1)
    return (jnp.einsum("...k,...k->...", r, jnp.sum(v, -1) + spread),)


def _posterior_kernel(block_fn):
    """Jitted kernel applying ``block_fn`` to cache-sized blocks of points (see
    ``GaussianMixture._blocks``)."""

    @jax.jit
    def kernel(gm, x_t, alpha, sigma):
        return gm._blocks(lambda xb: block_fn(gm, xb, alpha, sigma), x_t)[0]

    return kernel


_posterior_mean_kernel = _posterior_kernel(_posterior_mean_block)
_posterior_cov_kernel = _posterior_kernel(_posterior_cov_block)
_posterior_cov_trace_kernel = _posterior_kernel(_posterior_cov_trace_block)


def posterior_mean(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""Tweedie posterior mean $\mathbb E[x_0\mid x_t]=\sum_k r_k m_k$ for
    $x_t=\alpha x_0+\sigma\varepsilon$, $x_0\sim$ ``gm``, with the component posteriors
    $m_k=\mu_k+\alpha\Sigma_kS_k^{-1}(x_t-\alpha\mu_k)$, $S_k=\alpha^2\Sigma_k+\sigma^2I$
    and $r_k$ the responsibilities under the noised mixture (FORMULAS.md §4).

    Equals $(x_t+\sigma^2\nabla\log p_t(x_t))/\alpha$ (Tweedie), which the tests check.

    Args:
        gm: the clean mixture $p_0$.
        x_t: ``(..., D)`` noisy points.
        alpha: scalar α > 0.
        sigma: scalar σ > 0.

    Returns:
        ``(..., D)``.

    Raises:
        ValueError: for α ≤ 0, σ ≤ 0, non-scalar α/σ, or ``x_t`` of the wrong shape or
            non-finite.
    """
    return _posterior_mean_kernel(gm, *_posterior_inputs(gm, x_t, alpha, sigma))


def posterior_cov(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""Posterior covariance $\mathrm{Cov}[x_0\mid x_t]$ from the mixture posterior moments,
    $\sum_k r_k V_k+\sum_k r_k(m_k-\bar m)(m_k-\bar m)^\top$ with
    $V_k=\Sigma_k-\alpha^2\Sigma_kS_k^{-1}\Sigma_k$ — a sum of PSD terms, hence PSD in
    floating point too (DESIGN.md, Numerics). Equals
    $\frac{\sigma^2}{\alpha^2}(I+\sigma^2\nabla^2\log p_t)$ (FORMULAS.md §4), a form that
    loses PSD by cancellation at large σ.

    Args:
        gm: the clean mixture $p_0$.
        x_t: ``(..., D)`` noisy points.
        alpha: scalar α > 0.
        sigma: scalar σ > 0.

    Returns:
        ``(..., D, D)``, exactly symmetric.
    """
    return _posterior_cov_kernel(gm, *_posterior_inputs(gm, x_t, alpha, sigma))


def posterior_cov_trace(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""The trace of :func:`posterior_cov` without forming D×D matrices,
    $\mathrm{tr}\,\mathrm{Cov}[x_0\mid x_t]=\sum_k r_k\,\mathrm{tr}V_k+\sum_k r_k\|m_k-\bar m\|^2$.
    ``(..., D)`` → ``(...)``."""
    return _posterior_cov_trace_kernel(gm, *_posterior_inputs(gm, x_t, alpha, sigma))


# ---------------------------------------------------------------------------------------
# Standard test mixtures
# ---------------------------------------------------------------------------------------
def single_gaussian(mean, std: float) -> GaussianMixture:
    """One isotropic Gaussian ``N(mean, std² I)`` as a K = 1 mixture."""
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    check_positive(std, "std")
    return GaussianMixture([1.0], mean[None, :], [float(std) ** 2])


def bimodal_1d(separation: float = 4.0, std: float = 0.25, weight: float = 0.5) -> GaussianMixture:
    """1-D bimodal: modes at ±separation/2 with standard deviation ``std``; ``weight`` on the
    left mode. The default (±2, std 0.25) is the mixture of FORMULAS.md §4's c* table."""
    check_positive(separation, "separation")
    check_positive(std, "std")
    if not 0.0 < weight < 1.0:
        raise ValueError(f"weight must be in (0, 1), got {weight!r}")
    h = separation / 2.0
    return GaussianMixture([weight, 1.0 - weight], [[-h], [h]], [std**2, std**2])


def ring(num_modes: int = 8, radius: float = 2.0, std: float = 0.25) -> GaussianMixture:
    """2-D ring: ``num_modes`` equal-weight isotropic modes evenly spaced on a circle."""
    check_count(num_modes, "num_modes")
    check_positive(radius, "radius")
    check_positive(std, "std")
    ang = 2.0 * np.pi * np.arange(num_modes) / num_modes
    means = radius * np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    return GaussianMixture(np.full(num_modes, 1.0 / num_modes), means, np.full(num_modes, std**2))


def grid_2d(n: int = 3, spacing: float = 2.0, std: float = 0.25) -> GaussianMixture:
    """2-D grid: ``n × n`` equal-weight isotropic modes, centred on the origin."""
    check_count(n, "n")
    check_positive(spacing, "spacing")
    check_positive(std, "std")
    c = spacing * (np.arange(n) - (n - 1) / 2.0)
    means = np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1).reshape(-1, 2)
    k = n * n
    return GaussianMixture(np.full(k, 1.0 / k), means, np.full(k, std**2))


def random_anisotropic(
    seed: int = 0,
    num_components: int = 4,
    dim: int = 2,
    spread: float = 2.0,
    std_range: tuple[float, float] = (0.1, 0.6),
) -> GaussianMixture:
    """A random mixture with full anisotropic covariances, reproducible from ``seed``.

    Means ~ N(0, spread² I); weights ~ Dirichlet(2, …, 2); each covariance is a random
    rotation (QR of a Gaussian matrix) of log-uniform standard deviations in ``std_range``.
    """
    check_count(num_components, "num_components")
    check_count(dim, "dim")
    lo, hi = std_range
    if not 0 < lo <= hi:
        raise ValueError(f"std_range must satisfy 0 < low <= high, got {std_range!r}")
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(num_components, 2.0))
    means = spread * rng.standard_normal((num_components, dim))
    stds = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(num_components, dim)))
    covs = np.empty((num_components, dim, dim))
    for k in range(num_components):
        q, rr = np.linalg.qr(rng.standard_normal((dim, dim)))
        q = q * np.sign(np.diag(rr))
        covs[k] = (q * stds[k] ** 2) @ q.T
        covs[k] = 0.5 * (covs[k] + covs[k].T)
    return GaussianMixture(w, means, covs)


# ---------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------
def from_json(source) -> GaussianMixture:
    """Read a mixture from a JSON file path or string: ``{"weights": [...], "means": [[...]],
    "covs": [...]}`` with covs full, diagonal or isotropic (as in :class:`GaussianMixture`).

    Raises:
        ValueError: one line saying what is malformed.
    """
    text = str(source)
    try:
        if not text.lstrip().startswith(("{", "[")):
            with open(text, encoding="utf-8") as fh:
                text = fh.read()
        data = json.loads(text)
    except OSError as exc:
        raise ValueError(f"mixture file {source!s} cannot be read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"mixture JSON is malformed: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise ValueError("mixture JSON must be an object with keys weights, means, covs")
    missing = [k for k in ("weights", "means", "covs") if k not in data]
    if missing:
        raise ValueError(f"mixture JSON lacks key(s): {', '.join(missing)}")
    try:
        return GaussianMixture(data["weights"], data["means"], data["covs"])
    except TypeError as exc:
        raise ValueError(f"mixture JSON: {exc}") from exc


def to_json(gm: GaussianMixture) -> str:
    """Serialize a mixture to the JSON format read by :func:`from_json`."""
    return json.dumps(gm.to_dict())


# ---------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------
_jit_component_log_prob = jax.jit(lambda gm, x: gm._component_log_prob_impl(x))
_jit_log_prob = jax.jit(lambda gm, x: gm._log_prob_impl(x))
_jit_responsibilities = jax.jit(lambda gm, x: gm._responsibilities_impl(x))
_jit_score = jax.jit(lambda gm, x: gm._score_impl(x))
_jit_score_and_hessian = jax.jit(lambda gm, x: gm._score_and_hessian_impl(x))
_jit_noised = jax.jit(lambda gm, alpha, sigma: gm._noised_impl(alpha, sigma))
_jit_sample = jax.jit(lambda gm, key, n: gm._sample_impl(key, n), static_argnums=2)


_UNROLL_MAX_DIM = 16
_UNROLL_MAX_COMPONENTS = 32
_ELEMENTWISE_MAX_DIM = 6
_BLOCK_BYTES = 1 << 22  # (B, K, D) or (B, D, D) intermediates of one block: 4 MiB
_BLOCK_MAX = 1 << 14


def _block_size(num_components: int, dim: int) -> int:
    """Rows per block of the per-point kernels (see ``GaussianMixture._blocks``): the
    block's largest intermediate (``(B, K, D)`` or ``(B, D, D)`` float64) fills about 4 MiB,
    i.e. stays in cache. At K = 16, D = 8 this is 4096 (2048 to 8192 timed alike here)."""
    per_row = 8 * dim * max(num_components, dim)
    return int(min(_BLOCK_MAX, max(16, _BLOCK_BYTES // per_row)))


def _sum_terms(terms):
    """Left-to-right sum of a list of arrays, written out (one elementwise fusion)."""
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _sym(a):
    """Symmetrize the last two axes exactly: ``U diag(e) Uᵀ`` by einsum differs from its
    transpose in the last bit because the products are taken in a different order."""
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def _check_alpha_sigma(alpha, sigma):
    if is_concrete(alpha):
        if np.ndim(alpha) != 0:
            raise ValueError(f"alpha must be a scalar, got shape {np.shape(alpha)}")
        check_positive(alpha, "alpha")
    if is_concrete(sigma):
        if np.ndim(sigma) != 0:
            raise ValueError(f"sigma must be a scalar, got shape {np.shape(sigma)}")
        check_positive(sigma, "sigma")


def _expand_covs_jnp(covs, k, d):
    if covs.ndim == 3:
        return covs
    if covs.ndim == 2:
        return jax.vmap(jnp.diag)(covs)
    return covs[:, None, None] * jnp.eye(d, dtype=covs.dtype)


def _validate(weights, means, covs):
    w = as_float_array(weights, "weights")
    mu = as_float_array(means, "means")
    c = as_float_array(covs, "covs")
    if w.ndim != 1 or w.size == 0:
        raise ValueError(
            f"weights must be a non-empty 1-D array of shape (K,), got shape {w.shape}"
        )
    k = w.size
    if mu.ndim != 2 or mu.shape[0] != k or mu.shape[1] == 0:
        raise ValueError(
            f"means must have shape (K, D) = ({k}, D) to match weights, got {mu.shape}"
        )
    d = mu.shape[1]
    for name, arr in (("weights", w), ("means", mu), ("covs", c)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, but it contains NaN or inf")
    if np.any(w <= 0):
        i = int(np.argmax(w <= 0))
        raise ValueError(f"weights must all be > 0, but weights[{i}] = {w[i]!r}")
    if abs(w.sum() - 1.0) > _WEIGHT_TOL:
        raise ValueError(f"weights must sum to 1 (within {_WEIGHT_TOL:g}), got sum {w.sum()!r}")
    w = w / w.sum()
    if c.ndim == 1:
        if c.shape != (k,):
            raise ValueError(f"isotropic covs must have shape (K,) = ({k},), got {c.shape}")
        for i in range(k):
            if c[i] <= 0:
                raise ValueError(f"covs[{i}] must be > 0 (isotropic variance), got {c[i]!r}")
        e = np.repeat(c[:, None], d, axis=1)
        return w, mu, e, np.broadcast_to(np.eye(d), (k, d, d)).copy(), True
    if c.ndim == 2:
        if c.shape != (k, d):
            raise ValueError(f"diagonal covs must have shape (K, D) = ({k}, {d}), got {c.shape}")
        for i in range(k):
            if np.any(c[i] <= 0):
                raise ValueError(f"covs[{i}] must have diagonal entries > 0, got {c[i].tolist()}")
        return w, mu, c.copy(), np.broadcast_to(np.eye(d), (k, d, d)).copy(), True
    if c.ndim != 3 or c.shape != (k, d, d):
        raise ValueError(
            f"covs must have shape (K, D, D) = ({k}, {d}, {d}), (K, D) or (K,), got {c.shape}"
        )
    e = np.empty((k, d))
    u = np.empty((k, d, d))
    for i in range(k):
        ci = c[i]
        scale = max(np.max(np.abs(ci)), 1e-300)
        if np.max(np.abs(ci - ci.T)) > _SYM_TOL * scale:
            raise ValueError(f"covs[{i}] is not symmetric (component {i})")
        ci = 0.5 * (ci + ci.T)
        ei, ui = np.linalg.eigh(ci)
        if ei[0] <= 0 or not math.isfinite(ei[0]):
            raise ValueError(
                f"covs[{i}] is not positive definite (component {i}: smallest eigenvalue "
                f"{ei[0]:.3g})"
            )
        e[i], u[i] = ei, ui
    return w, mu, e, u, False
