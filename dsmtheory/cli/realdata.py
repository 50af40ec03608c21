r"""``dsmtheory realdata``: what the toolkit says about realistic, 64-dimensional data.

For each built-in data set (``--quick``: digits with K = 10; full: digits with K = 50 and
image patches with K = 20; or ``--mixture`` names/files), with the regularisation floor
kept and clipped to exact zeros (``rank_tol`` = :data:`RANK_TOL`):

* $c^*(\sigma)$ and the effective dimension $d_{\rm eff}(\sigma)=D/c^*(\sigma)$
  (:func:`dsmtheory.optimal.c_star_curve`, method ``auto``: Monte Carlo with standard errors
  at D = 64), with the c(σ) of σ² (c = 1) and of EDM with $\sigma_d$ = the data's std
  ($1+\sigma^2/\sigma_d^2$) overlaid, and the low-noise limit $D/\bar d$,
  $\bar d=\sum_k\pi_k\,\mathrm{rank}\,\Sigma_k$ (FORMULAS.md §8);
* which registry weighting has the shape of c* (the spread over σ of
  $\log(c_w/c^*)$, scale-free because a constant factor in the weight is irrelevant);
* the importance-sampling comparison of noise densities (P11): the second moment
  $\int w^2m_2/p$ of the schedule's density, Kingma–Gao's, Sun–Shi's and the optimum
  $p^*\propto w\sqrt{m_2}$ against the Cauchy–Schwarz bound, for the objective weights σ²
  and c*σ², with $m_2=4D/(\sigma^2c^*)$ from the same c* curve;
* a short ``compare`` on the first data set (:mod:`dsmtheory.cli.compare` with a small
  budget: :data:`COMPARE_QUICK` / :data:`COMPARE_FULL`).

Writes ``c_star_deff.csv``, ``shape_distance.csv``, ``importance_sampling.csv``, one
``c_star_deff_<name>.png`` per data set, ``is_densities.png``, ``findings.json`` (the
summary the ``reproduce`` report opens with) and ``compare/`` (the compare's own files).
Needs the optional extra ``pip install "dsmtheory[data]"`` for the built-in data sets.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import _inputs as inp
from ._errors import UsageError
from ._meta import versions

NAME = "realdata"
HELP = "c*(sigma), d_eff(sigma), densities and a short compare on realistic 64-D data"

#: the data sets of the quick and the full run
QUICK_MIXTURES = ("digits:10",)
FULL_MIXTURES = ("digits:50", "patches:20")
#: the clipping threshold of the second variant (absolute; 10 × scikit-learn's reg_covar)
RANK_TOL = 1e-5
#: σ grid: 1e-3 to 10, three (quick) or six (full) points a decade, so 1e-3, 1e-2, 0.1, 1, 10
#: are on it
SIGMA_RANGE = (1e-3, 10.0)
POINTS_PER_DECADE = {"quick": 3, "full": 6}
#: Monte Carlo draws per σ (None: the engine's default, 20000)
NUM_SAMPLES = {"quick": 1000, "full": None}
#: the σ values of the findings table
REPORT_SIGMAS = (1e-3, 1e-2, 0.1, 1.0)
#: weightings whose shape is compared with c* (σ_d of edm/soft_min_snr from the data)
SHAPE_WEIGHTINGS = ("simple", "edm", "min_snr", "soft_min_snr")
#: the short compare: weightings, capacities, seeds, steps
COMPARE_QUICK = dict(weightings=("simple", "c_star", "edm"), capacities=("50D",), seeds=2,
                     steps=200, checkpoints=1)  # fmt: skip
COMPARE_FULL = dict(weightings=("simple", "matrix_optimal", "c_star", "edm", "soft_min_snr"),
                    capacities=("50D", "250D"), seeds=3, steps=2000)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's options."""
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--quick", action="store_true", help="digits K = 10 only, coarse grid (about a minute)"
    )
    parser.add_argument(
        "--mixture",
        action="append",
        default=None,
        help=f"{inp.MIXTURE_SPEC_HELP} (repeatable; default: digits:10 with --quick, "
        "digits:50 and patches:20 without)",
    )
    parser.add_argument("--no-compare", action="store_true", help="skip the short compare")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of the Monte Carlo")


class Settings(NamedTuple):
    """The checked inputs.

    Attributes:
        mixtures: label → ``(mixture, clipped mixture or None)``; the clipped one is the
            same fit with ``rank_tol`` (data-set names only).
        sigmas: the σ grid.
        num_samples: Monte Carlo draws per σ (``None``: the engine's default).
        quick: the quick budget.
        compare: the :class:`dsmtheory.cli.compare.Settings` of the short compare, or None.
        seed: the PRNG seed.
    """

    mixtures: dict
    sigmas: np.ndarray
    num_samples: int | None
    quick: bool
    compare: object
    seed: int


