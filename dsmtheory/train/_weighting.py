r"""How a training run weighs its per-example errors: the registry weightings
$\omega_\varepsilon(\lambda)$, the oracle $c^*(\lambda)$ and the matrix weight $M(x_t)$,
resolved into one :class:`LossWeighting`.

A weighting is resolved with the public registry only (``weightings.get`` and the
``params`` of the :class:`dsmtheory.weightings.Weighting` it returns): a registry entry whose
resolved parameters contain a ``schedule`` (a weighting defined through the sampling
density) is rebuilt with the training schedule unless the user gave one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import adaptive as _adaptive
from .. import optimal as _optimal
from .. import weightings as _weightings
from .._numerics import lead

STATEFUL_WEIGHTINGS = ("edm2_learned", "online_c_star")
ORACLE_WEIGHTINGS = ("matrix_optimal", "c_star", *STATEFUL_WEIGHTINGS)
EDM2_CHANNELS = 128  # EDM2's logvar_channels
KINDS = ("scalar", "matrix")
F32 = jnp.float32


class LossWeighting(NamedTuple):
    r"""The weight of each example of a batch in the ε-space loss.

    ``kind="scalar"``: ``weigh`` returns $\omega_\varepsilon(\lambda_i)$ ``(B,)`` and the loss
    is $\omega_\varepsilon\|\hat\varepsilon-\varepsilon\|^2$. ``kind="matrix"``: it returns
    $M(x_t)$ ``(B, D, D)`` and the loss is $(\hat\varepsilon-\varepsilon)^\top
    M(\hat\varepsilon-\varepsilon)$.

    The fixed weightings are functions of the data $(x_t,\lambda)$, so a sweep weighs each
    batch once per seed and shares the weights between capacities. A weighting with
    parameters or state of its own (``edm2_learned``, ``online_c_star``) also has
    :attr:`hooks` (a :class:`StatefulWeighting`); its ``weigh`` gives the base weight of the
    batch and its state lives in :attr:`dsmtheory.train.TrainState.weighting_state`.

    Attributes:
        name: the configuration's weighting name.
        kind: ``"scalar"`` or ``"matrix"``.
        weigh: ``weigh(x_t, alpha, sigma, lam)`` with ``x_t`` ``(B, D)`` and the others
            ``(B,)`` → float32 ``(B,)`` or ``(B, D, D)``; pure and jittable.
        hooks: ``None`` for a fixed weighting, else its :class:`StatefulWeighting`.
    """

    name: str
    kind: str
    weigh: Callable
    hooks: StatefulWeighting | None = None


class StatefulWeighting(NamedTuple):
    r"""The functions of a weighting that learns or estimates as the model trains.

    The training step (:func:`dsmtheory.train.make_problem`) differentiates the batch mean
    of ``loss`` with respect to the model parameters and to ``trainable(state)`` jointly,
    applies the configuration's optimizer to both (the weighting's part with its own optimizer
    state), then calls ``observe`` with the updated trainable part and the batch's
    *unweighted* per-example ε-space errors $\|\hatarepsilon-arepsilon\|^2$.

    Attributes:
        init: ``init(key) -> state`` (a pytree of arrays).
        trainable: ``trainable(state) -> pytree`` optimized jointly with the model (``()``
            for none).
        loss: ``loss(trainable, state, batch, sq_err) -> (B,)`` the per-example loss (``batch``
            a :class:`dsmtheory.train.Batch` whose ``weight`` is the base weight).
        observe: ``observe(state, trainable, batch, sq_err) -> state`` after the step.
        multiplier: ``multiplier(state, lam) -> (B,)`` the effective ε-space multiplier
            $\omega_\varepsilon(\lambda)$ the state applies now (what the loss's gradient
            weighs $\|\hat\varepsilon-\varepsilon\|^2$ by).
    """

    init: Callable[[jax.Array], Any]
    trainable: Callable
    loss: Callable
    observe: Callable
    multiplier: Callable


class Edm2State(NamedTuple):
    r"""State of ``edm2_learned``: $u(\sigma)=\hat w\cdot\sqrt2\cos(f\,c_{noise}+\phi)$.

    Attributes:
        weight: ``(C,)`` the linear layer's weight (trained; used normalised,
            $\hat w=w/\|w\|$).
        freqs, phases: ``(C,)`` the fixed Fourier features, $2\pi N(0,1)$ and $2\pi U(0,1)$.
    """

    weight: jax.Array
    freqs: jax.Array
    phases: jax.Array


def edm2_log_variance(state: Edm2State, lam) -> jax.Array:
    r"""EDM2's learned log-variance $u(\sigma)$ at log-SNR ``lam`` (Karras et al. 2024,
    eq. 21; NVlabs/edm2 ``Precond``: ``MPFourier`` then ``MPConv`` with one output):

    $$c_{noise}=\tfrac14\log\tilde\sigma=-\lambda/8,\qquad
    u=\sum_k\frac{w_k}{\|w\|}\sqrt2\cos(f_kc_{noise}+\phi_k)$$

    (EDM2's magnitude-preserving layer: the weight normalised to unit norm, no bias).
    """
    lam = jnp.asarray(lam, state.weight.dtype)
    c_noise = -lam / 8.0
    cn = c_noise[..., None]
    feats = math.sqrt(2.0) * jnp.cos(cn * lead(state.freqs, cn.ndim) + lead(state.phases, cn.ndim))
    c = state.weight.shape[-1]
    w_hat = state.weight / (1e-4 * math.sqrt(c) + jnp.linalg.norm(state.weight))
    return feats @ w_hat


def edm2_learned_hooks(base: Callable, dim: int, channels: int = EDM2_CHANNELS):
    r"""EDM2's learned weighting in ε-space (Karras et al. 2024, eq. 21; FORMULAS.md §8;
    derivation ``edm2_learned_weighting``).

    EDM2's loss is per element, ``(w / e^u) * (D - y)**2 + u``, summed over the $D$
    elements; per example that is $\frac{w}{e^u}\|D_\theta-y\|^2+D\,u$. With
    $\|D_\theta-y\|^2=\tilde\sigma^2\|\hat\varepsilon-\varepsilon\|^2$ it is

    $$\ell=\omega_{base}(\lambda)\,e^{-u(\sigma)}\|\hat\varepsilon-\varepsilon\|^2
    +D\,u(\sigma),\qquad \omega_{base}=w\tilde\sigma^2,$$

    here with $\omega_{base}$ = EDM's $1+\tilde\sigma^2/\sigma_d^2$ (EDM2's $w$). Minimised
    over $u$: $e^{u^*}=\omega_{base}L_\varepsilon/D$, so the effective multiplier
    $\omega_{base}e^{-u^*}=D/L_\varepsilon$, which is $c^*$ itself at the Bayes denoiser
    (this convention, $D\,u$ per example, makes it $c^*$ and not only proportional).

    ``weight`` is kept at norm $\sqrt C$ after each step (EDM2's forced weight
    normalisation); the layer uses it normalised, so only its direction matters.
    """

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        f32 = jnp.float32
        return Edm2State(
            jax.random.normal(k1, (channels,), f32),
            2.0 * math.pi * jax.random.normal(k2, (channels,), f32),
            2.0 * math.pi * jax.random.uniform(k3, (channels,), f32),
        )

    def trainable(state):
        return state.weight

    def loss(weight, state, batch, sq):
        u = edm2_log_variance(state._replace(weight=weight), batch.lam)
        return batch.weight * jnp.exp(-u) * sq + dim * u

    def observe(state, weight, batch, sq):
        norm = jnp.linalg.norm(weight)
        return state._replace(weight=weight * (math.sqrt(channels) / jnp.maximum(norm, 1e-30)))

    def multiplier(state, lam):
        return jnp.asarray(base(lam), F32) * jnp.exp(-edm2_log_variance(state, lam))

    return StatefulWeighting(init, trainable, loss, observe, multiplier)


def online_c_star_hooks(dim: int, lam_range, num_bins: int = 32, decay: float = 0.99,
                        floor: float = 1.0):  # fmt: skip
    r"""The online $\hat c^*$ of :func:`dsmtheory.adaptive.online_c_star` as a training
    weighting: each batch is weighed by $\hat c^*(\lambda)$ of the state *before* the batch
    (no gradient through it), then the batch's unweighted ε-space errors update the state."""
    est = _adaptive.online_c_star(num_bins, lam_range, decay, dim=dim, floor=floor)

    def init(key):
        return est.init()

    def loss(trainable, state, batch, sq):
        c = jax.lax.stop_gradient(est.weight(state, batch.lam))
        return jnp.asarray(c, sq.dtype) * sq

    def observe(state, trainable, batch, sq):
        return est.update(state, batch.lam, jax.lax.stop_gradient(sq))

    def multiplier(state, lam):
        return jnp.asarray(est.weight(state, lam), F32)

    return StatefulWeighting(init, lambda state: (), loss, observe, multiplier)


