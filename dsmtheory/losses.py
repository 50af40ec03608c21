r"""Per-example denoising score matching losses with one canonical weight.

The weighting is always given as the $\varepsilon$-space multiplier
$\omega_\varepsilon(\lambda)$ (DESIGN.md, "One coordinate, one canonical weight") and converted
to the network's parameterization $a$ by $\omega_a=\omega_\varepsilon/\kappa_a(\lambda)$
(FORMULAS.md §1):

$$\ell_a=\omega_a(\lambda)\,\|a-\hat a\|^2=\frac{\omega_\varepsilon(\lambda)}{\kappa_a(\lambda)}
\|a-\hat a\|^2=\omega_\varepsilon(\lambda)\,\|\varepsilon-\hat\varepsilon\|^2 .$$

So the *same* network output, expressed in any parameterization, gives the same weighted
loss: a v-prediction trainer can never silently reuse an $\varepsilon$ formula (diffusers
issue #5654).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ._validation import check_choice, check_positive, is_concrete, real_array
from .parameterization import PARAMETERIZATIONS, edm_coefficients, kappa
from .schedules import PROCESSES, alpha_sigma

__all__ = ["dsm_target", "dsm_loss"]


def _ftype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def dsm_target(x0, eps, lam, *, parameterization: str, process: str, sigma_data: float = 0.5):
    r"""The regression target of parameterization $a$ for $x_t=\alpha x_0+\sigma\varepsilon$.

    $\varepsilon$; $x_0$; $v=\alpha\varepsilon-\sigma x_0$; $s_c=-\varepsilon/\sigma$;
    $F=(x_0-c_{skip}\,x_t/\alpha)/c_{out}$ (FORMULAS.md §1, "Targets").

    Args:
        x0: ``(..., D)`` clean data.
        eps: ``(..., D)`` noise.
        lam: log-SNR, scalar or ``(...)``.
        parameterization: ``"eps"``, ``"x0"``, ``"v"``, ``"score"`` or ``"F"``.
        process: ``"ve"`` or ``"vp"``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        ``(..., D)`` target.
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("process", process, PROCESSES)
    check_positive(sigma_data, "sigma_data")
    x0 = real_array(x0, "x0", dtype=_ftype(), finite=True)
    eps = real_array(eps, "eps", dtype=_ftype(), finite=True)
    lam = real_array(lam, "lam", dtype=_ftype())
    if is_concrete((x0, eps, lam)):
        if x0.ndim == 0 or eps.ndim == 0:
            raise ValueError(f"x0 and eps must have shape (..., D), got {x0.shape} and {eps.shape}")
        try:
            jnp.broadcast_shapes(x0.shape[:-1], eps.shape[:-1], lam.shape)
            jnp.broadcast_shapes(x0.shape, eps.shape)
        except ValueError as exc:
            raise ValueError(
                f"x0 {x0.shape}, eps {eps.shape} and lam {lam.shape} must broadcast: x0 and "
                f"eps of shape (..., D), lam of their batch shape (...)"
            ) from exc
    a, s = alpha_sigma(lam, process)
    a, s = a[..., None], s[..., None]
    if parameterization == "eps":
        return jnp.broadcast_to(eps, jnp.broadcast_shapes(eps.shape, x0.shape))
    if parameterization == "x0":
        return jnp.broadcast_to(x0, jnp.broadcast_shapes(eps.shape, x0.shape))
    if parameterization == "v":
        return a * eps - s * x0
    if parameterization == "score":
        return -eps / s
    c_skip, c_out = edm_coefficients(a, s, sigma_data)
    x_t = a * x0 + s * eps
    return (x0 - c_skip * x_t / a) / c_out


def dsm_loss(
    pred,
    x0,
    eps,
    lam,
    *,
    parameterization: str,
    weighting: Callable | jax.Array | float,
    process: str,
    sigma_data: float = 0.5,
):
    r"""Weighted per-example DSM loss, the weight applied as $\omega_\varepsilon$.

    $$\ell=\frac{\omega_\varepsilon(\lambda)}{\kappa_a(\lambda)}\,\|a-\hat a\|^2
    \;\big(=\omega_\varepsilon(\lambda)\,\|\varepsilon-\hat\varepsilon\|^2\big),$$

    with $\kappa_a$ from :func:`dsmtheory.parameterization.kappa` (FORMULAS.md §1). The squared
    norm sums over the last axis. Vectorized over leading axes and ``jax.vmap``-able.

    Args:
        pred: ``(..., D)`` network output in ``parameterization``.
        x0: ``(..., D)`` clean data.
        eps: ``(..., D)`` noise used to build $x_t=\alpha x_0+\sigma\varepsilon$.
        lam: log-SNR, scalar or ``(...)``.
        parameterization: ``"eps"``, ``"x0"``, ``"v"``, ``"score"`` or ``"F"``.
        weighting: a callable $\lambda\mapsto\omega_\varepsilon(\lambda)$ (e.g.
            ``dsmtheory.weightings.get("min_snr")``), or precomputed $\omega_\varepsilon$
            values broadcastable to ``(...)`` (use this for batch-dependent weightings such
            as ALSR under ``vmap``).
        process: ``"ve"`` or ``"vp"``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        ``(...)`` weighted per-example losses.

    Raises:
        ValueError: unknown parameterization/process, shape mismatch, ``sigma_data`` <= 0.
        TypeError: ``weighting`` is a string (build it with ``weightings.get`` first).
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("process", process, PROCESSES)
    check_positive(sigma_data, "sigma_data")
    if isinstance(weighting, str):
        raise TypeError(
            "weighting must be a callable or an array of omega_eps values, not a string; "
            f"use dsmtheory.weightings.get({weighting!r})"
        )
    pred = real_array(pred, "pred", dtype=_ftype())
    if (
        pred.ndim == 0
        or jnp.shape(x0)[-1:] != pred.shape[-1:]
        or jnp.shape(eps)[-1:] != pred.shape[-1:]
    ):
        raise ValueError(
            f"pred, x0 and eps must have shape (..., D) with one D, got {pred.shape}, "
            f"{jnp.shape(x0)} and {jnp.shape(eps)}"
        )
    lam = real_array(lam, "lam", dtype=_ftype())
    target = dsm_target(
        x0, eps, lam, parameterization=parameterization, process=process, sigma_data=sigma_data
    )
    sq = jnp.sum((target - pred) ** 2, axis=-1)
    if callable(weighting):
        omega_eps = weighting(lam)
    else:
        omega_eps = real_array(weighting, "weighting", dtype=_ftype(), finite=True)
    return omega_eps / kappa(parameterization, lam, process, sigma_data=sigma_data) * sq
