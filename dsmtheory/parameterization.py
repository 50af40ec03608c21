r"""Prediction parameterizations and the factors that move a weighting between them.

Forward process $x_t=\alpha x_0+\sigma\varepsilon$, log-SNR $\lambda=\log(\alpha^2/\sigma^2)$
(FORMULAS.md §1). A network may predict any of

* ``"eps"``: the noise $\varepsilon$;
* ``"x0"``: the clean data $x_0$;
* ``"v"``: $v=\alpha\varepsilon-\sigma x_0$ (Salimans & Ho 2022);
* ``"score"``: the conditional score $s_c=-\varepsilon/\sigma$;
* ``"F"``: EDM's preconditioned target $F=(x_0-c_{skip}\tilde x)/c_{out}$ with the
  VE-equivalent variables $\tilde x=x_t/\alpha$, $\tilde\sigma=\sigma/\alpha=e^{-\lambda/2}$,
  $c_{skip}=\sigma_d^2/(\tilde\sigma^2+\sigma_d^2)$,
  $c_{out}=\tilde\sigma\sigma_d/\sqrt{\tilde\sigma^2+\sigma_d^2}$ (Karras et al. 2206.00364).

For one $x_t$, every error is a multiple of the $\varepsilon$ error,
$\|a-\hat a\|^2=\kappa_a\|\varepsilon-\hat\varepsilon\|^2$, with (derived here, valid for any
$\alpha,\sigma>0$)

$$\kappa_\varepsilon=1,\quad \kappa_{x_0}=\frac{\sigma^2}{\alpha^2}=e^{-\lambda},\quad
\kappa_{s}=\frac1{\sigma^2},\quad \kappa_v=\frac{(\alpha^2+\sigma^2)^2}{\alpha^2},\quad
\kappa_F=\frac{e^{-\lambda}}{c_{out}^2}=1+\frac{e^{-\lambda}}{\sigma_d^2}.$$

So a multiplier $\omega_a$ on an $a$-MSE is the $\varepsilon$-space multiplier
$\omega_\varepsilon=\omega_a\kappa_a$ (FORMULAS.md §1, "Transforming a weighting"), and the
Kingma–Gao total weight is $w(\lambda)=p(\lambda)\,\omega_\varepsilon(\lambda)$.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_choice, check_finite, check_positive, check_real, real_array
from .schedules import PROCESSES, Schedule

__all__ = [
    "edm_coefficients",
    "PARAMETERIZATIONS",
    "kappa",
    "kappa_from_alpha_sigma",
    "convert",
    "to_eps",
    "to_eps_multiplier",
    "from_eps_multiplier",
    "total_weight",
    "is_monotonic",
    "augmentation_density",
    "AugmentationDensity",
]

PARAMETERIZATIONS = ("eps", "x0", "v", "score", "F")


def _ftype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _lam(lam):
    return real_array(lam, "lam", dtype=_ftype())


def kappa_from_alpha_sigma(parameterization: str, alpha, sigma, *, sigma_data: float = 0.5):
    r"""Error factor $\kappa_a=\|a-\hat a\|^2/\|\varepsilon-\hat\varepsilon\|^2$ at $\alpha,\sigma$.

    $$\kappa_\varepsilon=1,\ \kappa_{x_0}=\sigma^2/\alpha^2,\ \kappa_s=1/\sigma^2,\
    \kappa_v=(\alpha^2+\sigma^2)^2/\alpha^2,\ \kappa_F=1+\sigma^2/(\alpha^2\sigma_d^2).$$

    Implements FORMULAS.md §1 (table of per-sample error factors) for general $(\alpha,\sigma)$.

    Args:
        parameterization: one of ``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"F"``.
        alpha: $\alpha>0$, any shape.
        sigma: $\sigma>0$, broadcastable with ``alpha``.
        sigma_data: EDM's $\sigma_d>0$ (used by ``"F"`` only).

    Returns:
        $\kappa_a$, the broadcast shape of ``alpha`` and ``sigma``.

    Raises:
        ValueError: unknown parameterization, non-positive ``alpha``/``sigma``/``sigma_data``.
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_positive(alpha, "alpha")
    check_positive(sigma, "sigma")
    check_positive(sigma_data, "sigma_data")
    alpha = jnp.asarray(alpha, dtype=_ftype())
    sigma = jnp.asarray(sigma, dtype=_ftype())
    if parameterization == "eps":
        return jnp.ones(jnp.broadcast_shapes(alpha.shape, sigma.shape), dtype=alpha.dtype)
    if parameterization == "x0":
        return (sigma / alpha) ** 2
    if parameterization == "score":
        return jnp.broadcast_to(1.0 / sigma**2, jnp.broadcast_shapes(alpha.shape, sigma.shape))
    if parameterization == "v":
        return (alpha**2 + sigma**2) ** 2 / alpha**2
    return 1.0 + (sigma / alpha) ** 2 / sigma_data**2


