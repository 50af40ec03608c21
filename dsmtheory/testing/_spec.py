"""Shared pieces of the testing kit: argument normalisation, input kinds, weightings as
NumPy functions of lambda, error factors and formula texts. Private to dsmtheory.testing."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import parameterization as _param
from .. import schedules, weightings
from .._config import warn_if_float32
from .._validation import check_choice
from .ddpm import ddpm_log_snr

PARAMETERIZATIONS = _param.PARAMETERIZATIONS  # ("eps", "x0", "v", "score", "F")
PROCESSES = schedules.PROCESSES
INPUTS = ("snr", "lam", "sigma", "timestep")

# diffusers' prediction_type names and a few common spellings
_ALIASES = {
    "epsilon": "eps",
    "sample": "x0",
    "x_0": "x0",
    "x": "x0",
    "v_prediction": "v",
    "velocity": "v",
}


def parameterization_name(p) -> str:
    """The canonical parameterization name; accepts ``"sample"``, ``"epsilon"``, ...

    Raises:
        TypeError: not a string.
        ValueError: unknown name (the known ones are listed).
    """
    if not isinstance(p, str):
        raise TypeError(f"parameterization must be a string, got {type(p).__name__}")
    p = _ALIASES.get(p, p)
    check_choice("parameterization", p, PARAMETERIZATIONS + tuple(_ALIASES))
    return p


def process_name(process) -> str:
    if not isinstance(process, str):
        raise TypeError(f"process must be a string, got {type(process).__name__}")
    check_choice("process", process, PROCESSES)
    return process


def input_name(kind) -> str:
    if not isinstance(kind, str):
        raise TypeError(f"input must be a string, got {type(kind).__name__}")
    check_choice("input", kind, INPUTS)
    return kind


def lam_range_pair(lam_range, *, allow_infinite: bool = False) -> tuple[float, float]:
    """``(lo, hi)`` floats with lo < hi; infinite ends only when ``allow_infinite``."""
    try:
        lo, hi = (float(v) for v in lam_range)
    except (TypeError, ValueError):
        raise TypeError(
            f"lam_range must be a pair of numbers (lo, hi), got {lam_range!r}"
        ) from None
    if math.isnan(lo) or math.isnan(hi) or not lo < hi:
        raise ValueError(f"lam_range must satisfy lo < hi, got {lam_range!r}")
    if not allow_infinite and not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"lam_range must be finite, got {lam_range!r}")
    return lo, hi


def as_real_vector(x, name: str) -> np.ndarray:
    """A 1-D float64 copy of ``x``; bool, complex, str and object arrays are refused."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr.astype(np.float64).reshape(-1)


def timesteps_to_lam(t, alphas_cumprod) -> np.ndarray:
    """λ at integer timesteps ``t`` of a diffusers ``alphas_cumprod`` array (VP)."""
    if alphas_cumprod is None:
        raise ValueError('input="timestep" needs alphas_cumprod (diffusers\' alphas_cumprod array)')
    lam_all = ddpm_log_snr(alphas_cumprod)
    arr = np.asarray(t)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"timesteps must be integers, got dtype {arr.dtype}")
    arr = arr.reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= lam_all.size):
        raise ValueError(
            f"timesteps must lie in [0, {lam_all.size - 1}] for an alphas_cumprod of length "
            f"{lam_all.size}, got values in [{arr.min()}, {arr.max()}]"
        )
    return lam_all[arr]


def input_to_lam(x, kind: str, alphas_cumprod=None) -> np.ndarray:
    """λ of the points ``x`` given as SNR, λ, σ̃ = e^{-λ/2} or integer timesteps."""
    kind = input_name(kind)
    if kind == "timestep":
        return timesteps_to_lam(x, alphas_cumprod)
    arr = as_real_vector(x, "x")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"x must be finite ({kind} values), but it contains NaN or inf")
    if kind == "lam":
        return arr
    if np.any(arr <= 0):
        raise ValueError(f"x must be > 0 for input={kind!r}, got min {float(arr.min())!r}")
    return np.log(arr) if kind == "snr" else -2.0 * np.log(arr)


def lam_to_input(lam: np.ndarray, kind: str) -> np.ndarray:
    """The inverse of :func:`input_to_lam` for ``"snr"``, ``"lam"`` and ``"sigma"``."""
    if kind == "snr":
        return np.exp(lam)
    if kind == "sigma":
        return np.exp(-0.5 * lam)
    return lam.copy()


