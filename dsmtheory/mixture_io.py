r"""Mixture files: JSON for small mixtures, NumPy ``.npz`` (binary float64) for large ones,
and the short reference that result files hold instead of the mixture itself.

Two formats, chosen by the file's suffix in :func:`save` and by its content in :func:`load`:

* ``.json``: ``{"weights": [...], "means": [[...]], "covs": [...]}`` as read by
  :func:`dsmtheory.from_json`; floats written with ``repr`` (17 significant digits), so a
  float64 value is read back exactly. About 20 bytes a number: 19 MB for K = 200 components
  in D = 64 (measured; docs/datasets.md).
* ``.npz``: a NumPy zip archive (uncompressed) of little-endian float64 arrays ``weights``
  ``(K,)``, ``means`` ``(K, D)``, ``covs`` ``(K, D, D)`` (or ``(K, D)`` for axis-aligned
  components), plus ``format`` = ``"dsmtheory.mixture"`` and ``format_version`` = 1. 8 bytes a
  number: 6.6 MB for K = 200, D = 64. Read with ``allow_pickle=False``; the array headers are
  read (and the sizes checked) before any array is.

Axis-aligned (``gm.diagonal``) mixtures are written with ``(K, D)`` diagonal covariances in
both formats, others with full ``(K, D, D)`` ones.

A result file refers to its mixture with :func:`reference`: where it came from (a data-set
name such as ``digits:10`` or a file path), K, D, and :func:`content_hash`, a SHA-256 of the
mixture's float64 weights, means and covariances; the mixture itself is included (key
``inline``) only when its JSON is under :data:`INLINE_LIMIT` = 10 000 bytes (the 2-D toy
mixtures; never a 64-D one).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import _io
from .mixture import GaussianMixture, check_mixture, from_json

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INLINE_LIMIT",
    "SUFFIXES",
    "content_hash",
    "load",
    "mixture_dict",
    "read_sizes",
    "reference",
    "save",
    "to_npz_bytes",
]

#: The ``format`` entry of a mixture ``.npz``.
FORMAT = "dsmtheory.mixture"
#: The ``format_version`` entry of a mixture ``.npz`` written by this version.
FORMAT_VERSION = 1
#: A mixture whose JSON is shorter than this many bytes is included in result files.
INLINE_LIMIT = 10_000
#: The suffixes :func:`save` accepts.
SUFFIXES = (".json", ".npz")

_NPZ_REQUIRED = ("weights", "means", "covs")
_NPZ_KEYS = (*_NPZ_REQUIRED, "format", "format_version")
_ZIP_MAGIC = b"PK\x03\x04"


def mixture_dict(gm: GaussianMixture) -> dict:
    """``{"weights", "means", "covs"}`` as float64 NumPy arrays: ``covs`` ``(K, D)`` for an
    axis-aligned mixture (its diagonals, exact), ``(K, D, D)`` otherwise."""
    check_mixture(gm)
    covs = np.asarray(gm.covs, dtype=np.float64)
    if gm.diagonal:
        covs = np.ascontiguousarray(np.diagonal(covs, axis1=1, axis2=2))
    return {
        "weights": np.asarray(gm.weights, dtype=np.float64),
        "means": np.asarray(gm.means, dtype=np.float64),
        "covs": covs,
    }


def to_npz_bytes(gm: GaussianMixture) -> bytes:
    """The ``.npz`` file of ``gm`` as bytes (see the module docstring)."""
    arrays = {k: v.astype("<f8") for k, v in mixture_dict(gm).items()}
    buf = io.BytesIO()
    np.savez(buf, format=np.array(FORMAT), format_version=np.array(FORMAT_VERSION), **arrays)
    return buf.getvalue()


def save(gm: GaussianMixture, path) -> Path:
    """Write ``gm`` to ``path`` (``.json`` or ``.npz``, by its suffix), atomically.

    Args:
        gm: the mixture.
        path: the file; its suffix chooses the format.

    Returns:
        The path written.

    Raises:
        ValueError: the suffix is neither ``.json`` nor ``.npz``.
        TypeError: ``gm`` is not a :class:`~dsmtheory.GaussianMixture`.
        dsmtheory._io.WriteError: the file cannot be written (an ``OSError``).

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.save_mixture(dsm.ring(), "ring.npz")  # doctest: +SKIP
        >>> dsm.load_mixture("ring.npz")  # doctest: +SKIP
        GaussianMixture(K=8, D=2, axis-aligned covariances)
    """
    check_mixture(gm)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"path must end in .json or .npz, got {str(path)!r}")
    if suffix == ".npz":
        return _io.atomic_write_bytes(path, to_npz_bytes(gm))
    return _io.atomic_write_text(path, _json_text(gm) + "\n")


def _json_text(gm: GaussianMixture) -> str:
    return json.dumps({k: v.tolist() for k, v in mixture_dict(gm).items()})


def _is_npz(path: Path) -> bool:
    if path.suffix.lower() == ".npz":
        return True
    with open(path, "rb") as fh:
        return fh.read(4) == _ZIP_MAGIC


def _npz_headers(path: Path) -> dict:
    """``{name: (shape, dtype)}`` of the arrays of an ``.npz``, from their headers only."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename
                if not name.endswith(".npy"):
                    raise ValueError(f"unexpected member {name!r} (not an array)")
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise ValueError(f"array {name!r} has an unsupported .npy version")
                out[name[:-4]] = (shape, dtype)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not an .npz (zip) file: {exc}") from exc
    return out


