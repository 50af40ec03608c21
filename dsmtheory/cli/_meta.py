"""Versions and machine of a run, recorded in every command's JSON and in the report."""

from __future__ import annotations

import importlib
import platform as _platform


def versions(
    *modules: str, python: bool = True, machine: bool = False, devices: bool = False
) -> dict:
    """``{module: __version__}`` for dsmtheory and ``modules`` (a module that cannot be
    imported is left out), plus the Python version, the platform string (``machine``) and
    the JAX devices (``devices``, a list of strings) when asked for."""
    out = {}
    for name in ("dsmtheory", *modules):
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - a version we cannot read is just left out
            pass
    if python:
        out["python"] = _platform.python_version()
    if machine:
        out["platform"] = _platform.platform()
    if devices:
        try:
            import jax

            out["devices"] = [str(d) for d in jax.devices()]
        except Exception:  # noqa: BLE001 - no backend: leave the devices out
            pass
    return out
