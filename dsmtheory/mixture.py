r"""Gaussian mixtures and their exact closed forms under noise (FORMULAS.md §4).

A mixture $p_0=\sum_k\pi_k N(\mu_k,\Sigma_k)$ comes in two kinds, one class
(:class:`GaussianMixture`; ``gm.kind`` says which):

* **dense** (``"dense"``): each covariance is stored by its eigendecomposition
  $\Sigma_k=U_k\,\mathrm{diag}(e_k)\,U_k^\top$. Noising $x_t=\alpha x_0+\sigma\varepsilon$
  keeps the eigenvectors and maps the eigenvalues to $\alpha^2e_k+\sigma^2$, so every noised
  mixture, its precisions, log-determinants and the Tweedie posterior moments are exact
  and cheap for any $(\alpha,\sigma)$, with no further matrix factorization. For D up to a
  few hundred.
* **low-rank-plus-diagonal** (``"low_rank"``, :meth:`GaussianMixture.from_low_rank`):
  $\Sigma_k=F_kF_k^\top+\mathrm{diag}(d_k)$ with $F_k$ of shape $(D,r)$, computed by the
  Woodbury identity and the matrix determinant lemma on the $r\times r$ capacitance matrix
  (:mod:`dsmtheory._woodbury`), never forming a $D\times D$ matrix: $O(NKDr)$ time and
  memory, for image-like D in the thousands. Noising keeps the kind:
  $\alpha^2F F^\top+\mathrm{diag}(\alpha^2d+\sigma^2)$. Its methods live in
  :mod:`dsmtheory._low_rank`, what both kinds share in :mod:`dsmtheory._mixture_common`.

**Rank-deficient components** (zero eigenvalues: data on lines, planes, points) are
first-class: an eigenvalue $e$ of a component with $|e|\le$ :data:`RANK_RTOL` $\cdot
e_{\max}$ is stored as exactly 0 (see there for why 1e-12), more negative than that is
refused, naming the component. Every noised law $p_t$ ($\sigma>0$) is full rank and
everything about it is as for full-rank data. What is infinite about $p_0$ itself is
returned as ±inf with the meaning of the limit $\varepsilon\to0^+$ of the mixture with
covariances $\Sigma_k+\varepsilon I$ (:meth:`GaussianMixture.log_prob`), never NaN.

Everything is computed in log space: component log-densities, then log-sum-exp for
$\log p$ and log-softmax for the responsibilities.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from ._config import warn_if_float32
from ._low_rank import LowRankKind
from ._mixture_common import (
    DENSE_VIEW_MAX_DIM,
    RANK_RTOL,
    component_log_densities,
    draw_components,
    mixture_dict,
    require_finite,
    sym,
    validate_weights_means,
)
from ._mixture_common import TINY as _TINY
from ._numerics import LOG_2PI, lead
from ._validation import (
    as_float_array,
    check_count,
    check_finite,
    check_indices,
    check_key,
    check_known_keys,
    check_last_dim,
    check_scalar,
    is_concrete,
)

__all__ = [
    "GaussianMixture",
    "RANK_RTOL",
    "DENSE_VIEW_MAX_DIM",
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

_SYM_TOL = 1e-10


@jax.tree_util.register_pytree_node_class
class GaussianMixture:
    r"""An immutable Gaussian mixture $\sum_k \pi_k N(\mu_k, \Sigma_k)$ in $D$ dimensions.

    A JAX pytree: it passes through ``jit``, ``vmap`` and ``grad`` (validation runs only on
    concrete inputs). Built from covariances (here), from eigendecompositions
    (:meth:`from_eig`) or from low-rank factors and diagonals (:meth:`from_low_rank`, the
    ``"low_rank"`` kind for large D).

    Args:
        weights: ``(K,)`` mixture weights, each > 0, summing to 1 (within 1e-8).
        means: ``(K, D)`` component means.
        covs: ``(K, D, D)`` full, ``(K, D)`` diagonal or ``(K,)`` isotropic covariances; each
            symmetric positive semi-definite. Eigenvalues within :data:`RANK_RTOL` of zero
            (relative to the component's largest) are set to exactly 0: a zero isotropic
            variance is an atom (a point mass), zero diagonal entries or eigenvalues give a
            component on a line, plane, ... (rank-deficient).

    Raises:
        TypeError: an argument that is not real numbers (strings, booleans, complex numbers,
            None, objects, ragged lists), naming it.
        ValueError: naming the argument (and the component) that is wrong: shapes, NaN/inf,
            weights not positive or not summing to 1, a covariance not symmetric or with a
            negative eigenvalue.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> gm = dsm.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [0.0625, 0.0625])
        >>> float(gm.noised(1.0, 0.1).score(jnp.array([0.0]))[0])
        0.0
    """

    __slots__ = ("log_weights", "means", "eigvals", "eigvecs", "diagonal", "rank_deficient")

    def __init__(self, weights, means, covs):
        if not is_concrete((weights, means, covs)):
            # Traced construction (inside jit/vmap): no checks possible, factorize in JAX.
            # The covariances are taken to be positive definite (rank-deficient mixtures are
            # built from concrete values, where the zero eigenvalues are recognised).
            means = jnp.asarray(means)
            covs = jnp.asarray(covs)
            k, d = means.shape
            full = _expand_covs_jnp(covs, k, d)
            e, u = jnp.linalg.eigh(full)
            self._set(jnp.log(jnp.asarray(weights)), means, e, u, False, False)
            return
        warn_if_float32("GaussianMixture")
        w, mu, e, u, diagonal = _validate(weights, means, covs)
        self._set(
            jnp.asarray(np.log(w)),
            jnp.asarray(mu),
            jnp.asarray(e),
            jnp.asarray(u),
            diagonal,
            bool(np.any(e == 0.0)),
        )

    def _set(self, log_weights, means, eigvals, eigvecs, diagonal, rank_deficient=False):
        object.__setattr__(self, "log_weights", log_weights)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "eigvals", eigvals)
        object.__setattr__(self, "eigvecs", eigvecs)
        object.__setattr__(self, "diagonal", bool(diagonal))
        object.__setattr__(self, "rank_deficient", bool(rank_deficient))

    def __setattr__(self, name, value):
        raise AttributeError("GaussianMixture is immutable")

    # -- pytree -----------------------------------------------------------------------
    def tree_flatten(self):
        children = (self.log_weights, self.means, self.eigvals, self.eigvecs)
        return children, (self.diagonal, self.rank_deficient)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj._set(*children, *aux)
        return obj

    # -- other constructors ---------------------------------------------------------------
    @classmethod
    def from_eig(cls, weights, means, eigvals, eigvecs=None) -> GaussianMixture:
        r"""Build from component eigendecompositions $\Sigma_k=U_k\,\mathrm{diag}(e_k)\,U_k^\top$.

        Args:
            weights: ``(K,)`` as in :class:`GaussianMixture`.
            means: ``(K, D)``.
            eigvals: ``(K, D)`` eigenvalues, each >= 0; those within :data:`RANK_RTOL` of
                zero (relative to the component's largest) are set to exactly 0.
            eigvecs: ``(K, D, D)`` orthonormal eigenvectors (columns), checked to 1e-8; or
                ``None`` for axis-aligned components.

        Raises:
            TypeError/ValueError: naming the argument (and the component), as for the
                constructor; non-orthonormal ``eigvecs``.

        Inside ``jit``/``vmap`` (traced arguments) nothing is checked and the eigenvalues are
        taken to be positive.
        """
        if not is_concrete((weights, means, eigvals, eigvecs)):
            means = jnp.asarray(means)
            eigvals = jnp.asarray(eigvals)
            diagonal = eigvecs is None
            if diagonal:
                k, d = means.shape
                eigvecs = jnp.broadcast_to(jnp.eye(d, dtype=means.dtype), (k, d, d))
            obj = object.__new__(cls)
            obj._set(jnp.log(jnp.asarray(weights)), means, eigvals, jnp.asarray(eigvecs), diagonal)
            return obj
        warn_if_float32("GaussianMixture.from_eig")
        w, mu = validate_weights_means(weights, means)
        k, d = mu.shape
        e = as_float_array(eigvals, "eigvals")
        if e.shape != (k, d):
            raise ValueError(f"eigvals must have shape (K, D) = ({k}, {d}), got {e.shape}")
        require_finite(e, "eigvals")
        e = np.stack([_clip_eigenvalues(e[i], "eigvals", i) for i in range(k)])
        diagonal = eigvecs is None
        if diagonal:
            u = np.broadcast_to(np.eye(d), (k, d, d)).copy()
        else:
            u = as_float_array(eigvecs, "eigvecs")
            if u.shape != (k, d, d):
                raise ValueError(
                    f"eigvecs must have shape (K, D, D) = ({k}, {d}, {d}), got {u.shape}"
                )
            require_finite(u, "eigvecs")
            gram = np.einsum("kij,kil->kjl", u, u) - np.eye(d)
            err = np.max(np.abs(gram).reshape(k, -1), axis=1)
            if np.any(err > _ORTHO_TOL):
                i = int(np.argmax(err))
                raise ValueError(
                    f"eigvecs[{i}] must have orthonormal columns (component {i}: "
                    f"max |U^T U - I| = {err[i]:.3g} > {_ORTHO_TOL:g})"
                )
        obj = object.__new__(cls)
        obj._set(
            jnp.asarray(np.log(w)),
            jnp.asarray(mu),
            jnp.asarray(e),
            jnp.asarray(u),
            diagonal,
            bool(np.any(e == 0.0)),
        )
        return obj

    @classmethod
    def from_low_rank(cls, weights, means, factors, diag) -> GaussianMixture:
        r"""A low-rank-plus-diagonal mixture: $\Sigma_k=F_kF_k^\top+\mathrm{diag}(d_k)$,
        stored and computed without $D\times D$ matrices (the ``"low_rank"`` kind).

        Log-density, score, responsibilities, sampling, noising, the Tweedie posterior mean
        and the trace of the posterior covariance, Hessian-vector products and the Hessian's
        diagonal cost $O(NKDr)$ time and memory (Woodbury identity and matrix determinant
        lemma on the $r\times r$ capacitance matrix; docs/mixture.md "Low-rank-plus-diagonal
        mixtures"). The result is a :class:`GaussianMixture` (``isinstance`` holds), a
        pytree like the dense kind.

        Args:
            weights: ``(K,)`` as in :class:`GaussianMixture`.
            means: ``(K, D)``.
            factors: ``(K, D, r)`` the factors $F_k$, r >= 1.
            diag: ``(K, D)`` or ``(K,)`` (the same for every coordinate) diagonals
                $d_k\ge0$; entries within :data:`RANK_RTOL` of zero, relative to the
                component's largest variance $\max_i(\|F_{k,i}\|^2+d_{k,i})$, are set to 0.
                With zeros, $p_0$ itself may be rank-deficient (``diag = 0``: rank r); its
                noised laws ($\sigma>0$), sampling and posteriors work as usual, while the
                density methods of $p_0$ itself need every ``diag`` entry > 0 (they raise
                otherwise; :meth:`to_dense` gives the dense kind's ±inf conventions).

        Raises:
            TypeError/ValueError: naming the argument (and the component).

        Example:
            >>> import numpy as np, dsmtheory as dsm
            >>> dsm.enable_x64()
            >>> f = np.ones((1, 3, 1))
            >>> gm = dsm.GaussianMixture.from_low_rank([1.0], np.zeros((1, 3)), f, [0.5])
            >>> gm.kind, gm.dim, gm.latent_dim
            ('low_rank', 3, 4)
        """
        return LowRankGaussianMixture._build(weights, means, factors, diag)

    # -- basic properties ---------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"dense"`` (eigendecompositions) or ``"low_rank"`` (factors plus diagonals)."""
        return "dense"

    @property
    def dim(self) -> int:
        """The dimension D."""
        return self.means.shape[-1]

    @property
    def num_components(self) -> int:
        """The number of components K."""
        return self.means.shape[-2]

    @property
    def latent_dim(self) -> int:
        """Dimension of the standard normal ``z`` of :meth:`component_points`: D here (r + D
        for the low-rank kind)."""
        return self.dim

    @property
    def weights(self) -> jax.Array:
        """``(K,)`` mixture weights π."""
        return jnp.exp(self.log_weights)

    @property
    def ranks(self) -> jax.Array:
        """``(K,)`` the rank of each component covariance (its eigenvalues that are not
        exactly 0; see :data:`RANK_RTOL`)."""
        return jnp.sum(self.eigvals > 0, axis=-1)

    @property
    def covs(self) -> jax.Array:
        """``(K, D, D)`` component covariances ``U diag(e) Uᵀ`` (exactly symmetric)."""
        return sym(jnp.einsum("kij,kj,klj->kil", self.eigvecs, self.eigvals, self.eigvecs))

    @property
    def precisions(self) -> jax.Array:
        """``(K, D, D)`` component precisions ``Σ_k⁻¹`` (exactly symmetric).

        Raises:
            ValueError: for a rank-deficient mixture (a singular covariance has no inverse).
        """
        if self.rank_deficient:
            raise ValueError(
                "gm is rank-deficient (a component covariance has a zero eigenvalue): it has "
                "no precision matrices; use gm.noised(alpha, sigma) with sigma > 0"
            )
        return sym(jnp.einsum("kij,kj,klj->kil", self.eigvecs, 1.0 / self.eigvals, self.eigvecs))

    def mean(self) -> jax.Array:
        r"""``(D,)`` mean of the whole mixture, $\sum_k\pi_k\mu_k$."""
        return self.weights @ self.means

    def covariance(self) -> jax.Array:
        r"""``(D, D)`` covariance of the whole mixture,
        $\sum_k\pi_k(\Sigma_k+\mu_k\mu_k^\top)-\bar\mu\bar\mu^\top$."""
        dm = self.means - self.mean()[None, :]
        return self._within_covariance() + jnp.einsum("k,ki,kj->ij", self.weights, dm, dm)

    def _within_covariance(self) -> jax.Array:
        r"""``(D, D)``: $\sum_k\pi_k\Sigma_k$."""
        return jnp.einsum("k,kij->ij", self.weights, self.covs)

    def to_dense(self) -> GaussianMixture:
        """This mixture as the dense kind (itself, here)."""
        return self

    def __repr__(self) -> str:
        kind = "axis-aligned" if self.diagonal else "full"
        extra = ", rank-deficient" if self.rank_deficient else ""
        return f"GaussianMixture(K={self.num_components}, D={self.dim}, {kind} covariances{extra})"

    # -- noising ------------------------------------------------------------------------
    def noised(self, alpha, sigma) -> GaussianMixture:
        r"""The law of $x_t=\alpha x_0+\sigma\varepsilon$: means $\alpha\mu_k$, covariances
        $S_k=\alpha^2\Sigma_k+\sigma^2 I$ (same eigenvectors, eigenvalues $\alpha^2e+\sigma^2$;
        for the low-rank kind factors $\alpha F_k$ and diagonals $\alpha^2d_k+\sigma^2$).
        Full rank for σ > 0 whatever $p_0$ is.

        Args:
            alpha: scalar α > 0 (1 for VE).
            sigma: scalar σ > 0.

        Raises:
            TypeError: α or σ not a real number (string, bool, complex, None, ...).
            ValueError: α or σ not a finite positive scalar; σ² underflowing to 0 for a
                rank-deficient mixture (σ < 1.5e-154).
        """
        _check_alpha_sigma(alpha, sigma, self)
        alpha = jnp.asarray(alpha, dtype=self.means.dtype)
        sigma = jnp.asarray(sigma, dtype=self.means.dtype)
        return _jit_noised(self, alpha, sigma)

    def _noised_impl(self, alpha, sigma):
        return GaussianMixture.tree_unflatten(
            (self.diagonal, False),
            (
                self.log_weights,
                alpha * self.means,
                alpha**2 * self.eigvals + sigma**2,
                self.eigvecs,
            ),
        )

    # -- points of the components ---------------------------------------------------------
    def component_points(self, comp, z) -> jax.Array:
        r"""Points $x_b=\mu_{c_b}+A_{c_b}z_b$ of the components: ``comp (B,)`` component
        indices and ``z (B, latent_dim)`` standard normal draws give ``x (B, D)`` distributed
        as component ``comp[b]`` ($A_k=U_k\,\mathrm{diag}(\sqrt{e_k})$ here; for the low-rank
        kind $x=\mu+Fz_{:r}+\sqrt d\odot z_{r:}$). The expectation engine's Monte Carlo rule
        maps its draws through this.

        Raises:
            TypeError/ValueError: ``comp`` not integers in [0, K), ``z`` not real, finite,
                of shape ``(B, latent_dim)``.
        """
        comp, z = self._check_component_points(comp, z)
        return _jit_component_points(self, comp, z)

    def _check_component_points(self, comp, z):
        if is_concrete((comp, z)):
            c = check_indices(comp, "comp", self.num_components)
            zz = as_float_array(z, "z")
            if zz.shape != (c.shape[0], self.latent_dim):
                raise ValueError(
                    f"z must have shape (B, latent_dim) = ({c.shape[0]}, {self.latent_dim}), "
                    f"got {zz.shape}"
                )
            check_finite(zz, "z")
            return jnp.asarray(c, dtype=jnp.int32), jnp.asarray(zz, dtype=self.means.dtype)
        return jnp.asarray(comp), jnp.asarray(z)

    def _component_points_impl(self, comp, z):
        # scale, then rotate (axis-aligned components need no rotation): the one z -> x map
        # of the dense kind, used by sample, the Monte Carlo rule and training's data draws
        x = jnp.sqrt(jnp.maximum(self.eigvals[comp], 0.0)) * z
        if not self.diagonal:
            x = jnp.einsum("bde,be->bd", self.eigvecs[comp], x)
        return self.means[comp] + x

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
        r"""``(..., K)``: $\log\pi_k+\log N(x;\mu_k,\Sigma_k)$ (for a rank-deficient
        component +inf on its support and −inf off it; see :meth:`log_prob`)."""
        return _jit_component_log_prob(self, self._check_x(x))

    def log_prob(self, x) -> jax.Array:
        r"""Log-density $\log p(x)$ by log-sum-exp over components. ``(..., D)`` → ``(...)``.

        For a rank-deficient $p_0$ (a component with zero eigenvalues has no density with
        respect to Lebesgue measure) the value is the limit $\varepsilon\to0^+$ of the
        log-density of the mixture with covariances $\Sigma_k+\varepsilon I$: **+inf** on
        the support $\mu_k+\mathrm{range}\,\Sigma_k$ of a rank-deficient component, the
        log-density of the full-rank components elsewhere, **−inf** where no component has
        mass (every component rank-deficient and $x$ on none of their supports). A point is
        on a support when its coordinates along the component's null directions are within
        rounding: $|z_i|\le$ :data:`RANK_RTOL` $\cdot(\|x\|+\|\mu_k\|)$.
        """
        return _jit_log_prob(self, self._check_x(x))

    def responsibilities(self, x) -> jax.Array:
        r"""Posterior component probabilities $r_k(x)=\pi_kN_k(x)/p(x)$ by log-softmax.
        ``(..., D)`` → ``(..., K)``.

        Rank-deficient $p_0$: the limit $\varepsilon\to0^+$ (see :meth:`log_prob`): on the
        supports, shared among the components of lowest rank whose support holds $x$, in
        proportion to $\pi_k$ times their density on that support; off every support, on
        the full-rank components; off every support with no full-rank component, all on
        the component nearest in its null directions."""
        return _jit_responsibilities(self, self._check_x(x))

    def score(self, x) -> jax.Array:
        r"""The score $\nabla\log p(x)=\sum_k r_k g_k$ with $g_k=-\Sigma_k^{-1}(x-\mu_k)$.
        ``(..., D)`` → ``(..., D)``.

        Rank-deficient $p_0$: the limit $\varepsilon\to0^+$ (see :meth:`log_prob`). On a
        support it is the score within the support (finite: $g_k$ with the null directions
        left out); off every support with no full-rank component it is infinite, pointing
        to the nearest support: ±inf in each coordinate where that direction is not 0."""
        return _jit_score(self, self._check_x(x))

    def score_and_hessian(self, x) -> tuple[jax.Array, jax.Array]:
        r"""Score and Hessian of $\log p$ in one pass.

        $H=\sum_k r_k (g_k-s)(g_k-s)^\top-\sum_k r_k\Sigma_k^{-1}$, the centred form of
        $\sum_k r_k(g_kg_k^\top-\Sigma_k^{-1})-ss^\top$ (no cancellation of large terms far
        from the modes). Returns ``(..., D)`` and ``(..., D, D)``; the Hessian is exactly
        symmetric.

        Rank-deficient $p_0$: the limit $\varepsilon\to0^+$ (see :meth:`log_prob`):
        $H=-\tfrac1\varepsilon P+O(1)$ with $P=\sum_kr_kP_k$, $P_k$ the projector on the
        null space of $\Sigma_k$ (for the responsibilities of the limit). An entry with
        $P_{ij}>$ :data:`RANK_RTOL` is −inf, one with $P_{ij}<-$ :data:`RANK_RTOL` is +inf,
        the others are the finite part (the formula above with the null directions left
        out). The low-rank kind forms the ``(..., D, D)`` Hessian only for D up to
        :data:`DENSE_VIEW_MAX_DIM`; use :meth:`hessian_vector_product` and
        :meth:`hessian_diagonal` beyond.
        """
        return _jit_score_and_hessian(self, self._check_x(x))

    def hessian(self, x) -> jax.Array:
        r"""Hessian $\nabla^2\log p(x)$, ``(..., D)`` → ``(..., D, D)``
        (see :meth:`score_and_hessian`)."""
        return self.score_and_hessian(x)[1]

    def hessian_vector_product(self, x, v) -> jax.Array:
        r"""$\nabla^2\log p(x)\,v$ without forming the Hessian: $\sum_k c_k(c_k^\top v)-
        \sum_kr_k\Sigma_k^{-1}v$ with $c_k=\sqrt{r_k}(g_k-s)$. ``x, v (..., D)`` →
        ``(..., D)``. $O(KDr)$ per point for the low-rank kind. For a rank-deficient $p_0$
        the same limit as :meth:`score_and_hessian` ($(Pv)_i$ beyond
        :data:`RANK_RTOL`$\,\|v\|_\infty$ gives ∓inf)."""
        x = self._check_x(x)
        v = self._check_x(v, "v")
        if is_concrete((x, v)) and x.shape != v.shape:
            raise ValueError(f"v must have the shape of x {x.shape}, got {v.shape}")
        return _jit_hvp(self, x, v)

    def hessian_diagonal(self, x) -> jax.Array:
        r"""The diagonal of $\nabla^2\log p(x)$, $\sum_kc_k^2-\sum_kr_k\,\mathrm{diag}\,
        \Sigma_k^{-1}$, without forming the Hessian. ``(..., D)`` → ``(..., D)``."""
        return _jit_hessian_diagonal(self, self._check_x(x))

    # -- kernels (no validation; traced under jit) ------------------------------------------
    # log_prob, responsibilities and component_log_prob keep plain reductions and einsum
    # rotations (blocked all the same): these are what users differentiate, and autodiff
    # of the written-out sums of _block_terms costs far more time and memory (jax.hessian
    # of log_prob at 1e5 points: 10.7 s and 10.7 GB instead of 2.8 s and 2.6 GB).
    # A rank-deficient mixture (static flag) takes the _singular_* kernels instead, which
    # implement the limit conventions of the docstrings; full-rank kernels are unchanged.
    def _components(self, x):
        """Component log-densities ``(..., K)`` (eigenbasis form, as in _block_terms)."""
        nd = x.ndim + 1
        d = x[..., None, :] - lead(self.means, nd)
        z = self._rotate_in(d)
        maha = jnp.sum(z * z / lead(self.eigvals, nd), axis=-1)
        logdet = jnp.sum(jnp.log(self.eigvals), axis=-1)
        return lead(self.log_weights, nd - 1) - 0.5 * (
            self.dim * LOG_2PI + lead(logdet, nd - 1) + maha
        )

    def _component_log_prob_impl(self, x, block=None):
        if self.rank_deficient:
            return self._blocks(lambda xb: (self._singular_terms(xb)["component"],), x, block)[0]
        return self._blocks(lambda xb: (self._components(xb),), x, block)[0]

    def _log_prob_impl(self, x, block=None):
        if self.rank_deficient:
            return self._blocks(lambda xb: (self._singular_terms(xb)["log_prob"],), x, block)[0]
        fn = lambda xb: (jax.nn.logsumexp(self._components(xb), axis=-1),)  # noqa: E731
        return self._blocks(fn, x, block)[0]

    def _responsibilities_impl(self, x, block=None):
        if self.rank_deficient:
            return self._blocks(lambda xb: (self._singular_terms(xb)["r"],), x, block)[0]
        fn = lambda xb: (jax.nn.softmax(self._components(xb), axis=-1),)  # noqa: E731
        return self._blocks(fn, x, block)[0]

    def _score_impl(self, x, block=None):
        if self.rank_deficient:
            return self._blocks(lambda xb: (self._singular_terms(xb)["score"],), x, block)[0]
        return self._blocks(self._score_block, x, block)[0]

    def _block_rows(self) -> int:
        return _block_size(self.num_components, self.dim)

    def _blocks(self, fn, x, block: int | None = None):
        """Apply the per-point kernel ``fn`` (``(B, W)`` → tuple of ``(B, ...)``) to the
        points ``x`` of shape ``(..., W)``, a block of rows at a time; reshape to the batch.

        The (N, K, D) intermediates are what cost time at large N: written whole, they leave
        the cache (and fresh pages fault in on every call). So the points are taken in blocks
        of ``block`` rows whose intermediates stay in cache, by a fori_loop that writes each
        block's rows into the outputs; the last block is shifted back to end at row N (its
        overlap is recomputed, bit for bit the same). See docs/mixture.md#performance.
        """
        batch = x.shape[:-1]
        width = x.shape[-1]
        xf = x.reshape(-1, width)
        n = xf.shape[0]
        if block is None:
            block = self._block_rows()
        if n <= block:
            outs = fn(xf)
        else:
            shapes = jax.eval_shape(fn, jax.ShapeDtypeStruct((block, width), xf.dtype))

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
        if self.rank_deficient:
            fn = lambda xb: (lambda t: (t["score"], t["hessian"]))(  # noqa: E731
                self._singular_terms(xb, hessian=True)
            )
            return self._blocks(fn, x, block)
        return self._blocks(self._score_and_hessian_block, x, block)

    def _hvp_impl(self, x, v, block: int | None = None):
        dim = self.dim
        xv = jnp.concatenate([x, v], axis=-1)
        if self.rank_deficient:

            def fn(b):
                return (self._singular_terms(b[:, :dim], hessian=True, v=b[:, dim:])["hvp"],)

        else:

            def fn(b):
                return (self._hvp_block(b[:, :dim], b[:, dim:]),)

        return self._blocks(fn, xv, block)[0]

    def _hessian_diagonal_impl(self, x, block: int | None = None):
        if self.rank_deficient:
            fn = lambda xb: (self._singular_terms(xb, hessian=True)["hdiag"],)  # noqa: E731
        else:
            fn = lambda xb: (self._hessian_diagonal_block(xb),)  # noqa: E731
        return self._blocks(fn, x, block)[0]

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
            d = x[:, None, :] - self.means[None]  # (B, K, D)
            z = d if self.diagonal else self._rotate_terms(d, transpose=True)
            ze = z / self.eigvals[None]
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
        comp = component_log_densities(self.log_weights, logdet, maha, dim)  # (B, K)
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
        out = v[..., 0, None] * u[None, :, 0, :]
        for j in range(1, self.dim):
            out = out + v[..., j, None] * u[None, :, j, :]
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
            outer = sym(jnp.einsum("nki,nkj->nij", c, c))
        return s, outer - within

    def _hvp_block(self, x, v):
        _, r, g = self._block_terms(x)
        s = jnp.einsum("nk,nkd->nd", r, g)
        c = jnp.sqrt(r)[..., None] * (g - s[:, None, :])
        cv = jnp.einsum("nkd,nd->nk", c, v)
        vk = jnp.broadcast_to(v[:, None, :], c.shape)
        pv = self._rotate_out(self._rotate_in(vk) / self.eigvals[None])  # S_k⁻¹ v
        return jnp.einsum("nkd,nk->nd", c, cv) - jnp.einsum("nk,nkd->nd", r, pv)

    def _hessian_diagonal_block(self, x):
        _, r, g = self._block_terms(x)
        s = jnp.einsum("nk,nkd->nd", r, g)
        c = jnp.sqrt(r)[..., None] * (g - s[:, None, :])
        prec_diag = jnp.einsum("kde,ke->kd", self.eigvecs**2, 1.0 / self.eigvals)
        return jnp.sum(c * c, axis=1) - r @ prec_diag

    # -- the limit kernels of a rank-deficient p0 -----------------------------------------
    def _singular_terms(self, x, hessian: bool = False, v=None) -> dict:
        r"""Everything about ``(B, D)`` points of a rank-deficient $p_0$, as the limit
        $\varepsilon\to0^+$ of the mixture with covariances $\Sigma_k+\varepsilon I$.

        Per component: $z=U_k^\top(x-\mu_k)$ split into range coordinates (eigenvalue > 0)
        and null coordinates; the regular part $c_k=\log\pi_k-\frac12(r_k\log2\pi+
        \sum_{e>0}\log e+\sum_{e>0}z^2/e)$ (the log-density on the support); the point is
        on the support when every null coordinate is within :data:`RANK_RTOL`
        $\cdot(\|x\|+\|\mu_k\|)$. In the limit $\log N_k^\varepsilon=c_k+\frac{D-r_k}2
        \log\frac1{2\pi\varepsilon}\cdot$[on support] $-\|z_{\rm null}\|^2/2\varepsilon$,
        so the components that matter at $x$ are those on whose support it lies with the
        largest $D-r_k$ ("level"); if none (no full-rank component, $x$ on no support),
        the one with the smallest $\|z_{\rm null}\|$.
        """
        num_k, dim = self.num_components, self.dim
        e = self.eigvals
        pos = e > 0  # (K, D)
        e1 = jnp.where(pos, e, 1.0)
        d = x[:, None, :] - self.means[None]  # (B, K, D)
        z = self._rotate_in(d)
        zr = jnp.where(pos[None], z, 0.0)
        zn = jnp.where(pos[None], 0.0, z)
        ze = zr / e1[None]
        maha = jnp.sum(zr * ze, axis=-1)  # (B, K)
        rank = jnp.sum(pos, axis=-1)  # (K,)
        logdet = jnp.sum(jnp.where(pos, jnp.log(e1), 0.0), axis=-1)
        c = self.log_weights[None] - 0.5 * ((rank * LOG_2PI + logdet)[None] + maha)
        scale = jnp.linalg.norm(x, axis=-1)[:, None] + jnp.linalg.norm(self.means, axis=-1)[None]
        on = jnp.max(jnp.abs(zn), axis=-1) <= RANK_RTOL * scale  # (B, K)
        level = jnp.where(on, (dim - rank)[None], -1)
        top = jnp.max(level, axis=-1)  # (B,)
        active = (level == top[:, None]) & (top[:, None] >= 0)
        nsq = jnp.sum(zn * zn, axis=-1)
        nearest = jnp.argmin(nsq, axis=-1)
        chosen = jnp.where((top >= 0)[:, None], active, jax.nn.one_hot(nearest, num_k, dtype=bool))
        key = jnp.where(chosen, c, -jnp.inf)
        r = jax.nn.softmax(key, axis=-1)
        inf = jnp.asarray(jnp.inf, dtype=c.dtype)
        log_prob = jnp.where(
            top > 0, inf, jnp.where(top == 0, jax.nn.logsumexp(key, axis=-1), -inf)
        )
        component = jnp.where(level > 0, inf, jnp.where(level == 0, c, -inf))
        g = -self._rotate_out(ze)  # (B, K, D): the score within each support
        s_fin = jnp.einsum("bk,bkd->bd", r, g)
        # off every support (no full-rank component): infinite, towards the nearest support
        toward = -self._rotate_out(zn)  # (B, K, D)
        vdir = jnp.take_along_axis(toward, nearest[:, None, None], axis=1)[:, 0, :]
        tol = RANK_RTOL * jnp.max(jnp.abs(vdir), axis=-1, keepdims=True)
        s_inf = jnp.where(vdir > tol, inf, jnp.where(vdir < -tol, -inf, 0.0))
        score = jnp.where((top >= 0)[:, None], s_fin, s_inf)
        out = {"component": component, "log_prob": log_prob, "r": r, "score": score}
        if hessian:
            u = self.eigvecs
            pinv = jnp.einsum("kij,kj,klj->kil", u, jnp.where(pos, 1.0 / e1, 0.0), u)
            proj = jnp.einsum("kij,kj,klj->kil", u, jnp.where(pos, 0.0, 1.0), u)
            cc = jnp.sqrt(r)[..., None] * (g - s_fin[:, None, :])
            finite = sym(jnp.einsum("bki,bkj->bij", cc, cc) - jnp.einsum("bk,kij->bij", r, pinv))
            p = sym(jnp.einsum("bk,kij->bij", r, proj))
            out["hessian"] = jnp.where(p > RANK_RTOL, -inf, jnp.where(p < -RANK_RTOL, inf, finite))
            out["hdiag"] = jnp.diagonal(out["hessian"], axis1=-2, axis2=-1)
            if v is not None:
                fv = jnp.einsum("bij,bj->bi", finite, v)
                pv = jnp.einsum("bij,bj->bi", p, v)
                vt = RANK_RTOL * jnp.max(jnp.abs(v), axis=-1, keepdims=True)
                out["hvp"] = jnp.where(pv > vt, -inf, jnp.where(pv < -vt, inf, fv))
        return out

    # -- sampling -----------------------------------------------------------------------
    def sample(self, key, n: int) -> jax.Array:
        """Draw ``n`` samples, shape ``(n, D)``, with a JAX PRNG ``key`` (samples of a
        rank-deficient component lie on its support)."""
        return _jit_sample(self, check_key(key), check_count(n, "n"))

    def _sample_impl(self, key, n):
        comps, eps = draw_components(key, self.log_weights, n, self.dim, self.means.dtype)
        return self._component_points_impl(comps, eps)

    # -- Tweedie posterior (block kernels; the public functions are module level) ---------
    def _posterior_prep(self, alpha, sigma):
        return None

    def _posterior_block(self, which: str, prep, x_t, alpha, sigma):
        return _DENSE_POSTERIOR_BLOCKS[which](self, x_t, alpha, sigma)

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-Python description ``{"weights", "means", "covs"}`` (full covariances; for
        the low-rank kind ``{"weights", "means", "factors", "diag"}``)."""
        return mixture_dict(self, covs=self.covs)


def check_mixture(gm, name: str = "gm") -> GaussianMixture:
    """Raise TypeError unless ``gm`` is a :class:`GaussianMixture`; return it."""
    if not isinstance(gm, GaussianMixture):
        raise TypeError(f"{name} must be a GaussianMixture, got {type(gm).__name__}")
    return gm


# ---------------------------------------------------------------------------------------
# The low-rank-plus-diagonal kind (its methods: dsmtheory/_low_rank.py)
# ---------------------------------------------------------------------------------------
@jax.tree_util.register_pytree_node_class
class LowRankGaussianMixture(LowRankKind, GaussianMixture):
    r"""The ``"low_rank"`` kind of :class:`GaussianMixture`: covariances
    $\Sigma_k=F_kF_k^\top+\mathrm{diag}(d_k)$, never formed. Build it with
    :meth:`GaussianMixture.from_low_rank`; the methods that differ from the dense kind are
    those of :class:`dsmtheory._low_rank.LowRankKind`, whose docstring lists the pytree
    leaves and the dense views.
    """

    __slots__ = ("factors", "diag", "zero_diag")
    _dense_kind = GaussianMixture


# ---------------------------------------------------------------------------------------
# Tweedie posterior moments
# ---------------------------------------------------------------------------------------
def _posterior_inputs(gm: GaussianMixture, x_t, alpha, sigma):
    """Validate and convert the posterior functions' arguments."""
    check_mixture(gm)
    _check_alpha_sigma(alpha, sigma, gm)
    x_t = gm._check_x(x_t, "x_t")
    alpha = jnp.asarray(alpha, dtype=gm.means.dtype)
    sigma = jnp.asarray(sigma, dtype=gm.means.dtype)
    return x_t, alpha, sigma


def _posterior_parts(gm: GaussianMixture, x_t, alpha, sigma):
    """Responsibilities (..., K), component posterior means (..., K, D) and component
    posterior covariance eigenvalues (K, D) of x0 | x_t (no validation; dense kind)."""
    nd = x_t.ndim + 1
    et = alpha**2 * gm.eigvals + sigma**2  # eigenvalues of S_k
    d = x_t[..., None, :] - alpha * lead(gm.means, nd)
    z = gm._rotate_in(d)
    maha = jnp.sum(z * z / lead(et, nd), axis=-1)
    logdet = jnp.sum(jnp.log(et), -1)
    comp = lead(gm.log_weights, nd - 1) - 0.5 * (gm.dim * LOG_2PI + lead(logdet, nd - 1) + maha)
    r = jax.nn.softmax(comp, axis=-1)
    # m_k = mu_k + alpha Σ_k S_k^{-1} d_k ; V_k = Σ_k - α² Σ_k S_k⁻¹ Σ_k = U diag(e σ²/e_t) Uᵀ
    m = lead(gm.means, nd) + alpha * gm._rotate_out(lead(gm.eigvals / et, nd) * z)
    v = gm.eigvals * sigma**2 / et
    return r, m, v


def posterior_components(gm: GaussianMixture, x_t, alpha, sigma):
    r"""The posterior of $x_0$ given $x_t$ as a mixture: $x_0\mid x_t\sim\sum_kr_k(x_t)\,
    N(m_k(x_t), V_k)$ with responsibilities $r_k$ under the noised mixture, component means
    $m_k=\mu_k+\alpha\Sigma_kS_k^{-1}(x_t-\alpha\mu_k)$ and covariances
    $V_k=\Sigma_k-\alpha^2\Sigma_kS_k^{-1}\Sigma_k=U_k\,\mathrm{diag}(v_k)\,U_k^\top$
    (FORMULAS.md §4).

    Args:
        gm: the clean mixture $p_0$ (a low-rank mixture is taken in its dense view, D up
            to :data:`DENSE_VIEW_MAX_DIM`).
        x_t: ``(..., D)`` noisy points.
        alpha, sigma: scalars > 0.

    Returns:
        ``(r, m, v)``: ``(..., K)``, ``(..., K, D)`` and the eigenvalues ``(K, D)`` of
        $V_k$ in the eigenbasis ``gm.eigvecs``.
    """
    x_t, alpha, sigma = _posterior_inputs(gm, x_t, alpha, sigma)
    if gm.kind == "low_rank":
        gm._dense_check("posterior_components")
        gm = gm.to_dense()
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
    return (sym(within + between),)


def _posterior_cov_trace_block(gm, x_t, alpha, sigma):
    r, m, v = _posterior_parts(gm, x_t, alpha, sigma)
    mbar = jnp.einsum("...k,...kd->...d", r, m)
    spread = jnp.sum((m - mbar[..., None, :]) ** 2, axis=-1)
    tr_v = lead(jnp.sum(v, -1), spread.ndim)
    return (jnp.einsum("...k,...k->...", r, tr_v + spread),)


_DENSE_POSTERIOR_BLOCKS = {
    "mean": _posterior_mean_block,
    "cov": _posterior_cov_block,
    "trace": _posterior_cov_trace_block,
}


def _posterior_kernel(which: str):
    """Jitted kernel applying the ``which`` posterior block function of the mixture's kind
    to cache-sized blocks of points (see ``GaussianMixture._blocks``)."""

    @jax.jit
    def kernel(gm, x_t, alpha, sigma):
        prep = gm._posterior_prep(alpha, sigma)
        fn = lambda xb: gm._posterior_block(which, prep, xb, alpha, sigma)  # noqa: E731
        return gm._blocks(fn, x_t)[0]

    return kernel


_posterior_mean_kernel = _posterior_kernel("mean")
_posterior_cov_kernel = _posterior_kernel("cov")
_posterior_cov_trace_kernel = _posterior_kernel("trace")


def posterior_mean(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""Tweedie posterior mean $\mathbb E[x_0\mid x_t]=\sum_k r_k m_k$ for
    $x_t=\alpha x_0+\sigma\varepsilon$, $x_0\sim$ ``gm``, with the component posteriors
    $m_k=\mu_k+\alpha\Sigma_kS_k^{-1}(x_t-\alpha\mu_k)$, $S_k=\alpha^2\Sigma_k+\sigma^2I$
    and $r_k$ the responsibilities under the noised mixture (FORMULAS.md §4). For the
    low-rank kind $\Sigma_kS_k^{-1}(x_t-\alpha\mu_k)$ is applied by Woodbury, $O(KDr)$ per
    point. Rank-deficient ``gm`` works as any other (σ > 0 makes $S_k$ invertible).

    Equals $(x_t+\sigma^2\nabla\log p_t(x_t))/\alpha$ (Tweedie), which the tests check.

    Args:
        gm: the clean mixture $p_0$.
        x_t: ``(..., D)`` noisy points.
        alpha: scalar α > 0.
        sigma: scalar σ > 0.

    Returns:
        ``(..., D)``.

    Raises:
        TypeError: ``gm`` not a mixture; ``x_t``, α or σ not real numbers.
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
        gm: the clean mixture $p_0$ (the low-rank kind in its dense view, D up to
            :data:`DENSE_VIEW_MAX_DIM`; use :func:`posterior_cov_trace` beyond).
        x_t: ``(..., D)`` noisy points.
        alpha: scalar α > 0.
        sigma: scalar σ > 0.

    Returns:
        ``(..., D, D)``, exactly symmetric.
    """
    x_t, alpha, sigma = _posterior_inputs(gm, x_t, alpha, sigma)
    if gm.kind == "low_rank":
        gm._dense_check("posterior_cov")
        gm = gm.to_dense()  # once, not per block inside the kernel
    return _posterior_cov_kernel(gm, x_t, alpha, sigma)


def posterior_cov_trace(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""The trace of :func:`posterior_cov` without forming D×D matrices,
    $\mathrm{tr}\,\mathrm{Cov}[x_0\mid x_t]=\sum_k r_k\,\mathrm{tr}V_k+\sum_k r_k\|m_k-\bar m\|^2$.
    ``(..., D)`` → ``(...)``. For the low-rank kind
    $\mathrm{tr}V_k=\sigma^2\,\mathrm{tr}(\Sigma_kS_k^{-1})$ is computed from the capacitance
    matrix (docs/mixture.md), $O(KDr)$ per point."""
    return _posterior_cov_trace_kernel(gm, *_posterior_inputs(gm, x_t, alpha, sigma))


# ---------------------------------------------------------------------------------------
# Standard test mixtures
# ---------------------------------------------------------------------------------------
def single_gaussian(mean, std: float) -> GaussianMixture:
    """One isotropic Gaussian ``N(mean, std² I)`` as a K = 1 mixture."""
    mean = np.atleast_1d(as_float_array(mean, "mean"))
    std = check_scalar(std, "std", positive=True)
    return GaussianMixture([1.0], mean[None, :], [float(std) ** 2])


def bimodal_1d(separation: float = 4.0, std: float = 0.25, weight: float = 0.5) -> GaussianMixture:
    """1-D bimodal: modes at ±separation/2 with standard deviation ``std``; ``weight`` on the
    left mode. The default (±2, std 0.25) is the mixture of FORMULAS.md §4's c* table."""
    separation = check_scalar(separation, "separation", positive=True)
    std = check_scalar(std, "std", positive=True)
    if not 0.0 < check_scalar(weight, "weight") < 1.0:
        raise ValueError(f"weight must be in (0, 1), got {weight!r}")
    h = separation / 2.0
    return GaussianMixture([weight, 1.0 - weight], [[-h], [h]], [std**2, std**2])


def ring(num_modes: int = 8, radius: float = 2.0, std: float = 0.25) -> GaussianMixture:
    """2-D ring: ``num_modes`` equal-weight isotropic modes evenly spaced on a circle."""
    check_count(num_modes, "num_modes")
    radius = check_scalar(radius, "radius", positive=True)
    std = check_scalar(std, "std", positive=True)
    ang = 2.0 * np.pi * np.arange(num_modes) / num_modes
    means = radius * np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    return GaussianMixture(np.full(num_modes, 1.0 / num_modes), means, np.full(num_modes, std**2))


def grid_2d(n: int = 3, spacing: float = 2.0, std: float = 0.25) -> GaussianMixture:
    """2-D grid: ``n × n`` equal-weight isotropic modes, centred on the origin."""
    check_count(n, "n")
    spacing = check_scalar(spacing, "spacing", positive=True)
    std = check_scalar(std, "std", positive=True)
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
    spread = check_scalar(spread, "spread", positive=True, allow_zero=True)
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
_DENSE_KEYS = ("weights", "means", "covs")
_LOW_RANK_KEYS = ("weights", "means", "factors", "diag")


def from_json(source) -> GaussianMixture:
    """Read a mixture from JSON: a JSON string, or a file path (``str`` or ``os.PathLike``).

    Two layouts: ``{"weights": [...], "means": [[...]], "covs": [...]}`` with covs full,
    diagonal or isotropic (as in :class:`GaussianMixture`), or the low-rank kind
    ``{"weights", "means", "factors", "diag"}`` (as in
    :meth:`GaussianMixture.from_low_rank`), as written by :func:`to_json`.

    Raises:
        TypeError: ``source`` is not a string or path (``bytes`` included: decode it).
        ValueError: one line saying what is wrong: the file cannot be read or is not UTF-8,
            malformed JSON, not an object, unknown keys (listing the known ones), missing
            keys, or a value the constructor refuses (strings or booleans where numbers
            belong, shapes, NaN/inf, ...), naming the key.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError(
            "source must be a JSON string or a file path (str or os.PathLike), got bytes; "
            "decode JSON bytes with .decode('utf-8') first"
        )
    if isinstance(source, os.PathLike):
        path, text = os.fspath(source), None
    elif isinstance(source, str):
        path, text = (None, source) if source.lstrip().startswith(("{", "[")) else (source, None)
    else:
        raise TypeError(
            f"source must be a JSON string or a file path (str or os.PathLike), got "
            f"{type(source).__name__}"
        )
    if path is not None:
        if isinstance(path, bytes):
            raise TypeError("source must be a str path, got a bytes path")
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise ValueError(
                f"mixture file {path!s} cannot be read: {exc.strerror or exc}"
            ) from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"mixture file {path!s} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                f"offset {exc.start}); a mixture file is JSON"
            ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"mixture JSON is malformed: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise ValueError(
            "mixture JSON must be an object with keys weights, means, covs (or weights, "
            "means, factors, diag)"
        )
    low_rank = "factors" in data or "diag" in data
    known = _LOW_RANK_KEYS if low_rank else _DENSE_KEYS
    check_known_keys(data, known, "mixture JSON")
    missing = [k for k in known if k not in data]
    if missing:
        raise ValueError(f"mixture JSON lacks key(s): {', '.join(missing)}")
    try:
        if low_rank:
            return GaussianMixture.from_low_rank(
                data["weights"], data["means"], data["factors"], data["diag"]
            )
        return GaussianMixture(data["weights"], data["means"], data["covs"])
    except TypeError as exc:
        raise ValueError(f"mixture JSON: {exc}") from exc


def to_json(gm: GaussianMixture) -> str:
    """Serialize a mixture to the JSON format read by :func:`from_json` (full covariances
    for the dense kind, factors and diagonals for the low-rank kind).

    Raises:
        TypeError: ``gm`` is not a :class:`GaussianMixture`.
    """
    check_mixture(gm)
    return json.dumps(gm.to_dict(), allow_nan=False)


# ---------------------------------------------------------------------------------------
# kernels and validation helpers
# ---------------------------------------------------------------------------------------
_jit_component_log_prob = jax.jit(lambda gm, x: gm._component_log_prob_impl(x))
_jit_log_prob = jax.jit(lambda gm, x: gm._log_prob_impl(x))
_jit_responsibilities = jax.jit(lambda gm, x: gm._responsibilities_impl(x))
_jit_score = jax.jit(lambda gm, x: gm._score_impl(x))
_jit_score_and_hessian = jax.jit(lambda gm, x: gm._score_and_hessian_impl(x))
_jit_hvp = jax.jit(lambda gm, x, v: gm._hvp_impl(x, v))
_jit_hessian_diagonal = jax.jit(lambda gm, x: gm._hessian_diagonal_impl(x))
_jit_component_points = jax.jit(lambda gm, comp, z: gm._component_points_impl(comp, z))
_jit_noised = jax.jit(lambda gm, alpha, sigma: gm._noised_impl(alpha, sigma))
_jit_sample = jax.jit(lambda gm, key, n: gm._sample_impl(key, n), static_argnums=2)


_UNROLL_MAX_DIM = 16
_UNROLL_MAX_COMPONENTS = 32
_ELEMENTWISE_MAX_DIM = 6
_BLOCK_BYTES = 1 << 22  # (B, K, D) or (B, D, D) intermediates of one block: 4 MiB
_BLOCK_MAX = 1 << 14
_ORTHO_TOL = 1e-8


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


def _check_alpha_sigma(alpha, sigma, gm=None):
    """α, σ: finite positive real scalars (TypeError/ValueError naming them); for a
    rank-deficient mixture σ² must not underflow to 0 (S_k would be singular)."""
    check_scalar(alpha, "alpha", positive=True)
    s = check_scalar(sigma, "sigma", positive=True)
    # a low-rank mixture with a zero diagonal entry needs sigma^2 > 0 even when full rank:
    # its kernels divide by the noised diagonal alpha^2 d + sigma^2
    if (
        is_concrete(sigma)
        and s * s < _TINY
        and gm is not None
        and (getattr(gm, "zero_diag", False) or gm.rank_deficient)
    ):
        raise ValueError(
            f"sigma = {s!r} is too small for a rank-deficient mixture (or a low-rank one with "
            "zero diagonal entries): sigma^2 underflows float64 and the noised covariances "
            "would be singular (need sigma > 1.5e-154)"
        )


def _expand_covs_jnp(covs, k, d):
    if covs.ndim == 3:
        return covs
    if covs.ndim == 2:
        return jax.vmap(jnp.diag)(covs)
    return covs[:, None, None] * jnp.eye(d, dtype=covs.dtype)[None]


def _clip_eigenvalues(e: np.ndarray, name: str, i: int, what: str = "eigenvalue") -> np.ndarray:
    """Eigenvalues ``e (D,)`` of component ``i``: those within RANK_RTOL of 0 (relative to
    the largest) set to exactly 0; one more negative than that refused, naming ``name[i]``."""
    top = max(float(np.max(e)), 0.0)
    tol = RANK_RTOL * max(top, _TINY)
    low = float(np.min(e))
    if low < -tol:
        raise ValueError(
            f"{name}[{i}] is not positive semi-definite (component {i}: smallest {what} "
            f"{low:.3g}, below -{RANK_RTOL:g} x the largest, {top:.3g})"
        )
    return np.where(np.abs(e) <= tol, 0.0, e)


def _validate(weights, means, covs):
    w = as_float_array(weights, "weights")
    mu = as_float_array(means, "means")
    c = as_float_array(covs, "covs")
    w, mu = validate_weights_means(w, mu)
    k, d = mu.shape
    require_finite(c, "covs")
    if c.ndim == 1:
        if c.shape != (k,):
            raise ValueError(f"isotropic covs must have shape (K,) = ({k},), got {c.shape}")
        for i in range(k):
            if c[i] < 0:
                raise ValueError(
                    f"covs[{i}] must be >= 0 (isotropic variance; 0 is an atom), got {c[i]!r}"
                )
        e = np.repeat(c[:, None], d, axis=1)
        return w, mu, e, np.broadcast_to(np.eye(d), (k, d, d)).copy(), True
    if c.ndim == 2:
        if c.shape != (k, d):
            raise ValueError(f"diagonal covs must have shape (K, D) = ({k}, {d}), got {c.shape}")
        e = c.copy()
        for i in range(k):
            top = max(float(np.max(c[i])), 0.0)
            if np.min(c[i]) < -RANK_RTOL * max(top, _TINY):
                raise ValueError(
                    f"covs[{i}] must have diagonal entries >= 0 (component {i}), got "
                    f"{c[i].tolist()}"
                )
            e[i] = _clip_eigenvalues(c[i], "covs", i, "diagonal entry")
        return w, mu, e, np.broadcast_to(np.eye(d), (k, d, d)).copy(), True
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
        e[i], u[i] = _clip_eigenvalues(ei, "covs", i), ui
    return w, mu, e, u, False