def kappa(p: str, lam: np.ndarray, process: str, sigma_data: float | None) -> np.ndarray:
    """κ_p(λ) as float64 NumPy (FORMULAS.md §1); σ_d is used by ``"F"`` only."""
    sd = 1.0 if sigma_data is None else float(sigma_data)
    return np.asarray(_param.kappa(p, lam, process, sigma_data=sd), dtype=np.float64)


def c_out_squared(lam: np.ndarray, sigma_data: float) -> np.ndarray:
    r"""EDM's $c_{out}^2=\tilde\sigma^2\sigma_d^2/(\tilde\sigma^2+\sigma_d^2)$ at
    $\tilde\sigma^2=e^{-\lambda}$ (Karras et al. 2022; FORMULAS.md §3.4)."""
    s2 = np.exp(-lam)
    return s2 * sigma_data**2 / (s2 + sigma_data**2)


# ---------------------------------------------------------------------------------------
# weightings as NumPy functions of lambda
# ---------------------------------------------------------------------------------------


class WeightSpec(NamedTuple):
    """A weighting resolved for the kit.

    Attributes:
        fn: ``lam -> omega_eps`` on float64 NumPy arrays.
        label: e.g. ``"min_snr(gamma=5)"``.
        name: registry name, or ``None`` for a plain callable.
        params: the resolved parameters (empty for a plain callable).
    """

    fn: Callable[[np.ndarray], np.ndarray]
    label: str
    name: str | None
    params: Mapping[str, Any]


def article(p: str) -> str:
    """``"an 'eps'"``, ``"a 'v'"``: the article of a parameterization name, as it is read."""
    return f"{'an' if p in ('eps', 'x0', 'F') else 'a'} {p!r}"


def fmt_num(v) -> str:
    """A short, evaluable repr of a number (6 significant digits)."""
    if isinstance(v, bool):
        return repr(v)
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return repr(v)


def _fmt_schedule(s: schedules.Schedule) -> str:
    parts = []
    for f in dataclasses.fields(s):
        if f.name in ("name", "lam_min", "lam_max") or not f.init:
            continue
        val = getattr(s, f.name)
        if f.default is not dataclasses.MISSING and val == f.default:
            continue
        parts.append(f"{f.name}={fmt_num(val) if not isinstance(val, str) else repr(val)}")
    return f"{s.name}({', '.join(parts)})"


def describe(name: str, params: Mapping[str, Any]) -> str:
    """``name(p=v, ...)`` with schedules shown by name and non-default fields."""
    parts = []
    for k, v in params.items():
        if v is None or k == "lam_star":
            continue
        if isinstance(v, schedules.Schedule):
            parts.append(f"{k}={_fmt_schedule(v)}")
        elif isinstance(v, str):
            parts.append(f"{k}={v!r}")
        else:
            parts.append(f"{k}={fmt_num(v)}")
    return f"{name}({', '.join(parts)})"


def _batch_dependent(w) -> bool:
    """A registry weighting whose value at one λ depends on the whole array (ALSR's batch
    mean, ``mu=None``)."""
    return isinstance(w, weightings.Weighting) and w.name == "alsr" and w.params.get("mu") is None


