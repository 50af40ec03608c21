"""Configuration of ``dsmtheory reproduce``: a TOML or JSON file, validated with clear errors.

Example (TOML)::

    mixture = "ring"                # or {name = "grid_2d", n = 3}, or {file = "my.json"} (or
                                    # .npz), or an inline {weights = [...], means = [...],
                                    # covs = [...]}, or a built-in data set: "digits:10",
                                    # "patches:20:rank_tol=1e-5", or {name = "digits",
                                    # num_components = 50, seed = 0, rank_tol = 1e-5}
    process = "ve"                  # "ve" or "vp": the noising process of the analyses
    schedule = "ve"                 # schedule name for the optimal-c analysis
    seed = 0
    sections = ["prove", "heteroskedasticity", "weightings", "optimal-c", "targets", "compare",
                "realdata"]         # realdata: the built-in 64-D data sets (needs the extra
                                    # dsmtheory[data]; left out, with a note, without it)

    [heteroskedasticity]
    sigma_min = 1e-3
    sigma_max = 10.0
    num_sigmas = 40

    [training]                      # the compare section (trained score models)
    steps = 2000
    seeds = 4
    batch_size = 256
    capacities = [25, 100, 500, 1000]
    weightings = ["simple", "c_star", "edm", "min_snr"]

Every key is optional; unknown keys are an error that lists the known ones. Numbers must be
numbers (``"0.1"`` and ``true`` are refused), seeds integers in [0, 2**63 - 1], noise levels
within :data:`~dsmtheory.cli._inputs.SIGMA_RANGE`, and a mixture at most
:data:`~dsmtheory.cli._inputs.MAX_DIM` dimensions and
:data:`~dsmtheory.cli._inputs.MAX_COMPONENTS` components (checked before it is built). With
``process = "vp"`` the heteroskedasticity section needs ``sigma_max < 1``.
"""

from __future__ import annotations

import inspect
import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import mixture as _mixture
from .. import schedules as _schedules
from . import _inputs as inp
from ._errors import UsageError, first_line

__all__ = ["ReproduceConfig", "SECTION_NAMES", "BUILTIN_MIXTURES", "load_config", "parse_config"]

#: Sections of the report, in the order they run.
SECTION_NAMES = (
    "prove", "heteroskedasticity", "weightings", "optimal-c", "targets", "compare", "realdata",
)  # fmt: skip

#: Named mixtures a config may ask for, with the constructor each one calls.
BUILTIN_MIXTURES = {
    "ring": _mixture.ring,
    "bimodal_1d": _mixture.bimodal_1d,
    "grid_2d": _mixture.grid_2d,
    "random_anisotropic": _mixture.random_anisotropic,
    "single_gaussian": _mixture.single_gaussian,
}

_TOP_KEYS = {"mixture", "process", "schedule", "seed", "sections", "heteroskedasticity", "training"}
_HET_KEYS = {"sigma_min", "sigma_max", "num_sigmas"}
_TRAIN_KEYS = {"steps", "seeds", "batch_size", "capacities", "weightings"}
_INLINE_KEYS = {"weights", "means", "covs"}
#: upper bounds of the [heteroskedasticity] and [training] counts
_MAX_SIGMAS = 10_000
_MAX_CAPACITY = 1_000_000
_MAX_SEEDS = 1_000
_MAX_BATCH = 1_000_000


@dataclass(frozen=True)
class ReproduceConfig:
    """Validated settings of one ``reproduce`` run (``None`` = the subcommand's default)."""

    mixture: object = None  # a GaussianMixture, or None for each analysis' default
    mixture_label: str = "default"
    process: str = "ve"
    schedule: str | None = None
    seed: int = 0
    sections: tuple[str, ...] = SECTION_NAMES
    sigma_min: float | None = None
    sigma_max: float | None = None
    num_sigmas: int | None = None
    steps: int | None = None
    seeds: int | None = None
    batch_size: int | None = None
    capacities: tuple[int, ...] | None = None
    weightings: tuple[str, ...] | None = None
    source: str = "built-in defaults"
    extra: dict = field(default_factory=dict)

    def with_(self, **kw) -> ReproduceConfig:
        """A copy with some fields replaced."""
        return replace(self, **kw)


def load_config(path) -> ReproduceConfig:
    """Read and validate a config file (``.toml`` or ``.json``).

    Raises:
        ValueError: one line naming the file and what is wrong (a
            :class:`~dsmtheory.cli.UsageError`).
    """
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise UsageError(f"config {path}: expected a .toml or .json file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"config {path}: cannot be read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"config {path}: not UTF-8 text (byte at offset {exc.start})") from exc
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path}: malformed TOML: {first_line(exc)}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"config {path}: malformed JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:  # deeply nested JSON
        raise UsageError(f"config {path}: nested too deeply") from exc
    try:
        return parse_config(data, base_dir=path.parent, source=str(path))
    except ValueError as exc:
        raise UsageError(f"config {path}: {first_line(exc)}") from exc


