r"""Check anyone's weighting and loss code against dsmtheory's exact truth.

The same bug keeps shipping in diffusion training code: a loss weighting written for one
parameterization and applied in another (diffusers issue #5654, Min-SNR for v-prediction),
a hard-wired constant (k-diffusion issue #98), a min written as a max (lucidrains RIN #11).
This kit tests a user's code against the weighting registry in five lines:

```python
from dsmtheory import testing
testing.assert_weighting(my_weight, "min_snr", parameterization="v", gamma=5.0)
testing.identify_weighting(snr, weights, parameterization="v")   # -> [Match, ...]
testing.assert_equivalent("smoothed_kl", my_weighting)           # up to a constant
testing.assert_same_training(w1, w2, optimizer="adam")           # same trajectories?
testing.assert_loss(my_loss, gm, schedule="cosine", parameterization="v", weighting=w)
```

and :mod:`dsmtheory.testing.strategies` gives hypothesis strategies (log-SNRs, schedules,
diffusers-style discrete schedules, registry weightings with valid parameters,
parameterizations, Gaussian mixtures) for property tests. Everything but the strategies works
without hypothesis; the strategies need ``pip install "dsmtheory[testing]"``.

Enable float64 (``dsmtheory.enable_x64()``) before exact comparisons; the registry otherwise
runs in float32, which the default tolerances (:data:`WEIGHT_RTOL`) still allow.
"""

from __future__ import annotations

import importlib

from ._spec import input_to_lam as log_snr_of
from ._tolerances import FIT_TOL, TRAIN_RTOL_F32, TRAIN_RTOL_F64, WEIGHT_RTOL
from .ddpm import (
    BETA_SCHEDULES,
    DiscreteSchedule,
    ddpm_alphas_cumprod,
    ddpm_log_snr,
)
from .identify import Match, format_matches, identify_weighting
from .loss import LossCheck, assert_loss
from .training import TrainingComparison, assert_same_training
from .weighting import Equivalence, assert_equivalent, assert_weighting

__all__ = [
    "BETA_SCHEDULES",
    "FIT_TOL",
    "TRAIN_RTOL_F32",
    "TRAIN_RTOL_F64",
    "WEIGHT_RTOL",
    "DiscreteSchedule",
    "Equivalence",
    "LossCheck",
    "Match",
    "TrainingComparison",
    "assert_equivalent",
    "assert_loss",
    "assert_same_training",
    "assert_weighting",
    "ddpm_alphas_cumprod",
    "ddpm_log_snr",
    "format_matches",
    "identify_weighting",
    "log_snr_of",
    "strategies",
]


def __getattr__(name: str):
    # ``testing.strategies`` is loaded on first use: only it needs hypothesis, and its import
    # error names the extra to install.
    if name == "strategies":
        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