class Result(NamedTuple):
    """What :func:`compute` returns: the settings, the per-variant curves, the shape
    distances, the importance-sampling rows, the compare result (or None) and timings."""

    settings: Settings
    curves: dict
    shapes: list
    importance: list
    densities: dict
    compare: object
    timings: dict


def _clipped_spec(spec: str) -> str | None:
    from .. import datasets

    if not datasets.is_spec(spec):
        return None
    _, kwargs = datasets.parse_spec(spec)
    return None if "rank_tol" in kwargs else f"{spec.strip()}:rank_tol={RANK_TOL:g}"


def settings(mixtures=None, *, quick: bool = False, compare: bool = True, seed: int = 0):
    """Check the inputs and load the mixtures (UsageError naming the option)."""
    from . import compare as cmp

    specs = list(mixtures) if mixtures else list(QUICK_MIXTURES if quick else FULL_MIXTURES)
    seed = inp.check_int(seed, "--seed", minimum=0, maximum=inp.SEED_MAX)
    loaded = {}
    for spec in specs:
        if not isinstance(spec, str):
            raise UsageError(f"--mixture must be a name or a file, got {spec!r}")
        gm = inp.load_mixture(spec)
        clipped = _clipped_spec(spec)
        loaded[spec] = (gm, inp.load_mixture(clipped) if clipped else None)
    mode = "quick" if quick else "full"
    lo, hi = SIGMA_RANGE
    n = int(round(np.log10(hi / lo) * POINTS_PER_DECADE[mode])) + 1
    sigmas = np.geomspace(lo, hi, n)
    cs = None
    if compare:
        first = specs[0]
        kw = dict(COMPARE_QUICK if quick else COMPARE_FULL)
        cs = cmp.settings(loaded[first][0], quick=True, progress=False, source=first, **kw)
    return Settings(loaded, sigmas, NUM_SAMPLES[mode], bool(quick), cs, seed)


def settings_from_args(args) -> Settings:
    """:class:`Settings` from the parsed command line."""
    return settings(args.mixture, quick=args.quick, compare=not args.no_compare, seed=args.seed)


def _curve(gm, sigmas, num_samples, seed):
    import jax

    from .. import optimal

    est = optimal.c_star_curve(
        gm, sigmas, method="auto", num_samples=num_samples, key=jax.random.PRNGKey(seed),
        full_output=True,
    )  # fmt: skip
    c = np.asarray(est.value, dtype=np.float64)
    c_se = np.asarray(est.stderr, dtype=np.float64)
    d = gm.dim / c
    return {
        "c_star": c,
        "c_star_se": c_se,
        "d_eff": d,
        "d_eff_se": d * c_se / c,  # delta method, d = D / c
        "mean_rank": float(optimal.mean_rank(gm)),
        "method": est.method,
        "rule": est.rule,
    }


def _overlays(gm, sigmas) -> dict:
    """c(σ) of the shape weightings, σ_d of EDM/Soft-Min-SNR the data's."""
    from .. import optimal
    from .. import train as T

    lam = -2.0 * np.log(sigmas)
    params = T.data_weighting_params(gm, SHAPE_WEIGHTINGS)
    return {
        w: np.asarray(optimal.equivalent_c(w, lam, **params.get(w, {})), dtype=np.float64)
        for w in SHAPE_WEIGHTINGS
    }


def _importance(label, gm, sigmas, c_star):
    """Rows ``[mixture, objective weight, density, second moment, / bound]`` and the
    densities of the σ² objective."""
    from .. import optimal, schedules

    lam = -2.0 * np.log(sigmas[::-1])  # increasing λ
    c = c_star[::-1]
    sched = schedules.get("ve", sigma_min=float(sigmas[0]), sigma_max=float(sigmas[-1]))
    p = np.asarray(sched.density(lam), dtype=np.float64)
    sig2 = np.exp(-lam)
    m2 = 4.0 * gm.dim / (sig2 * c)  # 4R at θ* (optimal.label_noise_second_moment)
    rows, dens = [], {}
    for wname, cw in (("sigma2", np.ones_like(c)), ("c_star", c)):
        w = p * sig2 * cw
        cmp = optimal.compare_densities(lam, w, m2, loss=m2 / 4.0, baseline=p)
        for dname, v in cmp.second_moments.items():
            rows.append([label, wname, dname, float(v), float(v / cmp.bound)])
        if wname == "sigma2":
            dens = {k: v[::-1] for k, v in cmp.densities.items()}
    return rows, dens


