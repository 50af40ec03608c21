r"""Figure of the irreducible DSM variance $R(\sigma)$ against the reference $D/\sigma^2$
(FORMULAS.md §4 "DSM = SM + irreducible variance")."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["heteroskedasticity_figure"]


def heteroskedasticity_figure(
    sigma,
    R,
    stderr,
    reference,
    *,
    slope: float | None = None,
    slope_range: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    r"""Log-log plot of $R(\sigma)$ with error bars, the reference $D/\sigma^2$ and the fitted
    low-σ slope.

    Args:
        sigma: ``(n,)`` noise levels.
        R: ``(n,)`` irreducible variance.
        stderr: ``(n,)`` standard errors (error bars are drawn when any is > 0).
        reference: ``(n,)`` the heteroskedastic reference $D/\sigma^2$.
        slope: fitted log-log slope to annotate (optional).
        slope_range: ``(σ_lo, σ_hi)`` over which the slope was fitted (shaded).
        title: figure title.

    Returns:
        A :class:`matplotlib.figure.Figure` (no pyplot state touched).
    """
    sigma = np.asarray(sigma, dtype=float)
    R = np.asarray(R, dtype=float)
    stderr = np.asarray(stderr, dtype=float)
    reference = np.asarray(reference, dtype=float)
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(sigma, reference, "--", color="0.5", label=r"$D/\sigma^2$")
    if np.any(stderr > 0):
        ax.errorbar(
            sigma, R, yerr=stderr, fmt="o-", ms=3, capsize=2, label=r"$R(\sigma)$ (± 1 s.e.)"
        )
    else:
        ax.plot(sigma, R, "o-", ms=3, label=r"$R(\sigma)$ (quadrature)")
    if slope_range is not None:
        ax.axvspan(*slope_range, color="C1", alpha=0.12, lw=0)
    if slope is not None:
        ax.text(
            0.97,
            0.95,
            f"low-σ slope {slope:.4f} (expected −2)",
            transform=ax.transAxes,
            ha="right",
            va="top",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"noise level $\sigma$")
    ax.set_ylabel(r"irreducible DSM variance $R$ (score space)")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower left")
    ax.grid(True, which="both", alpha=0.3)
    return fig
