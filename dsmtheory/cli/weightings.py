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
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import schedules, weightings
from .._io import save_figure, write_csv
from . import _inputs as inp
from ._errors import UsageError

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
FILES = (
    "densities.csv",
    "total_weights.csv",
    "family.csv",
    "total_weights.png",
    "one_over_k_plus_snr.png",
)
#: |lambda| and |k| above this overflow exp(lambda) in the weightings (exp(700) ~ 1e304)
LAM_LIMIT = 500.0
#: the largest --points
MAX_POINTS = 1_000_000


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


class Settings(NamedTuple):
    """The checked inputs of one run.

    Attributes:
        lam: the log-SNR grid, shape ``(points,)``.
        sigma_data: Soft-Min-SNR's σ_d in the family plot.
        tau: smoothed-KL's τ in the family plot.
        k: the Kingma–Gao sigmoid's k in the family plot.
    """

    lam: np.ndarray
    sigma_data: float
    tau: float
    k: float


class Result(NamedTuple):
    """What :func:`compute` returns.

    Attributes:
        settings: the :class:`Settings`.
        densities: schedule name -> p(λ) on the grid (:data:`DENSITY_COLUMNS`).
        total_weights: weighting name -> w = p·ω_ε scaled to max 1.
        density_used: weighting name -> the schedule whose density it is shown on.
        family: column -> the normalised 1/(k + SNR) curve (:data:`FAMILY_COLUMNS`).
        family_k: column -> its k.
    """

    settings: Settings
    densities: dict
    total_weights: dict
    density_used: dict
    family: dict
    family_k: dict


def settings(
    lam_min: float = -15.0,
    lam_max: float = 15.0,
    points: int = 601,
    sigma_data: float = 0.5,
    tau: float = 0.5,
    k: float = 2.0,
) -> Settings:
    """Check the inputs (UsageError naming the option) and build the λ grid."""
    lo = inp.check_number(lam_min, "--lam-min", minimum=-LAM_LIMIT, maximum=LAM_LIMIT)
    hi = inp.check_number(lam_max, "--lam-max", minimum=-LAM_LIMIT, maximum=LAM_LIMIT)
    if not lo < hi:
        raise UsageError(f"--lam-min must be < --lam-max, got {lo} and {hi}")
    n = inp.check_int(points, "--points", minimum=10, maximum=MAX_POINTS)
    sd = inp.check_number(sigma_data, "--sigma-data", positive=True)
    tau = inp.check_number(tau, "--tau", positive=True)
    k = inp.check_number(k, "--k", minimum=-LAM_LIMIT, maximum=LAM_LIMIT)
    return Settings(np.linspace(lo, hi, n), sd, tau, k)


def settings_from_args(args) -> Settings:
    """:class:`Settings` from the parsed command line."""
    return settings(args.lam_min, args.lam_max, args.points, args.sigma_data, args.tau, args.k)


def compute(s: Settings) -> Result:
    """The densities, the scaled total weights and the family curves (no I/O)."""
    dens = _densities(s.lam)
    tot, used = catalog_total_weights(s.lam)
    curves, ks = family_curves(s.lam, s.sigma_data, s.tau, s.k)
    return Result(s, dens, tot, used, curves, ks)


def write(result: Result, out) -> list[Path]:
    """Write the three tables and two figures into ``out``; returns their paths."""
    from ..plots.weightings import family_figure, total_weights_figure

    out = Path(out)
    s, lam = result.settings, result.settings.lam
    dens, tot, curves = result.densities, result.total_weights, result.family

    def rows(cols):  # plain Python floats (repr of a NumPy scalar is not a number)
        return np.column_stack([lam, *cols.values()]).tolist()

    written = [
        write_csv(out / "densities.csv", ["lam", *dens], rows(dens)),
        write_csv(out / "total_weights.csv", ["lam", *tot], rows(tot)),
        write_csv(out / "family.csv", ["lam", *curves], rows(curves)),
    ]
    used = result.density_used
    fig = total_weights_figure(lam, dens, {f"{n} ({used[n]})": v for n, v in tot.items()})
    written.append(save_figure(fig, out / "total_weights.png"))
    labels = {
        "p2": "P2, $\\gamma=1$",
        "soft_min_snr": f"Soft-Min-SNR, $\\sigma_d={s.sigma_data:g}$",
        "smoothed_kl": f"smoothed-KL, $\\tau={s.tau:g}$",
        "sigmoid_multiplier": f"sigmoid$(k_{{KG}}-\\lambda)$, $k_{{KG}}={s.k:g}$",
    }
    ks = result.family_k
    fig = family_figure(lam, {f"{labels[c]}: k = {ks[c]:.4g}": v for c, v in curves.items()})
    written.append(save_figure(fig, out / "one_over_k_plus_snr.png"))
    return written


def summary(result: Result, out=None) -> str:
    """One line per file written."""
    if out is None:
        n, m = len(result.total_weights), result.settings.lam.size
        return f"weightings: {n} total weights on {m} points"
    return "\n".join(f"wrote {Path(out) / name}" for name in FILES)


def run(args) -> int:
    """Check the inputs, compute, write the figures and tables; print one line per file."""
    return inp.run_command(args, settings_from_args, compute, write, summary)