def compute(s: Settings) -> Result:
    """Every curve, the shape distances, the importance sampling and the short compare."""
    from . import compare as cmp

    timings = {}
    curves, shapes, importance, densities = {}, [], [], {}
    for label, (gm, clipped) in s.mixtures.items():
        t0 = time.perf_counter()
        variants = {"floor kept": _curve(gm, s.sigmas, s.num_samples, s.seed)}
        if clipped is not None:
            variants[f"rank_tol={RANK_TOL:g}"] = _curve(clipped, s.sigmas, s.num_samples, s.seed)
        over = _overlays(gm, s.sigmas)
        curves[label] = {"variants": variants, "overlays": over, "dim": gm.dim,
                         "sigma_data": _sigma_data(gm)}  # fmt: skip
        c = variants["floor kept"]["c_star"]
        for w, cw in over.items():
            r = np.log(cw / c)
            shapes.append([label, w, float(np.std(r)), float(np.max(np.abs(r - r.mean())))])
        rows, dens = _importance(label, gm, s.sigmas, c)
        importance += rows
        densities[label] = dens
        timings[label] = time.perf_counter() - t0
    comp = None
    if s.compare is not None:
        t0 = time.perf_counter()
        comp = cmp.compute(s.compare)
        timings["compare"] = time.perf_counter() - t0
    return Result(s, curves, shapes, importance, densities, comp, timings)


def _sigma_data(gm) -> float:
    from .. import train as T

    return T.sigma_data(gm)


def _at(sigmas, values, at):
    """values at the grid points nearest (in log σ) to ``at``."""
    idx = [int(np.argmin(np.abs(np.log(sigmas / a)))) for a in at]
    return [values[i] for i in idx]


def findings(result: Result) -> dict:
    """The summary the report opens with: per mixture c* and d_eff at a few σ (± se), the
    best weighting by each criterion, the compare winner with standard errors."""
    s = result.settings
    rows = []
    for label, cur in result.curves.items():
        for vname, v in cur["variants"].items():
            cs = _at(s.sigmas, list(zip(v["c_star"], v["c_star_se"], strict=True)), REPORT_SIGMAS)
            ds = _at(s.sigmas, list(zip(v["d_eff"], v["d_eff_se"], strict=True)), REPORT_SIGMAS)
            rows.append(
                [label, vname, f"{cur['dim'] / v['mean_rank']:.4g}"]
                + [f"{c:.4g} ± {se:.1g}" for c, se in cs]
                + [f"{d:.4g} ± {se:.1g}" for d, se in ds]
            )
    head = ["mixture", "covariances", "D/d̄"]
    head += [f"c*({a:g})" for a in REPORT_SIGMAS] + [f"d_eff({a:g})" for a in REPORT_SIGMAS]
    best = []
    for label in result.curves:
        shape = [r for r in result.shapes if r[0] == label]
        b = min(shape, key=lambda r: r[2])
        best.append([label, "shape of c* (spread of log c_w/c* over σ)", b[1], f"{b[2]:.3g}"])
        for wname in ("sigma2", "c_star"):
            isr = [r for r in result.importance if r[0] == label and r[1] == wname]
            isr = [r for r in isr if r[2] != "optimal"]
            bi = min(isr, key=lambda r: r[4])
            best.append(
                [label, f"importance sampling of the {wname} objective (second moment / "
                 "bound)", bi[2], f"{bi[4]:.4g}"]
            )  # fmt: skip
    tables = [
        {"caption": "c*(σ) and d_eff(σ) = D/c* (VE; Monte Carlo ± standard error)",
         "header": head, "rows": rows},
        {"caption": "Best by each criterion", "header": ["mixture", "criterion", "best",
                                                         "value"], "rows": best},
    ]  # fmt: skip
    if result.compare is not None:
        tables.append(_compare_table(result.compare))
    return {"title": "Realistic data (64-D fitted mixtures)", "tables": tables}


