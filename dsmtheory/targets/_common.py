"""Checks and the per-component law of the first-order target, shared by the target modules."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._validation import check_scalar, is_concrete
from ..mixture import GaussianMixture, check_mixture, posterior_components

SUPPORTED_ORDERS = (1, 2)
MAX_ORDER_1D = 12


def check_order(order, supported=SUPPORTED_ORDERS) -> int:
    """Return ``order`` as an int; TypeError/ValueError unless it is a supported integer."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"order must be an integer, got {type(order).__name__}")
    if order not in supported:
        raise ValueError(
            f"order must be one of {tuple(supported)} for this function, got {order!r}"
        )
    return int(order)


def check_alpha_sigma(alpha, sigma) -> None:
    """α and σ must be positive real scalars (concrete values only)."""
    check_scalar(alpha, "alpha", positive=True)
    check_scalar(sigma, "sigma", positive=True)


def check_mixture_inputs(gm, alpha, sigma, order) -> int:
    """The common checks of the functions of a mixture at (α, σ) and an order; returns the
    order as an int."""
    order = check_order(order)
    check_mixture(gm)
    check_alpha_sigma(alpha, sigma)
    return order


def check_kappa(kappa) -> None:
    """κ must lie in [0, 1] (a convex mix)."""
    if is_concrete(kappa):
        k = np.asarray(kappa, dtype=np.float64)
        if not np.all(np.isfinite(k)) or np.any(k < 0) or np.any(k > 1):
            raise ValueError(f"kappa must lie in [0, 1], got {kappa!r}")


def score_parts(gm: GaussianMixture, x_t, alpha, sigma):
    r"""Per-component law of $u=h_1$ given $x_t$: responsibilities ``r (..., K)``, means
    $g_k$ ``(..., K, D)`` and covariance eigenvalues $c_k$ ``(K, D)`` in the eigenbasis
    ``gm.eigvecs`` ($C_k=U_k\,\mathrm{diag}(c_k)U_k^\top$)."""
    r, m, v = posterior_components(gm, x_t, alpha, sigma)
    x_t = jnp.asarray(x_t)
    g = (alpha * m - x_t[..., None, :]) / sigma**2
    c = alpha**2 * v / sigma**4
    return r, g, c


def cov_mats(gm: GaussianMixture, c):
    """``(K, D, D)`` matrices ``U diag(c) Uᵀ``."""
    return jnp.einsum("kij,kj,klj->kil", gm.eigvecs, c, gm.eigvecs)


def rotate_in(gm: GaussianMixture, v):
    """``(..., K, D)`` → coordinates in each component's eigenbasis, ``U_kᵀ v_k``."""
    return jnp.einsum("...kd,kde->...ke", v, gm.eigvecs)
