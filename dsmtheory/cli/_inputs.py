"""The command line's input layer: options, output folders and mixtures (files and
built-in data sets), each checked once, with a one-line :class:`~dsmtheory.cli.UsageError`
that names the option.

Every command and the ``reproduce`` config go through these functions, so a mixture file,
a seed or a noise level is read and checked in one place. Limits that protect the machine
(a config can ask for any size in a few characters) are stated here and in
docs/getting-started.md.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ._errors import UsageError, first_line

__all__ = [
    "MAX_COMPONENTS",
    "MAX_DIM",
    "MIXTURE_SPEC_HELP",
    "SEED_MAX",
    "SIGMA_RANGE",
    "check_choice",
    "check_int",
    "check_mixture_size",
    "check_number",
    "check_seed",
    "check_sigma",
    "create_folder",
    "load_mixture",
    "output_folder",
]

#: Largest dimension of a mixture read from a file or built from a config (dense covariances:
#: the valid domain of DESIGN.md; a 100 000-dimensional request would need 80 GB per component).
MAX_DIM = 64
#: Largest number of components of a mixture read from a file or built from a config.
MAX_COMPONENTS = 4096
#: Seeds are integers in [0, SEED_MAX] (what ``jax.random.PRNGKey`` takes in 64-bit mode).
SEED_MAX = 2**63 - 1
#: Noise levels a command accepts: outside, D/σ² or α²/σ⁴ leave the float64 range.
SIGMA_RANGE = (1e-80, 1e80)


def _is_number(value) -> bool:
    import numpy as np

    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def check_int(value, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; bool, float and str are refused."""
    import numpy as np

    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UsageError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_number(
    value,
    name: str,
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite ``float`` (``> 0`` if ``positive``, within the bounds given);
    bool and str are refused."""
    if not _is_number(value):
        raise UsageError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {value}")
    if positive and not value > 0:
        raise UsageError(f"{name} must be positive (> 0), got {value!r}")
    if minimum is not None and value < minimum:
        raise UsageError(f"{name} must be >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise UsageError(f"{name} must be <= {maximum:g}, got {value!r}")
    return value


def check_seed(value, name: str = "--seed") -> int:
    """A PRNG seed: an integer in ``[0, 2**63 - 1]``."""
    return check_int(value, name, minimum=0, maximum=SEED_MAX)


def check_sigma(value, name: str) -> float:
    """A noise level σ: finite, > 0 and within :data:`SIGMA_RANGE`."""
    value = check_number(value, name, positive=True)
    lo, hi = SIGMA_RANGE
    if not lo <= value <= hi:
        raise UsageError(
            f"{name} must be between {lo:g} and {hi:g} (outside, D/sigma^2 leaves the "
            f"float64 range), got {value!r}"
        )
    return value


def check_choice(value, name: str, known) -> str:
    """``value`` if it is one of the strings ``known``, else a UsageError listing them."""
    known = list(known)
    if not isinstance(value, str) or value not in known:
        raise UsageError(f"{name} must be one of {', '.join(known)}; got {value!r}")
    return value


def check_mixture_size(num_components, dim, where: str) -> None:
    """Refuse a mixture above :data:`MAX_COMPONENTS` components or :data:`MAX_DIM`
    dimensions before it is built (``None`` = not known yet, not checked)."""
    if dim is not None and dim > MAX_DIM:
        raise UsageError(
            f"{where}: dimension {dim} is above the supported {MAX_DIM} "
            "(dense covariances; a D x D matrix per component)"
        )
    if num_components is not None and num_components > MAX_COMPONENTS:
        raise UsageError(
            f"{where}: {num_components} components is above the supported {MAX_COMPONENTS}"
        )


def output_folder(value, flag: str = "--out") -> Path:
    """Check that ``value`` names a folder that exists or can be created, and that this
    process may write in it (nothing is created here). Returns it as a :class:`Path`."""
    text = "" if value is None else os.fspath(value)
    if not text.strip():
        raise UsageError(f"{flag} must name a folder, got an empty string")
    if "\0" in text:
        raise UsageError(f"{flag} must not contain a NUL character")
    path = Path(text)
    try:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{flag} must be a folder, got the file {text!r}")
        existing = path
        if not path.exists():
            existing = next(p for p in path.absolute().parents if p.exists())
            if not existing.is_dir():
                raise UsageError(f"{flag} {text!r} lies below the file {str(existing)!r}")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {text!r}: no permission to write in {str(existing)!r}")
    except OSError as exc:
        raise UsageError(f"{flag} {text!r}: {exc.strerror or first_line(exc)}") from exc
    return path


def create_folder(path, flag: str = "--out") -> Path:
    """Create the output folder (and its parents); a failure is the user's: UsageError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise UsageError(f"{flag} {str(path)!r}: a file is in the way") from exc
    except OSError as exc:
        raise UsageError(
            f"{flag} {str(path)!r}: cannot create the folder: {exc.strerror or first_line(exc)}"
        ) from exc
    return path


def _json_sizes(data) -> tuple[int | None, int | None]:
    """(K, D) of a mixture mapping as far as they can be read without building it."""
    k = len(data["weights"]) if isinstance(data.get("weights"), list) else None
    means = data.get("means")
    d = None
    if isinstance(means, list) and means:
        first = means[0]
        d = len(first) if isinstance(first, list) else 1
    return k, d


#: How ``--mixture`` (and a config's ``mixture``) names a built-in data set.
MIXTURE_SPEC_HELP = (
    "a mixture file (.json or .npz), or a built-in data set fitted with scikit-learn: "
    "digits[:K][:key=value...] or patches[:K][:key=value...], keys seed, rank_tol "
    "(and size, num_patches for patches), e.g. digits:10, digits:10:rank_tol=1e-5, patches:20"
)


def load_mixture(path, flag: str = "--mixture"):
    """Read the mixture an option names: a built-in data set (``digits:10``,
    ``patches:20:rank_tol=1e-5``; :func:`dsmtheory.datasets.parse_spec`), a mixture
    ``.npz`` (:func:`dsmtheory.mixture_io.save`), or a mixture JSON file (as written by
    :func:`dsmtheory.to_json`). A name wins over a file of the same name (write
    ``./digits`` for a file called ``digits``).

    Every failure is one line naming ``flag`` and the file or name: not found, a folder, not
    UTF-8, malformed JSON or npz, not an object, above the size limits, refused by the
    mixture's checks, a malformed data-set name, or the optional extra not installed.

    Returns:
        The :class:`~dsmtheory.GaussianMixture`.
    """
    from .. import datasets, mixture

    text_path = os.fspath(path)
    if isinstance(text_path, bytes):
        text_path = os.fsdecode(text_path)
    where = f"{flag} {text_path!r}"
    p = Path(text_path)
    if not text_path.strip():
        raise UsageError(f"{flag} must name a mixture file or data set, got an empty string")
    if isinstance(path, str) and datasets.is_spec(text_path):
        return _load_dataset(text_path.strip(), flag)
    try:
        if p.is_dir():
            raise UsageError(f"{flag} must be a mixture file, got the folder {text_path!r}")
        raw = p.read_bytes()
    except OSError as exc:
        reason = exc.strerror or first_line(exc)
        raise UsageError(
            f"{flag} must be a mixture file, got {text_path!r}: cannot be read ({reason})"
        ) from exc
    if p.suffix.lower() == ".npz" or raw[:4] == b"PK\x03\x04":
        return _load_npz(p, where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "a mixture file is JSON or .npz"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: mixture JSON is malformed: {exc.msg} at line {exc.lineno}"
        ) from exc
    except RecursionError as exc:
        raise UsageError(f"{where}: mixture JSON is nested too deeply") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{where}: mixture JSON must be an object with keys weights, means, covs")
    check_mixture_size(*_json_sizes(data), where)
    try:
        return mixture.from_json(text)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}: {first_line(exc)}") from exc