def _compare_table(comp) -> dict:
    res, s = comp.sweep, comp.settings
    rows = []
    by = {}
    for i, c in enumerate(res.configs):
        by.setdefault((c["weighting"], c["capacity"]), []).append(i)
    stats = []
    for (w, cap), idx in by.items():
        f = np.asarray([res.fisher_total_sigma2[i, -1] for i in idx])
        ed = np.asarray([res.energy_distance[i, -1] for i in idx])
        n = len(idx)
        se_f = float(f.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        se_e = float(ed.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        stats.append((w, cap, float(f.mean()), se_f, float(ed.mean()), se_e, n))
    for cap in s.capacities:
        here = [t for t in stats if t[1] == cap]
        wf = min(here, key=lambda t: t[2])
        we = min(here, key=lambda t: t[4])
        for t in sorted(here, key=lambda t: t[2]):
            mark = ("F" if t is wf else "") + ("E" if t is we else "")
            rows.append([str(cap), t[0], f"{t[2]:.4g} ± {t[3]:.2g}", f"{t[4]:.3g} ± {t[5]:.2g}",
                         str(t[6]), mark])  # fmt: skip
    return {
        "caption": f"Short compare on {s.source} ({s.budget['steps']} steps; mean ± se over "
        "seeds; F: lowest σ²-weighted Fisher divergence, E: lowest energy distance)",
        "header": ["capacity", "weighting", "∫p σ² F dλ", "energy distance", "seeds", "best"],
        "rows": rows,
    }


def _csv_name(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")


def write(result: Result, out) -> list[Path]:
    """The tables, figures, ``findings.json`` and the compare's files under ``compare/``."""
    from .._io import save_figure, write_csv, write_json
    from ..mixture_io import reference
    from ..plots.realdata import c_star_deff_figure, densities_over_sigma_figure
    from . import compare as cmp

    s = result.settings
    out = Path(out)
    files = []
    rows = []
    for label, cur in result.curves.items():
        for vname, v in cur["variants"].items():
            for i, sig in enumerate(s.sigmas):
                rows.append([label, vname, float(sig), v["c_star"][i], v["c_star_se"][i],
                             v["d_eff"][i], v["d_eff_se"][i], v["mean_rank"],
                             cur["overlays"]["edm"][i]])  # fmt: skip
        over = {"σ² (c = 1)": cur["overlays"]["simple"],
                f"EDM, σ_d = {cur['sigma_data']:.3g}": cur["overlays"]["edm"]}  # fmt: skip
        fig = c_star_deff_figure(s.sigmas, cur["variants"], over, cur["dim"], title=label)
        files.append(save_figure(fig, out / f"c_star_deff_{_csv_name(label)}.png"))
    files.append(write_csv(
        out / "c_star_deff.csv",
        ["mixture", "covariances", "sigma", "c_star", "c_star_se", "d_eff", "d_eff_se",
         "mean_rank", "edm_c"], rows,
    ))  # fmt: skip
    files.append(write_csv(out / "shape_distance.csv",
                           ["mixture", "weighting", "sd_log_ratio", "max_abs_log_ratio"],
                           result.shapes))  # fmt: skip
    files.append(write_csv(out / "importance_sampling.csv",
                           ["mixture", "objective", "density", "second_moment", "over_bound"],
                           result.importance))  # fmt: skip
    first = next(iter(result.densities))
    names = {
        "optimal": "optimal p* ∝ w√m₂",
        "sun_shi_std": "Sun & Shi (∝ std)",
        "kingma_gao": "Kingma & Gao (∝ w·loss)",
        "baseline": "VE schedule (baseline)",
    }
    shown = {names.get(k, k): v for k, v in result.densities[first].items()}
    files.append(save_figure(
        densities_over_sigma_figure(s.sigmas, shown,
                                    title=f"{first}: densities for the σ² objective"),
        out / "is_densities.png",
    ))  # fmt: skip
    if result.compare is not None:
        files += cmp.write(result.compare, out / "compare")
    meta = findings(result)
    meta["settings"] = {
        "mixtures": {k: reference(g, k) for k, (g, _) in s.mixtures.items()},
        "rank_tol": RANK_TOL,
        "sigmas": s.sigmas,
        "num_samples": s.num_samples,
        "quick": s.quick,
        "seed": s.seed,
        "method": {
            k: {v: c["rule"] for v, c in cur["variants"].items()}
            for k, cur in result.curves.items()
        },  # fmt: skip
    }
    meta["timings_s"] = result.timings
    meta["versions"] = versions("jax", "numpy", "scipy", "sklearn")
    files.append(write_json(out / "findings.json", meta))
    return files


def summary(result: Result, out=None) -> str:
    """A few lines: c* at the report σ per mixture, the compare winner, the time."""
    lines = []
    for label, cur in result.curves.items():
        v = cur["variants"]["floor kept"]
        cs = _at(result.settings.sigmas, list(v["c_star"]), REPORT_SIGMAS)
        at = ", ".join(f"c*({a:g}) = {c:.3g}" for a, c in zip(REPORT_SIGMAS, cs, strict=True))
        lines.append(f"realdata {label}: {at}")
    t = sum(result.timings.values())
    where = f"; wrote to {out}" if out is not None else ""
    lines.append(f"realdata: {t:.1f} s{where}")
    return "\n".join(lines)


def run(args) -> int:
    """Check, compute, write, print the summary."""
    return inp.run_command(args, settings_from_args, compute, write, summary)
