r"""Discrete DDPM noise schedules built as diffusers builds them, and their log-SNR.

diffusers' ``DDPMScheduler`` stores $\bar\alpha_t$ as ``alphas_cumprod[t]`` for the integer
timesteps $t=0,\dots,T-1$ ($t=0$ the least noisy), with
$\bar\alpha_t=\prod_{s\le t}(1-\beta_s)$ and, for a VP process,

$$\mathrm{SNR}_t=\frac{\bar\alpha_t}{1-\bar\alpha_t},\qquad
\lambda_t=\log\bar\alpha_t-\log(1-\bar\alpha_t)$$

(FORMULAS.md §1: $\alpha_t^2=\bar\alpha_t$ in discrete DDPM). Its three built-in
``beta_schedule`` values are

* ``"linear"``: $\beta=\mathrm{linspace}(\beta_{start},\beta_{end},T)$;
* ``"scaled_linear"``: $\beta=\mathrm{linspace}(\sqrt{\beta_{start}},\sqrt{\beta_{end}},T)^2$
  (latent diffusion; Stable Diffusion's configs use $\beta_{start}=0.00085$,
  $\beta_{end}=0.012$);
* ``"squaredcos_cap_v2"``: Nichol & Dhariwal's cosine,
  $\beta_i=\min\big(1-\bar f((i+1)/T)/\bar f(i/T),\,0.999\big)$ with
  $\bar f(u)=\cos^2\!\big(\tfrac{u+0.008}{1.008}\tfrac\pi2\big)$.

The defaults $\beta_{start}=10^{-4}$, $\beta_{end}=0.02$, $T=1000$ are ``DDPMScheduler``'s.
diffusers computes the betas in float32; here they are computed in float64 (pass
``dtype=np.float32`` to reproduce diffusers' rounding as well).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_count

__all__ = ["BETA_SCHEDULES", "DiscreteSchedule", "ddpm_alphas_cumprod", "ddpm_log_snr"]

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
_MAX_BETA = 0.999  # diffusers' betas_for_alpha_bar default


def _cosine_alpha_bar(u: np.ndarray) -> np.ndarray:
    return np.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2


def ddpm_alphas_cumprod(
    beta_schedule: str = "linear",
    num_train_timesteps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    *,
    dtype=np.float64,
) -> np.ndarray:
    r"""$\bar\alpha_t$, ``alphas_cumprod`` of diffusers' ``DDPMScheduler``, for $t=0..T-1$.

    $\bar\alpha_t=\prod_{s\le t}(1-\beta_s)$ with the betas of ``beta_schedule`` (module
    docstring). ``beta_start`` and ``beta_end`` are ignored by ``"squaredcos_cap_v2"``.

    Args:
        beta_schedule: ``"linear"``, ``"scaled_linear"`` or ``"squaredcos_cap_v2"``.
        num_train_timesteps: $T\ge2$.
        beta_start: first beta (linear schedules), in (0, 1).
        beta_end: last beta (linear schedules), in (``beta_start``, 1).
        dtype: the floating type the betas are computed in.

    Returns:
        ``(T,)`` array, decreasing, in (0, 1).

    Raises:
        ValueError: unknown ``beta_schedule``, ``num_train_timesteps`` < 2, betas outside
            (0, 1).

    Example:
        >>> a = ddpm_alphas_cumprod("scaled_linear", 1000, 0.00085, 0.012)
        >>> round(float(a[-1]), 6)
        0.00466
    """
    if not isinstance(beta_schedule, str):
        raise TypeError(f"beta_schedule must be a string, got {type(beta_schedule).__name__}")
    check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
    n = check_count(num_train_timesteps, "num_train_timesteps", minimum=2)
    if beta_schedule == "squaredcos_cap_v2":
        u = np.arange(n + 1, dtype=np.float64) / n
        f = _cosine_alpha_bar(u)
        betas = np.minimum(1.0 - f[1:] / f[:-1], _MAX_BETA).astype(dtype)
    else:
        for name, val in (("beta_start", beta_start), ("beta_end", beta_end)):
            if isinstance(val, bool) or not isinstance(val, int | float | np.floating):
                raise TypeError(f"{name} must be a real number, got {type(val).__name__}")
            if not (0.0 < float(val) < 1.0):
                raise ValueError(f"{name} must lie in (0, 1), got {val!r}")
        if not beta_start < beta_end:
            raise ValueError(f"beta_start must be < beta_end, got {beta_start} and {beta_end}")
        if beta_schedule == "linear":
            betas = np.linspace(beta_start, beta_end, n, dtype=dtype)
        else:
            betas = np.linspace(beta_start**0.5, beta_end**0.5, n, dtype=dtype) ** 2
    return np.cumprod(1.0 - betas, dtype=dtype)


def ddpm_log_snr(alphas_cumprod) -> np.ndarray:
    r"""$\lambda_t=\log\bar\alpha_t-\log(1-\bar\alpha_t)$ for each entry of ``alphas_cumprod``.

    Computed in float64 with ``log1p`` so that $\bar\alpha_t$ near 1 keeps its digits.

    Args:
        alphas_cumprod: 1-D array of $\bar\alpha_t$, each in (0, 1).

    Returns:
        ``(T,)`` float64 log-SNRs.

    Raises:
        ValueError: not 1-D, empty, or an entry outside (0, 1) (a zero-terminal-SNR step
            with $\bar\alpha=0$ has $\lambda=-\infty$: drop it first).
    """
    a = np.asarray(alphas_cumprod)
    if a.dtype.kind not in "fiu" or a.dtype.kind == "b":
        raise TypeError(f"alphas_cumprod must be a real array, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"alphas_cumprod must be a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0.0) or np.any(a >= 1.0):
        bad = int(np.argmax(~np.isfinite(a) | (a <= 0.0) | (a >= 1.0)))
        raise ValueError(
            f"alphas_cumprod must lie in (0, 1) (finite log-SNR), but alphas_cumprod[{bad}] = "
            f"{float(a[bad])!r}; drop zero-terminal-SNR steps (alphas_cumprod = 0) before testing"
        )
    return np.log(a) - np.log1p(-a)


class DiscreteSchedule(NamedTuple):
    r"""A discrete DDPM schedule as diffusers builds it (see :func:`ddpm_alphas_cumprod`).

    Attributes:
        beta_schedule: ``"linear"``, ``"scaled_linear"`` or ``"squaredcos_cap_v2"``.
        num_train_timesteps: $T$.
        beta_start: first beta (``None`` for ``"squaredcos_cap_v2"``).
        beta_end: last beta (``None`` for ``"squaredcos_cap_v2"``).
        alphas_cumprod: ``(T,)`` $\bar\alpha_t$ for $t=0..T-1$.
    """

    beta_schedule: str
    num_train_timesteps: int
    beta_start: float | None
    beta_end: float | None
    alphas_cumprod: np.ndarray

    @classmethod
    def build(
        cls,
        beta_schedule: str = "linear",
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> DiscreteSchedule:
        """Build the schedule with :func:`ddpm_alphas_cumprod`."""
        a = ddpm_alphas_cumprod(beta_schedule, num_train_timesteps, beta_start, beta_end)
        cos = beta_schedule == "squaredcos_cap_v2"
        return cls(
            beta_schedule,
            int(num_train_timesteps),
            None if cos else float(beta_start),
            None if cos else float(beta_end),
            a,
        )

    @property
    def timesteps(self) -> np.ndarray:
        """``(T,)`` the integer timesteps ``0..T-1``."""
        return np.arange(self.num_train_timesteps)

    @property
    def log_snr(self) -> np.ndarray:
        r"""``(T,)`` $\lambda_t$ (:func:`ddpm_log_snr`)."""
        return ddpm_log_snr(self.alphas_cumprod)

    @property
    def snr(self) -> np.ndarray:
        r"""``(T,)`` $\mathrm{SNR}_t=\bar\alpha_t/(1-\bar\alpha_t)$."""
        return np.exp(self.log_snr)
