"""Result files written whole or not at all: write to a temporary file in the same folder,
then ``os.replace`` it into place (atomic on POSIX). An interrupt leaves either the old file
or none, never half of one."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent folders. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
