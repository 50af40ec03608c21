r"""Training small MLP score models on Gaussian mixtures, and sweeps over seeds × weightings ×
capacities compiled as one program (FORMULAS.md §1, §3, §6, §7 "Zhang et al.").

**Loss.** With $x_t=\alpha x_0+\sigma\varepsilon$, $\lambda\sim p(\lambda)$ from the schedule
(VE by default: Song's geometric schedule, $\sigma_{min}=0.01$, $\sigma_{max}$ = the largest
distance between two mixture means), the network's output is converted to a noise prediction
$\hat\varepsilon$ (whatever the parameterization) and the per-example loss is

$$\ell=\omega_\varepsilon(\lambda)\,\|\hat\varepsilon-\varepsilon\|^2
      =\Lambda(\lambda)\,\|s_\theta-s_c\|^2,\qquad \Lambda=\sigma^2\omega_\varepsilon,$$

so the canonical weight $\omega_\varepsilon$ of the weighting registry (FORMULAS.md §1) is the
multiplier of the score-space loss relative to Song's $\sigma^2$ heuristic (``simple``,
$\omega_\varepsilon=1$). Two oracle weightings use the exact mixture:

* ``c_star``: $\omega_\varepsilon=c^*(\lambda)=\dfrac{D\,\sigma^2}{\alpha^2\,\mathbb E\,
  \mathrm{tr}\,\mathrm{Cov}[x_0\mid x_t]}$ (FORMULAS.md §6(c)), tabulated on a λ grid by
  Rao–Blackwellized Monte Carlo and interpolated linearly in $\log c^*$.
* ``matrix_optimal``: the GLS weight of Zhang et al. (FORMULAS.md §3 item 15),
  $W^*(x_t)=\mathrm{Cov}[s_c\mid x_t]^{-1}=\sigma^2(I+\sigma^2H_t)^{-1}$, i.e. the score-space
  loss $(s_\theta-s_c)^\top W^*(s_\theta-s_c)$. **Normalisation:** $W^*$ is used exactly as the
  inverse conditional covariance, so $W^*=\sigma^2I-\sigma^4H+O(\sigma^6)$: its first-order term
  *is* the $\sigma^2$ heuristic, and in ε-space the loss is
  $(\hat\varepsilon-\varepsilon)^\top M(\hat\varepsilon-\varepsilon)$ with
  $M=W^*/\sigma^2=\mathrm{Cov}[\varepsilon\mid x_t]^{-1}
  =\tfrac{\sigma^2}{\alpha^2}\mathrm{Cov}[x_0\mid x_t]^{-1}$ (the closed-form posterior
  covariance, PSD by construction). Its trace-average $\mathrm{tr}\,\mathbb E[M^{-1}]/D$ is
  $1/c^*$, so for one Gaussian in 1-D, $M=c^*=1+\sigma^2/s^2$ exactly.

**Model.** A one-hidden-layer SiLU MLP on the features $(c_{in}x_t/\alpha,\,-\lambda/8)$ with
$c_{in}=1/\sqrt{\tilde\sigma^2+\sigma_d^2}$, $\tilde\sigma=\sigma/\alpha$, $\sigma_d^2$ the
mixture's mean per-coordinate variance; it has $h(2D+2)+D$ parameters for width $h$, and the
width is the one whose count is closest to the requested capacity (25, 100, 500, 1000 in 2-D
give 26, 98, 500, 998). Parameterizations (``eps``, ``x0``, ``v``, ``edm``) only change how
the output is read as $\hat\varepsilon$ (FORMULAS.md §1 conversions).

**Sweeps as one program.** Every configuration's MLP is padded to the largest width and its
hidden units beyond its own width are masked to zero; masked parameters get exactly zero
gradient, hence exactly zero Adam update, so each configuration keeps its exact parameter
count. Padding (rather than one program per capacity) gives a single compiled program for
the whole sweep; the price is wasted arithmetic on padded units, which is small here because
the MLPs are tiny (≤ 1000 parameters) and the cost is dominated by per-step overheads that
batching amortizes. Weightings are selected per configuration by ``lax.switch`` on an index.
When JAX sees several devices, the configuration axis is sharded over them
(``jax.sharding.Mesh`` + ``NamedSharding``), padding the configuration count to a multiple of
the device count. Nothing here is CPU-specific.

**Evaluation.** At each checkpoint (the end of each chunk of steps, each chunk one
``lax.scan`` inside ``jit``):

* energy distance (U-statistic, FORMULAS.md §7) between PF-ODE samples of the model (Heun on
  the EDM ρ = 7 grid in $\tilde\sigma$, started from exact samples of $p_{\sigma_{max}}$) and
  fixed samples of the true mixture;
* per-σ-bin gradient spread: at the bin's centre λ, the per-example gradients
  $g_i=\nabla_\theta\ell_i$ (``vmap(grad)``) over fixed $(x_0,\varepsilon)$ draws give
  ``grad_std`` $=\sqrt{\mathrm{tr}\,\widehat{\mathrm{Cov}}(g_i)}$
  $=\big(\tfrac1{n-1}\sum_i\|g_i-\bar g\|^2\big)^{1/2}$, the weighted loss's per-example
  gradient noise;
* at the end, the **exact Fisher divergence** per λ bin, $F_b=\mathbb E\|s_\theta(x_t)-
  s^*(x_t)\|^2$ with $s^*$ the closed-form score of ``gm.noised(α, σ)`` and fixed Monte Carlo
  points (λ uniform in the bin, $x_t\sim p_\lambda$), with standard errors, and the totals
  $\int p(\lambda)F(\lambda)d\lambda\approx\sum_bP_b\hat F_b$ and its σ²-weighted version
  $\sum_bP_b\widehat{\sigma^2F}_b$ ($P_b$ the schedule's probability of bin $b$).

Training runs in float32 (the exact ground truth is computed in float64 when x64 is on and
then cast).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import models as _models
from . import optimal as _optimal
from . import schedules as _schedules
from . import weightings as _weightings
from .metrics import energy_distance
from .mixture import GaussianMixture, ring

__all__ = [
    "ORACLE_WEIGHTINGS",
    "PARAMETERIZATIONS",
    "NOISE_SAMPLINGS",
    "TrainConfig",
    "EvalConfig",
    "TrainState",
    "TrainResult",
    "SweepResult",
    "width_for_capacity",
    "num_params",
    "default_sigma_max",
    "weighting_names",
    "init_state",
    "train_step",
    "train",
    "sweep",
    "loss_per_example",
    "to_model",
    "fisher_divergence",
]

F32 = jnp.float32
ORACLE_WEIGHTINGS = ("matrix_optimal", "c_star")
PARAMETERIZATIONS = ("eps", "x0", "v", "score", "F")
NOISE_SAMPLINGS = ("iid", "stratified", "antithetic")
_OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw}


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------
def weighting_names() -> list[str]:
    """Weighting names accepted by :class:`TrainConfig`: the oracle weightings
    ``matrix_optimal`` and ``c_star`` plus every name of the weighting registry."""
    return sorted(set(ORACLE_WEIGHTINGS) | set(_registry_names()))


def _registry_names() -> list[str]:
    return list(_weightings.names())


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
        parameterization: network output read as ``eps``, ``x0``, ``v`` or ``edm`` (F).
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
        if self.mixture is None:  # one shared default, so configurations share compiled code
            object.__setattr__(self, "mixture", _default_mixture())
        if not isinstance(self.mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(self.mixture).__name__}")
        if not isinstance(self.weighting, str):
            raise TypeError(f"weighting must be a string, got {type(self.weighting).__name__}")
        known = weighting_names()
        if self.weighting not in known:
            raise ValueError(f"unknown weighting {self.weighting!r}; known: {', '.join(known)}")
        for name in ("capacity", "steps", "batch_size"):
            _check_count(getattr(self, name), name)
        width_for_capacity(self.capacity, self.mixture.dim)  # the smallest model is > 1
        if self.noise_sampling == "antithetic" and self.batch_size % 2:
            raise ValueError(
                f"batch_size must be even for antithetic noise sampling, got {self.batch_size}"
            )
        lr = self.learning_rate
        if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be a finite number > 0, got {lr!r}")
        _check_in("optimizer", self.optimizer, _OPTIMIZERS)
        _check_in("parameterization", self.parameterization, PARAMETERIZATIONS)
        _check_in("noise_sampling", self.noise_sampling, NOISE_SAMPLINGS)
        _check_in("schedule", self.schedule, _schedules.names())
        if not (isinstance(self.sigma_min, (int, float)) and self.sigma_min > 0):
            raise ValueError(f"sigma_min must be > 0, got {self.sigma_min!r}")
        if self.sigma_max is not None and not (
            isinstance(self.sigma_max, (int, float)) and self.sigma_max > self.sigma_min
        ):
            raise ValueError(f"sigma_max must be > sigma_min, got {self.sigma_max!r}")
        self.build_schedule()  # schedule parameters are checked by the schedule itself
        # registry weightings are built once to check their parameters; the c* table
        # (``c_star``/``optimal``) is expensive and is built with the training problem
        if self.weighting not in (*ORACLE_WEIGHTINGS, "optimal"):
            _scalar_weighting(
                self.weighting, self.weighting_params or {}, self.build_schedule(), self.mixture
            )

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
                _check_count(getattr(self, f.name), f.name)
        if self.grad_points < 2:
            raise ValueError(f"grad_points must be >= 2, got {self.grad_points}")
        if self.ed_samples < 2:
            raise ValueError(f"ed_samples must be >= 2, got {self.ed_samples}")


class TrainState(NamedTuple):
    """Training state of one (or, stacked, many) configurations.

    Attributes:
        params: MLP layers ``((W1, b1), (W2, b2), (W3, b3))`` as in
            :class:`dsmtheory.models.MLPScoreModel`, hidden width padded to ``H``.
        mask: ``(H,)`` 1 for the configuration's own hidden units, 0 for padding.
        opt_state: optax state.
        weighting_index: index into the problem's weighting list.
        step: number of steps taken.
    """

    params: dict
    mask: jax.Array
    opt_state: Any
    weighting_index: jax.Array
    step: jax.Array


class TrainResult(NamedTuple):
    """Result of :func:`train`: the final ``state``, the per-step mean ``loss`` (steps,),
    the number of parameters ``num_params`` and the :class:`SweepResult` ``evaluation`` of
    this one configuration (``None`` without evaluation)."""

    state: TrainState
    loss: np.ndarray
    num_params: int
    evaluation: SweepResult | None


class SweepResult(NamedTuple):
    """Everything a sweep measured; configuration axis first.

    Attributes:
        configs: one dict per configuration (``seed``, ``weighting``, ``capacity``,
            ``width``, ``num_params``).
        loss: ``(n, steps)`` per-step mean training loss.
        checkpoint_steps: ``(c,)`` steps at which the checkpoints were taken (the first is
            0, the initialization; the last is ``steps``).
        energy_distance: ``(n, c)`` U-statistic energy distance at each checkpoint.
        lam_edges: ``(b+1,)`` λ bin edges; ``sigma_centers`` ``(b,)`` σ at the bin centres.
        grad_std: ``(n, c, b)`` √tr Cov of per-example gradients per bin.
        fisher: ``(n, c, b)`` exact Fisher divergence per bin; ``fisher_se`` its stderr.
        fisher_total, fisher_total_se: ``(n, c)`` ∫p(λ)F(λ)dλ and its stderr.
        fisher_total_sigma2, fisher_total_sigma2_se: ``(n, c)`` ∫p(λ)σ²F(λ)dλ and stderr.
        timings: wall-clock seconds (``compile_and_first_chunk``, ``train``, ``eval``,
            ``total``) and the device count.
        final_state: the stacked final :class:`TrainState`.
    """

    configs: list
    loss: np.ndarray
    checkpoint_steps: np.ndarray
    lam_edges: np.ndarray
    sigma_centers: np.ndarray
    energy_distance: np.ndarray
    grad_std: np.ndarray
    fisher: np.ndarray
    fisher_se: np.ndarray
    fisher_total: np.ndarray
    fisher_total_se: np.ndarray
    fisher_total_sigma2: np.ndarray
    fisher_total_sigma2_se: np.ndarray
    timings: dict
    final_state: TrainState


# ---------------------------------------------------------------------------------------
# Model: dsmtheory.models' MLP (two SiLU hidden layers, Fourier noise features), padded
# ---------------------------------------------------------------------------------------
DEPTH = 2
EMBEDDING_DIM = 4


def width_for_capacity(capacity: int, dim: int) -> int:
    """Hidden width of :func:`dsmtheory.models.mlp_for_param_count` for ``capacity``
    parameters (two equal hidden layers, 4 noise features): the closest count."""
    _check_count(capacity, "capacity")
    try:
        model = _models.mlp_for_param_count(
            jax.random.PRNGKey(0), dim, int(capacity), depth=DEPTH, embedding_dim=EMBEDDING_DIM
        )
    except ValueError as exc:
        raise ValueError(f"capacity {capacity} is too small: {exc}") from None
    return int(model.widths[0])


def num_params(width: int, dim: int) -> int:
    """Parameter count of the MLP of hidden ``width`` in ``dim`` dimensions
    (:func:`dsmtheory.models.count_mlp_params`)."""
    return _models.count_mlp_params(dim, (int(width),) * DEPTH, EMBEDDING_DIM)


def _mlp(params, mask, x_tilde, lam, sigma_data):
    """The forward pass of :class:`dsmtheory.models.MLPScoreModel` with hidden units
    multiplied by ``mask`` (padding units contribute 0 and receive 0 gradient)."""
    c_in = jax.lax.rsqrt(jnp.exp(-lam) + sigma_data**2)
    emb = _models.noise_embedding(lam, EMBEDDING_DIM)
    h = jnp.concatenate([c_in[..., None] * x_tilde, emb], -1)
    for w, b in params[:-1]:
        h = jax.nn.silu(h @ w + b) * mask
    w, b = params[-1]
    return h @ w + b


# ---------------------------------------------------------------------------------------
# Weightings
# ---------------------------------------------------------------------------------------
def _scalar_weighting(name: str, params: dict, schedule, gm) -> Callable:
    """ω_ε(λ) of a weighting by name: ``c_star`` (and the registry's ``optimal``) is the
    c*(λ) table of :func:`dsmtheory.optimal.optimal_weighting` for ``gm`` on the schedule's λ
    range; a registry entry that takes a ``schedule`` gets the training schedule."""
    params = dict(params)
    if name in ("c_star", "optimal"):
        params.setdefault("gm", gm)
        params.setdefault("process", schedule.process)
        params.setdefault("lam_min", float(schedule.lam_min) - 1.0)
        params.setdefault("lam_max", float(schedule.lam_max) + 1.0)
        params.setdefault("num_grid", 257)
        return _weightings.get("optimal", **params)
    factory = _weightings._REGISTRY.get(name)
    if factory is not None and "schedule" in inspect.signature(factory).parameters:
        params.setdefault("schedule", schedule)
    return _weightings.get(name, **params)


# ---------------------------------------------------------------------------------------
# The problem: everything shared by the configurations of one sweep
# ---------------------------------------------------------------------------------------
class _Problem:
    def __init__(self, base: TrainConfig, weightings: Sequence[str], weighting_params=None):
        self.base = base
        gm = base.mixture
        self.gm = gm
        self.gm32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, F32), gm)
        self.dim = gm.dim
        self.schedule = base.build_schedule()
        self.process = self.schedule.process
        self.sigma_data = _sigma_data(gm)
        self.weightings = tuple(weightings)
        self.is_matrix = jnp.asarray([w == "matrix_optimal" for w in self.weightings])
        self.has_matrix = bool(np.any(np.asarray(self.is_matrix)))
        wp = weighting_params or {}
        fns = []
        for w in self.weightings:
            if w == "matrix_optimal":
                fns.append(lambda lam: jnp.ones_like(lam))
            else:
                fn = _scalar_weighting(w, wp.get(w) or {}, self.schedule, gm)
                fns.append(lambda lam, f=fn: jnp.asarray(f(lam), F32))
        self.weight_fns = fns
        self.optimizer = _OPTIMIZERS[base.optimizer](base.learning_rate)
        t0 = float(self.schedule._t0)
        t1 = float(self.schedule._t1)
        self._t_range = (t0, t1)
        self._chunks: dict = {}
        self._evaluators: dict = {}
        self._loss_jit = None

    # --- noise levels -------------------------------------------------------------------
    def lam_of_u(self, u):
        """λ(t) for t = u in [0, 1], in float32: the schedule's own (truncated) map. It calls
        the schedule's untruncated ``_f`` with the truncation constants computed once outside
        ``jit``, because ``Schedule.lam`` converts them with ``float()``, which fails on
        tracers inside ``jit``."""
        t0, t1 = self._t_range
        return jnp.asarray(self.schedule._f(t0 + (t1 - t0) * u), F32)

    def alpha_sigma(self, lam):
        a, s = _schedules.alpha_sigma(lam, self.process)
        return jnp.asarray(a, F32), jnp.asarray(s, F32)

    def weight(self, widx, lam):
        return jax.lax.switch(widx, self.weight_fns, lam)

    # --- model --------------------------------------------------------------------------
    def eps_hat(self, params, mask, x_t, lam):
        """ε̂ from the network output in the configured parameterization; x_t (..., D)."""
        a, s = self.alpha_sigma(lam)
        a = a[..., None]
        s = s[..., None]
        st = s / a  # VE-equivalent noise level
        sd2 = self.sigma_data**2
        xt = x_t / a
        out = _mlp(params, mask, xt, lam, self.sigma_data)
        p = self.base.parameterization
        if p == "eps":
            return out
        if p == "x0":
            return (x_t - a * out) / s
        if p == "v":
            return (a * out + s * x_t) / (a**2 + s**2)
        if p == "score":
            return -s * out
        # F (EDM): D = c_skip x̃ + c_out F, ε̂ = (x̃ − D)/σ̃
        return xt * st / (st**2 + sd2) - jnp.sqrt(sd2) / jnp.sqrt(st**2 + sd2) * out

    # --- loss ---------------------------------------------------------------------------
    def per_example_loss(self, params, mask, widx, x0, eps, lam):
        """ω-weighted ε-space loss per example (the matrix weight where selected)."""
        a, s = self.alpha_sigma(lam)
        x_t = a[..., None] * x0 + s[..., None] * eps
        e = self.eps_hat(params, mask, x_t, lam) - eps
        scalar = self.weight(widx, lam) * jnp.sum(e**2, -1)
        if not self.has_matrix:
            return scalar
        quad = self._matrix_quadratic(x_t, e, a, s)
        return jnp.where(self.is_matrix[widx], quad, scalar)

    def _matrix_quadratic(self, x_t, e, a, s):
        # Cov[ε | x_t] = (α²/σ²) Cov[x0 | x_t];  eᵀ Cov[ε|x_t]⁻¹ e  (= eᵀ M e)
        # score-space (s_θ − s_c)ᵀ W* (s_θ − s_c) with s_θ − s_c = −e/σ; matrix_weight takes
        # scalar (α, σ), so it is mapped over the examples
        w = jax.vmap(_optimal.matrix_weight, in_axes=(None, 0, 0, 0))(self.gm32, x_t, a, s)
        return jnp.einsum("...i,...ij,...j->...", e, w, e) / s**2

    def draw_batch(self, key, batch_size):
        kx, ku, ke = jax.random.split(key, 3)
        x0 = self.gm32.sample(kx, batch_size)
        mode = self.base.noise_sampling
        if mode == "iid":
            u = jax.random.uniform(ku, (batch_size,), F32)
            eps = jax.random.normal(ke, (batch_size, self.dim), F32)
        elif mode == "stratified":
            u = jnp.arange(batch_size, dtype=F32) + jax.random.uniform(ku, (batch_size,), F32)
            u = jnp.clip(u / batch_size, 0.0, 1.0)
            eps = jax.random.normal(ke, (batch_size, self.dim), F32)
        else:  # antithetic: (t, ε) and (1 − t, −ε)
            h = batch_size // 2
            u1 = jax.random.uniform(ku, (h,), F32)
            e1 = jax.random.normal(ke, (h, self.dim), F32)
            u = jnp.concatenate([u1, 1.0 - u1])
            eps = jnp.concatenate([e1, -e1])
        return x0, eps, self.lam_of_u(u)

    def batch_loss(self, params, mask, widx, key):
        x0, eps, lam = self.draw_batch(key, self.base.batch_size)
        return jnp.mean(self.per_example_loss(params, mask, widx, x0, eps, lam))

    # --- one optimizer step (pure) --------------------------------------------------------
    def step(self, state: TrainState, key) -> tuple[TrainState, jax.Array]:
        loss, grads = jax.value_and_grad(self.batch_loss)(
            state.params, state.mask, state.weighting_index, key
        )
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(
            params, state.mask, opt_state, state.weighting_index, state.step + 1
        ), loss

    def init(self, key, width: int, width_padded: int, widx: int) -> TrainState:
        """Eager initialization: :func:`dsmtheory.models.init_mlp` at the configuration's own
        width (so its parameters are those of the unpadded model), zero-padded."""
        model = _models.init_mlp(
            key,
            self.dim,
            (int(width),) * DEPTH,
            embedding_dim=EMBEDDING_DIM,
            sigma_data=self.sigma_data,
            dtype=F32,
        )
        pad = int(width_padded) - int(width)
        params = []
        for i, (w, b) in enumerate(model.layers):
            if i > 0:  # rows of a layer after a padded hidden layer
                w = jnp.pad(w, ((0, pad), (0, 0)))
            if i < DEPTH:
                w, b = jnp.pad(w, ((0, 0), (0, pad))), jnp.pad(b, (0, pad))
            params.append((w, b))
        params = tuple(params)
        mask = (jnp.arange(width_padded) < width).astype(F32)
        opt_state = self.optimizer.init(params)
        return TrainState(params, mask, opt_state, jnp.asarray(widx, jnp.int32), jnp.asarray(0))

    # --- compiled programs, cached on the problem ----------------------------------------------
    def chunk_fn(self, length: int):
        """jit(vmap(scan of ``length`` steps)) over the configuration axis."""
        fn = self._chunks.get(length)
        if fn is None:

            def one(state, dkey, start):
                def body(st, i):
                    return self.step(st, jax.random.fold_in(dkey, start + i))

                return jax.lax.scan(body, state, jnp.arange(length))

            fn = jax.jit(jax.vmap(one, in_axes=(0, 0, None)))
            self._chunks[length] = fn
        return fn

    @property
    def loss_jit(self):
        """Jitted per-example loss ``(state, x0, eps, lam) -> (N,)`` (one compile per shape)."""
        if self._loss_jit is None:
            self._loss_jit = jax.jit(
                lambda st, x0, eps, lam: self.per_example_loss(
                    st.params, st.mask, st.weighting_index, x0, eps, lam
                )
            )
        return self._loss_jit

    def evaluator(self, ev: EvalConfig) -> _Evaluator:
        if ev not in self._evaluators:
            self._evaluators[ev] = _Evaluator(self, ev)
        return self._evaluators[ev]


def _check_count(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")


def _check_in(name, value, known):
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(sorted(known))}")


_DEFAULT: list = []


def _default_mixture() -> GaussianMixture:
    """``dsmtheory.ring()``, built once per process."""
    if not _DEFAULT:
        _DEFAULT.append(ring())
    return _DEFAULT[0]


def _sigma_data(gm: GaussianMixture) -> float:
    """σ_d of the input scaling: the root of the mixture's mean per-coordinate variance."""
    return float(np.sqrt(np.trace(np.asarray(gm.covariance())) / gm.dim))


def default_sigma_max(gm: GaussianMixture) -> float:
    """Song's rule (Technique 1): the largest distance between two mixture means; for one
    mode (or coincident means) 3 × the largest standard deviation of the mixture instead."""
    m = np.asarray(gm.means, dtype=np.float64)
    d = float(np.max(np.linalg.norm(m[:, None, :] - m[None, :, :], axis=-1)))
    if d <= 1e-12:
        d = 3.0 * float(np.sqrt(np.max(np.linalg.eigvalsh(np.asarray(gm.covariance())))))
    return d


# ---------------------------------------------------------------------------------------
# Public pure functions
# ---------------------------------------------------------------------------------------
_PROBLEMS: dict = {}


def _get_problem(base: TrainConfig, weightings, weighting_params) -> _Problem:
    """A cached :class:`_Problem` for these settings (capacity, steps and the key do not
    enter), so repeated runs reuse the compiled programs."""
    wp = weighting_params or {}
    key = (
        id(base.mixture),
        tuple(weightings),
        repr(sorted((k, sorted(v.items(), key=repr)) for k, v in wp.items() if v)),
        base.batch_size,
        float(base.learning_rate),
        base.optimizer,
        base.parameterization,
        base.schedule,
        repr(sorted((base.schedule_params or {}).items())),
        float(base.sigma_min),
        base.sigma_max,
        base.noise_sampling,
    )
    entry = _PROBLEMS.get(key)
    if entry is None or entry[0] is not base.mixture:
        if len(_PROBLEMS) > 16:
            _PROBLEMS.clear()
        entry = (base.mixture, _Problem(base, weightings, wp))
        _PROBLEMS[key] = entry
    return entry[1]


def _problem_for(config: TrainConfig) -> _Problem:
    return _get_problem(
        config, [config.weighting], {config.weighting: config.weighting_params or {}}
    )


def init_state(
    config: TrainConfig, key: jax.Array, *, width_padded: int | None = None
) -> TrainState:
    """Fresh parameters and optimizer state of ``config``'s MLP.

    Args:
        config: the run's settings.
        key: JAX PRNG key (the same key gives the same parameters).
        width_padded: pad the hidden layer to this width (masked); default its own width.

    Returns:
        A :class:`TrainState` with ``step = 0``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    width = width_for_capacity(config.capacity, config.mixture.dim)
    wp = width if width_padded is None else int(width_padded)
    if wp < width:
        raise ValueError(f"width_padded must be >= the model width {width}, got {wp}")
    return _problem_for(config).init(jax.random.split(key)[0], width, wp, 0)


def train_step(
    config: TrainConfig, state: TrainState, key: jax.Array
) -> tuple[TrainState, jax.Array]:
    """One optimizer step on a fresh batch drawn with ``key``; pure and jittable in
    ``state`` and ``key``.

    Returns:
        ``(new_state, mean_batch_loss)``.
    """
    return _problem_for(config).step(state, key)


def loss_per_example(config: TrainConfig, state: TrainState, x0, eps, lam) -> jax.Array:
    r"""The weighted per-example loss that :func:`train_step` averages:
    $\omega_\varepsilon(\lambda)\|\hat\varepsilon-\varepsilon\|^2$, or for
    ``matrix_optimal`` $(s_\theta-s_c)^\top W^*(x_t)(s_\theta-s_c)$
    $=(\hat\varepsilon-\varepsilon)^\top W^*(\hat\varepsilon-\varepsilon)/\sigma^2$.

    Args:
        config: the run's settings; state: a (single, unstacked) :class:`TrainState`.
        x0, eps: ``(N, D)`` clean points and noises; lam: ``(N,)`` log-SNRs.

    Returns:
        ``(N,)`` float32 losses.
    """
    dim = config.mixture.dim
    x0 = jnp.asarray(x0, F32)
    eps = jnp.asarray(eps, F32)
    lam = jnp.asarray(lam, F32)
    if x0.ndim != 2 or x0.shape[-1] != dim or eps.shape != x0.shape:
        raise ValueError(
            f"x0 and eps must both have shape (N, {dim}), got {x0.shape} and {eps.shape}"
        )
    if lam.shape != x0.shape[:1]:
        raise ValueError(f"lam must have shape ({x0.shape[0]},), got {lam.shape}")
    return _problem_for(config).loss_jit(state, x0, eps, lam)


def to_model(config: TrainConfig, state: TrainState) -> _models.MLPScoreModel:
    """The trained network of a single (unstacked) state as a
    :class:`dsmtheory.models.MLPScoreModel` (padding removed), for
    :func:`dsmtheory.models.predict_eps`, :func:`dsmtheory.models.as_score_fn` and the
    samplers. Only the ``eps`` and ``x0`` parameterizations exist there.

    Raises:
        ValueError: for another parameterization.
    """
    if config.parameterization not in _models.PARAMETERIZATIONS:
        raise ValueError(
            f"to_model supports parameterization in {_models.PARAMETERIZATIONS}, "
            f"got {config.parameterization!r}"
        )
    h = width_for_capacity(config.capacity, config.mixture.dim)
    layers = []
    for i, (w, b) in enumerate(state.params):
        w = w if i == 0 else w[:h]
        if i < len(state.params) - 1:
            w, b = w[:, :h], b[:h]
        layers.append((w, b))
    sd = _sigma_data(config.mixture)
    return _models.MLPScoreModel(
        layers, config.mixture.dim, EMBEDDING_DIM, config.parameterization, sd
    )


def fisher_divergence(score_fn: Callable, gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""Pointwise squared score error $\|s_\theta(x_t)-s^*(x_t)\|^2$ against the exact score
    $s^*$ of ``gm.noised(alpha, sigma)``; its mean over $x_t\sim p_t$ is the Fisher divergence.

    Args:
        score_fn: ``score_fn(x_t) -> (N, D)`` the model's score at this noise level.
        gm: the clean mixture. x_t: ``(N, D)``. alpha, sigma: scalars > 0.

    Raises:
        ValueError: if ``x_t`` is not ``(N, gm.dim)``.
    """
    x_t = jnp.asarray(x_t)
    if x_t.ndim != 2 or x_t.shape[-1] != gm.dim:
        raise ValueError(f"x_t must have shape (N, {gm.dim}) to match the mixture, got {x_t.shape}")
    s_star = gm.noised(alpha, sigma).score(x_t)
    s_theta = jnp.asarray(score_fn(x_t), s_star.dtype)
    if s_theta.shape != s_star.shape:
        raise ValueError(f"score_fn must return shape {s_star.shape}, got {s_theta.shape}")
    return jnp.sum((s_theta - s_star) ** 2, -1)


def train(
    config: TrainConfig,
    key: jax.Array,
    *,
    evaluation: EvalConfig | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train one configuration (the sweep machinery with a single configuration).

    Args:
        config: the run's settings.
        key: JAX PRNG key; initialization uses ``split(key)[0]``, step ``i`` uses
            ``fold_in(split(key)[1], i)``, exactly as in :func:`sweep`.
        evaluation: if given, also measure energy distance, gradient spread and the exact
            Fisher divergence (see :class:`SweepResult`).
        progress: show a tqdm bar over chunks of steps.

    Returns:
        :class:`TrainResult`.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    res = _run(
        config,
        [config.weighting],
        [(0, config.capacity, key)],
        evaluation,
        progress,
        {config.weighting: config.weighting_params or {}},
    )
    st = jax.tree_util.tree_map(lambda a: a[0], res.final_state)
    return TrainResult(st, res.loss[0], res.configs[0]["num_params"], res if evaluation else None)


def sweep(
    base: TrainConfig,
    *,
    weightings: Sequence[str],
    capacities: Sequence[int],
    seeds: Sequence[int],
    evaluation: EvalConfig | None = None,
    weighting_params: dict | None = None,
    progress: bool = True,
) -> SweepResult:
    """Train every (seed, weighting, capacity) configuration as one compiled, vmapped
    program (sharded over devices when there are several) and evaluate them.

    Configuration ``i`` runs exactly as ``train(base.replace(weighting=w, capacity=c),
    jax.random.PRNGKey(seed))``, so seeds share initialization and data across weightings
    (common random numbers).

    Args:
        base: shared settings (schedule, steps, batch size, optimizer, mixture, ...).
        weightings, capacities, seeds: the grid; configurations are ordered seed-major,
            then weighting, then capacity.
        evaluation: :class:`EvalConfig` (default ``EvalConfig()``).
        weighting_params: ``{weighting name: {param: value}}`` for registry weightings.
        progress: tqdm bar over chunks of steps.

    Returns:
        :class:`SweepResult`.
    """
    if not isinstance(base, TrainConfig):
        raise TypeError(f"base must be a TrainConfig, got {type(base).__name__}")
    weightings = list(weightings)
    if not weightings or not list(capacities) or not list(seeds):
        raise ValueError("weightings, capacities and seeds must each be non-empty")
    wp = weighting_params or {}
    for w in weightings:  # validates the names and the parameters
        base.replace(weighting=w, weighting_params=wp.get(w))
    for c in capacities:
        _check_count(c, "capacity")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"seeds must be integers, got {s!r}")
    jobs = [
        (wi, int(c), jax.random.PRNGKey(int(s)))
        for s in seeds
        for wi in range(len(weightings))
        for c in capacities
    ]
    res = _run(base, weightings, jobs, evaluation or EvalConfig(), progress, wp)
    seeds_of = [int(s) for s in seeds for _ in weightings for _ in capacities]
    for cfg, s in zip(res.configs, seeds_of, strict=True):
        cfg["seed"] = s
    return res


# ---------------------------------------------------------------------------------------
# The sweep engine
# ---------------------------------------------------------------------------------------
def _run(base, weightings, jobs, evaluation, progress, weighting_params) -> SweepResult:
    t_start = time.perf_counter()
    prob = _get_problem(base, weightings, weighting_params)
    dim = prob.dim
    widths = [width_for_capacity(c, dim) for _, c, _ in jobs]
    wpad = max(widths)
    n = len(jobs)
    init_keys, data_keys = [], []
    for _, _, k in jobs:
        ki, kd = jax.random.split(k)
        init_keys.append(ki)
        data_keys.append(kd)
    per_cfg = [
        prob.init(k, w, wpad, wi) for k, w, (wi, _, _) in zip(init_keys, widths, jobs, strict=True)
    ]
    # pad the configuration axis to a multiple of the device count and shard it
    ndev = jax.device_count()
    n_pad = -(-n // ndev) * ndev
    per_cfg += [per_cfg[-1]] * (n_pad - n)
    data_keys += [data_keys[-1]] * (n_pad - n)
    states = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *per_cfg)
    data_keys = jnp.stack(data_keys)
    if ndev > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(jax.devices()), ("config",))
        shard = NamedSharding(mesh, PartitionSpec("config"))
        states, data_keys = jax.device_put((states, data_keys), shard)

    steps = base.steps
    n_ck = min(evaluation.num_checkpoints if evaluation else 1, steps)
    bounds = np.linspace(0, steps, n_ck + 1).round().astype(int)
    chunk_lens = np.diff(bounds)
    ev = prob.evaluator(evaluation) if evaluation else None
    losses, evals = [], []
    t_first = t_train = t_eval = 0.0
    from tqdm.auto import tqdm

    def evaluate(states):
        nonlocal t_eval
        t0 = time.perf_counter()
        evals.append(ev.evaluate(states))
        t_eval += time.perf_counter() - t0

    if ev is not None:
        evaluate(states)  # checkpoint 0: the initialization
    with tqdm(total=steps, disable=not progress, desc="training", unit="step") as bar:
        for ci, length in enumerate(chunk_lens):
            t0 = time.perf_counter()
            states, loss = prob.chunk_fn(int(length))(
                states, data_keys, jnp.asarray(bounds[ci], jnp.int32)
            )
            losses.append(np.asarray(loss))
            dt = time.perf_counter() - t0
            t_first = dt if ci == 0 else t_first
            t_train += dt
            if ev is not None:
                evaluate(states)
            bar.update(int(length))

    loss = np.concatenate(losses, axis=1)[:n]
    states = jax.tree_util.tree_map(lambda a: a[:n], states)
    configs = [
        {"weighting": weightings[wi], "capacity": c, "width": w, "num_params": num_params(w, dim)}
        for (wi, c, _), w in zip(jobs, widths, strict=True)
    ]
    if ev is not None:
        out = {k: np.stack([e[k] for e in evals], axis=1)[:n] for k in evals[0]}
        lam_edges, sig_c, ck = ev.lam_edges, ev.sigma_centers, bounds
    else:
        out = {k: np.full((n, 0), np.nan) for k in _EVAL_KEYS}
        out["grad_std"] = out["fisher"] = out["fisher_se"] = np.full((n, 0, 0), np.nan)
        lam_edges, sig_c, ck = np.zeros(0), np.zeros(0), np.zeros(0, int)
    timings = {
        "compile_and_first_chunk_s": t_first,
        "train_s": t_train,
        "eval_s": t_eval,
        "total_s": time.perf_counter() - t_start,
        "devices": ndev,
        "platform": jax.devices()[0].platform,
    }
    return SweepResult(
        configs=configs,
        loss=loss,
        checkpoint_steps=ck,
        lam_edges=lam_edges,
        sigma_centers=sig_c,
        timings=timings,
        final_state=states,
        **out,
    )


