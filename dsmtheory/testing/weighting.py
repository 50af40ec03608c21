r"""Check a user's loss multiplier against a registry weighting, in ε space.

A per-sample multiplier $\omega_a$ on an $a$-space MSE ($a\in\{\varepsilon,x_0,v,s,F\}$) is
the $\varepsilon$-space multiplier

$$\omega_\varepsilon(\lambda)=\omega_a(\lambda)\,\kappa_a(\lambda)$$

(FORMULAS.md §1, "Transforming a weighting between parameterizations"), and every registry
weighting is stored as its $\omega_\varepsilon$ (FORMULAS.md §3). :func:`assert_weighting`
compares the two on a dense λ grid; on a mismatch it says where, by how much, which formula
the user should have written, and what the user's function *does* compute
(:func:`~dsmtheory.testing.identify_weighting`): for diffusers issue #5654, that a v-loss
weight is the ε formula of Min-SNR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import _spec
from ._tolerances import FIT_TOL, WEIGHT_RTOL
from .identify import identify_weighting

__all__ = ["assert_weighting", "assert_equivalent", "Equivalence", "GRID_POINTS"]

GRID_POINTS = 2001  # λ points of the dense comparison grid (spacing 0.01 on [-10, 10])
_IDENTIFY_POINTS = 201  # points given to identify_weighting for the failure message
_SHOW_MATCHES = 3  # fitting matches listed in a failure message


class Equivalence(NamedTuple):
    r"""Result of :func:`assert_weighting` and :func:`assert_equivalent`.

    Attributes:
        constant: the factor $c$ with $\omega_1\approx c\,\omega_2$ (1 for an exact match;
            the value minimising the largest log deviation).
        max_rel_error: $\max|\omega_1/(c\,\omega_2)-1|$ over the points.
        lam_worst: λ where that maximum is attained.
        num_points: how many points were compared.
        lam_range: ``(min λ, max λ)`` of those points.
    """

    constant: float
    max_rel_error: float
    lam_worst: float
    num_points: int
    lam_range: tuple[float, float]


def _compare(user_eps: np.ndarray, ref_eps: np.ndarray, up_to_constant: bool):
    """Log ratio, its best constant and the relative deviations (NaN-safe)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log(user_eps) - np.log(ref_eps)
    finite = np.isfinite(log_r)
    if up_to_constant and np.any(finite):
        log_c = 0.5 * (log_r[finite].max() + log_r[finite].min())  # minimises max |log r/c|
    else:
        log_c = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        rel = np.where(finite, np.abs(np.expm1(log_r - log_c)), np.inf)
    return log_r, log_c, rel


def _fmt_lam_points(lam: float) -> str:
    return f"lambda = {_spec.fmt_num(lam)} (SNR = {math.exp(lam):.3g})"


def _explain_user(lam, user_a, parameterization, process, sigma_data, max_tol=FIT_TOL) -> str:
    """What identify_weighting says the user's multiplier is (one or a few lines)."""
    pos = np.isfinite(user_a) & (user_a > 0)
    if pos.sum() < 2:
        return "  fn is not positive and finite anywhere: nothing to identify."
    idx = np.flatnonzero(pos)
    if idx.size > _IDENTIFY_POINTS:
        idx = idx[np.linspace(0, idx.size - 1, _IDENTIFY_POINTS).round().astype(int)]
    try:
        ms = identify_weighting(
            lam[idx], user_a[idx], parameterization=parameterization, process=process,
            input="lam", sigma_data=sigma_data, tolerance=max_tol,
        )  # fmt: skip
    except ValueError as exc:  # pragma: no cover - inputs were checked above
        return f"  (identify_weighting failed: {exc})"
    note = "" if pos.all() else f" (on the {int(pos.sum())} points where fn > 0)"
    fits = [m for m in ms if m.fits]
    if fits:
        lines = [f"  fn matches{note}: {fits[0].describe()}"]
        lines += [f"    also: {m.describe()}" for m in fits[1:_SHOW_MATCHES]]
        return "\n".join(lines)
    return (
        f"  fn matches no registry weighting within max |log ratio| {max_tol:g}{note}; "
        f"nearest: {ms[0].describe()}"
    )


def _expected_text(spec, parameterization, process, sigma_data) -> str:
    text = _spec.multiplier_text(spec.name, spec.params, parameterization, process, sigma_data)
    if text is None:
        return (
            f"  Expected {parameterization!r} multiplier: omega_eps / kappa_{parameterization} "
            f"with omega_eps of {spec.label}"
        )
    return f"  Expected {parameterization!r} multiplier: {text}"


