"""``dsmtheory reproduce``: the whole analysis of a mixture in one report.

Runs, each into its own folder of ``--out``: the symbolic proofs (``prove``), the
heteroskedasticity of the DSM target, the weighting catalog, the optimal c(t) with the
importance-sampling and sandwich comparisons (``optimal-c``), the lower-variance targets,
and the training comparison (``compare``); then writes ``report.md`` and ``report.html``
with every figure and table, the settings, the versions and the time each part took.

A failing section is reported (and makes the exit status 1) while the rest still runs;
Ctrl-C keeps the finished sections, writes the report and exits with status 130.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
from pathlib import Path

from .._io import atomic_write_text
from ._meta import versions
from .config import SECTION_NAMES, ReproduceConfig, load_config
from .report import Section, run_sections

NAME = "reproduce"
HELP = "run the whole analysis (proofs, variance, optimal c(t), training) and write a report"

# section name -> (module under dsmtheory.commands, report title, description)
_SECTIONS = {
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
        "exact Fisher divergence to the true score.",
    ),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument("--quick", action="store_true", help="small budgets (a few minutes on 2 cores)")
    p.add_argument("--config", type=Path, help="TOML or JSON settings (see dsmtheory.cli.config)")
    p.add_argument(
        "--only",
        action="append",
        choices=SECTION_NAMES,
        help="run only this section (repeatable)",
    )


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


def _options(sub_parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in sub_parser._actions for s in a.option_strings}


def _prove_section(title: str, description: str) -> Section:
    """The proofs, with their results also written as CSV and JSON for the report."""

    def run_it(out_dir: Path) -> int:
        from .. import derivations
        from .._io import write_csv, write_json
        from .prove import format_table

        results = derivations.run()
        print(format_table(results))
        rows = [
            [r.name, r.title, r.kind, "holds" if r.holds else "FAILS", round(r.seconds, 3)]
            for r in results
        ]
        write_csv(out_dir / "prove.csv", ["derivation", "title", "kind", "result", "seconds"], rows)
        write_json(out_dir / "prove.json", [r._asdict() for r in results])
        return 0 if all(r.holds for r in results) else 1

    return Section("prove", title, run_it, command="dsmtheory prove", description=description)


def _make_section(name: str, cfg: ReproduceConfig, quick: bool, mixture_file: Path | None):
    mod_name, title, description = _SECTIONS[name]
    if name == "prove":
        return _prove_section(title, description)
    try:
        mod = importlib.import_module(f"dsmtheory.cli.{mod_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"dsmtheory.cli.{mod_name}":
            raise

        def missing(_out: Path) -> int:
            raise RuntimeError(f"the {name!r} analysis is not available in this installation")

        return Section(name, title, missing, description=description)

    parser = argparse.ArgumentParser(prog=f"dsmtheory {mod.NAME}")
    mod.add_arguments(parser)
    opts = _options(parser)

    def build_argv(out_dir: Path) -> list[str]:
        argv: list[str] = []
        if "--out" in opts:
            argv += ["--out", str(out_dir)]
        if quick and "--quick" in opts:
            argv.append("--quick")
        if mixture_file is not None and "--mixture" in opts:
            argv += ["--mixture", str(mixture_file)]
        if "--seed" in opts:
            argv += ["--seed", str(cfg.seed)]
        if name == "heteroskedasticity":
            if "--process" in opts:
                argv += ["--process", cfg.process]
            for flag, val in (
                ("--sigma-min", cfg.sigma_min),
                ("--sigma-max", cfg.sigma_max),
                ("--num-sigmas", cfg.num_sigmas),
            ):
                if val is not None and flag in opts:
                    argv += [flag, str(val)]
            if quick and cfg.num_sigmas is None and "--num-sigmas" in opts:
                argv += ["--num-sigmas", "20"]
        if name == "targets" and "--process" in opts:
            argv += ["--process", cfg.process]
        if name == "optimal-c" and cfg.schedule and "--schedule" in opts:
            argv += ["--schedule", cfg.schedule]
        if name == "compare":
            if cfg.steps is not None and "--steps" in opts:
                argv += ["--steps", str(cfg.steps)]
            if cfg.seeds is not None and "--seeds" in opts:
                argv += ["--seeds", str(cfg.seeds)]
            if cfg.batch_size is not None and "--batch-size" in opts:
                argv += ["--batch-size", str(cfg.batch_size)]
            if cfg.capacities is not None and "--capacities" in opts:
                argv += ["--capacities", *(str(c) for c in cfg.capacities)]
            if cfg.weightings is not None and "--weightings" in opts:
                argv += ["--weightings", *cfg.weightings]
        return argv

    def run_it(out_dir: Path) -> int:
        args = parser.parse_args(build_argv(out_dir))
        return int(mod.run(args) or 0)

    shown = " ".join(build_argv(Path("<out>") / name))
    return Section(
        name,
        title,
        run_it,
        command=f"dsmtheory {mod.NAME} {shown}".strip(),
        description=description,
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config) if args.config else ReproduceConfig()
    if args.only:
        cfg = cfg.with_(sections=tuple(s for s in SECTION_NAMES if s in args.only))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mixture_file = None
    if cfg.mixture is not None:
        from ..mixture import to_json

        mixture_file = out / "mixture.json"
        atomic_write_text(mixture_file, to_json(cfg.mixture) + "\n")
    sections = [_make_section(n, cfg, args.quick, mixture_file) for n in cfg.sections]
    header = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "mode": "quick" if args.quick else "full",
        "config": cfg.source,
        "mixture": cfg.mixture_label,
        "process": cfg.process,
        "schedule": cfg.schedule or "each analysis' default",
        "seed": cfg.seed,
    }
    header.update({f"version {k}": v for k, v in _versions().items()})
    results, interrupted = run_sections(sections, out, header=header)
    failed = [r.name for r in results if r.status == "failed"]
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    if interrupted:
        print("interrupted: the finished sections are kept", file=sys.stderr)
        return 130
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
