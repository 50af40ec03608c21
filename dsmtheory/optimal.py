r"""The variance-optimal weighting of denoising score matching: $c^*(t)$ in
$\Lambda(t)=c(t)\,\sigma_t^2$, the matrix-optimal weight $W^*$, residual variances per noise
level, and the importance-sampling optimum over noise levels (FORMULAS.md §3.15, §5 P9,
P11, P14, P16, §6, §8).

Conventions: $x_t=\alpha x_0+\sigma\varepsilon$, conditional score
$s_c=-\varepsilon/\sigma$, true score $s^*=\nabla\log p_t$, and

$$C_t(x_t)=\mathrm{Cov}(s_c\mid x_t)=\frac{\alpha^2}{\sigma^4}\mathrm{Cov}(x_0\mid x_t),\qquad
R(t)=\mathrm{tr}\,\mathbb E\,C_t=\frac{D}{\sigma^2}-\mathrm{tr}\,I_t
=\frac{\alpha^2}{\sigma^4}\,\mathrm{mmse}(t)=\frac{d_{\rm eff}(t)}{\sigma^2}.$$

The homoskedastic optimum is $c^*(t)=D/d_{\rm eff}(t)$. Its expectations come from
:mod:`dsmtheory.variance`, which computes them with the engine
:mod:`dsmtheory.expectations` (rules ``"auto"``, ``"adaptive"``, ``"gauss_hermite"``,
``"monte_carlo"``): $c^*$ to 1e-10 relative by default in D ≤ 2 (``"auto"``), with standard
errors by Monte Carlo in any D.

Because $\mathrm{Cov}(x_0\mid x_t)$ depends on $(\alpha,\sigma)$ only through
$\tilde\sigma=\sigma/\alpha=e^{-\lambda/2}$, $c^*$ is a function of $\lambda$ alone: it is
the same for VE and VP processes.
"""

from __future__ import annotations

import warnings
from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import expectations, variance, weightings
from ._validation import (
    as_float_array,
    check_choice,
    check_count,
    check_finite,
    check_positive,
    check_scalar,
    is_concrete,
)
from .expectations import Estimate
from .mixture import GaussianMixture, bimodal_1d, check_mixture, posterior_cov
from .schedules import alpha_sigma

__all__ = [
    "Estimate",
    "ResidualVariance",
    "DensityComparison",
    "expected_posterior_trace",
    "fisher_trace",
    "homoskedastic_multiplier",
    "score_weight",
    "c_star_curve",
    "c_star_of_lambda",
    "small_noise_fisher",
    "mean_rank",
    "c_within",
    "OptimalWeighting",
    "optimal_weighting",
    "matrix_weight",
    "matrix_weight_trace",
    "per_direction_residual",
    "residual_variance",
    "equivalent_c",
    "is_second_moment",
    "is_variance",
    "optimal_density",
    "loss_proportional_density",
    "std_proportional_density",
    "compare_densities",
    "label_noise_second_moment",
]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def _options(method, key, num_samples, num_nodes, rtol):
    """Engine options; an explicit ``num_nodes`` with ``method="auto"`` means Gauss–Hermite."""
    if num_nodes is not None and method == "auto":
        method = "gauss_hermite"
    return {
        "method": method,
        "key": key,
        "num_samples": num_samples,
        "num_nodes": num_nodes,
        "rtol": rtol,
    }


def expected_posterior_trace(gm: GaussianMixture, alpha, sigma, **options) -> Estimate:
    """Deprecated alias of :func:`dsmtheory.variance.mmse` (one release)."""
    _deprecated("optimal.expected_posterior_trace", "variance.mmse")
    return variance.mmse(gm, alpha, sigma, **options)


def fisher_trace(gm: GaussianMixture, **options) -> Estimate:
    """Deprecated alias of :func:`dsmtheory.variance.fisher_trace` (one release)."""
    _deprecated("optimal.fisher_trace", "variance.fisher_trace")
    return variance.fisher_trace(gm, **options)


def small_noise_fisher(gm: GaussianMixture, **options) -> float:
    r"""$J_0=\mathrm{tr}\,I_0/D$, the coefficient of P9: $c^*-1\sim\sigma^2J_0$ as σ → 0
    (for full-rank data, below $\tilde\sigma\approx\sqrt{e_{\min}}$; FORMULAS.md §8).
    ``inf`` for a rank-deficient ``gm`` (see :func:`dsmtheory.variance.fisher_trace`);
    there $c^*\to D/\bar d>1$ instead (:func:`mean_rank`).

    By the engine's ``"auto"`` rule on $p_0$ itself (1e-10 relative in D ≤ 2). Options as in
    :func:`dsmtheory.variance.fisher_trace`.
    """
    return float(variance.fisher_trace(gm, **options).value) / gm.dim


