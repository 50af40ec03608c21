r"""The low-rank-plus-diagonal kind of :class:`dsmtheory.GaussianMixture` (``"low_rank"``):
covariances $\Sigma_k=F_kF_k^\top+\mathrm{diag}(d_k)$ with $F_k$ of shape $(D,r)$, never
formed, computed by the Woodbury identity and the matrix determinant lemma on the $r\times r$
capacitance matrix (:mod:`dsmtheory._woodbury`; docs/mixture.md "Low-rank-plus-diagonal
mixtures"): $O(NKDr)$ time and memory.

:class:`LowRankKind` holds everything that differs from the dense kind: construction and
checks, the pytree leaves, the dense views, noising, the points of the components and the
per-point and posterior kernels. :class:`dsmtheory.mixture.LowRankGaussianMixture` is this
mixin over :class:`~dsmtheory.GaussianMixture` (so ``isinstance`` holds and the public,
validating methods are the dense kind's), built by
:meth:`dsmtheory.GaussianMixture.from_low_rank`. This module imports nothing of
:mod:`dsmtheory.mixture` (no circle): the dense class reaches it as ``self._dense_kind``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import _woodbury
from ._config import warn_if_float32
from ._mixture_common import (
    DENSE_VIEW_MAX_DIM,
    RANK_RTOL,
    TINY,
    component_log_densities,
    draw_components,
    mixture_dict,
    require_finite,
    sym,
    validate_weights_means,
)
from ._validation import as_float_array, is_concrete

# (K, B, D) intermediates of one block, up to 32 MiB: the (B, D) @ (D, r) products per
# component then have enough rows to run at full BLAS speed.
BLOCK_BYTES = 1 << 25
BLOCK_MAX = 1 << 12


class LowRankKind:
    r"""The ``"low_rank"`` kind's methods, a mixin for a subclass of
    :class:`~dsmtheory.GaussianMixture` that sets ``_dense_kind`` (the dense class, for
    :meth:`to_dense`) and the slots ``factors``, ``diag``, ``zero_diag``.

    Attributes (pytree leaves): ``log_weights (K,)``, ``means (K, D)``, ``factors
    (K, D, r)``, ``diag (K, D)``. The dense attributes ``eigvals``, ``eigvecs``, ``covs``
    and ``precisions`` are dense *views*, computed on request for D up to
    :data:`DENSE_VIEW_MAX_DIM` and refused beyond.
    """

    __slots__ = ()

    @classmethod
    def _build(cls, weights, means, factors, diag):
        if not is_concrete((weights, means, factors, diag)):
            means = jnp.asarray(means)
            factors = jnp.asarray(factors)
            diag = jnp.asarray(diag)
            if diag.ndim == 1:
                diag = jnp.broadcast_to(diag[:, None], means.shape)
            obj = object.__new__(cls)
            obj._set_lr(jnp.log(jnp.asarray(weights)), means, factors, diag, False)
            return obj
        warn_if_float32("GaussianMixture.from_low_rank")
        w, mu = validate_weights_means(weights, means)
        k, d = mu.shape
        f = as_float_array(factors, "factors")
        if f.ndim != 3 or f.shape[:2] != (k, d) or f.shape[2] == 0:
            raise ValueError(
                f"factors must have shape (K, D, r) = ({k}, {d}, r), r >= 1, got {f.shape}"
            )
        require_finite(f, "factors")
        dg = as_float_array(diag, "diag")
        if dg.shape == (k,):
            dg = np.repeat(dg[:, None], d, axis=1)
        elif dg.shape != (k, d):
            raise ValueError(
                f"diag must have shape (K, D) = ({k}, {d}) or (K,) = ({k},), got {dg.shape}"
            )
        require_finite(dg, "diag")
        dg = dg.copy()
        for i in range(k):
            scale = max(float(np.max(np.sum(f[i] ** 2, axis=-1) + dg[i])), TINY)
            tol = RANK_RTOL * scale
            if np.min(dg[i]) < -tol:
                j = int(np.argmin(dg[i]))
                raise ValueError(
                    f"diag[{i}] must be >= 0 (component {i}: entry {j} is {dg[i, j]:.3g})"
                )
            dg[i] = np.where(dg[i] <= tol, 0.0, dg[i])
        obj = object.__new__(cls)
        obj._set_lr(
            jnp.asarray(np.log(w)),
            jnp.asarray(mu),
            jnp.asarray(f),
            jnp.asarray(dg),
            bool(np.any(dg == 0.0)),
        )
        return obj

    def _set_lr(self, log_weights, means, factors, diag, zero_diag):
        object.__setattr__(self, "log_weights", log_weights)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "diag", diag)
        object.__setattr__(self, "zero_diag", bool(zero_diag))

    def tree_flatten(self):
        return (self.log_weights, self.means, self.factors, self.diag), (self.zero_diag,)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj._set_lr(*children, *aux)
        return obj

    # -- properties -------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "low_rank"

    @property
    def rank(self) -> int:
        """The number r of factor columns."""
        return self.factors.shape[-1]

    @property
    def latent_dim(self) -> int:
        """r + D: ``z[:, :r]`` drives the factors, ``z[:, r:]`` the diagonal."""
        return self.rank + self.dim

    @property
    def diagonal(self) -> bool:
        return False

    @property
    def ranks(self) -> jax.Array:
        r"""``(K,)`` rank of each $\Sigma_k$: D where ``diag > 0``; with zero diagonal
        entries on the index set Z, $|Z^c|+\mathrm{rank}\,F_{k,Z}$ (singular values of the
        rows in Z below :data:`RANK_RTOL` times the largest variance count as 0)."""
        if not self.zero_diag:
            return jnp.full(self.means.shape[:-1], self.dim, dtype=jnp.int32)
        zero = self.diag == 0
        fz = jnp.where(zero[..., None], self.factors, 0.0)
        sv2 = jnp.linalg.eigvalsh(jnp.einsum("kdi,kdj->kij", fz, fz))
        scale = jnp.max(jnp.sum(self.factors**2, axis=-1) + self.diag, axis=-1)
        tol = RANK_RTOL * jnp.maximum(scale, TINY)
        return jnp.sum(~zero, axis=-1) + jnp.sum(sv2 > tol[:, None], axis=-1)

    @property
    def rank_deficient(self) -> bool:
        """Whether a component covariance is singular (only possible with zero ``diag``
        entries; a traced mixture with zero entries counts as rank-deficient)."""
        if not self.zero_diag:
            return False
        if not is_concrete(self.factors):
            return True
        return bool(np.any(np.asarray(self.ranks) < self.dim))

    def _dense_check(self, what: str) -> None:
        if self.dim > DENSE_VIEW_MAX_DIM:
            raise ValueError(
                f"{what} of a low-rank mixture forms D x D matrices; D = {self.dim} is above "
                f"DENSE_VIEW_MAX_DIM = {DENSE_VIEW_MAX_DIM} (use gm.to_dense() to convert "
                "explicitly)"
            )

    @property
    def covs(self) -> jax.Array:
        self._dense_check("covs")
        full = jnp.einsum("kir,kjr->kij", self.factors, self.factors)
        return sym(full + jax.vmap(jnp.diag)(self.diag))

    def _dense_eig(self):
        self._dense_check("the eigendecomposition (eigvals/eigvecs)")
        e, u = jnp.linalg.eigh(self.covs)
        top = jnp.maximum(jnp.max(e, axis=-1, keepdims=True), TINY)
        return jnp.where(jnp.abs(e) <= RANK_RTOL * top, 0.0, e), u

    @property
    def eigvals(self) -> jax.Array:
        """``(K, D)`` eigenvalues of the covariances (a dense view, D ≤ DENSE_VIEW_MAX_DIM)."""
        return self._dense_eig()[0]

    @property
    def eigvecs(self) -> jax.Array:
        """``(K, D, D)`` eigenvectors (a dense view, D ≤ DENSE_VIEW_MAX_DIM)."""
        return self._dense_eig()[1]

    @property
    def precisions(self) -> jax.Array:
        self._dense_check("precisions")
        self._need_positive_diag("precisions")
        wh = _woodbury.whiten(self.factors, self.diag)
        low = _woodbury.inverse_low_rank(wh)
        return sym(jax.vmap(jnp.diag)(1.0 / self.diag) - jnp.einsum("kir,kjr->kij", low, low))

    def _within_covariance(self) -> jax.Array:
        w = self.weights
        return jnp.einsum("k,kir,kjr->ij", w, self.factors, self.factors) + jnp.diag(w @ self.diag)

    def to_dense(self):
        """The same mixture as the dense kind (forms K matrices of D × D, any D)."""
        if is_concrete(self):
            # numpy throughout: a jnp operation on concrete leaves is still staged (a
            # tracer) when this runs inside an outer trace
            f = np.asarray(self.factors)
            full = np.einsum("kir,kjr->kij", f, f)
            full = full + np.stack([np.diag(d) for d in np.asarray(self.diag)])
            w = np.exp(np.asarray(self.log_weights))
            return self._dense_kind(w / w.sum(), np.asarray(self.means), full)
        full = jnp.einsum("kir,kjr->kij", self.factors, self.factors)
        full = sym(full + jax.vmap(jnp.diag)(self.diag))
        e, u = jnp.linalg.eigh(full)
        return self._dense_kind.tree_unflatten((False, False), (self.log_weights, self.means, e, u))

    def __repr__(self) -> str:
        extra = ", zero diagonal entries" if self.zero_diag else ""
        return (
            f"GaussianMixture(K={self.num_components}, D={self.dim}, low-rank-plus-diagonal "
            f"covariances, r={self.rank}{extra})"
        )

    def _need_positive_diag(self, what: str) -> None:
        if self.zero_diag:
            raise ValueError(
                f"{what}: this low-rank mixture has zero diagonal entries, so p0 may have no "
                "density with respect to Lebesgue measure; the low-rank kernels of p0 itself "
                "need diag > 0. Use gm.noised(alpha, sigma) (sigma > 0) for p_t, or "
                "gm.to_dense() for the dense kind's +-inf conventions"
            )

    # -- noising, points, sampling ------------------------------------------------------
    def _noised_impl(self, alpha, sigma):
        return type(self).tree_unflatten(
            (False,),
            (
                self.log_weights,
                alpha * self.means,
                alpha * self.factors,
                alpha**2 * self.diag + sigma**2,
            ),
        )

    def _component_points_impl(self, comp, z):
        k, r = self.num_components, self.rank
        onehot = jax.nn.one_hot(comp, k, dtype=z.dtype)  # (B, K)
        # one product (B, K r) @ (K r, D): no per-point (D, r) gather
        lifted = (onehot[:, :, None] * z[:, None, :r]).reshape(z.shape[0], k * r)
        ft = jnp.swapaxes(self.factors, 1, 2).reshape(k * r, self.dim)
        return self.means[comp] + lifted @ ft + jnp.sqrt(self.diag[comp]) * z[:, r:]

    def _sample_impl(self, key, n):
        comps, z = draw_components(key, self.log_weights, n, self.latent_dim, self.means.dtype)
        return self._blocks(
            lambda b: (self._component_points_impl(b[:, 0].astype(jnp.int32), b[:, 1:]),),
            jnp.concatenate([comps[:, None].astype(z.dtype), z], axis=1),
        )[0]

    # -- per-point kernels ----------------------------------------------------------------
    def _block_rows(self) -> int:
        per_row = 8 * self.num_components * (2 * self.dim + self.rank)
        return int(min(BLOCK_MAX, max(16, BLOCK_BYTES // per_row)))

    def _lr_parts(self, wh, means, x):
        """``(comp (B, K), r (B, K), u (K, B, D))`` for a block of points ``x`` under the
        components ``N(means_k, S_k)`` whitened in ``wh``; ``u/√d = S_k⁻¹(x - means_k)``."""
        u, maha = _woodbury.solve_terms(wh, means, x)
        comp = component_log_densities(self.log_weights, wh.logdet, maha.T, self.dim)
        return comp, jax.nn.softmax(comp, axis=-1), u

    def _lr_terms(self, wh, x):
        """``(comp (B, K), r (B, K), g (K, B, D))`` for a block of points."""
        comp, r, u = self._lr_parts(wh, self.means, x)
        g = -u / wh.rsd[:, None, :]
        return comp, r, g

    def _wh(self, what: str):
        self._need_positive_diag(what)
        return _woodbury.whiten(self.factors, self.diag)

    def _component_log_prob_impl(self, x, block=None):
        wh = self._wh("component_log_prob")
        return self._blocks(lambda b: (self._lr_terms(wh, b)[0],), x, block)[0]

    def _log_prob_impl(self, x, block=None):
        wh = self._wh("log_prob")
        fn = lambda b: (jax.nn.logsumexp(self._lr_terms(wh, b)[0], axis=-1),)  # noqa: E731
        return self._blocks(fn, x, block)[0]

    def _responsibilities_impl(self, x, block=None):
        wh = self._wh("responsibilities")
        return self._blocks(lambda b: (self._lr_terms(wh, b)[1],), x, block)[0]

    def _score_impl(self, x, block=None):
        wh = self._wh("score")

        def fn(b):
            _, r, g = self._lr_terms(wh, b)
            return (jnp.einsum("bk,kbd->bd", r, g),)

        return self._blocks(fn, x, block)[0]

    def _centred(self, wh, b):
        _, r, g = self._lr_terms(wh, b)
        s = jnp.einsum("bk,kbd->bd", r, g)
        c = jnp.sqrt(r).T[:, :, None] * (g - s[None])  # (K, B, D)
        return r, s, c

    def _score_and_hessian_impl(self, x, block=None):
        self._dense_check("the full Hessian")
        wh = self._wh("score_and_hessian")
        low = _woodbury.inverse_low_rank(wh)  # (K, D, r)

        def fn(b):
            r, s, c = self._centred(wh, b)
            outer = jnp.einsum("kbi,kbj->bij", c, c)
            within = jax.vmap(jnp.diag)(r @ (1.0 / self.diag)) - jnp.einsum(
                "bk,kir,kjr->bij", r, low, low
            )
            return s, sym(outer - within)

        return self._blocks(fn, x, block)

    def _hvp_impl(self, x, v, block=None):
        wh = self._wh("hessian_vector_product")
        dim = self.dim

        def fn(b):
            xb, vb = b[:, :dim], b[:, dim:]
            r, _, c = self._centred(wh, xb)
            cv = jnp.einsum("kbd,bd->kb", c, vb)
            pv = _woodbury.apply_inverse(wh, jnp.broadcast_to(vb[None], c.shape))
            return (jnp.einsum("kbd,kb->bd", c, cv) - jnp.einsum("bk,kbd->bd", r, pv),)

        return self._blocks(fn, jnp.concatenate([x, v], axis=-1), block)[0]

    def _hessian_diagonal_impl(self, x, block=None):
        wh = self._wh("hessian_diagonal")

        def fn(b):
            r, _, c = self._centred(wh, b)
            return (jnp.sum(c * c, axis=0) - r @ wh.prec_diag,)

        return self._blocks(fn, x, block)[0]

    # -- Tweedie posterior ----------------------------------------------------------------
    def _posterior_prep(self, alpha, sigma):
        dn = alpha**2 * self.diag + sigma**2
        wh = _woodbury.whiten(alpha * self.factors, dn)
        # tr V_k = sigma^2 tr(Sigma_k S_k^-1) = sigma^2 [sum_j gamma/(1+gamma) / alpha^2
        #          + sum_i d_i (S_k^-1)_ii]   (docs/mixture.md, low-rank posterior)
        tr_v = sigma**2 * (
            jnp.sum(1.0 - wh.inv1g, axis=-1) / alpha**2 + jnp.sum(self.diag * wh.prec_diag, -1)
        )
        return wh, tr_v

    def _posterior_parts_lr(self, prep, x_t, alpha):
        wh, tr_v = prep
        _, r, u = self._lr_parts(wh, alpha * self.means, x_t)  # r: (B, K)
        y = u / wh.rsd[:, None, :]  # S_k^-1 (x - alpha mu_k), (K, B, D)
        fy = jnp.einsum("kdr,kbd->kbr", self.factors, y)
        sy = jnp.einsum("kdr,kbr->kbd", self.factors, fy) + self.diag[:, None, :] * y
        m = self.means[:, None, :] + alpha * sy  # (K, B, D)
        return r, m, tr_v

    def _posterior_block(self, which: str, prep, x_t, alpha, sigma):
        if which == "cov":  # posterior_cov converts to the dense kind before the kernel
            raise ValueError("the low-rank kind has no blocked posterior covariance kernel")
        r, m, tr_v = self._posterior_parts_lr(prep, x_t, alpha)
        mbar = jnp.einsum("bk,kbd->bd", r, m)
        if which == "mean":
            return (mbar,)
        spread = jnp.sum((m - mbar[None]) ** 2, axis=-1)  # (K, B)
        return (jnp.einsum("bk,kb->b", r, tr_v[:, None] + spread),)

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return mixture_dict(self, factors=self.factors, diag=self.diag)
