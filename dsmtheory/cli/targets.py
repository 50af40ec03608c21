r"""``dsmtheory targets --out DIR [--mixture FILE] [--proposal FILE] [--quick]``: lower-variance
targets beyond first-order DSM (FORMULAS.md §3 items 15–17).

On a log-SNR grid (VP by default, ``--process ve`` for VE) and the 2-D ring of 8 modes (or
``--mixture``), computes with :mod:`dsmtheory.targets`:

* $R_1$, $R_2$ (order-1 and order-2 DSM irreducible variance, Rao–Blackwellized MC);
* TSM variance, Cov(TSM, DSM), the optimal mix κ* (closed form $\mathrm{sigmoid}(\lambda-\log J_0)$
  and nested-MC estimate) and its variance; the DSM/TSM crossing $\lambda_\times=\log J_0$;
* IWSM vs plain DSM per-sample variances with standard errors (the engine's adaptive rule
  in $D\le2$, its stratified Monte Carlo rule above) for a default proposal that keeps
  every other component of the mixture in $D\le2$ and every component with equal weights
  in $D>2$ (:func:`~dsmtheory.targets.balanced_proposal`; why: :func:`default_proposal`),
  or ``--proposal``. Where the importance weights' Monte Carlo sample is degenerate the
  weight columns are NaN, ``iwsm_degenerate`` is 1 and the bound
  ``ess_fraction_bound`` $=e^{-\mathrm{KL}}$ remains.

Writes ``targets.csv`` (one row per λ), ``targets.json`` (settings, versions, headline
numbers, timings) and ``targets-heteroskedasticity.png``, ``targets-tsm.png``,
``targets-iwsm.png``. Every file is written whole or not at all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from .. import variance
from ..mixture_io import reference as mixture_reference
from . import _inputs as inp
from ._errors import UsageError
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
    "iwsm_objective_se",
    "var_dsm_loss_se",
    "var_sm_se",
    "var_iwsm_se",
    "ess_fraction_se",
    "kl_p_to_proposal",
    "kl_p_to_proposal_se",
    "ess_fraction_bound",
    "weight_ess",
    "iwsm_degenerate",
]

#: Monte Carlo draws per pass of the IWSM comparison in D > 2 (quick, full).
IWSM_SAMPLES = (4096, 20_000)


def add_arguments(parser) -> None:
    """Options of ``dsmtheory targets``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--mixture", default=None, help=f"{inp.MIXTURE_SPEC_HELP} (default: ring of 8)"
    )
    parser.add_argument(
        "--proposal",
        default=None,
        help="JSON proposal mixture for IWSM (default: every other component of the mixture "
        "for D <= 2, every component with equal weights for D > 2)",
    )
    parser.add_argument("--process", default="vp", help="forward process: vp (default) or ve")
    parser.add_argument("--quick", action="store_true", help="coarser grids (< 20 s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")


#: Relative accuracy of the inputs of V(kappa*) at the crossing (J0 and R1 by the engine,
#: 1e-10 in D <= 2; kept at 1e-6 for Monte Carlo's rounding in higher D): a V below this
#: times the size of its terms is zero within accuracy, and the gain R1 / V is reported
#: unbounded.
MIX_GAIN_RTOL = 1e-6


class Settings(NamedTuple):
    """The checked inputs of one run.

    Attributes:
        mixture: the :class:`~dsmtheory.GaussianMixture` analysed.
        mixture_source: how it was given (file name or the default's constructor).
        proposal: the IWSM proposal mixture (same dimension).
        proposal_source: how the proposal was given.
        process: ``"ve"`` or ``"vp"``.
        quick: coarser grids and fewer samples.
        seed: the PRNG seed.
    """

    mixture: object
    mixture_source: str
    proposal: object
    proposal_source: str
    process: str
    quick: bool
    seed: int


class Result(NamedTuple):
    """What :func:`compute` returns.

    Attributes:
        settings: the :class:`Settings`.
        table: one row per λ, the columns of :data:`COLUMNS`, shape ``(n_lam, len(COLUMNS))``.
        lam: the log-SNR grid.
        do_iwsm: whether the IWSM columns were computed (always, since they are computed
            in any D; kept for callers).
        summary: the headline numbers written to ``targets.json``.
        settings_record: the settings as written to ``targets.json``.
        timings: seconds per part.
    """

    settings: Settings
    table: np.ndarray
    lam: np.ndarray
    do_iwsm: bool
    summary: dict
    settings_record: dict
    timings: dict


