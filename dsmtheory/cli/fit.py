r"""``dsmtheory fit --data FILE --components K --out MIXTURE``: a Gaussian mixture for your
own data.

Reads ``(N, D)`` samples from ``FILE`` (``.npy``; ``.npz`` holding one array, or an array
named ``data``; ``.csv``: comma-separated numbers, one sample a row, an optional header
row, ``#`` comments), fits K components with scikit-learn's ``GaussianMixture`` (EM, the
settings of :data:`dsmtheory.datasets.FIT_SETTINGS` unless given: full covariances,
``reg_covar = 1e-6``, ``n_init = 1``, ``max_iter = 500``, ``tol = 1e-3``, k-means++
initialisation, one BLAS thread; :func:`dsmtheory.datasets.fit`), optionally clips the
regularisation floor to exact zeros (``--rank-tol``: eigenvalues ≤ it become 0), and
writes the mixture (``MIXTURE`` ending in ``.json`` or ``.npz``;
:func:`dsmtheory.mixture_io.save`) and beside it ``<stem>.fit.json`` (settings, the data's
SHA-256, convergence, the eigenvalue floor, versions). The mixture can then be given to
every command as ``--mixture MIXTURE``.

Needs the optional extra ``pip install "dsmtheory[data]"``. A bad file (unreadable, not
numbers, NaN, fewer rows than components, D above 64) is one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import _inputs as inp
from ._errors import UsageError, first_line

NAME = "fit"
HELP = "Fit a Gaussian mixture to your data (scikit-learn EM) and write it for --mixture."

#: the data file suffixes read
DATA_SUFFIXES = (".npy", ".npz", ".csv")
#: the most samples read from a data file (N·D float64 numbers must fit in memory)
MAX_SAMPLES = 2_000_000
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's options."""
    from ..datasets import FIT_SETTINGS

    parser.add_argument("--data", required=True, help="samples: .npy, .npz or .csv, (N, D)")
    parser.add_argument("--components", type=int, required=True, help="K, the components")
    # dest out_file, not out: the command line saves an internal error's traceback in
    # args.out as a folder, and this --out is a file
    parser.add_argument(
        "--out", dest="out_file", required=True, help="mixture file to write (.json or .npz)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random_state of the fit (0)")
    parser.add_argument(
        "--covariance-type",
        choices=COVARIANCE_TYPES,
        default="full",
        help="scikit-learn's covariance_type (default full)",
    )
    parser.add_argument(
        "--rank-tol",
        type=float,
        default=None,
        help="set eigenvalues <= this (absolute, like --reg-covar) to exactly 0 (default: "
        "keep the floor)",
    )
    parser.add_argument(
        "--reg-covar",
        type=float,
        default=FIT_SETTINGS["reg_covar"],
        help=f"the floor added to every covariance's diagonal ({FIT_SETTINGS['reg_covar']:g})",
    )
    parser.add_argument(
        "--max-iter", type=int, default=FIT_SETTINGS["max_iter"], help="EM iterations (500)"
    )
    parser.add_argument(
        "--n-init", type=int, default=FIT_SETTINGS["n_init"], help="initialisations (1)"
    )


class Settings(NamedTuple):
    """The checked inputs of one run.

    Attributes:
        data: the ``(N, D)`` float64 samples.
        source: the data file's name.
        num_components: K.
        out: the mixture file to write (suffix ``.json`` or ``.npz``).
        seed: scikit-learn's ``random_state``.
        covariance_type: ``full``, ``tied``, ``diag`` or ``spherical``.
        rank_tol: the clipping threshold, or ``None``.
        reg_covar: the floor.
        max_iter: EM iterations at most.
        n_init: initialisations.
    """

    data: np.ndarray
    source: str
    num_components: int
    out: Path
    seed: int
    covariance_type: str
    rank_tol: float | None
    reg_covar: float
    max_iter: int
    n_init: int


class Result(NamedTuple):
    """What :func:`compute` returns.

    Attributes:
        settings: the :class:`Settings`.
        mixture: the fitted :class:`~dsmtheory.GaussianMixture`.
        info: the :class:`dsmtheory.datasets.FitInfo` (convergence, floor, data hash).
    """

    settings: Settings
    mixture: object
    info: object


def read_data(path, flag: str = "--data") -> np.ndarray:
    """The samples of a data file as an ``(N, D)`` float64 array (one line, UsageError,
    for anything wrong: not found, an unknown suffix, not numbers, NaN or inf, empty)."""
    text = "" if path is None else str(path)
    if not text.strip():
        raise UsageError(f"{flag} must name a data file, got an empty string")
    p = Path(text)
    where = f"{flag} {text!r}"
    suffix = p.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise UsageError(f"{where}: expected a .npy, .npz or .csv file")
    try:
        if p.is_dir():
            raise UsageError(f"{where} is a folder, not a data file")
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"{where}: cannot be read ({exc.strerror or first_line(exc)})") from exc
    try:
        if suffix == ".csv":
            x = _read_csv(raw, where)
        else:
            x = _read_numpy(raw, suffix, where)
    except UsageError:
        raise
    except (ValueError, TypeError, OSError, EOFError, KeyError) as exc:
        raise UsageError(f"{where}: not a readable {suffix} file: {first_line(exc)}") from exc
    return _check_samples(x, where)


