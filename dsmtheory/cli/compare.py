r"""``dsmtheory compare``: σ² heuristic vs optimal weightings on a Gaussian mixture.

Trains MLP score models (capacities relative to the dimension, 12.5/50/250/500 × D
parameters: 25/100/500/1000 in 2-D, 800/3200/16000/32000 in 64-D; several seeds) with the
weightings ``simple`` (Song's σ²), ``matrix_optimal`` (W* = Cov[s_c | x_t]⁻¹), ``c_star``
(c*(t)σ²), ``edm``, ``min_snr`` and ``soft_min_snr`` as one vmapped program
(:func:`dsmtheory.train.sweep`), and writes figures, CSV and JSON: energy distance vs steps,
per-example gradient std per σ, exact Fisher divergence per σ (absolute and relative to
tr I_t), and the capacity ablation (Zhang et al. 2508.01597 protocol, FORMULAS.md §7).

The data set the constants of the weightings: σ_d of ``edm`` and ``soft_min_snr`` is the
mixture's $\sqrt{\mathrm{tr\,Cov}[x_0]/D}$ (:func:`dsmtheory.train.data_weighting_params`),
``matrix_optimal`` is computed in float64 with each direction's weight capped at 1e4
(:mod:`dsmtheory.train._matrix`), and above D = 3 the ``c_star`` table is built by the
engine's Monte Carlo rule on :data:`C_STAR_TABLE` nodes (docs/sweeps.md). A weighting that
cannot be built for the mixture stops the run with one line naming it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..mixture_io import reference as mixture_reference
from . import _inputs as inp
from ._errors import UsageError, user_input
from ._meta import versions

NAME = "compare"
HELP = "train score models with several weightings on a mixture; compare ED and exact Fisher"

WEIGHTINGS = ("simple", "matrix_optimal", "c_star", "edm", "min_snr", "soft_min_snr")
#: the default capacities in 2-D; in D dimensions they are CAPACITY_PER_DIM × D
#: (:func:`dsmtheory.train.capacities_for_dim`)
CAPACITIES = (25, 100, 500, 1000)
#: the c* table of the ``c_star`` weighting above D = 3 (Monte Carlo nodes): (nodes on the
#: λ range, Monte Carlo draws per node) for the quick and the full budget. Measured on
#: digits K = 10: relative standard error <= 4e-3 per node with 1000 draws, 1e-3 with
#: 20000 (the engine's default).
C_STAR_TABLE = {"quick": (17, 1000), "full": (33, 20000)}

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
    "fisher_relative_per_sigma.png",
)
TABLES = ("summary.csv", "energy_distance.csv", "per_sigma.csv", "results.json")
#: the largest --capacities entry (a model of 10^6 parameters per configuration)
MAX_CAPACITY = 1_000_000
#: the largest --seeds, --batch-size and --checkpoints
MAX_SEEDS = 1_000
MAX_BATCH = 1_000_000


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _capacity(text: str):
    """A parameter count, or ``<f>D`` (``50D``): f times the mixture's dimension."""
    t = text.strip()
    if t[-1:] in ("D", "d"):
        try:
            f = float(t[:-1])
        except ValueError:
            f = float("nan")
        if not (f > 0 and f < 1e9):
            raise argparse.ArgumentTypeError(
                f"expected a positive integer or a multiple of D such as 50D, got {text!r}"
            )
        return t[:-1] + "D"
    return _positive_int(t)