def _load_npz(p: Path, where: str):
    from .. import mixture_io

    try:
        check_mixture_size(*mixture_io.read_sizes(p), where)
        return mixture_io.load(p)
    except UsageError:
        raise
    except (ValueError, TypeError, KeyError, EOFError) as exc:
        raise UsageError(f"{where}: {first_line(exc)}") from exc
    except OSError as exc:
        raise UsageError(f"{where}: cannot be read ({exc.strerror or first_line(exc)})") from exc


def _load_dataset(spec: str, flag: str):
    """A built-in data set by name; the first fit prints one line on stderr (it can take
    up to a minute; later runs read the cache)."""
    import sys

    from .. import datasets

    where = f"{flag} {spec!r}"
    try:
        _, kwargs = datasets.parse_spec(spec)
        check_mixture_size(kwargs.get("num_components"), datasets.spec_dim(spec), where)
        return datasets.from_spec(
            spec, on_fit=lambda msg: print(f"dsmtheory: {msg}", file=sys.stderr, flush=True)
        )
    except UsageError:
        raise
    except datasets.MissingDependencyError as exc:
        raise UsageError(f"{where}: {first_line(exc)}") from exc
    except (ValueError, TypeError) as exc:  # a bad field, K > N, a fit that failed
        raise UsageError(f"{where}: {first_line(exc)}") from exc


def run_command(args, settings_from_args, compute, write, summary) -> int:
    """The ``run(args)`` of a command that writes into ``--out``: every input checked first
    (``settings_from_args``), the folder checked and created, then ``compute``, ``write`` and
    the printed ``summary``. Returns 0."""
    s = settings_from_args(args)
    out = output_folder(args.out)
    create_folder(out)
    result = compute(s)
    write(result, out)
    print(summary(result, out), flush=True)
    return 0
