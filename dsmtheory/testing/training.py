r"""Do two weightings train the same? Trajectories of one small model under each.

FORMULAS.md §5 P10: multiplying the loss by a constant $c$ leaves the minimiser unchanged;
under SGD it is the same as the learning rate $\eta c$ (the gradient scales by $c$); under
Adam the update $\hat m/(\sqrt{\hat v}+\epsilon)$ becomes $\hat m/(\sqrt{\hat v}+\epsilon/c)$,
invariant apart from $\epsilon$. A weighting that is *not* a constant multiple of another
changes the trajectory under either optimiser.

:func:`assert_same_training` trains the same MLP (same data, noise, λ draws and
initialisation, one seed) with the weighted DSM loss of each weighting
(:func:`dsmtheory.losses.dsm_loss`), with Adam (ε tiny by default) or with SGD (the second
run's learning rate rescaled by the measured ratio $c=\omega_1/\omega_2$), and compares the
two parameter trajectories step by step. The trainer is written here with optax; both runs
are one compiled program (``vmap`` over the two weightings, ``scan`` over the steps), the
same program for Adam and SGD.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import mixture, schedules
from .._numerics import lead
from .._validation import check_count
from ..losses import dsm_loss
from ..mixture import check_mixture
from . import _spec
from ._tolerances import TRAIN_RTOL_F32, TRAIN_RTOL_F64

__all__ = ["TrainingComparison", "assert_same_training"]

OPTIMIZERS = ("adam", "sgd")


class TrainingComparison(NamedTuple):
    r"""Result of :func:`assert_same_training`.

    Attributes:
        optimizer: ``"adam"`` or ``"sgd"``.
        steps: optimisation steps of each run.
        learning_rates: ``(η₁, η₂)``; under SGD $\eta_2=c\,\eta_1$.
        constant: $c$, the median of $\omega_1/\omega_2$ over the drawn λ.
        constant_spread: $\max|\log(\omega_1/\omega_2)-\log c|$ over the drawn λ (0 when
            the weightings are proportional).
        max_rel_diff: $\max_t\|\theta^1_t-\theta^2_t\|_\infty/\max_t\|\theta^1_t-\theta_0\|_\infty$,
            the trajectories' largest difference relative to how far the parameters move.
        tolerance: the largest ``max_rel_diff`` that counts as the same trajectory.
        same: ``max_rel_diff <= tolerance``.
        final_losses: the last step's mean weighted loss of each run.
    """

    optimizer: str
    steps: int
    learning_rates: tuple[float, float]
    constant: float
    constant_spread: float
    max_rel_diff: float
    tolerance: float
    same: bool
    final_losses: tuple[float, float]


def _ftype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _init_mlp(key, dim: int, width: int, depth: int):
    sizes = [dim + 1] + [width] * depth + [dim]
    params = []
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        k = jax.random.fold_in(key, i)
        w = jax.random.normal(k, (m, n), dtype=_ftype()) / math.sqrt(m)
        params.append((w, jnp.zeros((n,), dtype=_ftype())))
    return params


def _mlp(params, x_t, lam):
    h = jnp.concatenate([x_t, (lam / 10.0)[..., None]], axis=-1)
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + lead(b, h.ndim))
    w, b = params[-1]
    return h @ w + lead(b, h.ndim)


@functools.lru_cache(maxsize=16)
def _trainer(parameterization: str, process: str, sigma_data: float):
    """A jitted ``(theta0, x0, noise, lam, weights, lrs, eps, use_adam) -> (trajectories,
    losses)`` that trains one copy of the model per row of ``weights`` / ``lrs`` (vmap) over
    the steps (scan). Adam's ``eps`` and the choice between optax's Adam and SGD are
    arguments (both updates are computed, one is applied), so one compilation serves all."""

    def loss_fn(theta, x0, noise, lam, w):
        a, s = schedules.alpha_sigma(lam, process)
        x_t = a[:, None] * x0 + s[:, None] * noise
        pred = _mlp(theta, x_t, lam)
        per = dsm_loss(
            pred, x0, noise, lam, parameterization=parameterization, weighting=w,
            process=process, sigma_data=sigma_data,
        )  # fmt: skip
        return jnp.mean(per)

    def run(theta0, x0, noise, lam, weights, lr, eps, use_adam):
        adam, sgd = optax.adam(lr, eps=eps), optax.sgd(lr)

        def step(carry, batch):
            theta, s_adam, s_sgd = carry
            loss, grad = jax.value_and_grad(loss_fn)(theta, *batch)
            u_adam, s_adam = adam.update(grad, s_adam, theta)
            u_sgd, s_sgd = sgd.update(grad, s_sgd, theta)
            upd = jax.tree_util.tree_map(lambda a, b: jnp.where(use_adam, a, b), u_adam, u_sgd)
            theta = optax.apply_updates(theta, upd)
            flat = jnp.concatenate([jnp.ravel(p) for layer in theta for p in layer])
            return (theta, s_adam, s_sgd), (flat, loss)

        init = (theta0, adam.init(theta0), sgd.init(theta0))
        _, (traj, losses) = jax.lax.scan(step, init, (x0, noise, lam, weights))
        return traj, losses

    return jax.jit(jax.vmap(run, in_axes=(None, None, None, None, 0, 0, None, None)))


def assert_same_training(
    w1,
    w2,
    *,
    optimizer: str = "adam",
    steps: int = 200,
    learning_rate: float = 1e-2,
    batch_size: int = 64,
    gm: mixture.GaussianMixture | None = None,
    schedule="cosine",
    parameterization: str = "eps",
    sigma_data: float = 0.5,
    width: int = 16,
    depth: int = 2,
    adam_eps: float = 1e-30,
    seed: int = 0,
    rtol: float | None = None,
) -> TrainingComparison:
    r"""Assert that weightings ``w1`` and ``w2`` give the same training trajectory.

    Same model, data, noise, λ draws and initialisation (``seed``); the loss is the mean
    weighted DSM loss $\omega_\varepsilon\|\varepsilon-\hat\varepsilon\|^2$ written in
    ``parameterization`` (:func:`dsmtheory.losses.dsm_loss`). With ``optimizer="adam"`` both
    runs use ``learning_rate``; they agree to rounding iff $\omega_1=c\,\omega_2$ (for
    ``adam_eps`` small against the gradients' RMS; FORMULAS.md §5 P10). With ``"sgd"`` the
    second run uses ``learning_rate * c``, $c$ the median of $\omega_1/\omega_2$ over the
    drawn λ; they agree iff that rescale makes the updates equal, i.e. again iff the
    weightings are proportional.

    Args:
        w1: a registry name (default parameters), a
            :class:`~dsmtheory.weightings.Weighting` or a callable $\lambda\mapsto
            \omega_\varepsilon$ (NumPy in, NumPy out: it is evaluated once, before
            training, on every drawn λ).
        w2: the same for the second weighting.
        optimizer: ``"adam"`` or ``"sgd"``.
        steps: optimisation steps.
        learning_rate: η of the first run.
        batch_size: examples per step.
        gm: the data distribution (default :func:`dsmtheory.ring`, 2-D, 8 modes).
        schedule: a schedule name or :class:`~dsmtheory.schedules.Schedule`; λ is drawn from
            its density and its process (VP for ``"cosine"``) builds $x_t$.
        parameterization: the network's output (the loss is the same objective in each).
        sigma_data: σ_d for ``parameterization="F"``.
        width: hidden units per layer of the tanh MLP.
        depth: hidden layers.
        adam_eps: Adam's ε (default 1e-30: "ε tiny"; optax's default 1e-8 breaks the
            invariance measurably when $c$ is far from 1).
        seed: the one seed of data, noise, λ and initialisation.
        rtol: the largest relative trajectory difference that counts as the same
            (default :data:`~dsmtheory.testing.TRAIN_RTOL_F64` in float64,
            :data:`~dsmtheory.testing.TRAIN_RTOL_F32` in float32).

    Returns:
        :class:`TrainingComparison`, with the measured difference.

    Raises:
        AssertionError: the trajectories differ; the message gives the difference, the ratio
            $\omega_1/\omega_2$ on the drawn λ and why.
        ValueError, TypeError: bad arguments.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'optimizer must be "adam" or "sgd", got {optimizer!r}')
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    width = check_count(width, "width")
    depth = check_count(depth, "depth")
    for name, val in (("learning_rate", learning_rate), ("adam_eps", adam_eps)):
        if isinstance(val, bool) or not isinstance(val, int | float) or not val > 0:
            raise ValueError(f"{name} must be a number > 0, got {val!r}")
    p = _spec.parameterization_name(parameterization)
    sd = _spec.sigma_data_value(sigma_data)
    if gm is None:
        gm = mixture.ring()
    check_mixture(gm)
    sched = schedules.get(schedule) if isinstance(schedule, str) else schedule
    if not isinstance(sched, schedules.Schedule):
        raise TypeError(f"schedule must be a name or a Schedule, got {type(schedule).__name__}")
    specs = [_spec.resolve_weighting(w, None, what) for w, what in ((w1, "w1"), (w2, "w2"))]
    dtype = _ftype()
    tol = (TRAIN_RTOL_F64 if dtype == jnp.float64 else TRAIN_RTOL_F32) if rtol is None else rtol
    if not (isinstance(tol, int | float) and tol > 0):
        raise ValueError(f"rtol must be a number > 0, got {rtol!r}")

    key = jax.random.PRNGKey(seed)
    k_init, k_x, k_n, k_l = jax.random.split(key, 4)
    theta0 = _init_mlp(k_init, gm.dim, width, depth)
    x0 = gm.sample(k_x, steps * batch_size).astype(dtype).reshape(steps, batch_size, gm.dim)
    noise = jax.random.normal(k_n, x0.shape, dtype=dtype)
    lam = sched.sample(k_l, (steps, batch_size)).astype(dtype)
    lam_np = np.asarray(lam, dtype=np.float64).ravel()
    omega = []
    for spec in specs:
        v = spec.fn(lam_np)
        if v.shape != lam_np.shape or not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{spec.label} must be finite and > 0 on the drawn lambda")
        omega.append(v)
    log_ratio = np.log(omega[0]) - np.log(omega[1])
    log_c = float(np.median(log_ratio))
    spread = float(np.max(np.abs(log_ratio - log_c)))
    c = math.exp(log_c)
    lrs = (float(learning_rate), float(learning_rate) * (c if optimizer == "sgd" else 1.0))
    weights = jnp.asarray(np.stack(omega).reshape(2, steps, batch_size), dtype=dtype)

    train = _trainer(p, sched.process, sd)
    traj, losses = train(
        theta0, x0, noise, lam, weights, jnp.asarray(lrs, dtype=dtype),
        jnp.asarray(adam_eps, dtype=dtype), jnp.asarray(optimizer == "adam"),
    )  # fmt: skip
    traj = np.asarray(traj, dtype=np.float64)
    flat0 = np.concatenate([np.ravel(np.asarray(q)) for layer in theta0 for q in layer])
    travel = float(np.max(np.abs(traj[0] - flat0)))
    diff = float(np.max(np.abs(traj[0] - traj[1])))
    rel = diff / travel if travel > 0 else (0.0 if diff == 0 else math.inf)
    if not np.all(np.isfinite(traj)):
        rel = math.inf
    result = TrainingComparison(
        optimizer=optimizer,
        steps=steps,
        learning_rates=lrs,
        constant=c,
        constant_spread=spread,
        max_rel_diff=rel,
        tolerance=float(tol),
        same=bool(rel <= tol),
        final_losses=(float(losses[0, -1]), float(losses[1, -1])),
    )
    if result.same:
        return result

    labels = [s.label for s in specs]
    lines = [
        f"training with {labels[0]} and with {labels[1]} does not follow the same trajectory "
        f"({optimizer}, {steps} steps of {batch_size}, learning rates "
        f"{_spec.fmt_num(lrs[0])} and {_spec.fmt_num(lrs[1])}, seed {seed}):",
        f"  the parameters differ by up to {rel:.3g} of the distance they travel "
        f"(tolerance {tol:g}).",
        f"  omega_1 / omega_2 on the {lam_np.size} drawn lambda has median "
        f"{_spec.fmt_num(c)} and deviates from it by up to a factor "
        f"{math.exp(spread):.6g}.",
    ]
    if spread > 1e-9:
        why = (
            "the weightings are not proportional, so no learning-rate rescale makes the SGD "
            "updates equal"
            if optimizer == "sgd"
            else "the weightings are not proportional, and Adam is invariant only to a "
            "constant factor (FORMULAS.md §5 P10)"
        )
    elif optimizer == "adam":
        why = (
            f"the weightings are proportional, so the difference comes from Adam's "
            f"eps={adam_eps:g}: the update m/(sqrt(v) + eps) is invariant to a constant c only "
            "up to eps/c (FORMULAS.md §5 P10); pass a smaller adam_eps"
        )
    else:
        why = "the weightings are proportional: the difference is numerical (try float64)"
    lines.append(f"  Reason: {why}.")
    raise AssertionError("\n".join(lines))
