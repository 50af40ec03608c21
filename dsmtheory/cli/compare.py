r"""``dsmtheory compare``: σ² heuristic vs optimal weightings on a Gaussian mixture.

Trains MLP score models (capacities relative to the dimension, 12.5/50/250/500 × D
parameters: 25/100/500/1000 in 2-D, 800/3200/16000/32000 in 64-D; several seeds) with the
weightings ``simple`` (Song's σ²), ``matrix_optimal`` (W* = Cov[s_c | x_t]⁻¹), ``c_star``
(c*(t)σ²), ``edm``, ``min_snr``, ``soft_min_snr`` and the learned ``edm2_learned`` (EDM2's
log-variance u(σ)) and ``online_c_star`` (the online ĉ*) as one vmapped program
(:func:`dsmtheory.train.sweep`), and writes figures, CSV and JSON: energy distance vs steps,
per-example gradient std per σ, exact Fisher divergence per σ (absolute and relative to
tr I_t), the capacity ablation (Zhang et al. 2508.01597 protocol, FORMULAS.md §7), the end
metrics with standard errors over seeds, and, with a learned weighting in the run, its
multiplier over the exact c* per σ bin during training (:func:`learned_ratios`).

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

#: the weightings that learn or estimate c* while the model trains (as
#: :data:`dsmtheory.train.STATEFUL_WEIGHTINGS`); a run with one of them also writes
#: :data:`LEARNED_FILES`
LEARNED = ("edm2_learned", "online_c_star")
WEIGHTINGS = ("simple", "matrix_optimal", "c_star", "edm", "min_snr", "soft_min_snr", *LEARNED)
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
TABLES = ("summary.csv", "energy_distance.csv", "per_sigma.csv", "end_metrics.csv",
          "per_sigma_mean.csv", "results.json")  # fmt: skip
#: written only when a :data:`LEARNED` weighting was run: the figure and table of the learned
#: multiplier over the exact c* per σ bin, and the report's findings (one line per weighting)
LEARNED_FILES = ("learned_vs_exact_c_star.png", "learned_vs_exact_c_star.csv", "findings.json")
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
        exact_c_star: ``(value, stderr)`` arrays ``(b,)`` of the exact $c^*$ at the σ-bin
            centres (:func:`exact_c_star_bins`) when a :data:`LEARNED` weighting was run,
            else None.
    """

    settings: Settings
    sweep: object
    wall: float
    exact_c_star: tuple | None = None


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
    wall = time.perf_counter() - t0
    exact = None
    if any(w in LEARNED for w in s.weightings):
        exact = exact_c_star_bins(s.base.mixture, res.lam_edges, quick=s.quick)
    return Result(s, res, wall, exact)


def exact_c_star_bins(gm, lam_edges, *, quick: bool = False, seed: int = 0):
    r"""The exact $c^*(\lambda)=D/d_{\rm eff}$ at the centres of the λ bins, with its standard
    error: the expectation engine's deterministic rule in D ≤ 3 (stderr 0), its Monte Carlo
    rule above with :data:`C_STAR_TABLE`'s draws (1000 quick, 20000 full; key ``seed``).

    Returns:
        ``(value, stderr)``, float64 arrays ``(b,)``.
    """
    import jax

    from .. import optimal

    lam_edges = np.asarray(lam_edges, dtype=np.float64)
    centres = 0.5 * (lam_edges[1:] + lam_edges[:-1])
    opts = {}
    if gm.dim > 3:
        draws = C_STAR_TABLE["quick" if quick else "full"][1]
        opts = dict(method="monte_carlo", key=jax.random.PRNGKey(seed), num_samples=draws)
    est = optimal.c_star_of_lambda(gm, centres, full_output=True, **opts)
    return np.asarray(est.value, np.float64), np.asarray(est.stderr, np.float64)


def _mean_se(a: np.ndarray, axis: int = 0):
    """Mean and standard error sd/√n (ddof 1; NaN for n = 1) over ``axis``."""
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[axis]
    se = a.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(a.mean(axis), np.nan)
    return a.mean(axis=axis), se


