r"""What both kinds of :class:`dsmtheory.GaussianMixture` share (the dense kind in
:mod:`dsmtheory.mixture`, the low-rank-plus-diagonal kind in :mod:`dsmtheory._low_rank`):
the rank tolerance, the dense-view limit, the checks of weights and means, exact
symmetrization and the log-density of the components from their Mahalanobis terms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._numerics import LOG_2PI
from ._validation import as_float_array

WEIGHT_TOL = 1e-8
#: Rank tolerance. An eigenvalue $e$ of a component covariance with
#: $|e|\le\mathrm{RANK\_RTOL}\cdot\max(e_{\max},\ \text{tiny})$ is set to exactly 0 ($e_{\max}$
#: the component's largest eigenvalue, tiny = 2.2e-308 the smallest normal float64, the
#: floor that makes an all-zero covariance an atom); one below $-\mathrm{RANK\_RTOL}\cdot
#: e_{\max}$ is refused. Why 1e-12: ``eigh`` of a symmetric matrix is backward stable, its
#: eigenvalues are off by up to about $D\varepsilon\,e_{\max}$ ($\varepsilon$ = 2.2e-16):
#: 1.4e-14 relative at D = 64, the largest dense D of the valid domain, so the exact zeros of
#: a clipped fit come back within ±1e-14 and are recognised with a 70-fold margin; and an
#: eigenvalue below 1e-12 relative is resolved by ``eigh`` only to about
#: $D\varepsilon/10^{-12}$ ≈ 1 % anyway. It is 1e6 below scikit-learn's regularisation floor
#: ``reg_covar = 1e-6``, which therefore stays a (tiny) positive eigenvalue unless clipped.
#: The same tolerance decides whether a point lies on the support of a rank-deficient
#: component (:meth:`GaussianMixture.log_prob`) and which entries of its infinite Hessian are
#: infinite.
RANK_RTOL = 1e-12
TINY = float(np.finfo(np.float64).tiny)
#: Largest D for which a low-rank mixture offers dense views (``eigvals``, ``eigvecs``,
#: ``covs``, ``precisions``, ``posterior_cov``, full Hessians): K matrices of D × D
#: (0.5 MB each at D = 256). Above it they raise, so a D = 3072 mixture never forms them by
#: accident; :meth:`GaussianMixture.to_dense` converts explicitly at any D.
DENSE_VIEW_MAX_DIM = 256


def sym(a):
    """Symmetrize the last two axes exactly: ``U diag(e) Uᵀ`` by einsum differs from its
    transpose in the last bit because the products are taken in a different order."""
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def component_log_densities(log_weights, logdet, maha, dim: int):
    r"""$\log\pi_k-\tfrac12(D\log2\pi+\log\det S_k+\mathrm{maha}_k)$, ``(B, K)`` from
    ``log_weights (K,)``, ``logdet (K,)`` and ``maha (B, K)``."""
    return log_weights[None] - 0.5 * (dim * LOG_2PI + logdet[None] + maha)


def draw_components(key, log_weights, n: int, width: int, dtype):
    """Component indices ``(n,)`` drawn by the weights and standard normals ``(n, width)``,
    from one ``key`` (the first step of sampling either kind)."""
    kc, ke = jax.random.split(key)
    comps = jax.random.categorical(kc, log_weights, shape=(n,))
    return comps, jax.random.normal(ke, (n, width), dtype=dtype)


def require_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name`` if ``arr`` holds NaN or inf."""
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, but it contains NaN or inf")


def validate_weights_means(weights, means):
    """Checked float64 ``(w (K,), mu (K, D))``, w normalised to sum exactly 1."""
    w = as_float_array(weights, "weights")
    mu = as_float_array(means, "means")
    if w.ndim != 1 or w.size == 0:
        raise ValueError(
            f"weights must be a non-empty 1-D array of shape (K,), got shape {w.shape}"
        )
    k = w.size
    if mu.ndim != 2 or mu.shape[0] != k or mu.shape[1] == 0:
        raise ValueError(
            f"means must have shape (K, D) = ({k}, D) to match weights, got {mu.shape}"
        )
    require_finite(w, "weights")
    require_finite(mu, "means")
    if np.any(w <= 0):
        i = int(np.argmax(w <= 0))
        raise ValueError(f"weights must all be > 0, but weights[{i}] = {w[i]!r}")
    if abs(w.sum() - 1.0) > WEIGHT_TOL:
        raise ValueError(f"weights must sum to 1 (within {WEIGHT_TOL:g}), got sum {w.sum()!r}")
    return w / w.sum(), mu


def mixture_dict(gm, **covariance) -> dict:
    """``{"weights", "means", **covariance}`` as plain Python lists (``to_dict`` of either
    kind)."""
    out = {"weights": np.asarray(gm.weights).tolist(), "means": np.asarray(gm.means).tolist()}
    out.update({k: np.asarray(v).tolist() for k, v in covariance.items()})
    return out
