"""Stable numerical primitives shared by the exact paths.

Each helper exists because the naive formula fails somewhere in the valid domain
(σ from 1e-4 to 1e4, |x| up to 1e3, K up to 256, D up to 64); the docstring says where.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LOG_2PI = 1.8378770664093453  # log(2π), to full float64 precision


def log_sigmoid(x):
    """log σ(x) = -softplus(-x).

    ``jnp.log(jax.nn.sigmoid(x))`` underflows to ``-inf`` for x ≲ -745 in float64;
    the softplus form stays finite and exact for every finite x.
    """
    return -jax.nn.softplus(-x)


def sigmoid(x):
    """σ(x) = 1/(1+e^{-x}), computed without overflow for |x| large (via ``jax.nn.sigmoid``)."""
    return jax.nn.sigmoid(x)


def log1mexp(x):
    """log(1 - e^{-x}) for x > 0.

    Switches between ``log(-expm1(-x))`` (accurate for small x) and ``log1p(-exp(-x))``
    (accurate for large x) at x = log 2 (Mächler 2012); either one alone loses all digits
    at one end.
    """
    x = jnp.asarray(x)
    return jnp.where(
        x < jnp.log(2.0),
        jnp.log(-jnp.expm1(-jnp.minimum(x, jnp.log(2.0)))),
        jnp.log1p(-jnp.exp(-jnp.maximum(x, jnp.log(2.0)))),
    )


def logexpm1(x):
    """log(e^x - 1) for x > 0 = x + log1mexp(x); ``log(expm1(x))`` overflows for x > 709."""
    return x + log1mexp(x)


def safe_divide(num, den, eps=None):
    """num / den with the denominator clamped away from zero by ``eps``.

    Used only where the denominator is mathematically positive but may round to zero
    (e.g. 1 - σ² tr I / D at very small σ). ``eps`` defaults to the dtype's tiny value.
    """
    den = jnp.asarray(den)
    if eps is None:
        eps = jnp.finfo(den.dtype).tiny if jnp.issubdtype(den.dtype, jnp.floating) else 0
    return num / jnp.where(jnp.abs(den) < eps, jnp.where(den < 0, -eps, eps), den)


def lead(a, ndim: int):
    """``a`` with leading singleton axes up to ``ndim`` axes: explicit broadcasting of a
    per-component array ``(K, ...)`` against a batch ``(..., K, ...)`` (the package runs
    under ``jax_numpy_rank_promotion="raise"`` in its tests)."""
    a = jnp.asarray(a)
    return jnp.reshape(a, (1,) * (ndim - a.ndim) + a.shape)
