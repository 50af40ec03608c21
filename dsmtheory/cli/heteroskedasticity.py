r"""``dsmtheory heteroskedasticity``: the irreducible DSM variance $R(\sigma)$ on a grid.

Writes ``heteroskedasticity.csv`` (sigma, alpha, lam, R, stderr, D/sigma^2),
``heteroskedasticity.png`` (log-log, with the $D/\sigma^2$ reference and the fitted low-σ
slope) and ``heteroskedasticity.json`` (settings, mixture, slope, versions), and prints a
short table. FORMULAS.md §4: $R\sim D/\sigma^2$ as σ → 0, a log-log slope of −2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

NAME = "heteroskedasticity"
HELP = "Irreducible DSM variance R(sigma) against D/sigma^2 (log-log slope -2 at low noise)."

METHODS = ("rao_blackwell", "quadrature", "auto")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's options."""
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--mixture", default=None, help="mixture JSON file (default: ring())")
    parser.add_argument("--process", choices=("ve", "vp"), default="ve", help="forward process")
    parser.add_argument("--sigma-min", type=float, default=1e-3, help="smallest sigma (> 0)")
    parser.add_argument("--sigma-max", type=float, default=10.0, help="largest sigma")
    parser.add_argument("--num-sigmas", type=int, default=40, help="grid size (log-spaced)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="rao_blackwell",
        help="rao_blackwell (default, fast, with standard errors), quadrature (D <= 2, "
        "exact to ~1e-12, slower) or auto",
    )
    parser.add_argument(
        "--num-samples", type=int, default=None, help="Rao-Blackwell samples per sigma (20000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")


def _sigma_grid(args) -> list[float]:
    lo, hi, n = args.sigma_min, args.sigma_max, args.num_sigmas
    if not (math.isfinite(lo) and lo > 0):
        raise ValueError(f"--sigma-min must be a finite number > 0, got {lo!r}")
    if not (math.isfinite(hi) and hi > lo):
        raise ValueError(f"--sigma-max must be finite and > --sigma-min ({lo!r}), got {hi!r}")
    if args.process == "vp" and hi >= 1.0:
        raise ValueError(
            f"--sigma-max must be < 1 for --process vp (alpha = sqrt(1 - sigma^2)), got {hi!r}"
        )
    if n < 2:
        raise ValueError(f"--num-sigmas must be >= 2, got {n!r}")
    if args.num_samples is not None and args.num_samples < 2:
        raise ValueError(f"--num-samples must be an integer >= 2, got {args.num_samples!r}")
    import numpy as np

    return np.geomspace(lo, hi, n)


def run(args) -> int:
    """Compute the curve, write the three files, print a summary. Returns 0."""
    import jax
    import numpy as np

    import dsmtheory

    from .. import mixture as mix
    from .._io import save_figure, write_csv, write_json
    from ..plots.heteroskedasticity import heteroskedasticity_figure
    from ..variance import fit_loglog_slope, heteroskedasticity_curve

    sigmas = _sigma_grid(args)
    if args.mixture is None:
        gm, source = mix.ring(), "ring()"
    else:
        gm, source = mix.from_json(args.mixture), str(args.mixture)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")

    curve = heteroskedasticity_curve(
        gm,
        sigmas,
        process=args.process,
        method=args.method,
        key=jax.random.PRNGKey(args.seed),
        num_samples=args.num_samples,
    )
    low = curve.sigma <= 10.0 * curve.sigma[0] * (1 + 1e-12)
    if low.sum() < 2:
        low = np.arange(curve.sigma.size) < 2
    slope = fit_loglog_slope(curve.sigma[low], curve.R[low])
    slope_range = (float(curve.sigma[low][0]), float(curve.sigma[low][-1]))

    header = ["sigma", "alpha", "lam", "R", "stderr", "D_over_sigma2"]
    rows = zip(
        *(np.asarray(a, dtype=float).tolist() for a in curve[:6]),
        strict=True,
    )
    write_csv(out / "heteroskedasticity.csv", header, rows)
    fig = heteroskedasticity_figure(
        curve.sigma,
        curve.R,
        curve.stderr,
        curve.reference,
        slope=slope,
        slope_range=slope_range,
        title=f"{source}, {args.process.upper()}, D = {gm.dim}, K = {gm.num_components}",
    )
    save_figure(fig, out / "heteroskedasticity.png")
    write_json(
        out / "heteroskedasticity.json",
        {
            "command": NAME,
            "settings": {
                "mixture": source,
                "process": args.process,
                "sigma_min": args.sigma_min,
                "sigma_max": args.sigma_max,
                "num_sigmas": args.num_sigmas,
                "method": curve.method,
                "num_samples": args.num_samples,
                "seed": args.seed,
            },
            "mixture": gm.to_dict(),
            "low_sigma_slope": slope,
            "slope_fit_range": list(slope_range),
            "expected_slope": -2.0,
            "versions": {
                "dsmtheory": dsmtheory.__version__,
                "jax": jax.__version__,
                "numpy": np.__version__,
            },
        },
    )

    n = curve.sigma.size
    show = sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1})
    print(f"heteroskedasticity: {source}, {args.process.upper()}, method {curve.method}")
    print(f"{'sigma':>10} {'R':>14} {'stderr':>10} {'D/sigma^2':>14} {'R*sigma^2/D':>12}")
    for i in show:
        s, r, e, ref = curve.sigma[i], curve.R[i], curve.stderr[i], curve.reference[i]
        print(f"{s:10.4g} {r:14.6g} {e:10.2g} {ref:14.6g} {r / ref:12.6f}")
    print(
        f"low-sigma log-log slope {slope:.4f} over sigma in "
        f"[{slope_range[0]:.3g}, {slope_range[1]:.3g}] (expected -2)"
    )
    print(f"wrote {out / 'heteroskedasticity.csv'}, .png, .json")
    sys.stdout.flush()
    return 0