def parse_config(data, *, base_dir=".", source="(dict)") -> ReproduceConfig:
    """Validate a config mapping (as read from TOML/JSON) into a :class:`ReproduceConfig`.

    Raises:
        ValueError: one line naming the key and what is wrong (a
            :class:`~dsmtheory.cli.UsageError`).
    """
    if not isinstance(data, dict):
        raise UsageError("the config must be a table/object of settings")
    _unknown(data, _TOP_KEYS, "")
    kw: dict = {"source": source}
    if "mixture" in data:
        kw["mixture"], kw["mixture_label"] = _parse_mixture(data["mixture"], Path(base_dir))
    if "process" in data:
        proc = data["process"]
        if not isinstance(proc, str) or proc not in ("ve", "vp"):
            raise UsageError(f"process must be 've' or 'vp', got {proc!r}")
        kw["process"] = proc
    if "schedule" in data:
        name = data["schedule"]
        if not isinstance(name, str) or name not in _schedules.names():
            known = ", ".join(_schedules.names())
            raise UsageError(f"schedule must be one of {known}; got {name!r}")
        kw["schedule"] = name
    if "seed" in data:
        kw["seed"] = inp.check_seed(data["seed"], "seed")
    if "sections" in data:
        secs = data["sections"]
        if not isinstance(secs, list) or not secs:
            raise UsageError("sections must be a non-empty list of section names")
        bad = [s for s in secs if not isinstance(s, str) or s not in SECTION_NAMES]
        if bad:
            raise UsageError(
                f"sections: unknown {', '.join(map(repr, bad))}; known: {', '.join(SECTION_NAMES)}"
            )
        kw["sections"] = tuple(s for s in SECTION_NAMES if s in secs)
    if "heteroskedasticity" in data:
        kw.update(_parse_heteroskedasticity(data["heteroskedasticity"]))
    if "training" in data:
        kw.update(_parse_training(data["training"]))
    cfg = ReproduceConfig(**kw)
    _check_process_range(cfg)
    return cfg


def _parse_heteroskedasticity(table) -> dict:
    het = _table(table, "heteroskedasticity")
    _unknown(het, _HET_KEYS, "heteroskedasticity.")
    kw = {}
    for key in ("sigma_min", "sigma_max"):
        if key in het:
            kw[key] = inp.check_sigma(het[key], f"heteroskedasticity.{key}")
    if "num_sigmas" in het:
        kw["num_sigmas"] = inp.check_int(
            het["num_sigmas"], "heteroskedasticity.num_sigmas", minimum=3, maximum=_MAX_SIGMAS
        )
    lo, hi = kw.get("sigma_min"), kw.get("sigma_max")
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(f"heteroskedasticity.sigma_min ({lo}) must be below sigma_max ({hi})")
    return kw


def _parse_training(table) -> dict:
    tr = _table(table, "training")
    _unknown(tr, _TRAIN_KEYS, "training.")
    kw = {}
    for key, top in (("steps", None), ("seeds", _MAX_SEEDS), ("batch_size", _MAX_BATCH)):
        if key in tr:
            kw[key] = inp.check_int(tr[key], f"training.{key}", minimum=1, maximum=top)
    if "capacities" in tr:
        caps = _list(tr["capacities"], "training.capacities")
        kw["capacities"] = tuple(
            inp.check_int(c, f"training.capacities[{i}]", minimum=1, maximum=_MAX_CAPACITY)
            for i, c in enumerate(caps)
        )
    if "weightings" in tr:
        from ..train import weighting_names

        names = _list(tr["weightings"], "training.weightings")
        known = weighting_names()
        for i, w in enumerate(names):
            if not isinstance(w, str) or w not in known:
                raise UsageError(
                    f"training.weightings[{i}] must be one of {', '.join(known)}; got {w!r}"
                )
        kw["weightings"] = tuple(names)
    return kw


def _check_process_range(cfg: ReproduceConfig) -> None:
    """VP needs sigma < 1 (alpha = sqrt(1 - sigma^2)): refuse before anything runs."""
    if cfg.process != "vp" or "heteroskedasticity" not in cfg.sections:
        return
    if cfg.sigma_max is None:
        raise UsageError(
            "process = 'vp' needs heteroskedasticity.sigma_max < 1 (alpha = sqrt(1 - sigma^2); "
            "the default 10 is for VE)"
        )
    if cfg.sigma_max >= 1.0:
        raise UsageError(
            "heteroskedasticity.sigma_max must be < 1 with process = 'vp' "
            f"(alpha = sqrt(1 - sigma^2)), got {cfg.sigma_max}"
        )


