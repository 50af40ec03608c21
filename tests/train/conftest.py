"""Shared settings and fixtures of the tests of dsmtheory.train."""

import pytest

from dsmtheory import train as T

# Training runs in float32; two float32 evaluations of the same function that differ only in
# summation order (vmapped vs single, grouped programs) agree to a few ulps per step,
# amplified over a few Adam steps: 2e-5 relative leaves room for that and nothing else (a
# wrong key or weighting moves results by O(1)).
F32_RTOL = 2e-5
F32_ATOL = 1e-6
# The c* weighting is a table interpolated linearly in log c*, on 257 λ points: the
# interpolation error is h²/8·max|(log c*)''| ≈ (0.05)²/8·0.25 < 1e-4.
TABLE_RTOL = 1e-4

TINY = dict(steps=3, batch_size=8)


@pytest.fixture(scope="session")
def tiny_sweep():
    """One tiny evaluated sweep shared by several tests (compiling is the expensive part):
    2 capacities × 2 weightings of two kinds (scalar, matrix), so 4 compiled groups."""
    base = T.TrainConfig(steps=6, batch_size=8)
    ev = T.EvalConfig(
        num_checkpoints=2, num_bins=3, fisher_points=16, grad_points=4, ed_samples=16, ode_steps=3
    )
    res = T.sweep(
        base,
        weightings=["simple", "matrix_optimal"],
        capacities=[25, 100],
        seeds=[0],
        evaluation=ev,
        progress=False,
    )
    return base, res
