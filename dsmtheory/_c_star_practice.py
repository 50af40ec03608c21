r"""$c^*(t)$ in practice, for data without closed forms (issue 15 items 4, 5): the offline
estimate $\hat c^*=D\tilde\sigma^2/\widehat{\mathrm{mse}}$ from any denoiser, and the loader of
an exported weighting table. Re-exported by :mod:`dsmtheory.optimal`."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import as_float_array, check_choice, check_count, check_scalar
from .expectations import Estimate

EXPORT_SPACES = ("eps", "x0", "v", "score", "F")
EXPORT_PROCESSES = ("ve", "vp")


def _check_data(data) -> np.ndarray:
    x = as_float_array(data, "data")
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"data must be an array of shape (N, D) with N >= 2, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("data must be finite")
    return x


def estimate_c_star(
    predict_x0: Callable,
    data,
    alpha,
    sigma,
    *,
    key: jax.Array,
    num_samples: int | None = None,
) -> Estimate:
    r"""Offline estimate of $c^*(t)$ from any denoiser and clean data (issue 15 item 4;
    FORMULAS.md §6(c), §8; derivation ``edm2_learned_weighting``).

    With $x_t=\alpha x_0+\sigma\varepsilon$ for ``num_samples`` clean points drawn from
    ``data`` without replacement and fresh $\varepsilon\sim N(0,I)$,

    $$e_i=\|\hat x_0(x_{t,i})-x_{0,i}\|^2,\qquad \hat c^*=\frac{D\,\tilde\sigma^2}{\bar e},
    \qquad \tilde\sigma=\sigma/\alpha,$$

    the exact $c^*=D\tilde\sigma^2/\mathrm{mmse}$ with the model's mse in place of the mmse.
    Its standard error is the delta method's, $\mathrm{se}(\hat c^*)=\hat c^*\,
    \mathrm{se}(\bar e)/\bar e$ with $\mathrm{se}(\bar e)=s_e/\sqrt n$ (the Jensen bias of the
    ratio is $O(\mathrm{se}^2)$ relative, negligible beside it). For the Bayes denoiser
    $\mathbb E[x_0\mid x_t]$ it estimates $c^*$ without bias (up to that Jensen term); for any
    other model $\mathbb E\,e=\mathrm{mmse}+\mathbb E\|\hat x_0-\mathbb E[x_0\mid x_t]\|^2$,
    so $\hat c^*$ is biased low by the model's error (its Fisher divergence times
    $\tilde\sigma^4$ in $\tilde x$ coordinates).

    Args:
        predict_x0: ``predict_x0(x_t, alpha, sigma) -> x0_hat`` with ``x_t`` ``(n, D)`` and
            scalar ``alpha``, ``sigma``; returns ``(n, D)``: the user's denoiser.
        data: ``(N, D)`` clean samples (i.i.d. from the data distribution).
        alpha, sigma: the noise level, scalars > 0.
        key: JAX PRNG key for the subset and the noise.
        num_samples: how many points to use, ≤ N (default N).

    Returns:
        :class:`~dsmtheory.expectations.Estimate` (``method="monte_carlo"``).

    Raises:
        TypeError: ``predict_x0`` not callable, bad types.
        ValueError: bad shapes, ``num_samples`` > N, a prediction of the wrong shape or not
            finite, a zero mse.

    Example:
        >>> gm = dsm.bimodal_1d()
        >>> pm = lambda x, a, s: dsm.mixture.posterior_mean(gm, x, a, s)
        >>> est = estimate_c_star(pm, gm.sample(jax.random.PRNGKey(0), 4000), 1.0, 0.25,
        ...                       key=jax.random.PRNGKey(1))
        >>> abs(est.value - 2.0) < 5 * est.stderr  # c* = 2 here
        True
    """
    if not callable(predict_x0):
        raise TypeError(f"predict_x0 must be callable, got {type(predict_x0).__name__}")
    x = _check_data(data)
    a = check_scalar(alpha, "alpha", positive=True)
    s = check_scalar(sigma, "sigma", positive=True)
    n_all, dim = x.shape
    n = n_all if num_samples is None else check_count(num_samples, "num_samples", minimum=2)
    if n > n_all:
        raise ValueError(f"num_samples must be <= len(data) = {n_all}, got {n}")
    k_sub, k_eps = jax.random.split(key)
    idx = np.asarray(jax.random.permutation(k_sub, n_all))[:n]
    x0 = jnp.asarray(x[idx])
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    x_t = a * x0 + s * eps
    pred = jnp.asarray(predict_x0(x_t, a, s))
    if pred.shape != x0.shape:
        raise ValueError(f"predict_x0 must return shape {x0.shape}, got {pred.shape}")
    e = np.sum((np.asarray(pred, np.float64) - np.asarray(x0, np.float64)) ** 2, -1)
    if not np.all(np.isfinite(e)):
        raise ValueError("predict_x0 returned non-finite values")
    mse = float(np.mean(e))
    if mse <= 0.0:
        raise ValueError("the denoiser's mse is zero: c* = D σ̃²/mse is undefined")
    se_mse = float(np.std(e, ddof=1) / math.sqrt(n))
    c = dim * (s / a) ** 2 / mse
    rule = f"monte_carlo: {n} of {n_all} data points, one noise draw each; delta-method stderr"
    return Estimate(c, c * se_mse / mse, "monte_carlo", rule)


def estimate_c_star_curve(
    predict_x0: Callable,
    data,
    sigmas,
    process: str = "ve",
    *,
    key: jax.Array,
    num_samples: int | None = None,
) -> Estimate:
    r""":func:`estimate_c_star` on a grid of σ (``process`` gives α: VE α = 1, VP
    α = √(1 − σ²)); an independent key per level (``fold_in(key, i)``).

    Returns:
        :class:`~dsmtheory.expectations.Estimate` with ``(n,)`` value and stderr arrays.
    """
    check_choice("process", process, EXPORT_PROCESSES)
    sig = as_float_array(sigmas, "sigmas").reshape(-1)
    if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise ValueError("sigmas must be a non-empty array of finite values > 0")
    if process == "vp" and np.any(sig >= 1):
        raise ValueError("sigmas must be < 1 for the VP process")
    vals, ses, rule = [], [], ""
    for i, s in enumerate(sig):
        a = 1.0 if process == "ve" else math.sqrt(1.0 - float(s) ** 2)
        est = estimate_c_star(
            predict_x0, data, a, float(s), key=jax.random.fold_in(key, i), num_samples=num_samples
        )
        vals.append(est.value)
        ses.append(est.stderr)
        rule = est.rule
    return Estimate(np.asarray(vals), np.asarray(ses), "monte_carlo", rule)


# ---------------------------------------------------------------------------------------
# The exported table (``dsmtheory optimal-c --export``) and its loader
# ---------------------------------------------------------------------------------------
class ExportedWeighting(NamedTuple):
    r"""A loaded export: the λ grid, its columns, and the interpolating multiplier.

    Attributes:
        lam: ``(n,)`` increasing λ grid.
        columns: every numeric column by name (``c_star``, ``c_star_se``, ``d_eff``,
            ``sigma_tilde``, ``ve_eps`` ... ``vp_F``).
        meta: the JSON file's ``meta`` (mixture reference, versions); ``{}`` for CSV.
        multiplier: ``multiplier(lam, column="c_star")``: the column interpolated linearly
            in its logarithm over λ, clamped to the end values outside the grid.
    """

    lam: np.ndarray
    columns: dict
    meta: dict
    multiplier: Callable


def interpolate_log_linear(lam_grid, values, lam) -> np.ndarray:
    r"""$\exp$ of the linear interpolation of $\log v$ in λ, held constant beyond the grid
    ends (NumPy; the rule of the loader and of the docs' PyTorch snippet).

    Args:
        lam_grid: ``(n,)`` increasing. values: ``(n,)`` > 0. lam: any shape.
    """
    g = np.asarray(lam_grid, np.float64)
    v = np.asarray(values, np.float64)
    return np.exp(np.interp(np.asarray(lam, np.float64), g, np.log(v)))


def load_export(path) -> ExportedWeighting:
    r"""Load a table written by ``dsmtheory optimal-c --export FILE.json`` (or ``.csv``).

    The per-sample multiplier of a loss in space ``{process}_{space}`` (``ve_eps``,
    ``vp_x0``, ``ve_F``, ...) at log-SNR λ is ``exported.multiplier(lam, "ve_x0")``:
    $\log$ of the column interpolated linearly in λ, clamped at the grid ends (c* is smooth
    and positive, and its log is close to linear in λ at both ends).

    Args:
        path: a ``.json`` or ``.csv`` file.

    Returns:
        :class:`ExportedWeighting`.

    Raises:
        ValueError: another extension, a missing ``lam`` column, a grid that is not
            increasing, non-positive values.
    """
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext == ".json":
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
        meta = dict(doc.get("meta", {}))
        cols = {k: np.asarray(v, np.float64) for k, v in doc["columns"].items()}
    elif ext == ".csv":
        with open(p, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(row for row in f if not row.startswith("#")))
        meta = {}
        cols = {k: np.asarray([float(r[k]) for r in rows]) for k in (rows[0] if rows else {})}
    else:
        raise ValueError(f"path must end in .json or .csv, got {p!r}")
    if "lam" not in cols:
        raise ValueError(f"{p}: no 'lam' column")
    lam = cols["lam"]
    if lam.size < 2 or not np.all(np.diff(lam) > 0):
        raise ValueError(f"{p}: the lam column must be increasing with >= 2 points")

    def multiplier(x, column: str = "c_star") -> np.ndarray:
        if column not in cols:
            raise ValueError(f"unknown column {column!r}; known: {', '.join(sorted(cols))}")
        v = cols[column]
        if not np.all(v > 0):
            raise ValueError(f"column {column!r} has values <= 0: no log-linear interpolation")
        return interpolate_log_linear(lam, v, x)

    return ExportedWeighting(lam, cols, meta, multiplier)


def export_columns(lam, c_star, c_star_se, d_eff, sigma_data: float) -> dict:
    r"""The exported columns on a λ grid: ``sigma_tilde`` $=e^{-\lambda/2}$, ``c_star``,
    ``c_star_se``, ``d_eff`` and, for each process in (VE, VP) and each space in
    :data:`EXPORT_SPACES`, ``{process}_{space}``: the per-sample multiplier of the plain
    squared error in that space, $\omega_a=c^*/\kappa_a$ (FORMULAS.md §1), so that every one
    of them is the same weighting $\Lambda=c^*\sigma^2$."""
    from .parameterization import from_eps_multiplier

    lam = np.asarray(lam, np.float64)
    cols = {
        "lam": lam,
        "sigma_tilde": np.exp(-0.5 * lam),
        "c_star": np.asarray(c_star, np.float64),
        "c_star_se": np.asarray(c_star_se, np.float64),
        "d_eff": np.asarray(d_eff, np.float64),
    }
    for proc in EXPORT_PROCESSES:
        for space in EXPORT_SPACES:
            w = from_eps_multiplier(
                jnp.asarray(cols["c_star"]), space, jnp.asarray(lam), proc, sigma_data=sigma_data
            )
            cols[f"{proc}_{space}"] = np.asarray(w, np.float64)
    return cols
