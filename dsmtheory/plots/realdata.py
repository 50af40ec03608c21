r"""Figures of the realistic-data analysis (``dsmtheory realdata``): c*(σ) and the effective
dimension d_eff(σ) of a fitted 64-D mixture, with the weightings' c(σ) overlaid, and the
importance-sampling densities. Arrays in, ``matplotlib.figure.Figure`` out, no pyplot
global state.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

__all__ = ["c_star_deff_figure", "densities_over_sigma_figure"]


def c_star_deff_figure(
    sigma,
    variants: Mapping,
    overlays: Mapping,
    dim: int,
    title: str = "",
) -> Figure:
    r"""Two panels over σ (log-log): c*(σ) with the c(σ) of other weightings overlaid and
    the low-noise limits $D/\bar d$ dotted; d_eff(σ) = D/c* with $\bar d$ and D marked.

    Args:
        sigma: ``(n,)`` noise levels (VE).
        variants: label → dict with ``c_star``, ``c_star_se``, ``d_eff``, ``d_eff_se``
            ``(n,)`` and ``mean_rank`` (a float), e.g. with and without ``rank_tol``.
        overlays: label → ``(n,)`` c(σ) of a weighting (``σ²``: 1, EDM: 1 + σ²/σ_d²), drawn
            dashed in grey tones.
        dim: D.
        title: the figure's title.
    """
    s = np.asarray(sigma, dtype=float)
    fig = Figure(figsize=(10.0, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    greys = ("0.35", "0.6", "0.8")
    for i, (name, c) in enumerate(overlays.items()):
        ax1.plot(s, np.asarray(c, float), ls="--", color=greys[i % 3], lw=1.2, label=name)
    for name, v in variants.items():
        c, se = np.asarray(v["c_star"], float), np.asarray(v["c_star_se"], float)
        line = ax1.errorbar(s, c, yerr=2 * se, marker="o", ms=3, capsize=2, label=f"c* {name}")
        color = line[0].get_color()
        ax1.axhline(dim / v["mean_rank"], color=color, ls=":", lw=1)
        d, dse = np.asarray(v["d_eff"], float), np.asarray(v["d_eff_se"], float)
        ax2.errorbar(s, d, yerr=2 * dse, marker="o", ms=3, capsize=2, color=color, label=name)
        ax2.axhline(v["mean_rank"], color=color, ls=":", lw=1)
    ax2.axhline(dim, color="0.5", ls="--", lw=1, label=f"D = {dim}")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\sigma$ (VE)")
        ax.grid(True, which="major", alpha=0.3)
    ax1.set_ylabel(r"$c^*(\sigma)$ ($\pm 2$ se); dotted: $D/\bar d$")
    ax2.set_ylabel(r"$d_{\rm eff}(\sigma)=D/c^*$; dotted: $\bar d$")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def densities_over_sigma_figure(sigma, densities: Mapping, title: str = "") -> Figure:
    r"""Sampling densities p(λ) of the importance-sampling comparison, drawn over σ = e^{−λ/2}
    (log x-axis), one curve each."""
    s = np.asarray(sigma, dtype=float)
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    for name, p in densities.items():
        ax.plot(s, np.asarray(p, float), label=name)
    ax.set_xscale("log")
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel(r"density $p(\lambda)$")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
