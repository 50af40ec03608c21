r"""Which registry weighting is this? Identify a loss multiplier from sample points.

Given points $x_i$ (SNR, $\lambda$, $\tilde\sigma$ or integer timesteps) and the multipliers
$g_i$ a user's code puts on its $a$-space MSE, :func:`identify_weighting` ranks every
registry weighting $X$ (with its parameters fitted) *and* every parameterization $b$ its
formula may have been written for, under the model

$$g(\lambda)=c\,\frac{\omega^{X}_\varepsilon(\lambda;\theta)}{\kappa_b(\lambda)}
\qquad\text{(FORMULAS.md §1: } \omega_\varepsilon=\omega_b\kappa_b\text{)},$$

fitted by least squares in log space: $\theta$ (γ, k, σ_d, τ, the cosine schedule's shift,
...) numerically, $\log c$ in closed form (the mean log residual). $b=a$ is the correct use
of $X$; $b\ne a$ is $X$'s $b$-space formula applied to an $a$-space loss, the bug class of
diffusers issue #5654 (the $\varepsilon$ formula of Min-SNR on a v-prediction loss).

A candidate *fits* when the largest log residual $\max_i|\log(g_i/\text{model}_i)|$ is at
most :data:`FIT_TOL` ($10^{-4}$). Weightings defined through a sampling density (``elbo``,
``likelihood``, ``vdm``, ``sech``, ``sigmoid``) are fitted on the cosine schedule with a free
shift; ``edm_monotonic`` on its own EDM log-normal density; ``alsr`` with a fixed centre
``mu`` (fitted); ``optimal`` (it needs a mixture) is left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from .. import schedules, weightings
from . import _spec
from ._tolerances import FIT_TOL

__all__ = ["FIT_TOL", "Match", "identify_weighting", "format_matches", "log_kappa"]

_BAD = 1e3  # log residual assigned where a model is zero or non-finite


class _Free(NamedTuple):
    name: str
    scale: str  # "log" (positive parameter) or "lin"
    lo: float
    hi: float
    snap: float | None = None  # a special value the fit is rounded to when it gets there


def _log(name, lo, hi, snap=None):
    return _Free(name, "log", lo, hi, snap)


def _lin(name, lo, hi, snap=None):
    return _Free(name, "lin", lo, hi, snap)


# --- NumPy replicas of log omega_eps, up to additive constants. They only steer the search
# (vectorised over a batch of parameter values: each value is an array of shape (P, 1)
# against lam of shape (N,)); every reported residual and every "fits" comes from the
# registry (_finish). The kit's tests check each replica against the registry.
def _lse(a, b):
    return np.logaddexp(a, b)


def _log_cosh_u(lam, v):  # log cosh(lam/2 - shift) + const: 1/p of the shifted cosine
    u = 0.5 * lam - v["shift"]
    return _lse(u, -u)


def _edm_peak(mu, s, lsd2):
    """argmax of log N(lam; mu, s^2) + softplus(-lam - log sd^2), vectorised: a grid, then
    bisection of the derivative in the grid cell around the maximum."""
    grid = mu + s * np.linspace(-12.0, 12.0, 241)[None, :] - 5.0  # (P, G)
    i = np.argmax(-0.5 * ((grid - mu) / s) ** 2 + _lse(0.0, -grid - lsd2), axis=1)
    rows = np.arange(grid.shape[0])
    a = grid[rows, np.maximum(i - 1, 0)][:, None]
    b = grid[rows, np.minimum(i + 1, grid.shape[1] - 1)][:, None]
    if a.size == 1:  # one parameter set (the refinement): Brent's method, as the registry
        from scipy.optimize import brentq

        m0, s0, l0 = float(mu.flat[0]), float(s.flat[0]), float(lsd2.flat[0])

        def d(x):
            return -(x - m0) / s0**2 - 1.0 / (1.0 + math.exp(min(x + l0, 700.0)))

        lo, hi = float(a.flat[0]), float(b.flat[0])
        star = brentq(d, lo, hi, xtol=1e-14, rtol=1e-15) if d(lo) > 0 > d(hi) else 0.5 * (lo + hi)
        return np.full((1, 1), star)
    for _ in range(50):  # the cell is 0.1 s wide: 50 halvings reach rounding
        m = 0.5 * (a + b)
        up = -(m - mu) / s**2 - 1.0 / (1.0 + np.exp(np.minimum(m + lsd2, 700.0))) > 0
        a, b = np.where(up, m, a), np.where(up, b, m)
    return 0.5 * (a + b)


def _edm_mono(lam, v):
    mu, s = -2.0 * np.asarray(v["p_mean"]), 2.0 * np.asarray(v["p_std"])
    lsd2 = 2.0 * np.log(v["sigma_data"])
    mu, s, lsd2 = (np.broadcast_to(np.asarray(x, float), np.shape(mu)).reshape(-1, 1)
                   for x in np.broadcast_arrays(mu, s, lsd2))  # fmt: skip
    m = np.maximum(lam, _edm_peak(mu, s, lsd2))
    return -0.5 * ((m - mu) / s) ** 2 + _lse(0.0, -m - lsd2) + 0.5 * ((lam - mu) / s) ** 2


def _p2(lam, v):
    k = np.asarray(v["k"], float)
    with np.errstate(divide="ignore"):
        return -v["gamma"] * np.where(k > 0, _lse(np.log(k), lam), lam)


_REPLICAS = {
    "simple": lambda lam, v: np.zeros_like(lam),
    "v": lambda lam, v: _lse(0.0, -lam),
    "edm": lambda lam, v: _lse(0.0, -lam - 2.0 * np.log(v["sigma_data"])),
    "min_snr": lambda lam, v: np.minimum(0.0, np.log(v["gamma"]) - lam),
    "soft_min_snr": lambda lam, v: -_lse(0.0, lam + 2.0 * np.log(v["sigma_data"])),
    "smoothed_kl": lambda lam, v: -_lse(0.0, 2.0 * np.log(v["tau"]) + _lse(0.0, lam)),
    "p2": _p2,
    "sigmoid": lambda lam, v: -_lse(0.0, lam - v["k"]) + _log_cosh_u(lam, v),
    "elbo": _log_cosh_u,
    "likelihood": _log_cosh_u,
    "vdm": _log_cosh_u,
    "sech": lambda lam, v: _log_cosh_u(lam, v) - _lse(0.5 * lam, -0.5 * lam),
    "edm_monotonic": _edm_mono,
    "alsr/gaussian": lambda lam, v: (
        _lse(0.0, -lam - 2.0 * np.log(v["sigma_data"])) - v["alpha"] * (lam - v["mu"]) ** 2
    ),
    "alsr/rational": lambda lam, v: (
        _lse(0.0, -lam - 2.0 * np.log(v["sigma_data"]))
        - np.log1p(v["alpha"] * (lam + 2.0 * np.log(v["sigma_data"]) - v["mu"]) ** 2)
    ),
}

_SHIFT = _lin("shift", -10.0, 10.0, snap=0.0)
# ALSR: alpha in the paper's ablation range and beyond, mu within the usual lambda range
_ALSR = [_log("alpha", 1e-3, 1.0), _lin("mu", -15.0, 15.0), _log("sigma_data", 0.05, 20.0)]
# (registry name, fixed parameters, free parameters, replica key); any other registry entry
# that builds with its defaults is a candidate without free parameters.
_CANDIDATES: list[tuple[str, dict, list[_Free], str]] = [
    ("simple", {}, [], "simple"),
    ("v", {}, [], "v"),
    ("edm", {}, [_log("sigma_data", 1e-3, 1e3)], "edm"),
    ("min_snr", {}, [_log("gamma", 1e-4, 1e4)], "min_snr"),
    ("soft_min_snr", {}, [_log("sigma_data", 1e-3, 1e3)], "soft_min_snr"),
    ("smoothed_kl", {}, [_log("tau", 1e-3, 1e3)], "smoothed_kl"),
    ("p2", {}, [_log("k", 1e-8, 1e4, snap=0.0), _log("gamma", 1e-2, 10.0)], "p2"),
    ("sigmoid", {}, [_lin("k", -20.0, 20.0), _SHIFT], "sigmoid"),
    ("elbo", {}, [_SHIFT], "elbo"),
    ("likelihood", {}, [_SHIFT], "likelihood"),
    ("vdm", {}, [_SHIFT], "vdm"),
    ("sech", {}, [_SHIFT], "sech"),
    (
        "edm_monotonic",
        {},
        [_log("sigma_data", 0.05, 20.0), _lin("p_mean", -3.0, 3.0), _log("p_std", 0.3, 5.0)],
        "edm_monotonic",
    ),
    ("alsr", {"variant": "gaussian"}, _ALSR, "alsr/gaussian"),
    ("alsr", {"variant": "rational"}, _ALSR, "alsr/rational"),
]
_SKIP = {"optimal"}  # needs a mixture
_GRID_POINTS = {0: 1, 1: 161, 2: 41, 3: 11}  # per axis
_STARTS = 3  # grid points a refinement may start from
_RESTART_RMS = 0.5  # a further start is tried only from a grid point this close
# grid residual (RMS of log) below which a hypothesis is refined: exact matches of the
# registry entries of the kit's tests, sampled on [-10, 10] and written for any
# parameterization, have a grid residual of at most 0.39 (measured: ALSR, three parameters
# on an 11-point grid each; the one- and two-parameter entries stay below 0.2)
_REFINE_RMS = 0.5
_REFINE_PER = 3  # hypotheses (parameterizations) of one weighting refined at most
_REFINE_TOP = 3  # and the best ones whatever their residual (the "nearest" of a no-match)
_SIGMA_F = _log("sigma_data", 1e-3, 1e3)  # the F conversion's sigma_d when it is free


class Match(NamedTuple):
    r"""One candidate of :func:`identify_weighting`.

    Attributes:
        name: registry name of the weighting $X$.
        params: its fitted parameters (as resolved by the registry).
        parameterization: the space $b$ the formula is written for: the user's weights equal
            $c\,\omega^X_\varepsilon/\kappa_b$.
        applied_to: the user's parameterization $a$ (the MSE the weights multiply).
        constant: the fitted factor $c$.
        max_log_error: $\max_i|\log(g_i/\text{model}_i)|$.
        rms_log_error: root mean square of the same log residuals (what the fit minimises).
        fits: ``max_log_error <= tolerance``.
        tolerance: the tolerance used (:data:`FIT_TOL` by default).
        sigma_data: the σ_d of the F conversion when ``parameterization == "F"``, else None.
        num_params: how many parameters were fitted (the constant not counted).
        at_bound: a fitted parameter sits at the edge of its search range, so the fit is a
            limiting case of the weighting (e.g. sigmoid with k -> -inf), ranked last.
        kwargs: the arguments of ``weightings.get`` that build it (:meth:`weighting`).
    """

    name: str
    params: Mapping[str, Any]
    parameterization: str
    applied_to: str
    constant: float
    max_log_error: float
    rms_log_error: float
    fits: bool
    tolerance: float
    sigma_data: float | None
    num_params: int
    at_bound: bool = False
    kwargs: Mapping[str, Any] | None = None

    def weighting(self) -> weightings.Weighting:
        """The fitted registry weighting, rebuilt with ``weightings.get``."""
        return weightings.get(self.name, **(self.kwargs or {}))

    @property
    def density_defined(self) -> bool:
        """Whether the weighting is defined through a sampling density (its ``schedule``)."""
        return "schedule" in self.params

    @property
    def misapplied(self) -> bool:
        """Whether the formula is written for another parameterization than it is applied to."""
        return self.parameterization != self.applied_to

    @property
    def label(self) -> str:
        """``name(param=value, ...)``."""
        return _spec.describe(self.name, self.params)

    def describe(self) -> str:
        """One sentence: what the weights are, and how well they fit."""
        where = f"written for {self.parameterization!r}"
        if self.parameterization == "F" and self.sigma_data is not None:
            where += f" (sigma_data={_spec.fmt_num(self.sigma_data)})"
        if self.misapplied:
            where += (
                f", i.e. the {self.parameterization!r} multiplier applied to "
                f"{_spec.article(self.applied_to)} loss"
            )
        const = (
            ""
            if abs(math.log(self.constant)) <= self.tolerance
            else (f", times a constant {_spec.fmt_num(self.constant)}")
        )
        edge = ", a limit: a parameter is at the edge of its search range" if self.at_bound else ""
        return f"{self.label} {where}{const}{edge} (max |log ratio| {self.max_log_error:.2g})"


def _transform(p: _Free, v: float) -> float:
    return math.log(v) if p.scale == "log" else v


def _untransform(p: _Free, z: float) -> float:
    return math.exp(z) if p.scale == "log" else z


def _grid(p: _Free, n: int) -> np.ndarray:
    lo, hi = _transform(p, p.lo), _transform(p, p.hi)
    if n == 1:
        return np.array([0.5 * (lo + hi)])
    return np.linspace(lo, hi, n)


class _Problem:
    """The data of one identification: λ, log g and the log κ_b of each b."""

    def __init__(self, lam, log_g, applied_to, process, sigma_data, written_for):
        self.lam = lam
        # converted once (the registry is called many times) and padded to the kit's one
        # evaluation size (JAX compiles each operation once per array shape); identify's
        # candidates (ALSR with a fixed centre) do not depend on the padding
        n = lam.size
        size = _spec.padded_size(n)
        self.lam_j = jnp.asarray(np.concatenate([lam, np.full(size - n, lam[-1])]))
        self.log_g = log_g
        self.applied_to = applied_to
        self.process = process
        self.sigma_data = sigma_data
        self.written_for = written_for
        self.lam_lo = float(lam.min()) - 1.0
        self.lam_hi = float(lam.max()) + 1.0
        self.log_kappa = {b: log_kappa(b, lam, process) for b in written_for if b != "F"}
        self._schedules: dict[float, schedules.Schedule] = {}

    def log_kappa_f(self, sd: float) -> np.ndarray:
        return log_kappa("F", self.lam, self.process, sd)

    def cosine(self, shift: float) -> schedules.Schedule:
        # one schedule object per shift value, shared by every weighting built on it (its
        # truncation constants are then computed once)
        if shift not in self._schedules:
            self._schedules[shift] = schedules.get(
                "cosine", shift=shift, lam_min=self.lam_lo, lam_max=self.lam_hi
            )
        return self._schedules[shift]

    def kwargs(self, fixed, values: Mapping[str, float]) -> dict:
        """The keyword arguments of ``weightings.get`` for fixed and fitted values."""
        kw = dict(fixed)
        vals = dict(values)
        if "shift" in vals:
            kw["schedule"] = self.cosine(float(vals.pop("shift")))
        kw.update(vals)
        return kw

    def build(self, name, fixed, values: Mapping[str, float]) -> weightings.Weighting:
        return weightings.get(name, **self.kwargs(fixed, values))

    def log_model(self, name, fixed, values) -> np.ndarray:
        w = self.build(name, fixed, values)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(np.asarray(w(self.lam_j), dtype=np.float64)[: self.lam.size])
        return out


def log_kappa(p: str, lam: np.ndarray, process: str, sigma_data: float = 1.0) -> np.ndarray:
    r"""$\log\kappa_p(\lambda)$ in NumPy for the fit's inner loop (FORMULAS.md §1; the kit's
    tests check it against :func:`dsmtheory.parameterization.kappa`).

    VP/VE: $\kappa_{x_0}=e^{-\lambda}$, $\kappa_F=1+e^{-\lambda}/\sigma_d^2$;
    VP: $\kappa_v=1+e^{-\lambda}$, $\kappa_s=1+e^{\lambda}$; VE: $\kappa_v=(1+e^{-\lambda})^2$,
    $\kappa_s=e^{\lambda}$.
    """
    if p == "eps":
        return np.zeros_like(lam)
    if p == "x0":
        return -lam
    if p == "F":
        return np.logaddexp(0.0, -lam - 2.0 * np.log(sigma_data))
    if p == "v":
        lv = np.logaddexp(0.0, -lam)
        return lv if process == "vp" else 2.0 * lv
    return np.logaddexp(0.0, lam) if process == "vp" else lam.copy()  # score


def _centered(target: np.ndarray, log_model: np.ndarray) -> np.ndarray:
    r = target - log_model
    if not np.all(np.isfinite(r)):
        return np.full_like(r, _BAD)
    return r - r.mean()


class _Hyp(NamedTuple):
    """One (weighting, parameterization) hypothesis with its free variables."""

    name: str
    fixed: dict
    free: list  # the weighting's free parameters
    replica: str | None  # key of its NumPy replica (None: the registry is evaluated)
    b: str
    sigma_mode: str  # "none" (b != F), "given", "tied" (weighting's sigma_data), "free"


def _hypotheses(prob: _Problem, names) -> list[_Hyp]:
    out = []
    known = {c[0] for c in _CANDIDATES}
    cands = [c for c in _CANDIDATES if names is None or c[0] in names]
    for extra in weightings.names():
        if extra in known or extra in _SKIP or (names is not None and extra not in names):
            continue
        if _spec.default_params(extra) is not None:
            cands.append((extra, {}, [], None))
    for name, fixed, free, replica in cands:
        has_sd = any(p.name == "sigma_data" for p in free)
        for b in prob.written_for:
            if b != "F":
                mode = "none"
            elif prob.sigma_data is not None:
                mode = "given"
            elif has_sd:
                mode = "tied"
            elif prob.applied_to == "F":
                mode = "free"
            else:  # an F formula with an unknown sigma_d applied to another loss: not tried
                continue
            out.append(_Hyp(name, fixed, free, replica, b, mode))
    return out


def _target(prob: _Problem, h: _Hyp, values: Mapping[str, float], sd_free: float | None):
    if h.sigma_mode == "none":
        return prob.log_g + prob.log_kappa[h.b]
    if h.sigma_mode == "given":
        sd = prob.sigma_data
    elif h.sigma_mode == "tied":
        sd = values["sigma_data"]
    else:
        sd = sd_free
    return prob.log_g + prob.log_kappa_f(sd)


def _search_model(prob: _Problem, h: _Hyp, values) -> np.ndarray:
    """log ω_ε for the search: the NumPy replica when there is one, else the registry."""
    if h.replica is None:
        return prob.log_model(h.name, h.fixed, values)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = np.asarray(_REPLICAS[h.replica](prob.lam, {**h.fixed, **values}))
    return np.broadcast_to(out[0] if out.ndim == 2 else out, prob.lam.shape)


def _rms(res: np.ndarray) -> float:
    return float(np.sqrt(np.mean(res**2)))


class _Fit(NamedTuple):
    rms: float
    values: dict
    sd_free: float | None


def _grid_search(prob: _Problem, group: list[_Hyp]) -> dict[int, list[_Fit]]:
    """The best grid points of every hypothesis of one weighting, best first (the model is
    evaluated once per grid point, vectorised, and shared by all parameterizations b)."""
    h0 = group[0]
    free = h0.free
    n = _GRID_POINTS[min(len(free), 3)]
    axes = [_grid(p, n) for p in free]
    mesh = np.meshgrid(*axes, indexing="ij") if axes else []
    points = np.stack([m.ravel() for m in mesh], axis=-1) if axes else np.zeros((1, 0))
    cols = {p.name: np.array([_untransform(p, z) for z in points[:, j]])[:, None]
            for j, p in enumerate(free)}  # fmt: skip
    if h0.replica is not None:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            lm = np.broadcast_to(_REPLICAS[h0.replica](prob.lam, {**h0.fixed, **cols}),
                                 (points.shape[0], prob.lam.size))  # fmt: skip
    else:
        try:
            lm = prob.log_model(h0.name, h0.fixed, {})[None, :]
        except ValueError:
            return {}
    sd_grid = np.exp(_grid(_SIGMA_F, 13))
    # the centred RMS of r = t - lm per row, from per-row moments of lm and one matrix-vector
    # product per target t (a search criterion only: cancellation limits it to ~1e-8)
    ok = np.all(np.isfinite(lm), axis=1)
    lm = np.where(ok[:, None], lm, 0.0)
    n = prob.lam.size
    m1, m2 = lm.mean(axis=1), np.einsum("ij,ij->i", lm, lm) / n
    found: dict[int, list[_Fit]] = {}
    for i, h in enumerate(group):
        for sd in sd_grid if h.sigma_mode == "free" else [None]:
            if h.sigma_mode == "tied":  # a target per row: r = g + (log kappa_F - lm)
                d = log_kappa("F", prob.lam[None, :], prob.process, cols["sigma_data"]) - lm
                g = prob.log_g
                mean_r = d.mean(axis=1) + g.mean()
                var = np.einsum("ij,ij->i", d, d) / n + 2.0 * (d @ g) / n + (g @ g) / n
                var = var - mean_r**2
            else:
                t = _target(prob, h, {}, sd)
                mean_r = t.mean() - m1
                var = (t @ t) / n - 2.0 * (lm @ t) / n + m2 - mean_r**2
            rms = np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.inf)
            for k in np.argsort(rms, kind="stable")[:_STARTS]:
                if not np.isfinite(rms[k]):
                    continue
                values = {p.name: float(cols[p.name][k, 0]) for p in free}
                found.setdefault(i, []).append(
                    _Fit(float(rms[k]), values, None if sd is None else float(sd))
                )
        if i in found:
            found[i] = sorted(found[i], key=lambda f: f.rms)[:_STARTS]
    return found


def _refine(prob: _Problem, h: _Hyp, start: _Fit) -> _Fit:
    """Least squares on the centred log residual from one start (transformed variables)."""
    from scipy.optimize import least_squares

    free = list(h.free) + ([_SIGMA_F] if h.sigma_mode == "free" else [])

    lo = np.array([_transform(p, p.lo) for p in free])
    hi = np.array([_transform(p, p.hi) for p in free])

    def unpack(z):
        z = np.clip(z, lo, hi)  # the search range (Levenberg-Marquardt is unbounded)
        values = {p.name: _untransform(p, float(zi)) for p, zi in zip(h.free, z, strict=False)}
        sd = math.exp(float(z[-1])) if h.sigma_mode == "free" else None
        return values, sd

    def resid(z):
        values, sd = unpack(z)
        try:
            lm = _search_model(prob, h, values)
        except ValueError:
            return np.full(prob.lam.size, _BAD)
        return _centered(_target(prob, h, values, sd), lm)

    if not free:
        return _Fit(_rms(resid([])), start.values, start.sd_free)
    z0 = [_transform(p, start.values[p.name]) for p in h.free]
    if h.sigma_mode == "free":
        z0.append(math.log(start.sd_free))
    z0 = np.clip(z0, lo, hi)
    if len(free) <= 2:  # MINPACK's Levenberg-Marquardt: fast, the range enforced by clipping
        sol = least_squares(
            resid, z0, method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-12,
            max_nfev=100 * len(free), x_scale="jac",
        )  # fmt: skip
    else:  # three parameters: the bounded trust-region method finds more exact matches
        sol = least_squares(
            resid, z0, bounds=(lo, hi), method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12,
            max_nfev=100 * len(free), x_scale="jac",
        )  # fmt: skip
    sol.x = np.clip(sol.x, lo, hi)
    values, sd = unpack(sol.x)
    rms = _rms(resid(sol.x))
    fit = _Fit(rms, values, sd) if rms < start.rms else start
    for k, p in enumerate(h.free):  # special values: p2's k = 0, a zero shift
        if p.snap is None:
            continue
        z = _transform(p, fit.values[p.name])
        if p.scale == "log":  # the special value 0 lies beyond the lower bound
            if z - lo[k] > 0.05 * (hi[k] - lo[k]):
                continue
        elif abs(z - p.snap) > 1e-6 * (hi[k] - lo[k]):
            continue
        # the fit ran to the special value: refit the others with it held there
        sub = h._replace(
            fixed=dict(h.fixed, **{p.name: p.snap}), free=[q for q in h.free if q is not p]
        )
        sub_start = _Fit(math.inf, {q.name: fit.values[q.name] for q in sub.free}, fit.sd_free)
        trial = _refine(prob, sub, sub_start)
        if trial.rms <= fit.rms + 1e-12:
            fit = _Fit(trial.rms, dict(trial.values, **{p.name: p.snap}), trial.sd_free)
    return fit


def _finish(prob: _Problem, h: _Hyp, fit: _Fit, tol: float) -> Match | None:
    """The registry's verdict on a fitted hypothesis (None if the registry refuses it)."""
    try:
        w = prob.build(h.name, h.fixed, fit.values)
    except ValueError:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        lm = np.log(np.asarray(w(prob.lam_j), dtype=np.float64)[: prob.lam.size])
    if h.sigma_mode == "none":
        sd = None
    elif h.sigma_mode == "given":
        sd = prob.sigma_data
    elif h.sigma_mode == "tied":
        sd = fit.values["sigma_data"]
    else:
        sd = fit.sd_free
    r = _target(prob, h, fit.values, fit.sd_free) - lm
    if np.all(np.isfinite(r)):
        mean = float(r.mean())
        dev = np.abs(r - mean)
        max_err, rms, const = float(dev.max()), _rms(dev), math.exp(mean)
    else:
        max_err = rms = math.inf
        const = math.nan
    return Match(
        name=h.name,
        params=dict(w.params),
        parameterization=h.b,
        applied_to=prob.applied_to,
        constant=const,
        max_log_error=max_err,
        rms_log_error=rms,
        fits=bool(max_err <= tol),
        tolerance=tol,
        sigma_data=None if sd is None else float(sd),
        num_params=len(h.free) + (1 if h.sigma_mode == "free" else 0),
        at_bound=_at_bound(h, fit),
        kwargs=prob.kwargs(h.fixed, fit.values),
    )