# ---------------------------------------------------------------------------------------
# c*(t): homoskedastic irreducible noise (criterion (c))
# ---------------------------------------------------------------------------------------
def _c_from_d_eff(gm: GaussianMixture, est: Estimate) -> Estimate:
    d_eff = np.asarray(est.value)
    c = gm.dim / d_eff
    se = c * np.asarray(est.stderr) / d_eff
    if np.ndim(c) == 0:
        c, se = float(c), float(se)
    return est._replace(value=c, stderr=se)


def homoskedastic_multiplier(
    gm: GaussianMixture,
    alpha,
    sigma,
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
    rtol: float | None = None,
) -> Estimate:
    r"""$c^*(t)$ making the weighted irreducible noise $\Lambda R$ constant over t.

    $$c^*=\frac{1}{1-\sigma^2\,\mathrm{tr}I_t/D}=\frac{D}{\sigma^2R(t)}
    =\frac{D\,\sigma^2}{\alpha^2\,\mathrm{mmse}(t)}=\frac{D}{d_{\rm eff}(t)},$$

    computed from the last form (no cancellation at small σ). Properties: $c^*\ge1$;
    $c^*\to D/\bar d$ as σ → 0 with $\bar d=\sum_k\pi_k\,\mathrm{rank}\,\Sigma_k$ (1 for
    full-rank data, where $c^*-1\sim\sigma^2J_0$ (P9) once $\tilde\sigma\ll\sqrt{e_{\min}}$);
    $c^*=1+\sigma^2/s^2$ for VE Gaussian data of std s (EDM with $\sigma_d=s$, P14). Zhang et
    al. 2025 (scalar optimum, rebuilt); FORMULAS.md §3.15, §6(c), §8.

    Args:
        gm: the clean mixture. alpha, sigma: scalars > 0.
        method, key, num_samples, rtol: as in :func:`dsmtheory.variance.mmse`.
        num_nodes: Gauss–Hermite nodes per axis (implies ``method="gauss_hermite"``).

    Returns:
        :class:`~dsmtheory.expectations.Estimate`; for Monte Carlo the stderr is propagated
        by the delta method, $\mathrm{se}(c^*)=c^*\,\mathrm{se}(d_{\rm eff})/d_{\rm eff}$.

    Example:
        >>> round(homoskedastic_multiplier(dsm.bimodal_1d(), 1.0, 0.25).value, 3)
        2.0
    """
    est = variance.effective_dimension(
        gm, alpha, sigma, **_options(method, key, num_samples, num_nodes, rtol)
    )
    return _c_from_d_eff(gm, est)


def score_weight(gm: GaussianMixture, alpha, sigma, **options) -> Estimate:
    r"""$\Lambda^*(t)=\sigma^2c^*(t)=D/\mathrm{tr}\,\mathbb E\,C_t$, the scalar
    inverse-variance score-loss weight (FORMULAS.md §3.15)."""
    c = homoskedastic_multiplier(gm, alpha, sigma, **options)
    s2 = check_scalar(sigma, "sigma", positive=True) ** 2
    return c._replace(value=s2 * c.value, stderr=s2 * c.stderr)


def c_star_curve(
    gm: GaussianMixture,
    sigmas,
    process: str = "ve",
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
    rtol: float | None = None,
    full_output: bool = False,
    progress: bool = False,
    target_rse: float | None = None,
    max_samples: int | None = None,
):
    r"""$c^*(\sigma)=D/d_{\rm eff}(\sigma)$ on a grid of σ, in one call of the engine.

    Args:
        gm: the clean mixture (any D; Monte Carlo with standard errors for D > 3).
        sigmas: ``(n,)`` noise levels > 0 (< 1 for VP).
        process: ``"ve"`` (α = 1) or ``"vp"`` (α = √(1 − σ²)).
        method, key, num_samples, num_nodes, rtol: as in :func:`homoskedastic_multiplier`.
        full_output: return the :class:`~dsmtheory.expectations.Estimate` (values, standard
            errors, rule) instead of the values alone.
        progress: a progress bar on stderr (shown only when stderr is a terminal).
        target_rse, max_samples: Monte Carlo only: sample further at the noise levels
            whose relative standard error is above ``target_rse`` (see
            :func:`dsmtheory.variance.mmse_curve`; the relative standard error of $c^*$ is
            that of $d_{\rm eff}$).

    Monte Carlo (``"monte_carlo"``, and ``"auto"`` in D > 3) is the fast rule of
    :func:`dsmtheory.variance.mmse_curve`: the within-component part of $d_{\rm eff}$ exact
    (:func:`c_within` is $D$ over it), the between-component spread sampled by antithetic
    stratified pairs shared by every σ.

    Returns:
        ``(n,)`` values of $c^*$ (a NumPy array), or the Estimate.

    Example:
        >>> est = c_star_curve(dsm.bimodal_1d(), [0.1, 1.0], full_output=True)
        >>> est.method
        'adaptive'
    """
    check_mixture(gm)
    est = variance.effective_dimension_curve(
        gm,
        sigmas,
        process,
        progress=progress,
        target_rse=target_rse,
        max_samples=max_samples,
        **_options(method, key, num_samples, num_nodes, rtol),
    )
    out = _c_from_d_eff(gm, est)
    return out if full_output else np.asarray(out.value)