def _half_proposal(gm):
    """Every other component, weights renormalised (the whole mixture if K = 1)."""
    from ..mixture import GaussianMixture

    if gm.num_components == 1:
        return gm
    idx = np.arange(0, gm.num_components, 2)
    w = np.asarray(gm.weights)[idx]
    return GaussianMixture(w / w.sum(), np.asarray(gm.means)[idx], np.asarray(gm.covs)[idx])


def default_proposal(gm) -> tuple[object, str]:
    r"""The default IWSM proposal and its description.

    * $D\le2$: every other component, weights renormalised (the whole mixture if K = 1):
      a proposal that *misses* modes, the case where IWSM's weights explode at low noise;
      the adaptive rule integrates $p_t^2/p_{B_t}$ exactly whatever the weights.
    * $D>2$: every component with equal weights (:func:`dsmtheory.targets.balanced_proposal`,
      IWSM's mode-balancing use), whose weights are bounded by $K\max_k\pi_k$. A proposal
      missing components is hopeless in high $D$, and its variance is a Monte Carlo moment
      of weights spanning $e^{\pm\text{hundreds}}$: on digits (K = 10, D = 64) the
      every-other proposal's weights are degenerate for every λ ≥ 0 of the quick grid
      (ESS fraction ≤ $e^{-\mathrm{KL}}$ = $2\times10^{-6}$ at λ = 4), so it would give
      no number; pass it with ``--proposal`` to see that finding.
    """
    from .. import targets as T

    if gm.dim <= 2:
        return _half_proposal(gm), "every other component of the mixture"
    return T.balanced_proposal(gm), "every component of the mixture with equal weights"


def settings(
    mixture=None,
    *,
    mixture_source: str | None = None,
    proposal=None,
    proposal_source: str | None = None,
    process: str = "vp",
    quick: bool = False,
    seed: int = 0,
) -> Settings:
    """Check the inputs (UsageError naming the option); the default proposal is
    :func:`default_proposal`'s."""
    from .. import mixture as mix
    from .. import schedules

    process = inp.check_choice(process, "--process", schedules.PROCESSES)
    seed = inp.check_seed(seed)
    if mixture is None:
        mixture, mixture_source = mix.ring(), "ring(num_modes=8, radius=2, std=0.25)"
    if proposal is None:
        proposal, proposal_source = default_proposal(mixture)
    elif proposal.dim != mixture.dim:
        raise UsageError(
            f"--proposal must have the mixture's dimension {mixture.dim}, got {proposal.dim}"
        )
    return Settings(mixture, mixture_source or "mixture", proposal,
                    proposal_source or "proposal", process, bool(quick), seed)  # fmt: skip


def settings_from_args(args) -> Settings:
    """:class:`Settings` from the parsed command line (the mixture files read here)."""
    gm = None if args.mixture is None else inp.load_mixture(args.mixture, "--mixture")
    prop = None if args.proposal is None else inp.load_mixture(args.proposal, "--proposal")
    return settings(
        gm,
        mixture_source=args.mixture,
        proposal=prop,
        proposal_source=args.proposal,
        process=args.process,
        quick=args.quick,
        seed=args.seed,
    )


