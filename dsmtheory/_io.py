"""Result files written whole or not at all, with the permissions of an ordinary file.

Each file is written to a temporary file in the same folder, flushed to disk, given the mode
``0o666 & ~umask`` (0644 under the usual umask 022; :func:`tempfile.mkstemp` alone would
leave 0600) and then moved into place with ``os.replace`` (atomic on POSIX). An interrupt
leaves either the old file or none, never half of one. A failure to create the folder or to
write the file raises :class:`WriteError`, an :class:`OSError` whose message names the path.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
import threading
from pathlib import Path

__all__ = [
    "WriteError",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_mode",
    "save_figure",
    "write_csv",
    "write_json",
]

_UMASK_LOCK = threading.Lock()


class WriteError(OSError):
    """A result file or its folder could not be written (permission, read-only or full
    disk, a file where a folder should be). ``filename`` is the path; the message is one
    line: ``cannot write PATH: REASON``."""


def file_mode() -> int:
    """The mode a new ordinary file gets under the process umask: ``0o666 & ~umask``."""
    try:  # Linux: read the umask without changing it
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore it (the only portable way to read it)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file where a folder should be
        raise WriteError(
            errno.ENOTDIR, f"cannot write {folder}: a file is in the way", str(folder)
        ) from exc
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {folder}: {exc.strerror}", str(folder)) from exc


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent folders. Returns the path.

    Raises:
        WriteError: the folder or the file could not be written.
    """
    path = Path(path)
    _make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror}", str(path)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror}", str(path)) from exc
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, **kwargs) -> Path:
    """Write ``obj`` as indented JSON, atomically. NumPy scalars/arrays are converted."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_to_builtin, **kwargs) + "\n")


def write_csv(path, header, rows) -> Path:
    """Write a CSV with a ``header`` row and ``rows`` (iterables of values), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    for row in rows:
        w.writerow([_fmt(v) for v in row])
    return atomic_write_text(path, buf.getvalue())


def save_figure(fig, path, dpi: int = 150) -> Path:
    """Render a matplotlib figure to PNG bytes in memory, then write them atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def _fmt(v):
    if isinstance(v, float):  # np.float64 is a float subclass: repr(float) keeps it plain
        return repr(float(v))
    try:
        import numpy as np

        if isinstance(v, np.floating):
            return repr(float(v))
        if isinstance(v, np.integer):
            return int(v)
    except ImportError:  # pragma: no cover
        pass
    return v


def _to_builtin(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "__array__"):
        return np.asarray(o).tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
