r"""Noise schedules in the log-SNR coordinate $\lambda=\log(\alpha^2/\sigma^2)$ (FORMULAS.md §2).

Every schedule maps $t\in[0,1]$ (with $t=0$ the *least* noisy, Kingma & Gao's direction)
to $\lambda=\tilde f_\lambda(t)$, decreasing in $t$, and gives

* ``alpha(lam)``, ``sigma(lam)`` of its forward process (``"ve"``: $\alpha=1$,
  $\sigma^2=e^{-\lambda}$; ``"vp"``: $\alpha^2=\mathrm{sigmoid}(\lambda)$,
  $\sigma^2=\mathrm{sigmoid}(-\lambda)$);
* ``lam(t)``, ``t(lam)``, the density ``density(lam)`` of $\lambda$ when $t\sim U(0,1)$,
  ``dlam_dt(t)`` and the SDE diffusion ``g2(t)`` $=g(t)^2=-\sigma_t^2\,d\lambda/dt$.

Truncation (Kingma & Gao App. E.3.1): with $t_0=f_\lambda^{-1}(\lambda_{max})$ and
$t_1=f_\lambda^{-1}(\lambda_{min})$, $\tilde f_\lambda(t)=f_\lambda(t_0+(t_1-t_0)t)$ and
$\tilde p(\lambda)=p(\lambda)/(t_1-t_0)$ on $[\lambda_{min},\lambda_{max}]$, zero outside.

No other module converts between $t$, $\sigma$ and $\lambda$.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from ._numerics import log_sigmoid, logexpm1
from ._validation import check_choice, check_key, check_scalar, is_concrete, real_array

__all__ = ["Schedule", "get", "names", "alpha_sigma", "PROCESSES"]

PROCESSES = ("ve", "vp")


def alpha_sigma(lam, process: str):
    r"""$(\alpha,\sigma)$ at log-SNR ``lam`` for a ``"ve"`` or ``"vp"`` forward process."""
    check_choice("process", process, PROCESSES)
    lam = real_array(lam, "lam")
    if process == "ve":
        return jnp.ones_like(lam), jnp.exp(-0.5 * lam)
    return jnp.exp(0.5 * log_sigmoid(lam)), jnp.exp(0.5 * log_sigmoid(-lam))


@dataclass(frozen=True)
class Schedule:
    r"""Base class: a decreasing map ``t -> lam`` on [0, 1] with its density and process.

    Subclasses implement the untruncated ``_f`` (t → λ), ``_finv`` (λ → t), ``_dlam_dt``
    and ``_p`` (density of λ under t ~ U(0, 1)), and the natural λ range ``_natural``.

    Every map traces under ``jax.jit`` and ``jax.vmap``: the truncation constants are
    Python floats computed once, at construction.

    Attributes:
        lam_min, lam_max: the (truncated) λ range.
        process: ``"ve"`` or ``"vp"``, the forward process of ``alpha``/``sigma``.
        t0, t1: $t_0=f_\lambda^{-1}(\lambda_{max})$ and $t_1=f_\lambda^{-1}(\lambda_{min})$ of
            the untruncated schedule (Kingma & Gao App. E.3.1), set at construction.
    """

    lam_min: float | None = None
    lam_max: float | None = None
    process: str = "vp"
    name: str = field(default="schedule", init=False)

    # --- to be provided by subclasses ---
    def _f(self, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def _finv(self, lam):  # pragma: no cover - abstract
        raise NotImplementedError

    def _dlam_dt(self, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def _p(self, lam):  # pragma: no cover - abstract
        raise NotImplementedError

    def _natural(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    def _default_range(self) -> tuple[float, float]:
        return self._natural()

    # --- validated construction ---
    def __post_init__(self):
        check_choice("process", self.process, PROCESSES)
        with jax.ensure_compile_time_eval():
            lo_nat, hi_nat = self._natural()
            d_lo, d_hi = self._default_range()
        lo = d_lo if self.lam_min is None else check_scalar(self.lam_min, "lam_min", finite=False)
        hi = d_hi if self.lam_max is None else check_scalar(self.lam_max, "lam_max", finite=False)
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError("lam_min and lam_max must not be NaN")
        tol = 1e-9 * max(1.0, abs(lo_nat) if math.isfinite(lo_nat) else 1.0)
        if lo < lo_nat - tol:
            raise ValueError(
                f"lam_min must be >= {lo_nat:.6g} for schedule {self.name!r}, got {lo}"
            )
        tol = 1e-9 * max(1.0, abs(hi_nat) if math.isfinite(hi_nat) else 1.0)
        if hi > hi_nat + tol:
            raise ValueError(
                f"lam_max must be <= {hi_nat:.6g} for schedule {self.name!r}, got {hi}"
            )
        if not lo < hi:
            raise ValueError(f"lam_min must be < lam_max, got lam_min={lo}, lam_max={hi}")
        object.__setattr__(self, "lam_min", max(lo, lo_nat))
        object.__setattr__(self, "lam_max", min(hi, hi_nat))
        # t0, t1: Python floats computed once, eagerly even when the schedule is built inside
        # a jit trace, so that lam/t/density/dlam_dt/g2 trace under jit and vmap. They are
        # attributes, not dataclass fields: equality and hashing stay those of the fields.
        with jax.ensure_compile_time_eval():
            t0 = float(self._finv(jnp.asarray(self.lam_max, dtype=_ftype())))
            t1 = float(self._finv(jnp.asarray(self.lam_min, dtype=_ftype())))
        object.__setattr__(self, "t0", t0)
        object.__setattr__(self, "t1", t1)

    # --- public maps ---
    def alpha(self, lam):
        """α(λ) of the schedule's forward process."""
        return alpha_sigma(lam, self.process)[0]

    def sigma(self, lam):
        """σ(λ) of the schedule's forward process."""
        return alpha_sigma(lam, self.process)[1]

    def snr(self, lam):
        """SNR = e^λ."""
        return jnp.exp(real_array(lam, "lam"))

    def lam(self, t):
        """λ(t) for t ∈ [0, 1] (t = 0 least noisy), after truncation."""
        t = _check_unit(t, "t")
        t0, t1 = self.t0, self.t1
        return self._f(t0 + (t1 - t0) * t)

    def t(self, lam):
        """t(λ), the inverse of :meth:`lam`; λ must lie in [lam_min, lam_max]."""
        lam = self._check_lam(lam)
        t0, t1 = self.t0, self.t1
        return (self._finv(lam) - t0) / (t1 - t0)

    def density(self, lam):
        """p(λ): the density of λ(t) for t ~ U(0, 1), zero outside [lam_min, lam_max]."""
        lam = real_array(lam, "lam", dtype=_ftype())
        inside = (lam >= self.lam_min) & (lam <= self.lam_max)
        safe = jnp.clip(lam, self.lam_min, self.lam_max)
        return jnp.where(inside, self._p(safe) / (self.t1 - self.t0), 0.0)

    def log_density(self, lam):
        """log p(λ) (−inf outside the range)."""
        return jnp.log(self.density(lam))

    def dlam_dt(self, t):
        """dλ/dt of the truncated schedule (negative)."""
        t = _check_unit(t, "t")
        t0, t1 = self.t0, self.t1
        return (t1 - t0) * self._dlam_dt(t0 + (t1 - t0) * t)

    def dlam_dt_of_lam(self, lam):
        r"""dλ/dt of the truncated schedule at $t(\lambda)$, evaluated from λ directly
        (negative); ``lam`` must lie in [lam_min, lam_max] (checked when concrete)."""
        lam = self._check_lam(lam)
        return (self.t1 - self.t0) * self._dlam_dt(self._finv(lam))

    def g2(self, t):
        r"""$g(t)^2=-\sigma_t^2\,d\lambda/dt$, the squared diffusion of the forward SDE."""
        lam = self.lam(t)
        return -(self.sigma(lam) ** 2) * self.dlam_dt(t)

    def sample(self, key, shape=()):
        """λ samples: t ~ U(0, 1), then λ = λ(t)."""
        u = jax.random.uniform(check_key(key), shape, dtype=_ftype())
        t0, t1 = self.t0, self.t1
        return self._f(t0 + (t1 - t0) * u)

    def check_lam(self, lam):
        """``lam`` as an array, after checking that it lies in [lam_min, lam_max].

        The check runs on concrete values only (inside ``jit`` it is skipped), so functions
        defined on the schedule's range can call it and stay jittable.

        Raises:
            ValueError: a concrete ``lam`` is not finite or leaves the range (by more than
                1e-9 relative), naming the schedule and its range.
        """
        lam = real_array(lam, "lam", dtype=_ftype(), finite=True)
        if is_concrete(lam):
            arr = np.asarray(lam)
            tol = 1e-9 * max(1.0, abs(self.lam_min), abs(self.lam_max))
            if arr.size and (arr.min() < self.lam_min - tol or arr.max() > self.lam_max + tol):
                raise ValueError(
                    f"lam must lie in the {self.name!r} schedule's range [{self.lam_min:.6g}, "
                    f"{self.lam_max:.6g}], got values in [{arr.min():.6g}, {arr.max():.6g}]"
                )
        return lam

    def _check_lam(self, lam):
        return jnp.clip(self.check_lam(lam), self.lam_min, self.lam_max)