def registry_weighting(name: str, params: dict, schedule) -> _weightings.Weighting:
    """The registry weighting ``name`` with ``params``; one defined through the sampling
    density (its resolved parameters hold a ``schedule``) gets the training ``schedule``
    unless ``params`` names one.

    Raises:
        ValueError, TypeError: from the registry, naming the bad name or parameter.
    """
    weighting = _weightings.get(name, **params)
    if "schedule" in weighting.params and "schedule" not in params:
        weighting = _weightings.get(name, **params, schedule=schedule)
    return weighting


def c_star_weighting(params: dict, schedule, gm) -> _weightings.Weighting:
    r"""$\omega_\varepsilon=c^*(\lambda)$ of ``gm``: the registry's ``optimal`` table
    (:func:`dsmtheory.optimal.optimal_weighting`) on the schedule's λ range widened by 1
    on each side, 65 nodes (each to 1e-10 by the expectation engine; the spline between
    them is off by at most 9.5e-5 relative on the ring and 1.8e-4 on ``bimodal_1d`` for the
    default VE schedule, measured at the midpoints by
    ``tests/test_doc_figures.py::test_training_c_star_table_interpolation_error``; far below
    the training noise), unless ``params`` says otherwise."""
    params = dict(params)
    params.setdefault("gm", gm)
    params.setdefault("process", schedule.process)
    params.setdefault("lam_min", float(schedule.lam_min) - 1.0)
    params.setdefault("lam_max", float(schedule.lam_max) + 1.0)
    params.setdefault("num_grid", 65)
    return _weightings.get("optimal", **params)


