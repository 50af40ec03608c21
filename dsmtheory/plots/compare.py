"""Figures of the weighting comparison (``dsmtheory compare``): arrays in, Figure out.

Every function takes arrays indexed ``[weighting, capacity, seed, ...]`` and draws means
over seeds with a band or error bars of ± one standard deviation over seeds (the spread of
training outcomes), except the Fisher figure, whose error bars are the Monte Carlo standard
errors combined with the seed spread as noted in its docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "energy_distance_curves",
    "grad_std_per_sigma",
    "fisher_per_sigma",
    "capacity_ablation",
    "learned_vs_exact",
]


def _grid(n: int, width: float = 3.6, height: float = 3.0):
    fig = Figure(figsize=(width * n, height), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, axes


def _mean_sd(a: np.ndarray, axis: int):
    a = np.asarray(a, dtype=np.float64)
    sd = a.std(axis=axis, ddof=1) if a.shape[axis] > 1 else np.zeros_like(a.mean(axis=axis))
    return a.mean(axis=axis), sd


def energy_distance_curves(
    steps: np.ndarray,
    ed: np.ndarray,
    weightings: Sequence[str],
    capacities: Sequence[int],
    num_params: Sequence[int] | None = None,
) -> Figure:
    """Energy distance vs training steps, one panel per capacity, mean ± sd over seeds.

    Args:
        steps: ``(c,)`` checkpoint steps.
        ed: ``(W, C, S, c)`` energy distances.
        weightings, capacities: labels of the first two axes; ``num_params`` the actual
            parameter counts per capacity (shown in the titles).
    """
    ed = np.asarray(ed)
    fig, axes = _grid(len(capacities))
    for j, ax in enumerate(axes):
        for i, w in enumerate(weightings):
            m, sd = _mean_sd(ed[i, j], axis=0)
            (line,) = ax.plot(steps, m, marker="o", ms=3, label=w)
            ax.fill_between(steps, m - sd, m + sd, color=line.get_color(), alpha=0.2)
        p = f" ({num_params[j]} params)" if num_params is not None else ""
        ax.set_title(f"capacity {capacities[j]}{p}")
        ax.set_xlabel("step")
        ax.set_yscale("symlog", linthresh=1e-3)
    axes[0].set_ylabel("energy distance (PF-ODE vs true)")
    axes[-1].legend(fontsize=7)
    return fig


def grad_std_per_sigma(
    sigma: np.ndarray,
    grad_std: np.ndarray,
    weightings: Sequence[str],
    capacities: Sequence[int],
) -> Figure:
    r"""Per-example gradient spread $\sqrt{\mathrm{tr\,Cov}(\nabla_\theta\ell)}$ vs σ (at the
    last checkpoint), one panel per capacity, mean ± sd over seeds.

    Args:
        sigma: ``(b,)`` σ at the bin centres.
        grad_std: ``(W, C, S, b)``.
    """
    g = np.asarray(grad_std)
    fig, axes = _grid(len(capacities))
    for j, ax in enumerate(axes):
        for i, w in enumerate(weightings):
            m, sd = _mean_sd(g[i, j], axis=0)
            ax.errorbar(sigma, m, yerr=sd, marker="o", ms=3, capsize=2, label=w)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\sigma$")
        ax.set_title(f"capacity {capacities[j]}")
    axes[0].set_ylabel("per-example gradient std")
    axes[-1].legend(fontsize=7)
    return fig


def fisher_per_sigma(
    sigma: np.ndarray,
    fisher: np.ndarray,
    fisher_se: np.ndarray,
    weightings: Sequence[str],
    capacities: Sequence[int],
    *,
    relative: bool = False,
) -> Figure:
    r"""Exact Fisher divergence $\mathbb E\|s_\theta-s^*\|^2$ per σ bin (final models), one
    panel per capacity. Points are means over seeds; error bars are
    $\sqrt{\mathrm{sd}^2_{seeds}+\overline{\mathrm{se}^2}_{MC}}$ (seed spread plus the Monte
    Carlo standard error of one seed).

    With ``relative=True`` the values are the relative Fisher divergence
    $\mathbb E\|s_\theta-s^*\|^2/\mathrm{tr}\,I_t$ (1 is the error of $s_\theta=0$), which
    stays readable at D = 64 where the absolute divergence spans many decades over σ.

    Args:
        sigma: ``(b,)``; fisher, fisher_se: ``(W, C, S, b)``.
        relative: label the axis as the relative divergence (and mark 1).
    """
    f = np.asarray(fisher)
    se = np.asarray(fisher_se)
    fig, axes = _grid(len(capacities))
    for j, ax in enumerate(axes):
        for i, w in enumerate(weightings):
            m, sd = _mean_sd(f[i, j], axis=0)
            err = np.sqrt(sd**2 + np.mean(se[i, j] ** 2, axis=0))
            ax.errorbar(sigma, m, yerr=err, marker="o", ms=3, capsize=2, label=w)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\sigma$")
        ax.set_title(f"capacity {capacities[j]}")
        if relative:
            ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    if relative:
        axes[0].set_ylabel(r"$\mathbb{E}\|s_\theta-s^*\|^2\,/\,\mathrm{tr}\,I_t$")
    else:
        axes[0].set_ylabel(r"$\mathbb{E}\|s_\theta-s^*\|^2$")
    axes[-1].legend(fontsize=7)
    return fig


def capacity_ablation(
    num_params: Sequence[int],
    final_ed: np.ndarray,
    fisher_total: np.ndarray,
    weightings: Sequence[str],
    *,
    fisher_label: str = r"$\int p(\lambda)\,\sigma^2\,\mathbb{E}\|s_\theta-s^*\|^2d\lambda$",
) -> Figure:
    """Final energy distance and total exact Fisher divergence vs parameter count, one line
    per weighting, mean ± standard error over seeds (the spread of the mean, which is what
    the weightings are compared by; the per-seed spread is in the other figures).

    Args:
        num_params: ``(C,)`` parameter counts.
        final_ed, fisher_total: ``(W, C, S)``.
    """
    fig, (a1, a2) = _grid(2, width=4.2)
    ed_low = np.inf
    for i, w in enumerate(weightings):
        for ax, vals in ((a1, final_ed), (a2, fisher_total)):
            v = np.asarray(vals)[i]
            m, sd = _mean_sd(v, axis=1)
            se = sd / np.sqrt(max(v.shape[1], 1))
            ax.errorbar(num_params, m, yerr=se, marker="o", ms=3, capsize=2, label=w)
            if ax is a1:
                ed_low = min(ed_low, float(np.min(m - se)))
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
    a1.set_yscale("symlog", linthresh=1e-3)  # the U-statistic can be slightly negative
    if ed_low >= 0:
        a1.set_ylim(bottom=0)
    a2.set_yscale("log")
    a1.set_ylabel("final energy distance (mean ± se)")
    a2.set_ylabel(fisher_label)
    a2.legend(fontsize=7)
    return fig


def learned_vs_exact(
    sigma: np.ndarray,
    steps: np.ndarray,
    ratio: np.ndarray,
    ratio_se: np.ndarray,
    weightings: Sequence[str],
    capacities: Sequence[int],
    *,
    predicted: np.ndarray | None = None,
    max_curves: int = 4,
) -> Figure:
    r"""Learned multiplier over exact $c^*$ per σ bin, at a few checkpoints: one row per
    learned weighting, one column per capacity.

    Each curve is $r_b=\omega(\lambda_b)/c^*(\lambda_b)$ at the σ-bin centres, the
    ε-space multiplier the weighting applies at that checkpoint over the exact $c^*$, mean
    ± standard error over seeds (not normalised: both learned weightings estimate
    $c^*$ itself, so 1 is exact; the band marks ±10 %). Checkpoints after the
    initialization are thinned to ``max_curves`` (the last always shown, darkest). The
    dashed grey curve is ``predicted`` at the last checkpoint, the ratio the model's exact
    Fisher divergence predicts, $d_{\rm eff}/(d_{\rm eff}+\sigma^2\mathrm{FD}_b)$.

    Args:
        sigma: ``(b,)`` σ at the bin centres.
        steps: ``(c,)`` checkpoint steps.
        ratio, ratio_se: ``(L, C, c, b)`` mean and standard error over seeds.
        weightings: the ``L`` learned weighting names; capacities: the ``C`` labels.
        predicted: ``(L, C, b)`` the FD-predicted ratio at the last checkpoint, or None.
        max_curves: checkpoints drawn per panel.
    """
    import matplotlib as mpl

    r = np.asarray(ratio, dtype=np.float64)
    se = np.asarray(ratio_se, dtype=np.float64)
    steps = np.asarray(steps)
    n_ck = len(steps)
    later = list(range(1, n_ck)) or [0]
    pick = sorted(
        {later[int(round(i))] for i in np.linspace(0, len(later) - 1, min(max_curves, len(later)))}
    )
    cmap = mpl.colormaps["viridis"]
    n_rows, n_cols = len(weightings), len(capacities)
    fig = Figure(figsize=(3.6 * n_cols, 2.9 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, w in enumerate(weightings):
        for j, cap in enumerate(capacities):
            ax = axes[i, j]
            ax.axhspan(0.9, 1.1, color="0.92", lw=0)
            ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
            for n, k in enumerate(pick):
                col = cmap(0.85 * (n + 1) / len(pick))
                ax.errorbar(sigma, r[i, j, k], yerr=se[i, j, k], color=col, marker="o", ms=3,
                            capsize=2, label=f"step {int(steps[k])}")  # fmt: skip
            if predicted is not None:
                ax.plot(sigma, np.asarray(predicted)[i, j], color="0.5", ls="--", lw=1,
                        label="FD-predicted")  # fmt: skip
            ax.set_xscale("log")
            ax.set_title(f"{w}, capacity {cap}", fontsize=9)
            ax.set_xlabel(r"$\sigma$")
        axes[i, 0].set_ylabel(r"$\omega(\lambda)\,/\,c^*(\lambda)$")
    axes[0, -1].legend(fontsize=7)
    return fig
