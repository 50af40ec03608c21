r"""``dsmtheory identify --csv FILE --parameterization P``: which registry weighting is this?

Reads sample points and the loss multipliers a training script puts on its
``--parameterization``-space MSE from a CSV file (two columns, a header row: the points, as
``--input`` says, and the weights), ranks every registry weighting, written for every
parameterization and with its parameters fitted by least squares in log space, up to a
constant (:func:`dsmtheory.testing.identify_weighting`), and prints a table.

Exit status: 0 if the best match fits (largest log residual at most ``--tolerance``,
default :data:`dsmtheory.testing.FIT_TOL` = 1e-4), 1 if nothing fits (the nearest is
printed), 2 for a bad file or bad arguments (one line on stderr).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._errors import user_input

NAME = "identify"
HELP = "Identify a loss weighting from (point, weight) samples in a CSV file."

INPUTS = ("snr", "lam", "sigma", "timestep")
PARAMETERIZATIONS = ("eps", "x0", "v", "score", "F", "epsilon", "sample", "v_prediction")


class IdentifyResult(NamedTuple):
    """What :func:`compute` found.

    Attributes:
        matches: every candidate, best first (:class:`dsmtheory.testing.Match`).
        fits: whether the best match fits within ``tolerance``.
        tolerance: the largest log residual of a fit.
        num_points: points read.
        lam_range: ``(min λ, max λ)`` of the points.
        parameterization: the MSE the weights multiply.
        process: ``"vp"`` or ``"ve"``.
        input: what the first column holds.
    """

    matches: list
    fits: bool
    tolerance: float
    num_points: int
    lam_range: tuple[float, float]
    parameterization: str
    process: str
    input: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dsmtheory identify``."""
    parser.add_argument("--csv", required=True, help="CSV file: header, then point,weight rows")
    parser.add_argument(
        "--parameterization",
        required=True,
        choices=PARAMETERIZATIONS,
        help="the MSE the weights multiply (diffusers' names accepted)",
    )
    parser.add_argument("--process", choices=("vp", "ve"), default="vp", help="default vp")
    parser.add_argument(
        "--input",
        choices=INPUTS,
        default="snr",
        help="first column: snr (default), lam (log-SNR), sigma (e^{-lam/2}) or timestep",
    )
    parser.add_argument(
        "--beta-schedule",
        choices=("linear", "scaled_linear", "squaredcos_cap_v2"),
        default=None,
        help="for --input timestep: diffusers' DDPMScheduler beta_schedule",
    )
    parser.add_argument("--num-train-timesteps", type=int, default=1000, help="default 1000")
    parser.add_argument("--beta-start", type=float, default=1e-4, help="default 1e-4")
    parser.add_argument("--beta-end", type=float, default=0.02, help="default 0.02")
    parser.add_argument(
        "--alphas-cumprod",
        default=None,
        help="for --input timestep: a file with one alphas_cumprod value per line",
    )
    parser.add_argument(
        "--sigma-data", type=float, default=None, help="sigma_d of the F preconditioning"
    )
    parser.add_argument("--tolerance", type=float, default=None, help="fit tolerance (1e-4)")
    parser.add_argument("--top", type=int, default=8, help="rows of the table (default 8)")