@dataclass(frozen=True)
class VEGeometric(Schedule):
    r"""Song's VE geometric schedule: $\sigma(t)=\sigma_{min}(\sigma_{max}/\sigma_{min})^t$,
    $\lambda=-2\log\sigma$, uniform $p(\lambda)=1/(2\log(\sigma_{max}/\sigma_{min}))$
    (FORMULAS.md §2; Song et al. 2011.13456). Defaults are CIFAR-10's."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    process: str = "ve"
    name: str = field(default="ve", init=False)

    def __post_init__(self):
        _set_real(self, "sigma_min", positive=True)
        _set_real(self, "sigma_max", positive=True)
        if not self.sigma_min < self.sigma_max:
            raise ValueError(
                f"sigma_min must be < sigma_max, got {self.sigma_min} and {self.sigma_max}"
            )
        super().__post_init__()

    @property
    def _log_ratio(self):
        return math.log(self.sigma_max / self.sigma_min)

    def _natural(self):
        return (-2 * math.log(self.sigma_max), -2 * math.log(self.sigma_min))

    def _f(self, t):
        return -2.0 * (math.log(self.sigma_min) + t * self._log_ratio)

    def _finv(self, lam):
        return (-0.5 * lam - math.log(self.sigma_min)) / self._log_ratio

    def _dlam_dt(self, t):
        return jnp.full_like(jnp.asarray(t, dtype=_ftype()), -2.0 * self._log_ratio)

    def _p(self, lam):
        return jnp.full_like(lam, 1.0 / (2.0 * self._log_ratio))


@dataclass(frozen=True)
class VPLinear(Schedule):
    r"""Continuous DDPM linear-β (VP) schedule: $\beta(t)=\beta_{min}+t\Delta\beta$,
    $B(t)=\beta_{min}t+\tfrac12\Delta\beta t^2$, $\lambda=-\log(e^{B}-1)$,
    $p(\lambda)=\mathrm{sigmoid}(-\lambda)/\sqrt{\beta_{min}^2+2\Delta\beta\,\mathrm{softplus}(-\lambda)}$.
    Default range $t\in[10^{-5},1]$, i.e. $\lambda\in[-10.05, 13.82]$ (FORMULAS.md §2)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-5
    name: str = field(default="vp_linear", init=False)

    def __post_init__(self):
        _set_real(self, "beta_min", positive=True)
        _set_real(self, "beta_max", positive=True)
        if not self.beta_min < self.beta_max:
            raise ValueError(f"beta_min must be < beta_max, got {self.beta_min}, {self.beta_max}")
        _set_real(self, "t_min", positive=True)
        if not self.t_min < 1:
            raise ValueError(f"t_min must be < 1, got {self.t_min}")
        super().__post_init__()

    def _B(self, t):
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def _natural(self):
        return (float(self._f(jnp.asarray(1.0, dtype=_ftype()))), math.inf)

    def _default_range(self):
        return (self._natural()[0], float(self._f(jnp.asarray(self.t_min, dtype=_ftype()))))

    def _f(self, t):
        return -logexpm1(self._B(t))

    def _finv(self, lam):
        db = self.beta_max - self.beta_min
        b = jax.nn.softplus(-lam)
        return 2.0 * b / (self.beta_min + jnp.sqrt(self.beta_min**2 + 2.0 * db * b))

    def _dlam_dt(self, t):
        t = jnp.asarray(t, dtype=_ftype())
        beta = self.beta_min + (self.beta_max - self.beta_min) * t
        return -beta / (-jnp.expm1(-self._B(t)))

    def _p(self, lam):
        db = self.beta_max - self.beta_min
        return jax.nn.sigmoid(-lam) / jnp.sqrt(self.beta_min**2 + 2 * db * jax.nn.softplus(-lam))


