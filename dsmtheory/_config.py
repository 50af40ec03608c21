"""Floating-point precision switch.

dsmtheory never flips JAX's global configuration on import. The exact (closed-form,
quadrature) paths need float64; enable it once, before creating arrays, with
:func:`enable_x64` (the CLI and the test-suite do), or set ``JAX_ENABLE_X64=1`` in the
environment.
"""

from __future__ import annotations

import warnings

import jax

_warned = False


def enable_x64(enable: bool = True) -> None:
    """Turn JAX's 64-bit mode on (or off) for the whole process.

    This is the one documented way to get float64 on the exact paths. It changes a global
    JAX setting, so call it at the top of a script, not inside a library.
    """
    jax.config.update("jax_enable_x64", bool(enable))


def x64_enabled() -> bool:
    """Whether JAX currently creates float64 arrays by default."""
    return bool(jax.config.jax_enable_x64)


def warn_if_float32(where: str) -> None:
    """Warn once per process when an exact path runs without float64."""
    global _warned
    if not _warned and not x64_enabled():
        _warned = True
        warnings.warn(
            f"{where}: JAX 64-bit mode is off, so exact closed forms run in float32 "
            "(about 7 significant digits). Call dsmtheory.enable_x64() first for float64.",
            stacklevel=3,
        )