def c_star_of_lambda(
    gm: GaussianMixture,
    lam,
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
    rtol: float | None = None,
    full_output: bool = False,
    progress: bool = False,
    target_rse: float | None = None,
    max_samples: int | None = None,
):
    r"""$c^*(\lambda)$, the same for every process (it depends on $\tilde\sigma=e^{-\lambda/2}$
    only), ``(n,)`` → ``(n,)``; options as in :func:`c_star_curve`."""
    check_mixture(gm)
    lam = as_float_array(lam, "lam").reshape(-1)
    check_finite(lam, "lam")
    return c_star_curve(
        gm,
        np.exp(-0.5 * lam),
        "ve",
        method=method,
        key=key,
        num_samples=num_samples,
        num_nodes=num_nodes,
        rtol=rtol,
        full_output=full_output,
        progress=progress,
        target_rse=target_rse,
        max_samples=max_samples,
    )


def c_within(gm: GaussianMixture, alpha, sigma) -> Estimate:
    r"""The closed-form within-component **upper bound** of $c^*$ (FORMULAS.md §8; derivation
    ``within_component_bound``), in any D and vectorised over σ:

    $$c^*(\sigma)\le c_{\rm within}(\sigma)=\frac{D}{\sum_k\pi_k\sum_i
    e_{ki}/(e_{ki}+\tilde\sigma^2)},\qquad\tilde\sigma=\sigma/\alpha,$$

    with $e_{ki}$ the eigenvalues of $\Sigma_k$. Since $\mathrm{mmse}=\sum_k\pi_k\,
    \mathrm{tr}V_k+\mathbb E\sum_kr_k\|m_k-\bar m\|^2\ge\sum_k\pi_k\,\mathrm{tr}V_k$
    (the posterior variance within each component), $d_{\rm eff}\ge\sum_k\pi_k\sum_i
    e_{ki}/(e_{ki}+\tilde\sigma^2)$; equality holds when the components do not overlap
    (the between-component spread vanishes), so the bound is tight at low noise for
    separated components and $c_{\rm within}\to D/\bar d$ as σ → 0. It is not an
    estimate of $c^*$ where the components overlap (at high noise $c^*$ grows like
    $\sigma^2$ times $D/\mathrm{tr}\,\mathrm{Cov}(x_0)$, $c_{\rm within}$ like $\sigma^2$
    times $D/\sum_k\pi_k\mathrm{tr}\Sigma_k$).

    Args:
        gm: the clean mixture (any D, either kind).
        alpha: signal scale(s) > 0, broadcast against ``sigma``.
        sigma: noise level(s) > 0, a scalar or an array.

    Returns:
        :class:`~dsmtheory.expectations.Estimate` with ``method="closed_form_bound"``, stderr
        zero, and ``value`` a float (scalar σ) or an array of σ's shape.

    Example:
        >>> gm = dsm.single_gaussian([0.0], 1.0)  # one component: the bound is c* itself
        >>> round(c_within(gm, 1.0, 1.0).value, 12)
        2.0
    """
    check_mixture(gm)
    scalar = np.ndim(sigma) == 0 and np.ndim(alpha) == 0
    s = as_float_array(sigma, "sigma")
    a = as_float_array(alpha, "alpha")
    check_positive(s, "sigma")
    check_positive(a, "alpha")
    s, a = np.broadcast_arrays(s, a)
    d_w = variance.within_component_deff(gm, a.reshape(-1), s.reshape(-1))
    with np.errstate(divide="ignore"):
        c = (gm.dim / d_w).reshape(s.shape)
    rule = (
        "closed form: an UPPER BOUND of c* (D over the within-component part of d_eff, "
        "sum_k pi_k sum_i e_ki / (e_ki + sigma~^2)); exact when the components do not overlap"
    )
    if scalar:
        return Estimate(float(c), 0.0, "closed_form_bound", rule)
    return Estimate(c, np.zeros_like(c), "closed_form_bound", rule)