def kappa(parameterization: str, lam, process: str = "vp", *, sigma_data: float = 0.5):
    r"""Error factor $\kappa_a(\lambda)$ for a ``"ve"`` or ``"vp"`` process (FORMULAS.md §1).

    | $a$ | VE ($\alpha=1$) | VP ($\alpha^2+\sigma^2=1$) |
    |---|---|---|
    | eps | 1 | 1 |
    | x0 | $e^{-\lambda}$ | $e^{-\lambda}$ |
    | score | $e^{\lambda}$ | $1+e^{\lambda}$ |
    | v | $(1+e^{-\lambda})^2$ | $1+e^{-\lambda}$ |
    | F | $1+e^{-\lambda}/\sigma_d^2$ | $1+e^{-\lambda}/\sigma_d^2$ |

    Args:
        parameterization: ``"eps"``, ``"x0"``, ``"v"``, ``"score"`` or ``"F"``.
        lam: log-SNR, any shape.
        process: ``"ve"`` or ``"vp"``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        $\kappa_a(\lambda)$ with the shape of ``lam``.

    Raises:
        ValueError: unknown parameterization or process, NaN ``lam``, ``sigma_data`` <= 0.

    Example:
        >>> float(kappa("v", 0.0, "vp"))
        2.0
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("process", process, PROCESSES)
    check_positive(sigma_data, "sigma_data")
    lam = _lam(lam)
    if parameterization == "eps":
        return jnp.ones_like(lam)
    if parameterization == "x0":
        return jnp.exp(-lam)
    if parameterization == "F":
        return 1.0 + jnp.exp(-lam) / sigma_data**2
    if parameterization == "score":
        return jnp.exp(lam) if process == "ve" else 1.0 + jnp.exp(lam)
    # v
    return (1.0 + jnp.exp(-lam)) ** 2 if process == "ve" else 1.0 + jnp.exp(-lam)


def to_eps_multiplier(omega_a, parameterization: str, lam, process: str = "vp", *, sigma_data=0.5):
    r"""$\omega_\varepsilon=\omega_a\kappa_a(\lambda)$: an $a$-MSE weight in $\varepsilon$ space.

    FORMULAS.md §1 ("Transforming a weighting between parameterizations").

    Args:
        omega_a: multiplier on $\|a-\hat a\|^2$, broadcastable with ``lam``.
        parameterization: the space $a$ of ``omega_a``.
        lam: log-SNR.
        process: ``"ve"`` or ``"vp"``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        $\omega_\varepsilon(\lambda)$.
    """
    return real_array(omega_a, "omega_a") * kappa(
        parameterization, lam, process, sigma_data=sigma_data
    )


def from_eps_multiplier(
    omega_eps, parameterization: str, lam, process: str = "vp", *, sigma_data=0.5
):
    r"""$\omega_a=\omega_\varepsilon/\kappa_a(\lambda)$, the inverse of :func:`to_eps_multiplier`.

    Args:
        omega_eps: multiplier on $\|\varepsilon-\hat\varepsilon\|^2$.
        parameterization: the target space $a$.
        lam: log-SNR.
        process: ``"ve"`` or ``"vp"``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        The multiplier $\omega_a$ to put on the $a$-MSE.
    """
    return real_array(omega_eps, "omega_eps") / kappa(
        parameterization, lam, process, sigma_data=sigma_data
    )


def edm_coefficients(alpha, sigma, sigma_data):
    r"""EDM's preconditioning $c_{skip}=\sigma_d^2/(\tilde\sigma^2+\sigma_d^2)$ and
    $c_{out}=\tilde\sigma\sigma_d/\sqrt{\tilde\sigma^2+\sigma_d^2}$ at
    $\tilde\sigma=\sigma/\alpha$ (Karras et al. 2022; FORMULAS.md §3 item 4).

    Returns:
        ``(c_skip, c_out)``, broadcast over the inputs.
    """
    check_positive(alpha, "alpha")
    check_positive(sigma, "sigma")
    check_positive(sigma_data, "sigma_data")
    st = sigma / alpha  # VE-equivalent noise level
    c_skip = sigma_data**2 / (st**2 + sigma_data**2)
    c_out = st * sigma_data / jnp.sqrt(st**2 + sigma_data**2)
    return c_skip, c_out


def _trailing_axis(v):
    """``v`` with a trailing axis for the coordinates (scalars stay scalars, so that no
    implicit rank promotion is needed against ``(..., D)`` arrays)."""
    return v[..., None] if v.ndim else v


def to_eps(pred, parameterization: str, x_t, alpha, sigma, *, sigma_data: float = 0.5):
    r"""The noise prediction $\hat\varepsilon$ of a prediction in any parameterization.

    The one conversion to $\hat\varepsilon$ of the package (FORMULAS.md §1;
    :func:`convert`, :func:`dsmtheory.models.predict_eps` and :mod:`dsmtheory.train` use it):

    $$\hat\varepsilon=\hat\varepsilon\ (\texttt{eps}),\quad
    \frac{x_t-\alpha\hat x_0}{\sigma}\ (\texttt{x0}),\quad
    \frac{\alpha\hat v+\sigma x_t}{\alpha^2+\sigma^2}\ (\texttt{v}),\quad
    -\sigma\hat s\ (\texttt{score}),\quad
    \frac{\tilde\sigma\,\tilde x}{\tilde\sigma^2+\sigma_d^2}
    -\frac{\sigma_d}{\sqrt{\tilde\sigma^2+\sigma_d^2}}\hat F\ (\texttt{F}),$$

    with $\tilde x=x_t/\alpha$, $\tilde\sigma=\sigma/\alpha$. The F line is
    $(\tilde x-\hat D)/\tilde\sigma$ for EDM's $\hat D=c_{skip}\tilde x+c_{out}\hat F$
    (Karras et al. 2206.00364), written without the difference $\tilde x-c_{skip}\tilde x$,
    which cancels when $\tilde\sigma\ll\sigma_d$ ($1-c_{skip}=\tilde\sigma^2/
    (\tilde\sigma^2+\sigma_d^2)$).

    Pure and unchecked (apart from the parameterization name), in the dtype of its inputs:
    it is meant for the inside of ``jit``/``vmap``/``grad``; :func:`convert` is the checked
    float64 entry point.

    Args:
        pred: ``(..., D)`` the network's prediction.
        parameterization: ``"eps"``, ``"x0"``, ``"v"``, ``"score"`` or ``"F"``.
        x_t: ``(..., D)`` the noisy input $\alpha x_0+\sigma\varepsilon$.
        alpha, sigma: $\alpha,\sigma>0$, scalars or of the batch shape ``(...)``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        ``(..., D)`` $\hat\varepsilon$.

    Raises:
        ValueError: unknown parameterization.

    Example:
        >>> import jax.numpy as jnp
        >>> float(to_eps(jnp.array([0.5]), "score", jnp.array([1.0]), 1.0, 2.0)[0])
        -1.0
    """
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    # concrete inputs are checked for type (bool, complex, str, None, objects refused) and
    # range; inside jit/vmap/grad (tracers) nothing is checked and nothing is converted
    check_real(pred, "pred")
    check_real(x_t, "x_t")
    check_positive(alpha, "alpha")
    check_positive(sigma, "sigma")
    check_positive(sigma_data, "sigma_data")
    if parameterization == "eps":
        return pred
    a = _trailing_axis(jnp.asarray(alpha))
    s = _trailing_axis(jnp.asarray(sigma))
    if parameterization == "x0":
        return (x_t - a * pred) / s
    if parameterization == "score":
        return -s * pred
    if parameterization == "v":
        return (a * pred + s * x_t) / (a**2 + s**2)
    st = s / a
    r = st**2 + sigma_data**2
    return (x_t / a) * st / r - sigma_data * jax.lax.rsqrt(r) * pred


def convert(
    pred,
    from_: str,
    to: str,
    x_t,
    alpha,
    sigma,
    *,
    sigma_data: float = 0.5,
):
    r"""Convert a prediction between the parameterizations eps, x0, v, score and F.

    Through $\hat\varepsilon$ (FORMULAS.md §1): $\hat\varepsilon=(x_t-\alpha\hat x)/\sigma$,
    $\hat\varepsilon=-\sigma\hat s$,
    $\hat\varepsilon=(\alpha\hat v+\sigma x_t)/(\alpha^2+\sigma^2)$,
    $\hat x=c_{skip}\tilde x+c_{out}\hat F$; and back, $\hat x=(x_t-\sigma\hat\varepsilon)/\alpha$,
    $\hat v=\alpha\hat\varepsilon-\sigma\hat x$, $\hat s=-\hat\varepsilon/\sigma$,
    $\hat F=(\hat x-c_{skip}\tilde x)/c_{out}$ with $\tilde x=x_t/\alpha$ (EDM, Karras et al.).

    Args:
        pred: ``(..., D)`` prediction in parameterization ``from_``.
        from_: its parameterization.
        to: the parameterization wanted.
        x_t: ``(..., D)`` noisy input $\alpha x_0+\sigma\varepsilon$.
        alpha: $\alpha$, scalar or the batch shape ``(...)`` of ``pred``.
        sigma: $\sigma$, scalar or ``(...)``.
        sigma_data: EDM's $\sigma_d$ (``"F"`` only).

    Returns:
        ``(..., D)``: the same prediction in parameterization ``to``.

    Raises:
        ValueError: unknown parameterization, shape mismatch, non-positive alpha/sigma.
    """
    check_choice("from_", from_, PARAMETERIZATIONS)
    check_choice("to", to, PARAMETERIZATIONS)
    check_positive(alpha, "alpha")
    check_positive(sigma, "sigma")
    check_positive(sigma_data, "sigma_data")
    pred = real_array(pred, "pred", dtype=_ftype())
    x_t = real_array(x_t, "x_t", dtype=_ftype())
    if pred.ndim == 0 or x_t.shape[-1:] != pred.shape[-1:]:
        raise ValueError(f"pred and x_t must have shape (..., D), got {pred.shape} and {x_t.shape}")
    check_finite(pred, "pred")
    alpha = jnp.asarray(alpha, dtype=_ftype())
    sigma = jnp.asarray(sigma, dtype=_ftype())
    eps = to_eps(pred, from_, x_t, alpha, sigma, sigma_data=sigma_data)
    a, s = _trailing_axis(alpha), _trailing_axis(sigma)
    c_skip, c_out = edm_coefficients(a, s, sigma_data)
    x_tilde = x_t / a
    if to == "eps":
        return eps
    if to == "score":
        return -eps / s
    x0 = pred if from_ == "x0" else (x_t - s * eps) / a
    if to == "x0":
        return x0
    if to == "v":
        return a * eps - s * x0
    return (x0 - c_skip * x_tilde) / c_out


def _density_fn(density) -> Callable:
    if isinstance(density, Schedule):
        return density.density
    if hasattr(density, "density") and callable(density.density):
        return density.density
    if callable(density):
        return density
    raise TypeError(
        f"density must be a callable p(lam) or a Schedule, got {type(density).__name__}"
    )


def total_weight(weighting: Callable, lam, density):
    r"""Kingma–Gao total weight $w(\lambda)=p(\lambda)\,\omega_\varepsilon(\lambda)$ (FORMULAS §1).

    Args:
        weighting: a callable $\lambda\mapsto\omega_\varepsilon(\lambda)$ (e.g. a
            :class:`dsmtheory.weightings.Weighting`).
        lam: log-SNR values.
        density: the sampling density $p(\lambda)$: a callable or a Schedule.

    Returns:
        $w(\lambda)$ with the shape of ``lam``.
    """
    if not callable(weighting):
        raise TypeError(f"weighting must be callable, got {type(weighting).__name__}")
    lam = _lam(lam)
    return _density_fn(density)(lam) * weighting(lam)


def is_monotonic(fn: Callable, lam_grid, *, rtol: float = 1e-10) -> bool:
    r"""Whether ``fn`` is non-increasing in $\lambda$ on ``lam_grid`` (Kingma & Gao §3.6).

    A total weight $w$ with $w'\le0$ makes the weighted loss an ELBO under Gaussian-noise data
    augmentation (FORMULAS.md §5 P7).

    Args:
        fn: a function of $\lambda$ (vectorized).
        lam_grid: 1-D array of log-SNR values (sorted here).
        rtol: increases smaller than ``rtol * max|fn|`` count as rounding, not increase.

    Returns:
        ``True`` when no step of ``fn`` on the sorted grid goes up by more than the tolerance.
    """
    grid = np.sort(np.asarray(lam_grid, dtype=np.float64).ravel())
    if grid.size < 2:
        raise ValueError("lam_grid must hold at least 2 points")
    check_finite(grid, "lam_grid")
    vals = np.asarray(fn(jnp.asarray(grid, dtype=_ftype())), dtype=np.float64)
    if not np.all(np.isfinite(vals)):
        raise ValueError("fn must be finite on lam_grid")
    scale = np.max(np.abs(vals)) if vals.size else 0.0
    return bool(np.all(np.diff(vals) <= rtol * scale))


class AugmentationDensity(NamedTuple):
    r"""Result of :func:`augmentation_density`.

    Attributes:
        density: callable $p_w(\lambda)=-w'(\lambda)/w(\lambda_{min})$ on
            $[\lambda_{min},\lambda_{max}]$, 0 outside.
        atom_mass: mass $w(\lambda_{max})/w(\lambda_{min})$ of the atom at $\lambda_{max}$.
    """

    density: Callable
    atom_mass: float


def augmentation_density(
    w_fn: Callable, lam_min: float, lam_max: float, *, check_points: int = 2001
) -> AugmentationDensity:
    r"""Kingma–Gao augmentation density of a non-increasing total weight (FORMULAS.md §5 P7).

    $$p_w(\lambda)=-\frac{w'(\lambda)}{w(\lambda_{min})}\ \text{on}\
    [\lambda_{min},\lambda_{max}],\qquad \text{atom of mass}\
    \frac{w(\lambda_{max})}{w(\lambda_{min})}\ \text{at}\ \lambda_{max},$$

    which together integrate to 1. Kingma & Gao (2023, §3.6) state the atom unnormalized, as
    $w(\lambda_{max})$; divided by $w(\lambda_{min})$ it is the mass here.

    Args:
        w_fn: the total weight $w(\lambda)$, differentiable by ``jax.grad`` and vectorized.
        lam_min: lower end $\lambda_{min}$.
        lam_max: upper end $\lambda_{max}>\lambda_{min}$.
        check_points: grid size on which monotonicity is checked.

    Returns:
        :class:`AugmentationDensity` ``(density, atom_mass)``.

    Raises:
        ValueError: ``lam_min >= lam_max``, non-finite ends, ``w`` not positive at
            ``lam_min`` or increasing somewhere on the interval.
    """
    check_finite(np.asarray([lam_min, lam_max], dtype=np.float64), "lam_min/lam_max")
    lo, hi = float(lam_min), float(lam_max)
    if not lo < hi:
        raise ValueError(f"lam_min must be < lam_max, got {lo} and {hi}")
    grid = np.linspace(lo, hi, check_points)
    if not is_monotonic(w_fn, grid):
        raise ValueError("w_fn must be non-increasing on [lam_min, lam_max]")
    w_lo = float(w_fn(jnp.asarray(lo, dtype=_ftype())))
    w_hi = float(w_fn(jnp.asarray(hi, dtype=_ftype())))
    if not w_lo > 0:
        raise ValueError(f"w_fn(lam_min) must be > 0, got {w_lo}")
    dw = jnp.vectorize(jax.grad(lambda x: jnp.asarray(w_fn(x)).reshape(())))

    def _density(lam):
        inside = (lam >= lo) & (lam <= hi)
        return jnp.where(inside, -dw(jnp.clip(lam, lo, hi)) / w_lo, 0.0)

    compiled = jax.jit(_density)

    def density(lam):
        lam = _lam(lam)
        try:
            return compiled(lam)
        except jax.errors.ConcretizationTypeError:  # w_fn not traceable by jit: run eagerly
            return _density(lam)

    return AugmentationDensity(density=density, atom_mass=w_hi / w_lo)