def mix_gain_at(gm, lam_x, process, i0, key, n_rb):
    r"""$R_1/V(\kappa^*)$ at the DSM/TSM crossing $\lambda_\times$ itself (not interpolated
    from the λ grid, on which the ratio is too sharply peaked to interpolate).

    $V(\kappa^*)$ by its closed form with $\mathrm{tr}I_t=D/\sigma^2-R_1$; $R_1$ by quadrature
    for $D\le2$ (the gain amplifies the relative error of $R_1$ by $R_1/V$, about 10 on the
    ring, too much for a Monte Carlo $R_1$), else by Rao–Blackwellization with 16 times the
    per-level sample count.

    $V(\kappa^*)$ can be zero: with $a_i=1/(\alpha^2\lambda_i)$ ($\lambda_i$ the eigenvalues
    of a single Gaussian's covariance) and $b=1/\sigma^2$,
    $V(\kappa^*)=\frac{(\sum_i a_i)\,Db}{\sum_i a_i+Db}-\sum_i\frac{a_ib}{a_i+b}\ge0$ by the
    concavity of $a\mapsto ab/(a+b)$, with equality iff every $a_i$ is equal: for isotropic
    Gaussian data the optimal mix is exact and the gain unbounded (``targets`` on K = 1 used
    to divide by zero here).

    Args:
        gm: the mixture.
        lam_x: the crossing log-SNR, $\log J_0$.
        process: ``"ve"`` or ``"vp"``.
        i0: $\mathrm{tr}I_0$ as an estimate with ``.value`` and ``.stderr``.
        key: PRNG key (used for $D>2$).
        n_rb: Rao–Blackwell samples per level of the table.

    Returns:
        ``(gain, note)``: ``gain`` is ``None`` when $V(\kappa^*)$ is zero within the accuracy
        of its inputs (:data:`MIX_GAIN_RTOL` of the terms that cancel, plus 4 standard
        errors), and ``note`` then says so; otherwise ``note`` is ``""``.
    """
    from .. import schedules
    from .. import targets as T
    from ..variance import irreducible_variance

    a, s = (float(v) for v in schedules.alpha_sigma(lam_x, process))
    if gm.dim <= 2:
        est = irreducible_variance(gm, a, s, method="adaptive")
    else:
        est = irreducible_variance(gm, a, s, key=jax.random.fold_in(key, 7), num_samples=16 * n_rb)
    r1, r1_se = float(est.value), float(est.stderr)
    tr_it = gm.dim / s**2 - r1
    kap = float(T.kappa_star(lam_x, i0.value, gm.dim))
    v_mix = float(T.mix_variance(kap, a, s, i0.value, tr_it, gm.dim))
    # the size of the terms that cancel in V, and the error V inherits from tr I0 and R1
    scale = kap**2 * i0.value / a**2 + (1 - kap) ** 2 * gm.dim / s**2
    err = MIX_GAIN_RTOL * scale + 4.0 * (kap**2 * float(i0.stderr) / a**2 + r1_se)
    if v_mix <= err:
        return None, (
            f"V(kappa*) = {v_mix:.3g}, zero within the accuracy of its inputs (+-{err:.2g}): "
            "the optimal mix is (nearly) exact here, as for isotropic Gaussian data"
        )
    return r1 / v_mix, ""


