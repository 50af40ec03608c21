"""Configuration of training runs and of their evaluation: :class:`TrainConfig`,
:class:`EvalConfig`, the accepted names, model sizes and the data-derived constants."""

from __future__ import annotations

import dataclasses

import numpy as np
import optax

from .. import models as _models
from .. import schedules as _schedules
from .. import weightings as _weightings
from .._validation import check_scalar
from ..mixture import GaussianMixture, ring
from ._weighting import ORACLE_WEIGHTINGS, registry_weighting

PARAMETERIZATIONS = ("eps", "x0", "v", "score", "F")
NOISE_SAMPLINGS = ("iid", "stratified", "antithetic")
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw}
DEPTH = 2
EMBEDDING_DIM = 4


def weighting_names() -> list[str]:
    """Weighting names accepted by :class:`TrainConfig`: the oracle weightings
    ``matrix_optimal`` and ``c_star`` plus every name of the weighting registry."""
    return sorted(set(ORACLE_WEIGHTINGS) | set(_weightings.names()))


def width_for_capacity(capacity: int, dim: int) -> int:
    """Hidden width of :func:`dsmtheory.models.mlp_for_param_count` for ``capacity``
    parameters (two equal hidden layers, 4 noise features): the closest count.

    Raises:
        TypeError: ``capacity`` not an integer.
        ValueError: ``capacity`` < 1, or below the count of the width-1 model.
    """
    check_count(capacity, "capacity")
    try:
        widths = _models.widths_for_param_count(
            dim, int(capacity), depth=DEPTH, embedding_dim=EMBEDDING_DIM
        )
    except ValueError as exc:
        raise ValueError(f"capacity {capacity} is too small: {exc}") from None
    return int(widths[0])


def num_params(width: int, dim: int) -> int:
    """Parameter count of the MLP of hidden ``width`` in ``dim`` dimensions
    (:func:`dsmtheory.models.count_mlp_params`)."""
    return _models.count_mlp_params(dim, (int(width),) * DEPTH, EMBEDDING_DIM)


def default_sigma_max(gm: GaussianMixture) -> float:
    """Song's rule (Technique 1): the largest distance between two mixture means; for one
    mode (or coincident means) 3 × the largest standard deviation of the mixture instead."""
    m = np.asarray(gm.means, dtype=np.float64)
    d = float(np.max(np.linalg.norm(m[:, None, :] - m[None, :, :], axis=-1)))
    if d <= 1e-12:
        d = 3.0 * float(np.sqrt(np.max(np.linalg.eigvalsh(np.asarray(gm.covariance())))))
    return d


def sigma_data(gm: GaussianMixture) -> float:
    r"""$\sigma_d$ of the model's input scaling $c_{in}=1/\sqrt{\tilde\sigma^2+\sigma_d^2}$:
    the root of the data's mean per-coordinate variance, $\sqrt{\mathrm{tr\,Cov}[x_0]/D}$."""
    return float(np.sqrt(np.trace(np.asarray(gm.covariance())) / gm.dim))


#: Default capacities per data dimension: ``CAPACITY_PER_DIM[i] * D`` parameters, i.e. 25,
#: 100, 500, 1000 in 2-D (the protocol of Zhang et al. 2508.01597) and 800, 3200, 16000,
#: 32000 in 64-D. A fixed count would not scale: the smallest MLP (width 1) already has
#: ``3 D + 7`` parameters (199 in 64-D).
CAPACITY_PER_DIM = (12.5, 50.0, 250.0, 500.0)

#: Registry weightings whose ``sigma_data`` parameter :func:`data_weighting_params` sets.
SIGMA_DATA_WEIGHTINGS = ("edm", "edm_monotonic", "soft_min_snr")


def capacities_for_dim(dim: int, per_dim=CAPACITY_PER_DIM) -> tuple[int, ...]:
    """Parameter counts relative to the dimension: ``round(f * dim)`` for each ``f`` of
    ``per_dim`` (:data:`CAPACITY_PER_DIM` by default), raised to the smallest model's count
    where below it. 25, 100, 500, 1000 for D = 2; 800, 3200, 16000, 32000 for D = 64."""
    check_count(dim, "dim")
    smallest = num_params(1, dim)
    return tuple(max(smallest, int(round(float(f) * dim))) for f in per_dim)


