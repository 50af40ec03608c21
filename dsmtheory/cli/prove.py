"""``dsmtheory prove``: run every derivation (sympy proofs and stated numeric checks).

Prints a table (name, symbolic/numeric, holds/FAILS, seconds) or, with ``--json``, a JSON
list of results. Exit status 0 only if every derivation holds, 1 if any fails, 2 for an
unknown ``--only`` name. Inside ``reproduce`` the results are also written as ``prove.csv``
and ``prove.json`` (:func:`write`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

from ._errors import UsageError

NAME = "prove"
HELP = "run every symbolic/numeric derivation of the propositions and report which hold"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--json`` and ``--only``."""
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        default=None,
        help="run only this derivation (repeatable); see docs/propositions.md for names",
    )


def format_table(results) -> str:
    """A plain-text table of :class:`~dsmtheory.derivations.Result` rows."""
    width = max([len("derivation")] + [len(r.name) for r in results])
    lines = [f"{'derivation':<{width}}  {'kind':<8}  {'result':<6}  {'seconds':>7}"]
    lines.append("-" * len(lines[0]))
    for r in results:
        lines.append(
            f"{r.name:<{width}}  {r.kind:<8}  {'holds' if r.holds else 'FAILS':<6}  "
            f"{r.seconds:7.2f}"
        )
    n_ok = sum(r.holds for r in results)
    lines.append("-" * len(lines[0]))
    lines.append(
        f"{n_ok}/{len(results)} hold ({sum(r.kind == 'symbolic' for r in results)} symbolic, "
        f"{sum(r.kind == 'numeric' for r in results)} numeric) in "
        f"{sum(r.seconds for r in results):.1f} s"
    )
    for r in results:
        if not r.holds:
            lines.append(f"FAILS {r.name}: {r.detail}")
    return "\n".join(lines)


class Result(NamedTuple):
    """What :func:`compute` returns.

    Attributes:
        results: one :class:`dsmtheory.derivations.Result` per derivation, in run order.
    """

    results: tuple


def settings(only=None) -> tuple[str, ...] | None:
    """The derivation names to run (``None`` = all); an unknown name is a UsageError."""
    from .. import derivations

    if only is None:
        return None
    names = tuple(only)
    unknown = [n for n in names if n not in derivations.MODULES]
    if unknown:
        raise UsageError(
            f"unknown derivation {unknown[0]!r}; known: {', '.join(derivations.MODULES)}"
        )
    return names


def compute(names=None) -> Result:
    """Run the derivations (all, or ``names``); no I/O."""
    from .. import derivations

    return Result(tuple(derivations.run(None if names is None else list(names))))


def exit_code(result: Result) -> int:
    """0 if every derivation holds, 1 otherwise."""
    return 0 if all(r.holds for r in result.results) else 1


def write(result: Result, out) -> list[Path]:
    """``prove.csv`` (one row per derivation) and ``prove.json`` (every field)."""
    from .._io import write_csv, write_json

    out = Path(out)
    rows = [
        [r.name, r.title, r.kind, "holds" if r.holds else "FAILS", round(r.seconds, 3)]
        for r in result.results
    ]
    return [
        write_csv(out / "prove.csv", ["derivation", "title", "kind", "result", "seconds"], rows),
        write_json(out / "prove.json", [r._asdict() for r in result.results]),
    ]


def summary(result: Result, out=None) -> str:
    """The plain-text table of :func:`format_table`."""
    return format_table(list(result.results))


def run(args: argparse.Namespace) -> int:
    """Run the selected derivations; 0 if all hold, 1 otherwise."""
    result = compute(settings(args.only))
    if args.json:
        text = json.dumps([r._asdict() for r in result.results], indent=2)
    else:
        text = summary(result)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return exit_code(result)