def weighting_np(w: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """``lam -> omega_eps`` as float64 NumPy for a Weighting or a callable of λ.

    A registry weighting is evaluated on λ padded to :func:`padded_size` (JAX compiles each
    operation once per array shape, and the kit's grids come in many lengths), except a
    batch-dependent one, which sees exactly the points given.
    """
    pad = isinstance(w, weightings.Weighting) and not _batch_dependent(w)

    def fn(lam):
        lam = np.asarray(lam, dtype=np.float64)
        if not pad or lam.ndim != 1 or lam.size == 0:
            return np.asarray(w(lam), dtype=np.float64)
        n = lam.size
        padded = np.concatenate([lam, np.full(padded_size(n) - n, lam[-1])])
        return np.asarray(w(padded), dtype=np.float64)[:n]

    return fn


def padded_size(n: int) -> int:
    """The array length a registry weighting is evaluated at for ``n`` points: one size,
    2048, for every grid up to the 2001 points of assert_weighting (JAX compiles each
    operation once per shape, so one shape means one compilation), powers of two above."""
    return max(2048, 1 << (max(n, 1) - 1).bit_length())


def default_params(name: str) -> dict | None:
    """The resolved default parameters of a registry entry, or None if it needs arguments."""
    try:
        return dict(weightings.get(name).params)
    except (TypeError, ValueError):
        return None


def resolve_weighting(spec, params: Mapping[str, Any] | None = None, what="expected") -> WeightSpec:
    """A registry name (with ``params``), a Weighting, or a callable λ → ω_ε."""
    params = dict(params or {})
    if isinstance(spec, str):
        warn_if_float32("dsmtheory.testing")
        w = weightings.get(spec, **params)
        return WeightSpec(weighting_np(w), describe(spec, w.params), spec, dict(w.params))
    if isinstance(spec, weightings.Weighting):
        if params:
            raise ValueError(
                f"{what} is a Weighting object; give parameters through weightings.get, not "
                f"as keyword arguments (got {', '.join(sorted(params))})"
            )
        return WeightSpec(
            weighting_np(spec), describe(spec.name, spec.params), spec.name, dict(spec.params)
        )
    if callable(spec):
        if params:
            raise ValueError(
                f"{what} is a plain callable; it takes no parameters "
                f"(got {', '.join(sorted(params))})"
            )
        label = getattr(spec, "__name__", None) or type(spec).__name__
        return WeightSpec(weighting_np(spec), f"{label} (callable)", None, {})
    raise TypeError(
        f"{what} must be a weighting name, a dsmtheory Weighting or a callable of lambda, got "
        f"{type(spec).__name__}"
    )


def split_sigma_data(name_or_w, params: dict, parameterization: str):
    """Separate the F conversion's σ_d from the weighting's parameters.

    ``sigma_data`` in ``params`` is the F conversion's σ_d (for ``parameterization="F"``)
    and is also passed to the weighting when the weighting takes a ``sigma_data`` and the
    combination is valid (``soft_min_snr`` takes ``gamma`` *or* ``sigma_data``: with
    ``gamma`` given, ``sigma_data`` is the F conversion's only).

    Returns:
        ``(weighting_params, sigma_data_or_None)``.
    """
    params = dict(params)
    sd = params.get("sigma_data")
    if isinstance(name_or_w, str) and "sigma_data" in params:
        defaults = default_params(name_or_w)
        if defaults is not None and "sigma_data" not in defaults:
            params.pop("sigma_data")
        elif parameterization == "F":
            try:
                weightings.get(name_or_w, **params)
            except ValueError:
                without = {k: v for k, v in params.items() if k != "sigma_data"}
                try:
                    weightings.get(name_or_w, **without)
                except (TypeError, ValueError):
                    pass  # let the caller's get() raise its own error
                else:
                    params = without
    elif not isinstance(name_or_w, str):
        params.pop("sigma_data", None)
    return params, sigma_data_value(sd)


def sigma_data_value(sd) -> float | None:
    """``float(sd)`` after checking it is a finite number > 0 (``None`` passes through)."""
    if sd is None:
        return None
    if isinstance(sd, bool) or not isinstance(sd, int | float | np.floating | np.integer):
        raise TypeError(f"sigma_data must be a real number, got {type(sd).__name__}")
    if not (math.isfinite(float(sd)) and float(sd) > 0):
        raise ValueError(f"sigma_data must be finite and > 0, got {sd!r}")
    return float(sd)


def conversion_sigma_data(parameterization: str, given: float | None, spec: WeightSpec):
    """The σ_d of the F conversion: the one given, else the weighting's, else an error."""
    if parameterization != "F":
        return given
    if given is not None:
        return given
    sd = spec.params.get("sigma_data")
    if sd is not None:
        return float(sd)
    raise ValueError(
        'parameterization="F" needs the sigma_data of its preconditioning: pass sigma_data=... '
        f"({spec.label} has no sigma_data of its own)"
    )


# ---------------------------------------------------------------------------------------
# formula texts (evaluable: SNR, min, max; numbers substituted)
# ---------------------------------------------------------------------------------------

_EPS_FORMS = {
    "simple": "1",
    "v": "1 + 1/SNR",
    "edm": "1 + 1/({sigma_data}**2*SNR)",
    "min_snr": "min(1, {gamma}/SNR)",
    "soft_min_snr": "1/(1 + {sigma_data}**2*SNR)",
    "p2": "({k} + SNR)**(-{gamma})",
    "p2_k0": "SNR**(-{gamma})",
    "smoothed_kl": "1/(1 + {tau}**2*(1 + SNR))",
}

# simplified omega_a = omega_eps / kappa_a, derived by hand (checked in tests against
# omega_eps / kappa_a). Keys: (name, parameterization, process or None for both).
_SIMPLIFIED = {
    ("simple", "x0", None): "SNR",
    ("simple", "v", "vp"): "SNR/(SNR + 1)",
    ("simple", "score", "vp"): "1/(1 + SNR)",
    ("v", "v", "vp"): "1",
    ("v", "x0", None): "SNR + 1",
    ("edm", "x0", None): "SNR + 1/{sigma_data}**2",
    ("min_snr", "x0", None): "min(SNR, {gamma})",
    ("min_snr", "v", "vp"): "min(SNR, {gamma})/(SNR + 1)",
    ("min_snr", "score", "vp"): "min(1, {gamma}/SNR)/(1 + SNR)",
    ("soft_min_snr", "x0", None): "SNR/(1 + {sigma_data}**2*SNR)",
    ("soft_min_snr", "v", "vp"): "SNR/((1 + {sigma_data}**2*SNR)*(SNR + 1))",
    ("p2", "x0", None): "SNR*({k} + SNR)**(-{gamma})",
    ("p2_k0", "x0", None): "SNR**(1 - {gamma})",
    ("p2_k0", "v", "vp"): "SNR**(1 - {gamma})/(SNR + 1)",
    ("smoothed_kl", "x0", None): "SNR/(1 + {tau}**2*(1 + SNR))",
}
# with the F conversion's sigma_d equal to the weighting's own
_SIMPLIFIED_F_TIED = {
    "edm": "1",
    "soft_min_snr": "{sigma_data}**2*SNR/(1 + {sigma_data}**2*SNR)**2",
}


def _kappa_form(p: str, process: str, sigma_data: float | None) -> str:
    if p == "eps":
        return "1"
    if p == "x0":
        return "1/SNR"
    if p == "F":
        return f"1 + 1/({fmt_num(sigma_data)}**2*SNR)"
    if p == "v":
        return "(SNR + 1)/SNR" if process == "vp" else "(1 + 1/SNR)**2"
    return "1 + SNR" if process == "vp" else "SNR"  # score


def multiplier_text(
    name: str | None,
    params: Mapping[str, Any],
    p: str,
    process: str,
    sigma_data: float | None = None,
) -> str | None:
    """The multiplier to put on the ``p``-MSE for registry weighting ``name``, as text in SNR
    (evaluable with ``SNR``, ``min``, ``max``), or ``None`` when it has no closed form here
    (weightings defined through a sampling density)."""
    if name not in _EPS_FORMS:
        return None
    vals = {k: fmt_num(v) for k, v in params.items() if isinstance(v, int | float)}
    if name == "p2" and float(params.get("k", 1.0)) == 0.0:
        name = "p2_k0"
    if p == "eps":
        return _EPS_FORMS[name].format(**vals)
    if p == "F":
        own = params.get("sigma_data")
        if name in _SIMPLIFIED_F_TIED and own is not None and sigma_data is not None:
            if math.isclose(float(own), float(sigma_data), rel_tol=1e-12):
                return _SIMPLIFIED_F_TIED[name].format(**vals)
    for key in ((name, p, process), (name, p, None)):
        if key in _SIMPLIFIED:
            return _SIMPLIFIED[key].format(**vals)
    eps = _EPS_FORMS[name].format(**vals)
    return f"({eps}) / ({_kappa_form(p, process, sigma_data)})"


def eval_text(text: str, snr: np.ndarray) -> np.ndarray:
    """Evaluate a :func:`multiplier_text` expression at ``snr`` (used by the kit's tests)."""
    env = {"__builtins__": {}, "SNR": np.asarray(snr, dtype=np.float64), "min": np.minimum}
    env["max"] = np.maximum
    return np.asarray(eval(text, env), dtype=np.float64)  # noqa: S307 - our own formula texts


def runs(mask: np.ndarray, x: np.ndarray) -> list[tuple[float, float]]:
    """The contiguous runs of True in ``mask`` (over sorted ``x``) as (start, end) pairs."""
    out = []
    i, n = 0, mask.size
    while i < n:
        if mask[i]:
            j = i
            while j + 1 < n and mask[j + 1]:
                j += 1
            out.append((float(x[i]), float(x[j])))
            i = j + 1
        else:
            i += 1
    return out


def fmt_runs(rs: list[tuple[float, float]], limit: int = 3) -> str:
    parts = [f"[{fmt_num(a)}, {fmt_num(b)}]" if a != b else f"{{{fmt_num(a)}}}" for a, b in rs]
    if len(parts) > limit:
        parts = parts[:limit] + [f"... ({len(rs) - limit} more)"]
    return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts)
