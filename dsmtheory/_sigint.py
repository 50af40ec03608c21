"""Ctrl-C (SIGINT) for the ``dsmtheory`` command line: exit status 130 at any moment, no
traceback.

Only the standard library is imported here, and ``dsmtheory/__init__.py`` imports this module
first, so that the command line is covered from its first second: importing JAX, NumPy and
SciPy takes about 1.4 s, and a ``KeyboardInterrupt`` raised inside an extension module's
initialisation surfaces as an ``ImportError`` with a traceback. When (and only when) the
process is the command line (``dsmtheory ...`` or ``python -m dsmtheory.cli ...``, read from
:data:`sys.orig_argv`), a handler is installed at import that prints one line and exits with
status 130 at once: nothing has been written yet. :func:`raising` then turns SIGINT into
``KeyboardInterrupt`` while a command runs (so it can finish its report), :func:`deferred`
holds it over short bookkeeping steps, and after the command the quiet exit comes back.

What no package can cover is the interpreter's own start before it reaches
``import dsmtheory`` (site, ``runpy``; a few tens of milliseconds, more on a loaded
machine): a Ctrl-C then is Python's own ``KeyboardInterrupt``.

Importing dsmtheory as a library changes no signal handler.
"""

from __future__ import annotations

import os
import signal
import sys

# Installed before anything else is imported (even contextlib and threading take time on a
# loaded machine): see _install_at_import.
_state = {"received": False, "cli": False}


def is_cli_process(argv=None) -> bool:
    """Whether this interpreter runs the dsmtheory command line (console script or ``-m``)."""
    argv = list(getattr(sys, "orig_argv", []) if argv is None else argv)
    modules = ("dsmtheory.cli", "dsmtheory.cli.__main__")
    i = 1  # argv[0] is the interpreter
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            return i + 1 < len(argv) and argv[i + 1] in modules
        if arg.startswith("-m"):
            return arg[2:] in modules
        if arg == "-c" or arg.startswith("-c") and not arg.startswith("--"):
            return False
        if arg in ("-X", "-W", "--check-hash-based-pycs"):  # options with a value
            i += 2
            continue
        if arg == "-" or not arg.startswith("-"):  # the script that Python runs
            return os.path.basename(arg) in ("dsmtheory", "dsmtheory-script.py")
        i += 1
    return False


def _quiet_exit(signum, frame):  # noqa: ARG001 - signal handler signature
    try:
        os.write(2, b"dsmtheory: interrupted\n")
    except OSError:
        pass
    os._exit(130)


def _install_at_import() -> None:
    if is_cli_process():
        try:
            signal.signal(signal.SIGINT, _quiet_exit)
        except ValueError:  # not the main thread
            return
        _state["cli"] = True


_install_at_import()

import contextlib  # noqa: E402 - after the handler, on purpose
import threading  # noqa: E402

__all__ = ["deferred", "is_cli_process", "raising", "received", "running_as_cli"]


def received() -> bool:
    """Whether a SIGINT arrived while :func:`raising` was active in this process."""
    return _state["received"]


def running_as_cli() -> bool:
    """Whether this process was started as the command line (the handler was installed)."""
    return _state["cli"]


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    _state["received"] = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def raising():
    """Within the block SIGINT raises ``KeyboardInterrupt`` (and :func:`received` turns
    true), even where the parent process had it ignored; afterwards the previous handler
    comes back, or the quiet exit when this process is the command line."""
    _state["received"] = False
    if not _on_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _quiet_exit if _state["cli"] else previous)


@contextlib.contextmanager
def deferred(reraise: bool = True):
    """Hold SIGINT during a short step that must not stop halfway (moving a folder into
    place, writing the report). A SIGINT that arrived is raised as ``KeyboardInterrupt``
    when the block ends if ``reraise``, else only recorded."""
    if not _on_main_thread():
        yield
        return
    pending = []

    def hold(signum, frame):  # noqa: ARG001 - signal handler signature
        _state["received"] = True
        pending.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending and reraise:
        raise KeyboardInterrupt
