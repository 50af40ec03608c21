"""Checks at the public boundary. Every error names the argument and what was expected.

Checks run only on concrete values; inside ``jit``/``vmap`` (tracers) they are skipped, so the
same functions stay traceable.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds actual numbers (not a JAX tracer)."""
    leaves = jax.tree_util.tree_leaves(x)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of dtype {x.dtype}"
    return type(x).__name__


def as_float_array(x, name: str) -> np.ndarray:
    """Convert real numbers to a float64 NumPy array, or raise TypeError naming ``name``.

    Accepted: Python ints and floats, NumPy/JAX arrays of integer or real floating dtype,
    and (nested, rectangular) lists of them. Refused with a TypeError: ``None``, strings and
    bytes (also numeric strings such as ``"1.0"``), booleans, complex numbers, object
    arrays, ragged lists. DESIGN.md "Bad input".
    """
    if x is None or isinstance(x, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be real numbers, got {_describe(x)}")
    if isinstance(x, (complex, np.complexfloating)):
        raise TypeError(f"{name} must be real numbers, got a complex number")
    if isinstance(x, (list, tuple)):
        # NumPy turns [True, 0.5] into [1.0, 0.5] without a word: look for booleans (and
        # anything else that is not a real number) inside nested lists first.
        bad = _first_non_real(x)
        if bad is not None:
            raise TypeError(f"{name} must be real numbers, got a list holding {bad}")
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise TypeError(
            f"{name} must be a rectangular array of real numbers, got {_describe(x)}"
        ) from exc
    if raw.dtype == object:
        raise TypeError(
            f"{name} must be a rectangular array of real numbers (ragged, or holding "
            f"non-numbers), got an array of Python objects"
        )
    if raw.dtype.kind not in "iuf":
        what = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes"}.get(
            raw.dtype.kind, f"dtype {raw.dtype}"
        )
        raise TypeError(f"{name} must be real numbers, got {what}")
    return raw.astype(np.float64)


def _first_non_real(x, depth: int = 0):
    """Description of the first element of nested lists ``x`` that is not a real number
    (a bool, string, bytes, None, complex number, boolean or complex array), else None."""
    if depth > 64:
        return "lists nested more than 64 deep"
    for item in x:
        if isinstance(item, (list, tuple)):
            bad = _first_non_real(item, depth + 1)
            if bad is not None:
                return bad
        elif isinstance(item, (bool, np.bool_)):
            return "a boolean"
        elif item is None or isinstance(item, (str, bytes)):
            return _describe(item) if item is not None else "None"
        elif isinstance(item, (complex, np.complexfloating)):
            return "a complex number"
        elif isinstance(item, np.ndarray) and item.dtype.kind not in "iuf":
            return f"an array of dtype {item.dtype}"
    return None


def check_scalar(
    x, name: str, *, positive: bool = False, allow_zero: bool = False, finite: bool = True
) -> float:
    """Return a concrete real scalar as a float; raise TypeError/ValueError naming ``name``.

    Tracers (inside ``jit``/``vmap``) are returned unchanged: checks run only on concrete
    values.
    """
    if not is_concrete(x):
        return x
    arr = as_float_array(x, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    v = float(arr)
    if finite and not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and not (v > 0 or (allow_zero and v == 0)):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")
    return v


def check_finite(x, name: str):
    """Raise TypeError unless a concrete ``x`` is real numbers (:func:`as_float_array`), and
    ValueError if it contains NaN or inf. Returns ``x`` unchanged."""
    if is_concrete(x):
        arr = as_float_array(x, name)
        if arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, but it contains NaN or inf")
    return x


def check_positive(x, name: str, *, allow_zero: bool = False):
    """Raise TypeError unless a concrete ``x`` is real numbers, ValueError unless it is finite
    and > 0 (>= 0 if ``allow_zero``). Returns ``x`` unchanged."""
    if is_concrete(x):
        arr = as_float_array(x, name)
        if arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {_short(arr)}")
        bad = arr < 0 if allow_zero else arr <= 0
        if np.any(bad):
            op = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be {op}, got {_short(arr)}")
    return x


def real_array(x, name: str, *, dtype=None, finite: bool = False):
    """``x`` as a JAX array of ``dtype`` (default: float64 under x64, else float32), after
    checking a concrete ``x`` with :func:`as_float_array` (TypeError for booleans, complex
    numbers, strings, None, objects, ragged lists) and, if ``finite``, for NaN/inf
    (ValueError). Tracers are converted unchecked, so callers stay jittable."""
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    if not is_concrete(x):
        return jnp.asarray(x, dtype=dtype)
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating):
        arr = x  # already a real JAX array: no round trip through NumPy
    else:
        arr = as_float_array(x, name)
    if finite:
        check_finite(arr, name)
    elif np.any(np.isnan(np.asarray(arr))):
        raise ValueError(f"{name} must not contain NaN")
    return jnp.asarray(arr, dtype=dtype)


