"""Benchmark: the compiled sweep program vs Python loops over the same configurations.

32 configurations (4 seeds × 2 weightings × 4 capacities, 25/100/500/1000 parameters, ring
mixture, VE, Adam, batch 128) each take the same number of timed steps in every program:

* **sweep**: ``dsmtheory.train.sweep``'s program: one ``jit`` whose loop over steps updates
  one ``vmap`` group per capacity (each at its own width), one batch drawn per seed and
  shared by that seed's configurations; its steady-state chunks are timed
  (``timings["chunk_s"]``, the first chunk, which compiles, excluded);
* **padded vmap**: the layout the sweep had before (every MLP zero-padded to the largest
  width, one ``vmap`` over all capacities, each configuration drawing its own batch): one
  ``jit(vmap(scan(problem.step)))`` per weighting, over 16 configurations;
* **loop of scanned runs**: ``jit(scan(problem.step))`` per configuration at its own width,
  called from a Python loop over the 32 configurations;
* **loop of step calls**: the usual Python training loop, one call of
  ``jax.jit(problem.step)`` per step and configuration.

All of them run the same mathematics on the same random numbers (step ``i`` of a seed uses
``fold_in(data_key, i)``); the largest difference between their per-step losses is printed.
Compilation is excluded from every timing (one warm-up call per distinct program).
Throughput is configuration-steps per second of wall time; CPU seconds are shown next to it,
since the machine is shared. Each round times every program once, and ``--rounds`` rounds
are interleaved; the table gives the median round and the spread of the speed-ups.

Writes ``benchmarks/results/sweep.md`` (a Markdown fragment) and prints it.

Run: ``JAX_PLATFORMS=cpu python benchmarks/bench_sweep.py [--steps N] [--chunk L] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import dsmtheory as dsm
from dsmtheory import train as T
from dsmtheory._io import atomic_write_text

WEIGHTINGS = ["simple", "edm"]
CAPACITIES = [25, 100, 500, 1000]
SEEDS = [0, 1, 2, 3]
TINY_EVAL = T.EvalConfig(  # checkpoints split the sweep into chunks; evaluation is cheap
    num_bins=1, fisher_points=2, grad_points=2, ed_samples=2, ode_steps=1
)


def _keys(seed):
    return jax.random.split(jax.random.PRNGKey(seed))


def _timed(fn):
    """(wall s, CPU s, result) of ``fn()``, blocking on the result."""
    t, c = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - t, time.process_time() - c, out


def _scan_program(problem, length):
    def run(state, data_key, start):
        def body(st, i):
            st, info = problem.step(st, jax.random.fold_in(data_key, start + i))
            return st, info.loss

        return jax.lax.scan(body, state, jnp.arange(length, dtype=jnp.int32))

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600, help="timed steps per configuration")
    ap.add_argument("--chunk", type=int, default=200, help="steps per compiled chunk")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    args = ap.parse_args()
    n_chunks = max(1, args.steps // args.chunk)
    steps = n_chunks * args.chunk
    base = T.TrainConfig(steps=steps, batch_size=args.batch_size)
    jobs = [(s, w, c) for s in SEEDS for w in WEIGHTINGS for c in CAPACITIES]
    n = len(jobs)
    widths = [T.width_for_capacity(c, base.mixture.dim) for _, _, c in jobs]
    wpad = max(widths)
    problems = {
        (w, c): T.make_problem(base.replace(weighting=w, capacity=c))
        for w in WEIGHTINGS
        for c in CAPACITIES
    }
    load0 = os.getloadavg()[0]

    # --- the sweep: first chunk compiles, the others are timed --------------------------
    def run_sweep():
        cfg = base.replace(steps=steps + args.chunk)
        ev = dataclasses.replace(TINY_EVAL, num_checkpoints=n_chunks + 1)
        res = T.sweep(
            cfg, weightings=WEIGHTINGS, capacities=CAPACITIES, seeds=SEEDS, evaluation=ev,
            progress=False,
        )  # fmt: skip
        chunk_s, chunk_cpu = res.timings["chunk_s"], res.timings["chunk_cpu_s"]
        assert len(chunk_s) == n_chunks + 1
        return sum(chunk_s[1:]), sum(chunk_cpu[1:]), res

    # --- padded vmap: one program per weighting, every capacity padded to the widest -------
    def padded_stack(w):
        states = [
            T.init_state(base.replace(weighting=w, capacity=c), jax.random.PRNGKey(s),
                         width_padded=wpad)
            for s, ww, c in jobs if ww == w
        ]  # fmt: skip
        dkeys = jnp.stack([_keys(s)[1] for s, ww, _ in jobs if ww == w])
        return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states), dkeys

    padded = {}
    for w in WEIGHTINGS:
        fn = jax.jit(jax.vmap(_scan_program(problems[(w, CAPACITIES[-1])], args.chunk),
                              in_axes=(0, 0, None)))  # fmt: skip
        st, dk = padded_stack(w)
        t0 = time.perf_counter()
        jax.block_until_ready(fn(st, dk, jnp.asarray(0, jnp.int32)))
        padded[w] = (fn, st, dk, time.perf_counter() - t0)

    def run_padded():
        out = {}
        for w, (fn, st, dk, _) in padded.items():
            for k in range(n_chunks):
                st, loss = fn(st, dk, jnp.asarray(k * args.chunk, jnp.int32))
            out[w] = loss
        return out

    # --- loop of scanned runs: one jit(scan) per configuration at its own width ------------
    scanned = {key: jax.jit(_scan_program(p, args.chunk)) for key, p in problems.items()}
    t0 = time.perf_counter()
    for (w, c), fn in scanned.items():
        st = problems[(w, c)].init(_keys(0)[0])
        jax.block_until_ready(fn(st, _keys(0)[1], jnp.asarray(0, jnp.int32)))
    compile_scan = time.perf_counter() - t0

    def run_scanned():
        last = []
        for s, w, c in jobs:
            st = problems[(w, c)].init(_keys(s)[0])
            for k in range(n_chunks):
                st, loss = scanned[(w, c)](st, _keys(s)[1], jnp.asarray(k * args.chunk, jnp.int32))
            last.append(loss)
        return last

    # --- the usual loop: one jitted step call per step and configuration -------------------
    stepped = {key: jax.jit(p.step) for key, p in problems.items()}
    t0 = time.perf_counter()
    for (w, c), fn in stepped.items():
        jax.block_until_ready(fn(problems[(w, c)].init(_keys(0)[0]), _keys(0)[1]))
    compile_step = time.perf_counter() - t0

    def run_stepped():
        last = []
        for s, w, c in jobs:
            f, kd = stepped[(w, c)], _keys(s)[1]
            st = problems[(w, c)].init(_keys(s)[0])
            for i in range(steps):
                st, info = f(st, jax.random.fold_in(kd, i))
            last.append(info.loss)
        return last

    rounds = []
    for _ in range(args.rounds):
        t_sw, c_sw, res = run_sweep()  # the timed chunks: all but the first
        t_pd, c_pd, loss_pd = _timed(run_padded)
        t_sc, c_sc, loss_sc = _timed(run_scanned)
        t_st, c_st, loss_st = _timed(run_stepped)
        rounds.append(dict(sweep=t_sw, padded=t_pd, scanned=t_sc, stepped=t_st, c_sw=c_sw,
                           c_pd=c_pd, c_sc=c_sc, c_st=c_st, load=os.getloadavg()[0],
                           compile_sweep=res.timings["chunk_s"][0] - t_sw / n_chunks))  # fmt: skip
    # the same numbers everywhere: last timed step of each configuration
    sweep_last = res.loss[:, steps - 1]
    pd_last = np.concatenate(
        [np.asarray(loss_pd[w])[:, -1] for w in WEIGHTINGS]
    )  # padded stacks are weighting-major: reorder to the job order
    pd_order = [i for w in WEIGHTINGS for i, (_, ww, _) in enumerate(jobs) if ww == w]
    pd_by_job = np.empty(n)
    pd_by_job[pd_order] = pd_last
    diffs = {
        "padded vmap": np.max(np.abs(pd_by_job - sweep_last)),
        "scanned": np.max(np.abs(np.asarray([np.asarray(v)[-1] for v in loss_sc]) - sweep_last)),
        "step calls": np.max(np.abs(np.asarray([float(v) for v in loss_st]) - sweep_last)),
    }
    rel = max(diffs.values()) / float(np.max(np.abs(sweep_last)))

    def thr(t):
        return n * steps / t

    med = sorted(rounds, key=lambda r: r["stepped"] / r["sweep"])[len(rounds) // 2]
    sp_step = [r["stepped"] / r["sweep"] for r in rounds]
    sp_scan = [r["scanned"] / r["sweep"] for r in rounds]
    sp_pad = [r["padded"] / r["sweep"] for r in rounds]
    compile_sw = statistics.median(r["compile_sweep"] for r in rounds)
    compile_pd = sum(v[3] for v in padded.values())
    head = "| program | configs | steps each | wall (s) | config-steps/s | CPU (s) | compile (s) |"
    rows = [
        f"| sweep: one program, a vmap per capacity | {n} | {steps} | {med['sweep']:.2f} | "
        f"{thr(med['sweep']):,.0f} | {med['c_sw']:.2f} | {compile_sw:.1f} |",
        f"| padded vmap (the former layout) | {n} | {steps} | {med['padded']:.2f} | "
        f"{thr(med['padded']):,.0f} | {med['c_pd']:.2f} | {compile_pd:.1f} |",
        f"| loop of scanned runs | {n} | {steps} | {med['scanned']:.2f} | "
        f"{thr(med['scanned']):,.0f} | {med['c_sc']:.2f} | {compile_scan:.1f} |",
        f"| loop of step calls | {n} | {steps} | {med['stepped']:.2f} | "
        f"{thr(med['stepped']):,.0f} | {med['c_st']:.2f} | {compile_step:.1f} |",
    ]

    def spread(v):
        return f"{min(v):.1f}–{max(v):.1f}×" if len(v) > 1 else f"{v[0]:.1f}×"

    loads = [round(r["load"], 1) for r in rounds]
    md = f"""{head}
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Speed-up of the sweep (median of {len(rounds)} interleaved rounds, spread over the rounds):
**{med["stepped"] / med["sweep"]:.1f}×** over the usual Python training loop (one jitted
`problem.step` call per step and configuration; spread {spread(sp_step)}; target ≥ 10×),
{med["scanned"] / med["sweep"]:.1f}× over a Python loop of per-configuration `jit(scan)`
programs at their own widths (spread {spread(sp_scan)}), and
{med["padded"] / med["sweep"]:.1f}× over the former padded layout (spread {spread(sp_pad)}).
In CPU seconds of the same round, the sweep needs {med["c_st"] / med["c_sw"]:.1f}× less than the
step loop, {med["c_sc"] / med["c_sw"]:.1f}× less than the scanned runs and
{med["c_pd"] / med["c_sw"]:.1f}× less than the padded layout.
Weightings {", ".join(WEIGHTINGS)}; capacities {", ".join(map(str, CAPACITIES))} parameters
(widths {sorted(set(widths))}); {len(SEEDS)} seeds; batch {args.batch_size}; chunks of
{args.chunk} steps; compilation excluded from the wall times (the sweep's is its first chunk
minus a steady chunk). Largest difference between the last losses of the programs and the
sweep's: {max(diffs.values()):.2e} ({rel:.1e} relative; float32 rounding). CPU: the
process's CPU seconds in the same interval (less than the wall time when other jobs took
the cores). Measured on
{platform.machine()} with {os.cpu_count()} CPU cores, JAX {jax.__version__}
({jax.devices()[0].platform}); 1-minute load average {load0:.1f} before and {loads} after
each round (the machine was shared with other jobs).
"""
    path = Path(__file__).parent / "results" / "sweep.md"
    atomic_write_text(path, md)
    print(md)


if __name__ == "__main__":
    dsm.enable_x64()
    main()
