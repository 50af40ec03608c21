"""Figures of the weighting catalog: arrays in, ``matplotlib.figure.Figure`` out.

No pyplot global state: figures are built on ``matplotlib.figure.Figure`` directly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

__all__ = ["total_weights_figure", "family_figure"]


def _check(lam, curves: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    lam = np.asarray(lam, dtype=float)
    if lam.ndim != 1 or lam.size < 2:
        raise ValueError(f"lam must be a 1-D array of at least 2 points, got shape {lam.shape}")
    for key, val in curves.items():
        if np.shape(val) != lam.shape:
            raise ValueError(
                f"{name}[{key!r}] must have the shape of lam {lam.shape}, got {np.shape(val)}"
            )
    return lam


def total_weights_figure(
    lam,
    densities: Mapping[str, np.ndarray],
    weights: Mapping[str, np.ndarray],
) -> Figure:
    r"""Kingma & Gao's Fig. 1: sampling densities $p(\lambda)$ and total weights $w(\lambda)$.

    Args:
        lam: ``(N,)`` log-SNR grid.
        densities: label -> ``(N,)`` density $p(\lambda)$ (left panel).
        weights: label -> ``(N,)`` total weight $w(\lambda)$, already scaled (right panel).

    Returns:
        A two-panel figure.
    """
    lam = _check(lam, densities, "densities")
    _check(lam, weights, "weights")
    fig = Figure(figsize=(14, 4.8))
    ax0, ax1 = fig.subplots(1, 2)
    for label, p in densities.items():
        ax0.plot(lam, p, label=label)
    ax0.set_xlabel(r"log-SNR $\lambda$")
    ax0.set_ylabel(r"$p(\lambda)$")
    ax0.set_title(r"sampling densities $p(\lambda)$ ($t\sim U(0,1)$)")
    ax0.legend(fontsize=8)
    styles = ["-", "--", ":", "-."]
    for i, (label, w) in enumerate(weights.items()):
        w = np.where(np.asarray(w) > 0, w, np.nan)  # zero outside a density's support
        ax1.plot(lam, w, styles[(i // 10) % len(styles)], label=label)
    ax1.set_yscale("log")
    ax1.set_ylim(1e-4, 2.0)
    ax1.set_xlabel(r"log-SNR $\lambda$")
    ax1.set_ylabel(r"$w(\lambda)=p(\lambda)\,\omega_\varepsilon(\lambda)$ / max")
    ax1.set_title("total weights (each scaled to max 1)")
    ax1.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def family_figure(lam, curves: Mapping[str, np.ndarray]) -> Figure:
    r"""The $1/(k+\mathrm{SNR})$ family: normalised multipliers $k/(k+e^\lambda)$.

    Args:
        lam: ``(N,)`` log-SNR grid.
        curves: label (with its $k$) -> ``(N,)`` normalised multiplier.

    Returns:
        A one-panel figure on a log y axis.
    """
    lam = _check(lam, curves, "curves")
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    for i, (label, c) in enumerate(curves.items()):
        ax.plot(lam, c, styles[i % len(styles)], label=label, lw=2)
    ax.set_yscale("log")
    ax.set_xlabel(r"log-SNR $\lambda$")
    ax.set_ylabel(r"$\omega_\varepsilon(\lambda)/\omega_\varepsilon(-\infty)$")
    ax.set_title(r"one family: $\omega_\varepsilon\propto 1/(k+\mathrm{SNR})$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
