"""dsmtheory: exact Gaussian-mixture ground truth for the loss weighting of denoising score
matching and diffusion training.

Every public module is imported here by name (optax style), so ``dsm.<module>`` never
depends on what else was imported first; ``plots``, ``derivations`` and ``testing`` load on
first use (PEP 562), which keeps ``import dsmtheory`` fast (matplotlib, sympy and hypothesis
are not loaded until needed).

Enable float64 once with :func:`dsmtheory.enable_x64` before using the exact paths.
"""

# first, before JAX: Ctrl-C while the command line starts exits 130 without a traceback
# (changes no signal handler unless this process is the dsmtheory command line)
from . import _sigint  # noqa: F401, I001
from . import adaptive as adaptive
from . import datasets as datasets
from . import expectations as expectations
from . import losses as losses
from . import metrics as metrics
from . import mixture as mixture
from . import mixture_io as mixture_io
from . import models as models
from . import optimal as optimal
from . import parameterization as parameterization
from . import sampling as sampling
from . import sandwich as sandwich
from . import schedules as schedules
from . import targets as targets
from . import train as train
from . import variance as variance
from . import weightings as weightings
from ._config import enable_x64 as enable_x64
from ._config import x64_enabled as x64_enabled
from .datasets import from_sklearn as from_sklearn
from .expectations import Estimate as Estimate
from .expectations import ExpectationError as ExpectationError
from .mixture import GaussianMixture as GaussianMixture
from .mixture import bimodal_1d as bimodal_1d
from .mixture import from_json as from_json
from .mixture import grid_2d as grid_2d
from .mixture import posterior_cov as posterior_cov
from .mixture import posterior_cov_trace as posterior_cov_trace
from .mixture import posterior_mean as posterior_mean
from .mixture import random_anisotropic as random_anisotropic
from .mixture import ring as ring
from .mixture import single_gaussian as single_gaussian
from .mixture import to_json as to_json
from .mixture_io import load as load_mixture
from .mixture_io import save as save_mixture
from .variance import dsm_decomposition as dsm_decomposition
from .variance import effective_dimension as effective_dimension
from .variance import fisher_information as fisher_information
from .variance import irreducible_variance as irreducible_variance
from .variance import mmse as mmse

__version__ = "0.1.0"

#: sub-packages loaded on first attribute access (heavy imports: matplotlib, sympy,
#: hypothesis)
_LAZY = ("plots", "derivations", "testing")

__all__ = [
    # modules
    "adaptive",
    "datasets",
    "derivations",
    "expectations",
    "losses",
    "metrics",
    "mixture",
    "mixture_io",
    "models",
    "optimal",
    "parameterization",
    "plots",
    "sampling",
    "sandwich",
    "schedules",
    "targets",
    "testing",
    "train",
    "variance",
    "weightings",
    # configuration
    "enable_x64",
    "x64_enabled",
    # mixtures and their closed forms
    "GaussianMixture",
    "bimodal_1d",
    "from_json",
    "from_sklearn",
    "grid_2d",
    "load_mixture",
    "posterior_cov",
    "posterior_cov_trace",
    "posterior_mean",
    "random_anisotropic",
    "ring",
    "save_mixture",
    "single_gaussian",
    "to_json",
    # expectations
    "Estimate",
    "ExpectationError",
    "dsm_decomposition",
    "effective_dimension",
    "fisher_information",
    "irreducible_variance",
    "mmse",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'dsmtheory' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