def check_real(x, name: str, *, finite: bool = False):
    """Raise TypeError unless a concrete ``x`` is real numbers (:func:`as_float_array`), and
    ValueError for NaN (for NaN or inf if ``finite``); return ``x`` unchanged (its dtype
    kept). Tracers pass unchecked."""
    if is_concrete(x):
        arr = as_float_array(x, name)
        if finite:
            check_finite(arr, name)
        elif arr.size and np.any(np.isnan(arr)):
            raise ValueError(f"{name} must not contain NaN")
    return x


def check_count(n, name: str, minimum: int = 1) -> int:
    """Return ``int(n)``; raise TypeError unless ``n`` is an integer (not a bool: floats,
    strings and None are refused), ValueError unless it is >= ``minimum``."""
    want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be {want}, got {_describe(n) if n is not None else 'None'}")
    if n < minimum:
        raise ValueError(f"{name} must be {want}, got {n!r}")
    return int(n)


def check_last_dim(x, dim: int, name: str):
    """Raise ValueError unless ``x`` has shape (..., dim)."""
    shape = np.shape(x)
    if len(shape) == 0 or shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}) to match the mixture, got {shape}")
    return x


def check_key(key, name: str = "key"):
    """Return ``key`` if it is a ``jax.random`` key (``PRNGKey(seed)``: uint32 of shape (2,),
    or a typed ``jax.random.key(seed)``); raise TypeError naming ``name`` otherwise.
    Tracers pass unchecked."""
    if not is_concrete(key):
        return key
    if key is None or isinstance(key, (str, bytes, bool, int, float, complex)):
        raise TypeError(
            f"{name} must be a jax.random key (jax.random.PRNGKey(seed) or "
            f"jax.random.key(seed)), got {_describe(key) if key is not None else 'None'}"
        )
    try:
        arr = jnp.asarray(key)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a jax.random key, got {_describe(key)}") from exc
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        if arr.shape != ():
            raise ValueError(f"{name} must be a single jax.random key, got shape {arr.shape}")
        return arr
    if arr.dtype != np.uint32 or arr.shape != (2,):
        raise TypeError(
            f"{name} must be a jax.random key (jax.random.PRNGKey(seed) or "
            f"jax.random.key(seed)), got an array of dtype {arr.dtype} and shape {arr.shape}"
        )
    return arr


def check_indices(x, name: str, upper: int) -> np.ndarray:
    """Return a concrete ``x`` as a 1-D int64 array of indices in [0, upper); raise
    TypeError (not integers: floats, booleans, strings, None) or ValueError (shape, range)
    naming ``name``."""
    if x is None or isinstance(x, (str, bytes, bool, np.bool_, float, complex)):
        raise TypeError(f"{name} must be integer indices, got {_describe(x)}")
    if isinstance(x, (list, tuple)):
        bad = _first_non_real(x)
        if bad is not None:
            raise TypeError(f"{name} must be integer indices, got a list holding {bad}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-D array of integer indices") from exc
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer indices, got an array of dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (B,), got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(
            f"{name} must hold indices in [0, {upper}), got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def check_known_keys(data: dict, known, where: str) -> None:
    """Raise ValueError if the mapping ``data`` has keys outside ``known`` (listing both)."""
    extra = sorted(str(k) for k in data if k not in known)
    if extra:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(map(repr, extra))}; known: "
            f"{', '.join(sorted(known))}"
        )


def check_choice(name: str, value: str, known) -> None:
    """Raise TypeError for a name that is not a string, ValueError for an unknown registry
    name (listing the known ones)."""
    known = sorted(known)
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string (one of {', '.join(known)}), got "
            f"{_describe(value) if value is not None else 'None'}"
        )
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")


def _short(arr: np.ndarray) -> str:
    if arr.size == 1:
        v = float(arr.reshape(()))
        return repr(v) if math.isfinite(v) else str(v)
    return f"array with min {np.nanmin(arr):.3g}" if arr.size else "an empty array"