def assert_weighting(
    fn: Callable,
    expected,
    *,
    parameterization: str,
    process: str = "vp",
    input: str = "snr",  # noqa: A002 - the contract's name
    up_to_constant: bool = False,
    lam_range=(-10.0, 10.0),
    alphas_cumprod=None,
    rtol: float = WEIGHT_RTOL,
    **params,
) -> Equivalence:
    r"""Assert that ``fn`` is the loss multiplier of registry weighting ``expected``.

    ``fn`` maps a NumPy array of points to the per-sample multiplier $\omega_a$ the user's
    code puts on its ``parameterization``-space MSE. It is compared in $\varepsilon$ space,
    $\omega_a\kappa_a$ against the registry's $\omega_\varepsilon$ (FORMULAS.md §1, §3), on a
    grid of :data:`GRID_POINTS` λ values spanning ``lam_range`` (or, for
    ``input="timestep"``, on every timestep whose λ lies in ``lam_range``):

    $$\max_\lambda\Big|\frac{\omega_a(\lambda)\,\kappa_a(\lambda)}
    {c\,\omega_\varepsilon(\lambda)}-1\Big|\le\mathrm{rtol},$$

    with $c=1$, or with the best constant when ``up_to_constant``.

    Args:
        fn: ``points -> multipliers``, vectorised over a 1-D NumPy float64 array (int64 for
            timesteps); its output must have the shape of its input.
        expected: a registry name (with ``**params``) or a
            :class:`~dsmtheory.weightings.Weighting`.
        parameterization: the space of ``fn``'s MSE: ``"eps"``, ``"x0"`` (or ``"sample"``),
            ``"v"``, ``"score"`` or ``"F"`` (diffusers' ``"epsilon"``, ``"v_prediction"``
            are accepted too).
        process: ``"vp"`` or ``"ve"`` (κ of ``v`` and ``score`` depend on it).
        input: what ``fn`` receives: ``"snr"`` ($e^\lambda$), ``"lam"`` (λ), ``"sigma"``
            ($\tilde\sigma=e^{-\lambda/2}$) or ``"timestep"`` (integer $t$ into
            ``alphas_cumprod``, diffusers' convention, VP).
        up_to_constant: accept $\omega_a\kappa_a=c\,\omega_\varepsilon$ for one constant $c$.
        lam_range: ``(lo, hi)`` λ range (may be infinite for ``input="timestep"``).
        alphas_cumprod: diffusers' ``alphas_cumprod``, for ``input="timestep"``.
        rtol: largest relative deviation (:data:`~dsmtheory.testing.WEIGHT_RTOL` by default,
            sized for float32 user code; pass ~1e-12 for float64 code).
        **params: parameters of ``expected``. For ``parameterization="F"``, ``sigma_data``
            is also the σ_d of the F conversion (and is passed to ``expected`` only if it
            takes one).

    Returns:
        :class:`Equivalence` (the constant, the largest deviation, where, how many points).

    Raises:
        AssertionError: ``fn`` does not match; the message gives the λ ranges of the
            mismatch, the largest ratio, the correct multiplier and what ``fn`` matches.
        ValueError, TypeError: bad arguments (unknown names, ``fn`` output of the wrong
            shape, no σ_d for ``"F"``, no points in ``lam_range``).

    Example:
        >>> import numpy as np
        >>> assert_weighting(lambda snr: np.minimum(snr, 5.0) / (snr + 1), "min_snr",
        ...                  parameterization="v", gamma=5.0).max_rel_error < 1e-6
        True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    p = _spec.parameterization_name(parameterization)
    process = _spec.process_name(process)
    kind = _spec.input_name(input)
    if kind == "timestep" and process != "vp":
        raise ValueError('input="timestep" (diffusers\' alphas_cumprod) is a VP process')
    lo, hi = _spec.lam_range_pair(lam_range, allow_infinite=kind == "timestep")
    if not (isinstance(rtol, int | float) and rtol > 0):
        raise ValueError(f"rtol must be a number > 0, got {rtol!r}")
    if isinstance(expected, str):
        wparams, sd = _spec.split_sigma_data(expected, params, p)
    else:
        wparams, sd = _spec.split_sigma_data(None, params, p)
    spec = _spec.resolve_weighting(expected, wparams, "expected")
    sd = _spec.conversion_sigma_data(p, sd, spec)

    if kind == "timestep":
        lam_all = _spec.timesteps_to_lam(np.arange(np.size(alphas_cumprod)), alphas_cumprod)
        ts = np.flatnonzero((lam_all >= lo) & (lam_all <= hi))
        if ts.size < 2:
            raise ValueError(f"fewer than 2 timesteps have lambda in lam_range={lam_range!r}")
        x, lam = ts.astype(np.int64), lam_all[ts]
    else:
        lam = np.linspace(lo, hi, GRID_POINTS)
        x = _spec.lam_to_input(lam, kind)
    user_a = np.asarray(fn(x.copy()))
    if user_a.shape != x.shape:
        raise ValueError(
            f"fn must return one multiplier per input point: input shape {x.shape}, output "
            f"shape {user_a.shape}"
        )
    if user_a.dtype.kind not in "fiu":
        raise TypeError(f"fn must return real numbers, got dtype {user_a.dtype}")
    user_a = user_a.astype(np.float64)
    kap = _spec.kappa(p, lam, process, sd)
    ref = spec.fn(lam)
    log_r, log_c, rel = _compare(user_a * kap, ref, up_to_constant)
    worst = int(np.argmax(rel))
    result = Equivalence(
        constant=math.exp(log_c),
        max_rel_error=float(rel[worst]),
        lam_worst=float(lam[worst]),
        num_points=int(lam.size),
        lam_range=(float(lam.min()), float(lam.max())),
    )
    if result.max_rel_error <= rtol:
        return result

    # ---- the failure message
    order = np.argsort(lam)
    bad = rel[order] > rtol
    mode = "up to a constant" if up_to_constant else "exactly"
    where = f"input {kind!r}" + (", alphas_cumprod given" if kind == "timestep" else "")
    sd_txt = f", sigma_data={_spec.fmt_num(sd)}" if p == "F" else ""
    ratio = np.exp(log_r - log_c)
    finite = np.isfinite(ratio)
    lines = [
        f"fn is not the {p!r} multiplier of {spec.label} ({mode}; process {process!r}, "
        f"{where}{sd_txt}).",
        f"  Compared in eps space, fn * kappa_{p} / omega_eps on {lam.size} points with lambda "
        f"in [{_spec.fmt_num(lam.min())}, {_spec.fmt_num(lam.max())}]"
        + (
            f", divided by the best constant {_spec.fmt_num(result.constant)}"
            if up_to_constant
            else ""
        )
        + ":",
    ]
    if np.any(finite):
        lines.append(
            f"  the ratio runs from {ratio[finite].min():.6g} to {ratio[finite].max():.6g} "
            f"and exceeds rtol={rtol:g} for lambda in {_spec.fmt_runs(_spec.runs(bad, lam[order]))}"
            f" ({int(bad.sum())} of {lam.size} points);"
        )
    nonfinite = int((~np.isfinite(user_a)).sum() + ((user_a <= 0) & np.isfinite(user_a)).sum())
    if nonfinite:
        lines.append(f"  fn is zero, negative or not finite at {nonfinite} points;")
    lines.append(
        f"  largest deviation {result.max_rel_error:.3g} at {_fmt_lam_points(result.lam_worst)}"
        f" (fn = {user_a[worst]:.6g}, expected {ref[worst] / kap[worst] * result.constant:.6g})."
    )
    lines.append(_expected_text(spec, p, process, sd))
    if not up_to_constant and np.any(finite):
        spread = float(log_r[finite].max() - log_r[finite].min())
        if spread <= math.log1p(rtol):
            lines.append(
                f"  fn matches {spec.label} up to the constant factor "
                f"{math.exp(float(np.median(log_r[finite]))):.6g} (pass up_to_constant=True "
                "if that is intended)."
            )
    lines.append(_explain_user(lam, user_a, p, process, sd))
    raise AssertionError("\n".join(lines))


def _resolve_pair_member(w, what):
    """A weighting given as name / Weighting / callable of λ (ε space), or as a pair
    ``(fn, parameterization)`` for a multiplier in another space."""
    if isinstance(w, tuple):
        if len(w) != 2 or not callable(w[0]):
            raise TypeError(f"{what} as a tuple must be (fn, parameterization), got {w!r}")
        return _spec.resolve_weighting(w[0], None, what), _spec.parameterization_name(w[1])
    return _spec.resolve_weighting(w, None, what), "eps"


def assert_equivalent(
    w1,
    w2,
    *,
    up_to: str = "constant",
    process: str = "vp",
    lam_range=(-10.0, 10.0),
    sigma_data: float | None = None,
    rtol: float = WEIGHT_RTOL,
) -> Equivalence:
    r"""Assert that two weightings are the same training objective, exactly or up to a constant.

    Each weighting is a registry name (default parameters), a
    :class:`~dsmtheory.weightings.Weighting`, a callable $\lambda\mapsto\omega_\varepsilon$,
    or a pair ``(fn, parameterization)`` for a multiplier $\omega_a(\lambda)$ on an $a$-MSE,
    converted with $\kappa_a$ of ``process`` (FORMULAS.md §1). Compared on
    :data:`GRID_POINTS` λ values over ``lam_range``:

    $$\max_\lambda|\omega_1/(c\,\omega_2)-1|\le\mathrm{rtol}$$

    with $c=1$ (``up_to="exact"``) or the best constant (``up_to="constant"``; P1 of
    FORMULAS.md §5: smoothed-KL is $(1+\tau^2)^{-1}$ Soft-Min-SNR).

    Args:
        w1: first weighting.
        w2: second weighting.
        up_to: ``"constant"`` or ``"exact"``.
        process: ``"vp"`` or ``"ve"`` (matters only for ``(fn, parameterization)`` pairs).
        lam_range: ``(lo, hi)``, finite.
        sigma_data: σ_d of an ``"F"`` pair.
        rtol: largest relative deviation.

    Returns:
        :class:`Equivalence` with $c$ such that $\omega_1\approx c\,\omega_2$.

    Raises:
        AssertionError: not equivalent; the message gives where and by how much.

    Example:
        >>> from dsmtheory import weightings
        >>> tau = 0.3
        >>> sd = (tau**2 / (1 + tau**2)) ** 0.5
        >>> assert_equivalent(weightings.get("smoothed_kl", tau=tau),
        ...                   weightings.get("soft_min_snr", sigma_data=sd)).constant
        ... # doctest: +ELLIPSIS
        0.917431...
    """
    if up_to not in ("constant", "exact"):
        raise ValueError(f'up_to must be "constant" or "exact", got {up_to!r}')
    process = _spec.process_name(process)
    lo, hi = _spec.lam_range_pair(lam_range)
    sd = _spec.sigma_data_value(sigma_data)
    if not (isinstance(rtol, int | float) and rtol > 0):
        raise ValueError(f"rtol must be a number > 0, got {rtol!r}")
    lam = np.linspace(lo, hi, GRID_POINTS)
    vals, labels = [], []
    for w, what in ((w1, "w1"), (w2, "w2")):
        spec, p = _resolve_pair_member(w, what)
        if p == "F" and sd is None:
            raise ValueError(f"{what} is an 'F' multiplier: pass sigma_data")
        v = spec.fn(lam) * (_spec.kappa(p, lam, process, sd) if p != "eps" else 1.0)
        if v.shape != lam.shape:
            raise ValueError(f"{what} must return one value per lambda, got shape {v.shape}")
        vals.append(v)
        labels.append(spec.label + ("" if p == "eps" else f" on the {p!r} MSE"))
    log_r, log_c, rel = _compare(vals[0], vals[1], up_to == "constant")
    worst = int(np.argmax(rel))
    result = Equivalence(
        math.exp(log_c), float(rel[worst]), float(lam[worst]), int(lam.size), (lo, hi)
    )
    if result.max_rel_error <= rtol:
        return result
    bad = rel > rtol
    ratio = np.exp(log_r)
    finite = np.isfinite(ratio)
    lines = [
        f"{labels[0]} and {labels[1]} are not equivalent "
        f"({'up to a constant' if up_to == 'constant' else 'exactly'}; process {process!r}).",
        f"  omega_1 / omega_2 in eps space runs from {ratio[finite].min():.6g} to "
        f"{ratio[finite].max():.6g} on lambda in [{_spec.fmt_num(lo)}, {_spec.fmt_num(hi)}]"
        if np.any(finite)
        else "  omega_1 / omega_2 is not finite anywhere",
        f"  it deviates by more than rtol={rtol:g} from "
        f"{'the constant ' + _spec.fmt_num(result.constant) if up_to == 'constant' else '1'} "
        f"for lambda in {_spec.fmt_runs(_spec.runs(bad, lam))}; largest deviation "
        f"{result.max_rel_error:.3g} at {_fmt_lam_points(result.lam_worst)}.",
    ]
    if up_to == "exact" and np.any(finite):
        spread = float(log_r[finite].max() - log_r[finite].min())
        if spread <= math.log1p(rtol):
            lines.append(
                f"  They are equivalent up to the constant "
                f"{math.exp(float(np.median(log_r[finite]))):.6g} (up_to='constant')."
            )
    raise AssertionError("\n".join(lines))
