r"""Hypothesis strategies for property tests of weighting and loss code.

```python
from hypothesis import given
from dsmtheory.testing import strategies as dst

@given(dst.log_snrs(-10, 10), dst.weightings(["min_snr", "soft_min_snr"]))
def test_positive(lam, w):
    assert float(w(lam)) > 0
```

* :func:`log_snrs`: λ as floats in a range;
* :func:`schedules`: the registry's schedules with valid random parameters and, optionally,
  discrete DDPM schedules built as diffusers builds them (:func:`discrete_schedules`);
* :func:`weightings`: registry weightings with valid random parameters
  (:func:`weighting_params` draws the parameters of one name);
* :func:`parameterizations`: ``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"F"``;
* :func:`mixtures`: :class:`~dsmtheory.GaussianMixture` with full, diagonal, isotropic or
  rank-deficient covariances.

Needs hypothesis: ``pip install "dsmtheory[testing]"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "dsmtheory.testing.strategies needs hypothesis, which is not installed: "
        'pip install "dsmtheory[testing]"'
    ) from exc

import numpy as np

from .. import schedules as _schedules
from .. import weightings as _weightings
from ..mixture import GaussianMixture
from ..parameterization import PARAMETERIZATIONS
from .ddpm import BETA_SCHEDULES, DiscreteSchedule

__all__ = [
    "log_snrs",
    "parameterizations",
    "schedules",
    "discrete_schedules",
    "weightings",
    "weighting_params",
    "mixtures",
    "MIXTURE_KINDS",
    "RANK_DEFICIENT_FLOOR",
]

MIXTURE_KINDS = ("full", "diagonal", "isotropic", "rank_deficient")
# GaussianMixture needs positive-definite covariances, so a rank-r component is F F^T plus
# this floor on the diagonal: scikit-learn's default reg_covar, the scale at which fitted
# mixtures of real (near low-rank) data are rank-deficient in practice (DESIGN.md).
RANK_DEFICIENT_FLOOR = 1e-6
_NOT_BY_DEFAULT = {"optimal"}  # drawn only when named (see weightings())


def _floats(lo: float, hi: float, *, log: bool = False):
    if log:  # log-uniform-ish: draw the exponent
        return st.floats(math.log(lo), math.log(hi)).map(math.exp)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def log_snrs(min_value: float = -10.0, max_value: float = 10.0):
    r"""Log-SNR values $\lambda\in[\text{min\_value},\text{max\_value}]$ (finite floats).

    Args:
        min_value: lower end.
        max_value: upper end (> ``min_value``).

    Returns:
        A strategy of floats.
    """
    if not (math.isfinite(min_value) and math.isfinite(max_value) and min_value < max_value):
        raise ValueError(
            f"log_snrs needs finite min_value < max_value, got {min_value!r}, {max_value!r}"
        )
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)


def parameterizations(exclude: Sequence[str] = ()):
    """The prediction parameterizations ``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"F"``.

    Args:
        exclude: names to leave out.
    """
    names = [p for p in PARAMETERIZATIONS if p not in set(exclude)]
    if not names:
        raise ValueError("exclude leaves no parameterization")
    return st.sampled_from(names)


# valid random parameters of each registry schedule (defaults: FORMULAS.md §2)
_SCHEDULE_PARAMS = {
    "ve": lambda: st.fixed_dictionaries(
        {"sigma_min": _floats(1e-3, 0.1, log=True), "sigma_max": _floats(10.0, 100.0, log=True)}
    ),
    "vp_linear": lambda: st.fixed_dictionaries(
        {"beta_min": _floats(0.05, 0.5), "beta_max": _floats(5.0, 30.0)}
    ),
    "cosine": lambda: st.fixed_dictionaries({"shift": _floats(-2.0, 2.0)}),
    "edm_training": lambda: st.fixed_dictionaries(
        {"p_mean": _floats(-2.0, 0.5), "p_std": _floats(0.5, 2.0)}
    ),
    "edm_sampling": lambda: st.fixed_dictionaries(
        {
            "sigma_min": _floats(1e-3, 1e-2, log=True),
            "sigma_max": _floats(20.0, 100.0, log=True),
            "rho": _floats(3.0, 10.0),
        }
    ),
}


def discrete_schedules(
    beta_schedules: Sequence[str] = BETA_SCHEDULES,
    min_timesteps: int = 10,
    max_timesteps: int = 1000,
):
    r"""Discrete DDPM schedules as diffusers builds them (:class:`DiscreteSchedule`).

    ``"linear"`` draws $\beta_{start}\in[5\cdot10^{-5},2\cdot10^{-4}]$,
    $\beta_{end}\in[0.01,0.03]$ (``DDPMScheduler``'s defaults are $10^{-4}$, $0.02$);
    ``"scaled_linear"`` draws $\beta_{start}\in[5\cdot10^{-4},1.5\cdot10^{-3}]$,
    $\beta_{end}\in[0.008,0.02]$ (Stable Diffusion: 0.00085, 0.012);
    ``"squaredcos_cap_v2"`` has no free betas. $T$ is drawn in
    ``[min_timesteps, max_timesteps]``.

    Args:
        beta_schedules: which of diffusers' ``beta_schedule`` values to draw.
        min_timesteps: smallest $T$ (>= 2).
        max_timesteps: largest $T$.
    """
    unknown = set(beta_schedules) - set(BETA_SCHEDULES)
    if unknown or not beta_schedules:
        raise ValueError(
            f"beta_schedules must be a non-empty subset of {BETA_SCHEDULES}, got {beta_schedules!r}"
        )
    if not (2 <= min_timesteps <= max_timesteps):
        raise ValueError(
            f"need 2 <= min_timesteps <= max_timesteps, got {min_timesteps}, {max_timesteps}"
        )
    betas = {
        "linear": (_floats(5e-5, 2e-4, log=True), _floats(0.01, 0.03)),
        "scaled_linear": (_floats(5e-4, 1.5e-3, log=True), _floats(0.008, 0.02)),
        "squaredcos_cap_v2": (st.just(1e-4), st.just(0.02)),  # ignored by the schedule
    }

    @st.composite
    def draw(draw_):
        name = draw_(st.sampled_from(list(beta_schedules)))
        n = draw_(st.integers(min_timesteps, max_timesteps))
        b0, b1 = (draw_(s) for s in betas[name])
        return DiscreteSchedule.build(name, n, b0, b1)

    return draw()


def schedules(names: Sequence[str] | None = None, *, discrete: bool = False):
    """Registry schedules with valid random parameters, and optionally discrete ones.

    Args:
        names: registry schedule names (default: all of :func:`dsmtheory.schedules.names`).
        discrete: also draw :func:`discrete_schedules` (diffusers' ``alphas_cumprod``
            arrays), as :class:`DiscreteSchedule` objects.

    Returns:
        A strategy of :class:`~dsmtheory.schedules.Schedule` (and
        :class:`DiscreteSchedule` when ``discrete``).
    """
    names = list(_schedules.names() if names is None else names)
    known = set(_schedules.names())
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown schedule name(s) {bad}; known: {sorted(known)}")
    parts = []
    for n in names:
        params = _SCHEDULE_PARAMS[n]() if n in _SCHEDULE_PARAMS else st.just({})
        parts.append(params.map(lambda kw, n=n: _schedules.get(n, **kw)))
    if discrete:
        parts.append(discrete_schedules())
    if not parts:
        raise ValueError("no schedule to draw")
    return st.one_of(parts)


def _density_schedule(schedule):
    return st.just(schedule) if schedule is not None else schedules(["cosine"])


# valid random parameters of each registry weighting (defaults and ranges: FORMULAS.md §3)
def weighting_params(name: str, *, schedule=None):
    """Valid random parameters (a dict for :func:`dsmtheory.weightings.get`) of one entry.

    Args:
        name: a registry weighting name.
        schedule: the sampling density of weightings defined through one (``elbo``,
            ``likelihood``, ``vdm``, ``sech``, ``sigmoid``); default a random shifted cosine.

    Raises:
        ValueError: unknown name, or an entry that needs arguments without a recipe here
            (e.g. ``optimal``, which needs a mixture).
    """
    dens = _density_schedule(schedule)
    fixed = st.fixed_dictionaries
    recipes = {
        "simple": lambda: st.just({}),
        "v": lambda: st.just({}),
        "elbo": lambda: fixed({"schedule": dens}),
        "likelihood": lambda: fixed({"schedule": dens}),
        "sech": lambda: fixed({"schedule": dens}),
        "vdm": lambda: fixed(
            {"schedule": dens, "steps": st.one_of(st.none(), st.integers(10, 1000))}
        ),
        "sigmoid": lambda: fixed({"k": _floats(-3.0, 5.0), "schedule": dens}),
        "edm": lambda: fixed({"sigma_data": _floats(0.1, 2.0)}),
        "edm_monotonic": lambda: fixed(
            {
                "sigma_data": _floats(0.2, 2.0),
                "p_mean": _floats(-2.0, 0.5),
                "p_std": _floats(0.5, 2.0),
            }
        ),
        "min_snr": lambda: fixed({"gamma": _floats(0.5, 20.0, log=True)}),
        "soft_min_snr": lambda: st.one_of(
            fixed({"gamma": _floats(0.25, 20.0, log=True)}),
            fixed({"sigma_data": _floats(0.2, 2.0)}),
        ),
        "p2": lambda: fixed({"k": _floats(0.0, 5.0), "gamma": _floats(0.25, 2.0)}),
        "smoothed_kl": lambda: fixed({"tau": _floats(0.05, 2.0, log=True)}),
        # c*(lambda) of a mixture (the registry's default: bimodal_1d); built by quadrature
        "optimal": lambda: st.just({}),
        "alsr": lambda: fixed(
            {
                "alpha": _floats(0.01, 0.2),
                "variant": st.sampled_from(["gaussian", "rational"]),
                "mu": _floats(-5.0, 5.0),
                "sigma_data": _floats(0.2, 2.0),
            }
        ),
    }
    if name in recipes:
        return recipes[name]()
    if name not in _weightings.names():
        raise ValueError(f"unknown weighting {name!r}; known: {', '.join(_weightings.names())}")
    try:
        _weightings.get(name)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"weighting {name!r} needs arguments and has no parameter recipe here ({exc})"
        ) from None
    return st.just({})  # a colleague's entry: its defaults


def weightings(names: Sequence[str] | None = None, *, schedule=None):
    r"""Registry weightings (:class:`~dsmtheory.weightings.Weighting`) with valid parameters.

    Args:
        names: registry names (default: every entry but ``optimal``, whose
            $c^*(\lambda)$ belongs to a mixture and takes a quadrature to build; name it to
            draw it with the registry's default mixture).
        schedule: the sampling density of density-defined weightings (default: a random
            shifted cosine, truncated to λ in [-20, 20]).

    Returns:
        A strategy of Weighting objects; ``w.name`` and ``w.params`` say which.
    """
    if names is None:
        names = []
        for n in _weightings.names():
            if n in _NOT_BY_DEFAULT:
                continue
            try:
                weighting_params(n)
            except ValueError:
                continue
            names.append(n)
    names = list(names)
    if not names:
        raise ValueError("no weighting to draw")
    parts = [
        weighting_params(n, schedule=schedule).map(lambda kw, n=n: _weightings.get(n, **kw))
        for n in names
    ]
    return st.one_of(parts)


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def mixtures(
    dim: int = 2,
    max_components: int = 3,
    kinds: Sequence[str] = MIXTURE_KINDS,
    *,
    mean_scale: float = 3.0,
    min_std: float = 0.05,
    max_std: float = 2.0,
):
    r"""Gaussian mixtures with ``dim`` dimensions and 1 to ``max_components`` components.

    Weights are positive and sum to 1; means uniform in $[-s,s]^D$ ($s$ = ``mean_scale``);
    component standard deviations in [``min_std``, ``max_std``]. The covariance ``kind`` is
    drawn from ``kinds``:

    * ``"full"``: $U\,\mathrm{diag}(e)\,U^\top$ with a random rotation $U$;
    * ``"diagonal"``: ``(K, D)`` variances;
    * ``"isotropic"``: ``(K,)`` variances;
    * ``"rank_deficient"``: $FF^\top+\delta I$ with $F$ of rank $r<D$ (drawn, 0 allowed)
      and $\delta$ = :data:`RANK_DEFICIENT_FLOOR` (GaussianMixture needs positive-definite
      covariances; this is the floor scikit-learn puts on fitted ones).

    Args:
        dim: $D\ge1$ (``"rank_deficient"`` with ``dim=1`` gives variance δ).
        max_components: largest $K$.
        kinds: covariance kinds to draw from.
        mean_scale: half-width of the box of the means.
        min_std: smallest component standard deviation.
        max_std: largest component standard deviation.

    Returns:
        A strategy of :class:`~dsmtheory.GaussianMixture`.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if (
        isinstance(max_components, bool)
        or not isinstance(max_components, int)
        or max_components < 1
    ):
        raise ValueError(f"max_components must be a positive integer, got {max_components!r}")
    bad = set(kinds) - set(MIXTURE_KINDS)
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {MIXTURE_KINDS}, got {kinds!r}")
    if not (0 < min_std <= max_std):
        raise ValueError(f"need 0 < min_std <= max_std, got {min_std!r}, {max_std!r}")

    @st.composite
    def draw(draw_):
        k = draw_(st.integers(1, max_components))
        kind = draw_(st.sampled_from(list(kinds)))
        raw = draw_(st.lists(st.floats(0.1, 1.0), min_size=k, max_size=k))
        w = np.asarray(raw, dtype=np.float64)
        w = w / w.sum()
        means = np.asarray(
            draw_(st.lists(st.floats(-mean_scale, mean_scale), min_size=k * dim, max_size=k * dim)),
            dtype=np.float64,
        ).reshape(k, dim)
        std = st.floats(min_std, max_std)
        if kind == "isotropic":
            covs = np.asarray(draw_(st.lists(std, min_size=k, max_size=k))) ** 2
        elif kind == "diagonal":
            covs = np.asarray(draw_(st.lists(std, min_size=k * dim, max_size=k * dim))) ** 2
            covs = covs.reshape(k, dim)
        else:
            seed = draw_(st.integers(0, 2**32 - 1))
            rng = np.random.default_rng(seed)
            covs = np.empty((k, dim, dim))
            for i in range(k):
                u = _rotation(rng, dim)
                if kind == "full":
                    e = np.asarray(draw_(st.lists(std, min_size=dim, max_size=dim))) ** 2
                else:
                    r = draw_(st.integers(0, dim - 1))
                    e = np.full(dim, RANK_DEFICIENT_FLOOR)
                    e[:r] += np.asarray(draw_(st.lists(std, min_size=r, max_size=r))) ** 2
                c = (u * e) @ u.T
                covs[i] = 0.5 * (c + c.T)
        return GaussianMixture(w, means, covs)

    return draw()
