"""Benchmark: one vmapped sweep program vs a Python loop over the same configurations.

32 configurations (4 seeds × 2 weightings × 4 capacities, 25/100/500/1000 parameters, ring
mixture, VE, Adam, batch 128) each take the same number of steps both ways:

* **vmapped**: ``dsmtheory.train``'s sweep program, all 32 configurations stacked (MLPs
  padded to the largest width and masked), ``jit(vmap(scan))`` over chunks of steps;
* **loop**: the same scan of the same step function, jitted per configuration at its own
  (unpadded) width, called from a Python loop over the 32 configurations.

Compilation is excluded from both (one warm-up call per distinct program), and throughput
is configuration-steps per second. Writes ``benchmarks/results/sweep.md`` (a Markdown
fragment) and prints it.

Run: ``JAX_PLATFORMS=cpu python benchmarks/bench_sweep.py [--steps N] [--chunk L]``.
"""

from __future__ import annotations

import argparse
import os
import platform
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


def _single_chunk(prob, length):
    def run(state, dkey, start):
        def body(st, i):
            return prob.step(st, jax.random.fold_in(dkey, start + i))

        return jax.lax.scan(body, state, jnp.arange(length))

    return jax.jit(run)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600, help="timed steps per configuration")
    ap.add_argument("--chunk", type=int, default=200, help="steps per compiled chunk")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    n_chunks = max(1, args.steps // args.chunk)
    steps = n_chunks * args.chunk
    base = T.TrainConfig(steps=steps, batch_size=args.batch_size)
    prob = T._get_problem(base, WEIGHTINGS, {})
    jobs = [(s, wi, c) for s in SEEDS for wi in range(len(WEIGHTINGS)) for c in CAPACITIES]
    widths = [T.width_for_capacity(c, prob.dim) for _, _, c in jobs]
    wpad = max(widths)

    def keys(seed):
        return jax.random.split(jax.random.PRNGKey(seed))

    # --- vmapped -----------------------------------------------------------------------
    states = [
        prob.init(keys(s)[0], w, wpad, wi) for (s, wi, _), w in zip(jobs, widths, strict=True)
    ]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)
    dkeys = jnp.stack([keys(s)[1] for s, _, _ in jobs])
    fn = prob.chunk_fn(args.chunk)
    t0 = time.perf_counter()
    warm, _ = fn(stacked, dkeys, jnp.asarray(0, jnp.int32))
    jax.block_until_ready(warm)
    compile_v = time.perf_counter() - t0
    t0 = time.perf_counter()
    st = stacked
    for k in range(n_chunks):
        st, loss = fn(st, dkeys, jnp.asarray(k * args.chunk, jnp.int32))
    jax.block_until_ready((st, loss))
    t_v = time.perf_counter() - t0

    # --- Python loop over the same configurations --------------------------------------------
    single = _single_chunk(prob, args.chunk)
    t0 = time.perf_counter()
    for c in CAPACITIES:  # one warm-up (compilation) per distinct width
        w = T.width_for_capacity(c, prob.dim)
        s0 = prob.init(keys(0)[0], w, w, 0)
        jax.block_until_ready(single(s0, keys(0)[1], jnp.asarray(0, jnp.int32)))
    compile_l = time.perf_counter() - t0
    t0 = time.perf_counter()
    max_diff = 0.0
    for i, ((s, wi, _), w) in enumerate(zip(jobs, widths, strict=True)):
        sti = prob.init(keys(s)[0], w, w, wi)
        for k in range(n_chunks):
            sti, li = single(sti, keys(s)[1], jnp.asarray(k * args.chunk, jnp.int32))
        jax.block_until_ready(sti)
        max_diff = max(max_diff, float(np.max(np.abs(np.asarray(li) - np.asarray(loss[i])))))
    t_l = time.perf_counter() - t0

    # --- naive Python training loop: one jitted train_step call per step ---------------------
    steps_fns = {}
    t0 = time.perf_counter()
    for wi in range(len(WEIGHTINGS)):
        for c in CAPACITIES:
            w = T.width_for_capacity(c, prob.dim)
            f = jax.jit(prob.step)
            jax.block_until_ready(f(prob.init(keys(0)[0], w, w, wi), keys(0)[1]))
            steps_fns[(wi, w)] = f
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for (s, wi, _), w in zip(jobs, widths, strict=True):
        f = steps_fns[(wi, w)]
        sti = prob.init(keys(s)[0], w, w, wi)
        kd = keys(s)[1]
        for i in range(steps):
            sti, _ = f(sti, jax.random.fold_in(kd, i))
        jax.block_until_ready(sti)
    t_s = time.perf_counter() - t0

    n = len(jobs)
    thr_v = n * steps / t_v
    thr_l = n * steps / t_l
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = "| program | configs | steps each | wall (s) | config-steps/s | compile (s) |"
    row_v = f"| one vmapped program | {n} | {steps} | {t_v:.2f} | {thr_v:,.0f} | {compile_v:.1f} |"
    row_l = f"| loop of scanned runs | {n} | {steps} | {t_l:.2f} | {thr_l:,.0f} | {compile_l:.1f} |"
    thr_s = n * steps / t_s
    row_s = f"| loop of step calls | {n} | {steps} | {t_s:.2f} | {thr_s:,.0f} | {compile_s:.1f} |"
    md = f"""{head}
|---|---|---|---|---|---|
{row_v}
{row_l}
{row_s}

Speed-up of the vmapped sweep: **{thr_v / thr_l:.1f}×** over a Python loop of per-configuration
programs that are themselves `jit(scan)` over the steps (the same program without `vmap`,
each configuration at its own width), and **{thr_v / thr_s:.1f}×** over the usual Python
training loop (one jitted `train_step` call per step and configuration). Target ≥ 8×. Weightings
{", ".join(WEIGHTINGS)}; capacities {", ".join(map(str, CAPACITIES))} parameters (widths
{sorted(set(widths))}); {len(SEEDS)} seeds; batch {args.batch_size}; chunks of {args.chunk}
steps; compilation excluded from the wall times. Largest difference between the last
chunk's losses of the two programs: {max_diff:.2e} (float32 rounding). Measured on
{platform.machine()} with {os.cpu_count()} CPU cores, JAX {jax.__version__}
({jax.devices()[0].platform}), 1-minute load average {load:.1f} at the end (the machine
was shared with other jobs).
"""
    path = Path(__file__).parent / "results" / "sweep.md"
    atomic_write_text(path, md)
    print(md)


if __name__ == "__main__":
    dsm.enable_x64()
    main()