def data_weighting_params(gm: GaussianMixture, names, given: dict | None = None) -> dict:
    r"""``{name: params}`` that set $\sigma_d$ of EDM, EDM-monotonic and Soft-Min-SNR
    (:data:`SIGMA_DATA_WEIGHTINGS`) to the data's :func:`sigma_data`
    $\sqrt{\mathrm{tr\,Cov}[x_0]/D}$ instead of the registry's fixed 0.5 (EDM's value for
    images on [−1, 1]; 0.54 for the digits mixtures, 0.15 for the DC-removed patches),
    merged under ``given`` (the user's parameters win; a Soft-Min-SNR given ``gamma`` keeps
    it). Other names get ``given``'s entry or nothing."""
    given = dict(given or {})
    sd = sigma_data(gm)
    out = {}
    for name in names:
        params = dict(given.get(name) or {})
        if name in SIGMA_DATA_WEIGHTINGS and "sigma_data" not in params and "gamma" not in params:
            params["sigma_data"] = sd
        if params:
            out[name] = params
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class TrainConfig:
    """Settings of one training run (validated on construction).

    Attributes:
        weighting: a name of :func:`weighting_names` (``simple`` = Song's σ² heuristic).
        weighting_params: keyword parameters of a registry weighting (e.g. ``gamma``).
        capacity: requested parameter count (≥ 1); the width with the closest count is used.
        steps: optimizer steps (≥ 1).
        batch_size: examples per step (≥ 1).
        learning_rate: optimizer step size (> 0).
        optimizer: ``adam`` (default), ``adamw`` or ``sgd``.
        parameterization: network output read as ``eps``, ``x0``, ``v``, ``score`` or ``F``
            (EDM's preconditioned output).
        schedule: a schedule name (``ve`` default) and ``schedule_params`` for it.
        sigma_min, sigma_max: VE range; ``sigma_max=None`` uses :func:`default_sigma_max`.
        noise_sampling: ``iid``; ``stratified`` (slot i draws t in [i/B, (i+1)/B));
            ``antithetic`` (the second half of the batch uses 1 − t and −ε).
        mixture: the data distribution; ``None`` is ``dsmtheory.ring()``.
    """

    weighting: str = "simple"
    weighting_params: dict | None = None
    capacity: int = 100
    steps: int = 2000
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    parameterization: str = "eps"
    schedule: str = "ve"
    schedule_params: dict | None = None
    sigma_min: float = 0.01
    sigma_max: float | None = None
    noise_sampling: str = "iid"
    mixture: GaussianMixture | None = None

    def __post_init__(self):
        if self.mixture is None:  # one shared default mixture object
            object.__setattr__(self, "mixture", _default_mixture())
        if not isinstance(self.mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(self.mixture).__name__}")
        if not isinstance(self.weighting, str):
            raise TypeError(f"weighting must be a string, got {type(self.weighting).__name__}")
        known = weighting_names()
        if self.weighting not in known:
            raise ValueError(f"unknown weighting {self.weighting!r}; known: {', '.join(known)}")
        for name in ("capacity", "steps", "batch_size"):
            check_count(getattr(self, name), name)
        width_for_capacity(self.capacity, self.mixture.dim)  # the smallest model is > 1
        if self.noise_sampling == "antithetic" and self.batch_size % 2:
            raise ValueError(
                f"batch_size must be even for antithetic noise sampling, got {self.batch_size}"
            )
        check_scalar(self.learning_rate, "learning_rate", positive=True)
        check_in("optimizer", self.optimizer, OPTIMIZERS)
        check_in("parameterization", self.parameterization, PARAMETERIZATIONS)
        check_in("noise_sampling", self.noise_sampling, NOISE_SAMPLINGS)
        check_in("schedule", self.schedule, _schedules.names())
        check_scalar(self.sigma_min, "sigma_min", positive=True)
        if self.sigma_max is not None and not (
            check_scalar(self.sigma_max, "sigma_max", positive=True) > self.sigma_min
        ):
            raise ValueError(f"sigma_max must be > sigma_min, got {self.sigma_max!r}")
        schedule = self.build_schedule()  # schedule parameters are checked by the schedule
        # registry weightings are built once to check their parameters; the c* table
        # (``c_star``/``optimal``) is expensive and is built with the training problem
        if self.weighting not in (*ORACLE_WEIGHTINGS, "optimal"):
            registry_weighting(self.weighting, self.weighting_params or {}, schedule)

    def build_schedule(self) -> _schedules.Schedule:
        """The noise schedule (VE: geometric from ``sigma_min`` to ``sigma_max``)."""
        params = dict(self.schedule_params or {})
        if self.schedule == "ve":
            params.setdefault("sigma_min", float(self.sigma_min))
            smax = self.sigma_max if self.sigma_max is not None else default_sigma_max(self.mixture)
            params.setdefault("sigma_max", float(smax))
        return _schedules.get(self.schedule, **params)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings of a sweep.

    Attributes:
        num_checkpoints: evaluations (energy distance, gradient spread) during training, at
            the ends of equal chunks of steps; the progress bar advances per chunk.
        num_bins: λ bins (equal width on the schedule's λ range) for the per-σ figures.
        fisher_points: Monte Carlo points per bin for the exact Fisher divergence.
        grad_points: per-example gradients per bin for the gradient spread.
        ed_samples: PF-ODE samples and true samples for each energy distance.
        ode_steps: Heun steps of the PF-ODE sampler (2·steps − 1 network evaluations).
        seed: key of the fixed evaluation points (shared by all configurations).
    """

    num_checkpoints: int = 10
    num_bins: int = 10
    fisher_points: int = 256
    grad_points: int = 64
    ed_samples: int = 512
    ode_steps: int = 18
    seed: int = 12345

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name != "seed":
                check_count(getattr(self, f.name), f.name)
        if self.grad_points < 2:
            raise ValueError(f"grad_points must be >= 2, got {self.grad_points}")
        if self.ed_samples < 2:
            raise ValueError(f"ed_samples must be >= 2, got {self.ed_samples}")


def check_count(v, name: str) -> None:
    """Raise unless ``v`` is an integer >= 1 (bools are not counts)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")


def check_in(name: str, value, known) -> None:
    """Raise unless ``value`` is one of ``known`` (listing them)."""
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(sorted(known))}")


_DEFAULT: list = []


def _default_mixture() -> GaussianMixture:
    """``dsmtheory.ring()``, built once per process (configurations share the object)."""
    if not _DEFAULT:
        _DEFAULT.append(ring())
    return _DEFAULT[0]