def learned_ratios(sweep, c_star, c_star_se, dim: int) -> dict | None:
    r"""The learned multiplier over the exact $c^*$ per σ bin and checkpoint, mean ± se over
    seeds, for every :data:`LEARNED` weighting of ``sweep`` (None if it has none).

    Per seed, checkpoint $k$ and bin $b$ (centre $\lambda_b$, $\sigma_b^2=e^{-\lambda_b}$ on
    compare's VE schedule):

    * ``ratio`` $r_b=\omega_k(\lambda_b)/c^*(\lambda_b)$, the ε-space multiplier the state
      applies (``sweep.multiplier``) over the exact value; not normalised, because both
      weightings estimate $c^*$ itself (EDM2's loss with $D\,u$ per example, and
      $\hat c^*=D/\hat L$), so 1 is exact (docs/c-star-own-model.md);
    * ``normalised`` $r_b/\exp(\overline{\log r})$, the curve divided by its geometric mean
      over the bins (the shape, as in docs/c-star-own-model.md);
    * ``predicted`` $d_{\rm eff}/(d_{\rm eff}+\sigma_b^2\mathrm{FD}_b)$ with
      $d_{\rm eff}=D/c^*$ and the run's exact per-bin Fisher divergence $\mathrm{FD}_b$
      (``sweep.fisher``): the ratio a model of that error gives at the optimum of the
      learned weight (derivation ``edm2_learned_weighting``).

    Standard errors are sd/√n over the n seeds; that of ``ratio`` also carries the Monte
    Carlo error of $c^*$ (common to the seeds), added in quadrature:
    $\sqrt{\mathrm{se}^2_{seeds}+(\bar r\,\mathrm{se}(c^*)/c^*)^2}$.

    Args:
        sweep: a :class:`dsmtheory.train.SweepResult` (``configs``, ``multiplier``
            ``(n, c, b)``, ``fisher`` ``(n, c, b)``, ``lam_edges``).
        c_star, c_star_se: ``(b,)`` the exact $c^*$ at the bin centres and its stderr.
        dim: the data dimension D.

    Returns:
        ``{"weightings": L names, "capacities": C, "seeds": (L, C) ints, "ratio",
        "ratio_se", "normalised", "normalised_se": (L, C, c, b), "predicted",
        "predicted_se": (L, C, c, b)}``.
    """
    configs = list(sweep.configs)
    names = [w for w in LEARNED if any(c["weighting"] == w for c in configs)]
    if not names:
        return None
    caps = list(dict.fromkeys(c["capacity"] for c in configs))
    c_star = np.asarray(c_star, np.float64)
    rse_c = np.asarray(c_star_se, np.float64) / c_star
    lam_edges = np.asarray(sweep.lam_edges, np.float64)
    sig2 = np.exp(-0.5 * (lam_edges[1:] + lam_edges[:-1]))
    d_eff = dim / c_star
    mult = np.asarray(sweep.multiplier, np.float64)
    fisher = np.asarray(sweep.fisher, np.float64)
    n_ck, n_b = mult.shape[1], mult.shape[2]
    keys = ("ratio", "ratio_se", "normalised", "normalised_se", "predicted", "predicted_se")
    out = {k: np.full((len(names), len(caps), n_ck, n_b), np.nan) for k in keys}
    seeds = np.zeros((len(names), len(caps)), dtype=int)
    for i, w in enumerate(names):
        for j, cap in enumerate(caps):
            idx = [n for n, c in enumerate(configs) if c["weighting"] == w and c["capacity"] == cap]
            if not idx:
                continue
            seeds[i, j] = len(idx)
            r = mult[idx] / c_star
            rn = r / np.exp(np.mean(np.log(r), axis=-1, keepdims=True))
            pred = d_eff / (d_eff + sig2 * fisher[idx])
            m, se = _mean_se(r)
            out["ratio"][i, j], out["ratio_se"][i, j] = m, np.sqrt(se**2 + (m * rse_c) ** 2)
            out["normalised"][i, j], out["normalised_se"][i, j] = _mean_se(rn)
            out["predicted"][i, j], out["predicted_se"][i, j] = _mean_se(pred)
    return {"weightings": names, "capacities": caps, "seeds": seeds, **out}


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
    lr = _learned(result)
    if lr is not None:
        out[LEARNED_FILES[0]] = P.learned_vs_exact(
            res.sigma_centers,
            res.checkpoint_steps,
            lr["ratio"],
            lr["ratio_se"],
            lr["weightings"],
            lr["capacities"],
            predicted=lr["predicted"][:, :, -1],
        )
    return out


