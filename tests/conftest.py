"""Test configuration: float64 for the exact paths, a hypothesis profile that fits the
5-minute budget on 2 cores."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests are dominated by XLA compilation of many small programs, not by run time.
# Turning XLA's optimization passes off cuts the suite's CPU time by about a third
# (measured: 88 s -> 56 s for test_targets + test_optimal). The programs compute the same
# mathematics, and every tolerance was checked with optimizations on as well. Set
# JAX_DISABLE_MOST_OPTIMIZATIONS=0 to run the suite with full optimization.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

# Implicit rank promotion raises (as in equinox's tests): every broadcast between arrays of
# different ranks in the package is written out, so a shape mistake fails loudly instead of
# broadcasting silently (issue 12 item 8; tests/test_rank_promotion.py checks it is on). The
# environment variable carries it into the command-line subprocesses the tests start.
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")

import jax  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import dsmtheory  # noqa: E402

dsmtheory.enable_x64()
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
