r"""Sweeps over seeds × weightings × capacities as one compiled program, and :func:`train`
(the same program with one configuration).

**Layout.** Configurations are grouped by (hidden width, weighting kind); each group is one
``vmap`` of :attr:`TrainProblem.update` over its configurations, at its own width, and all
groups run in one ``jit``: a ``lax.fori_loop`` over steps whose body updates every group.
A seed's batches do not depend on the weighting or the capacity, so each step draws one
batch per seed and weighs it once per weighting; the configurations of that seed gather it.
The draws are made for blocks of steps at a time (one vectorized random-number call per
block instead of several per step; step ``i`` still uses ``fold_in(data_key, i)``, so the
numbers are those of a per-step draw).

**Devices.** With several devices, each group's configuration axis is sharded over a
``jax.sharding.Mesh`` (padded to a multiple of the device count).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._config import EvalConfig, TrainConfig, check_count, num_params, width_for_capacity
from ._evaluate import EVAL_KEYS, ONE_SHOT, Evaluator
from ._problem import (
    Batch,
    TrainState,
    alpha_sigma,
    model_core,
    noise_sampler,
    pad_state,
    padded_shapes,
    resolve_config_weighting,
)

# random draws per block: at most this many float32 values are buffered per block
_BLOCK_VALUES = 1 << 22
_MAX_BLOCK_STEPS = 64


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
        fisher_relative, fisher_relative_se: ``(n, c, b)`` the relative Fisher divergence
            per bin, F / E‖s*‖² with E‖s*‖² = tr I_t averaged over the bin (estimated on
            the same points), and its stderr (of F, the scale held fixed). Comparable
            across σ and dimensions: 1 is the error of the model ŝ = 0.
        timings: wall-clock seconds (``compile_and_first_chunk_s``, ``train_s``, ``chunk_s``
            per chunk of steps, ``eval_s``, ``total_s``), the process's CPU seconds per chunk
            (``chunk_cpu_s``), the device count, the platform and the number of vmapped
            groups in the program (``groups``).
        final_state: the final :class:`TrainState` of every configuration, stacked, hidden
            layers zero-padded to the largest width (``configs[i]["width"]`` is the own
            width; :func:`to_model` removes the padding); its ``weighting_state`` is ``()``.
        weighting_states: per configuration, the final ``weighting_state`` of a stateful
            weighting (``edm2_learned``, ``online_c_star``), ``None`` for the others.
        multiplier: ``(n, c, b)`` the ε-space multiplier ω_ε each
            configuration applies at each checkpoint at the bin centres (learned or
            estimated for the stateful weightings, fixed for the others; NaN for
            ``matrix_optimal``).
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
    fisher_relative: np.ndarray
    fisher_relative_se: np.ndarray
    timings: dict
    final_state: TrainState
    weighting_states: list | None = None
    multiplier: np.ndarray | None = None


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
    init_key, data_key = jax.random.split(key)
    res = _run(
        config,
        [config.weighting],
        {config.weighting: config.weighting_params or {}},
        [_Job(0, config.capacity, init_key, 0)],
        [data_key],
        evaluation,
        progress,
    )
    st = jax.tree_util.tree_map(lambda a: a[0], res.final_state)
    if res.weighting_states[0] is not None:
        st = st._replace(weighting_state=res.weighting_states[0])
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
    """Train every (seed, weighting, capacity) configuration in one compiled program
    (configurations grouped by capacity, each group vmapped; sharded over devices when there
    are several) and evaluate them.

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
        check_count(c, "capacity")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"seeds must be integers, got {s!r}")
    keys = [jax.random.split(jax.random.PRNGKey(int(s))) for s in seeds]
    jobs = [
        _Job(wi, int(c), keys[si][0], si)
        for si in range(len(seeds))
        for wi in range(len(weightings))
        for c in capacities
    ]
    res = _run(
        base, weightings, wp, jobs, [k[1] for k in keys], evaluation or EvalConfig(), progress
    )
    seeds_of = [int(s) for s in seeds for _ in weightings for _ in capacities]
    for cfg, s in zip(res.configs, seeds_of, strict=True):
        cfg["seed"] = s
    return res


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------
class _Job(NamedTuple):
    weighting: int  # index into the sweep's weightings
    capacity: int
    init_key: jax.Array
    stream: int  # index of the data stream (one per seed)


class _Group(NamedTuple):
    """Configurations of one width and weighting kind: one vmap in the program."""

    width: int
    kind: str
    jobs: np.ndarray  # job indices (the group's configuration order)
    streams: np.ndarray  # data stream of each configuration (padded to the device count)
    slots: np.ndarray  # row of each configuration's weighting among the kind's weightings
    stateful: int = -1  # the weighting of a stateful group (its own update), else -1