@dataclass(frozen=True)
class Cosine(Schedule):
    r"""Cosine schedule (continuous Nichol–Dhariwal), optionally shifted:
    $\lambda=-2\log\tan(\pi t/2)+2s$, $p(\lambda)=\mathrm{sech}(\lambda/2-s)/(2\pi)$.
    ``shift`` is $s$ (Kingma & Gao's shifted cosine uses $s=\log(64/d)$ for resolution $d$).
    Default truncation $\lambda\in[-20,20]$ (mass lost ≈ 6e-5)."""

    shift: float = 0.0
    name: str = field(default="cosine", init=False)

    def __post_init__(self):
        _set_real(self, "shift")
        super().__post_init__()

    def _default_range(self):
        return (-20.0, 20.0)

    def _f(self, t):
        return -2.0 * jnp.log(jnp.tan(0.5 * jnp.pi * t)) + 2.0 * self.shift

    def _finv(self, lam):
        return (2.0 / jnp.pi) * jnp.arctan(jnp.exp(-0.5 * (lam - 2.0 * self.shift)))

    def _dlam_dt(self, t):
        return -2.0 * jnp.pi / jnp.sin(jnp.pi * jnp.asarray(t, dtype=_ftype()))

    def _p(self, lam):
        u = 0.5 * lam - self.shift
        # sech(u) = 2 e^{-|u|} / (1 + e^{-2|u|}), overflow-free
        a = jnp.abs(u)
        return (2.0 * jnp.exp(-a) / (1.0 + jnp.exp(-2.0 * a))) / (2.0 * jnp.pi)


