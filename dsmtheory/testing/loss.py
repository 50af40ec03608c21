r"""Check a user's per-example loss function against dsmtheory's weighted DSM loss.

For the same network output $\hat a$ (in parameterization $a$), clean data $x_0$, noise
$\varepsilon$ and log-SNR λ, the exact weighted loss is

$$\ell=\frac{\omega_\varepsilon(\lambda)}{\kappa_a(\lambda)}\,\|a-\hat a\|^2$$

(:func:`dsmtheory.losses.dsm_loss`; FORMULAS.md §1). :func:`assert_loss` evaluates both at
random points and, when they differ, says how: a λ-dependent factor too many or too few
($\kappa_b$, $c_{out}^2$), which registry multiplier the user's loss really applies
(:func:`~dsmtheory.testing.identify_weighting`), or a target of another parameterization.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from .. import schedules
from .._validation import check_count
from ..losses import dsm_loss, dsm_target
from ..mixture import check_mixture
from . import _spec
from ._tolerances import FIT_TOL, WEIGHT_RTOL
from .identify import identify_weighting

__all__ = ["LossCheck", "assert_loss"]


class LossCheck(NamedTuple):
    r"""Result of :func:`assert_loss`.

    Attributes:
        constant: $c$ with loss_fn $\approx c\cdot$ exact (1 unless ``up_to_constant``).
        max_rel_error: $\max|\text{loss\_fn}/(c\cdot\text{exact})-1|$.
        lam_worst: λ of that maximum.
        num_points: points compared.
    """

    constant: float
    max_rel_error: float
    lam_worst: float
    num_points: int


def _factor_candidates(a: str, process: str, lam: np.ndarray, sd: float):
    """(name, values) of λ-dependent factors a loss is commonly off by."""
    out = []
    for b in _spec.PARAMETERIZATIONS:
        if b == "eps":
            continue
        k = _spec.kappa(b, lam, process, sd)
        out.append((f"kappa_{b}", k))
        out.append((f"1/kappa_{b}", 1.0 / k))
    c2 = _spec.c_out_squared(lam, sd)
    out += [("c_out^2", c2), ("1/c_out^2", 1.0 / c2)]
    return out


def _per_lam_spread(log_r: np.ndarray, groups: int) -> float:
    g = log_r.reshape(groups, -1)
    return float(np.max(g.max(axis=1) - g.min(axis=1)))


def _describe_factor(log_f: np.ndarray, cands, tol: float) -> str | None:
    for name, vals in cands:
        r = log_f - np.log(vals)
        if np.max(r) - np.min(r) <= 2.0 * tol:
            c = math.exp(0.5 * (r.max() + r.min()))
            const = "" if abs(math.log(c)) <= tol else f"{_spec.fmt_num(c)} * "
            return f"{const}{name}(lambda)"
    return None


def _identify_line(lam_u, mult, p, process, sd, what) -> str:
    pos = np.isfinite(mult) & (mult > 0)
    if pos.sum() < 2:
        return f"  {what} is not positive anywhere: nothing to identify."
    ms = identify_weighting(
        lam_u[pos], mult[pos], parameterization=p, process=process, input="lam", sigma_data=sd
    )
    fits = [m for m in ms if m.fits]
    if fits:
        return f"  {what} matches: {fits[0].describe()}"
    return (
        f"  {what} matches no registry weighting within max |log ratio| {FIT_TOL:g}; "
        f"nearest: {ms[0].describe()}"
    )


def assert_loss(
    loss_fn: Callable,
    gm,
    *,
    schedule,
    parameterization: str,
    weighting,
    up_to_constant: bool = False,
    sigma_data: float | None = None,
    num_lam: int = 64,
    repeats: int = 4,
    seed: int = 0,
    rtol: float = WEIGHT_RTOL,
    **params,
) -> LossCheck:
    r"""Assert that ``loss_fn`` is dsmtheory's weighted DSM loss for the same outputs.

    At ``num_lam`` λ drawn from ``schedule`` (each used ``repeats`` times), with $x_0\sim$
    ``gm``, $\varepsilon\sim N(0,I)$ and a model output $\hat a=a+\tfrac12 z$ ($z\sim N(0,I)$,
    $a$ the true target), compares ``loss_fn(model_output, x0, eps, lam)`` with
    :func:`dsmtheory.losses.dsm_loss` ($\omega_\varepsilon/\kappa_a\,\|a-\hat a\|^2$, the
    squared norm *summed* over the last axis):

    $$\max_i\big|\text{loss\_fn}_i/(c\,\ell_i)-1\big|\le\mathrm{rtol}.$$

    Args:
        loss_fn: ``(model_output (N, D), x0 (N, D), eps (N, D), lam (N,)) -> (N,)``
            per-example losses, NumPy float64 arrays in and out. $x_t=\alpha x_0+\sigma
            \varepsilon$ with $(\alpha,\sigma)$ of the schedule's process at ``lam``.
        gm: a :class:`~dsmtheory.GaussianMixture` to draw $x_0$ from.
        schedule: a schedule name or :class:`~dsmtheory.schedules.Schedule` (its density
            draws λ, its ``process`` is the forward process).
        parameterization: the network's output space (``"eps"``, ``"x0"``/``"sample"``,
            ``"v"``, ``"score"``, ``"F"``).
        weighting: a registry name (with ``**params``), a
            :class:`~dsmtheory.weightings.Weighting` or a callable $\lambda\mapsto
            \omega_\varepsilon$.
        up_to_constant: accept ``loss_fn`` $=c\,\ell$ (e.g. a mean over D instead of a sum).
        sigma_data: σ_d of ``parameterization="F"`` (default: the weighting's own).
        num_lam: distinct λ drawn.
        repeats: points per λ (>= 2 lets the diagnosis tell a λ-dependent factor from a
            wrong target).
        seed: PRNG seed.
        rtol: largest relative deviation.
        **params: parameters of a named ``weighting``.

    Returns:
        :class:`LossCheck`.

    Raises:
        AssertionError: the losses differ; the message says by which factor, what the
            user's multiplier matches, or which target it uses.
        ValueError, TypeError: bad arguments, or ``loss_fn`` output of the wrong shape.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    check_mixture(gm)
    p = _spec.parameterization_name(parameterization)
    sched = schedules.get(schedule) if isinstance(schedule, str) else schedule
    if not isinstance(sched, schedules.Schedule):
        raise TypeError(f"schedule must be a name or a Schedule, got {type(schedule).__name__}")
    process = sched.process
    num_lam = check_count(num_lam, "num_lam", minimum=2)
    repeats = check_count(repeats, "repeats")
    if not (isinstance(rtol, int | float) and rtol > 0):
        raise ValueError(f"rtol must be a number > 0, got {rtol!r}")
    spec = _spec.resolve_weighting(weighting, params, "weighting")
    sd = _spec.conversion_sigma_data(p, _spec.sigma_data_value(sigma_data), spec)
    sd_f = 0.5 if sd is None else sd  # dsm_loss's default; unused unless p == "F"

    key = jax.random.PRNGKey(seed)
    k_l, k_x, k_e, k_z = jax.random.split(key, 4)
    lam_u = np.sort(np.asarray(sched.sample(k_l, (num_lam,)), dtype=np.float64))
    lam = np.repeat(lam_u, repeats)
    n = lam.size
    x0 = np.asarray(gm.sample(k_x, n), dtype=np.float64)
    eps = np.asarray(jax.random.normal(k_e, x0.shape), dtype=np.float64)
    z = np.asarray(jax.random.normal(k_z, x0.shape), dtype=np.float64)
    target = np.asarray(
        dsm_target(x0, eps, lam, parameterization=p, process=process, sigma_data=sd_f)
    )
    pred = target + 0.5 * z
    omega = spec.fn(lam)
    exact = np.asarray(
        dsm_loss(
            pred,
            x0,
            eps,
            lam,
            parameterization=p,
            weighting=omega,
            process=process,
            sigma_data=sd_f,
        ),  # fmt: skip
        dtype=np.float64,
    )
    user = np.asarray(loss_fn(pred.copy(), x0.copy(), eps.copy(), lam.copy()))
    if user.shape != (n,):
        raise ValueError(
            f"loss_fn must return one loss per example, shape ({n},), got shape {user.shape}"
        )
    if user.dtype.kind not in "fiu":
        raise TypeError(f"loss_fn must return real numbers, got dtype {user.dtype}")
    user = user.astype(np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log(user) - np.log(exact)
    finite = np.isfinite(log_r)
    log_c = (
        0.5 * (log_r[finite].max() + log_r[finite].min())
        if up_to_constant and finite.any()
        else 0.0
    )
    with np.errstate(over="ignore", invalid="ignore"):
        rel = np.where(finite, np.abs(np.expm1(log_r - log_c)), np.inf)
    worst = int(np.argmax(rel))
    result = LossCheck(math.exp(log_c), float(rel[worst]), float(lam[worst]), n)
    if result.max_rel_error <= rtol:
        return result

    # ---- diagnosis
    sd_txt = f", sigma_data={_spec.fmt_num(sd)}" if p == "F" else ""
    lines = [
        f"loss_fn is not the weighted DSM loss of {spec.label} for {_spec.article(p)} model "
        f"({'up to a constant' if up_to_constant else 'exactly'}; process {process!r}{sd_txt}).",
        f"  At {n} points ({num_lam} lambda in [{_spec.fmt_num(lam_u.min())}, "
        f"{_spec.fmt_num(lam_u.max())}] from the {sched.name!r} schedule, {repeats} each): "
        f"largest deviation {result.max_rel_error:.3g} at lambda = "
        f"{_spec.fmt_num(result.lam_worst)} (loss_fn = {user[worst]:.6g}, exact "
        f"{exact[worst] * result.constant:.6g}).",
    ]
    if not finite.all():
        lines.append(f"  loss_fn is zero, negative or not finite at {int((~finite).sum())} points.")
        raise AssertionError("\n".join(lines))
    tol = max(rtol, 1e-12)
    if repeats < 2 or _per_lam_spread(log_r, num_lam) <= 2.0 * tol:
        # loss_fn = f(lambda) * exact: a multiplier problem
        log_f = log_r.reshape(num_lam, -1)[:, 0]
        spread = float(log_f.max() - log_f.min())
        if spread <= 2.0 * tol:
            c = math.exp(0.5 * (log_f.max() + log_f.min()))
            hint = ""
            if math.isclose(c * gm.dim, 1.0, rel_tol=1e-9):
                hint = f" = 1/D (D = {gm.dim}): a mean over the last axis instead of a sum"
            lines.append(
                f"  loss_fn = {_spec.fmt_num(c)} * exact at every point{hint} (pass "
                "up_to_constant=True if that is intended)."
            )
        else:
            cands = _factor_candidates(p, process, lam_u, sd_f)
            fac = _describe_factor(log_f, cands, tol)
            if fac is not None:
                lines.append(f"  loss_fn / exact = {fac}: a factor in the multiplier.")
            else:
                lines.append(
                    f"  loss_fn / exact depends on lambda alone, from {math.exp(log_f.min()):.6g}"
                    f" to {math.exp(log_f.max()):.6g}: the multiplier is wrong."
                )
            mult = np.exp(log_f) * omega[::repeats] / _spec.kappa(p, lam_u, process, sd_f)
            lines.append(
                _identify_line(
                    lam_u, mult, p, process, sd, f"loss_fn's multiplier on the {p!r} MSE"
                )
            )
        lines.append(
            f"  Expected multiplier on the {p!r} MSE: "
            + (
                _spec.multiplier_text(spec.name, spec.params, p, process, sd)
                or f"omega_eps / kappa_{p} with omega_eps of {spec.label}"
            )
        )
        raise AssertionError("\n".join(lines))
    # the ratio varies at fixed lambda: another target?
    found = False
    for b in _spec.PARAMETERIZATIONS:
        if b == p:
            continue
        tb = np.asarray(
            dsm_target(x0, eps, lam, parameterization=b, process=process, sigma_data=sd_f)
        )
        mse_b = np.sum((tb - pred) ** 2, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr_b = np.log(user) - np.log(mse_b)
        if np.all(np.isfinite(lr_b)) and _per_lam_spread(lr_b, num_lam) <= 2.0 * tol:
            found = True
            mult_b = np.exp(lr_b.reshape(num_lam, -1)[:, 0])
            lines.append(
                f"  loss_fn compares the model output with the {b!r} target, not the {p!r} "
                f"target: it treats the output as {_spec.article(b)} prediction."
            )
            lines.append(
                _identify_line(lam_u, mult_b, b, process, sd, f"Its multiplier on the {b!r} MSE")
            )
            break
    if not found:
        spread = _per_lam_spread(log_r, num_lam)
        lines.append(
            f"  loss_fn / exact varies by a factor up to {math.exp(spread):.3g} between points "
            "of the same lambda: it is not a multiple of the exact loss, nor of the MSE of "
            "any other parameterization's target (check the target and the noising)."
        )
    raise AssertionError("\n".join(lines))