def _crossing(lam, a, b):
    """λ where log a − log b changes sign (linear interpolation), or NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(a) - np.log(b)
    idx = np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]
    if idx.size == 0:
        return float("nan")
    i = idx[0]
    return float(lam[i] - d[i] * (lam[i + 1] - lam[i]) / (d[i + 1] - d[i]))


def _rows(s: Settings, lam, i0, key, n_rb, n_out, n_in, do_iwsm, n_iw=None):
    """One row of :data:`COLUMNS` per λ, and the seconds of each part."""
    from .. import schedules
    from .. import targets as T
    from ..variance import progress_bar

    gm, prop = s.mixture, s.proposal
    rows = []
    t_het = t_tsm = t_iw = 0.0
    bar = progress_bar(len(lam), f"targets (D = {gm.dim})", enabled=True)
    for i, lm in enumerate(lam):
        bar.update(1)
        a, sg = (float(v) for v in schedules.alpha_sigma(lm, s.process))
        ki = jax.random.fold_in(key, i)
        t0 = time.perf_counter()
        r1 = T.irreducible_target_variance(gm, a, sg, 1, key=ki, num_samples=n_rb)
        r2 = T.irreducible_target_variance(gm, a, sg, 2, key=ki, num_samples=n_rb)
        t1 = time.perf_counter()
        m = T.tsm_moments(gm, a, sg, key=jax.random.fold_in(ki, 1), num_outer=n_out, num_inner=n_in)
        kap = float(T.kappa_star(lm, i0.value, gm.dim))
        t2 = time.perf_counter()
        if do_iwsm:
            c = T.iwsm_variance_comparison(gm, prop, a, sg, key=jax.random.fold_in(ki, 2),
                                           num_samples=n_iw, on_degenerate="nan")  # fmt: skip
            iw = [c.objective, c.var_dsm, c.var_sm, c.var_iwsm, c.var_iwsm / c.var_dsm,
                  c.ess_fraction, c.objective_stderr, c.var_dsm_stderr, c.var_sm_stderr,
                  c.var_iwsm_stderr, c.ess_fraction_stderr, c.kl_divergence,
                  c.kl_divergence_stderr, float(np.exp(-c.kl_divergence)), c.weight_ess,
                  float(c.degenerate)]  # fmt: skip
        else:
            iw = [float("nan")] * 16
        t3 = time.perf_counter()
        t_het, t_tsm, t_iw = t_het + t1 - t0, t_tsm + t2 - t1, t_iw + t3 - t2
        lam2 = gm.dim**2 / r2.value
        rows.append(
            [float(lm), a, sg, r1.value, r1.stderr, r2.value, r2.stderr, lam2 / sg**4,
             m.var_tsm.value, m.var_tsm.stderr, m.cov.value, m.cov.stderr, kap,
             m.kappa.value, m.kappa.stderr, m.var_mix.value, m.var_mix.stderr, *iw]
        )  # fmt: skip
    bar.close()
    return rows, {"heteroskedasticity": t_het, "tsm": t_tsm, "iwsm": t_iw}


def compute(s: Settings) -> Result:
    """Every column on the λ grid and the headline numbers (no I/O)."""
    from .. import targets as T

    t_start = time.perf_counter()
    gm = s.mixture
    n_lam = 9 if s.quick else 25
    lam = np.linspace(-6.0, 10.0, n_lam)
    n_rb = 1024 if s.quick else 4096
    n_out, n_in = (512, 8) if s.quick else (2048, 16)
    do_iwsm = True
    n_iw = IWSM_SAMPLES[0] if s.quick else IWSM_SAMPLES[1]
    key = jax.random.PRNGKey(s.seed)
    timings = {}

    t0 = time.perf_counter()
    i0 = variance.fisher_trace(gm, key=jax.random.fold_in(key, 99))
    timings["fisher"] = time.perf_counter() - t0
    j0 = i0.value / gm.dim
    lam_x = T.crossing_lambda(i0.value, gm.dim)

    rows, parts = _rows(s, lam, i0, key, n_rb, n_out, n_in, do_iwsm, n_iw)
    timings.update(parts)
    tab = np.array(rows, dtype=float)
    col = {name: tab[:, j] for j, name in enumerate(COLUMNS)}

    lam_x_mc = _crossing(lam, col["var_tsm"], col["R1"])
    kz = np.abs(col["kappa_mc"] - col["kappa_star"]) / np.maximum(col["kappa_mc_se"], 1e-300)
    gain, gain_note = mix_gain_at(gm, lam_x, s.process, i0, key, n_rb)
    summary = {
        "fisher_trace_0": {"value": i0.value, "stderr": i0.stderr, "method": i0.method},
        "J0": j0,
        "crossing_lambda_closed_form": lam_x,
        "crossing_lambda_mc_interpolated": lam_x_mc,
        "kappa_max_abs_z": float(np.max(kz)),
        "R2_sigma4_over_D(D+1)_at_max_lam": float(
            col["R2"][-1] * col["sigma"][-1] ** 4 / (gm.dim * (gm.dim + 1))
        ),
        "mix_gain_at_crossing": gain,
    }
    if gain_note:
        summary["mix_gain_note"] = gain_note
    if do_iwsm:
        ratio = col["iwsm_over_dsm"]
        ok = np.isfinite(ratio)
        summary["iwsm_over_dsm_min"] = float(ratio[ok].min()) if ok.any() else None
        summary["iwsm_over_dsm_max"] = float(ratio[ok].max()) if ok.any() else None
        summary["iwsm_break_even_lambda"] = (
            _crossing(lam[ok], col["var_iwsm"][ok], col["var_dsm_loss"][ok])
            if ok.sum() >= 2
            else float("nan")
        )
        summary["iwsm_degenerate_levels"] = int(np.sum(col["iwsm_degenerate"] > 0))
        summary["iwsm_min_weight_ess"] = float(np.min(col["weight_ess"]))
    record = {
        "mixture": mixture_reference(gm, s.mixture_source),
        "mixture_source": s.mixture_source,
        "proposal": mixture_reference(s.proposal, s.proposal_source),
        "proposal_source": s.proposal_source,
        "process": s.process,
        "lam_grid": lam.tolist(),
        "quick": s.quick,
        "seed": s.seed,
        "rb_samples": n_rb,
        "tsm_nested": [n_out, n_in],
        "iwsm_rule": "expectation engine: adaptive cubature (rtol 1e-10)"
        if gm.dim <= 2
        else (
            f"expectation engine: stratified Monte Carlo, {n_iw} draws per pass, two passes; "
            f"NaN where the weights are degenerate (Kish ESS < {T.MIN_WEIGHT_ESS:g} or "
            f"relative se of E[w] > {T.MAX_WEIGHT_RSE:g})"
        ),
        "model_for_iwsm": "moment-matched Gaussian of the mixture, noised",
    }
    timings["total"] = time.perf_counter() - t_start
    return Result(s, tab, lam, do_iwsm, summary, record, timings)


def _iwsm_figure(plots, result, col):
    """The IWSM figure: the D <= 2 default as before; elsewhere with ±2 se bands and the
    ESS bound, titled by the proposal."""
    lam, dim = result.lam, result.settings.mixture.dim
    args = (lam, col["var_dsm_loss"], col["var_sm"], col["var_iwsm"], col["ess_fraction"])
    if dim <= 2 and result.settings.proposal_source == "every other component of the mixture":
        return plots.iwsm_figure(*args)
    se = {k: col[k + "_se"] for k in ("var_sm", "var_iwsm", "ess_fraction")}
    se["var_dsm"] = col["var_dsm_loss_se"]
    return plots.iwsm_figure(
        *args,
        stderrs=se,
        ess_bound=col["ess_fraction_bound"],
        title=f"IWSM vs DSM (D = {dim}), proposal: {result.settings.proposal_source}",
    )


def write(result: Result, out) -> list[Path]:
    """``targets.csv``, the figures and ``targets.json`` into ``out``; returns their paths."""
    from .._io import save_figure, write_csv, write_json
    from ..plots import targets as plots

    out = Path(out)
    t0 = time.perf_counter()
    col = {name: result.table[:, j] for j, name in enumerate(COLUMNS)}
    lam, dim = result.lam, result.settings.mixture.dim
    figs = {
        "targets-heteroskedasticity.png": plots.heteroskedasticity_orders_figure(
            col["sigma"], col["R1"], col["R1_se"], col["R2"], col["R2_se"], dim
        ),
        "targets-tsm.png": plots.tsm_mix_figure(
            lam,
            col["R1"],
            col["var_tsm"],
            col["var_tsm_se"],
            col["var_mix"],
            col["var_mix_se"],
            col["kappa_star"],
            result.summary["crossing_lambda_closed_form"],
        ),  # fmt: skip
    }
    if result.do_iwsm:
        figs["targets-iwsm.png"] = _iwsm_figure(plots, result, col)
    else:  # an IWSM figure of an earlier run in this folder would not match the tables
        (out / "targets-iwsm.png").unlink(missing_ok=True)
    timings = {**result.timings, "figures": time.perf_counter() - t0}
    files = [write_csv(out / "targets.csv", COLUMNS, result.table.tolist())]
    files += [save_figure(fig, out / name) for name, fig in figs.items()]
    files.append(
        write_json(
            out / "targets.json",
            {
                "settings": result.settings_record,
                "summary": result.summary,
                "versions": versions("jax", "numpy", "matplotlib"),
                "timings_s": timings,
            },
        )
    )
    return files


def summary(result: Result, out=None) -> str:
    """The headline numbers as a few lines."""
    s, sm = result.settings, result.summary
    lines = [
        f"dsmtheory targets: {s.mixture!r}, process {s.process}, {result.lam.size} log-SNR levels",
        f"  J0 = trI0/D = {sm['J0']:.4g}; DSM/TSM crossing at lambda = log J0 = "
        f"{sm['crossing_lambda_closed_form']:.3f} "
        f"(MC curves cross at {sm['crossing_lambda_mc_interpolated']:.3f})",
        f"  kappa*: closed form vs nested MC, max |z| = {sm['kappa_max_abs_z']:.2f}",
    ]
    if sm["mix_gain_at_crossing"] is None:
        lines.append(f"  optimal mix vs DSM variance at the crossing: {sm['mix_gain_note']}")
    else:
        lines.append(
            "  optimal mix vs DSM variance at the crossing: "
            f"{sm['mix_gain_at_crossing']:.3g}x lower"
        )
    if result.do_iwsm and sm["iwsm_over_dsm_min"] is not None:
        lines.append(
            f"  IWSM/DSM variance ratio from {sm['iwsm_over_dsm_min']:.3g} to "
            f"{sm['iwsm_over_dsm_max']:.3g}; break-even at lambda = "
            f"{sm['iwsm_break_even_lambda']:.3f}"
        )
    if result.do_iwsm and sm["iwsm_degenerate_levels"]:
        lines.append(
            f"  IWSM: importance weights degenerate at {sm['iwsm_degenerate_levels']} of "
            f"{result.lam.size} levels (NaN there; see ess_fraction_bound)"
        )
    if out is not None:
        lines.append(f"  wrote {out} in {result.timings['total']:.1f} s")
    return "\n".join(lines)


def run(args) -> int:
    """Check the inputs, compute, write the files, print a summary."""
    return inp.run_command(args, settings_from_args, compute, write, summary)
