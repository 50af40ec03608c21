r"""The training problem of one configuration as pure functions:
``make_problem(config) -> TrainProblem(init, step, loss, sample, update, eps_hat)``.

In the shape of optax's ``GradientTransformation`` and blackjax's kernels: a NamedTuple of
pure functions closed over the configuration, no hidden state; the caller applies ``jit``
(and :func:`dsmtheory.train.sweep` applies ``jit(vmap(...))`` over configurations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import models as _models
from .. import schedules as _schedules
from ..expectations import ExpectationError
from ..parameterization import to_eps
from ._config import DEPTH, EMBEDDING_DIM, OPTIMIZERS, TrainConfig, sigma_data, width_for_capacity
from ._matrix import matrix_optimal_weighting
from ._weighting import STATEFUL_WEIGHTINGS, LossWeighting, resolve_weighting

F32 = jnp.float32


class TrainState(NamedTuple):
    """Training state of one (or, stacked, many) configurations.

    Attributes:
        params: MLP layers ``((W1, b1), (W2, b2), (W3, b3))``, the ``layers`` of a
            :class:`dsmtheory.models.MLPScoreModel` (see :func:`to_model`).
        opt_state: optax state.
        weighting_state: state of the loss weighting: ``()`` for a fixed weighting; for
            ``edm2_learned`` and ``online_c_star`` the pair ``(state, opt_state)`` of its
            :class:`dsmtheory.train.LossWeighting` hooks and the optimizer state of its
            trainable part (see :func:`weighting_multiplier`).
        step: number of steps taken.
    """

    params: tuple
    opt_state: Any
    weighting_state: Any
    step: jax.Array


class Batch(NamedTuple):
    r"""One weighed training batch, $x_t=\alpha x_0+\sigma\varepsilon$.

    Attributes:
        x0, eps, x_t: ``(B, D)`` clean points, noises and noisy points.
        lam, alpha, sigma: ``(B,)`` log-SNRs and their $\alpha$, $\sigma$.
        weight: ``(B,)`` $\omega_\varepsilon(\lambda)$, or ``(B, D, D)`` $M(x_t)$ for
            ``matrix_optimal`` (see :class:`LossWeighting`).
    """

    x0: jax.Array
    eps: jax.Array
    x_t: jax.Array
    lam: jax.Array
    alpha: jax.Array
    sigma: jax.Array
    weight: jax.Array


class StepInfo(NamedTuple):
    """What one optimizer step reports (blackjax's ``Info``).

    Attributes:
        loss: ``()`` the batch mean of the weighted loss (the differentiated quantity).
        per_example_loss: ``(B,)`` the weighted loss of each example (with the batch's
            ``lam``, what per-λ-bin diagnostics and online weight estimators consume).
        grad_norm: ``()`` global norm of the gradient.
    """

    loss: jax.Array
    per_example_loss: jax.Array
    grad_norm: jax.Array


class TrainProblem(NamedTuple):
    r"""The pure functions of one configuration's training problem.

    Attributes:
        init: ``init(key) -> TrainState``: :func:`dsmtheory.models.init_mlp` at the
            configuration's width with ``key``, a fresh optimizer state and the weighting's
            initial state (from ``fold_in(key, 0x5EED)``; eager: it builds the arrays on the
            host).
        step: ``step(state, key) -> (state, StepInfo)``: one optimizer step on a fresh batch
            drawn with ``key``, ``update(state, sample(key))``; jittable.
        loss: ``loss(state, x0, eps, lam) -> (N,)``: the weighted per-example loss that
            ``step`` averages; jittable.
        sample: ``sample(key) -> Batch``: a batch of the data and the noise schedule
            (``noise_sampling``), weighed; jittable.
        update: ``update(state, batch) -> (state, StepInfo)``: one optimizer step on a given
            batch; jittable.
        eps_hat: ``eps_hat(params, x_t, alpha, sigma, lam) -> (..., D)``: the network's
            $\hat\varepsilon$ at ``x_t`` ``(..., D)`` (``alpha, sigma, lam`` ``(...)``),
            for parameters of any width; jittable.
    """

    init: Callable[[jax.Array], TrainState]
    step: Callable[[TrainState, jax.Array], tuple[TrainState, StepInfo]]
    loss: Callable[..., jax.Array]
    sample: Callable[[jax.Array], Batch]
    update: Callable[[TrainState, Batch], tuple[TrainState, StepInfo]]
    eps_hat: Callable[..., jax.Array]


# ---------------------------------------------------------------------------------------
# The pieces (shared by make_problem and the sweep engine)
# ---------------------------------------------------------------------------------------
class _Noise(NamedTuple):
    """``draw(key) -> (x0, eps, lam)``, the weighting-independent part of a batch."""

    draw: Callable
    process: str


def noise_sampler(config: TrainConfig) -> _Noise:
    r"""The data and noise draws of ``config`` (mixture, schedule, batch size, sampling).

    One call of ``jax.random.bits`` per batch gives every variate (one random-number kernel
    per draw keeps a sweep's compiled program small and its draws cheap): float32 uniforms
    (23 random mantissa bits, as ``jax.random.uniform``) for the components and standard
    normals of :func:`mixture_sample` (``latent_dim`` of them: D for the dense kind), the
    noise $\varepsilon$ (:func:`standard_normal`) and $t$, with $\lambda=\lambda(t)$ from the
    schedule.
    """
    with jax.ensure_compile_time_eval():
        gm32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, F32), config.mixture)
        schedule = config.build_schedule()
    dim, size, mode = config.mixture.dim, config.batch_size, config.noise_sampling
    latent = config.mixture.latent_dim
    rows = size // 2 if mode == "antithetic" else size

    def draw(key):
        u = _unit_uniform(jax.random.bits(key, (size, latent + dim + 2), jnp.uint32))
        x0 = mixture_sample(gm32, u[:, 0], standard_normal(u[:, 1 : latent + 1]))
        eps = standard_normal(u[:rows, latent + 1 : latent + dim + 1])
        t = u[:rows, -1]
        if mode == "stratified":  # slot i draws t in [i/B, (i+1)/B)
            t = jnp.clip((jnp.arange(size, dtype=F32) + t) / size, 0.0, 1.0)
        elif mode == "antithetic":  # (t, ε) and (1 − t, −ε)
            t = jnp.concatenate([t, 1.0 - t])
            eps = jnp.concatenate([eps, -eps])
        return x0, eps, jnp.asarray(schedule.lam(t), F32)

    return _Noise(draw, schedule.process)


def mixture_sample(gm, u, z):
    r"""Samples of ``gm`` from uniforms ``u`` ``(N,)`` on [0, 1) and standard normals ``z``
    ``(N, gm.latent_dim)``, in ``gm``'s dtype: the component by inverse CDF,
    $k=\#\{j<K-1:u>\sum_{i\le j}\pi_i\}$, then the mixture's one map from $z$ to the points
    of component $k$, :meth:`dsmtheory.GaussianMixture.component_points` ($x_0=\mu_k+
    U_k(\sqrt{\lambda_k}\odot z)$ for the dense kind)."""
    k = jnp.sum(u[:, None] > jnp.cumsum(gm.weights)[None, :-1], axis=-1)
    return gm.component_points(k, z)


def _unit_uniform(bits):
    """float32 uniforms on [0, 1) from uint32 bits: 23 random mantissa bits in [1, 2), − 1."""
    one = jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type((bits >> 9) | one, F32) - 1.0


def standard_normal(u):
    r"""Standard normals from uniforms ``u`` on [0, 1) (any float dtype):
    $\sqrt2\,\mathrm{erf}^{-1}(v)$ with $v$ the uniform moved to $(-1, 1)$, as
    ``jax.random.normal`` does."""
    low = np.nextafter(np.asarray(-1.0, u.dtype), np.asarray(0.0, u.dtype))
    v = jnp.maximum(low, u * (1.0 - low) + low)
    return np.sqrt(2.0).astype(u.dtype) * jax.scipy.special.erfinv(v)


def make_batch(x0, eps, lam, process: str, weighting: LossWeighting) -> Batch:
    """The :class:`Batch` of ``(x0, eps, lam)`` (any leading axes) weighed by ``weighting``."""
    a, s = alpha_sigma(lam, process)
    x_t = a[..., None] * x0 + s[..., None] * eps
    lead = lam.shape[:-1]

    def flat(v, tail):
        return v.reshape((-1, *v.shape[len(lead) + 1 :])) if tail else v.reshape(-1)

    w = weighting.weigh(flat(x_t, True), flat(a, False), flat(s, False), flat(lam, False))
    w = w.reshape(lam.shape + w.shape[1:])
    return Batch(x0, eps, x_t, lam, a, s, w)


def alpha_sigma(lam, process: str):
    """float32 $(\\alpha,\\sigma)$ of ``lam`` (:func:`dsmtheory.schedules.alpha_sigma`)."""
    a, s = _schedules.alpha_sigma(lam, process)
    return jnp.asarray(a, F32), jnp.asarray(s, F32)


class _Core(NamedTuple):
    """Model and optimizer of a configuration (all but the weighting and the data)."""

    width: int
    init: Callable
    update: Callable
    eps_hat: Callable
    per_example: Callable
    init_with: Callable  # init_with(lw) -> init(key), with lw's weighting state
    update_with: Callable  # update_with(lw) -> update(state, batch)


def model_core(config: TrainConfig) -> _Core:
    """The weighting-independent functions of ``config``: initialization, ε̂ (any width),
    the weighted per-example loss of a :class:`Batch` and the optimizer update."""
    dim = config.mixture.dim
    with jax.ensure_compile_time_eval():
        sd = sigma_data(config.mixture)
    width = width_for_capacity(config.capacity, dim)
    optimizer = OPTIMIZERS[config.optimizer](config.learning_rate)
    parameterization = config.parameterization

    def eps_hat(params, x_t, alpha, sigma, lam):
        r"""$\hat\varepsilon$ at ``x_t`` ``(..., D)``; ``alpha, sigma, lam`` ``(...)``."""
        model = _models.MLPScoreModel(params, dim, EMBEDDING_DIM, "eps", sd)
        out = model(x_t / alpha[..., None], lam)  # the raw output, read as `parameterization`
        return to_eps(out, parameterization, x_t, alpha, sigma, sigma_data=sd)

    def per_example(params, batch: Batch):
        e = eps_hat(params, batch.x_t, batch.alpha, batch.sigma, batch.lam) - batch.eps
        if batch.weight.ndim == e.ndim + 1:  # (B, D, D): the matrix weight
            return jnp.einsum("...i,...ij,...j->...", e, batch.weight, e)
        return batch.weight * jnp.sum(e**2, -1)

    def init(key):
        model = _models.init_mlp(
            key, dim, (width,) * DEPTH, embedding_dim=EMBEDDING_DIM, sigma_data=sd, dtype=F32
        )
        params = tuple(model.layers)
        return TrainState(params, optimizer.init(params), (), jnp.asarray(0, jnp.int32))

    def update(state: TrainState, batch: Batch):
        def mean_loss(params):
            per = per_example(params, batch)
            return jnp.mean(per), per

        (loss, per), grads = jax.value_and_grad(mean_loss, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = TrainState(params, opt_state, state.weighting_state, state.step + 1)
        return new, StepInfo(loss, per, optax.tree.norm(grads))

    def init_with(lw: LossWeighting):
        if lw.hooks is None:
            return init

        def init_stateful(key):
            state = init(key)
            ws = lw.hooks.init(jax.random.fold_in(key, 0x5EED))
            ws_opt = optimizer.init(lw.hooks.trainable(ws))
            return state._replace(weighting_state=(ws, ws_opt))

        return init_stateful

    def update_with(lw: LossWeighting):
        if lw.hooks is None:
            return update
        hooks = lw.hooks

        def update_stateful(state: TrainState, batch: Batch):
            ws, ws_opt = state.weighting_state

            def mean_loss(params, trainable):
                e = eps_hat(params, batch.x_t, batch.alpha, batch.sigma, batch.lam) - batch.eps
                sq = jnp.sum(e**2, -1)
                per = hooks.loss(trainable, ws, batch, sq)
                return jnp.mean(per), (per, sq)

            (loss, (per, sq)), (grads, g_w) = jax.value_and_grad(
                mean_loss, argnums=(0, 1), has_aux=True
            )(state.params, hooks.trainable(ws))
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            trainable = hooks.trainable(ws)
            w_updates, ws_opt = optimizer.update(g_w, ws_opt, trainable)
            ws = hooks.observe(ws, optax.apply_updates(trainable, w_updates), batch, sq)
            new = TrainState(params, opt_state, (ws, ws_opt), state.step + 1)
            return new, StepInfo(loss, per, optax.tree.norm(grads))

        return update_stateful

    return _Core(width, init, update, eps_hat, per_example, init_with, update_with)


def resolve_config_weighting(config: TrainConfig) -> LossWeighting:
    """The :class:`LossWeighting` of ``config``'s weighting (builds the c* table);
    ``matrix_optimal`` is the capped float64 form of :mod:`dsmtheory.train._matrix`.

    Raises:
        ValueError: the weighting cannot be built for this mixture; the message names it
            (e.g. ``weighting 'c_star' cannot run on this mixture (K = 10, D = 64): ...``).
    """
    gm = config.mixture
    try:
        if config.weighting == "matrix_optimal":
            return matrix_optimal_weighting(gm, **(config.weighting_params or {}))
        return resolve_weighting(
            config.weighting, config.weighting_params, config.build_schedule(), gm
        )
    except (ValueError, TypeError, ArithmeticError, NotImplementedError, ExpectationError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(
            f"weighting {config.weighting!r} cannot run on this mixture "
            f"(K = {gm.num_components}, D = {gm.dim}): {text}"
        ) from exc


# ---------------------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------------------
def make_problem(config: TrainConfig, *, weighting: LossWeighting | None = None) -> TrainProblem:
    r"""The training problem of ``config`` as pure functions (see :class:`TrainProblem`).

    Per step: $x_0\sim$ the mixture, $\lambda$ from the schedule, $x_t=\alpha x_0+
    \sigma\varepsilon$, the network's output read as $\hat\varepsilon$ in the configured
    parameterization (:func:`dsmtheory.parameterization.to_eps`), the loss
    $\omega_\varepsilon(\lambda)\|\hat\varepsilon-\varepsilon\|^2$ (or
    $(\hat\varepsilon-\varepsilon)^\top M(\hat\varepsilon-\varepsilon)$ for
    ``matrix_optimal``) averaged over the batch, one optimizer step.

    Args:
        config: the run's settings.
        weighting: a resolved weighting to use instead of ``config.weighting`` (to share one
            c* table between problems).

    Returns:
        :class:`TrainProblem`.

    Example:
        >>> problem = make_problem(TrainConfig(steps=10, batch_size=8))  # doctest: +SKIP
        >>> state = problem.init(jax.random.PRNGKey(0))  # doctest: +SKIP
        >>> step = jax.jit(problem.step)  # doctest: +SKIP
        >>> state, info = step(state, jax.random.PRNGKey(1))  # doctest: +SKIP
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    core = model_core(config)
    noise = noise_sampler(config)
    lw = weighting if weighting is not None else resolve_config_weighting(config)

    def sample(key) -> Batch:
        x0, eps, lam = noise.draw(key)
        return make_batch(x0, eps, lam, noise.process, lw)

    update = core.update_with(lw)

    def step(state, key):
        return update(state, sample(key))

    def loss(state, x0, eps, lam):
        batch = make_batch(x0, eps, lam, noise.process, lw)
        if lw.hooks is None:
            return core.per_example(state.params, batch)
        ws = state.weighting_state[0]
        e = core.eps_hat(state.params, batch.x_t, batch.alpha, batch.sigma, batch.lam) - eps
        return lw.hooks.loss(lw.hooks.trainable(ws), ws, batch, jnp.sum(e**2, -1))

    return TrainProblem(core.init_with(lw), step, loss, sample, update, core.eps_hat)


def weighting_multiplier(config: TrainConfig, state: TrainState, lam) -> jax.Array:
    r"""The ε-space multiplier $\omega_\varepsilon(\lambda)$ that ``config``'s weighting
    applies in ``state`` (a single, unstacked state): for ``edm2_learned``
    $\omega_{base}(\lambda)e^{-u(\sigma)}$ (the learned effective weight, which tends to
    $c^*$ at the Bayes denoiser), for ``online_c_star`` the current $\hat c^*(\lambda)$, for a
    fixed scalar weighting its $\omega_\varepsilon(\lambda)$.

    Args:
        config: the run's settings; state: its :class:`TrainState`.
        lam: log-SNRs, any shape.

    Returns:
        float32 array of ``lam``'s shape.

    Raises:
        ValueError: for ``matrix_optimal`` (its weight is a matrix that depends on
            :math:`x_t`).
    """
    lw = resolve_config_weighting(config)
    lam = jnp.asarray(lam, F32)
    if lw.kind != "scalar":
        raise ValueError(f"weighting {config.weighting!r} has no scalar multiplier")
    if lw.hooks is not None:
        return lw.hooks.multiplier(state.weighting_state[0], lam.ravel()).reshape(lam.shape)
    flat = lam.ravel()
    ones = jnp.ones_like(flat)
    x = jnp.zeros((flat.shape[0], config.mixture.dim), F32)
    return lw.weigh(x, ones, ones, flat).reshape(lam.shape)


def init_state(
    config: TrainConfig, key: jax.Array, *, width_padded: int | None = None
) -> TrainState:
    """Fresh parameters and optimizer state of ``config``'s MLP, as :func:`train` starts.

    Args:
        config: the run's settings.
        key: JAX PRNG key; the model is initialized with ``split(key)[0]``, as in
            :func:`train` (the same key gives the same parameters).
        width_padded: zero-pad the hidden layers to this width; padded units stay exactly
            zero in training (zero input and output weights give zero gradients). Default:
            the model's own width.

    Returns:
        A :class:`TrainState` with ``step = 0``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    core = model_core(config)
    wp = core.width if width_padded is None else int(width_padded)
    if wp < core.width:
        raise ValueError(f"width_padded must be >= the model width {core.width}, got {wp}")
    init = core.init
    if config.weighting in STATEFUL_WEIGHTINGS:  # (the c* table of c_star is not needed)
        init = core.init_with(resolve_config_weighting(config))
    state = init(jax.random.split(key)[0])
    if wp == core.width:
        return state
    padded = pad_state(state._replace(weighting_state=()), padded_shapes(config, wp))
    return padded._replace(weighting_state=state.weighting_state)


def padded_shapes(config: TrainConfig, width: int):
    """Shapes (``jax.ShapeDtypeStruct``) of every leaf of a :class:`TrainState` of hidden
    ``width`` for ``config``'s dimension and optimizer."""

    def zeros_at_width():
        params = tuple(
            (jnp.zeros((a, b), F32), jnp.zeros((b,), F32))
            for a, b in _layer_sizes(config.mixture.dim, width)
        )
        opt = OPTIMIZERS[config.optimizer](config.learning_rate)
        return TrainState(params, opt.init(params), (), jnp.asarray(0, jnp.int32))

    return jax.eval_shape(zeros_at_width)


def _layer_sizes(dim: int, width: int):
    sizes = [dim + EMBEDDING_DIM, *([width] * DEPTH), dim]
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def pad_state(state, shapes):
    """Zero-pad every leaf of ``state`` at the end of each axis to ``shapes`` (leading
    configuration axes, if any, are kept)."""

    def pad(leaf, target):
        leaf = jnp.asarray(leaf)
        extra = leaf.ndim - len(target.shape)
        widths = [(0, 0)] * extra + [
            (0, t - s) for s, t in zip(leaf.shape[extra:], target.shape, strict=True)
        ]
        return jnp.pad(leaf, widths) if any(w for _, w in widths) else leaf

    return jax.tree_util.tree_map(pad, state, shapes)


def train_step(
    config: TrainConfig, state: TrainState, key: jax.Array
) -> tuple[TrainState, jax.Array]:
    """One optimizer step on a fresh batch drawn with ``key``; pure and jittable in
    ``state`` and ``key``. It builds the problem on each call: for a loop, build it once
    with :func:`make_problem` and ``jax.jit(problem.step)``.

    Returns:
        ``(new_state, mean_batch_loss)``.
    """
    state, info = make_problem(config).step(state, key)
    return state, info.loss


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

    Raises:
        ValueError: shapes that do not match the mixture's dimension or each other.
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
    return jax.jit(make_problem(config).loss)(state, x0, eps, lam)


def to_model(config: TrainConfig, state: TrainState) -> _models.MLPScoreModel:
    """The trained network of a single (unstacked) state as a
    :class:`dsmtheory.models.MLPScoreModel` (any padding removed), for
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
    sd = sigma_data(config.mixture)
    return _models.MLPScoreModel(
        layers, config.mixture.dim, EMBEDDING_DIM, config.parameterization, sd
    )