def _read_numpy(raw: bytes, suffix: str, where: str):
    obj = np.load(io.BytesIO(raw), allow_pickle=False)
    if suffix == ".npy":
        if not isinstance(obj, np.ndarray):
            raise UsageError(f"{where}: expected one array (.npy), got an archive")
        return obj
    if not isinstance(obj, np.lib.npyio.NpzFile):
        raise UsageError(f"{where}: expected an .npz archive, got a single array")
    with obj:
        names = list(obj.files)
        if len(names) == 1:
            return obj[names[0]]
        if "data" in names:
            return obj["data"]
        shown = ", ".join(names) if names else "none"
        raise UsageError(
            f"{where}: an .npz must hold one array or one named 'data'; its arrays: {shown}"
        )


def _read_csv(raw: bytes, where: str):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte at offset {exc.start})") from exc
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise UsageError(f"{where}: no data rows")
    first = [f.strip() for f in lines[0].split(",")]
    try:
        [float(f) for f in first]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    width = len(first)
    rows = []
    for i, line in enumerate(lines[skip:], start=skip + 1):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != width:
            raise UsageError(
                f"{where}: data row {i} has {len(fields)} fields, the first has {width}"
            )
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise UsageError(f"{where}: data row {i}: {bad!r} is not a number") from None
        if len(rows) > MAX_SAMPLES:
            raise UsageError(f"{where}: more than {MAX_SAMPLES} rows")
    if not rows:
        raise UsageError(f"{where}: a header but no data rows")
    return np.asarray(rows, dtype=np.float64)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_samples(x, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        kind = {"b": "booleans", "c": "complex numbers", "U": "strings", "O": "objects"}
        raise UsageError(
            f"{where}: samples must be real numbers, got {kind.get(x.dtype.kind, x.dtype)}"
        )
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise UsageError(f"{where}: samples must be an (N, D) array, got shape {x.shape}")
    n, d = x.shape
    if n < 2 or d < 1:
        raise UsageError(f"{where}: need at least 2 samples of dimension >= 1, got {x.shape}")
    if n > MAX_SAMPLES:
        raise UsageError(f"{where}: {n} samples is above the supported {MAX_SAMPLES}")
    inp.check_mixture_size(None, d, where)
    x = x.astype(np.float64)
    finite = np.all(np.isfinite(x), axis=1)
    if not finite.all():
        raise UsageError(
            f"{where}: samples must be finite; row {int(np.argmin(finite))} has NaN or inf"
        )
    return np.ascontiguousarray(x)


def settings(
    data,
    *,
    source: str = "data",
    num_components: int,
    out,
    seed: int = 0,
    covariance_type: str = "full",
    rank_tol: float | None = None,
    reg_covar: float | None = None,
    max_iter: int | None = None,
    n_init: int | None = None,
) -> Settings:
    """Check the inputs (UsageError naming the option)."""
    from ..datasets import FIT_SETTINGS

    x = _check_samples(data, f"--data {source!r}")
    k = inp.check_int(num_components, "--components", minimum=1, maximum=inp.MAX_COMPONENTS)
    if k > x.shape[0]:
        raise UsageError(
            f"--components {k} is more than the {x.shape[0]} samples of --data {source!r}"
        )
    seed = inp.check_int(seed, "--seed", minimum=0, maximum=2**32 - 1)
    covariance_type = inp.check_choice(covariance_type, "--covariance-type", COVARIANCE_TYPES)
    if rank_tol is not None:
        rank_tol = inp.check_number(rank_tol, "--rank-tol", minimum=0.0)
    reg = FIT_SETTINGS["reg_covar"] if reg_covar is None else reg_covar
    reg = inp.check_number(reg, "--reg-covar", positive=True)
    max_iter = inp.check_int(
        FIT_SETTINGS["max_iter"] if max_iter is None else max_iter,
        "--max-iter", minimum=1, maximum=1_000_000,
    )  # fmt: skip
    n_init = inp.check_int(
        FIT_SETTINGS["n_init"] if n_init is None else n_init, "--n-init", minimum=1, maximum=1000
    )
    out = _check_out(out)
    return Settings(x, str(source), k, out, seed, covariance_type, rank_tol, reg, max_iter, n_init)


def _check_out(out) -> Path:
    text = "" if out is None else str(out)
    if not text.strip():
        raise UsageError("--out must name a mixture file, got an empty string")
    p = Path(text)
    if p.suffix.lower() not in (".json", ".npz"):
        raise UsageError(f"--out must end in .json or .npz, got {text!r}")
    if p.is_dir():
        raise UsageError(f"--out must be a file, got the folder {text!r}")
    inp.output_folder(p.parent if str(p.parent) else ".", "--out's folder")
    return p


def settings_from_args(args) -> Settings:
    """:class:`Settings` from the parsed command line (the data file read here)."""
    x = read_data(args.data)
    return settings(
        x,
        source=str(args.data),
        num_components=args.components,
        out=args.out_file,
        seed=args.seed,
        covariance_type=args.covariance_type,
        rank_tol=args.rank_tol,
        reg_covar=args.reg_covar,
        max_iter=args.max_iter,
        n_init=args.n_init,
    )


def compute(s: Settings) -> Result:
    """Fit the mixture (no I/O). A fit scikit-learn cannot make (an ill-defined covariance)
    and a missing optional extra are the user's: UsageError."""
    from .. import datasets

    try:
        with warnings.catch_warnings():
            # convergence is reported in the summary and the .fit.json instead
            warnings.simplefilter("ignore", RuntimeWarning)
            gm, info = datasets.fit(
                s.data, s.num_components, seed=s.seed, covariance_type=s.covariance_type,
                reg_covar=s.reg_covar, n_init=s.n_init, max_iter=s.max_iter,
                rank_tol=s.rank_tol, return_info=True,
            )  # fmt: skip
    except datasets.MissingDependencyError as exc:
        raise UsageError(first_line(exc)) from exc
    except datasets.FitError as exc:
        raise UsageError(
            f"{first_line(exc)} (try a larger --reg-covar or fewer --components)"
        ) from exc
    return Result(s, gm, info)


def info_path(out) -> Path:
    """The ``.fit.json`` written beside the mixture file ``out``."""
    out = Path(out)
    return out.with_name(out.stem + ".fit.json")


def write(result: Result, out=None) -> list[Path]:
    """Write the mixture (``settings.out``, or ``out`` if given) and its ``.fit.json``."""
    from .. import mixture_io
    from .._io import write_json
    from ._meta import versions

    s, info, floor = result.settings, result.info, result.info.floor
    path = Path(out) if out is not None else s.out
    files = [mixture_io.save(result.mixture, path)]
    meta = {
        "command": NAME,
        "settings": {
            "data": s.source,
            "data_sha256": info.data_sha256,
            "num_samples": info.num_samples,
            "dim": info.dim,
            "num_components": s.num_components,
            "seed": s.seed,
            "rank_tol": s.rank_tol,
            **info.settings,
        },
        "fit": {
            "converged": info.converged,
            "n_iter": info.n_iter,
            "mean_log_likelihood": info.lower_bound,
            "fit_seconds": info.fit_seconds,
        },
        "eigenvalue_floor": {
            "floor": floor.floor,
            "on_floor_rtol": _floor_rtol(),
            "on_floor": floor.on_floor.tolist(),
            "median_on_floor": floor.median_on_floor,
            "min_eigenvalue": floor.min_eigenvalue.tolist(),
            "rank_tol": floor.rank_tol,
            "zeroed": floor.zeroed.tolist(),
            "ranks": floor.ranks.tolist(),
            "mean_rank": floor.mean_rank,
        },
        # the hash of the mixture as a reader of the file gets it (covariances are
        # re-factorized on reading, which can change their last bits)
        "mixture": mixture_io.reference(mixture_io.load(path), str(path)),
        "versions": versions("sklearn", "numpy", "scipy", "jax"),
    }
    files.append(write_json(info_path(path), meta))
    return files


def _floor_rtol() -> float:
    from ..datasets import FLOOR_RTOL

    return FLOOR_RTOL


def summary(result: Result, files=None) -> str:
    """What the fit found, in a few lines."""
    s, info, floor = result.settings, result.info, result.info.floor
    d = info.dim
    conv = (
        f"converged in {info.n_iter} EM iterations"
        if info.converged
        else f"did NOT converge in {info.n_iter} EM iterations (raise --max-iter)"
    )
    lines = [
        f"fit: K = {s.num_components} ({s.covariance_type} covariances) on N = "
        f"{info.num_samples} samples in D = {d} from {s.source}: {conv}, mean log-likelihood "
        f"{info.lower_bound:.6g}, {info.fit_seconds:.2f} s",
        f"eigenvalue floor (reg_covar) {floor.floor:g}: a median of {floor.median_on_floor:g} "
        f"of {d} eigenvalues per component on it (range {int(floor.on_floor.min())}-"
        f"{int(floor.on_floor.max())}); smallest eigenvalue {floor.min_eigenvalue.min():.3g}",
    ]
    if floor.rank_tol is None:
        lines.append("every component full rank (--rank-tol not given)")
    else:
        lines.append(
            f"--rank-tol {floor.rank_tol:g} set {int(floor.zeroed.sum())} eigenvalues to 0: "
            f"component ranks {int(floor.ranks.min())}-{int(floor.ranks.max())}, mean rank "
            f"sum_k pi_k rank_k = {floor.mean_rank:.4g}"
        )
    if files:
        lines.append("wrote " + ", ".join(str(f) for f in files))
    return "\n".join(lines)


def run(args) -> int:
    """Read and check the inputs, fit, write the two files, print a summary. Returns 0."""
    s = settings_from_args(args)
    result = compute(s)
    files = write(result)
    print(summary(result, files), flush=True)
    return 0
