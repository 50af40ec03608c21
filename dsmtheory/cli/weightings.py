r"""``dsmtheory weightings --out DIR``: the weighting catalog as figures and tables.

Writes (every file whole or not at all):

* ``total_weights.png``: left, the sampling densities $p(\lambda)$ of the schedules
  (cosine, shifted cosine, vp_linear, edm_training, edm_sampling, ve); right, the Kingma–Gao
  total weights $w=p\,\omega_\varepsilon$ of the catalog, each scaled to max 1 over the
  plotted range (Kingma & Gao 2023, Fig. 1);
* ``densities.csv``: ``lam`` and one column per schedule;
* ``total_weights.csv``: ``lam`` and one column per weighting (scaled as plotted);
* ``one_over_k_plus_snr.png`` and ``family.csv``: P2 ($\gamma=1$), Soft-Min-SNR,
  smoothed-KL and the sigmoid used as a per-sample multiplier, each normalised to 1 at
  $\lambda\to-\infty$, i.e. $k/(k+e^\lambda)$ (FORMULAS.md §3.11).

Weightings given as per-sample multipliers are shown on the density they are published with
(:data:`PAIRING`); those defined as total weights use their own ``schedule``. ALSR's batch
mean is fixed at the mean of EDM's training density, $\mu=2.4$.
"""

from __future__ import annotations

import math

import numpy as np

from .. import schedules, weightings
from .._io import save_figure, write_csv

NAME = "weightings"
HELP = "Plot and tabulate the weighting catalog: densities, total weights, the 1/(k+SNR) family."

# sampling density each multiplier-defined weighting is published with
PAIRING = {
    "simple": "cosine",
    "v": "cosine",
    "edm": "edm_training",
    "alsr": "edm_training",
    "soft_min_snr": "edm_training",
    "min_snr": "cosine",
    "p2": "vp_linear",
    "smoothed_kl": "vp_linear",
}
SHIFT_RESOLUTION = 256  # shifted cosine: s = log(64/d) (Kingma & Gao), d = 256
DENSITY_COLUMNS = ["cosine", "cosine_shifted", "vp_linear", "edm_training", "edm_sampling", "ve"]
FAMILY_COLUMNS = ["p2", "soft_min_snr", "smoothed_kl", "sigmoid_multiplier"]


def add_arguments(parser) -> None:
    """Options of ``dsmtheory weightings``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--lam-min", type=float, default=-15.0, help="plot range (default -15)")
    parser.add_argument("--lam-max", type=float, default=15.0, help="plot range (default 15)")
    parser.add_argument("--points", type=int, default=601, help="grid points (default 601)")
    parser.add_argument(
        "--sigma-data", type=float, default=0.5, help="Soft-Min-SNR sigma_d in the family plot"
    )
    parser.add_argument("--tau", type=float, default=0.5, help="smoothed-KL tau (family plot)")
    parser.add_argument("--k", type=float, default=2.0, help="KG sigmoid k (family plot)")


def _densities(lam: np.ndarray) -> dict[str, np.ndarray]:
    scheds = {
        "cosine": schedules.get("cosine"),
        "cosine_shifted": schedules.get("cosine", shift=math.log(64 / SHIFT_RESOLUTION)),
        "vp_linear": schedules.get("vp_linear"),
        "edm_training": schedules.get("edm_training"),
        "edm_sampling": schedules.get("edm_sampling"),
        "ve": schedules.get("ve"),
    }
    return {k: np.asarray(s.density(lam), dtype=float) for k, s in scheds.items()}


def catalog_total_weights(lam: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Total weights of every registry entry that builds with its defaults, scaled to max 1.

    Returns:
        ``(weights, density_used)``: name -> scaled ``w`` on ``lam``; name -> schedule name.
    """
    out, used = {}, {}
    for name in weightings.names():
        params = {"mu": 2.4} if name == "alsr" else {}
        try:
            w = weightings.get(name, **params)
        except TypeError:  # entries that need arguments (e.g. ``optimal`` needs a mixture)
            continue
        sched = w.params.get("schedule")
        if sched is None:
            sched = schedules.get(PAIRING.get(name, "cosine"))
        p = np.asarray(sched.density(lam), dtype=float)
        inside = p > 0
        omega = np.asarray(w(np.where(inside, lam, sched.lam_min)), dtype=float)
        tot = np.where(inside, p * omega, 0.0)
        peak = tot.max()
        out[name] = tot / peak if peak > 0 else tot
        used[name] = sched.name
    return out, used