def _parse_mixture(spec, base_dir: Path):
    from .. import datasets

    if isinstance(spec, str) and datasets.is_spec(spec):
        return inp.load_mixture(spec.strip(), "mixture"), spec.strip()
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise UsageError("mixture must be a name, a table {name=..., ...}, {file=...} or inline")
    if "file" in spec:
        if set(spec) != {"file"}:
            raise UsageError("mixture: 'file' cannot be combined with other keys")
        if not isinstance(spec["file"], str):
            raise UsageError(f"mixture.file must be a file name, got {spec['file']!r}")
        p = Path(spec["file"])
        p = p if p.is_absolute() else base_dir / p
        return inp.load_mixture(p, "mixture.file"), f"file {p}"
    if _INLINE_KEYS & set(spec):
        return _inline_mixture(spec), "inline"
    if "name" not in spec:
        raise UsageError("mixture needs 'name', 'file', or 'weights'/'means'/'covs'")
    name = spec["name"]
    if isinstance(name, str) and name in datasets.NAMES:
        return _dataset_mixture(name, {k: v for k, v in spec.items() if k != "name"})
    if not isinstance(name, str) or name not in BUILTIN_MIXTURES:
        known = ", ".join([*BUILTIN_MIXTURES, *datasets.NAMES])
        raise UsageError(f"mixture name must be one of {known}; got {name!r}")
    params = {k: v for k, v in spec.items() if k != "name"}
    factory = BUILTIN_MIXTURES[name]
    allowed = set(inspect.signature(factory).parameters)
    bad = sorted(set(params) - allowed)
    if bad:
        raise UsageError(
            f"mixture {name!r}: unknown parameter(s) {', '.join(bad)}; "
            f"known: {', '.join(sorted(allowed))}"
        )
    for key, value in params.items():
        _numbers(value, f"mixture.{key}")
    inp.check_mixture_size(*_builtin_size(name, params), f"mixture {name!r}")
    try:
        gm = factory(**params)
    except TypeError as exc:
        raise UsageError(f"mixture {name!r}: bad parameters: {first_line(exc)}") from exc
    except ValueError as exc:
        raise UsageError(f"mixture {name!r}: {first_line(exc)}") from exc
    label = name + ("(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "")
    return gm, label


def _dataset_mixture(name: str, params: dict):
    """A built-in data set from a table: its keys become the ``key=value`` fields of the
    name (:func:`dsmtheory.datasets.parse_spec`), which checks them."""
    fields = []
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"mixture.{key} must be a number, got {value!r}")
        fields.append(f"{key}={value!r}")
    spec = ":".join([name, *fields])
    return inp.load_mixture(spec, "mixture"), spec


def _builtin_size(name: str, params: dict) -> tuple[int | None, int | None]:
    """(K, D) a built-in constructor would build, read from its parameters."""

    def count(key, default):
        v = params.get(key, default)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    if name == "ring":
        return count("num_modes", 8), 2
    if name == "grid_2d":
        n = count("n", 3)
        return (None if n is None else n * n), 2
    if name == "random_anisotropic":
        return count("num_components", 4), count("dim", 2)
    if name == "single_gaussian":
        mean = params.get("mean")
        return 1, (len(mean) if isinstance(mean, list) else 1)
    return 2, 1  # bimodal_1d


def _inline_mixture(spec):
    missing = sorted(_INLINE_KEYS - set(spec))
    if missing:
        raise UsageError(f"inline mixture lacks key(s) {', '.join(missing)}")
    extra = sorted(set(spec) - _INLINE_KEYS)
    if extra:
        raise UsageError(f"mixture: unknown key(s) {', '.join(extra)}; known: covs, means, weights")
    for key in ("weights", "means", "covs"):
        if not isinstance(spec[key], list) or not spec[key]:
            raise UsageError(f"mixture.{key} must be a non-empty list, got {spec[key]!r}")
        _numbers(spec[key], f"mixture.{key}")
    first = spec["means"][0]
    inp.check_mixture_size(
        len(spec["weights"]), len(first) if isinstance(first, list) else 1, "inline mixture"
    )
    try:
        return _mixture.GaussianMixture(spec["weights"], spec["means"], spec["covs"])
    except (TypeError, ValueError) as exc:
        raise UsageError(f"mixture: {first_line(exc)}") from exc


def _numbers(value, name: str, depth: int = 0) -> None:
    """Refuse anything but numbers and (nested) lists of numbers: no strings, booleans,
    tables or empty lists."""
    if isinstance(value, list):
        if not value or depth > 3:
            raise UsageError(f"{name} must be a number or a non-empty list of numbers")
        for v in value:
            _numbers(v, name, depth + 1)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{name} must hold numbers, got {value!r}")


def _unknown(d, allowed, prefix):
    bad = sorted(set(d) - allowed)
    if bad:
        known = ", ".join(prefix + k for k in sorted(allowed))
        raise UsageError(f"unknown key(s) {', '.join(prefix + b for b in bad)}; known: {known}")


def _list(v, name):
    if not isinstance(v, list) or not v:
        raise UsageError(f"{name} must be a non-empty list, got {v!r}")
    return v


def _table(v, name):
    if not isinstance(v, dict):
        raise UsageError(f"{name} must be a table/object")
    return v
