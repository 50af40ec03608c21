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

from hypothesis import HealthCheck, settings  # noqa: E402

import dsmtheory  # noqa: E402

dsmtheory.enable_x64()

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