def _at_bound(h: _Hyp, fit: _Fit) -> bool:
    pairs = [(p, fit.values[p.name]) for p in h.free]
    if h.sigma_mode == "free":
        pairs.append((_SIGMA_F, fit.sd_free))
    for p, v in pairs:
        if p.snap is not None and v == p.snap and p.scale == "log":
            continue
        z, lo, hi = _transform(p, v), _transform(p, p.lo), _transform(p, p.hi)
        if min(z - lo, hi - z) <= 1e-6 * (hi - lo):
            return True
    return False


def _rank_key(m: Match):
    # fits first: genuine members before limits at a parameter bound, correctly applied
    # before misapplied, weightings of lambda alone before those defined through an assumed
    # sampling density, an exact match before one up to a factor, fewer parameters first;
    # then the rest by the residual the fit minimised (limits at a bound after the others)
    if m.fits:
        order = _spec.PARAMETERIZATIONS.index(m.parameterization)
        scaled = abs(math.log(m.constant)) > m.tolerance
        key = (m.at_bound, m.misapplied, m.density_defined, scaled, m.num_params, order)
        return (0, *key, m.max_log_error)
    return (1, m.at_bound, m.rms_log_error, m.num_params)


def identify_weighting(
    x,
    weights,
    *,
    parameterization: str,
    process: str = "vp",
    input: str = "snr",  # noqa: A002 - the contract's name
    alphas_cumprod=None,
    sigma_data: float | None = None,
    names: Sequence[str] | None = None,
    written_for: Sequence[str] | None = None,
    tolerance: float = FIT_TOL,
) -> list[Match]:
    r"""Rank the registry weightings by how well they explain ``weights``, up to a constant.

    Model and fit: module docstring. Each registry weighting $X$ is tried as written for every
    parameterization $b$ in ``written_for`` (default: all five), its parameters fitted by
    least squares on $\log g-\log(\omega^X_\varepsilon/\kappa_b)$ with the constant
    eliminated; a coarse grid first, then ``scipy.optimize.least_squares``.

    Args:
        x: ``(N,)`` points: SNR (``input="snr"``), λ (``"lam"``), σ̃ = e^{-λ/2}
            (``"sigma"``) or integer timesteps (``"timestep"``, with ``alphas_cumprod``).
        weights: ``(N,)`` multipliers on the ``parameterization``-space MSE, each > 0.
        parameterization: the MSE the weights multiply: ``"eps"``, ``"x0"`` (or
            ``"sample"``), ``"v"``, ``"score"`` or ``"F"``.
        process: ``"vp"`` or ``"ve"`` (the error factors κ depend on it).
        input: what ``x`` holds.
        alphas_cumprod: diffusers' ``alphas_cumprod`` array, for ``input="timestep"``.
        sigma_data: the σ_d of the F conversion; ``None`` ties it to the weighting's own
            σ_d where it has one and fits it otherwise.
        names: restrict the registry names tried.
        written_for: restrict the parameterizations $b$ tried.
        tolerance: largest log residual of a fit.

    Returns:
        The candidates as :class:`Match` objects, best first: every hypothesis whose grid
        residual made it worth refining and, for every registry weighting, at least its best
        parameterization. The fitting ones come first (limits at a
        parameter bound last; correctly applied before misapplied; weightings of λ alone
        before those defined through a sampling density; constant 1 before a factor; fewer
        parameters first), then the rest by RMS log residual (limits at a bound last).

    Raises:
        ValueError: fewer than 2 points, non-finite or non-positive weights, bad ``x``.

    Example:
        >>> import numpy as np
        >>> snr = np.geomspace(1e-4, 1e4, 50)
        >>> ms = identify_weighting(snr, np.minimum(snr, 5) / (snr + 1), parameterization="v")
        >>> ms[0].label, ms[0].parameterization, ms[0].fits
        ('min_snr(gamma=5)', 'v', True)
    """
    a = _spec.parameterization_name(parameterization)
    process = _spec.process_name(process)
    kind = _spec.input_name(input)
    if kind == "timestep" and process != "vp":
        raise ValueError('input="timestep" (diffusers\' alphas_cumprod) is a VP process')
    lam = _spec.input_to_lam(x, kind, alphas_cumprod)
    g = _spec.as_real_vector(weights, "weights")
    if g.shape != lam.shape:
        raise ValueError(
            f"weights must have one value per point: {g.size} weights, {lam.size} points"
        )
    if lam.size < 2:
        raise ValueError(f"need at least 2 points to identify a weighting, got {lam.size}")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(
            "weights must be finite and > 0 (the fit is in log space); drop zero-weight points "
            "such as a zero-terminal-SNR step"
        )
    sigma_data = _spec.sigma_data_value(sigma_data)
    if not (isinstance(tolerance, int | float) and tolerance > 0):
        raise ValueError(f"tolerance must be a number > 0, got {tolerance!r}")
    wf = tuple(_spec.parameterization_name(b) for b in (written_for or _spec.PARAMETERIZATIONS))
    if names is not None:
        names = set(names)
        unknown = names - set(weightings.names())
        if unknown:
            raise ValueError(
                f"unknown weighting name(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(weightings.names())}"
            )
    order = np.argsort(lam, kind="stable")
    prob = _Problem(lam[order], np.log(g[order]), a, process, sigma_data, wf)
    hyps = _hypotheses(prob, names)
    groups: dict[tuple, list[int]] = {}
    for i, h in enumerate(hyps):
        groups.setdefault((h.name, tuple(sorted(h.fixed.items()))), []).append(i)
    found = {}
    for idx in groups.values():
        for j, starts in _grid_search(prob, [hyps[i] for i in idx]).items():
            found[idx[j]] = starts
    # refine the promising hypotheses: of each weighting, the _REFINE_PER best below
    # _REFINE_RMS (the dense grid puts an exact match below it), and the best _REFINE_TOP
    # overall; the others keep their grid fit, an upper bound on their residual
    ranked = sorted(found, key=lambda i: found[i][0].rms)
    refine = set(ranked[:_REFINE_TOP])
    for idx in groups.values():
        close = [i for i in ranked if i in set(idx) and found[i][0].rms <= _REFINE_RMS]
        refine.update(close[:_REFINE_PER])
    # reported: every refined hypothesis and each weighting's best other one (so that every
    # registry entry appears at least once); the rest are far from the data
    seen: set[tuple] = set()
    report = []
    for i in ranked:
        key = (hyps[i].name, tuple(sorted(hyps[i].fixed.items())))
        if i in refine or key not in seen:
            report.append(i)
            seen.add(key)
    matches = []
    for i in report:
        h, starts = hyps[i], found[i]
        fit = starts[0]
        if i in refine:
            fit = _refine(prob, h, starts[0])
            for other in starts[1:]:  # further starts only while no fit is found
                if fit.rms <= 1e-9 or other.rms > _RESTART_RMS:
                    break
                trial = _refine(prob, h, other)
                fit = trial if trial.rms < fit.rms else fit
        m = _finish(prob, h, fit, float(tolerance))
        if m is not None:
            matches.append(m)
    matches.sort(key=_rank_key)
    return matches


def format_matches(matches: Sequence[Match], top: int = 10) -> str:
    """A plain-text table of the first ``top`` matches (as the ``identify`` command prints)."""
    rows = [("rank", "weighting", "written for", "constant", "max|log ratio|", "fits")]
    for i, m in enumerate(matches[:top], 1):
        wf = m.parameterization
        if m.parameterization == "F" and m.sigma_data is not None:
            wf += f" (sd={_spec.fmt_num(m.sigma_data)})"
        rows.append(
            (str(i), m.label, wf, f"{m.constant:.6g}", f"{m.max_log_error:.2e}",
             "yes" if m.fits else "no")
        )  # fmt: skip
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(wd) for cell, wd in zip(r, widths, strict=True)).rstrip() for r in rows
    )