def _learned(result: Result) -> dict | None:
    """:func:`learned_ratios` of the run (None without a learned weighting)."""
    if result.exact_c_star is None:
        return None
    c, se = result.exact_c_star
    return learned_ratios(result.sweep, c, se, result.settings.base.mixture.dim)


def _groups_of(res) -> dict:
    """(weighting, capacity) -> config indices, in run order."""
    by: dict = {}
    for i, c in enumerate(res.configs):
        by.setdefault((c["weighting"], c["capacity"]), []).append(i)
    return by


def _end_metrics(res) -> tuple:
    """``end_metrics.csv``: per weighting and capacity, the final energy distance, total
    exact Fisher divergences and mean relative Fisher divergence over the σ bins, mean and
    se = sd/√n over the n seeds."""
    header = ["weighting", "capacity", "num_params", "seeds", "energy_distance",
              "energy_distance_se", "fisher_total", "fisher_total_se", "fisher_total_sigma2",
              "fisher_total_sigma2_se", "fisher_relative_mean", "fisher_relative_mean_se",
              "fisher_total_sigma2_mc_se"]  # fmt: skip
    rows = []
    for (w, cap), idx in _groups_of(res).items():
        ed = _mean_se(res.energy_distance[idx, -1])
        ft = _mean_se(res.fisher_total[idx, -1])
        fs = _mean_se(res.fisher_total_sigma2[idx, -1])
        fr = _mean_se(np.mean(res.fisher_relative[idx, -1], axis=-1))
        mc = float(np.sqrt(np.mean(np.asarray(res.fisher_total_sigma2_se[idx, -1]) ** 2)))
        rows.append([w, cap, res.configs[idx[0]]["num_params"], len(idx), *ed, *ft, *fs, *fr,
                     mc])  # fmt: skip
    return header, [[float(v) if isinstance(v, np.floating) else v for v in r] for r in rows]


def _per_sigma_mean(res) -> tuple:
    """``per_sigma_mean.csv``: per weighting, capacity and σ bin, the final per-example
    gradient std and exact (absolute, relative) Fisher divergence, mean and se = sd/√n over
    the n seeds (``fisher_mc_se``: the Monte Carlo stderr of one seed, root mean square)."""
    header = ["weighting", "capacity", "sigma", "seeds", "grad_std", "grad_std_se", "fisher",
              "fisher_se", "fisher_relative", "fisher_relative_se", "fisher_mc_se"]  # fmt: skip
    rows = []
    for (w, cap), idx in _groups_of(res).items():
        g = _mean_se(res.grad_std[idx, -1])
        f = _mean_se(res.fisher[idx, -1])
        fr = _mean_se(res.fisher_relative[idx, -1])
        mc = np.sqrt(np.mean(np.asarray(res.fisher_se[idx, -1], np.float64) ** 2, axis=0))
        for b, sig in enumerate(res.sigma_centers):
            rows.append([w, cap, float(sig), len(idx), float(g[0][b]), float(g[1][b]),
                         float(f[0][b]), float(f[1][b]), float(fr[0][b]), float(fr[1][b]),
                         float(mc[b])])  # fmt: skip
    return header, rows


def _learned_table(result: Result, lr: dict) -> tuple:
    """``learned_vs_exact_c_star.csv``: per learned weighting, capacity and σ bin at the end
    of training, the exact c* (with its stderr) and the ratios of :func:`learned_ratios`."""
    res = result.sweep
    c, c_se = result.exact_c_star
    lam = 0.5 * (np.asarray(res.lam_edges)[1:] + np.asarray(res.lam_edges)[:-1])
    header = ["weighting", "capacity", "sigma", "lam", "seeds", "c_star", "c_star_se",
              "multiplier", "ratio", "ratio_se", "ratio_normalised", "ratio_normalised_se",
              "ratio_fd_predicted", "ratio_fd_predicted_se"]  # fmt: skip
    rows = []
    for i, w in enumerate(lr["weightings"]):
        for j, cap in enumerate(lr["capacities"]):
            if not lr["seeds"][i, j]:
                continue
            for b, sig in enumerate(res.sigma_centers):
                r = lr["ratio"][i, j, -1, b]
                rows.append([w, cap, float(sig), float(lam[b]), int(lr["seeds"][i, j]),
                             float(c[b]), float(c_se[b]), float(r * c[b]), float(r),
                             float(lr["ratio_se"][i, j, -1, b]),
                             float(lr["normalised"][i, j, -1, b]),
                             float(lr["normalised_se"][i, j, -1, b]),
                             float(lr["predicted"][i, j, -1, b]),
                             float(lr["predicted_se"][i, j, -1, b])])  # fmt: skip
    return header, rows