def mean_rank(gm: GaussianMixture) -> float:
    r"""$\bar d=\sum_k\pi_k\,\mathrm{rank}\,\Sigma_k$, the dimension of the data's support
    weighted by the components: $c^*\to D/\bar d$ and $d_{\rm eff}\to\bar d$ as σ → 0
    (FORMULAS.md §8). A zero eigenvalue is one stored as exactly 0 (the constructors set
    eigenvalues within ``mixture.RANK_RTOL`` of zero to 0); ``gm.ranks`` counts the others
    (for the low-rank kind without forming D x D matrices)."""
    check_mixture(gm)
    ranks = np.asarray(gm.ranks)
    return float(np.asarray(gm.weights) @ ranks)


# ---------------------------------------------------------------------------------------
# The `optimal` registry weighting
# ---------------------------------------------------------------------------------------
class OptimalWeighting:
    r"""The ε-space weighting $\omega_\varepsilon(\lambda)=c^*(\lambda)$ (score-space
    $\Lambda=\sigma^2c^*$) for one mixture, tabulated on a λ grid by the engine and
    interpolated by a cubic spline in $\log c^*$ (jittable).

    Outside the grid it follows the exact asymptotes: $c^*\to c^*(\lambda_{\max})$ (the
    low-noise limit $D/\bar d$, reached once $\tilde\sigma^2\ll e_{\min}$) with the correction
    $c^*-c_\infty\propto e^{-\lambda}$ for λ → +∞ (P9), and $c^*\propto e^{-\lambda}$ for
    λ → −∞ (mmse → tr Cov(x₀)).

    Accuracy: at the table's nodes, that of the engine's rule (``table_rule``; 1e-10 relative
    in D ≤ 2 by default); between nodes the spline adds an interpolation error, the largest
    relative error at the midpoints of the table, which
    :meth:`measure_interpolation_error` measures against the engine (at construction with
    ``measure_interpolation=True``; measured values for the built-in mixtures are in
    docs/choosing-c.md).

    Call it on λ: ``w(lam) -> omega_eps``; ``w.total(lam, density)`` is KG's
    $w=p\,\omega_\varepsilon$. ``progress=True`` shows a bar on stderr while the table is
    built (only when stderr is a terminal); ``target_rse`` (Monte Carlo only, i.e. D > 3)
    draws at each node until c* has that relative standard error
    (:func:`c_star_curve`).
    """

    name = "optimal"

    def __init__(
        self,
        gm,
        process="ve",
        lam_min=-16.0,
        lam_max=16.0,
        num_grid=129,
        num_nodes=None,
        *,
        method="auto",
        key=None,
        num_samples=None,
        measure_interpolation=False,
        progress=False,
        target_rse=None,
    ):
        check_mixture(gm)
        check_choice("process", process, ("ve", "vp"))
        num_grid = check_count(num_grid, "num_grid", 4)
        lam_min = check_scalar(lam_min, "lam_min")
        lam_max = check_scalar(lam_max, "lam_max")
        if not lam_min < lam_max:
            raise ValueError(f"lam_min must be < lam_max, got {lam_min} and {lam_max}")
        self.gm = gm
        self.process = process
        grid = np.linspace(lam_min, lam_max, num_grid)
        opts = _options(method, key, num_samples, num_nodes, None)
        est = c_star_of_lambda(
            gm, grid, full_output=True, progress=progress, target_rse=target_rse, **opts
        )
        self.table_rule = est.rule
        self.table_method = est.method
        self.grid = jnp.asarray(grid)
        self.log_c = jnp.asarray(np.log(est.value))
        from scipy.interpolate import CubicSpline  # not at import: it costs 0.6 s

        spline = CubicSpline(grid, np.log(est.value), bc_type="natural")
        # piecewise cubic coefficients, highest power first: (4, n-1)
        self._coef = jnp.asarray(spline.c)
        self._options = opts
        #: the exact limit of c* as λ → ∞: D / Σ_k π_k rank Σ_k (FORMULAS.md §8)
        self.c_low_noise = float(gm.dim / mean_rank(gm))
        self.interpolation_error = None
        if measure_interpolation:
            self.measure_interpolation_error()
        self.params = {"gm": gm, "process": process}

    def measure_interpolation_error(self) -> float:
        """The largest relative error of the spline at the midpoints of the table, against
        the engine's c* there (as many expectations again as the table has nodes); stored in
        ``interpolation_error`` and returned."""
        grid = np.asarray(self.grid)
        mids = 0.5 * (grid[1:] + grid[:-1])
        exact = np.asarray(c_star_of_lambda(self.gm, mids, **self._options))
        approx = np.asarray(self(jnp.asarray(mids)))
        self.interpolation_error = float(np.max(np.abs(approx / exact - 1.0)))
        return self.interpolation_error

    def _log_c_inside(self, lam):
        grid = self.grid
        idx = jnp.clip(jnp.searchsorted(grid, lam, side="right") - 1, 0, grid.shape[0] - 2)
        dx = lam - grid[idx]
        c = self._coef[:, idx]
        return ((c[0] * dx + c[1]) * dx + c[2]) * dx + c[3]

    def __call__(self, lam) -> jax.Array:
        lam = jnp.asarray(lam, dtype=self.grid.dtype)
        if is_concrete(lam):
            check_finite(lam, "lam")
        lo, hi = self.grid[0], self.grid[-1]
        inside = self._log_c_inside(jnp.clip(lam, lo, hi))
        # above the grid: c* → c_inf = D / d̄ (the exact low-noise limit, d̄ the mean rank of
        # the components) with c* - c_inf ∝ e^{-λ}, matched to the last node
        c_hi = jnp.exp(self.log_c[-1])
        amp = c_hi - self.c_low_noise
        above = jnp.log(self.c_low_noise + amp * jnp.exp(-(jnp.maximum(lam, hi) - hi)))
        below = self.log_c[0] + (lo - jnp.minimum(lam, lo))
        out = jnp.where(lam > hi, above, jnp.where(lam < lo, below, inside))
        return jnp.exp(out)

    def total(self, lam, density) -> jax.Array:
        """KG total weight $w(\\lambda)=p(\\lambda)\\,\\omega_\\varepsilon(\\lambda)$;
        ``density`` is a callable p(λ) (e.g. ``schedule.density``) or an array."""
        p = density(lam) if callable(density) else jnp.asarray(density)
        return p * self(lam)

    def __repr__(self):
        return f"OptimalWeighting({self.gm!r}, process={self.process!r})"