def resolve_capacities(capacities, dim: int) -> tuple[int, ...]:
    """Parameter counts from ``--capacities`` entries (integers, or ``<f>D`` = f·D rounded);
    ``None`` is the default :func:`dsmtheory.train.capacities_for_dim`."""
    from .. import train as T

    if capacities is None:
        return T.capacities_for_dim(dim)
    out = []
    for c in capacities:
        if isinstance(c, str) and c.endswith("D"):
            out.append(max(1, int(round(float(c[:-1]) * dim))))
        else:
            out.append(c)
    return tuple(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``dsmtheory compare``."""
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--quick", action="store_true", help="small budget (< 2 min on a 2-core CPU)"
    )
    parser.add_argument(
        "--mixture", default=None, help=f"{inp.MIXTURE_SPEC_HELP} (default: the 2-D ring, ring())"
    )
    parser.add_argument("--steps", type=_positive_int, help="training steps per configuration")
    parser.add_argument("--seeds", type=_positive_int, default=4, help="number of seeds (4)")
    parser.add_argument("--batch-size", type=_positive_int, help="examples per step")
    parser.add_argument(
        "--capacities",
        type=_capacity,
        nargs="+",
        default=None,
        help="parameter counts, or multiples of D such as 50D (default 12.5D 50D 250D 500D: "
        "25 100 500 1000 in 2-D, 800 3200 16000 32000 in 64-D)",
    )
    parser.add_argument("--weightings", nargs="+", default=list(WEIGHTINGS), help="weighting names")
    parser.add_argument("--checkpoints", type=_positive_int, help="evaluations during training")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


class Settings(NamedTuple):
    """The checked inputs of one run.

    Attributes:
        base: the shared :class:`dsmtheory.train.TrainConfig` (mixture, steps, batch size;
            its capacity is the first of ``capacities``).
        evaluation: the :class:`dsmtheory.train.EvalConfig`.
        weightings: the weighting names trained.
        capacities: the requested parameter counts.
        seeds: the seeds ``0 .. n-1``.
        budget: the budget in effect (``QUICK`` or ``FULL`` with the overrides).
        quick: whether the quick budget is the base.
        progress: show a progress bar (on stderr).
        source: how the mixture was given (a file, a data-set name or ``"ring()"``).
        weighting_params: ``{name: params}`` given to the sweep (σ_d of EDM and
            Soft-Min-SNR from the data; the c* table's nodes above D = 3).
    """

    base: object
    evaluation: object
    weightings: tuple
    capacities: tuple
    seeds: tuple
    budget: dict
    quick: bool
    progress: bool
    source: str = "ring()"
    weighting_params: dict | None = None


class Result(NamedTuple):
    """What :func:`compute` returns.

    Attributes:
        settings: the :class:`Settings`.
        sweep: the :class:`dsmtheory.train.SweepResult` of every configuration.
        wall: seconds of the sweep.
    """

    settings: Settings
    sweep: object
    wall: float


def settings(
    mixture=None,
    *,
    quick: bool = False,
    steps: int | None = None,
    seeds: int = 4,
    batch_size: int | None = None,
    capacities=None,
    weightings=WEIGHTINGS,
    checkpoints: int | None = None,
    progress: bool = True,
    source: str | None = None,
) -> Settings:
    """Check the inputs (UsageError naming the option) by building the training and
    evaluation configurations. ``mixture=None`` is the 2-D ring; ``capacities=None`` the
    default per dimension (:func:`resolve_capacities`)."""
    from .. import ring
    from .. import train as T

    gm = ring() if mixture is None else mixture

    budget = dict(QUICK if quick else FULL)
    for key, value, flag in (
        ("steps", steps, "--steps"),
        ("batch_size", batch_size, "--batch-size"),
        ("num_checkpoints", checkpoints, "--checkpoints"),
    ):
        if value is not None:
            top = MAX_BATCH if key == "batch_size" else None
            budget[key] = inp.check_int(value, flag, minimum=1, maximum=top)
    n_seeds = inp.check_int(seeds, "--seeds", minimum=1, maximum=MAX_SEEDS)
    if capacities is not None and not list(capacities):
        raise UsageError("--capacities needs at least one parameter count")
    caps = tuple(inp.check_int(c, "--capacities", minimum=1, maximum=MAX_CAPACITY)
                 for c in resolve_capacities(capacities, gm.dim))  # fmt: skip
    names = tuple(weightings)
    if not names:
        raise UsageError("--weightings needs at least one weighting name")
    with user_input("--capacities: "):
        smallest = T.num_params(1, gm.dim)
        for c in caps:
            if c < smallest:
                raise ValueError(
                    f"capacity {c} is too small: the smallest model in D = {gm.dim} has "
                    f"{smallest} parameters (width 1); give a count >= {smallest} or a "
                    "multiple of D such as 50D"
                )
    with user_input():
        base = T.TrainConfig(
            mixture=gm, steps=budget["steps"], batch_size=budget["batch_size"], capacity=caps[0]
        )
        for c in caps[1:]:
            base.replace(capacity=c)
    with user_input("--weightings: "):
        for w in names:
            base.replace(weighting=w)
    with user_input("--checkpoints: " if checkpoints is not None else ""):
        ev = T.EvalConfig(
            num_checkpoints=budget["num_checkpoints"],
            num_bins=budget["num_bins"],
            fisher_points=budget["fisher_points"],
            grad_points=budget["grad_points"],
            ed_samples=budget["ed_samples"],
            ode_steps=budget["ode_steps"],
        )
    source = source or ("ring()" if mixture is None else "mixture")
    params = T.data_weighting_params(gm, names)
    if "c_star" in names and gm.dim > 3:  # the engine's Monte Carlo rule: fewer, cheaper nodes
        nodes, draws = C_STAR_TABLE["quick" if quick else "full"]
        params["c_star"] = {"num_grid": nodes, "method": "monte_carlo", "num_samples": draws}
    return Settings(base, ev, names, caps, tuple(range(n_seeds)), budget, bool(quick),
                    bool(progress), str(source), params)  # fmt: skip


def settings_from_args(args) -> Settings:
    """:class:`Settings` from the parsed command line (the mixture file read here)."""
    gm = None if args.mixture is None else inp.load_mixture(args.mixture)
    return settings(
        gm,
        quick=args.quick,
        steps=args.steps,
        seeds=args.seeds,
        batch_size=args.batch_size,
        capacities=args.capacities,
        weightings=args.weightings,
        checkpoints=args.checkpoints,
        progress=not args.no_progress,
        source=args.mixture,
    )


def compute(s: Settings) -> Result:
    """Train and evaluate every (seed, weighting, capacity) configuration (no I/O besides
    the progress bar)."""
    from .. import train as T

    t0 = time.perf_counter()
    try:
        res = T.sweep(
            s.base,
            weightings=list(s.weightings),
            capacities=list(s.capacities),
            seeds=list(s.seeds),
            evaluation=s.evaluation,
            weighting_params=s.weighting_params,
            progress=s.progress,
        )
    except ValueError as exc:
        if "cannot run on this mixture" not in str(exc):
            raise
        raise UsageError(
            f"--weightings: {' '.join(str(exc).split())} (leave it out of --weightings)"
        ) from exc
    return Result(s, res, time.perf_counter() - t0)


def _grid(a, shape):
    """Configs are seed-major, then weighting, then capacity: to (W, C, S, ...)."""
    a = np.asarray(a)
    S, W, C = shape
    return a.reshape(S, W, C, *a.shape[1:]).transpose(1, 2, 0, *range(3, a.ndim + 2))


def _figures(result: Result) -> dict:
    """file name -> Figure, the four of :data:`FIGURES`."""
    from ..plots import compare as P

    s, res = result.settings, result.sweep
    weightings, caps = list(s.weightings), list(s.capacities)
    shape = (len(s.seeds), len(weightings), len(caps))
    nparams = [res.configs[j]["num_params"] for j in range(len(caps))]
    ed = _grid(res.energy_distance, shape)
    out = {
        FIGURES[0]: P.energy_distance_curves(res.checkpoint_steps, ed, weightings, caps, nparams),
        FIGURES[1]: P.grad_std_per_sigma(
            res.sigma_centers, _grid(res.grad_std, shape)[..., -1, :], weightings, caps
        ),
        FIGURES[2]: P.fisher_per_sigma(
            res.sigma_centers,
            _grid(res.fisher, shape)[..., -1, :],
            _grid(res.fisher_se, shape)[..., -1, :],
            weightings,
            caps,
        ),
        FIGURES[3]: P.capacity_ablation(
            nparams, ed[..., -1], _grid(res.fisher_total_sigma2, shape)[..., -1], weightings
        ),
        FIGURES[4]: P.fisher_per_sigma(
            res.sigma_centers,
            _grid(res.fisher_relative, shape)[..., -1, :],
            _grid(res.fisher_relative_se, shape)[..., -1, :],
            weightings,
            caps,
            relative=True,
        ),
    }
    return out


def _tables(result: Result) -> dict:
    """file name -> (header, rows) of the three CSV tables."""
    res = result.sweep
    tail = max(1, res.loss.shape[1] // 10)
    rows = [
        [c["seed"], c["weighting"], c["capacity"], c["num_params"],
         float(res.loss[i, -tail:].mean()), float(res.energy_distance[i, -1]),
         float(res.fisher_total[i, -1]), float(res.fisher_total_se[i, -1]),
         float(res.fisher_total_sigma2[i, -1]), float(res.fisher_total_sigma2_se[i, -1])]
        for i, c in enumerate(res.configs)
    ]  # fmt: skip
    header = ["seed", "weighting", "capacity", "num_params", "final_loss", "energy_distance",
              "fisher_total", "fisher_total_se", "fisher_total_sigma2",
              "fisher_total_sigma2_se"]  # fmt: skip
    return {
        "summary.csv": (header, rows),
        "energy_distance.csv": (
            ["seed", "weighting", "capacity", "step", "energy_distance"],
            [
                [
                    c["seed"],
                    c["weighting"],
                    c["capacity"],
                    int(st),
                    float(res.energy_distance[i, k]),
                ]
                for i, c in enumerate(res.configs)
                for k, st in enumerate(res.checkpoint_steps)
            ],
        ),
        "per_sigma.csv": (
            [
                "seed",
                "weighting",
                "capacity",
                "sigma",
                "grad_std",
                "fisher",
                "fisher_se",
                "fisher_relative",
                "fisher_relative_se",
            ],  # fmt: skip
            [
                [
                    c["seed"],
                    c["weighting"],
                    c["capacity"],
                    float(sig),
                    float(res.grad_std[i, -1, b]),
                    float(res.fisher[i, -1, b]),
                    float(res.fisher_se[i, -1, b]),
                    float(res.fisher_relative[i, -1, b]),
                    float(res.fisher_relative_se[i, -1, b]),
                ]
                for i, c in enumerate(res.configs)
                for b, sig in enumerate(res.sigma_centers)
            ],  # fmt: skip
        ),
    }


def _record(result: Result) -> dict:
    """Everything of the run for ``results.json``."""
    from .. import train as T

    s, res = result.settings, result.sweep
    base, ev = s.base, s.evaluation
    weightings, caps = list(s.weightings), list(s.capacities)
    return {
        "settings": {
            "mixture": mixture_reference(base.mixture, s.source),
            "weightings": weightings,
            "capacities": caps,
            "quick": s.quick,
            **s.budget,
            "schedule": "ve",
            "sigma_min": base.sigma_min,
            "sigma_max": float(base.build_schedule().sigma_max),
            "optimizer": base.optimizer,
            "learning_rate": base.learning_rate,
            "parameterization": base.parameterization,
            "noise_sampling": base.noise_sampling,
            "eval_seed": ev.seed,
            "sigma_data": T.sigma_data(base.mixture),
            "weighting_params": _jsonable_params(s.weighting_params),
            "matrix_max_weight": float(T.MATRIX_MAX_WEIGHT),
        },
        "seeds": list(s.seeds),
        "versions": versions("jax", "optax", "numpy", machine=True, devices=True),
        "timings": {**res.timings, "wall_s": result.wall},
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
        "fisher_relative": res.fisher_relative,
        "fisher_relative_se": res.fisher_relative_se,
        "loss_every_10_steps": res.loss[:, ::10],
        "num_checkpoints": len(res.checkpoint_steps),
    }


def _jsonable_params(params) -> dict:
    return {k: dict(v) for k, v in (params or {}).items()}


def write(result: Result, out) -> list[Path]:
    """The four figures, three CSV tables and ``results.json`` into ``out``; their paths."""
    from .._io import save_figure, write_csv, write_json

    out = Path(out)
    files = [save_figure(fig, out / name) for name, fig in _figures(result).items()]
    files += [write_csv(out / name, h, rows) for name, (h, rows) in _tables(result).items()]
    files.append(write_json(out / "results.json", _record(result)))
    return files


def summary(result: Result, out=None) -> str:
    """One line: configurations, steps, wall time, what was written."""
    where = f" to {out}" if out is not None else ""
    return (
        f"compare: {len(result.sweep.configs)} configurations, "
        f"{result.settings.budget['steps']} steps, wall {result.wall:.1f} s; "
        f"wrote {len(FIGURES)} figures and {len(TABLES)} tables{where}"
    )


def run(args: argparse.Namespace) -> int:
    """Check the inputs, run the comparison, write every file under ``args.out``."""
    return inp.run_command(args, settings_from_args, compute, write, summary)
