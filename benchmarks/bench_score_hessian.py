r"""Benchmark: closed-form score + Hessian of a Gaussian mixture against its peers.

Compares, in ONE run on the same points (N = 1e5, K = 16, D = 8, full covariances,
float64):

* ``closed``   — :meth:`dsmtheory.GaussianMixture.score_and_hessian`, the centred closed form
  $H=\sum_k r_k(g_k-s)(g_k-s)^\top-\sum_k r_k\Sigma_k^{-1}$ (FORMULAS.md §4), jitted;
* ``autodiff`` — ``jax.jit(jax.vmap(grad and jax.hessian of log_prob))``;
* ``numpy``    — a straightforward NumPy loop over the K components.

Timings are the best of several rounds after a warm-up (compilation excluded); the methods
alternate within each round. Memory is measured per method in a fresh subprocess: the process
RSS is sampled every 0.5 ms by a background thread during one call (JAX functions compiled
ahead, not run before), and the peak minus the RSS just before the call is reported; the
working memory is XLA's ``memory_analysis()`` (temp + output) for JAX and ``tracemalloc``'s
peak for NumPy. Both include the (N, D) and (N, D, D) outputs (55 MB at the default size).

Run: ``python benchmarks/bench_score_hessian.py [--n 100000] [--repeats 5]``. Writes
``benchmarks/results/score_hessian.md`` (a Markdown fragment) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import dsmtheory as dsm  # noqa: E402
from dsmtheory._io import atomic_write_text  # noqa: E402

K, D, SEED, SIGMA = 16, 8, 0, 0.5
METHODS = ("closed", "autodiff", "numpy")
RESULTS = Path(__file__).resolve().parent / "results" / "score_hessian.md"


def setup(n: int):
    """The benchmark mixture (noised, VE sigma = 0.5) and n points drawn from it."""
    dsm.enable_x64()
    gm = dsm.random_anisotropic(seed=SEED, num_components=K, dim=D).noised(1.0, SIGMA)
    x = gm.sample(jax.random.PRNGKey(1), n)
    params = {
        "weights": np.asarray(gm.weights),
        "means": np.asarray(gm.means),
        "covs": np.asarray(gm.covs),
    }
    return gm, jax.block_until_ready(x), params


@jax.jit
def _closed(gm, x):
    return gm.score_and_hessian(x)


@jax.jit
def _autodiff(gm, x):
    f = gm.log_prob
    return jax.vmap(jax.grad(f))(x), jax.vmap(jax.hessian(f))(x)


def numpy_loop(params, x):
    """Score and Hessian with a plain loop over components (the naive reference)."""
    w, mu, covs = params["weights"], params["means"], params["covs"]
    n, d = x.shape
    precs = np.linalg.inv(covs)
    logdets = np.linalg.slogdet(covs)[1]
    logc = np.empty((n, len(w)))
    grads = []
    for k in range(len(w)):
        g = -(x - mu[k]) @ precs[k]  # precision is symmetric
        logc[:, k] = (
            np.log(w[k])
            - 0.5 * (d * np.log(2 * np.pi) + logdets[k])
            + 0.5 * np.sum(g * (x - mu[k]), axis=1)
        )
        grads.append(g)
    m = logc.max(axis=1, keepdims=True)
    r = np.exp(logc - m)
    r /= r.sum(axis=1, keepdims=True)
    s = np.zeros((n, d))
    h = np.zeros((n, d, d))
    for k, g in enumerate(grads):
        s += r[:, k : k + 1] * g
        h += r[:, k, None, None] * (g[:, :, None] * g[:, None, :] - precs[k])
    h -= s[:, :, None] * s[:, None, :]
    return s, h


def make_call(method, gm, x, params):
    if method == "closed":
        return lambda: jax.block_until_ready(gm.score_and_hessian(x))
    if method == "autodiff":
        return lambda: jax.block_until_ready(_autodiff(gm, x))
    xn = np.asarray(x)
    return lambda: numpy_loop(params, xn)


def best_times(calls: dict, repeats: int) -> dict:
    """Best wall time of each call; the methods alternate within each round so that load
    changes on a shared machine hit all of them alike."""
    for call in calls.values():
        call()  # warm-up (compilation)
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(method: str, n: int) -> dict:
    """Peak memory of one call of ``method`` (run in a fresh process)."""
    gm, x, params = setup(n)
    res = {}
    if method == "numpy":
        call = make_call(method, gm, x, params)
    else:
        # compile without running, so that the measured call allocates afresh
        fn = _closed if method == "closed" else _autodiff
        compiled = fn.lower(gm, x).compile()
        ma = compiled.memory_analysis()
        if ma is not None:
            res["xla_temp_mb"] = ma.temp_size_in_bytes / 2**20
            res["xla_output_mb"] = ma.output_size_in_bytes / 2**20
        call = lambda: jax.block_until_ready(compiled(gm, x))
    peak = [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    base = _rss_bytes()
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out = call()
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss_bytes())
    del out
    res["rss_delta_mb"] = (peak[0] - base) / 2**20
    if method == "numpy":
        import tracemalloc

        tracemalloc.start()
        call()
        res["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return res


def check_agreement(gm, x, params) -> float:
    """Largest relative difference between the three methods (they must agree)."""
    s0, h0 = (np.asarray(a) for a in gm.score_and_hessian(x))
    worst = 0.0
    for s, h in (_autodiff(gm, x), numpy_loop(params, np.asarray(x))):
        worst = max(
            worst,
            float(np.max(np.abs(np.asarray(s) - s0)) / np.max(np.abs(s0))),
            float(np.max(np.abs(np.asarray(h) - h0)) / np.max(np.abs(h0))),
        )
    return worst


def _working(m: dict) -> float:
    if "xla_temp_mb" in m:
        return m["xla_temp_mb"] + m["xla_output_mb"]
    return m.get("tracemalloc_peak_mb", float("nan"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="number of points (default 1e5)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per method")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true", help="print only; do not write results")
    args = p.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        p.error("--n and --repeats must be positive")
    if args.worker:
        print(json.dumps(worker(args.worker, args.n)))
        return 0

    gm, x, params = setup(args.n)
    load_before = os.getloadavg()
    times = best_times({m: make_call(m, gm, x, params) for m in METHODS}, args.repeats)
    load_after = os.getloadavg()
    agree = check_agreement(gm, x, params)
    mem = {}
    for m in METHODS:
        res = subprocess.run(
            [sys.executable, __file__, "--worker", m, "--n", str(args.n)],
            capture_output=True,
            text=True,
            check=True,
        )
        mem[m] = json.loads(res.stdout.strip().splitlines()[-1])

    out_mb = args.n * (D + D * D) * 8 / 2**20
    rows = [
        "| method | best time (s) | time / closed form | peak RSS delta (MB) | "
        "working memory (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {
        "closed": "closed form `score_and_hessian` (jit)",
        "autodiff": "`jax.vmap(jax.grad, jax.hessian)(log_prob)` (jit)",
        "numpy": "NumPy loop over components",
    }
    for m in METHODS:
        rows.append(
            f"| {labels[m]} | {times[m]:.4f} | {times[m] / times['closed']:.2f} | "
            f"{mem[m]['rss_delta_mb']:.0f} | {_working(mem[m]):.0f} |"
        )
    ratio_ad = times["autodiff"] / times["closed"]
    ratio_np = times["numpy"] / times["closed"]
    text = "\n".join(
        [
            f"Score and Hessian of a {K}-component, {D}-dimensional full-covariance mixture "
            f"(`random_anisotropic(seed={SEED})` noised at VE sigma = {SIGMA}) at "
            f"N = {args.n:,} points, float64, best of {args.repeats} after a warm-up, "
            "all in one run.",
            "",
            *rows,
            "",
            f"- **closed form vs autodiff: {ratio_ad:.1f}x faster** (target >= 3x: "
            f"{'met' if ratio_ad >= 3 else 'NOT met'}); "
            f"**vs the NumPy loop: {ratio_np:.1f}x faster** (target >= 10x: "
            f"{'met' if ratio_np >= 10 else 'NOT met'}).",
            f"- The three agree to a relative difference of {agree:.1e} (max over entries).",
            "- Memory: each method in a fresh subprocess. *Peak RSS delta*: process RSS "
            "sampled every 0.5 ms during one call (JAX: compiled ahead with `.lower().compile()`"
            ", not run before) minus the RSS before it. *Working memory*: XLA's "
            "`memory_analysis()` temp + output buffers for the JAX methods, `tracemalloc`'s "
            "peak for NumPy. Every method returns the same outputs, "
            f"{out_mb:.0f} MB.",
            f"- Machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, "
            f"{platform.system()} {platform.release()}; JAX backend "
            f"{jax.default_backend()}; load average {load_before[0]:.1f} before / "
            f"{load_after[0]:.1f} after the timings (the machine is shared; ratios in one run "
            "are what to compare).",
            f"- Versions: Python {platform.python_version()}, jax {jax.__version__}, "
            f"numpy {np.__version__}, dsmtheory {dsm.__version__}.",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        atomic_write_text(RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
