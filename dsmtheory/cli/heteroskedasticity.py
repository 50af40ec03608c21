r"""``dsmtheory heteroskedasticity``: the irreducible DSM variance $R(\sigma)$ on a grid.

Writes ``heteroskedasticity.csv`` (sigma, alpha, lam, R, stderr, D/sigma^2),
``heteroskedasticity.png`` (log-log, with the $D/\sigma^2$ reference and the fitted low-σ
slope) and ``heteroskedasticity.json`` (settings, a reference to the mixture
(:func:`dsmtheory.mixture_io.reference`), slope, versions), and prints a
short table with the effective dimension $d_{\rm eff}=\sigma^2R$ and its low-noise limit
$\bar d=\sum_k\pi_k\,\mathrm{rank}\,\Sigma_k$. FORMULAS.md §4, §8: $\sigma^2R\to\bar d$ as
σ → 0, so $R\sim\bar d/\sigma^2$ (a log-log slope of −2) once the noise is below every
component's smallest nonzero eigenvalue; the level is $D/\sigma^2$ only for full-rank data
($\bar d=D$), and above $\tilde\sigma\approx\sqrt{e_{\min}}$ the slope is not −2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import _inputs as inp

NAME = "heteroskedasticity"
HELP = "Irreducible DSM variance R(sigma) against D/sigma^2, with d_eff = sigma^2 R."

#: the --method choices, passed to :func:`dsmtheory.variance.heteroskedasticity_curve`
METHODS = ("auto", "adaptive", "gauss_hermite", "monte_carlo")
#: the old names, accepted for one release
OLD_METHODS = {"rao_blackwell": "monte_carlo", "quadrature": "adaptive"}
#: the largest --num-sigmas and --num-samples
MAX_SIGMAS = 10_000
MAX_SAMPLES = 10_000_000
FILES = ("heteroskedasticity.csv", "heteroskedasticity.png", "heteroskedasticity.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's options."""
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--mixture", default=None, help=f"{inp.MIXTURE_SPEC_HELP} (default: ring())"
    )
    parser.add_argument("--process", choices=("ve", "vp"), default="ve", help="forward process")
    parser.add_argument("--sigma-min", type=float, default=1e-3, help="smallest sigma (> 0)")
    parser.add_argument("--sigma-max", type=float, default=10.0, help="largest sigma")
    parser.add_argument("--num-sigmas", type=int, default=40, help="grid size (log-spaced)")
    parser.add_argument(
        "--method",
        choices=METHODS + tuple(OLD_METHODS),
        default="auto",
        help="the expectation engine's rule: auto (default: adaptive to 1e-10 in D <= 2, "
        "Monte Carlo with standard errors above), adaptive (D <= 3), gauss_hermite or "
        "monte_carlo (rao_blackwell and quadrature: the old names of the last and adaptive)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=None, help="Rao-Blackwell samples per sigma (20000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")


class Settings(NamedTuple):
    """The checked inputs of one run.

    Attributes:
        mixture: the :class:`~dsmtheory.GaussianMixture` analysed.
        source: how the mixture was given (a file name or ``"ring()"``), for the outputs.
        process: ``"ve"`` or ``"vp"``.
        sigmas: the log-spaced noise levels, shape ``(num_sigmas,)``.
        method: one of :data:`METHODS`.
        num_samples: Rao–Blackwell samples per σ, or ``None`` for the library's default.
        seed: the PRNG seed.
    """

    mixture: object
    source: str
    process: str
    sigmas: np.ndarray
    method: str
    num_samples: int | None
    seed: int


class Result(NamedTuple):
    """What :func:`compute` returns.

    Attributes:
        settings: the :class:`Settings` of the run.
        curve: the :class:`~dsmtheory.variance.HeteroskedasticityCurve` (σ, α, λ, R,
            stderr, D/σ², method).
        slope: the least-squares log-log slope of R over the lowest decade of σ.
        slope_range: ``(σ_first, σ_last)`` of that fit.
        mean_rank: d̄ = Σ_k π_k rank Σ_k, the limit of d_eff = σ² R as σ → 0.
    """

    settings: Settings
    curve: object
    slope: float
    slope_range: tuple[float, float]
    mean_rank: float = float("nan")


def settings(
    mixture=None,
    *,
    source: str | None = None,
    process: str = "ve",
    sigma_min: float = 1e-3,
    sigma_max: float = 10.0,
    num_sigmas: int = 40,
    method: str = "auto",
    num_samples: int | None = None,
    seed: int = 0,
) -> Settings:
    """Check the inputs (UsageError naming the option) and build the σ grid."""
    from .. import mixture as mix

    process = inp.check_choice(process, "--process", ("ve", "vp"))
    lo = inp.check_sigma(sigma_min, "--sigma-min")
    hi = inp.check_sigma(sigma_max, "--sigma-max")
    if not hi > lo:
        raise inp.UsageError(f"--sigma-max must be > --sigma-min ({lo!r}), got {hi!r}")
    if process == "vp" and hi >= 1.0:
        raise inp.UsageError(
            f"--sigma-max must be < 1 for --process vp (alpha = sqrt(1 - sigma^2)), got {hi!r}"
        )
    n = inp.check_int(num_sigmas, "--num-sigmas", minimum=2, maximum=MAX_SIGMAS)
    method = OLD_METHODS.get(method, method)
    method = inp.check_choice(method, "--method", METHODS)
    if num_samples is not None:
        num_samples = inp.check_int(num_samples, "--num-samples", minimum=2, maximum=MAX_SAMPLES)
    seed = inp.check_seed(seed)
    if mixture is None:
        mixture, source = mix.ring(), "ring()"
    if method == "adaptive" and mixture.dim > 3:
        raise inp.UsageError(
            f"--method adaptive needs a mixture of dimension <= 3, this one has "
            f"D = {mixture.dim}; use monte_carlo or auto"
        )
    return Settings(mixture, source or "mixture", process, np.geomspace(lo, hi, n), method,
                    num_samples, seed)  # fmt: skip


def settings_from_args(args) -> Settings:
    """:class:`Settings` from the parsed command line (the mixture file read here)."""
    gm = None if args.mixture is None else inp.load_mixture(args.mixture)
    return settings(
        gm,
        source=None if args.mixture is None else str(args.mixture),
        process=args.process,
        sigma_min=args.sigma_min,
        sigma_max=args.sigma_max,
        num_sigmas=args.num_sigmas,
        method=args.method,
        num_samples=args.num_samples,
        seed=args.seed,
    )


def compute(s: Settings) -> Result:
    """R(σ) on the grid and its low-noise log-log slope (no I/O)."""
    import jax

    from ..optimal import mean_rank
    from ..variance import fit_loglog_slope, heteroskedasticity_curve

    curve = heteroskedasticity_curve(
        s.mixture,
        s.sigmas,
        process=s.process,
        method=s.method,
        key=jax.random.PRNGKey(s.seed),
        num_samples=s.num_samples,
        progress=True,
    )
    low = curve.sigma <= 10.0 * curve.sigma[0] * (1 + 1e-12)
    if low.sum() < 2:
        low = np.arange(curve.sigma.size) < 2
    slope = fit_loglog_slope(curve.sigma[low], curve.R[low])
    span = (float(curve.sigma[low][0]), float(curve.sigma[low][-1]))
    return Result(s, curve, slope, span, mean_rank(s.mixture))


#: R σ²/D within this of 1 at the smallest σ: the full-rank regime R ≈ D/σ² (slope −2)
FULL_RANK_REGIME = 0.01


def expectation(result: Result) -> tuple[float | None, str]:
    """``(expected slope or None, sentence)``: what the low-σ fit should show. −2 is expected
    only where σ²R is already at its limit d̄ at the smallest σ of the fit (for full-rank
    data: R σ²/D ≈ 1); otherwise the noise is not yet below the components' smallest
    eigenvalues and the expected statement is σ²R → d̄ as σ → 0."""
    curve = result.curve
    d_eff0 = float(curve.d_eff[0])
    dbar, dim = result.mean_rank, result.settings.mixture.dim
    ratio = d_eff0 / dim
    if abs(d_eff0 / dbar - 1.0) <= FULL_RANK_REGIME:
        level = "D/sigma^2" if dbar == dim else f"d_bar/sigma^2 = {dbar:.4g}/sigma^2"
        return -2.0, f"expected -2: sigma^2 R = {d_eff0:.4g} is at its limit d_bar, R ~ {level}"
    return None, (
        f"not -2 in general: R sigma^2/D = {ratio:.3g} at sigma = {curve.sigma[0]:.3g}, far "
        f"from its limit d_bar/D = {dbar / dim:.3g}; expected: sigma^2 R = d_eff -> d_bar = "
        f"{dbar:.4g} as sigma -> 0 (slope -2 only below the components' smallest "
        "eigenvalues, sigma << sqrt(e_min))"
    )


def write(result: Result, out) -> list[Path]:
    """Write the CSV, the figure and the JSON into ``out``; returns their paths."""
    import jax

    import dsmtheory

    from .._io import save_figure, write_csv, write_json
    from ..mixture_io import reference as mixture_reference
    from ..plots.heteroskedasticity import heteroskedasticity_figure

    out = Path(out)
    s, curve = result.settings, result.curve
    gm = s.mixture
    header = ["sigma", "alpha", "lam", "R", "stderr", "D_over_sigma2"]
    rows = zip(*(np.asarray(a, dtype=float).tolist() for a in curve[:6]), strict=True)
    files = [write_csv(out / FILES[0], header, rows)]
    fig = heteroskedasticity_figure(
        curve.sigma,
        curve.R,
        curve.stderr,
        curve.reference,
        slope=result.slope,
        slope_range=result.slope_range,
        title=f"{s.source}, {s.process.upper()}, D = {gm.dim}, K = {gm.num_components}",
    )
    files.append(save_figure(fig, out / FILES[1]))
    meta = {
        "command": NAME,
        "settings": {
            "mixture": s.source,
            "process": s.process,
            "sigma_min": float(s.sigmas[0]),
            "sigma_max": float(s.sigmas[-1]),
            "num_sigmas": int(s.sigmas.size),
            "method": s.method,
            "num_samples": s.num_samples,
            "seed": s.seed,
        },
        "method": curve.method,
        "rule": curve.rule,
        "mixture": mixture_reference(gm, s.source),
        "low_sigma_slope": result.slope,
        "slope_fit_range": list(result.slope_range),
        "expected_slope": expectation(result)[0],
        "expectation": expectation(result)[1],
        "mean_rank": result.mean_rank,
        "d_eff": np.asarray(curve.d_eff, dtype=float).tolist(),
        "versions": {
            "dsmtheory": dsmtheory.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
        },
    }
    files.append(write_json(out / FILES[2], meta))
    return files


def summary(result: Result, out=None) -> str:
    """A short table of R against D/σ² and the fitted slope."""
    s, curve = result.settings, result.curve
    n = curve.sigma.size
    lines = [
        f"heteroskedasticity: {s.source}, {s.process.upper()}, method {curve.method}",
        f"{'sigma':>10} {'R':>14} {'stderr':>10} {'D/sigma^2':>14} {'R*sigma^2/D':>12} "
        f"{'d_eff':>10}",
    ]
    for i in sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}):
        sg, r, e, ref = curve.sigma[i], curve.R[i], curve.stderr[i], curve.reference[i]
        lines.append(
            f"{sg:10.4g} {r:14.6g} {e:10.2g} {ref:14.6g} {r / ref:12.6f} {curve.d_eff[i]:10.5g}"
        )
    lo, hi = result.slope_range
    lines.append(
        f"d_bar = sum_k pi_k rank_k = {result.mean_rank:.4g} (D = {s.mixture.dim}), the limit "
        "of d_eff = sigma^2 R as sigma -> 0"
    )
    lines.append(
        f"low-sigma log-log slope {result.slope:.4f} over sigma in [{lo:.3g}, {hi:.3g}] "
        f"({expectation(result)[1]})"
    )
    if out is not None:
        lines.append(f"wrote {Path(out) / FILES[0]}, .png, .json")
    return "\n".join(lines)


def run(args) -> int:
    """Check the inputs, compute, write the three files, print a summary. Returns 0."""
    return inp.run_command(args, settings_from_args, compute, write, summary)