def read_sizes(path) -> tuple[int | None, int | None]:
    """``(K, D)`` of a mixture file as far as they can be read without building it (an
    ``.npz``: from the array headers; JSON: from the lists). ``None`` where unknown.

    Raises:
        ValueError: an ``.npz`` that is not a readable archive of arrays.
        OSError: the file cannot be read.
    """
    path = Path(path)
    if _is_npz(path):
        heads = _npz_headers(path)
        k = heads["weights"][0][0] if len(heads.get("weights", ((),))[0]) == 1 else None
        means = heads.get("means", ((),))[0]
        d = means[1] if len(means) == 2 else None
        return k, d
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return None, None
    k = len(data["weights"]) if isinstance(data.get("weights"), list) else None
    means = data.get("means")
    d = None
    if isinstance(means, list) and means:
        d = len(means[0]) if isinstance(means[0], list) else 1
    return k, d


def load(path, *, max_components: int | None = None, max_dim: int | None = None):
    """Read a mixture file written by :func:`save` (or :func:`dsmtheory.to_json`).

    An ``.npz`` is recognised by its suffix or its zip signature, anything else is read as
    JSON. Sizes are checked against ``max_components``/``max_dim`` before the arrays are
    read.

    Args:
        path: the file.
        max_components: refuse more components (``None``: no limit).
        max_dim: refuse a larger dimension (``None``: no limit).

    Returns:
        The :class:`~dsmtheory.GaussianMixture`.

    Raises:
        ValueError: one line saying what is wrong (malformed, unknown or missing keys, a
            wrong dtype or shape, above a limit, or refused by the mixture's checks).
        OSError: the file cannot be read.
    """
    path = Path(os.fspath(path))
    if not _is_npz(path):
        k, d = read_sizes(path)
        _check_limits(k, d, max_components, max_dim)
        return from_json(path.read_text(encoding="utf-8"))
    heads = _npz_headers(path)
    unknown = sorted(set(heads) - set(_NPZ_KEYS))
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in the mixture .npz; known: "
            f"{', '.join(_NPZ_KEYS)}"
        )
    missing = [k for k in _NPZ_REQUIRED if k not in heads]
    if missing:
        raise ValueError(f"the mixture .npz lacks key(s): {', '.join(missing)}")
    for name in _NPZ_REQUIRED:
        shape, dtype = heads[name]
        if dtype.kind not in "iuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {dtype}")
    w_shape, m_shape = heads["weights"][0], heads["means"][0]
    if len(w_shape) != 1 or len(m_shape) != 2:
        raise ValueError(
            f"weights must have shape (K,) and means (K, D), got {w_shape} and {m_shape}"
        )
    _check_limits(w_shape[0], m_shape[1], max_components, max_dim)
    with np.load(path, allow_pickle=False) as f:
        if "format" in heads and str(f["format"]) != FORMAT:
            raise ValueError(f"format must be {FORMAT!r}, got {str(f['format'])!r}")
        if "format_version" in heads:
            version = f["format_version"]
            if version.shape != () or version.dtype.kind not in "iu":
                raise ValueError("format_version must be an integer")
            if int(version) > FORMAT_VERSION:
                raise ValueError(
                    f"format_version {int(version)} is newer than this dsmtheory reads "
                    f"({FORMAT_VERSION}); upgrade dsmtheory"
                )
        arrays = {k: np.asarray(f[k], dtype=np.float64) for k in _NPZ_REQUIRED}
    try:
        return GaussianMixture(arrays["weights"], arrays["means"], arrays["covs"])
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


def _check_limits(k, d, max_components, max_dim) -> None:
    if max_dim is not None and d is not None and d > max_dim:
        raise ValueError(f"dimension {d} is above the supported {max_dim}")
    if max_components is not None and k is not None and k > max_components:
        raise ValueError(f"{k} components is above the supported {max_components}")


def content_hash(gm: GaussianMixture) -> str:
    r"""``"sha256:<hex>"`` of the mixture's content: the shapes and the little-endian
    float64 bytes of ``gm.weights`` ``(K,)``, ``gm.means`` ``(K, D)`` and ``gm.covs``
    ``(K, D, D)``. Two mixtures with the same hash hold the same numbers; to check a file
    against a result, load it with :func:`load` and hash it."""
    check_mixture(gm)
    h = hashlib.sha256(b"dsmtheory.mixture.v1")
    for arr in (gm.weights, gm.means, gm.covs):
        a = np.ascontiguousarray(np.asarray(arr), dtype="<f8")
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def reference(gm: GaussianMixture, source: str | None = None, *, inline_limit=INLINE_LIMIT):
    """What a result file records about its mixture instead of embedding it.

    Args:
        gm: the mixture.
        source: how it was given: a data-set name (``"digits:10"``), a file path, or a
            constructor (``"ring()"``).
        inline_limit: include the mixture itself (key ``inline``, the JSON format of
            :func:`save`) only when its JSON is shorter than this many bytes.

    Returns:
        ``{"source", "num_components", "dim", "sha256"}`` and, for a small mixture,
        ``"inline"``.
    """
    check_mixture(gm)
    out = {
        "source": source,
        "num_components": int(gm.num_components),
        "dim": int(gm.dim),
        "sha256": content_hash(gm),
    }
    # the JSON of the mixture is about 20 bytes a number: skip building it when too large
    numbers = gm.num_components * (1 + gm.dim + gm.dim * (1 if gm.diagonal else gm.dim))
    if numbers * 8 < inline_limit:
        text = _json_text(gm)
        if len(text.encode()) < inline_limit:
            out["inline"] = json.loads(text)
    return out