def read_points(path) -> tuple[np.ndarray, np.ndarray]:
    """The two numeric columns of a CSV file with a header row.

    Raises:
        ValueError: missing file, no data rows, a row without exactly two numbers.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--csv {str(path)!r} is not a file")
    try:
        with p.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"--csv {str(path)!r} could not be read: {exc}") from None
    if len(rows) < 2:
        raise ValueError(f"--csv {str(path)!r} needs a header row and at least 2 data rows")
    xs, ws = [], []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise ValueError(f"--csv line {i}: expected 2 columns (point, weight), got {len(row)}")
        try:
            x, w = float(row[0]), float(row[1])
        except ValueError:
            raise ValueError(f"--csv line {i}: not two numbers: {','.join(row)!r}") from None
        if not (math.isfinite(x) and math.isfinite(w)):
            raise ValueError(f"--csv line {i}: values must be finite, got {','.join(row)!r}")
        xs.append(x)
        ws.append(w)
    return np.asarray(xs), np.asarray(ws)


def _alphas_cumprod(args):
    from ..testing import ddpm_alphas_cumprod

    if args.alphas_cumprod is not None and args.beta_schedule is not None:
        raise ValueError("give either --alphas-cumprod or --beta-schedule, not both")
    if args.alphas_cumprod is not None:
        p = Path(args.alphas_cumprod)
        if not p.is_file():
            raise ValueError(f"--alphas-cumprod {args.alphas_cumprod!r} is not a file")
        try:
            return np.loadtxt(p, dtype=np.float64, ndmin=1)
        except ValueError as exc:
            raise ValueError(f"--alphas-cumprod could not be read: {exc}") from None
    if args.beta_schedule is None:
        raise ValueError("--input timestep needs --beta-schedule or --alphas-cumprod")
    return ddpm_alphas_cumprod(
        args.beta_schedule, args.num_train_timesteps, args.beta_start, args.beta_end
    )


def compute(
    x,
    weights,
    *,
    parameterization: str,
    process: str = "vp",
    input: str = "snr",  # noqa: A002 - mirrors identify_weighting
    alphas_cumprod=None,
    sigma_data: float | None = None,
    tolerance: float | None = None,
) -> IdentifyResult:
    """Identify the weighting of ``(x, weights)``: pure, no I/O."""
    from ..testing import FIT_TOL, identify_weighting, log_snr_of

    tol = FIT_TOL if tolerance is None else tolerance
    matches = identify_weighting(
        x, weights, parameterization=parameterization, process=process, input=input,
        alphas_cumprod=alphas_cumprod, sigma_data=sigma_data, tolerance=tol,
    )  # fmt: skip
    lam = log_snr_of(x, input, alphas_cumprod)
    return IdentifyResult(
        matches=matches,
        fits=bool(matches and matches[0].fits),
        tolerance=float(tol),
        num_points=int(lam.size),
        lam_range=(float(lam.min()), float(lam.max())),
        parameterization=matches[0].applied_to,  # the canonical name ("sample" -> "x0")
        process=process,
        input=input,
    )


def format_result(result: IdentifyResult, top: int = 8) -> str:
    """The printed report: a header line, the table, the verdict."""
    from ..testing import format_matches

    lo, hi = result.lam_range
    head = (
        f"identify: {result.num_points} points (input {result.input!r}, lambda in "
        f"[{lo:.4g}, {hi:.4g}]), weights on the {result.parameterization!r} MSE, process "
        f"{result.process!r}; fit tolerance max |log ratio| <= {result.tolerance:g}"
    )
    best = result.matches[0]
    if result.fits:
        verdict = f"match: {best.describe()}"
    else:
        verdict = f"no match within {result.tolerance:g}; nearest: {best.describe()}"
    return "\n".join([head, "", format_matches(result.matches, top), "", verdict])


def _checked_inputs(args: argparse.Namespace):
    """The points, weights and alphas_cumprod of the command line (ValueError if bad)."""
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise ValueError(f"--tolerance must be a number > 0, got {args.tolerance}")
    x, w = read_points(args.csv)
    if not np.all(w > 0):
        raise ValueError(
            f"--csv: weights must be finite and > 0 (the fit is in log space), got min "
            f"{np.min(w):.3g}; drop zero-weight points such as a zero-terminal-SNR step"
        )
    ac = _alphas_cumprod(args) if args.input == "timestep" else None
    if args.input != "timestep" and (args.beta_schedule or args.alphas_cumprod):
        raise ValueError("--beta-schedule and --alphas-cumprod need --input timestep")
    if args.input == "timestep":
        if not np.all(x == np.round(x)):
            raise ValueError("--input timestep: the first column must hold integers")
        x = x.astype(np.int64)
    return x, w, ac


def run(args: argparse.Namespace) -> int:
    """Read the CSV, identify, print; 0 if the best match fits, 1 otherwise."""
    with user_input():
        x, w, ac = _checked_inputs(args)
    result = compute(
        x, w, parameterization=args.parameterization, process=args.process, input=args.input,
        alphas_cumprod=ac, sigma_data=args.sigma_data, tolerance=args.tolerance,
    )  # fmt: skip
    print(format_result(result, args.top))
    return 0 if result.fits else 1
