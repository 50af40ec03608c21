r"""Samplers for a VE process driven by any score function (FORMULAS.md §3 item 4, §7).

**VE only.** Every sampler here runs the variance-exploding process
$x_\sigma=x_0+\sigma\varepsilon$ (EDM's $\tilde\sigma$; FORMULAS.md §1) and calls
``score_fn(x, sigma)`` $\approx\nabla_x\log p_\sigma(x)$ with ``x`` a batch ``(n, D)`` and
``sigma`` a scalar. A VP model is used by the usual change of variables, which the caller
does: with $\tilde\sigma=\sigma/\alpha$ and $\tilde x=x_t/\alpha$, the VE score is
$\nabla_{\tilde x}\log\tilde p(\tilde x)=\alpha\,\nabla_{x_t}\log p_t(\alpha\tilde x)$
(for an $\varepsilon$-model simply $-\hat\varepsilon/\tilde\sigma$, see
:func:`dsmtheory.models.as_score_fn`); a VE sample is a clean sample in both.

* :func:`heun_pf_ode`: the probability-flow ODE
  $\mathrm dx/\mathrm d\sigma=-\sigma\,\nabla_x\log p_\sigma(x)$ integrated with Heun's
  second-order method on EDM's $\rho$-schedule, the last step Euler to $\sigma=0$
  (Karras et al. 2206.00364, Algorithm 1; $2N-1$ score evaluations).
* :func:`euler_maruyama_sde`: the reverse VE SDE
  $\mathrm dx=-\mathrm d(\sigma^2)\,\nabla\log p_\sigma+\sqrt{-\mathrm d(\sigma^2)}\,
  \mathrm d\bar w$ (σ decreasing) with Euler–Maruyama on Song's geometric grid, then one
  noise-free Tweedie step to $\sigma=0$ (Song et al. 2011.13456).

Both are pure ``jax.jit``-compiled kernels over a batch of particles, returning a
:class:`SampleResult` NamedTuple (samples and, optionally, the whole trajectory).
``sample_pf_ode`` / ``sample_sde`` draw the initial $x\sim N(0,\sigma_{max}^2I)$ for you.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import as_float_array, check_count, check_scalar

__all__ = [
    "SampleResult",
    "edm_sigmas",
    "geometric_sigmas",
    "heun_pf_ode",
    "euler_maruyama_sde",
    "sample_pf_ode",
    "sample_sde",
]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


class SampleResult(NamedTuple):
    """What a sampler returns.

    Attributes:
        samples: ``(n, D)`` final samples (at $\\sigma=0$).
        trajectory: ``(S+1, n, D)`` the state at every grid level ``sigmas`` (the first is
            the initial state, the last equals ``samples``), or ``None`` unless asked for.
        sigmas: ``(S+1,)`` the noise levels of the grid, ending with 0.
        nfe: number of score evaluations (per particle).
    """

    samples: jax.Array
    trajectory: jax.Array | None
    sigmas: jax.Array
    nfe: int


# ---------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------
def _check_steps(num_steps, minimum: int = 1) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
        raise TypeError(f"num_steps must be an integer, got {num_steps!r}")
    if num_steps < minimum:
        raise ValueError(f"num_steps must be >= {minimum}, got {num_steps!r}")
    return int(num_steps)


def _check_sigma_range(sigma_min, sigma_max) -> tuple[float, float]:
    sigma_min = check_scalar(sigma_min, "sigma_min", positive=True)
    sigma_max = check_scalar(sigma_max, "sigma_max", positive=True)
    if not sigma_min < sigma_max:
        raise ValueError(f"sigma_min must be < sigma_max, got {sigma_min!r} >= {sigma_max!r}")
    return float(sigma_min), float(sigma_max)


def edm_sigmas(
    num_steps: int = 18,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    dtype=None,
) -> jax.Array:
    r"""EDM's $\rho$-schedule with a final 0 (Karras et al. eq. 5; FORMULAS.md §2):
    $\sigma_i=\big(\sigma_{max}^{1/\rho}+\tfrac{i}{N-1}(\sigma_{min}^{1/\rho}-\sigma_{max}^{1/\rho})\big)^\rho$
    for $i<N$, $\sigma_N=0$. Returns ``(N+1,)``, decreasing.
    """
    n = _check_steps(num_steps, 2)
    sigma_min, sigma_max = _check_sigma_range(sigma_min, sigma_max)
    rho = check_scalar(rho, "rho", positive=True)
    i = np.arange(n) / (n - 1)
    s = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return jnp.asarray(np.append(s, 0.0), dtype=dtype or jnp.result_type(float))


def geometric_sigmas(
    num_steps: int = 1000, *, sigma_min: float = 0.01, sigma_max: float = 50.0, dtype=None
) -> jax.Array:
    r"""Song's VE grid $\sigma_i=\sigma_{max}(\sigma_{min}/\sigma_{max})^{i/(N-1)}$,
    $i=0..N-1$, with a final 0 (FORMULAS.md §2, VE geometric). Returns ``(N+1,)``."""
    n = _check_steps(num_steps, 2)
    sigma_min, sigma_max = _check_sigma_range(sigma_min, sigma_max)
    s = sigma_max * (sigma_min / sigma_max) ** (np.arange(n) / (n - 1))
    return jnp.asarray(np.append(s, 0.0), dtype=dtype or jnp.result_type(float))


def _check_sigmas(sigmas) -> jax.Array:
    if isinstance(sigmas, jax.core.Tracer):
        return sigmas
    arr = as_float_array(sigmas, "sigmas")
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"sigmas must be a 1-D grid of at least 2 levels, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr[:-1] <= 0) or arr[-1] != 0:
        raise ValueError("sigmas must be finite, > 0 except the last, and end with 0")
    if np.any(np.diff(arr) >= 0):
        raise ValueError("sigmas must be strictly decreasing")
    return jnp.asarray(sigmas)


def _check_x(x) -> jax.Array:
    if isinstance(x, jax.core.Tracer):
        return x
    arr = as_float_array(x, "x_init")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"x_init must have shape (n, D) with n, D >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x_init must be finite, but it contains NaN or inf")
    return jnp.asarray(x)


def _check_score_fn(score_fn) -> None:
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable as score_fn(x, sigma), got {score_fn!r}")


# ---------------------------------------------------------------------------------------
# Probability-flow ODE, Heun (EDM Algorithm 1)
# ---------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("score_fn", "return_trajectory"))
def _heun(score_fn, x, sigmas, return_trajectory):
    dtype = x.dtype

    def drift(x, s):
        # dx/dsigma = -sigma * score(x, sigma)
        return -s * score_fn(x, s).astype(dtype)

    def step(x, pair):
        s, s_next = pair[0], pair[1]
        d = drift(x, s)
        x_euler = x + (s_next - s) * d
        x_new = x + (s_next - s) * 0.5 * (d + drift(x_euler, s_next))
        return x_new, (x_new if return_trajectory else None)

    pairs = jnp.stack([sigmas[:-2], sigmas[1:-1]], axis=1).astype(dtype)
    x_last, traj = jax.lax.scan(step, x, pairs)
    s = sigmas[-2].astype(dtype)
    x_final = x_last + (sigmas[-1].astype(dtype) - s) * drift(x_last, s)  # Euler to sigma=0
    if return_trajectory:
        traj = jnp.concatenate([x[None], traj, x_final[None]], axis=0)
    return x_final, traj


def heun_pf_ode(
    score_fn: ScoreFn, x_init, sigmas, *, return_trajectory: bool = False
) -> SampleResult:
    r"""Integrate the probability-flow ODE from ``sigmas[0]`` down to 0 with Heun's method.

    $$\frac{\mathrm dx}{\mathrm d\sigma}=-\sigma\,\nabla_x\log p_\sigma(x),\qquad
    d_i=-\sigma_i s(x_i,\sigma_i),\quad \bar x=x_i+(\sigma_{i+1}-\sigma_i)d_i,$$
    $$x_{i+1}=x_i+(\sigma_{i+1}-\sigma_i)\tfrac12\big(d_i-\sigma_{i+1}s(\bar x,\sigma_{i+1})\big)$$

    for every step with $\sigma_{i+1}>0$, and the Euler step $\bar x$ for the last one, into
    $\sigma=0$ (Karras et al. 2206.00364, Algorithm 1, deterministic; FORMULAS.md §3 item 4).

    Args:
        score_fn: ``score_fn(x, sigma)`` with ``x`` ``(n, D)``, scalar ``sigma`` → ``(n, D)``,
            the VE score $\nabla\log p_\sigma$. Must be hashable (a function or ``lambda``); it
            is a static argument of the compiled kernel.
        x_init: ``(n, D)`` initial particles at ``sigmas[0]`` (typically
            $\sigma_{max}\,N(0,I)$).
        sigmas: ``(S+1,)`` strictly decreasing grid ending in 0, e.g. :func:`edm_sigmas`.
        return_trajectory: also return the ``(S+1, n, D)`` states on the grid.

    Returns:
        :class:`SampleResult` with ``nfe = 2S - 1``.

    Raises:
        TypeError: ``score_fn`` not callable.
        ValueError: bad ``x_init`` or ``sigmas``.
    """
    _check_score_fn(score_fn)
    x = _check_x(x_init)
    sigmas = _check_sigmas(sigmas)
    samples, traj = _heun(score_fn, x, sigmas, bool(return_trajectory))
    num = sigmas.shape[0] - 1
    return SampleResult(samples, traj, sigmas, 2 * num - 1)


# ---------------------------------------------------------------------------------------
# Reverse SDE, Euler-Maruyama (Song et al. VE)
# ---------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("score_fn", "return_trajectory"))
def _euler_maruyama(score_fn, key, x, sigmas, return_trajectory):
    dtype = x.dtype
    num = sigmas.shape[0] - 2  # stochastic steps; the last step is the noise-free denoise
    keys = jax.random.split(key, num)

    def step(x, inp):
        s, s_next, k = inp[0][0], inp[0][1], inp[1]
        dvar = s * s - s_next * s_next
        z = jax.random.normal(k, x.shape, dtype=dtype)
        x_new = x + dvar * score_fn(x, s).astype(dtype) + jnp.sqrt(dvar) * z
        return x_new, (x_new if return_trajectory else None)

    pairs = jnp.stack([sigmas[:-2], sigmas[1:-1]], axis=1).astype(dtype)
    x_last, traj = jax.lax.scan(step, x, (pairs, keys))
    s = sigmas[-2].astype(dtype)
    x_final = x_last + s * s * score_fn(x_last, s).astype(dtype)  # Tweedie: E[x0 | x_sigma]
    if return_trajectory:
        traj = jnp.concatenate([x[None], traj, x_final[None]], axis=0)
    return x_final, traj


def euler_maruyama_sde(
    score_fn: ScoreFn, key: jax.Array, x_init, sigmas, *, return_trajectory: bool = False
) -> SampleResult:
    r"""Simulate the reverse VE SDE with Euler–Maruyama, then denoise.

    For consecutive positive levels $\sigma_i>\sigma_{i+1}$, with
    $\Delta_i=\sigma_i^2-\sigma_{i+1}^2$ and $z_i\sim N(0,I)$,

    $$x_{i+1}=x_i+\Delta_i\,s(x_i,\sigma_i)+\sqrt{\Delta_i}\,z_i,$$

    the discretization of $\mathrm dx=-\mathrm d(\sigma^2)\nabla\log p_\sigma\,+\,
    \sqrt{-\mathrm d(\sigma^2)}\,\mathrm d\bar w$ (Song et al. 2011.13456, VE SDE,
    $g^2=\mathrm d\sigma^2/\mathrm dt$; FORMULAS.md §1-2). The final step, from the smallest
    positive level to 0, is the noise-free Tweedie denoiser
    $x\leftarrow x+\sigma^2 s(x,\sigma)=\mathbb E[x_0\mid x_\sigma]$.

    Args:
        score_fn: as in :func:`heun_pf_ode`.
        key: JAX PRNG key for the Brownian increments.
        x_init: ``(n, D)`` initial particles at ``sigmas[0]``.
        sigmas: ``(S+1,)`` strictly decreasing grid ending in 0 with $S\ge2$, e.g.
            :func:`geometric_sigmas`.
        return_trajectory: also return the ``(S+1, n, D)`` states.

    Returns:
        :class:`SampleResult` with ``nfe = S``.
    """
    _check_score_fn(score_fn)
    x = _check_x(x_init)
    sigmas = _check_sigmas(sigmas)
    if sigmas.shape[0] < 3:
        raise ValueError("sigmas must have at least 3 levels (two positive, then 0)")
    samples, traj = _euler_maruyama(score_fn, key, x, sigmas, bool(return_trajectory))
    return SampleResult(samples, traj, sigmas, sigmas.shape[0] - 1)


# ---------------------------------------------------------------------------------------
# Convenience: draw the prior, then run a kernel
# ---------------------------------------------------------------------------------------
def _check_n_dim(num_samples, dim):
    check_count(num_samples, "num_samples")
    check_count(dim, "dim")


def sample_pf_ode(
    score_fn: ScoreFn,
    key: jax.Array,
    num_samples: int,
    dim: int,
    *,
    num_steps: int = 18,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    return_trajectory: bool = False,
    dtype=None,
) -> SampleResult:
    r"""Draw $x\sim N(0,\sigma_{max}^2I)$ and run :func:`heun_pf_ode` on
    :func:`edm_sigmas` (EDM defaults: $N=18$ steps, 35 score evaluations). Choose
    ``sigma_max`` well above the data scale (Song: the largest pairwise distance)."""
    _check_n_dim(num_samples, dim)
    sigmas = edm_sigmas(num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho, dtype=dtype)
    x0 = sigmas[0] * jax.random.normal(key, (int(num_samples), int(dim)), dtype=sigmas.dtype)
    return heun_pf_ode(score_fn, x0, sigmas, return_trajectory=return_trajectory)


def sample_sde(
    score_fn: ScoreFn,
    key: jax.Array,
    num_samples: int,
    dim: int,
    *,
    num_steps: int = 1000,
    sigma_min: float = 0.01,
    sigma_max: float = 50.0,
    return_trajectory: bool = False,
    dtype=None,
) -> SampleResult:
    r"""Draw $x\sim N(0,\sigma_{max}^2I)$ and run :func:`euler_maruyama_sde` on
    :func:`geometric_sigmas` (Song's VE defaults $\sigma_{min}=0.01$, $\sigma_{max}=50$,
    $N=1000$)."""
    _check_n_dim(num_samples, dim)
    sigmas = geometric_sigmas(num_steps, sigma_min=sigma_min, sigma_max=sigma_max, dtype=dtype)
    k_init, k_path = jax.random.split(key)
    x0 = sigmas[0] * jax.random.normal(k_init, (int(num_samples), int(dim)), dtype=sigmas.dtype)
    return euler_maruyama_sde(score_fn, k_path, x0, sigmas, return_trajectory=return_trajectory)