def findings(result: Result) -> dict | None:
    """The report's findings (``findings.json``): one line per learned weighting, the end
    of training at the largest capacity; None without a learned weighting."""
    lr = _learned(result)
    if lr is None:
        return None
    sig = np.asarray(result.sweep.sigma_centers)
    j = int(np.argmax(lr["capacities"]))
    rows = []
    for i, w in enumerate(lr["weightings"]):
        r, se = lr["ratio"][i, j, -1], lr["ratio_se"][i, j, -1]
        k = int(np.argmax(np.abs(r - 1.0)))
        inside = int(np.sum(np.abs(r - 1.0) <= 0.1))
        rows.append([w, f"{np.min(r):.3f} – {np.max(r):.3f}",
                     f"{r[k]:.3f} ± {se[k]:.2g} at σ = {sig[k]:.3g}",
                     f"{inside} of {len(r)}", str(int(lr["seeds"][i, j]))])  # fmt: skip
    steps = int(result.sweep.checkpoint_steps[-1])
    return {
        "title": "Training: learned vs exact c*",
        "tables": [
            {
                "caption": f"Learned ε-space multiplier / exact c* per σ bin after {steps} "
                f"steps, capacity {lr['capacities'][j]} (mean ± se over seeds; 1 is exact; "
                "learned_vs_exact_c_star.csv has every bin and capacity)",
                "header": [
                    "weighting",
                    "ratio range over σ bins",
                    "farthest from 1",
                    "bins within 10 %",
                    "seeds",
                ],  # fmt: skip
                "rows": rows,
            }
        ],
    }


def _tables(result: Result) -> dict:
    """file name -> (header, rows) of the CSV tables."""
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
    out = {
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
        "end_metrics.csv": _end_metrics(res),
        "per_sigma_mean.csv": _per_sigma_mean(res),
    }
    lr = _learned(result)
    if lr is not None:
        out[LEARNED_FILES[1]] = _learned_table(result, lr)
    return out


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
        "multiplier": res.multiplier,
        **_learned_record(result),
    }


def _learned_record(result: Result) -> dict:
    lr = _learned(result)
    if lr is None:
        return {}
    c, se = result.exact_c_star
    return {"exact_c_star": c, "exact_c_star_se": se, "learned_vs_exact": lr}


def _jsonable_params(params) -> dict:
    return {k: dict(v) for k, v in (params or {}).items()}


def write(result: Result, out) -> list[Path]:
    """The four figures, three CSV tables and ``results.json`` into ``out``; their paths."""
    from .._io import save_figure, write_csv, write_json

    out = Path(out)
    files = [save_figure(fig, out / name) for name, fig in _figures(result).items()]
    files += [write_csv(out / name, h, rows) for name, (h, rows) in _tables(result).items()]
    files.append(write_json(out / "results.json", _record(result)))
    found = findings(result)
    if found is not None:
        files.append(write_json(out / LEARNED_FILES[2], found))
    return files


def summary(result: Result, out=None) -> str:
    """What was run and written; with a learned weighting, its end ratio range per line."""
    where = f" to {out}" if out is not None else ""
    learned = result.exact_c_star is not None
    n_fig, n_tab = len(FIGURES) + learned, len(TABLES) + learned
    lines = [
        f"compare: {len(result.sweep.configs)} configurations, "
        f"{result.settings.budget['steps']} steps, wall {result.wall:.1f} s; "
        f"wrote {n_fig} figures and {n_tab} tables{where}"
    ]
    found = findings(result)
    for row in found["tables"][0]["rows"] if found else []:
        lines.append(f"  {row[0]}: learned/exact c* {row[1]} over the σ bins (largest capacity)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Check the inputs, run the comparison, write every file under ``args.out``."""
    return inp.run_command(args, settings_from_args, compute, write, summary)