_EVAL_KEYS = (
    "energy_distance",
    "grad_std",
    "fisher",
    "fisher_se",
    "fisher_total",
    "fisher_total_se",
    "fisher_total_sigma2",
    "fisher_total_sigma2_se",
)


class _Evaluator:
    """Fixed evaluation points (shared by all configurations) and jitted, vmapped metrics."""

    def __init__(self, prob: _Problem, ev: EvalConfig):
        self.prob = prob
        self.ev = ev
        sch = prob.schedule
        gm = prob.gm
        key = jax.random.PRNGKey(ev.seed)
        k_true, k_prior, k_fl, k_fx, k_fe, k_gx, k_ge = jax.random.split(key, 7)
        nb = ev.num_bins
        edges = np.linspace(sch.lam_min, sch.lam_max, nb + 1)
        self.lam_edges = edges
        centers = 0.5 * (edges[1:] + edges[:-1])
        self.sigma_centers = np.asarray(sch.sigma(centers), dtype=np.float64)
        # bin probabilities under the schedule's density (each λ range is one t interval)
        t_edges = np.asarray(sch.t(jnp.asarray(edges)), dtype=np.float64)
        self.bin_prob = np.abs(np.diff(t_edges))
        # energy distance: true samples and exact samples of p at the largest noise level
        self.true = jnp.asarray(gm.sample(k_true, ev.ed_samples), F32)
        lam_lo = float(sch.lam_min)
        a_hi, s_hi = (float(v) for v in _schedules.alpha_sigma(lam_lo, sch.process))
        self.prior = jnp.asarray(gm.noised(a_hi, s_hi).sample(k_prior, ev.ed_samples), F32)
        self.sig_tilde_max = s_hi / a_hi
        lam_hi = float(sch.lam_max)
        a_lo, s_lo = (float(v) for v in _schedules.alpha_sigma(lam_hi, sch.process))
        self.sig_tilde_min = s_lo / a_lo
        # Fisher points: λ uniform in each bin, x_t ~ p_λ, exact score in the mixture's dtype
        m = ev.fisher_points

        @jax.jit  # one compiled program instead of many eager operations
        def fisher_points(gm, lo, width, keys):
            u = jax.random.uniform(keys[0], (nb, m), gm.means.dtype)
            lam_f = lo[:, None] + u * width[:, None]
            a_f, s_f = _schedules.alpha_sigma(lam_f, sch.process)
            x0 = gm.sample(keys[1], nb * m).reshape(nb, m, gm.dim)
            e = jax.random.normal(keys[2], x0.shape, x0.dtype)
            xt = a_f[..., None] * x0 + s_f[..., None] * e
            score = jax.vmap(jax.vmap(lambda x, a, s: gm.noised(a, s).score(x)))(xt, a_f, s_f)
            return lam_f, s_f, xt, score

        lam_f, s_f, xt, score = fisher_points(
            gm, jnp.asarray(edges[:-1]), jnp.asarray(np.diff(edges)), (k_fl, k_fx, k_fe)
        )
        self.f_lam = jnp.asarray(lam_f, F32)
        self.f_xt = jnp.asarray(xt, F32)
        self.f_score = jnp.asarray(score, F32)
        self.f_sigma2 = np.asarray(s_f, np.float64) ** 2
        # gradient points: bin centre λ, fixed (x0, ε)
        g = ev.grad_points
        self.g_x0 = jnp.asarray(gm.sample(k_gx, g), F32)
        self.g_eps = jax.random.normal(k_ge, (g, gm.dim), F32)
        self.g_lam = jnp.asarray(centers, F32)
        self._eval = jax.jit(jax.vmap(self._evaluate_one))

    # --- per configuration ----------------------------------------------------------------
    def _sample_ode(self, state):
        """PF-ODE dx̃/dσ̃ = ε̂ (x̃ = x/α), Heun on the EDM ρ = 7 grid, Euler to σ̃ = 0."""
        prob, n = self.prob, self.ev.ode_steps
        rho = 7.0
        i = jnp.arange(n, dtype=F32)
        lo, hi = self.sig_tilde_min ** (1 / rho), self.sig_tilde_max ** (1 / rho)
        sig = (hi + i / max(n - 1, 1) * (lo - hi)) ** rho
        sig = jnp.concatenate([sig, jnp.zeros((1,), F32)])

        def eps_at(x_tilde, st):
            lam = jnp.full(x_tilde.shape[:-1], -2.0 * jnp.log(st), F32)
            a, _ = prob.alpha_sigma(lam)
            return prob.eps_hat(state.params, state.mask, a[..., None] * x_tilde, lam)

        def body(x, k):
            s0, s1 = sig[k], sig[k + 1]
            d0 = eps_at(x, s0)
            x1 = x + (s1 - s0) * d0
            d1 = eps_at(x1, jnp.maximum(s1, 1e-12))
            heun = x + (s1 - s0) * 0.5 * (d0 + d1)
            return jnp.where(s1 > 0, heun, x1), None

        a_hi = prob.alpha_sigma(jnp.asarray(-2.0 * math.log(self.sig_tilde_max), F32))[0]
        x, _ = jax.lax.scan(body, self.prior / a_hi, jnp.arange(n))
        return x  # at σ̃ = 0, x̃ = x0

    def _grad_std_one(self, state):
        prob = self.prob

        def per_ex(params, x0, e, lam):
            return prob.per_example_loss(
                params, state.mask, state.weighting_index, x0[None], e[None], lam[None]
            )[0]

        def one_bin(lam):
            g = jax.vmap(jax.grad(per_ex), in_axes=(None, 0, 0, None))(
                state.params, self.g_x0, self.g_eps, lam
            )
            flat = jnp.concatenate(
                [v.reshape(v.shape[0], -1) for v in jax.tree_util.tree_leaves(g)], -1
            )
            dev = flat - flat.mean(0)
            return jnp.sqrt(jnp.sum(dev**2) / (flat.shape[0] - 1))

        return jax.lax.map(one_bin, self.g_lam)

    def _evaluate_one(self, state):
        x = self._sample_ode(state)
        # blocks of 128 rows keep memory at O(configs · 128 · ed_samples) under vmap
        ed = energy_distance(x, self.true, unbiased=True, block_size=min(128, x.shape[0]))
        return ed, self._grad_std_one(state), self._fisher_one(state)

    def _fisher_one(self, state):
        prob = self.prob
        a, s = prob.alpha_sigma(self.f_lam)
        eps_hat = prob.eps_hat(state.params, state.mask, self.f_xt, self.f_lam)
        s_theta = -eps_hat / s[..., None]
        return jnp.sum((s_theta - self.f_score) ** 2, -1)  # (bins, points)

    # --- public to the engine ----------------------------------------------------------------
    def evaluate(self, states) -> dict:
        """Energy distance, gradient spread and Fisher statistics of stacked states."""
        ed, gs, sq = (np.asarray(v, np.float64) for v in self._eval(states))
        m = sq.shape[-1]  # sq: (n, bins, m)
        f = sq.mean(-1)
        se = sq.std(-1, ddof=1) / math.sqrt(m)
        s2 = sq * self.f_sigma2[None]
        f2 = s2.mean(-1)
        se2 = s2.std(-1, ddof=1) / math.sqrt(m)
        p = self.bin_prob[None]
        return {
            "energy_distance": ed,
            "grad_std": gs,
            "fisher": f,
            "fisher_se": se,
            "fisher_total": (p * f).sum(-1),
            "fisher_total_se": np.sqrt((p**2 * se**2).sum(-1)),
            "fisher_total_sigma2": (p * f2).sum(-1),
            "fisher_total_sigma2_se": np.sqrt((p**2 * se2**2).sum(-1)),
        }