def _groups(jobs, widths, kinds, ndev, stateful=None) -> list[_Group]:
    stateful = stateful or [False] * len(kinds)
    order: dict = {}
    for j, job in enumerate(jobs):
        own = job.weighting if stateful[job.weighting] else -1  # one group per stateful one
        order.setdefault((widths[j], kinds[job.weighting], own), []).append(j)
    slot_of = {}
    for kind in set(kinds):
        same = [i for i, k in enumerate(kinds) if k == kind]
        slot_of.update({i: same.index(i) for i in same})
    out = []
    for (width, kind, own), members in order.items():
        pad = -len(members) % ndev
        padded = members + [members[-1]] * pad
        out.append(
            _Group(
                width,
                kind,
                np.asarray(members),
                np.asarray([jobs[j].stream for j in padded]),
                np.asarray([slot_of[jobs[j].weighting] for j in padded]),
                own,
            )
        )
    return out


def _stack(trees):
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def _run(base, weightings, weighting_params, jobs, stream_keys, evaluation, progress):
    t_start = time.perf_counter()
    dim = base.mixture.dim
    lws = [  # each weighting resolved once (one c* table), shared by every capacity
        resolve_config_weighting(base.replace(weighting=w, weighting_params=wp))
        for w, wp in ((w, weighting_params.get(w)) for w in weightings)
    ]
    kinds = [lw.kind for lw in lws]
    widths = [width_for_capacity(job.capacity, dim) for job in jobs]
    wpad = max(widths)
    cap_of_width = {w: job.capacity for w, job in zip(widths, jobs, strict=True)}
    cores = {w: model_core(base.replace(capacity=c)) for w, c in cap_of_width.items()}
    noise = noise_sampler(base)
    ndev = jax.device_count()
    groups = _groups(jobs, widths, kinds, ndev, [lw.hooks is not None for lw in lws])
    n = len(jobs)

    # initial states, one stack per group (configuration axis padded to the device count)
    init = [
        cores[widths[j]].init_with(lws[job.weighting])(job.init_key) for j, job in enumerate(jobs)
    ]
    states = []
    for g in groups:
        members = list(g.jobs) + [g.jobs[-1]] * (len(g.streams) - len(g.jobs))
        states.append(_stack([init[j] for j in members]))
    states = tuple(states)
    stream_keys = jnp.stack(stream_keys)
    shard = None
    if ndev > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(jax.devices()), ("config",))
        shard = NamedSharding(mesh, PartitionSpec("config"))
        states = jax.device_put(states, shard)

    steps = base.steps
    n_ck = min(evaluation.num_checkpoints if evaluation else 1, steps)
    bounds = np.linspace(0, steps, n_ck + 1).round().astype(int)
    chunk_lens = np.diff(bounds)
    chunk = _chunk_program(groups, cores, noise, lws, stream_keys.shape[0], int(chunk_lens.max()))

    # all configurations stacked in job order, zero-padded to the largest width
    shapes = padded_shapes(base.replace(capacity=cap_of_width[wpad]), wpad)
    n_eval = -(-n // ndev) * ndev  # evaluation pads the configuration axis too

    def stack_padded(states, only_params: bool):
        states = [s._replace(weighting_state=()) for s in states]
        if only_params:  # the evaluation's input: parameters, n_eval configurations
            out = _in_job_order([pad_state(s.params, shapes.params) for s in states], groups)
            return jax.tree_util.tree_map(
                lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], n_eval - n, 0)]), out
            )
        return _in_job_order([pad_state(s, shapes) for s in states], groups)

    stacked = jax.jit(stack_padded, static_argnums=1, compiler_options=ONE_SHOT)
    if len(groups) == 1 and groups[0].width == wpad:  # nothing to pad or reorder

        def stacked(states, only_params):
            if only_params:
                return states[0].params
            return jax.tree_util.tree_map(lambda a: a[:n], states[0]._replace(weighting_state=()))

    ev = multipliers = None
    mult = []
    if evaluation is not None:
        core = cores[wpad]
        ev = Evaluator(base, evaluation, core.eps_hat, core.per_example, lws)
        index = [job.weighting for job in jobs]
        index += [index[-1]] * (n_eval - n)
        edges = np.asarray(ev.lam_edges)
        multipliers = _multiplier_program(groups, lws, 0.5 * (edges[1:] + edges[:-1]), dim)
    losses, evals, chunk_s, chunk_cpu_s = [], [], [], []
    t_eval = 0.0
    from tqdm.auto import tqdm

    def evaluate(states):
        nonlocal t_eval
        t0 = time.perf_counter()
        params = stacked(states, True)
        if shard is not None:
            params = jax.device_put(params, shard)
        out = ev.evaluate(params, index, shard)
        evals.append({k: v[:n] for k, v in out.items()})
        mult.append(_in_job_order([np.asarray(m) for m in multipliers(states)], groups))
        t_eval += time.perf_counter() - t0

    if ev is not None:
        evaluate(states)  # checkpoint 0: the initialization
    with tqdm(total=steps, disable=not progress, desc="training", unit="step") as bar:
        for ci, length in enumerate(chunk_lens):
            t0, c0 = time.perf_counter(), time.process_time()
            states, loss = chunk(
                states,
                stream_keys,
                jnp.asarray(bounds[ci], jnp.int32),
                jnp.asarray(length, jnp.int32),
            )
            losses.append(_in_job_order([np.asarray(v)[:, :length] for v in loss], groups))
            chunk_s.append(time.perf_counter() - t0)
            chunk_cpu_s.append(time.process_time() - c0)
            if ev is not None:
                evaluate(states)
            bar.update(int(length))

    loss = np.concatenate(losses, axis=1)
    final = stacked(states, False)
    weighting_states = [None] * n
    for g, st in zip(groups, states, strict=True):
        if g.stateful >= 0:
            for row, j in enumerate(g.jobs):
                weighting_states[j] = jax.tree_util.tree_map(
                    lambda a, r=row: a[r], st.weighting_state
                )
    configs = [
        {
            "weighting": weightings[job.weighting],
            "capacity": job.capacity,
            "width": w,
            "num_params": num_params(w, dim),
        }
        for job, w in zip(jobs, widths, strict=True)
    ]
    if ev is not None:
        out = {k: np.stack([e[k] for e in evals], axis=1) for k in evals[0]}
        multiplier = np.stack(mult, axis=1)
        lam_edges, sig_c, ck = ev.lam_edges, ev.sigma_centers, bounds
    else:
        out = {k: np.full((n, 0), np.nan) for k in EVAL_KEYS}
        for k in ("grad_std", "fisher", "fisher_se", "fisher_relative", "fisher_relative_se"):
            out[k] = np.full((n, 0, 0), np.nan)
        lam_edges, sig_c, ck = np.zeros(0), np.zeros(0), np.zeros(0, int)
        multiplier = np.full((n, 0, 0), np.nan)
    timings = {
        "compile_and_first_chunk_s": chunk_s[0],
        "train_s": sum(chunk_s),
        "chunk_s": chunk_s,
        "chunk_cpu_s": chunk_cpu_s,
        "eval_s": t_eval,
        "total_s": time.perf_counter() - t_start,
        "devices": ndev,
        "platform": jax.devices()[0].platform,
        "groups": len(groups),
    }
    return SweepResult(
        configs=configs,
        loss=loss,
        checkpoint_steps=ck,
        lam_edges=lam_edges,
        sigma_centers=sig_c,
        timings=timings,
        final_state=final,
        weighting_states=weighting_states,
        multiplier=multiplier,
        **out,
    )


