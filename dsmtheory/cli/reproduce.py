"""``dsmtheory reproduce``: the whole analysis of a mixture in one report.

Runs, each into its own folder of ``--out``: the symbolic proofs (``prove``), the
heteroskedasticity of the DSM target, the weighting catalog, the optimal c(t) with the
importance-sampling and sandwich comparisons (``optimal-c``), the lower-variance targets,
and the training comparison (``compare``); then writes ``report.md`` and ``report.html``
with every figure and table, the settings, the versions and the time each part took.

The data flow is direct: the config (:mod:`dsmtheory.cli.config`) becomes each command's
``Settings`` through that command's own ``settings(...)`` (:func:`plan`), all of them
checked before anything runs, so a bad value is one line and exit status 2 up front; each
section then calls its command's ``compute`` and ``write`` (no command line is rebuilt).

A failing section is reported (and makes the exit status 1) while the rest still runs;
Ctrl-C keeps the finished sections, writes the report and exits with status 130. What a
report shows is always true of its folder (see :mod:`dsmtheory.cli.report`).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import NamedTuple

from . import _inputs as inp
from ._errors import UsageError
from ._meta import versions
from .config import SECTION_NAMES, ReproduceConfig, load_config
from .report import Section, check_report_folder, run_sections

NAME = "reproduce"
HELP = "run the whole analysis (proofs, variance, optimal c(t), training) and write a report"

#: section name -> (module under dsmtheory.cli, report title, description)
SECTIONS = {
    "prove": (
        "prove",
        "Symbolic proofs of the propositions",
        "Every derivation in dsmtheory.derivations, proved with sympy (or checked numerically "
        "where labelled so).",
    ),
    "heteroskedasticity": (
        "heteroskedasticity",
        "Heteroskedasticity of the DSM target",
        "The irreducible variance R(sigma) = D/sigma^2 - tr I_t of the DSM target, computed by "
        "Rao-Blackwellization or quadrature, with its low-noise log-log slope.",
    ),
    "weightings": (
        "weightings",
        "The weighting catalog",
        "Total weights w = p * omega_eps of the published weightings over lambda, and the "
        "1/(k + SNR) family.",
    ),
    "optimal-c": (
        "optimal_c",
        "The optimal c(t) in Lambda(t) = c(t) sigma_t^2",
        "c*(sigma) with sigma^2, EDM and Min-SNR overlaid, and what each criterion "
        "(homoskedastic, importance sampling, sandwich) recommends.",
    ),
    "targets": (
        "targets",
        "Lower-variance targets",
        "Per-lambda variances of first- and second-order DSM, target score matching, their "
        "optimal mix and importance-weighted score matching.",
    ),
    "compare": (
        "compare",
        "Training: heuristic vs optimal weighting",
        "MLP score models trained with each weighting, judged by energy distance and by the "
        "exact Fisher divergence to the true score (mean ± se over seeds in end_metrics.csv); "
        "the learned weightings (EDM2's learned u(sigma), the online c*-hat) against the exact "
        "c* per sigma bin over training.",
    ),
    "realdata": (
        "realdata",
        "Realistic data: fitted 64-D mixtures",
        "Gaussian mixtures fitted with scikit-learn to the digits (and, in the full run, to "
        "8x8 natural-image patches): c*(sigma) and the effective dimension d_eff = D/c* with "
        "the floor kept and clipped to exact zeros (rank_tol), sigma^2 and EDM (sigma_d = the "
        "data's std) overlaid, the importance-sampling comparison of noise densities, and a "
        "short compare.",
    ),
}
#: --num-sigmas of the heteroskedasticity section under --quick (unless the config sets it)
QUICK_NUM_SIGMAS = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``dsmtheory reproduce``."""
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--quick", action="store_true", help="small budgets (a few minutes on 2 cores)")
    p.add_argument("--config", help="TOML or JSON settings (see dsmtheory.cli.config)")
    p.add_argument(
        "--only",
        action="append",
        choices=SECTION_NAMES,
        help="run only this section (repeatable)",
    )


class SectionPlan(NamedTuple):
    """One section of the report, ready to run.

    Attributes:
        name: the section (a :data:`~dsmtheory.cli.config.SECTION_NAMES` entry).
        module: the command module whose ``compute``/``write``/``summary`` it calls.
        settings: that command's checked ``Settings`` (for ``prove``: the derivation names,
            ``None`` = all).
        command: the equivalent command line, shown in the report.
    """

    name: str
    module: object
    settings: object
    command: str


