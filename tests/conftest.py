"""Test configuration: float64 for the exact paths, a hypothesis profile that fits the
5-minute budget on 2 cores."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

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