def _in_job_order(per_group, groups):
    """Concatenate per-group stacks (device padding dropped) into job order (NumPy arrays
    stay NumPy arrays)."""
    order = np.argsort(np.concatenate([g.jobs for g in groups]), kind="stable")

    def gather(*leaves):
        real = [leaf[: len(g.jobs)] for leaf, g in zip(leaves, groups, strict=True)]
        if isinstance(real[0], np.ndarray):
            return np.concatenate(real)[order]
        return jnp.concatenate(real)[order]

    return jax.tree_util.tree_map(gather, *per_group)


def _block_steps(num_streams: int, batch: int, per_example: int, max_len: int) -> int:
    """Steps drawn per random-number block: bounded memory, and blocks that split the
    longest chunk evenly."""
    cap = max(1, min(_MAX_BLOCK_STEPS, _BLOCK_VALUES // (num_streams * batch * per_example)))
    blocks = -(-max_len // cap)
    return -(-max_len // blocks)


def _chunk_program(groups, cores, noise, lws, num_streams, max_len):
    """``jit`` of ``chunk(states, stream_keys, start, length) -> (states, losses)``: steps
    ``start .. start + length - 1`` of every group; ``losses`` is one ``(configs, max_len)``
    array per group (the first ``length`` columns are filled)."""
    scalar = [i for i, lw in enumerate(lws) if lw.kind == "scalar"]
    matrix = [i for i, lw in enumerate(lws) if lw.kind == "matrix"]
    kinds_used = {g.kind for g in groups}
    draw = jax.vmap(noise.draw)  # one flat vmap over (stream, step) keys
    probe = jax.eval_shape(noise.draw, jax.random.PRNGKey(0))
    batch, dim = probe[0].shape
    per_example = 3 * dim + 3 + len(scalar) + dim * dim * len(matrix)
    block = _block_steps(num_streams, batch, per_example, max_len)
    updates = [
        cores[g.width].update_with(lws[g.stateful]) if g.stateful >= 0 else cores[g.width].update
        for g in groups
    ]

    def weigh(x_t, a, s, lam, i):  # weights of (streams, block, B) examples
        flat = [v.reshape((-1, *v.shape[3:])) for v in (x_t, a, s, lam)]
        tail = () if lws[i].kind == "scalar" else (dim, dim)
        return lws[i].weigh(*flat).reshape(lam.shape + tail)

    def chunk(states, stream_keys, start, length):
        losses = tuple(jnp.zeros((len(g.streams), max_len), jnp.float32) for g in groups)

        def one_block(bi, carry):
            first = bi * block
            steps = start + first + jnp.arange(block, dtype=jnp.int32)
            keys = jax.vmap(jax.random.fold_in)(
                jnp.repeat(stream_keys, block, axis=0), jnp.tile(steps, num_streams)
            )  # key of step `steps[j]` of stream s at s * block + j
            x0, eps, lam = (
                v.reshape(num_streams, block, *v.shape[1:]) for v in draw(keys)
            )  # (streams, block, B, ...)
            a, s = alpha_sigma(lam, noise.process)
            x_t = a[..., None] * x0 + s[..., None] * eps
            w_scalar = (
                jnp.stack([weigh(x_t, a, s, lam, i) for i in scalar])
                if "scalar" in kinds_used
                else None
            )
            w_matrix = (
                jnp.stack([weigh(x_t, a, s, lam, i) for i in matrix])
                if "matrix" in kinds_used
                else None
            )

            def one_step(j, carry):
                states, losses = carry
                at = [jax.lax.dynamic_index_in_dim(v, j, 1, keepdims=False)
                      for v in (x0, eps, x_t, lam, a, s)]  # fmt: skip
                new_states, new_losses = [], []
                for gi, (g, st, lo) in enumerate(zip(groups, states, losses, strict=True)):
                    fields = [v[g.streams] for v in at]
                    w = w_scalar if g.kind == "scalar" else w_matrix  # (W, streams, block, ...)
                    weight = jax.lax.dynamic_index_in_dim(w, j, 2, keepdims=False)
                    weight = weight[g.slots, g.streams]
                    st, info = jax.vmap(updates[gi])(st, Batch(*fields, weight))
                    new_states.append(st)
                    new_losses.append(
                        jax.lax.dynamic_update_index_in_dim(lo, info.loss, first + j, 1)
                    )
                return tuple(new_states), tuple(new_losses)

            todo = jnp.minimum(block, length - first)
            return jax.lax.fori_loop(0, todo, one_step, carry)

        num_blocks = (length + block - 1) // block
        return jax.lax.fori_loop(0, num_blocks, one_block, (states, losses))

    return jax.jit(chunk)


def _multiplier_program(groups, lws, lam_centres, dim):
    """``jit`` of ``multipliers(states) -> per-group (configs, b)`` arrays: the ε-space
    multiplier each configuration applies at ``lam_centres`` (NaN for a matrix weight)."""
    lam = jnp.asarray(lam_centres, jnp.float32)
    ones = jnp.ones_like(lam)
    x = jnp.zeros((lam.shape[0], dim), jnp.float32)
    scalar = [lw.weigh(x, ones, ones, lam) for lw in lws if lw.kind == "scalar"]

    def multipliers(states):
        out = []
        for g, st in zip(groups, states, strict=True):
            if g.stateful >= 0:
                hooks = lws[g.stateful].hooks
                out.append(
                    jax.vmap(hooks.multiplier, in_axes=(0, None))(st.weighting_state[0], lam)
                )
            elif g.kind == "scalar":
                out.append(jnp.stack(scalar)[g.slots])
            else:
                out.append(jnp.full((len(g.streams), lam.shape[0]), jnp.nan, jnp.float32))
        return tuple(out)

    return jax.jit(multipliers)