@dataclass(frozen=True)
class EDMTraining(Schedule):
    r"""EDM's log-normal training density (Karras et al. 2206.00364):
    $\ln\tilde\sigma\sim N(P_m,P_s^2)$, i.e. $\lambda=-2(P_m+P_s\Phi^{-1}(t))\sim
    N(-2P_m,4P_s^2)=N(2.4,2.4^2)$. VE process by default. Untruncated by default."""

    p_mean: float = -1.2
    p_std: float = 1.2
    process: str = "ve"
    name: str = field(default="edm_training", init=False)

    def __post_init__(self):
        _set_real(self, "p_std", positive=True)
        _set_real(self, "p_mean")
        super().__post_init__()

    def _f(self, t):
        return -2.0 * (self.p_mean + self.p_std * ndtri(t))

    def _finv(self, lam):
        return ndtr(-(0.5 * lam + self.p_mean) / self.p_std)

    def _dlam_dt(self, t):
        z = ndtri(jnp.asarray(t, dtype=_ftype()))
        phi = jnp.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
        return -2.0 * self.p_std / phi

    def _p(self, lam):
        mu, s = -2.0 * self.p_mean, 2.0 * self.p_std
        return jnp.exp(-0.5 * ((lam - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    def g2(self, t):
        r"""$g(t)^2=-\sigma_t^2\,d\lambda/dt$ in logs, finite inside (0, 1) and $+\infty$ at
        the ends of the untruncated schedule (its limit there), never NaN.

        With $z=\Phi^{-1}(u)$, $u=t_0+(t_1-t_0)t$: $-d\lambda/dt=(t_1-t_0)\,2P_s\sqrt{2\pi}
        \,e^{z^2/2}$ and $\log\sigma^2=-\lambda-\mathrm{softplus}(-\lambda)$ (VP;
        $-\lambda$ for VE) with $-\lambda=2P_m+2P_sz$; the terms are grouped as
        $z(2P_s+z/2)$ so that $z=\pm\infty$ gives $+\infty$, not $\infty-\infty$."""
        t = _check_unit(t, "t")
        u = self.t0 + (self.t1 - self.t0) * t
        z = ndtri(u)
        lam = self._f(u)
        log_rate = math.log((self.t1 - self.t0) * 2.0 * self.p_std) + 0.5 * math.log(2 * math.pi)
        grouped = z * (2.0 * self.p_std + 0.5 * z) + 2.0 * self.p_mean  # -lam + z^2/2
        if self.process == "ve":
            return jnp.exp(log_rate + grouped)
        # VP: log sigma^2 = -softplus(lam); for lam > 0 write it as -lam - softplus(-lam)
        pos = grouped - jax.nn.softplus(-lam)
        neg = -jax.nn.softplus(lam) + 0.5 * z * z
        return jnp.exp(log_rate + jnp.where(lam > 0, pos, neg))


@dataclass(frozen=True)
class EDMSampling(Schedule):
    r"""EDM's ρ sampling schedule:
    $\tilde\sigma(t)=(\sigma_{min}^{1/\rho}+t(\sigma_{max}^{1/\rho}-\sigma_{min}^{1/\rho}))^\rho$,
    $p(\lambda)=e^{-\lambda/(2\rho)}/(2\rho(\sigma_{max}^{1/\rho}-\sigma_{min}^{1/\rho}))$
    on $[-2\log\sigma_{max},-2\log\sigma_{min}]=[-8.76,12.43]$. VE process by default."""

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    process: str = "ve"
    name: str = field(default="edm_sampling", init=False)

    def __post_init__(self):
        _set_real(self, "sigma_min", positive=True)
        _set_real(self, "sigma_max", positive=True)
        _set_real(self, "rho", positive=True)
        if not self.sigma_min < self.sigma_max:
            raise ValueError(
                f"sigma_min must be < sigma_max, got {self.sigma_min} and {self.sigma_max}"
            )
        super().__post_init__()

    @property
    def _ab(self):
        return self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)

    def _natural(self):
        return (-2 * math.log(self.sigma_max), -2 * math.log(self.sigma_min))

    def _f(self, t):
        a, b = self._ab
        return -2.0 * self.rho * jnp.log(a + t * (b - a))

    def _finv(self, lam):
        a, b = self._ab
        return (jnp.exp(-lam / (2.0 * self.rho)) - a) / (b - a)

    def _dlam_dt(self, t):
        a, b = self._ab
        return -2.0 * self.rho * (b - a) / (a + jnp.asarray(t, dtype=_ftype()) * (b - a))

    def _p(self, lam):
        a, b = self._ab
        return jnp.exp(-lam / (2.0 * self.rho)) / (2.0 * self.rho * (b - a))


_REGISTRY: dict[str, type[Schedule]] = {
    "ve": VEGeometric,
    "vp_linear": VPLinear,
    "cosine": Cosine,
    "edm_training": EDMTraining,
    "edm_sampling": EDMSampling,
}


def names() -> list[str]:
    """The registered schedule names."""
    return sorted(_REGISTRY)


def get(name: str, **params) -> Schedule:
    """Build a schedule by name: ``ve``, ``vp_linear``, ``cosine``, ``edm_training``,
    ``edm_sampling``; ``params`` are the schedule's fields (e.g. ``sigma_min``, ``lam_min``,
    ``process``).

    Raises:
        ValueError: for an unknown name (listing the known ones) or a bad parameter.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    check_choice("schedule", name, _REGISTRY)
    cls = _REGISTRY[name]
    allowed = {f for f in cls.__dataclass_fields__ if f != "name"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for schedule {name!r}; "
            f"accepted: {', '.join(sorted(allowed))}"
        )
    return cls(**params)


def _set_real(obj, name: str, *, positive: bool = False) -> float:
    """Replace the dataclass field ``name`` by its value as a checked float (TypeError for
    strings, booleans, complex numbers, None; ValueError for NaN/inf, or <= 0 when
    ``positive``), so a schedule never stores a parameter it cannot use."""
    value = check_scalar(getattr(obj, name), name, positive=positive)
    object.__setattr__(obj, name, value)
    return value


def _ftype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _check_unit(t, name):
    t = real_array(t, name, dtype=_ftype(), finite=True)
    if is_concrete(t):
        arr = np.asarray(t)
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(f"{name} must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]")
    return t
