"""The ``dsmtheory`` command line.

Each subcommand lives in its own module under :mod:`dsmtheory.commands` exposing
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Bad arguments or
input print one line on stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module names under dsmtheory.commands, in the order they are listed in --help
COMMAND_MODULES = [
    "heteroskedasticity",
    "prove",
    "weightings",
    "optimal_c",
    "targets",
    "compare",
    "reproduce",
    "identify",
]


class UsageError(Exception):
    """Raised by a subcommand for bad user input; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"dsmtheory: error: {message}\n")
        raise SystemExit(2)


def _load_commands():
    cmds = []
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"dsmtheory.commands.{mod_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dsmtheory.commands.{mod_name}":
                continue  # not built yet
            raise
        cmds.append(mod)
    return cmds


def build_parser():
    """The argument parser with every available subcommand."""
    parser = _Parser(
        prog="dsmtheory",
        description="Exact ground truth for the loss weighting of denoising score matching.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"dsmtheory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    handlers = {}
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        handlers[mod.NAME] = mod.run
    return parser, handlers


def main(argv=None) -> int:
    """Entry point of the ``dsmtheory`` console script."""
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from ._config import enable_x64

    enable_x64()
    try:
        return int(handlers[args.command](args) or 0)
    except (UsageError, ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"dsmtheory {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"dsmtheory {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
