"""Configuration of ``dsmtheory reproduce``: a TOML or JSON file, validated with clear errors.

Example (TOML)::

    mixture = "ring"                # or {name = "grid_2d", n = 3}, or {file = "my.json"},
                                    # or an inline {weights = [...], means = [...], covs = [...]}
    process = "ve"                  # "ve" or "vp": the noising process of the analyses
    schedule = "ve"                 # schedule name for the optimal-c analysis
    seed = 0
    sections = ["prove", "heteroskedasticity", "weightings", "optimal-c", "targets", "compare"]

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

Every key is optional; unknown keys are an error that lists the known ones.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import mixture as _mixture
from .. import schedules as _schedules

__all__ = ["ReproduceConfig", "SECTION_NAMES", "BUILTIN_MIXTURES", "load_config", "parse_config"]

#: Sections of the report, in the order they run.
SECTION_NAMES = ("prove", "heteroskedasticity", "weightings", "optimal-c", "targets", "compare")

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
        ValueError: one line naming the file and what is wrong.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"config {path}: cannot be read: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            raise ValueError(f"config {path}: expected a .toml or .json file")
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config {path}: malformed TOML: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"config {path}: malformed JSON: {exc.msg} at line {exc.lineno}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"config {path}: not UTF-8 text") from exc
    try:
        return parse_config(data, base_dir=path.parent, source=str(path))
    except ValueError as exc:
        raise ValueError(f"config {path}: {exc}") from exc


def parse_config(data, *, base_dir=".", source="(dict)") -> ReproduceConfig:
    """Validate a config mapping (as read from TOML/JSON) into a :class:`ReproduceConfig`."""
    if not isinstance(data, dict):
        raise ValueError("the config must be a table/object of settings")
    _unknown(data, _TOP_KEYS, "")
    kw: dict = {"source": source}
    if "mixture" in data:
        kw["mixture"], kw["mixture_label"] = _parse_mixture(data["mixture"], Path(base_dir))
    if "process" in data:
        proc = data["process"]
        if proc not in ("ve", "vp"):
            raise ValueError(f"process must be 've' or 'vp', got {proc!r}")
        kw["process"] = proc
    if "schedule" in data:
        name = data["schedule"]
        if not isinstance(name, str) or name not in _schedules.names():
            known = ", ".join(_schedules.names())
            raise ValueError(f"schedule must be one of {known}; got {name!r}")
        kw["schedule"] = name
    if "seed" in data:
        kw["seed"] = _int(data["seed"], "seed", minimum=0)
    if "sections" in data:
        secs = data["sections"]
        if not isinstance(secs, list) or not secs:
            raise ValueError("sections must be a non-empty list of section names")
        bad = [s for s in secs if s not in SECTION_NAMES]
        if bad:
            raise ValueError(
                f"sections: unknown {', '.join(map(repr, bad))}; known: {', '.join(SECTION_NAMES)}"
            )
        kw["sections"] = tuple(s for s in SECTION_NAMES if s in secs)
    if "heteroskedasticity" in data:
        het = _table(data["heteroskedasticity"], "heteroskedasticity")
        _unknown(het, _HET_KEYS, "heteroskedasticity.")
        if "sigma_min" in het:
            kw["sigma_min"] = _pos(het["sigma_min"], "heteroskedasticity.sigma_min")
        if "sigma_max" in het:
            kw["sigma_max"] = _pos(het["sigma_max"], "heteroskedasticity.sigma_max")
        if "num_sigmas" in het:
            kw["num_sigmas"] = _int(het["num_sigmas"], "heteroskedasticity.num_sigmas", minimum=3)
        lo, hi = kw.get("sigma_min"), kw.get("sigma_max")
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"heteroskedasticity.sigma_min ({lo}) must be below sigma_max ({hi})")
    if "training" in data:
        tr = _table(data["training"], "training")
        _unknown(tr, _TRAIN_KEYS, "training.")
        if "steps" in tr:
            kw["steps"] = _int(tr["steps"], "training.steps", minimum=1)
        if "seeds" in tr:
            kw["seeds"] = _int(tr["seeds"], "training.seeds", minimum=1)
        if "batch_size" in tr:
            kw["batch_size"] = _int(tr["batch_size"], "training.batch_size", minimum=1)
        if "capacities" in tr:
            caps = _list(tr["capacities"], "training.capacities")
            kw["capacities"] = tuple(
                _int(c, f"training.capacities[{i}]", minimum=1) for i, c in enumerate(caps)
            )
        if "weightings" in tr:
            from ..train import weighting_names

            names = _list(tr["weightings"], "training.weightings")
            known = weighting_names()
            for i, w in enumerate(names):
                if not isinstance(w, str) or w not in known:
                    raise ValueError(
                        f"training.weightings[{i}] must be one of {', '.join(known)}; got {w!r}"
                    )
            kw["weightings"] = tuple(names)
    return ReproduceConfig(**kw)


def _parse_mixture(spec, base_dir: Path):
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise ValueError("mixture must be a name, a table {name=..., ...}, {file=...} or inline")
    if "file" in spec:
        if set(spec) != {"file"}:
            raise ValueError("mixture: 'file' cannot be combined with other keys")
        p = Path(spec["file"])
        p = p if p.is_absolute() else base_dir / p
        return _mixture.from_json(str(p)), f"file {p}"
    if {"weights", "means", "covs"} <= set(spec):
        extra = set(spec) - {"weights", "means", "covs"}
        if extra:
            raise ValueError(f"mixture: unknown key(s) {', '.join(sorted(extra))}")
        try:
            return _mixture.GaussianMixture(spec["weights"], spec["means"], spec["covs"]), "inline"
        except TypeError as exc:
            raise ValueError(f"mixture: {exc}") from exc
    if "name" not in spec:
        raise ValueError("mixture needs 'name', 'file', or 'weights'/'means'/'covs'")
    name = spec["name"]
    if name not in BUILTIN_MIXTURES:
        known = ", ".join(BUILTIN_MIXTURES)
        raise ValueError(f"mixture name must be one of {known}; got {name!r}")
    params = {k: v for k, v in spec.items() if k != "name"}
    try:
        gm = BUILTIN_MIXTURES[name](**params)
    except TypeError as exc:
        raise ValueError(f"mixture {name!r}: bad parameters: {exc}") from exc
    label = name + ("(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "")
    return gm, label


def _unknown(d, allowed, prefix):
    bad = sorted(set(d) - allowed)
    if bad:
        known = ", ".join(prefix + k for k in sorted(allowed))
        raise ValueError(f"unknown key(s) {', '.join(prefix + b for b in bad)}; known: {known}")


def _list(v, name):
    if not isinstance(v, list) or not v:
        raise ValueError(f"{name} must be a non-empty list, got {v!r}")
    return v


def _table(v, name):
    if not isinstance(v, dict):
        raise ValueError(f"{name} must be a table/object")
    return v


def _int(v, name, minimum):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _pos(v, name):
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{name} must be a number, got {v!r}")
    if not v > 0 or v != v or v == float("inf"):
        raise ValueError(f"{name} must be positive and finite, got {v}")
    return float(v)
