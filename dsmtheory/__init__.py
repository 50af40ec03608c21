"""dsmtheory: exact Gaussian-mixture ground truth for the loss weighting of denoising score
matching and diffusion training.

Enable float64 once with :func:`dsmtheory.enable_x64` before using the exact paths.
"""

# first, before JAX: Ctrl-C while the command line starts exits 130 without a traceback
# (changes no signal handler unless this process is the dsmtheory command line)
from . import _sigint  # noqa: F401, I001
from . import losses, optimal, parameterization, schedules, targets, variance, weightings
from ._config import enable_x64, x64_enabled
from .mixture import (
    GaussianMixture,
    bimodal_1d,
    from_json,
    grid_2d,
    posterior_cov,
    posterior_cov_trace,
    posterior_mean,
    random_anisotropic,
    ring,
    single_gaussian,
    to_json,
)
from .variance import dsm_decomposition, fisher_information, irreducible_variance, mmse

__version__ = "0.1.0"

__all__ = [
    "dsm_decomposition",
    "fisher_information",
    "irreducible_variance",
    "losses",
    "mmse",
    "optimal",
    "parameterization",
    "targets",
    "variance",
    "weightings",
    "GaussianMixture",
    "bimodal_1d",
    "enable_x64",
    "from_json",
    "grid_2d",
    "posterior_cov",
    "posterior_cov_trace",
    "posterior_mean",
    "random_anisotropic",
    "ring",
    "schedules",
    "single_gaussian",
    "to_json",
    "x64_enabled",
]
