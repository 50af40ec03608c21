"""The ``dsmtheory`` command line.

Each subcommand is one module of this package, listed in :data:`COMMAND_MODULES`. A module
provides ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; the analyses
are split the same way throughout:

* ``settings(...) -> Settings`` (and ``settings_from_args(args)``): every input checked, a
  :class:`UsageError` naming the option for anything wrong;
* ``compute(settings) -> Result``: the analysis, a documented ``NamedTuple``, no I/O;
* ``write(result, out) -> list[Path]``: the files, each written whole or not at all;
* ``summary(result) -> str``: what ``run`` prints.

``reproduce`` calls ``settings``, ``compute`` and ``write`` of the others directly.

A new command is a module here with those names and one line in :data:`COMMAND_MODULES`.

How the command line ends: a user error (an option, a file, a config) prints one line on
stderr and exits with status 2; any other failure prints one line saying it is an internal
error and where the full traceback was written (``OUT/error.log``, or a file under
``$XDG_CACHE_HOME/dsmtheory/`` when there is no usable ``--out``) and exits with status 1;
Ctrl-C exits with status 130 at any moment (see :mod:`dsmtheory._sigint`). No traceback is
ever printed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import _sigint
from .._io import WriteError
from ._errors import UsageError, first_line, save_traceback

__all__ = ["COMMAND_MODULES", "UsageError", "build_parser", "main"]

#: module names under dsmtheory.cli, in the order they are listed in --help
COMMAND_MODULES = [
    "fit",
    "heteroskedasticity",
    "prove",
    "weightings",
    "optimal_c",
    "targets",
    "compare",
    "realdata",
    "identify",
    "reproduce",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {first_line(Exception(message))}\n")
        raise SystemExit(2)


def _load_commands():
    cmds = []
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{mod_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{mod_name}":
                continue  # not built yet
            raise
        cmds.append(mod)
    return cmds


def build_parser():
    """The argument parser with every available subcommand, and ``{name: run}``."""
    parser = _Parser(
        prog="dsmtheory",
        description="Exact ground truth for the loss weighting of denoising score matching.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"dsmtheory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    handlers = {}
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        handlers[mod.NAME] = mod.run
    return parser, handlers


def _say(prog: str, text: str) -> None:
    try:
        sys.stderr.write(f"{prog}: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a closed pipe on stdout, send the rest of it to /dev/null (no second error)."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _exit_code(code) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def main(argv=None) -> int:
    """Entry point of the ``dsmtheory`` console script; returns the exit status."""
    prog = "dsmtheory"
    with _sigint.raising():
        try:
            parser, handlers = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # --help, --version, or a parse error (one line)
                return _exit_code(exc.code)
            if args.command is None:
                parser.print_help()
                return 2
            prog = f"dsmtheory {args.command}"
            from .._config import enable_x64

            enable_x64()
            return _run(handlers[args.command], args, prog)
        except KeyboardInterrupt:
            _say(prog, "interrupted")
            return 130


def _run(handler, args, prog: str) -> int:
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        raise
    except UsageError as exc:
        _say(prog, f"error: {first_line(exc)}")
        return 2
    except WriteError as exc:  # the output folder or file cannot be written
        _say(prog, f"error: {first_line(exc)}")
        return 2
    except BrokenPipeError:
        if _sigint.running_as_cli():  # not in-process: stdout may be a caller's
            _silence_stdout()
        return 1
    except SystemExit as exc:
        return _exit_code(exc.code)
    except Exception as exc:  # noqa: BLE001 - everything else is an internal error
        if _sigint.received():  # Ctrl-C that surfaced as another error (e.g. ImportError)
            raise KeyboardInterrupt from exc
        log = save_traceback(exc, args.command, getattr(args, "out", None))
        where = f"the full traceback is in {log}" if log else "the traceback could not be saved"
        _say(prog, f"internal error: {type(exc).__name__}: {first_line(exc)} ({where})")
        return 1
