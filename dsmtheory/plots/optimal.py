r"""Figures of the variance-optimal weighting analysis (:mod:`dsmtheory.optimal`): arrays in,
``matplotlib.figure.Figure`` out, no pyplot global state.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "c_star_figure",
    "heteroskedasticity_figure",
    "first_order_figure",
    "residual_variance_figure",
    "densities_figure",
]


def _grid(x, name):
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 points, got shape {x.shape}")
    return x


def _curves(x, curves: Mapping, name: str):
    if not curves:
        raise ValueError(f"{name} must contain at least one curve")
    for key, val in curves.items():
        if np.shape(val) != x.shape:
            raise ValueError(f"{name}[{key!r}] must have shape {x.shape}, got {np.shape(val)}")


def c_star_figure(sigmas, c_star: Mapping, overlays: Mapping, *, title: str = "") -> Figure:
    r"""$c^*(\sigma)$ of one or more mixtures with other weightings overlaid as their
    equivalent $c=\Lambda/\sigma^2$ (log-log).

    Args:
        sigmas: ``(n,)`` noise levels (VE-equivalent $\tilde\sigma$).
        c_star: label → ``(n,)`` $c^*$ curves (solid).
        overlays: label → ``(n,)`` equivalent c curves (dashed).
    """
    s = _grid(sigmas, "sigmas")
    _curves(s, c_star, "c_star")
    _curves(s, overlays, "overlays")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for lab, v in c_star.items():
        ax.loglog(s, v, lw=2.2, label=f"$c^*$ {lab}")
    for lab, v in overlays.items():
        ax.loglog(s, v, ls="--", lw=1.3, label=lab)
    ax.set_xlabel(r"$\tilde\sigma=\sigma/\alpha$")
    ax.set_ylabel(r"$c(\sigma)=\Lambda/\sigma^2=\omega_\varepsilon$")
    ax.set_title(title or r"homoskedastic multiplier $c^*$ vs common weightings")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def heteroskedasticity_figure(sigmas, residual: Mapping, dims: Mapping) -> Figure:
    r"""Irreducible DSM variance $R(\sigma)$ against σ (log-log), with the $D/\sigma^2$ line
    of each mixture: $R\sim D/\sigma^2$ at low noise (FORMULAS.md §4, Zhang et al.).

    Args:
        sigmas: ``(n,)``. residual: label → ``(n,)`` R. dims: label → D.
    """
    s = _grid(sigmas, "sigmas")
    _curves(s, residual, "residual")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for lab, v in residual.items():
        (ln,) = ax.loglog(s, v, lw=2, label=f"$R(\\sigma)$ {lab}")
        ax.loglog(s, dims[lab] / s**2, ls=":", color=ln.get_color(), label=f"$D/\\sigma^2$ {lab}")
    ax.set_xlabel(r"$\sigma$ (VE)")
    ax.set_ylabel(r"$R=\mathrm{tr}\,\mathbb{E}\,\mathrm{Cov}(s_c\mid x_t)$")
    ax.set_title(r"heteroskedasticity: $R=D/\sigma^2-\mathrm{tr}I_t\sim D/\sigma^2$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def first_order_figure(sigma2_j0: Mapping, c_minus_1: Mapping) -> Figure:
    r"""P9: $c^*-1$ against $\sigma^2J_0$ (log-log) with the 1:1 line — σ² is the first-order
    term of the optimal weight.

    Args:
        sigma2_j0: label → ``(n,)`` $\sigma^2J_0$. c_minus_1: label → ``(n,)`` $c^*-1$.
    """
    if set(sigma2_j0) != set(c_minus_1) or not sigma2_j0:
        raise ValueError("sigma2_j0 and c_minus_1 must have the same non-empty labels")
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.add_subplot()
    lo, hi = np.inf, 0.0
    for lab in sigma2_j0:
        x = np.asarray(sigma2_j0[lab], dtype=float)
        y = np.asarray(c_minus_1[lab], dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"sigma2_j0[{lab!r}] and c_minus_1[{lab!r}] differ in shape")
        ax.loglog(x, y, marker="o", ms=3, label=lab)
        lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
    ax.loglog([lo, hi], [lo, hi], "k--", lw=1, label="1:1")
    ax.set_xlabel(r"$\sigma^2J_0$,  $J_0=\mathrm{tr}I_0/D$")
    ax.set_ylabel(r"$c^*-1$")
    ax.set_title(r"$\Lambda^*=\sigma^2+\sigma^4J_0+O(\sigma^6)$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def residual_variance_figure(sigmas, raw: Mapping, scale_free: Mapping, *, title="") -> Figure:
    r"""Residual (label-noise) variance per noise level of several weightings: left the raw
    $\mathbb E\mathrm{tr}(WCW)/D$, right the scale-free ratio raw / (mean weight)².

    Args:
        sigmas: ``(n,)``. raw, scale_free: label → ``(n,)``.
    """
    s = _grid(sigmas, "sigmas")
    _curves(s, raw, "raw")
    _curves(s, scale_free, "scale_free")
    fig = Figure(figsize=(10.0, 4.0))
    a1, a2 = fig.subplots(1, 2)
    for lab, v in raw.items():
        a1.loglog(s, v, label=lab)
    for lab, v in scale_free.items():
        a2.loglog(s, v, label=lab)
    a1.set_ylabel(r"$\mathbb{E}\,\mathrm{tr}(WC_tW)/D$")
    a2.set_ylabel(r"raw $/\ \bar w^2$ (variance at matched mean weight)")
    for a in (a1, a2):
        a.set_xlabel(r"$\sigma$ (VE)")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle(title or "weighted residual variance per noise level")
    return fig


def densities_figure(lam, densities: Mapping, *, title: str = "") -> Figure:
    r"""Noise-level sampling densities p(λ) (P11: optimal, Kingma–Gao, Sun–Shi, baseline)."""
    x = _grid(lam, "lam")
    _curves(x, densities, "densities")
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for lab, v in densities.items():
        ax.plot(x, v, label=lab)
    ax.set_xlabel(r"$\lambda=\log\mathrm{SNR}$")
    ax.set_ylabel(r"$p(\lambda)$")
    ax.set_title(title or "importance-sampling densities of noise levels")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig
