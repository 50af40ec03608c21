r"""Training small MLP score models on Gaussian mixtures, and sweeps over seeds × weightings ×
capacities compiled as one program (FORMULAS.md §1, §3, §6, §7 "Zhang et al.").

The package has one module per concept:

* configuration (``_config``): :class:`TrainConfig`, :class:`EvalConfig`, the accepted names
  and model sizes; the weighting of a run is resolved with the public registry only
  (``_weighting``: :class:`LossWeighting`);
* the problem (``_problem``): ``make_problem(config) ->`` :class:`TrainProblem` ``(init,
  step, loss, sample, update, eps_hat)``, pure functions in the shape of optax's
  ``GradientTransformation`` and blackjax's kernels; ``step`` returns ``(state, info)`` with
  :class:`TrainState` and :class:`StepInfo`;
* the sweep (``_sweep``): :func:`sweep` and :func:`train`, one ``jit`` of a loop over steps
  with one ``vmap`` per capacity over its configurations, sharded over devices;
* evaluation (``_evaluate``): energy distance, gradient spread, exact Fisher divergence.

**Loss.** With $x_t=\alpha x_0+\sigma\varepsilon$, $\lambda\sim p(\lambda)$ from the schedule
(VE by default: Song's geometric schedule, $\sigma_{min}=0.01$, $\sigma_{max}$ = the largest
distance between two mixture means), the network's output is converted to a noise prediction
$\hat\varepsilon$ (whatever the parameterization, :func:`dsmtheory.parameterization.to_eps`)
and the per-example loss is

$$\ell=\omega_\varepsilon(\lambda)\,\|\hat\varepsilon-\varepsilon\|^2
      =\Lambda(\lambda)\,\|s_\theta-s_c\|^2,\qquad \Lambda=\sigma^2\omega_\varepsilon,$$

so the canonical weight $\omega_\varepsilon$ of the weighting registry (FORMULAS.md §1) is the
multiplier of the score-space loss relative to Song's $\sigma^2$ heuristic (``simple``,
$\omega_\varepsilon=1$). Two oracle weightings use the exact mixture:

* ``c_star``: $\omega_\varepsilon=c^*(\lambda)=\dfrac{D\,\sigma^2}{\alpha^2\,\mathbb E\,
  \mathrm{tr}\,\mathrm{Cov}[x_0\mid x_t]}$ (FORMULAS.md §6(c)), the registry's ``optimal``
  table of :mod:`dsmtheory.optimal` on the schedule's λ range.
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

Two **stateful** weightings learn or estimate $c^*$ as the model trains (issue 15; their
state is :attr:`TrainState.weighting_state`, the multiplier a state applies
:func:`weighting_multiplier`, recorded per checkpoint in :attr:`SweepResult.multiplier`):

* ``edm2_learned``: EDM2's learned log-variance $u(\sigma)$ (Karras et al. 2024, eq. 21),
  Fourier features of $\tfrac14\log\tilde\sigma$ into a unit-norm linear layer, trained
  jointly; per example $\omega_{base}e^{-u}\|\hat\varepsilon-\varepsilon\|^2+D\,u$ (EDM2 sums
  its per-element loss over the $D$ elements) with EDM's $\omega_{base}$, whose optimum is
  the multiplier $D/\mathbb E\|\hat\varepsilon-\varepsilon\|^2$, $c^*$ at the Bayes denoiser;
* ``online_c_star``: :func:`dsmtheory.adaptive.online_c_star` fed each batch's unweighted
  losses, weighing the next batch by $\hat c^*(\lambda)$.

**Model.** :class:`dsmtheory.models.MLPScoreModel` (its forward pass is the only one): two
equal SiLU hidden layers on the features $(c_{in}x_t/\alpha,\,e(\lambda))$ with
$c_{in}=1/\sqrt{\tilde\sigma^2+\sigma_d^2}$, $\tilde\sigma=\sigma/\alpha$, $\sigma_d^2$ the
mixture's mean per-coordinate variance, and $E=4$ Fourier features $e(\lambda)$; for width
$h$ it has $h^2+(2D+E+2)h+D$ parameters (:func:`num_params`), and the width is the one
whose count is closest to the requested capacity (25, 100, 500, 1000 in 2-D give widths 2,
6, 18, 27 and 26, 98, 506, 1001 parameters). Parameterizations (``eps``, ``x0``, ``v``,
``score``, ``F``) only change how the output is read as $\hat\varepsilon$.

**Sweeps as one program.** Configurations are grouped by capacity (and by the weighting's
kind, scalar or matrix): each group is a ``vmap`` of the update at its own width, and one
``jit`` runs every group's steps; a seed's batch is drawn and weighed once per step and
gathered by that seed's configurations. When JAX sees several devices, each group's
configuration axis is sharded over them (``jax.sharding.Mesh`` + ``NamedSharding``).
Nothing here is CPU-specific.

**Evaluation.** At each checkpoint (the end of each chunk of steps):

* energy distance (U-statistic, FORMULAS.md §7) between PF-ODE samples of the model
  (:func:`dsmtheory.sampling.heun_pf_ode` on the EDM ρ = 7 grid in $\tilde\sigma$, started
  from exact samples of $p_{\sigma_{max}}$) and fixed samples of the true mixture;
* per-σ-bin gradient spread: at the bin's centre λ, the per-example gradients
  $g_i=\nabla_\theta\ell_i$ (``vmap(grad)``) over fixed $(x_0,\varepsilon)$ draws give
  ``grad_std`` $=\sqrt{\mathrm{tr}\,\widehat{\mathrm{Cov}}(g_i)}$
  $=\big(\tfrac1{n-1}\sum_i\|g_i-\bar g\|^2\big)^{1/2}$, the weighted loss's per-example
  gradient noise;
* the **exact Fisher divergence** per λ bin, $F_b=\mathbb E\|s_\theta(x_t)-
  s^*(x_t)\|^2$ with $s^*$ the closed-form score of ``gm.noised(α, σ)`` and fixed Monte Carlo
  points (λ uniform in the bin, $x_t\sim p_\lambda$), with standard errors, and the totals
  $\int p(\lambda)F(\lambda)d\lambda\approx\sum_bP_b\hat F_b$ and its σ²-weighted version
  $\sum_bP_b\widehat{\sigma^2F}_b$ ($P_b$ the schedule's probability of bin $b$).

Training runs in float32 (the exact ground truth is computed in float64 when x64 is on and
then cast).
"""

from ._config import CAPACITY_PER_DIM as CAPACITY_PER_DIM
from ._config import DEPTH as DEPTH
from ._config import EMBEDDING_DIM as EMBEDDING_DIM
from ._config import NOISE_SAMPLINGS as NOISE_SAMPLINGS
from ._config import PARAMETERIZATIONS as PARAMETERIZATIONS
from ._config import SIGMA_DATA_WEIGHTINGS as SIGMA_DATA_WEIGHTINGS
from ._config import EvalConfig as EvalConfig
from ._config import TrainConfig as TrainConfig
from ._config import capacities_for_dim as capacities_for_dim
from ._config import data_weighting_params as data_weighting_params
from ._config import default_sigma_max as default_sigma_max
from ._config import num_params as num_params
from ._config import sigma_data as sigma_data
from ._config import weighting_names as weighting_names
from ._config import width_for_capacity as width_for_capacity
from ._evaluate import fisher_divergence as fisher_divergence
from ._matrix import MATRIX_MAX_WEIGHT as MATRIX_MAX_WEIGHT
from ._matrix import matrix_optimal_weighting as matrix_optimal_weighting
from ._problem import Batch as Batch
from ._problem import StepInfo as StepInfo
from ._problem import TrainProblem as TrainProblem
from ._problem import TrainState as TrainState
from ._problem import init_state as init_state
from ._problem import loss_per_example as loss_per_example
from ._problem import make_problem as make_problem
from ._problem import to_model as to_model
from ._problem import train_step as train_step
from ._problem import weighting_multiplier as weighting_multiplier
from ._sweep import SweepResult as SweepResult
from ._sweep import TrainResult as TrainResult
from ._sweep import sweep as sweep
from ._sweep import train as train
from ._weighting import ORACLE_WEIGHTINGS as ORACLE_WEIGHTINGS
from ._weighting import STATEFUL_WEIGHTINGS as STATEFUL_WEIGHTINGS
from ._weighting import LossWeighting as LossWeighting
from ._weighting import StatefulWeighting as StatefulWeighting

__all__ = [
    "ORACLE_WEIGHTINGS",
    "STATEFUL_WEIGHTINGS",
    "StatefulWeighting",
    "PARAMETERIZATIONS",
    "NOISE_SAMPLINGS",
    "TrainConfig",
    "EvalConfig",
    "TrainState",
    "TrainResult",
    "SweepResult",
    "TrainProblem",
    "StepInfo",
    "Batch",
    "LossWeighting",
    "make_problem",
    "width_for_capacity",
    "num_params",
    "default_sigma_max",
    "sigma_data",
    "CAPACITY_PER_DIM",
    "SIGMA_DATA_WEIGHTINGS",
    "capacities_for_dim",
    "data_weighting_params",
    "MATRIX_MAX_WEIGHT",
    "matrix_optimal_weighting",
    "weighting_names",
    "init_state",
    "train_step",
    "train",
    "sweep",
    "loss_per_example",
    "to_model",
    "weighting_multiplier",
    "fisher_divergence",
]