def resolve_weighting(name: str, params: dict | None, schedule, gm) -> LossWeighting:
    r"""The :class:`LossWeighting` of a weighting name for data ``gm`` and ``schedule``.

    * ``matrix_optimal``: $M(x_t)=W^*(x_t)/\sigma^2=\mathrm{Cov}[\varepsilon\mid x_t]^{-1}$
      with $W^*$ of :func:`dsmtheory.optimal.matrix_weight` (Zhang et al. 2508.01597,
      FORMULAS.md §3 item 15), computed in float32 from a float32 copy of ``gm``;
    * ``c_star`` and ``optimal``: :func:`c_star_weighting`;
    * ``edm2_learned``: :func:`edm2_learned_hooks` on EDM's base weight with
      ``sigma_data`` (default :func:`dsmtheory.train.sigma_data` of ``gm``) and ``channels``
      (default 128);
    * ``online_c_star``: :func:`online_c_star_hooks` with ``num_bins`` (32), ``decay``
      (0.99), ``floor`` (1) and ``lam_range`` (the schedule's λ range);
    * any other registry name: :func:`registry_weighting`.
    """
    params = dict(params or {})
    if name in STATEFUL_WEIGHTINGS:
        return stateful_weighting(name, params, schedule, gm)
    with jax.ensure_compile_time_eval():  # tables and copies are data, even inside a trace
        if name == "matrix_optimal":
            gm32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, F32), gm)
            per_point = jax.vmap(_optimal.matrix_weight, in_axes=(None, 0, 0, 0))

            def weigh_matrix(x_t, alpha, sigma, lam):
                w = per_point(gm32, x_t, alpha, sigma)
                return w / (sigma**2)[:, None, None]

            return LossWeighting(name, "matrix", weigh_matrix)
        if name in ("c_star", "optimal"):
            fn = c_star_weighting(params, schedule, gm)
        else:
            fn = registry_weighting(name, params, schedule)

    def weigh_scalar(x_t, alpha, sigma, lam):
        return jnp.asarray(fn(lam), F32)

    return LossWeighting(name, "scalar", weigh_scalar)


def stateful_weighting(name: str, params: dict, schedule, gm) -> LossWeighting:
    """The :class:`LossWeighting` (with hooks) of ``edm2_learned`` or ``online_c_star``.

    Raises:
        ValueError: an unknown parameter name.
    """
    known = {
        "edm2_learned": ("sigma_data", "channels"),
        "online_c_star": ("num_bins", "decay", "floor", "lam_range"),
    }[name]
    bad = sorted(set(params) - set(known))
    if bad:
        raise ValueError(f"unknown parameter(s) {bad} of weighting {name!r}; known: {known}")
    dim = gm.dim
    if name == "edm2_learned":
        sd = params.get("sigma_data")
        if sd is None:
            sd = float(np.sqrt(np.trace(np.asarray(gm.covariance())) / dim))
        base = _weightings.get("edm", sigma_data=float(sd))
        channels = int(params.get("channels", EDM2_CHANNELS))
        hooks = edm2_learned_hooks(base, dim, channels)

        def weigh(x_t, alpha, sigma, lam):
            return jnp.asarray(base(lam), F32)

    else:
        lam_range = params.get("lam_range", (float(schedule.lam_min), float(schedule.lam_max)))
        hooks = online_c_star_hooks(
            dim,
            tuple(lam_range),
            int(params.get("num_bins", 32)),
            float(params.get("decay", 0.99)),
            float(params.get("floor", 1.0)),
        )

        def weigh(x_t, alpha, sigma, lam):
            return jnp.ones(lam.shape, F32)

    return LossWeighting(name, "scalar", weigh, hooks)
