"""How the command line fails: a user error is one line and exit status 2; anything else is
one line naming the file that holds the full traceback, and exit status 1."""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import tempfile
import traceback
from pathlib import Path

__all__ = ["UsageError", "first_line", "save_traceback", "user_input"]


class UsageError(ValueError):
    """Bad input from the user (an option, a file, a config): printed as one line, exit
    status 2. Raised by the commands while they check their settings. A ``ValueError``, so
    that the checking functions behave like the library's to a caller in Python."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


@contextlib.contextmanager
def user_input(prefix: str = ""):
    """Treat a ``ValueError``/``TypeError`` raised inside the block as the user's: re-raise it
    as :class:`UsageError` with ``prefix`` in front of its first line. Wrap only the
    checking of input (building settings, reading files), never a computation, so that a
    bug is still reported as an internal error."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise UsageError(prefix + first_line(exc)) from exc


def _candidates(out) -> list[Path]:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"error-{stamp}-{os.getpid()}.log"
    paths = []
    if out is not None and str(out).strip():
        folder = Path(out)
        with contextlib.suppress(OSError):
            if folder.is_dir() or not folder.exists():
                paths.append(folder / "error.log")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    paths.append(Path(cache) / "dsmtheory" / name)
    paths.append(Path(tempfile.gettempdir()) / f"dsmtheory-{name}")
    return paths


def save_traceback(exc: BaseException, command: str, out=None) -> Path | None:
    """Write the full traceback of ``exc`` to ``out/error.log`` (``out`` = the command's
    ``--out`` folder) or, where that cannot be written, to a file under
    ``$XDG_CACHE_HOME/dsmtheory/`` or the temporary folder. Returns the path, or ``None``
    if no place could be written."""
    from .._io import WriteError, atomic_write_text

    text = (
        f"dsmtheory {command}: internal error\n"
        f"command line: {' '.join(getattr(sys, 'orig_argv', sys.argv))}\n"
        f"python: {sys.version.split()[0]}\n\n" + "".join(traceback.format_exception(exc))
    )
    for path in _candidates(out):
        try:
            return atomic_write_text(path, text)
        except (WriteError, OSError):
            continue
    return None