class Plan(NamedTuple):
    """A checked ``reproduce`` run: the folder, the config and the sections in order."""

    out: Path
    quick: bool
    config: ReproduceConfig
    sections: tuple[SectionPlan, ...]


def _module(name: str):
    import importlib

    return importlib.import_module(f"{__package__}.{SECTIONS[name][0]}")


def _command(name: str, *parts) -> str:
    """The equivalent command line of a section, for the report."""
    words = [f"dsmtheory {name}", "--out", f"<out>/{name}"]
    for part in parts:
        if isinstance(part, tuple):
            flag, value = part
            if value is not None:
                words += [flag, *(map(str, value) if isinstance(value, list | tuple) else [value])]
        elif part:
            words.append(part)
    return " ".join(str(w) for w in words)


def _mixture_arg(cfg: ReproduceConfig) -> str:
    """What a section's command line gives as ``--mixture``: the data-set name itself
    (``digits:10``), else the copy ``<out>/mixture.json`` written at the start."""
    from .. import datasets

    return cfg.mixture_label if datasets.is_spec(cfg.mixture_label) else "<out>/mixture.json"


def _section_settings(name: str, cfg: ReproduceConfig, quick: bool):
    """``(settings, command)`` of one section from the config; a UsageError names the
    section."""
    mod = _module(name)
    gm = cfg.mixture
    mix_flag = ("--mixture", None if gm is None else _mixture_arg(cfg))
    if name == "prove":
        return mod.settings(None), "dsmtheory prove"
    if name == "weightings":
        return mod.settings(), _command(name)
    if name == "heteroskedasticity":
        n = cfg.num_sigmas if cfg.num_sigmas is not None else (QUICK_NUM_SIGMAS if quick else None)
        kw = {k: v for k, v in (("sigma_min", cfg.sigma_min), ("sigma_max", cfg.sigma_max),
                                ("num_sigmas", n)) if v is not None}  # fmt: skip
        s = mod.settings(gm, source=cfg.mixture_label, process=cfg.process, seed=cfg.seed, **kw)
        cmd = _command(name, mix_flag, ("--process", cfg.process),
                       ("--sigma-min", cfg.sigma_min), ("--sigma-max", cfg.sigma_max),
                       ("--num-sigmas", n), ("--seed", cfg.seed))  # fmt: skip
        return s, cmd
    if name == "optimal-c":
        gms = mod.default_mixtures()
        if gm is not None:
            gms["user_mixture"] = gm
        s = mod.settings(gms, schedule=cfg.schedule or "ve", quick=quick, seed=cfg.seed)
        cmd = _command(name, "--quick" if quick else "", mix_flag,
                       ("--schedule", cfg.schedule), ("--seed", cfg.seed))  # fmt: skip
        return s, cmd
    if name == "targets":
        s = mod.settings(gm, mixture_source=cfg.mixture_label if gm is not None else None,
                         process=cfg.process, quick=quick, seed=cfg.seed)  # fmt: skip
        cmd = _command(name, "--quick" if quick else "", mix_flag, ("--process", cfg.process),
                       ("--seed", cfg.seed))  # fmt: skip
        return s, cmd
    if name == "compare":
        kw = {k: v for k, v in (("steps", cfg.steps), ("seeds", cfg.seeds),
                                ("batch_size", cfg.batch_size), ("capacities", cfg.capacities),
                                ("weightings", cfg.weightings)) if v is not None}  # fmt: skip
        src = cfg.mixture_label if gm is not None else None
        s = mod.settings(gm, quick=quick, source=src, **kw)
        cmd = _command(name, "--quick" if quick else "", mix_flag, ("--steps", cfg.steps),
                       ("--seeds", cfg.seeds), ("--batch-size", cfg.batch_size),
                       ("--capacities", cfg.capacities),
                       ("--weightings", cfg.weightings))  # fmt: skip
        return s, cmd
    if name == "realdata":
        s = mod.settings(None, quick=quick, seed=cfg.seed)
        return s, _command(name, "--quick" if quick else "", ("--seed", cfg.seed))
    raise UsageError(f"unknown section {name!r}; known: {', '.join(SECTION_NAMES)}")


