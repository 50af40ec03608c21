"""Figures of :mod:`dsmtheory.targets`: arrays in, ``matplotlib.figure.Figure`` out.

No pyplot global state: figures are built on ``matplotlib.figure.Figure`` directly.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["heteroskedasticity_orders_figure", "tsm_mix_figure", "iwsm_figure"]


def _arr(x, name, n=None):
    a = np.asarray(x, dtype=float)
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 points, got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name} must have {n} points like the x grid, got {a.size}")
    return a


def heteroskedasticity_orders_figure(sigma, r1, r1_se, r2, r2_se, dim: int) -> Figure:
    r"""$R_1(\sigma)$ and $R_2(\sigma)$ on one log-log plot, with the small-σ laws
    $D/\sigma^2$ and $D(D+1)/\sigma^4$ dashed and ±2 stderr bands.

    Args:
        sigma: ``(N,)`` noise levels.
        r1, r1_se: ``(N,)`` $R_1$ and its standard error.
        r2, r2_se: ``(N,)`` $R_2$ and its standard error.
        dim: the data dimension D.
    """
    sigma = _arr(sigma, "sigma")
    n = sigma.size
    r1, r1_se, r2, r2_se = (
        _arr(v, k, n) for v, k in ((r1, "r1"), (r1_se, "r1_se"), (r2, "r2"), (r2_se, "r2_se"))
    )
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for r, se, lab, c in (
        (r1, r1_se, r"$R_1$ (order 1)", "C0"),
        (r2, r2_se, r"$R_2$ (order 2)", "C3"),
    ):
        ax.plot(sigma, r, "o-", color=c, ms=3, label=lab)
        ax.fill_between(sigma, np.maximum(r - 2 * se, r * 1e-3), r + 2 * se, color=c, alpha=0.25)
    ax.plot(sigma, dim / sigma**2, "--", color="C0", lw=1, label=r"$D/\sigma^2$")
    ax.plot(sigma, dim * (dim + 1) / sigma**4, "--", color="C3", lw=1, label=r"$D(D+1)/\sigma^4$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel(r"$R_k=\mathbb{E}\,\mathrm{tr}\,\mathrm{Var}(h_k\mid x_t)$")
    ax.set_title("irreducible target variance by order (±2 s.e.)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def tsm_mix_figure(
    lam, var_dsm, var_tsm, var_tsm_se, var_mix, var_mix_se, kappa, crossing
) -> Figure:
    r"""DSM vs TSM vs variance-optimal mix over λ (top, log y) and κ*(λ) (bottom), with the
    crossing $\lambda_\times=\log J_0$ marked.

    Args:
        lam: ``(N,)`` log-SNR grid.
        var_dsm: ``(N,)`` $R_1$ (DSM target variance).
        var_tsm, var_tsm_se: ``(N,)`` TSM target variance and stderr.
        var_mix, var_mix_se: ``(N,)`` optimal-mix variance and stderr.
        kappa: ``(N,)`` κ*(λ).
        crossing: λ of the DSM/TSM crossing.
    """
    lam = _arr(lam, "lam")
    n = lam.size
    var_dsm, var_tsm, var_tsm_se, var_mix, var_mix_se, kappa = (
        _arr(v, k, n)
        for v, k in (
            (var_dsm, "var_dsm"),
            (var_tsm, "var_tsm"),
            (var_tsm_se, "var_tsm_se"),
            (var_mix, "var_mix"),
            (var_mix_se, "var_mix_se"),
            (kappa, "kappa"),
        )
    )
    fig = Figure(figsize=(6.5, 6.0))
    ax, bx = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    ax.plot(lam, var_dsm, "-", color="C0", label="DSM  $h_1$")
    ax.errorbar(
        lam,
        var_tsm,
        yerr=2 * var_tsm_se,
        fmt="s-",
        ms=3,
        color="C1",
        label=r"TSM  $\alpha^{-1}\nabla\log p_0(x_0)$",
    )
    ax.errorbar(
        lam,
        var_mix,
        yerr=2 * var_mix_se,
        fmt="o-",
        ms=3,
        color="C2",
        label=r"optimal mix $\kappa^*$",
    )
    ax.axvline(crossing, color="k", ls=":", lw=1)
    ax.annotate(
        rf"$\lambda_\times=\log J_0={crossing:.2f}$",
        (crossing, 0.05),
        xycoords=("data", "axes fraction"),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_ylabel(r"$\mathbb{E}\,\mathrm{tr}\,\mathrm{Var}(\mathrm{target}\mid x_t)$")
    ax.set_title("DSM vs TSM vs variance-optimal mix (±2 s.e.)")
    ax.legend(fontsize=8)
    bx.plot(lam, kappa, "-", color="C2")
    bx.axvline(crossing, color="k", ls=":", lw=1)
    bx.axhline(0.5, color="gray", lw=0.5)
    bx.set_ylim(-0.02, 1.02)
    bx.set_ylabel(r"$\kappa^*$")
    bx.set_xlabel(r"log-SNR $\lambda$")
    fig.tight_layout()
    return fig


def iwsm_figure(
    lam,
    var_dsm,
    var_sm,
    var_iwsm,
    ess_fraction,
    *,
    stderrs: dict | None = None,
    ess_bound=None,
    title: str = "IWSM vs DSM, proposal missing half the modes",
) -> Figure:
    r"""IWSM against plain DSM over λ: per-sample variances (top, log y) and the ratio
    $\mathrm{Var}_{IWSM}/\mathrm{Var}_{DSM}$ with the ESS fraction (bottom, log y).

    NaN values (degenerate importance weights, see
    :func:`dsmtheory.targets.iwsm_variance_comparison`) are left out of the lines.

    Args:
        lam: ``(N,)`` log-SNR grid.
        var_dsm, var_sm, var_iwsm: ``(N,)`` per-sample variances.
        ess_fraction: ``(N,)`` $1/\mathbb E_B[w^2]$.
        stderrs: optional standard errors by name (``"var_dsm"``, ``"var_sm"``,
            ``"var_iwsm"``, ``"ess_fraction"``), each ``(N,)``: drawn as ±2 se bands.
        ess_bound: optional ``(N,)`` upper bound $e^{-\mathrm{KL}(p_t\|p_{B_t})}$ of the
            ESS fraction, drawn dotted.
        title: the top panel's title (name the proposal).

    Example:
        >>> import numpy as np
        >>> from dsmtheory.plots.targets import iwsm_figure
        >>> fig = iwsm_figure([0, 1], [1, 2], [0.5, 1], [0.6, np.nan], [0.9, np.nan])
        >>> len(fig.axes)
        2
    """
    lam = _arr(lam, "lam")
    n = lam.size
    var_dsm, var_sm, var_iwsm, ess = (
        _arr(v, k, n)
        for v, k in (
            (var_dsm, "var_dsm"),
            (var_sm, "var_sm"),
            (var_iwsm, "var_iwsm"),
            (ess_fraction, "ess_fraction"),
        )
    )
    se = {k: _arr(v, f"stderrs[{k!r}]", n) for k, v in (stderrs or {}).items()}
    fig = Figure(figsize=(6.5, 6.0))
    ax, bx = fig.subplots(2, 1, sharex=True)
    lines = {
        "var_dsm": ax.plot(lam, var_dsm, "o-", ms=3, label="plain DSM ($x_0\\sim p_0$)"),
        "var_iwsm": ax.plot(
            lam, var_iwsm, "s-", ms=3, label="IWSM (self-normalised, $x_t\\sim p_{B_t}$)"
        ),
        "var_sm": ax.plot(lam, var_sm, "--", label="oracle SM ($x_t\\sim p_t$)"),
    }
    vals = {"var_dsm": var_dsm, "var_iwsm": var_iwsm, "var_sm": var_sm, "ess_fraction": ess}
    for k, line in lines.items():
        if k in se:
            v = vals[k]
            ax.fill_between(lam, np.maximum(v - 2 * se[k], v * 1e-3), v + 2 * se[k],
                            color=line[0].get_color(), alpha=0.25)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("per-sample variance")
    ax.set_title(title)
    ax.legend(fontsize=8)
    bx.plot(lam, var_iwsm / var_dsm, "o-", ms=3, color="C3", label="Var IWSM / Var DSM")
    bx.plot(lam, ess, "--", color="C4", label="ESS fraction")
    if "ess_fraction" in se:
        bx.fill_between(lam, np.maximum(ess - 2 * se["ess_fraction"], ess * 1e-3),
                        ess + 2 * se["ess_fraction"], color="C4", alpha=0.25)  # fmt: skip
    if ess_bound is not None:
        bound = _arr(ess_bound, "ess_bound", n)
        bx.plot(lam, bound, ":", color="C5", label="ESS fraction bound $e^{-KL}$")
    bx.axhline(1.0, color="gray", lw=0.5)
    bx.set_yscale("log")
    bx.set_xlabel(r"log-SNR $\lambda$")
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig
