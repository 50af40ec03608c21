r"""Benchmark: the low-rank-plus-diagonal kind against the dense kind at image-like D.

One mixture of K = 10 components in D = 3072 dimensions (a 32×32×3 image) with covariances
$\Sigma_k=F_kF_k^\top+\mathrm{diag}(d_k)$, $F_k$ of shape (D, r = 64), float64, evaluated at
N = 10⁴ points drawn from its VE-noised law at σ = 0.5:

* ``low_rank`` — :meth:`dsmtheory.GaussianMixture.from_low_rank` (Woodbury identity and
  matrix determinant lemma on the r×r capacitance matrix, $O(NKDr)$);
* ``dense``    — the same mixture as the dense kind (``gm.to_dense()``: K eigendecompositions
  of D×D, then rotations into each eigenbasis, $O(NKD^2)$).

Two workloads, each one jitted program: ``log_prob`` and ``score`` of $p_t$, and the Tweedie
posterior mean with the trace of the posterior covariance (:func:`~dsmtheory.posterior_mean`,
:func:`~dsmtheory.posterior_cov_trace`). Times: the first call (compilation included) and
the best of ``--repeats`` further calls. The dense kind's construction (``to_dense()``) is
timed separately. Memory: each path in a fresh subprocess; for every step the process RSS
is sampled every 0.5 ms by a background thread (JAX programs compiled ahead, not run
before) and the peak minus the RSS just before the step is reported, with XLA's
``memory_analysis()`` (temp + output buffers). The (N, D) points and outputs are 234 MiB
each at the default size, so they are a large part of every figure.

Run: ``python benchmarks/bench_lowrank.py [--n 10000] [--repeats 3] [--dense-repeats 3]``.
Writes ``benchmarks/results/lowrank.md`` (a Markdown fragment) and prints it.
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
from dsmtheory.mixture import posterior_cov_trace, posterior_mean  # noqa: E402

K, D, R, SEED, SIGMA = 10, 3072, 64, 0, 0.5
RESULTS = Path(__file__).resolve().parent / "results" / "lowrank.md"
CHECK_POINTS = 256


def mixture(d: int = D, r: int = R, k: int = K) -> dsm.GaussianMixture:
    """The benchmark mixture (low-rank kind): means N(0, 0.25), factor entries
    N(0, 0.25/r) (variance 0.25 per coordinate from the factors), diag U(0.01, 0.05)."""
    dsm.enable_x64()
    rng = np.random.default_rng(SEED)
    w = rng.dirichlet(np.full(k, 5.0))
    mu = 0.5 * rng.standard_normal((k, d))
    f = (0.5 / np.sqrt(r)) * rng.standard_normal((k, d, r))
    dg = rng.uniform(0.01, 0.05, size=(k, d))
    return dsm.GaussianMixture.from_low_rank(w, mu, f, dg)


@jax.jit
def _lp_score(gt, x):
    return gt.log_prob(x), gt.score(x)


@jax.jit
def _posterior(gm, x, alpha, sigma):
    return posterior_mean(gm, x, alpha, sigma), posterior_cov_trace(gm, x, alpha, sigma)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure(call) -> tuple[object, float, float, float]:
    """``(result, wall seconds, peak RSS delta in MiB, CPU seconds of this process)`` of one
    call (CPU time summed over the process's threads: the fairer figure on a shared machine)."""
    peak = [0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    base = _rss_bytes()
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    t, c = time.perf_counter(), time.process_time()
    out = call()
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss_bytes())
    return out, secs, (peak[0] - base) / 2**20, cpu


def _xla_mb(compiled) -> float | None:
    ma = compiled.memory_analysis()
    if ma is None:
        return None
    return (ma.temp_size_in_bytes + ma.output_size_in_bytes) / 2**20


def worker(path: str, n: int, repeats: int) -> dict:
    """Everything about one path, in this (fresh) process."""
    lr = mixture()
    gt_lr = lr.noised(1.0, SIGMA)
    x = jax.block_until_ready(gt_lr.sample(jax.random.PRNGKey(1), n))
    alpha, sigma = jax.numpy.asarray(1.0), jax.numpy.asarray(SIGMA)
    res: dict = {"path": path, "n": n, "repeats": repeats}
    if path == "dense":
        gm, secs, mb, cpu = _measure(lambda: jax.block_until_ready(lr.to_dense()))
        res["construct"] = {"seconds": secs, "rss_delta_mb": mb, "cpu_seconds": cpu}
        gt = gm.noised(1.0, SIGMA)
    else:
        gm, gt = lr, gt_lr
    jax.block_until_ready(gt)
    for name, fn, args in (
        ("lp_score", _lp_score, (gt, x)),
        ("posterior", _posterior, (gm, x, alpha, sigma)),
    ):
        t = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s = time.perf_counter() - t
        out, first, mb, first_cpu = _measure(
            lambda c=compiled, a=args: jax.block_until_ready(c(*a))
        )
        del out
        times, cpus = [], []
        for _ in range(repeats):
            out, secs, _, cpu = _measure(lambda c=compiled, a=args: jax.block_until_ready(c(*a)))
            del out
            times.append(secs)
            cpus.append(cpu)
        res[name] = {
            "compile_seconds": compile_s,
            "first_seconds": first,
            "times": times,
            "best_seconds": min(times) if times else first,
            "best_cpu_seconds": min(cpus) if cpus else first_cpu,
            "rss_delta_mb": mb,
            "xla_mb": _xla_mb(compiled),
        }
    if path == "dense":
        # agreement on a few points: the low-rank kernels against the dense ones
        xs = x[:CHECK_POINTS]
        worst = 0.0
        pairs = (
            (_lp_score(gt_lr, xs), _lp_score(gt, xs)),
            (_posterior(lr, xs, alpha, sigma), _posterior(gm, xs, alpha, sigma)),
        )
        for got, want in pairs:
            for a, b in zip(got, want, strict=True):
                a, b = np.asarray(a), np.asarray(b)
                worst = max(worst, float(np.max(np.abs(a - b)) / np.max(np.abs(b))))
        res["max_rel_diff"] = worst
    res["peak_rss_mb"] = _peak_rss_mb()
    return res


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _run_worker(path: str, n: int, repeats: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", path, "--n", str(n), "--repeats", str(repeats)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"path": path, "error": f"did not finish within {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"path": path, "error": f"exit status {proc.returncode}: " + " | ".join(tail)}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = time.perf_counter() - t
    return out


def _fmt_mb(v) -> str:
    return "–" if v is None else f"{v:.0f}"


def report(lo: dict, de: dict, n: int) -> str:
    lines = [
        f"K = {K} components in D = {D} dimensions, factors of rank r = {R} "
        f"(covariances $F_kF_k^\\top+\\mathrm{{diag}}(d_k)$), float64, N = {n:,} points "
        f"drawn from the VE-noised law at σ = {SIGMA}.",
        "",
        "| workload | path | best time (s) | CPU time (s) | first call (s) | compile (s) | "
        "dense / low-rank (wall; CPU) | peak RSS delta (MiB) | XLA temp + output (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "lp_score": "`log_prob` + `score` of p_t",
        "posterior": "`posterior_mean` + `posterior_cov_trace`",
    }
    ratios, cpu_ratios = {}, {}
    for name, label in labels.items():
        a = lo.get(name)
        b = de.get(name)
        if a and b:
            ratios[name] = b["best_seconds"] / a["best_seconds"]
            if "best_cpu_seconds" in a and "best_cpu_seconds" in b:
                cpu_ratios[name] = b["best_cpu_seconds"] / a["best_cpu_seconds"]
        for tag, m in (("low-rank", a), ("dense", b)):
            if m is None:
                err = (lo if tag == "low-rank" else de).get("error", "not run")
                lines.append(f"| {label} | {tag} | {err} | | | | | | |")
                continue
            ratio = f"{ratios[name]:.1f}×" if tag == "dense" and name in ratios else ""
            if ratio and name in cpu_ratios:
                ratio += f"; {cpu_ratios[name]:.1f}×"
            cpu = m.get("best_cpu_seconds")
            cpu = "–" if cpu is None else f"{cpu:.3f}"
            lines.append(
                f"| {label} | {tag} | {m['best_seconds']:.3f} | {cpu} | {m['first_seconds']:.3f} | "
                f"{m['compile_seconds']:.2f} | {ratio} | {_fmt_mb(m['rss_delta_mb'])} | "
                f"{_fmt_mb(m['xla_mb'])} |"
            )
    lines.append("")
    if "construct" in de:
        c = de["construct"]
        lines.append(
            f"- The dense kind's construction (`to_dense()`: K eigendecompositions of "
            f"{D}×{D}) took {c['seconds']:.1f} s and {c['rss_delta_mb']:.0f} MiB more RSS; "
            "it is not in the times above."
        )
    for name, label in labels.items():
        if name in ratios:
            a = lo[name]
            ok = "met" if ratios[name] >= 20 else "NOT met"
            mem = "met" if a["rss_delta_mb"] < 1024 else "NOT met"
            cpu_txt = f", {cpu_ratios[name]:.1f}× in CPU time" if name in cpu_ratios else ""
            lines.append(
                f"- **{label}: low-rank {ratios[name]:.1f}× faster than dense** in wall time"
                f"{cpu_txt} (target ≥ 20×: {ok}); low-rank peak RSS delta "
                f"{a['rss_delta_mb']:.0f} MiB (target < 1 GiB: {mem})."
            )
    if "max_rel_diff" in de:
        lines.append(
            f"- The two paths agree to a relative difference of {de['max_rel_diff']:.1e} "
            f"(max over entries, on {CHECK_POINTS} of the points)."
        )
    for m in (lo, de):
        if "peak_rss_mb" in m:
            lines.append(
                f"- Whole {m['path']} process: peak RSS {m['peak_rss_mb']:.0f} MiB, "
                f"{m['wall_seconds']:.0f} s wall (setup, sampling, compilation included)."
            )
    rep_lo, rep_de = lo.get("repeats", "?"), de.get("repeats", "?")
    if lo.get("reused"):
        lines.append(
            "- The low-rank path was measured in an earlier run of this script, minutes "
            "before the dense one, on the same machine under similar load."
        )
    if rep_de == 0:
        lines.append(
            "- The dense path was run once per workload (its *best time* is that one call, "
            "compilation excluded): under the load of the shared machine one call took "
            "minutes."
        )

    def _calls(rep):
        return "the one call" if rep == 0 else f"the best of {rep} calls after the first"

    lines += [
        f"- Times: {_calls(rep_lo)} (low-rank), {_calls(rep_de)} (dense). Each path "
        "in a fresh subprocess; *peak RSS delta*: RSS sampled every 0.5 ms during the first "
        "call of the compiled-ahead program minus the RSS before it (includes the "
        f"outputs: {n * D * 8 / 2**20:.0f} MiB per (N, D) array).",
        f"- Machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}; JAX backend {jax.default_backend()}; load average "
        f"{_LOAD[0]:.1f} before / {os.getloadavg()[0]:.1f} after (the machine is shared).",
        f"- Versions: Python {platform.python_version()}, jax {jax.__version__}, numpy "
        f"{np.__version__}, dsmtheory {dsm.__version__}.",
    ]
    return "\n".join(lines) + "\n"


_LOAD = os.getloadavg()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="number of points (default 1e4)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per path (default 3)")
    p.add_argument("--dense-repeats", type=int, default=None, help="(default: --repeats)")
    p.add_argument("--timeout", type=float, default=3600.0, help="per path, seconds")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--low-rank-json",
        type=Path,
        help="reuse a low-rank worker's result (JSON) instead of measuring it again",
    )
    p.add_argument("--worker", choices=("low_rank", "dense"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.repeats)))
        return 0
    dense_rep = args.repeats if args.dense_repeats is None else args.dense_repeats
    if args.low_rank_json:
        lo = json.loads(args.low_rank_json.read_text())
        lo["reused"] = True
    else:
        lo = _run_worker("low_rank", args.n, args.repeats, args.timeout)
    print("low_rank:", json.dumps(lo), flush=True)
    de = _run_worker("dense", args.n, dense_rep, args.timeout)
    print("dense:", json.dumps(de), flush=True)
    text = report(lo, de, args.n)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
