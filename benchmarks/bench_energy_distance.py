"""Benchmark: dsmtheory.metrics.energy_distance vs dcor.energy_distance, and peak memory.

1. N = 10_000 samples per set, D = 2, float64: our blocked energy distance (compiled, timed
   after one warm-up call on the same shapes) against ``dcor.energy_distance`` on the same
   arrays, in one run; values must agree to 1e-10.
2. N = 100_000 per set, D = 2: ours alone, in a child process; peak memory is the child's
   maximum resident set size, ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (KiB on
   Linux), read after it exits; the child also reports its own peak after imports and the
   warm-up, so the increase due to the computation is visible.

Writes ``benchmarks/results/energy_distance.md`` (a Markdown fragment) and prints it.
Run: ``JAX_PLATFORMS=cpu python benchmarks/bench_energy_distance.py [--large-n 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "energy_distance.md"
MEMORY_LIMIT_GIB = 2.0


def _data(n: int, dim: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)), rng.normal(size=(n, dim)) + 0.1


def child(n: int, dim: int) -> None:
    """Compute one large energy distance and print a JSON line with time and value."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from dsmtheory.metrics import energy_distance

    x, y = _data(n, dim, 1)
    float(energy_distance(x[:100], y[:100]))  # imports and JIT machinery warm (other shapes)
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    value = float(energy_distance(x, y))
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"value": value, "seconds": seconds, "base_kib": base_kib, "peak_kib": peak_kib})
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per set vs dcor")
    parser.add_argument("--large-n", type=int, default=100_000, help="samples per set, memory run")
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.dim)
        return 0

    # The memory run goes first, while this process is still small: on Linux a child's
    # ru_maxrss starts from the RSS of the process it was forked from (kept across exec), so
    # forking after dcor's dense distance matrices would report the parent's memory.
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    parent_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(args.large_n), "--dim", str(args.dim)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    big = json.loads(proc.stdout.strip().splitlines()[-1])
    child_peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_gib = child_peak_kib / 2**20

    import dcor
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, str(ROOT))
    from dsmtheory.metrics import energy_distance

    x, y = _data(args.n, args.dim, 0)
    t0 = time.perf_counter()
    ours = float(energy_distance(x, y))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = float(energy_distance(x, y))
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = float(dcor.energy_distance(x, y))
    t_dcor = time.perf_counter() - t0
    diff = abs(ours - ref)

    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    try:
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    lines = [
        f"- Machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}; JAX backend `{jax.default_backend()}`; load average at the "
        f"end of the run {load} (a shared machine: absolute times are inflated, the ratio "
        "compares both methods in the same run).",
        f"- Versions: Python {platform.python_version()}, jax {jax.__version__}, "
        f"numpy {np.__version__}, dcor {dcor.__version__}.",
        f"- Data: two independent N(0, I) samples (second shifted by 0.1), D = {args.dim}, "
        "float64, V-statistic.",
        "",
        "| N per set | method | time (s) | value |",
        "|---|---|---|---|",
        f"| {args.n:,} | `dsmtheory.metrics.energy_distance` (first call, incl. compile) "
        f"| {first:.2f} | {ours:.15g} |",
        f"| {args.n:,} | `dsmtheory.metrics.energy_distance` (compiled) | {warm:.2f} | "
        f"{ours:.15g} |",
        f"| {args.n:,} | `dcor.energy_distance` | {t_dcor:.2f} | {ref:.15g} |",
        f"| {args.large_n:,} | `dsmtheory.metrics.energy_distance` (first call, incl. compile) | "
        f"{big['seconds']:.2f} | {big['value']:.15g} |",
        "",
        f"- Speed-up over dcor at N = {args.n:,}: **{t_dcor / warm:.1f}x** compiled "
        f"({t_dcor / first:.1f}x including compilation); |ours - dcor| = {diff:.2e} "
        f"({'within' if diff <= 1e-10 else 'OUTSIDE'} 1e-10).",
        f"- Peak memory at N = {args.large_n:,}: **{peak_gib:.3f} GiB** maximum resident set "
        f"of the child process (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` after it "
        f"exited), {big['base_kib'] / 2**20:.3f} GiB of it already reached after imports and "
        f"a warm-up call (parent RSS when forking: {parent_kib / 2**20:.3f} GiB); limit "
        f"{MEMORY_LIMIT_GIB} GiB: "
        f"{'met' if peak_gib <= MEMORY_LIMIT_GIB else 'NOT met'}. A dense distance matrix "
        f"would need {args.large_n**2 * 8 / 2**30:.1f} GiB.",
    ]
    text = "\n".join(lines) + "\n"
    from dsmtheory._io import atomic_write_text

    atomic_write_text(RESULT, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