def data_extra_missing() -> bool:
    """Whether the optional extra of the built-in data sets is missing."""
    import importlib.util

    return any(importlib.util.find_spec(m) is None for m in ("sklearn", "skimage"))


def plan(cfg: ReproduceConfig, out, *, quick: bool = False) -> Plan:
    """Check every section's settings before anything runs (UsageError naming the section).
    Without the optional extra ``dsmtheory[data]`` the ``realdata`` section is left out
    (the report says so), unless it is the only one asked for (then: UsageError)."""
    sections = []
    names = list(cfg.sections)
    if "realdata" in names and data_extra_missing():
        if names == ["realdata"]:
            raise UsageError(
                'section realdata needs the optional extra: pip install "dsmtheory[data]"'
            )
        names.remove("realdata")
    for name in names:
        try:
            s, cmd = _section_settings(name, cfg, quick)
        except ValueError as exc:
            raise UsageError(f"section {name}: {exc}") from exc
        sections.append(SectionPlan(name, _module(name), s, cmd))
    return Plan(Path(out), bool(quick), cfg, tuple(sections))


def settings_from_args(args) -> Plan:
    """The :class:`Plan` of the parsed command line: config read, folder and every section
    checked."""
    out = inp.output_folder(args.out)
    cfg = load_config(args.config) if args.config is not None else ReproduceConfig()
    if args.only:
        cfg = cfg.with_(sections=tuple(s for s in SECTION_NAMES if s in args.only))
    check_report_folder(out, SECTION_NAMES)
    return plan(cfg, out, quick=args.quick)


def _runner(sp: SectionPlan):
    """``run(staging_dir) -> status`` of one section: compute, write, print the summary."""

    def run_it(out_dir: Path) -> int:
        mod = sp.module
        result = mod.compute(sp.settings)
        mod.write(result, out_dir)
        print(mod.summary(result, out_dir.parent / sp.name))
        exit_code = getattr(mod, "exit_code", None)
        return exit_code(result) if exit_code is not None else 0

    return run_it


def _versions() -> dict:
    out = versions(
        "jax",
        "jaxlib",
        "numpy",
        "scipy",
        "sympy",
        "optax",
        "matplotlib",
        machine=True,
        devices=True,
    )
    if "devices" in out:
        out["devices"] = ", ".join(out["devices"])
    return out


def execute(p: Plan) -> int:
    """Run the sections of ``p`` into its folder and write the report: 0 if every section
    is ok, 1 if one failed, 130 after Ctrl-C."""
    from ..mixture import to_json

    cfg = p.config
    header = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "mode": "quick" if p.quick else "full",
        "config": cfg.source,
        "mixture": cfg.mixture_label,
        "process": cfg.process,
        "schedule": cfg.schedule or "each analysis' default",
        "seed": cfg.seed,
    }
    header.update({f"version {k}": v for k, v in _versions().items()})
    if "realdata" in cfg.sections and "realdata" not in [sp.name for sp in p.sections]:
        header["left out"] = 'realdata (needs the optional extra: pip install "dsmtheory[data]")'

    sections = [
        Section(sp.name, SECTIONS[sp.name][1], _runner(sp), command=sp.command,
                description=SECTIONS[sp.name][2])
        for sp in p.sections
    ]  # fmt: skip
    copy = cfg.mixture is not None and _mixture_arg(cfg) == "<out>/mixture.json"
    inputs = {"mixture.json": to_json(cfg.mixture) + "\n" if copy else None}
    others = [n for n in SECTION_NAMES if n not in cfg.sections]
    inp.create_folder(p.out)
    results, interrupted = run_sections(
        sections, p.out, header=header, inputs=inputs, others=others
    )
    print(f"report: {p.out / 'report.md'} and {p.out / 'report.html'}", flush=True)
    if interrupted:
        print("dsmtheory reproduce: interrupted; the finished sections are kept", file=sys.stderr)
        return 130
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        print(
            f"dsmtheory reproduce: failed sections: {', '.join(failed)} "
            f"(see {p.out / 'report.md'} and each one's error.txt)",
            file=sys.stderr,
        )
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Check everything, then run the sections and write the report."""
    return execute(settings_from_args(args))
