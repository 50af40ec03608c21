r"""The matrix-optimal weighting of a training run, computed so that it stays usable in any
dimension: $M(x_t)=\mathrm{Cov}[\varepsilon\mid x_t]^{-1}$ with the eigenvalues of
$\mathrm{Cov}[\varepsilon\mid x_t]$ floored at $1/M_{\max}$.

Why a floor. For data near a low-dimensional set (every fitted image mixture: a median of
7–32 of 64 eigenvalues per component sit on scikit-learn's ``reg_covar`` floor of 1e-6, or
are exactly zero with ``rank_tol``) the posterior noise is pinned down in those directions:
for a Gaussian component with eigenvalue $e$, $\mathrm{Var}[\varepsilon\mid x_t]=
e/(e+\tilde\sigma^2)$, so $M = 1+\tilde\sigma^2/e$ reaches $10^6$ at σ = 1 on the floor and
$\infty$ on an exact zero. In float32 (7 significant digits) an eigenvalue below about
$10^{-7}$ of the largest is rounding noise, possibly negative, and its inverse was $10^{28}$
(the old floor ``finfo.tiny``): the loss of a few pinned directions swamped all others or
overflowed. Here the posterior covariance and its eigendecomposition are computed in the
mixture's dtype (float64 when JAX's x64 is on, as on the command line), and the weight of a
direction is capped at :data:`MATRIX_MAX_WEIGHT` = 1e4 (float32 then keeps three digits for
the smallest weights, which are ≥ 1). The weight is exact wherever every eigenvalue of
$\mathrm{Cov}[\varepsilon\mid x_t]$ is ≥ 1e-4 — on the 2-D ring everywhere on compare's
schedule — and the cap is reported (``LossWeighting.name`` stays ``matrix_optimal``).

Cost: one posterior covariance ($K$ components, $O(KD^3)$) and one $D\times D$
eigendecomposition per example and step, shared by every capacity of a seed. Measured here
in 64-D with K = 10 (docs/sweeps.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..mixture import GaussianMixture, posterior_cov
from ._weighting import LossWeighting

#: The largest eigenvalue of the matrix weight $M=\mathrm{Cov}[\varepsilon\mid x_t]^{-1}$.
MATRIX_MAX_WEIGHT = 1e4


def matrix_optimal_weighting(
    gm: GaussianMixture, max_weight: float = MATRIX_MAX_WEIGHT
) -> LossWeighting:
    r"""The ``matrix_optimal`` :class:`LossWeighting` of ``gm``: $M(x_t)=U\,\mathrm{diag}
    (1/\max(v_i, 1/M_{\max}))\,U^\top$ for $\mathrm{Cov}[\varepsilon\mid x_t]=\frac{\alpha^2}
    {\sigma^2}\mathrm{Cov}[x_0\mid x_t]=U\,\mathrm{diag}(v)\,U^\top$ (Zhang et al.
    2508.01597, FORMULAS.md §3.15: $W^*/\sigma^2$ in ε space), returned in float32.

    Args:
        gm: the clean mixture (its dtype is the dtype of the computation).
        max_weight: $M_{\max}>1$, the cap of one direction's weight.

    Returns:
        A ``kind="matrix"`` :class:`LossWeighting`.
    """
    if not (isinstance(max_weight, int | float) and max_weight > 1.0):
        raise ValueError(f"max_weight must be a number > 1, got {max_weight!r}")
    floor = 1.0 / float(max_weight)
    dtype = gm.means.dtype
    per_point = jax.vmap(posterior_cov, in_axes=(None, 0, 0, 0))

    def weigh(x_t, alpha, sigma, lam):
        x, a, s = (jnp.asarray(v, dtype) for v in (x_t, alpha, sigma))
        cov_eps = per_point(gm, x, a, s) * ((a / s) ** 2)[:, None, None]
        v, u = jnp.linalg.eigh(cov_eps)
        m = 1.0 / jnp.maximum(v, floor)
        return jnp.einsum("bij,bj,bkj->bik", u, m, u).astype(jnp.float32)

    return LossWeighting("matrix_optimal", "matrix", weigh)
