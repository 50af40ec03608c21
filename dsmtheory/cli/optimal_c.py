r"""``dsmtheory optimal-c --out DIR``: which $c(t)$ in $\Lambda(t)=c(t)\,\sigma_t^2$?

For the default mixtures (1-D bimodal ±2 / std 0.25, 2-D ring of 8) and an optional user
mixture (``--mixture FILE``, JSON as written by :func:`dsmtheory.to_json`), computes from the
closed forms (FORMULAS.md §6):

* $c^*(\sigma)$, the homoskedastic multiplier (criterion (c)), with σ² ($c=1$), EDM
  ($\sigma_d$ = data std from ``gm.covariance()``), Min-SNR-5 and Soft-Min-SNR
  ($\sigma_d$ = data std) overlaid as $c=\Lambda/\sigma^2=\omega_\varepsilon$;
* the heteroskedasticity $R(\sigma)=D/(\sigma^2c^*)$ and the first-order check P9;
* residual variance per noise level (P16) for σ², c*, EDM, Min-SNR and the matrix W*;
* the sandwich tr Var(θ̂) of a small linear score model (criterion (d)) for σ², c*, EDM,
  Min-SNR, Soft-Min-SNR and the $a/b$ optimum, under ``--schedule``;
* the importance-sampling second moment (criterion (e), P11) of the schedule's density,
  $p^*\propto w\sqrt{m_2}$, Kingma–Gao's and Sun–Shi's densities.

Writes ``c_star.csv``, ``residual_variance.csv``, ``sandwich.csv``,
``importance_sampling.csv``, ``criteria.json`` (recommendations, mixtures, schedule,
versions, seed, timings) and ``optimal-*.png``; prints a summary. Every file is written
whole or not at all.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._meta import versions

NAME = "optimal-c"
_REPORT_SIGMAS = (0.05, 0.1, 0.25, 1.0, 4.0, 10.0)
HELP = "The variance-optimal c(t) in lambda(t) = c(t) sigma_t^2 on Gaussian mixtures."

OVERLAYS = ("simple", "edm", "min_snr", "soft_min_snr")
SANDWICH_LAM = (-8.0, 10.0)  # λ range of the sandwich and IS analyses (truncates the schedule)


def add_arguments(parser) -> None:
    """Options of ``dsmtheory optimal-c``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--mixture", default=None, help="JSON file of an extra mixture")
    parser.add_argument("--schedule", default="ve", help="sampling schedule (default ve)")
    parser.add_argument("--quick", action="store_true", help="coarser grids (< 20 s)")
    parser.add_argument(
        "--no-defaults",
        action="store_true",
        help="analyse only the --mixture file, not the default bimodal and ring mixtures",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random features")


def _mixtures(path, defaults=True):
    from .. import mixture

    gms = {"bimodal_1d": mixture.bimodal_1d(), "ring_2d": mixture.ring()} if defaults else {}
    if path is None and not defaults:
        raise ValueError("--no-defaults needs --mixture FILE")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--mixture must be a JSON file, got {path!r} (not found)")
        try:
            gm = mixture.from_json(p)
        except (OSError, KeyError) as exc:
            raise ValueError(f"--mixture {path!r} could not be read: {exc}") from exc
        gms[f"user_{p.stem}"] = gm
    return gms


def _plain(rows):
    """Rows of plain Python values (NumPy floats repr as ``np.float64(...)`` under NumPy 2)."""
    return [[v if isinstance(v, str) else float(v) for v in row] for row in rows]


def _data_std(gm) -> float:
    return math.sqrt(float(jnp.trace(gm.covariance())) / gm.dim)


def _overlay_params(name, sd):
    return {
        "edm": {"sigma_data": sd},
        "soft_min_snr": {"sigma_data": sd},
        "min_snr": {"gamma": 5.0},
    }.get(name, {})


def run(args) -> int:
    """Compute everything, write the files, print a summary."""
    from .. import optimal, sandwich, schedules, weightings
    from .._io import save_figure, write_csv, write_json
    from ..plots import optimal as plots

    t_start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {out}")
    if not isinstance(args.schedule, str) or args.schedule not in schedules.names():
        raise ValueError(
            f"unknown --schedule {args.schedule!r}; known: {', '.join(schedules.names())}"
        )
    base = schedules.get(args.schedule)
    lo = max(SANDWICH_LAM[0], base.lam_min)
    hi = min(SANDWICH_LAM[1], base.lam_max)
    sched = schedules.get(args.schedule, lam_min=lo, lam_max=hi)
    gms = _mixtures(args.mixture, not args.no_defaults)
    first = next(iter(gms))  # the mixture shown in the single-mixture figures
    timings = {}

    # ---- c*(σ) and overlays -----------------------------------------------------------
    t0 = time.perf_counter()
    n_sig = 25 if args.quick else 61
    sig = np.geomspace(1e-2, 1e2, n_sig)
    lam = -2.0 * np.log(sig)
    cstar, overlays, resid, s2j0, cm1, j0s = {}, {}, {}, {}, {}, {}
    rows = []
    nodes = {1: 100, 2: 32, 3: 12} if args.quick else {1: 200, 2: 48, 3: 16}
    tables = {}
    for name, gm in gms.items():
        if gm.dim > 3:
            raise ValueError(f"mixture {name} has dim {gm.dim}; optimal-c needs dim <= 3")
        c = np.asarray(optimal.c_star_curve(gm, sig, num_nodes=nodes[gm.dim]))
        # one interpolation table per mixture for the sandwich and IS sections
        tables[name] = optimal.OptimalWeighting(
            gm,
            lam_min=lo - 1.0,
            lam_max=hi + 1.0,
            num_grid=81 if args.quick else 161,
            num_nodes=nodes[gm.dim],
        )
        cstar[name] = c
        resid[name] = gm.dim / (sig**2 * c)
        j0 = optimal.small_noise_fisher(gm)
        j0s[name] = j0
        small = sig <= 0.3
        s2j0[name], cm1[name] = sig[small] ** 2 * j0, c[small] - 1.0
        sd = _data_std(gm)
        ov = {
            f"{w} ({name})": np.asarray(
                optimal.equivalent_c(w, jnp.asarray(lam), **_overlay_params(w, sd))
            )
            for w in OVERLAYS
        }
        overlays.update(ov)
        for i in range(n_sig):
            rows.append(
                [name, sig[i], lam[i], c[i], resid[name][i], *[float(v[i]) for v in ov.values()]]
            )
    header = ["mixture", "sigma", "lam", "c_star", "R", *[f"c_{w}" for w in OVERLAYS]]
    write_csv(out / "c_star.csv", header, _plain(rows))
    timings["c_star"] = time.perf_counter() - t0

    # ---- residual variance per noise level (P16) -------------------------------------
    t0 = time.perf_counter()
    sig_r = np.geomspace(0.03, 10.0, 8 if args.quick else 16)
    rv_rows, rv_raw, rv_sf = [], {}, {}
    for name, gm in gms.items():
        sd = _data_std(gm)
        d = gm.dim
        cs = np.asarray(optimal.c_star_curve(gm, sig_r, num_nodes=nodes[d]))
        r_ir = d / (sig_r**2 * cs)  # R = D / (σ² c*)
        lam_r = jnp.asarray(-2.0 * np.log(sig_r))
        mult = {
            "sigma2": np.ones_like(sig_r),
            "c_star": cs,
            "edm": np.asarray(optimal.equivalent_c("edm", lam_r, sigma_data=sd)),
            "min_snr": np.asarray(optimal.equivalent_c("min_snr", lam_r, gamma=5.0)),
        }
        for i, s in enumerate(sig_r):
            for wname, m in mult.items():
                big_lam = s**2 * m[i]  # scalar score weight: raw = Λ² R / D, scale-free R / D
                rv_rows.append([name, s, wname, big_lam**2 * r_ir[i] / d, big_lam, r_ir[i] / d])
            r = optimal.residual_variance(gm, 1.0, float(s), "matrix", num_nodes=nodes[d])
            rv_rows.append([name, s, "matrix_W*", r.raw, r.mean_weight, r.scale_free])
    for row in rv_rows:
        if row[0] == first:
            rv_raw.setdefault(row[2], []).append(row[3])
            rv_sf.setdefault(row[2], []).append(row[5])
    write_csv(
        out / "residual_variance.csv",
        ["mixture", "sigma", "weighting", "raw_per_dim", "mean_weight", "scale_free"],
        _plain(rv_rows),
    )
    timings["residual_variance"] = time.perf_counter() - t0

    # ---- sandwich tr Var(θ̂) (criterion (d)) -----------------------------------------
    t0 = time.perf_counter()
    key = jax.random.PRNGKey(args.seed)
    sw_rows, sw_best = [], {}
    n_lam = 24 if args.quick else 40
    for name, gm in gms.items():
        if gm.dim > 2:
            continue
        sd = _data_std(gm)
        model = sandwich.random_fourier_model(
            key, gm.dim, 4 if gm.dim == 1 else 3, sd**2, bandwidth=1.5
        )
        cfns = {
            "sigma2": weightings.get("simple"),
            "c_star": tables[name],
            "edm": weightings.get("edm", sigma_data=sd),
            "min_snr": weightings.get("min_snr", gamma=5.0),
            "soft_min_snr": weightings.get("soft_min_snr", sigma_data=sd),
        }
        sw_nodes = 48 if gm.dim == 1 else 10
        cfns["a_over_b"] = sandwich.optimal_scalar_weight(
            gm, model, sched, iterations=1 if args.quick else 2, num_lam=n_lam, num_nodes=sw_nodes
        )
        traces = {}
        for wname, cf in cfns.items():
            res = sandwich.sandwich_variance(
                gm, model, sched, cf, 1, num_lam=n_lam, num_nodes=sw_nodes
            )
            traces[wname] = res.trace
            sw_rows.append([name, wname, res.trace, res.fisher_divergence])
        best = min(traces, key=traces.get)
        sw_best[name] = {"best": best, "trace_per_sample": traces}
    write_csv(
        out / "sandwich.csv",
        ["mixture", "weighting", "trace_var_times_N", "fisher_divergence_of_theta_star"],
        _plain(sw_rows),
    )
    timings["sandwich"] = time.perf_counter() - t0

    # ---- importance sampling (criterion (e), P11) ------------------------------------
    t0 = time.perf_counter()
    lam_g = np.linspace(lo, hi, 201 if args.quick else 401)
    is_rows, is_best, dens_plot = [], {}, None
    for name, gm in gms.items():
        cvals_star = np.asarray(tables[name](jnp.asarray(lam_g)))
        p_sched = np.asarray(sched.density(jnp.asarray(lam_g)))
        sig2 = np.asarray(sched.sigma(jnp.asarray(lam_g))) ** 2
        m2 = 4.0 * gm.dim / (sig2 * cvals_star)  # 4R at θ* (label_noise_second_moment)
        for wname, cvals in (("sigma2", np.ones_like(lam_g)), ("c_star", cvals_star)):
            w = p_sched * sig2 * cvals  # objective weight Λ per unit λ
            loss = m2 / 4.0  # per-λ expected score loss at θ*: R
            cmp = optimal.compare_densities(lam_g, w, m2, loss=loss, baseline=p_sched)
            for dname, v in cmp.second_moments.items():
                is_rows.append([name, wname, dname, v, v / cmp.bound])
            is_best[f"{name}/{wname}"] = {k: v / cmp.bound for k, v in cmp.second_moments.items()}
            if name == first and wname == "sigma2":
                dens_plot = cmp.densities
    write_csv(
        out / "importance_sampling.csv",
        ["mixture", "objective", "density", "second_moment", "ratio_to_bound"],
        _plain(is_rows),
    )
    timings["importance_sampling"] = time.perf_counter() - t0

    # ---- figures ----------------------------------------------------------------------
    t0 = time.perf_counter()
    figs = {
        "optimal-c-star.png": plots.c_star_figure(
            sig, cstar, {k: v for k, v in overlays.items() if f"({first})" in k}
        ),
        "optimal-heteroskedasticity.png": plots.heteroskedasticity_figure(
            sig, resid, {k: g.dim for k, g in gms.items()}
        ),
        "optimal-first-order.png": plots.first_order_figure(s2j0, cm1),
        "optimal-residual-variance.png": plots.residual_variance_figure(
            sig_r,
            {k: np.asarray(v) for k, v in rv_raw.items()},
            {k: np.asarray(v) for k, v in rv_sf.items()},
            title=f"{first}: weighted residual variance per noise level",
        ),
        "optimal-densities.png": plots.densities_figure(
            lam_g, dens_plot, title=f"{first}, objective sigma^2, schedule {args.schedule}"
        ),
    }
    for fname, fig in figs.items():
        save_figure(fig, out / fname)
    timings["figures"] = time.perf_counter() - t0

    # ---- criteria table -----------------------------------------------------------------
    criteria = {
        "homoskedastic (c)": {
            k: {
                "c_star_at_sigma": dict(
                    zip(
                        (f"{s:g}" for s in _REPORT_SIGMAS),
                        # evaluated at these sigma (VE), not interpolated from the plot grid
                        np.asarray(
                            optimal.c_star_curve(
                                gms[k], np.asarray(_REPORT_SIGMAS), num_nodes=nodes[gms[k].dim]
                            )
                        ).tolist(),
                        strict=True,
                    )
                ),
                "J0": j0s[k],
            }
            for k in cstar
        },
        "sandwich (d)": sw_best,
        "importance_sampling (e)": is_best,
        "recommendation": {
            "(a) powers of sigma": "p = 2: Lambda = c sigma^2 "
            "(Lambda = c sigma leaves ~cD/sigma noise)",
            "(b) constant c": "irrelevant (argmin; Adam up to eps; SGD = learning rate x c)",
            "(c) homoskedastic": "c*(t) = D/(sigma^2 R) = 1/(1 - sigma^2 tr I_t / D)",
            "(d) sandwich": "omega* = Lambda/p proportional to a(t)/b(t); best per mixture above",
            "(e) fixed objective": "p* proportional to w sqrt(m2) (Cauchy-Schwarz)",
            "(f) finite capacity": "judge by an end metric, not by variance",
        },
    }
    timings["total"] = time.perf_counter() - t_start
    write_json(
        out / "criteria.json",
        {
            "command": "optimal-c",
            "quick": bool(args.quick),
            "seed": args.seed,
            "schedule": {
                "name": args.schedule,
                "lam_min": lo,
                "lam_max": hi,
                "process": sched.process,
            },
            "mixtures": {k: g.to_dict() for k, g in gms.items()},
            "criteria": criteria,
            "versions": versions("jax", "numpy", "scipy", "matplotlib"),
            "timings_s": timings,
        },
    )

    # ---- summary ------------------------------------------------------------------------
    print(
        f"dsmtheory optimal-c: schedule {args.schedule} (lam in [{lo:.3g}, {hi:.3g}]), "
        f"{len(gms)} mixtures, {timings['total']:.1f} s -> {out}"
    )
    for k in cstar:
        exact = criteria["homoskedastic (c)"][k]["c_star_at_sigma"]
        at = ", ".join(f"{s}: {exact[s]:.4f}" for s in ("0.1", "1", "10"))
        print(f"  c*({k}) at sigma {at}; J0 = {j0s[k]:.4g}")
    for k, v in sw_best.items():
        tr = ", ".join(f"{w} {t:.3g}" for w, t in v["trace_per_sample"].items())
        print(f"  sandwich N*trVar ({k}): {tr}; best: {v['best']}")
    for k, v in is_best.items():
        r = ", ".join(f"{d} {x:.3f}" for d, x in v.items())
        print(f"  IS second moment / bound ({k}): {r}")
    return 0
