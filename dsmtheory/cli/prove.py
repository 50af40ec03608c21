"""``dsmtheory prove``: run every derivation (sympy proofs and stated numeric checks).

Prints a table (name, symbolic/numeric, holds/FAILS, seconds) or, with ``--json``, a JSON
list of results. Exit status 0 only if every derivation holds, 1 if any fails, 2 for an
unknown ``--only`` name.
"""

from __future__ import annotations

import argparse
import json
import sys

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


def run(args: argparse.Namespace) -> int:
    """Run the selected derivations; 0 if all hold, 1 otherwise."""
    from .. import derivations

    names = args.only
    if names is not None:
        unknown = [n for n in names if n not in derivations.MODULES]
        if unknown:
            raise ValueError(
                f"unknown derivation {unknown[0]!r}; known: {', '.join(derivations.MODULES)}"
            )
    results = derivations.run(names)
    if args.json:
        sys.stdout.write(json.dumps([r._asdict() for r in results], indent=2) + "\n")
    else:
        sys.stdout.write(format_table(results) + "\n")
    return 0 if all(r.holds for r in results) else 1
