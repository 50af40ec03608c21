"""``dsmtheory compare``: σ² heuristic vs optimal weightings on a Gaussian mixture.

Trains MLP score models (capacities 25/100/500/1000 parameters, several seeds) with the
weightings ``simple`` (Song's σ²), ``matrix_optimal`` (W* = Cov[s_c | x_t]⁻¹), ``c_star``
(c*(t)σ²), ``edm``, ``min_snr`` and ``soft_min_snr`` as one vmapped program
(:func:`dsmtheory.train.sweep`), and writes figures, CSV and JSON: energy distance vs steps,
per-example gradient std per σ, exact Fisher divergence per σ, and the capacity ablation
(Zhang et al. 2508.01597 protocol, FORMULAS.md §7).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ._meta import versions

NAME = "compare"
HELP = "train score models with several weightings on a mixture; compare ED and exact Fisher"

WEIGHTINGS = ("simple", "matrix_optimal", "c_star", "edm", "min_snr", "soft_min_snr")
CAPACITIES = (25, 100, 500, 1000)

# (steps, batch, checkpoints, bins, fisher points, grad points, ED samples, ODE steps)
FULL = dict(steps=20000, batch_size=256, num_checkpoints=20, num_bins=12, fisher_points=512,
            grad_points=128, ed_samples=2048, ode_steps=18)  # fmt: skip
QUICK = dict(steps=400, batch_size=64, num_checkpoints=2, num_bins=8, fisher_points=128,
             grad_points=16, ed_samples=256, ode_steps=8)  # fmt: skip

FIGURES = (
    "energy_distance_vs_steps.png",
    "grad_std_per_sigma.png",
    "fisher_per_sigma.png",
    "capacity_ablation.png",
)
TABLES = ("summary.csv", "energy_distance.csv", "per_sigma.csv", "results.json")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``dsmtheory compare``."""
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--quick", action="store_true", help="small budget (< 2 min on a 2-core CPU)"
    )
    parser.add_argument(
        "--mixture", default=None, help="mixture JSON file (default: the 2-D ring, ring())"
    )
    parser.add_argument("--steps", type=_positive_int, help="training steps per configuration")
    parser.add_argument("--seeds", type=_positive_int, default=4, help="number of seeds (4)")
    parser.add_argument("--batch-size", type=_positive_int, help="examples per step")
    parser.add_argument(
        "--capacities",
        type=_positive_int,
        nargs="+",
        default=list(CAPACITIES),
        help="parameter counts (default 25 100 500 1000)",
    )
    parser.add_argument("--weightings", nargs="+", default=list(WEIGHTINGS), help="weighting names")
    parser.add_argument("--checkpoints", type=_positive_int, help="evaluations during training")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the comparison and write every file under ``args.out``."""
    from .. import from_json, ring
    from .. import train as T
    from .._io import save_figure, write_csv, write_json
    from ..plots import compare as P

    budget = dict(QUICK if args.quick else FULL)
    if args.steps is not None:
        budget["steps"] = args.steps
    if args.batch_size is not None:
        budget["batch_size"] = args.batch_size
    if args.checkpoints is not None:
        budget["num_checkpoints"] = args.checkpoints
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {str(out)!r}")
    weightings, caps = list(args.weightings), list(args.capacities)
    seeds = list(range(args.seeds))
    if args.mixture is None:
        gm = ring()
    else:
        if not Path(args.mixture).is_file():
            raise ValueError(f"--mixture must be a JSON file, got {args.mixture!r} (not found)")
        gm = from_json(Path(args.mixture))
    base = T.TrainConfig(
        mixture=gm, steps=budget["steps"], batch_size=budget["batch_size"], capacity=caps[0]
    )
    ev = T.EvalConfig(
        num_checkpoints=budget["num_checkpoints"],
        num_bins=budget["num_bins"],
        fisher_points=budget["fisher_points"],
        grad_points=budget["grad_points"],
        ed_samples=budget["ed_samples"],
        ode_steps=budget["ode_steps"],
    )
    t0 = time.perf_counter()
    res = T.sweep(
        base,
        weightings=weightings,
        capacities=caps,
        seeds=seeds,
        evaluation=ev,
        progress=not args.no_progress,
    )
    wall = time.perf_counter() - t0

    W, C, S = len(weightings), len(caps), len(seeds)
    nck = len(res.checkpoint_steps)

    def grid(a):  # configs are seed-major, then weighting, then capacity
        a = np.asarray(a)
        return a.reshape(S, W, C, *a.shape[1:]).transpose(1, 2, 0, *range(3, a.ndim + 2))

    nparams = [res.configs[j]["num_params"] for j in range(C)]
    ed = grid(res.energy_distance)
    out.mkdir(parents=True, exist_ok=True)
    figs = {
        FIGURES[0]: P.energy_distance_curves(res.checkpoint_steps, ed, weightings, caps, nparams),
        FIGURES[1]: P.grad_std_per_sigma(
            res.sigma_centers, grid(res.grad_std)[..., -1, :], weightings, caps
        ),
        FIGURES[2]: P.fisher_per_sigma(
            res.sigma_centers,
            grid(res.fisher)[..., -1, :],
            grid(res.fisher_se)[..., -1, :],
            weightings,
            caps,
        ),
        FIGURES[3]: P.capacity_ablation(
            nparams, ed[..., -1], grid(res.fisher_total_sigma2)[..., -1], weightings
        ),
    }
    for name, fig in figs.items():
        save_figure(fig, out / name)

    tail = max(1, res.loss.shape[1] // 10)
    rows = []
    for i, c in enumerate(res.configs):
        rows.append(
            [
                c["seed"],
                c["weighting"],
                c["capacity"],
                c["num_params"],
                float(res.loss[i, -tail:].mean()),
                float(res.energy_distance[i, -1]),
                float(res.fisher_total[i, -1]),
                float(res.fisher_total_se[i, -1]),
                float(res.fisher_total_sigma2[i, -1]),
                float(res.fisher_total_sigma2_se[i, -1]),
            ]
        )
    header = [
        "seed",
        "weighting",
        "capacity",
        "num_params",
        "final_loss",
        "energy_distance",
        "fisher_total",
        "fisher_total_se",
        "fisher_total_sigma2",
        "fisher_total_sigma2_se",
    ]
    write_csv(out / "summary.csv", header, rows)
    write_csv(
        out / "energy_distance.csv",
        ["seed", "weighting", "capacity", "step", "energy_distance"],
        [
            [c["seed"], c["weighting"], c["capacity"], int(s), float(res.energy_distance[i, k])]
            for i, c in enumerate(res.configs)
            for k, s in enumerate(res.checkpoint_steps)
        ],
    )
    write_csv(
        out / "per_sigma.csv",
        ["seed", "weighting", "capacity", "sigma", "grad_std", "fisher", "fisher_se"],
        [
            [
                c["seed"],
                c["weighting"],
                c["capacity"],
                float(sig),
                float(res.grad_std[i, -1, b]),
                float(res.fisher[i, -1, b]),
                float(res.fisher_se[i, -1, b]),
            ]
            for i, c in enumerate(res.configs)
            for b, sig in enumerate(res.sigma_centers)
        ],
    )
    write_json(
        out / "results.json",
        {
            "settings": {
                "mixture": gm.to_dict(),
                "weightings": weightings,
                "capacities": caps,
                "quick": bool(args.quick),
                **budget,
                "schedule": "ve",
                "sigma_min": base.sigma_min,
                "sigma_max": float(base.build_schedule().sigma_max),
                "optimizer": base.optimizer,
                "learning_rate": base.learning_rate,
                "parameterization": base.parameterization,
                "noise_sampling": base.noise_sampling,
                "eval_seed": ev.seed,
            },
            "seeds": seeds,
            "versions": versions("jax", "optax", "numpy", machine=True, devices=True),
            "timings": {**res.timings, "wall_s": wall},
            "configs": res.configs,
            "checkpoint_steps": res.checkpoint_steps,
            "sigma_centers": res.sigma_centers,
            "lam_edges": res.lam_edges,
            "energy_distance": res.energy_distance,
            "grad_std": res.grad_std,
            "fisher": res.fisher,
            "fisher_se": res.fisher_se,
            "fisher_total": res.fisher_total,
            "fisher_total_se": res.fisher_total_se,
            "fisher_total_sigma2": res.fisher_total_sigma2,
            "fisher_total_sigma2_se": res.fisher_total_sigma2_se,
            "loss_every_10_steps": res.loss[:, ::10],
            "num_checkpoints": nck,
        },
    )
    print(
        f"compare: {len(res.configs)} configurations, {budget['steps']} steps, "
        f"wall {wall:.1f} s; wrote {len(FIGURES)} figures and {len(TABLES)} tables to {out}"
    )
    return 0