def optimal_weighting(gm: GaussianMixture | None = None, process: str = "ve", **kw):
    r"""Factory of the ``optimal`` registry weighting: $\omega_\varepsilon=c^*(\lambda)$,
    the homoskedastic multiplier of ``gm`` (score-space $\Lambda=\sigma^2c^*$).

    Args:
        gm: the clean mixture; ``None`` means :func:`dsmtheory.bimodal_1d` (the FORMULAS.md
            §4 table mixture), so that the entry has defaults like every registry entry.
        process: ``"ve"`` or ``"vp"`` (c* is process-independent; kept for the record).
        **kw: ``lam_min``, ``lam_max``, ``num_grid`` of the interpolation table and
            ``num_nodes``, ``method``, ``key``, ``num_samples`` of its expectations.

    Returns:
        A :class:`dsmtheory.weightings.Weighting`.
    """
    if gm is None:
        gm = bimodal_1d()
    table = OptimalWeighting(gm, process, **kw)
    return weightings.Weighting(
        name="optimal",
        params=MappingProxyType({"gm": gm, "process": process, **kw}),
        formula=r"\omega_\varepsilon(\lambda)=c^*(\lambda)=\frac{D\tilde\sigma^2}"
        r"{\mathrm{mmse}(\tilde\sigma)},\ \tilde\sigma=e^{-\lambda/2}",
        paper="Zhang et al. 2025 (2508.01597), scalar inverse-variance optimum (rebuilt)",
        formulas_item="FORMULAS.md §3.15, §6(c)",
        monotonic=None,
        fn=table,
    )


weightings.register("optimal", optimal_weighting, overwrite=True)


def equivalent_c(name: str, lam, **params) -> jax.Array:
    r"""The multiplier $c(\lambda)=\Lambda/\sigma^2=\omega_\varepsilon(\lambda)$ of a
    registry weighting, so that it can be overlaid on $c^*$ (FORMULAS.md §1: a score-loss
    weight $\Lambda=\sigma^2$ is $\omega_\varepsilon=1$, and $\|s-\hat s\|^2=
    \|\varepsilon-\hat\varepsilon\|^2/\sigma^2$ for every process). E.g. EDM:
    $1+e^{-\lambda}/\sigma_d^2$; Min-SNR: $\min(1,\gamma e^{-\lambda})$.

    Args:
        name: a :mod:`dsmtheory.weightings` registry name. lam: log-SNR values.
        **params: the weighting's parameters.
    """
    return weightings.get(name, **params)(lam)


