r"""``dsmtheory targets --out DIR [--mixture FILE] [--proposal FILE] [--quick]``: lower-variance
targets beyond first-order DSM (FORMULAS.md §3 items 15–17).

On a log-SNR grid (VP by default, ``--process ve`` for VE) and the 2-D ring of 8 modes (or
``--mixture``), computes with :mod:`dsmtheory.targets`:

* $R_1$, $R_2$ (order-1 and order-2 DSM irreducible variance, Rao–Blackwellized MC);
* TSM variance, Cov(TSM, DSM), the optimal mix κ* (closed form $\mathrm{sigmoid}(\lambda-\log J_0)$
  and nested-MC estimate) and its variance; the DSM/TSM crossing $\lambda_\times=\log J_0$;
* IWSM vs plain DSM per-sample variances (grid quadrature, $D\le2$) for a proposal that keeps
  every other component of the mixture (or ``--proposal``).

Writes ``targets.csv`` (one row per λ), ``targets.json`` (settings, versions, headline
numbers, timings) and ``targets-heteroskedasticity.png``, ``targets-tsm.png``,
``targets-iwsm.png``. Every file is written whole or not at all.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import numpy as np

from ._meta import versions

NAME = "targets"
HELP = "Order-2 DSM, TSM and IWSM targets: exact variances per noise level on a mixture."

COLUMNS = [
    "lam",
    "alpha",
    "sigma",
    "R1",
    "R1_se",
    "R2",
    "R2_se",
    "Lambda2_star_over_sigma4",
    "var_tsm",
    "var_tsm_se",
    "cov_tsm_dsm",
    "cov_tsm_dsm_se",
    "kappa_star",
    "kappa_mc",
    "kappa_mc_se",
    "var_mix",
    "var_mix_se",
    "iwsm_objective",
    "var_dsm_loss",
    "var_sm",
    "var_iwsm",
    "iwsm_over_dsm",
    "ess_fraction",
]


def add_arguments(parser) -> None:
    """Options of ``dsmtheory targets``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--mixture", default=None, help="JSON mixture file (default: ring of 8)")
    parser.add_argument(
        "--proposal",
        default=None,
        help="JSON proposal mixture for IWSM (default: every other component of the mixture)",
    )
    parser.add_argument("--process", default="vp", help="forward process: vp (default) or ve")
    parser.add_argument("--quick", action="store_true", help="coarser grids (< 20 s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")


def _read_mixture(path, flag):
    from .. import mixture

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{flag} must be a JSON file, got {path!r} (not found)")
    return mixture.from_json(p)


def _half_proposal(gm):
    """Every other component, weights renormalised (the whole mixture if K = 1)."""
    from ..mixture import GaussianMixture

    if gm.num_components == 1:
        return gm
    idx = np.arange(0, gm.num_components, 2)
    w = np.asarray(gm.weights)[idx]
    return GaussianMixture(w / w.sum(), np.asarray(gm.means)[idx], np.asarray(gm.covs)[idx])


def _mix_gain_at(gm, lam_x, process, fisher_trace_0, key, n_rb):
    """R1 / V(kappa*) evaluated at lam_x itself (not interpolated from the lam grid, on
    which the ratio is too sharply peaked to interpolate). V(kappa*) by its closed form
    with tr I_t = D/sigma^2 - R1; R1 by quadrature for D <= 2 (the gain amplifies the
    relative error of R1 by R1/V, about 10 here, too much for a Monte Carlo R1), else by
    Rao-Blackwellization with 16x the per-level sample count."""
    from .. import schedules
    from .. import targets as T
    from ..variance import irreducible_variance

    a, s = (float(v) for v in schedules.alpha_sigma(lam_x, process))
    if gm.dim <= 2:
        r1 = float(irreducible_variance(gm, a, s, method="quadrature").value)
    else:
        r1 = float(
            irreducible_variance(
                gm, a, s, key=jax.random.fold_in(key, 7), num_samples=16 * n_rb
            ).value
        )
    tr_it = gm.dim / s**2 - r1
    kap = float(T.kappa_star(lam_x, fisher_trace_0, gm.dim))
    v_mix = float(T.mix_variance(kap, a, s, fisher_trace_0, tr_it, gm.dim))
    return r1 / v_mix