def family_curves(lam: np.ndarray, sigma_data: float, tau: float, k: float):
    r"""The $1/(k+\mathrm{SNR})$ family, each normalised by its value at $\lambda=-60$.

    Returns:
        ``(curves, ks)``: column -> normalised curve; column -> its $k$.
    """
    raw = {
        "p2": weightings.get("p2", k=1.0, gamma=1.0),
        "soft_min_snr": weightings.get("soft_min_snr", sigma_data=sigma_data),
        "smoothed_kl": weightings.get("smoothed_kl", tau=tau),
        "sigmoid_multiplier": lambda x: 1.0 / (1.0 + np.exp(np.asarray(x) - k)),
    }
    ks = {
        "p2": 1.0,
        "soft_min_snr": sigma_data**-2,
        "smoothed_kl": 1.0 + tau**-2,
        "sigmoid_multiplier": math.exp(k),
    }
    curves = {}
    for col, fn in raw.items():
        ref = float(np.asarray(fn(-60.0)))
        curves[col] = np.asarray(fn(lam), dtype=float) / ref
    return curves, ks


def run(args) -> int:
    """Compute and write the figures and tables; print one line per file."""
    from pathlib import Path

    from ..plots.weightings import family_figure, total_weights_figure

    if not math.isfinite(args.lam_min) or not math.isfinite(args.lam_max):
        raise ValueError("--lam-min and --lam-max must be finite")
    if not args.lam_min < args.lam_max:
        raise ValueError(f"--lam-min must be < --lam-max, got {args.lam_min} and {args.lam_max}")
    if args.points < 10:
        raise ValueError(f"--points must be >= 10, got {args.points}")
    for opt in ("sigma_data", "tau"):
        val = getattr(args, opt)
        if not (math.isfinite(val) and val > 0):
            raise ValueError(f"--{opt.replace('_', '-')} must be > 0, got {val}")
    if not math.isfinite(args.k):
        raise ValueError(f"--k must be finite, got {args.k}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {out}")

    lam = np.linspace(args.lam_min, args.lam_max, args.points)
    dens = _densities(lam)
    tot, used = catalog_total_weights(lam)
    curves, ks = family_curves(lam, args.sigma_data, args.tau, args.k)

    def rows(cols):  # plain Python floats (repr of a NumPy scalar is not a number)
        return np.column_stack([lam, *cols.values()]).tolist()

    written = [
        write_csv(out / "densities.csv", ["lam", *dens], rows(dens)),
        write_csv(out / "total_weights.csv", ["lam", *tot], rows(tot)),
        write_csv(out / "family.csv", ["lam", *curves], rows(curves)),
    ]
    fig = total_weights_figure(lam, dens, {f"{n} ({used[n]})": v for n, v in tot.items()})
    written.append(save_figure(fig, out / "total_weights.png"))
    labels = {
        "p2": "P2, $\\gamma=1$",
        "soft_min_snr": f"Soft-Min-SNR, $\\sigma_d={args.sigma_data:g}$",
        "smoothed_kl": f"smoothed-KL, $\\tau={args.tau:g}$",
        "sigmoid_multiplier": f"sigmoid$(k_{{KG}}-\\lambda)$, $k_{{KG}}={args.k:g}$",
    }
    fig = family_figure(lam, {f"{labels[c]}: k = {ks[c]:.4g}": v for c, v in curves.items()})
    written.append(save_figure(fig, out / "one_over_k_plus_snr.png"))
    for path in written:
        print(f"wrote {path}")
    return 0