# ---------------------------------------------------------------------------------------
# Matrix-optimal weighting W* and residual variances (P16)
# ---------------------------------------------------------------------------------------
def _inv_psd(cov):
    """Inverse of a PSD matrix by eigh, eigenvalues floored at 1e-300 relative."""
    e, u = jnp.linalg.eigh(cov)
    e = jnp.maximum(e, jnp.finfo(cov.dtype).tiny * 1e10 + 0.0 * e)
    return jnp.einsum("...ij,...j,...kj->...ik", u, 1.0 / e, u), e


def matrix_weight(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""The pointwise matrix-optimal (GLS) score-loss weight

    $$W^*(x_t)=\mathrm{Cov}(s_c\mid x_t)^{-1}=\frac{\sigma^4}{\alpha^2}
    \mathrm{Cov}(x_0\mid x_t)^{-1}=\sigma^2(I+\sigma^2H_t)^{-1},$$

    since $s_c=-(x_t-\alpha x_0)/\sigma^2$ gives
    $\mathrm{Cov}(s_c\mid x_t)=\frac{\alpha^2}{\sigma^4}\mathrm{Cov}(x_0\mid x_t)$.
    Computed from the closed-form (PSD) posterior covariance by an eigendecomposition.
    Taylor: $W^*=\sigma^2I-\sigma^4H_0+O(\sigma^6)$ (VE). Zhang et al. 2025;
    FORMULAS.md §3.15.

    Args:
        gm: the clean mixture. x_t: ``(..., D)``. alpha, sigma: scalars > 0.

    Returns:
        ``(..., D, D)``.
    """
    check_mixture(gm)
    check_scalar(alpha, "alpha", positive=True)
    check_scalar(sigma, "sigma", positive=True)
    inv, _ = _inv_psd(posterior_cov(gm, x_t, alpha, sigma))
    return (sigma**4 / alpha**2) * inv


def matrix_weight_trace(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""$\mathrm{tr}\,W^*(x_t)=\frac{\sigma^4}{\alpha^2}\sum_i 1/e_i$ over the eigenvalues
    $e_i$ of $\mathrm{Cov}(x_0\mid x_t)$. ``(..., D)`` → ``(...)``."""
    check_mixture(gm)
    check_scalar(alpha, "alpha", positive=True)
    check_scalar(sigma, "sigma", positive=True)
    _, e = _inv_psd(posterior_cov(gm, x_t, alpha, sigma))
    return (sigma**4 / alpha**2) * jnp.sum(1.0 / e, axis=-1)


def per_direction_residual(h, sigma) -> tuple[jax.Array, jax.Array]:
    r"""P16 per direction: with $a=\sigma^{-2}+h$ the conditional variance of $s_c$ along
    an eigenvector of $H$ with eigenvalue h, the heuristic weight σ² leaves residual
    variance $\sigma^4a$ and the optimal weight $1/a$ leaves $1/a$.

    Returns:
        ``(heuristic, optimal)``; the heuristic is smaller iff h < 0.
    """
    check_positive(sigma, "sigma")
    a = 1.0 / jnp.asarray(sigma) ** 2 + jnp.asarray(h)
    if is_concrete(a) and np.any(np.asarray(a) <= 0):
        raise ValueError("h must satisfy sigma^-2 + h > 0 (a covariance eigenvalue)")
    return sigma**4 * a, 1.0 / a


class ResidualVariance(NamedTuple):
    r"""Weighted label-noise variance at one noise level, per dimension.

    Attributes:
        raw: $\mathbb E_{x_t}\mathrm{tr}(W C_t W)/D$, the variance of the weighted target
            $W(s_c-s^*)$.
        mean_weight: $\bar w=\mathbb E_{x_t}\mathrm{tr}\,W/D$.
        scale_free: $\mathrm{raw}/\bar w^2$: the variance at matched mean weight. It is
            invariant to $W\to cW$, and minimised over all matrix weights by $W\propto
            C_t^{-1}$ (Lagrangian of $\mathbb E\mathrm{tr}WCW$ at fixed
            $\mathbb E\mathrm{tr}W$). For a scalar weight it equals $R/D$.
    """

    raw: float
    mean_weight: float
    scale_free: float


def _matrix_weight_trace(x, alpha, sigma, gm):
    r"""$\mathrm{tr}\,W^*(x)$ (engine integrand)."""
    return matrix_weight_trace(gm, x, alpha, sigma)


def residual_variance(
    gm: GaussianMixture,
    alpha,
    sigma,
    weight="matrix",
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
    rtol: float | None = None,
) -> ResidualVariance:
    r"""Residual (label-noise) variance of a score-loss weighting at one noise level,
    exactly from the closed forms (P16, sharpened), averaged over $x_t$ by the engine.

    Args:
        gm: the clean mixture (any D; Monte Carlo for D > 3). alpha, sigma: scalars > 0.
        weight: ``"matrix"`` for $W^*=C_t^{-1}$, or a scalar score-space weight $\Lambda>0$
            (e.g. $\sigma^2$, $\sigma^2c^*$, $\sigma^2\omega_\varepsilon$).
        method, key, num_samples, num_nodes, rtol: as in :func:`homoskedastic_multiplier`.

    Returns:
        :class:`ResidualVariance`. For $\Lambda=\sigma^2$: raw $=\sigma^2-\sigma^4J_t$;
        for $W^*$: raw $=\mathbb E\mathrm{tr}C^{-1}/D\approx\sigma^2+\sigma^4J$.
    """
    check_mixture(gm)
    alpha = check_scalar(alpha, "alpha", positive=True)
    sigma = check_scalar(sigma, "sigma", positive=True)
    opts = _options(method, key, num_samples, num_nodes, rtol)
    d = gm.dim
    if isinstance(weight, str):
        if weight != "matrix":
            raise ValueError(f"weight must be 'matrix' or a positive scalar, got {weight!r}")
        est = expectations.expect(
            _matrix_weight_trace,
            gm.noised(alpha, sigma),
            (jnp.asarray(alpha), jnp.asarray(sigma), gm),
            **opts,
        )
        raw = float(est.value) / d
        return ResidualVariance(raw, raw, 1.0 / raw)
    lam_w = check_scalar(weight, "weight", positive=True)
    r = float(variance.irreducible_variance(gm, alpha, sigma, **opts).value)
    return ResidualVariance(lam_w**2 * r / d, lam_w, r / d)


# ---------------------------------------------------------------------------------------
# Importance sampling of noise levels (P11, criterion (e))
# ---------------------------------------------------------------------------------------
def _grid_args(lam, *arrays):
    lam = as_float_array(lam, "lam")
    if lam.ndim != 1 or lam.size < 2 or not np.all(np.diff(lam) > 0):
        raise ValueError("lam must be a strictly increasing 1-D grid with >= 2 points")
    out = []
    for name, a in arrays:
        a = as_float_array(a, name)
        if a.shape[:1] != lam.shape:
            raise ValueError(
                f"{name} must have shape ({lam.size}, ...) to match lam, got {a.shape}"
            )
        check_finite(a, name)
        out.append(a)
    return lam, out


def _trapz(y, x):
    return float(np.trapezoid(y, x))


def is_second_moment(lam, w, m2, p) -> float:
    r"""Second moment $\int w^2m_2/p\,d\lambda$ of the importance-sampled gradient
    $\hat g=\frac{w(\lambda)}{p(\lambda)}g$, λ ~ p, with $m_2=\mathbb E[\|g\|^2\mid\lambda]$
    (trapezoid rule on the grid ``lam``). FORMULAS.md §5 P11."""
    lam, (w, m2, p) = _grid_args(lam, ("w", w), ("m2", m2), ("p", p))
    check_positive(m2, "m2", allow_zero=True)
    check_positive(p, "p")
    return _trapz(w**2 * m2 / p, lam)


def is_variance(lam, w, m2, p, m1=None) -> float:
    r"""Trace of the covariance of $\hat g$: $\int w^2m_2/p-\|\int w\,m_1\|^2$, with
    $m_1(\lambda)=\mathbb E[g\mid\lambda]$ ``(n, P)`` (zero when omitted, as at θ*)."""
    second = is_second_moment(lam, w, m2, p)
    if m1 is None:
        return second
    lam, (w, m1) = _grid_args(lam, ("w", w), ("m1", m1))
    m1 = m1.reshape(lam.size, -1)
    mean = np.trapezoid(w[:, None] * m1, lam, axis=0)
    return second - float(mean @ mean)


def _normalise(lam, f, name):
    check_positive(f, name, allow_zero=True)
    z = _trapz(f, lam)
    if not z > 0:
        raise ValueError(f"{name} must have positive integral over lam")
    return f / z


def optimal_density(lam, w, m2) -> np.ndarray:
    r"""Variance-optimal sampling density $p^*\propto w\sqrt{m_2}$ (Cauchy–Schwarz; P11).
    Attains the bound $\int w^2m_2/p^*=(\int w\sqrt{m_2})^2$."""
    lam, (w, m2) = _grid_args(lam, ("w", w), ("m2", m2))
    check_positive(m2, "m2", allow_zero=True)
    return _normalise(lam, np.abs(w) * np.sqrt(m2), "w*sqrt(m2)")


def loss_proportional_density(lam, w, loss) -> np.ndarray:
    r"""Kingma & Gao's adaptive target $p\propto\mathbb E[w\,\mathcal L']$: the weighted
    per-λ loss ``w * loss`` normalised (FORMULAS.md §3.13)."""
    lam, (w, loss) = _grid_args(lam, ("w", w), ("loss", loss))
    return _normalise(lam, w * loss, "w*loss")


def std_proportional_density(lam, std) -> np.ndarray:
    r"""Sun & Shi's claim $p\propto\mathrm{std}$ of the per-λ gradient (FORMULAS.md §3.14;
    optimal only when $w$ is constant and $m_1=0$)."""
    lam, (std,) = _grid_args(lam, ("std", std))
    return _normalise(lam, std, "std")


class DensityComparison(NamedTuple):
    """Sampling densities on a λ grid and the second moment each gives (P11).

    Attributes:
        lam: ``(n,)`` grid.
        densities: name → ``(n,)`` normalised density.
        second_moments: name → $\\int w^2m_2/p$.
        bound: $(\\int w\\sqrt{m_2})^2$, attained by ``"optimal"``.
    """

    lam: np.ndarray
    densities: dict
    second_moments: dict
    bound: float


def compare_densities(lam, w, m2, *, loss=None, baseline=None) -> DensityComparison:
    r"""Compare $p^*\propto w\sqrt{m_2}$, KG's $p\propto w\cdot$loss, Sun & Shi's
    $p\propto\sqrt{m_2}$ (std at θ*, where $m_1=0$) and an optional baseline density, by the
    second moment $\int w^2m_2/p$ each gives.

    Args:
        lam: ``(n,)`` increasing grid. w: ``(n,)`` total weight. m2: ``(n,)`` per-λ second
            moment of the per-sample gradient. loss: ``(n,)`` per-λ loss for KG.
        baseline: ``(n,)`` a density (e.g. the schedule's p(λ)), normalised here.
    """
    lam = np.asarray(lam, dtype=np.float64)
    dens = {
        "optimal": optimal_density(lam, w, m2),
        "sun_shi_std": std_proportional_density(lam, np.sqrt(np.asarray(m2, dtype=np.float64))),
    }
    if loss is not None:
        dens["kingma_gao"] = loss_proportional_density(lam, w, loss)
    if baseline is not None:
        dens["baseline"] = _normalise(lam, np.asarray(baseline, dtype=np.float64), "baseline")
    moments = {k: is_second_moment(lam, w, m2, p) for k, p in dens.items()}
    bound = _trapz(np.abs(np.asarray(w)) * np.sqrt(np.asarray(m2)), lam) ** 2
    return DensityComparison(lam, dens, moments, bound)


def label_noise_second_moment(
    gm: GaussianMixture, lam, process: str = "ve", **options
) -> np.ndarray:
    r"""Per-λ second moment of the per-sample gradient $g=2(s_\theta-s_c)$ of the unweighted
    score loss at the true score, for the nonparametric model ($J_\theta=I$):
    $m_2=4\,\mathbb E\,\mathrm{tr}C_t=4R(\lambda)=4D/(\sigma^2c^*(\lambda))$, with $m_1=0$
    (FORMULAS.md §5 P11). ``process`` picks σ(λ) (``"ve"``: $e^{-\lambda/2}$; ``"vp"``:
    $\mathrm{sigmoid}(-\lambda)^{1/2}$). ``(n,)`` → ``(n,)``; ``options`` as in
    :func:`c_star_of_lambda` (any D)."""
    check_mixture(gm)
    check_choice("process", process, ("ve", "vp"))
    lam = as_float_array(lam, "lam").reshape(-1)
    check_finite(lam, "lam")
    c = np.asarray(c_star_of_lambda(gm, lam, **options))
    sig2 = np.asarray(alpha_sigma(jnp.asarray(lam), process)[1]) ** 2
    return 4.0 * gm.dim / (sig2 * c)


# ---------------------------------------------------------------------------------------
# c* in practice: the offline estimate from any model, the exported table's loader
# (issue 15 items 4, 5; implemented in dsmtheory/_c_star_practice.py)
# ---------------------------------------------------------------------------------------
from ._c_star_practice import ExportedWeighting as ExportedWeighting  # noqa: E402
from ._c_star_practice import estimate_c_star as estimate_c_star  # noqa: E402
from ._c_star_practice import estimate_c_star_curve as estimate_c_star_curve  # noqa: E402
from ._c_star_practice import export_columns as export_columns  # noqa: E402
from ._c_star_practice import interpolate_log_linear as interpolate_log_linear  # noqa: E402
from ._c_star_practice import load_export as load_export  # noqa: E402

__all__ += [
    "ExportedWeighting",
    "estimate_c_star",
    "estimate_c_star_curve",
    "export_columns",
    "interpolate_log_linear",
    "load_export",
]