def _crossing(lam, a, b):
    """λ where log a − log b changes sign (linear interpolation), or NaN."""
    d = np.log(a) - np.log(b)
    idx = np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]
    if idx.size == 0:
        return float("nan")
    i = idx[0]
    return float(lam[i] - d[i] * (lam[i + 1] - lam[i]) / (d[i + 1] - d[i]))


def run(args) -> int:
    """Compute everything, write the files, print a summary."""
    from .. import mixture, schedules
    from .. import targets as T
    from .._io import save_figure, write_csv, write_json
    from ..plots import targets as plots

    t_start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {out}")
    if args.process not in schedules.PROCESSES:
        raise ValueError(f"unknown --process {args.process!r}; known: ve, vp")
    gm = mixture.ring() if args.mixture is None else _read_mixture(args.mixture, "--mixture")
    if args.proposal is None:
        prop = _half_proposal(gm)
    else:
        prop = _read_mixture(args.proposal, "--proposal")
        if prop.dim != gm.dim:
            raise ValueError(
                f"--proposal must have the mixture's dimension {gm.dim}, got {prop.dim}"
            )
    quick = bool(args.quick)
    n_lam = 9 if quick else 25
    lam = np.linspace(-6.0, 10.0, n_lam)
    n_rb = 1024 if quick else 4096
    n_out, n_in = (512, 8) if quick else (2048, 16)
    grid = 201 if quick else 251  # IWSM weights need ~250 nodes/axis for 1e-9 (2-D ring)
    do_iwsm = gm.dim <= 2
    key = jax.random.PRNGKey(args.seed)
    timings = {}

    t0 = time.perf_counter()
    if gm.dim <= 2:
        i0 = T.fisher_trace(gm, method="grid", grid_size=2001 if gm.dim == 1 else grid)
    else:
        i0 = T.fisher_trace(gm, key=jax.random.fold_in(key, 99))
    timings["fisher"] = time.perf_counter() - t0
    j0 = i0.value / gm.dim
    lam_x = T.crossing_lambda(i0.value, gm.dim)

    rows = []
    t_het = t_tsm = t_iw = 0.0
    for i, lm in enumerate(lam):
        a, s = (float(v) for v in schedules.alpha_sigma(lm, args.process))
        ki = jax.random.fold_in(key, i)
        t0 = time.perf_counter()
        r1 = T.irreducible_target_variance(gm, a, s, 1, key=ki, num_samples=n_rb)
        r2 = T.irreducible_target_variance(gm, a, s, 2, key=ki, num_samples=n_rb)
        t1 = time.perf_counter()
        m = T.tsm_moments(gm, a, s, key=jax.random.fold_in(ki, 1), num_outer=n_out, num_inner=n_in)
        kap = float(T.kappa_star(lm, i0.value, gm.dim))
        t2 = time.perf_counter()
        if do_iwsm:
            c = T.iwsm_variance_comparison(gm, prop, a, s, grid_size=grid)
            iw = [
                c.objective,
                c.var_dsm,
                c.var_sm,
                c.var_iwsm,
                c.var_iwsm / c.var_dsm,
                c.ess_fraction,
            ]
        else:
            iw = [float("nan")] * 6
        t3 = time.perf_counter()
        t_het, t_tsm, t_iw = t_het + t1 - t0, t_tsm + t2 - t1, t_iw + t3 - t2
        lam2 = gm.dim**2 / r2.value
        rows.append(
            [
                float(lm),
                a,
                s,
                r1.value,
                r1.stderr,
                r2.value,
                r2.stderr,
                lam2 / s**4,
                m.var_tsm.value,
                m.var_tsm.stderr,
                m.cov.value,
                m.cov.stderr,
                kap,
                m.kappa.value,
                m.kappa.stderr,
                m.var_mix.value,
                m.var_mix.stderr,
                *iw,
            ]
        )
    timings.update(heteroskedasticity=t_het, tsm=t_tsm, iwsm=t_iw)
    tab = np.array(rows, dtype=float)
    col = {name: tab[:, j] for j, name in enumerate(COLUMNS)}

    t0 = time.perf_counter()
    figs = {
        "targets-heteroskedasticity.png": plots.heteroskedasticity_orders_figure(
            col["sigma"], col["R1"], col["R1_se"], col["R2"], col["R2_se"], gm.dim
        ),
        "targets-tsm.png": plots.tsm_mix_figure(
            lam,
            col["R1"],
            col["var_tsm"],
            col["var_tsm_se"],
            col["var_mix"],
            col["var_mix_se"],
            col["kappa_star"],
            lam_x,
        ),
    }
    if do_iwsm:
        figs["targets-iwsm.png"] = plots.iwsm_figure(
            lam, col["var_dsm_loss"], col["var_sm"], col["var_iwsm"], col["ess_fraction"]
        )
    timings["figures"] = time.perf_counter() - t0

    lam_x_mc = _crossing(lam, col["var_tsm"], col["R1"])
    kz = np.abs(col["kappa_mc"] - col["kappa_star"]) / np.maximum(col["kappa_mc_se"], 1e-300)
    summary = {
        "fisher_trace_0": {"value": i0.value, "stderr": i0.stderr, "method": i0.method},
        "J0": j0,
        "crossing_lambda_closed_form": lam_x,
        "crossing_lambda_mc_interpolated": lam_x_mc,
        "kappa_max_abs_z": float(np.max(kz)),
        "R2_sigma4_over_D(D+1)_at_max_lam": float(
            col["R2"][-1] * col["sigma"][-1] ** 4 / (gm.dim * (gm.dim + 1))
        ),
        "mix_gain_at_crossing": _mix_gain_at(gm, lam_x, args.process, i0.value, key, n_rb),
    }
    if do_iwsm:
        ratio = col["iwsm_over_dsm"]
        summary["iwsm_over_dsm_min"] = float(ratio.min())
        summary["iwsm_over_dsm_max"] = float(ratio.max())
        summary["iwsm_break_even_lambda"] = _crossing(lam, col["var_iwsm"], col["var_dsm_loss"])
    settings = {
        "mixture": gm.to_dict(),
        "mixture_source": args.mixture or "ring(num_modes=8, radius=2, std=0.25)",
        "proposal": prop.to_dict(),
        "proposal_source": args.proposal or "every other component of the mixture",
        "process": args.process,
        "lam_grid": lam.tolist(),
        "quick": quick,
        "seed": args.seed,
        "rb_samples": n_rb,
        "tsm_nested": [n_out, n_in],
        "iwsm_grid": f"{grid}^{gm.dim}" if do_iwsm else "skipped (needs D <= 2)",
        "model_for_iwsm": "moment-matched Gaussian of the mixture, noised",
    }
    timings["total"] = time.perf_counter() - t_start
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "targets.csv", COLUMNS, tab.tolist())
    for name, fig in figs.items():
        save_figure(fig, out / name)
    write_json(
        out / "targets.json",
        {
            "settings": settings,
            "summary": summary,
            "versions": versions("jax", "numpy", "matplotlib"),
            "timings_s": timings,
        },
    )
    print(f"dsmtheory targets: {gm!r}, process {args.process}, {n_lam} log-SNR levels")
    print(
        f"  J0 = trI0/D = {j0:.4g}; DSM/TSM crossing at lambda = log J0 = {lam_x:.3f} "
        f"(MC curves cross at {lam_x_mc:.3f})"
    )
    print(f"  kappa*: closed form vs nested MC, max |z| = {summary['kappa_max_abs_z']:.2f}")
    print(
        f"  optimal mix vs DSM variance at the crossing: "
        f"{summary['mix_gain_at_crossing']:.3g}x lower"
    )
    if do_iwsm:
        print(
            f"  IWSM/DSM variance ratio from {summary['iwsm_over_dsm_min']:.3g} to "
            f"{summary['iwsm_over_dsm_max']:.3g}; break-even at lambda = "
            f"{summary['iwsm_break_even_lambda']:.3f}"
        )
    print(f"  wrote {out} in {timings['total']:.1f} s")
    if not math.isfinite(timings["total"]):  # pragma: no cover
        return 1
    return 0
