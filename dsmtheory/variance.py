r"""Fisher information, mmse, irreducible DSM variance, effective dimension and the
DSM = SM + R decomposition.

For the forward process $x_t=\alpha x_0+\sigma\varepsilon$ on a Gaussian mixture $p_0$, the
denoising score-matching (DSM) loss of any score model $s_\theta$ splits exactly into the
score-matching (Fisher-divergence) loss and an irreducible term that no model can remove
(Zhang et al. 2025, *Why Heuristic Weighting Works*; FORMULAS.md §4 "DSM = SM + irreducible
variance", §5 P12, §8 "Effective dimension"):

$$\mathbb E\|s_\theta-s_c\|^2=\mathbb E\|s_\theta-s^*\|^2+R,\qquad
R=\frac{D}{\sigma^2}-\mathrm{tr}\,I_t=\frac{\alpha^2}{\sigma^4}\,\mathrm{mmse}(t)
=\frac{d_{\rm eff}(t)}{\sigma^2},$$

with $s_c=-\varepsilon/\sigma$, $s^*=\nabla\log p_t$, $I_t=\mathbb E[s^*s^{*\top}]$,
$\mathrm{mmse}=\mathbb E\|x_0-\mathbb E[x_0\mid x_t]\|^2$ and the effective dimension
$d_{\rm eff}=\alpha^2\mathrm{mmse}/\sigma^2\in[0,D]$, the number of directions in which the
noise is not yet resolved ($c^*=D/d_{\rm eff}$).

Every expectation here is computed by :mod:`dsmtheory.expectations` (``method="auto"``,
``"adaptive"``, ``"gauss_hermite"`` or ``"monte_carlo"``; see there for the rules and their
accuracy). Numerics (DESIGN.md "Numerics"):

* $R$ is never formed as the difference $D/\sigma^2-\mathrm{tr}\,I_t$ of two large numbers:
  it is the average of the closed-form posterior trace (Rao–Blackwellization).
* Scales that overflow are avoided: $R=(\alpha^2\,\mathrm{mmse}/\sigma^2)/\sigma^2$, never
  $\alpha^2/\sigma^4$, so $R$ is finite wherever it is representable (σ = 1e-80 gives
  $R\approx D\cdot10^{160}$).
* Every Monte Carlo figure carries its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from . import expectations
from ._validation import (
    as_float_array,
    check_choice,
    check_count,
    check_finite,
    check_positive,
    check_scalar,
)
from .expectations import Estimate
from .mixture import GaussianMixture, check_mixture, posterior_components

__all__ = [
    "Estimate",
    "FisherInformation",
    "HeteroskedasticityCurve",
    "DSMDecomposition",
    "fisher_information",
    "fisher_trace",
    "mmse",
    "mmse_curve",
    "irreducible_variance",
    "effective_dimension",
    "effective_dimension_curve",
    "heteroskedasticity_curve",
    "fit_loglog_slope",
    "dsm_decomposition",
    "alphas_for",
    "DEFAULT_NUM_SAMPLES",
]

#: Default Monte Carlo sample count (the engine's).
DEFAULT_NUM_SAMPLES = expectations.DEFAULT_NUM_SAMPLES

#: Deprecated alias: Fisher information is an :class:`~dsmtheory.expectations.Estimate`
#: (``.matrix`` is its ``.value``).
FisherInformation = Estimate


class HeteroskedasticityCurve(NamedTuple):
    """Irreducible DSM variance over a grid of noise levels.

    Attributes:
        sigma: ``(n,)`` noise levels σ.
        alpha: ``(n,)`` signal scales α (1 for VE, $\\sqrt{1-\\sigma^2}$ for VP).
        lam: ``(n,)`` log-SNR $\\lambda=\\log(\\alpha^2/\\sigma^2)$.
        R: ``(n,)`` irreducible variance $R(\\sigma)$ in score space.
        stderr: ``(n,)`` its standard error (zeros for the deterministic rules).
        reference: ``(n,)`` the heteroskedastic reference $D/\\sigma^2$.
        method: the rule(s) used (``"adaptive"``, ``"gauss_hermite"``, ``"monte_carlo"``, or
            several joined by ``"+"``).
        d_eff: ``(n,)`` the effective dimension $\\sigma^2R$ (``D`` at low noise for full-rank
            data, $\\bar d$ for data near a $\\bar d$-dimensional set).
        rule: the engine's account of the rule.
    """

    sigma: np.ndarray
    alpha: np.ndarray
    lam: np.ndarray
    R: np.ndarray
    stderr: np.ndarray
    reference: np.ndarray
    method: str
    d_eff: np.ndarray | None = None
    rule: str = ""


class DSMDecomposition(NamedTuple):
    """Monte Carlo split of a score model's DSM loss at one noise level.

    Attributes:
        dsm_loss: $\\mathbb E\\|s_\\theta(x_t)-s_c\\|^2$ (MC mean).
        dsm_stderr: its standard error.
        fisher_divergence: $\\mathbb E\\|s_\\theta(x_t)-s^*(x_t)\\|^2$ (MC mean, exact $s^*$).
        fisher_stderr: its standard error.
        irreducible: $R$ from :func:`irreducible_variance` (``method="auto"``).
        irreducible_stderr: its standard error (0 for the deterministic rules).
        gap: paired MC estimate of DSM − SM on the same samples; equals $R$ in expectation.
        gap_stderr: its standard error.
        num_samples: the Monte Carlo sample count.
    """

    dsm_loss: float
    dsm_stderr: float
    fisher_divergence: float
    fisher_stderr: float
    irreducible: float
    irreducible_stderr: float
    gap: float
    gap_stderr: float
    num_samples: int


# ---------------------------------------------------------------------------------------
# per-point integrands (module level: the engine caches one compilation per function)
# ---------------------------------------------------------------------------------------
def _posterior_trace(x, alpha, sigma, gm):
    r"""$\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t=x)=\sum_kr_k(\mathrm{tr}V_k+\|m_k-\bar m\|^2)$,
    ``(B, D) -> (B,)``, from the component posteriors directly (the engine passes blocks;
    the blocked kernel of ``posterior_cov_trace`` would only add compilation time)."""
    r, m, v = posterior_components(gm, x, alpha, sigma)
    return jnp.einsum(
        "bk,bk->b", r, jnp.sum(v, -1)[None, :] + _mean_spread(x, alpha, sigma, gm, r, m)
    )


def _mean_spread(x, alpha, sigma, gm, r, m):
    r"""$\|m_k-\bar m\|^2$, ``(B, K)``, in whichever of two equal forms is accurate.

    Directly from $m_k$, the rounding error is $\epsilon\max_k\|m_k\|$: at small noise the
    spread ($O(\tilde\sigma^4)$) drowns in it. From the offsets
    $h_k=x_t/\alpha-m_k=U_k\,\mathrm{diag}(\sigma^2/(\alpha(\alpha^2e_k+\sigma^2)))\,
    U_k^\top(x_t-\alpha\mu_k)$ (the same differences, $m_k-m_j=h_j-h_k$) the error is
    $\epsilon\max_k\|h_k\|$, small at low noise; each point takes the form with the
    smaller magnitude (so R and c* hold down to σ = 1e-80)."""
    eig = gm.eigvals  # (K, D), dense view
    d = x[:, None, :] - alpha * gm.means[None]  # (B, K, D)
    z = d if gm.diagonal else jnp.einsum("bkd,kde->bke", d, gm.eigvecs)
    hz = z * (sigma**2 / (alpha * (alpha**2 * eig + sigma**2)))[None]
    h = hz if gm.diagonal else jnp.einsum("kde,bke->bkd", gm.eigvecs, hz)
    hbar = jnp.einsum("bk,bkd->bd", r, h)
    mbar = jnp.einsum("bk,bkd->bd", r, m)
    from_h = jnp.sum((h - hbar[:, None, :]) ** 2, axis=-1)
    from_m = jnp.sum((m - mbar[:, None, :]) ** 2, axis=-1)
    use_h = jnp.max(jnp.abs(h), axis=(1, 2)) < jnp.max(jnp.abs(m), axis=(1, 2))
    return jnp.where(use_h[:, None], from_h, from_m)


def _scaled_posterior_trace(x, alpha, sigma, scale, gm):
    r""":func:`_posterior_trace` divided by ``scale`` (see :func:`_trace_scale`): the engine
    then averages numbers of order D whatever σ, so neither the values nor the squares of
    its Monte Carlo error estimate underflow (σ from 1e-80 to 1e80)."""
    return _posterior_trace(x, alpha, sigma, gm) / scale


def _trace_scale(gm, alphas, sigmas) -> np.ndarray:
    r"""The size of $\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)$ for a Gaussian with the
    mixture's mean variance per axis $v$: $D\,\tilde\sigma^2v/(v+\tilde\sigma^2)$ with
    $\tilde\sigma=\sigma/\alpha$ (about $D\tilde\sigma^2$ at low noise, $Dv$ at high
    noise). Only a scale: any positive number of the right order keeps the expectation exact
    after multiplying back."""
    w = np.asarray(gm.weights, dtype=np.float64)
    means = np.asarray(gm.means, dtype=np.float64)
    d = means.shape[-1]
    spread = float(w @ np.sum((means - w @ means) ** 2, axis=-1))
    if gm.kind == "low_rank":
        tr = np.sum(np.asarray(gm.factors) ** 2, axis=(1, 2)) + np.sum(np.asarray(gm.diag), -1)
    else:
        tr = np.trace(np.asarray(gm.covs, dtype=np.float64), axis1=1, axis2=2)
    v = (float(w @ tr) + spread) / d
    if not (math.isfinite(v) and v > 0):
        v = 1.0
    st2 = (np.asarray(sigmas, dtype=np.float64) / np.asarray(alphas, dtype=np.float64)) ** 2
    return d * st2 / (1.0 + st2 / v)


def _score_outer(x, law):
    r"""$s s^\top$ of ``law``'s own score, ``(B, D) -> (B, D, D)``."""
    s = law.score(x)
    return s[:, :, None] * s[:, None, :]


def _neg_hessian(x, law):
    r"""$-\nabla^2\log q$ of ``law``, ``(B, D) -> (B, D, D)``."""
    return -law.hessian(x)


def _score_sq(x, law):
    r"""$\|\nabla\log q\|^2$, ``(B, D) -> (B,)``."""
    return jnp.sum(law.score(x) ** 2, axis=-1)


def _engine_options(method, key, num_samples, rtol, num_nodes=None):
    return {
        "method": method,
        "key": key,
        "num_samples": num_samples,
        "rtol": rtol,
        "num_nodes": num_nodes,
    }


# ---------------------------------------------------------------------------------------
# Fisher information
# ---------------------------------------------------------------------------------------
def fisher_information(
    gm: GaussianMixture,
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    *,
    form: str = "score",
    rtol: float | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""Fisher information $I=\mathbb E_{x\sim p}[\nabla\log p(x)\nabla\log p(x)^\top]$ of
    the density of ``gm`` itself.

    For the noised marginal $p_t$ pass ``gm.noised(alpha, sigma)``. By integration by parts
    $I=-\mathbb E[\nabla^2\log p]$ (FORMULAS.md §4 "Fisher information"; Zhang et al. 2025);
    ``form="hessian"`` integrates that second form instead (an independent integrand). There
    is no closed form for a mixture with K > 1.

    Args:
        gm: the mixture whose density's Fisher information is wanted.
        method: ``"auto"``, ``"adaptive"`` (D <= 3), ``"gauss_hermite"`` or ``"monte_carlo"``
            (:mod:`dsmtheory.expectations`; old names are deprecated aliases).
        key: ``jax.random`` key for Monte Carlo (``None``: ``PRNGKey(0)``).
        num_samples: Monte Carlo sample count (>= 2).
        form: ``"score"`` ($\mathbb E[ss^\top]$) or ``"hessian"`` ($-\mathbb E[H]$).
        rtol: relative tolerance of the deterministic rules (default 1e-10).

    Returns:
        :class:`~dsmtheory.expectations.Estimate` whose ``value`` (alias ``matrix``) and
        ``stderr`` have shape ``(D, D)``.

    Raises:
        ValueError: unknown method or form, ``"adaptive"`` for D > 3, bad ``num_samples``.
        TypeError: ``gm`` is not a :class:`~dsmtheory.mixture.GaussianMixture`.
        ExpectationError: a rule missed its tolerance or its sanity check.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> fi = dsm.variance.fisher_information(dsm.single_gaussian([0.0], 0.5))
        >>> round(float(fi.matrix[0, 0]), 10)
        4.0
    """
    check_mixture(gm)
    check_choice("form", form, ("score", "hessian"))
    if gm.rank_deficient:
        raise ValueError(
            "gm is rank-deficient (a component has rank < D): its Fisher information matrix "
            "is infinite along the null directions of its components (limit of Sigma_k + "
            "eps I as eps -> 0); fisher_trace(gm) returns inf, and gm.noised(alpha, sigma) "
            "with sigma > 0 has a finite one"
        )
    fn = _neg_hessian if form == "hessian" else _score_outer
    est = expectations.expect(
        fn, gm, (gm,), **_engine_options(method, key, num_samples, rtol, num_nodes)
    )
    value = 0.5 * (est.value + est.value.T)
    return est._replace(value=value, rule=f"{est.rule} ({form} form)")


def fisher_trace(
    gm: GaussianMixture,
    *,
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    rtol: float | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""$\mathrm{tr}\,I=\mathbb E_{x\sim p}\|\nabla\log p(x)\|^2$ of ``gm``'s own density.

    ``gm`` itself gives $\mathrm{tr}\,I_0$ (the small-noise coefficient $J_0=\mathrm{tr}I_0/D$
    of P9); ``gm.noised(alpha, sigma)`` gives $\mathrm{tr}\,I_t$. FORMULAS.md §4.

    A rank-deficient ``gm`` (a component with a zero eigenvalue, ``gm.rank_deficient``) has
    $\mathrm{tr}\,I=+\infty$, returned exactly (``method="closed_form"``, stderr 0)
    without integrating: it is the limit of $\mathrm{tr}\,I$ for covariances
    $\Sigma_k+\varepsilon I$, $\approx\sum_k\pi_k(D-\mathrm{rank}_k)/\varepsilon\to\infty$,
    and equally $\lim_{\sigma\to0}\mathrm{tr}\,I_t$ (each null direction contributes
    $1/\sigma^2$). The score of such a $p_0$ is finite on the supports (see
    :meth:`~dsmtheory.GaussianMixture.score`), so averaging it would give a finite, wrong
    number.

    Returns:
        :class:`~dsmtheory.expectations.Estimate` (a float value).
    """
    check_mixture(gm)
    if gm.rank_deficient:
        return Estimate(
            math.inf,
            0.0,
            "closed_form",
            "tr I of a rank-deficient p0 is +inf (limit of Sigma_k + eps I as eps -> 0)",
        )
    return expectations.expect(
        _score_sq, gm, (gm,), **_engine_options(method, key, num_samples, rtol, num_nodes)
    )


# ---------------------------------------------------------------------------------------
# mmse, R, d_eff
# ---------------------------------------------------------------------------------------
def _alpha_sigma(alpha, sigma) -> tuple[float, float]:
    return (
        check_scalar(alpha, "alpha", positive=True),
        check_scalar(sigma, "sigma", positive=True),
    )


def mmse(
    gm: GaussianMixture,
    alpha: float,
    sigma: float,
    *,
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    rtol: float | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""Minimum mean squared error $\mathrm{mmse}=\mathbb E\|x_0-\mathbb E[x_0\mid x_t]\|^2
    =\mathbb E_{x_t}\,\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)$ for $x_t=\alpha x_0+\sigma
    \varepsilon$ (FORMULAS.md §4; the x-space irreducible term).

    Rao–Blackwellized: the closed-form posterior trace is averaged over $x_t\sim p_t$ by the
    engine (:mod:`dsmtheory.expectations`).

    Args:
        gm: the clean mixture $p_0$.
        alpha: signal scale α > 0 (1 for VE).
        sigma: noise level σ > 0.
        method: ``"auto"``, ``"adaptive"``, ``"gauss_hermite"`` or ``"monte_carlo"``.
        key: ``jax.random`` key for Monte Carlo (``None``: ``PRNGKey(0)``).
        num_samples: Monte Carlo sample count (default 20 000).
        rtol: relative tolerance of the deterministic rules (default 1e-10).
        num_nodes: Gauss–Hermite nodes per axis (``method="gauss_hermite"``).

    Returns:
        :class:`~dsmtheory.expectations.Estimate` of the mmse.

    Raises:
        ValueError: σ or α not a finite positive scalar, unknown method, ``"adaptive"`` for
            D > 3, bad ``num_samples``.
        TypeError: ``gm`` not a mixture; α or σ not a real number.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> est = dsm.variance.mmse(dsm.single_gaussian([0.0], 1.0), 1.0, 1.0)
        >>> round(est.value, 10)  # D sigma^2 s^2 / S = 1 * 1 * 1 / 2
        0.5
    """
    check_mixture(gm)
    alpha, sigma = _alpha_sigma(alpha, sigma)
    law = gm.noised(alpha, sigma)
    scale = float(_trace_scale(gm, alpha, sigma))
    est = expectations.expect(
        _scaled_posterior_trace,
        law,
        (jnp.asarray(alpha), jnp.asarray(sigma), jnp.asarray(scale), gm),
        **_engine_options(method, key, num_samples, rtol, num_nodes),
    )
    return _scaled(est, scale)


def _scaled(est: Estimate, factor: float) -> Estimate:
    return est._replace(value=est.value * factor, stderr=est.stderr * factor)


def effective_dimension(
    gm: GaussianMixture,
    alpha: float,
    sigma: float,
    *,
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    rtol: float | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""Effective dimension $d_{\rm eff}(t)=\alpha^2\,\mathrm{mmse}(t)/\sigma^2
    =\mathrm{mmse}/\tilde\sigma^2=\sigma^2R(t)=D-\sigma^2\mathrm{tr}I_t\in[0,D]$
    (FORMULAS.md §8).

    The number of directions in which the noise is not yet resolved; also the per-sample
    ε-space DSM loss of the Bayes denoiser, $\mathbb E\|\varepsilon-\mathbb E[\varepsilon\mid
    x_t]\|^2$, and $D/c^*(t)$. For Gaussian data with eigenvalues $e_i$ it is
    $\sum_ie_i/(e_i+\tilde\sigma^2)$ (the effective degrees of freedom of ridge regression);
    it runs from $\bar d=\sum_k\pi_k\,\mathrm{rank}\,\Sigma_k$ (D for full-rank data) at low
    noise to 0 at high noise.

    Same arguments as :func:`mmse`.

    Returns:
        :class:`~dsmtheory.expectations.Estimate` of $d_{\rm eff}$.
    """
    est = mmse(
        gm,
        alpha,
        sigma,
        method=method,
        key=key,
        num_samples=num_samples,
        rtol=rtol,
        num_nodes=num_nodes,
    )
    a, s = _alpha_sigma(alpha, sigma)
    return _scaled(est, (a / s) ** 2)


def irreducible_variance(
    gm: GaussianMixture,
    alpha: float,
    sigma: float,
    *,
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    rtol: float | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""Irreducible DSM variance (score space) at noise level $(\alpha,\sigma)$:

    $$R=\mathrm{tr}\,\mathbb E\,\mathrm{Cov}(s_c\mid x_t)=\frac{D}{\sigma^2}-\mathrm{tr}\,I_t
    =\frac{\alpha^2}{\sigma^4}\,\mathbb E_{x_t}\,\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)
    =\frac{d_{\rm eff}}{\sigma^2},$$

    computed from the posterior trace (no cancellation at small σ) and scaled as
    $(\alpha^2\mathrm{mmse}/\sigma^2)/\sigma^2$ (no overflow of $\alpha^2/\sigma^4$).
    FORMULAS.md §4 "DSM = SM + irreducible variance", §5 P12; Zhang et al. 2025.

    Same arguments as :func:`mmse`.

    Returns:
        :class:`~dsmtheory.expectations.Estimate` ``(value, stderr, method, rule)``.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> est = dsm.variance.irreducible_variance(dsm.single_gaussian([0.0], 1.0), 1.0, 1.0)
        >>> round(est.value, 10)  # D alpha^2 s^2 / (sigma^2 S) = 1 / 2
        0.5
    """
    est = effective_dimension(
        gm,
        alpha,
        sigma,
        method=method,
        key=key,
        num_samples=num_samples,
        rtol=rtol,
        num_nodes=num_nodes,
    )
    _, s = _alpha_sigma(alpha, sigma)
    return _scaled(est, 1.0 / s**2)


# ---------------------------------------------------------------------------------------
# curves over noise levels
# ---------------------------------------------------------------------------------------
def alphas_for(sigmas, process: str) -> np.ndarray:
    r"""Signal scales for noise levels: VE $\alpha=1$; VP $\alpha=\sqrt{1-\sigma^2}$ (every σ
    must then be < 1)."""
    check_choice("process", process, ("ve", "vp"))
    s = as_float_array(sigmas, "sigmas")
    check_positive(s, "sigmas")
    if process == "ve":
        return np.ones_like(s)
    if np.any(s >= 1.0):
        raise ValueError(
            f"sigmas must be < 1 for process 'vp' (alpha = sqrt(1 - sigma^2)), got max "
            f"{np.max(s):.4g}"
        )
    return np.sqrt(1.0 - s**2)


def _check_sigmas(sigmas, name: str = "sigmas") -> np.ndarray:
    s = as_float_array(sigmas, name).reshape(-1)
    if s.size == 0:
        raise ValueError(f"{name} must be a non-empty array of noise levels")
    check_positive(s, name)
    return s


def mmse_curve(
    gm: GaussianMixture,
    alphas: ArrayLike,
    sigmas: ArrayLike,
    *,
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    rtol: float | None = None,
    num_nodes: int | None = None,
    progress: bool = False,
) -> Estimate:
    r"""$\mathrm{mmse}(\alpha_i,\sigma_i)$ on a grid, in one call of the engine (vectorised
    over the grid for Gauss–Hermite and Monte Carlo, which uses the same draws at every
    noise level: common random numbers, so the curve is smooth).

    Args:
        gm: the clean mixture.
        alphas, sigmas: ``(n,)`` arrays of positive signal scales and noise levels.
        method, key, num_samples, rtol, num_nodes: as in :func:`mmse`.
        progress: show a progress bar over noise levels (Monte Carlo in chunks).

    Returns:
        :class:`~dsmtheory.expectations.Estimate` with ``(n,)`` value and stderr.
    """
    check_mixture(gm)
    s = _check_sigmas(sigmas)
    a = as_float_array(alphas, "alphas").reshape(-1)
    if a.shape != s.shape:
        raise ValueError(f"alphas must have the shape of sigmas {s.shape}, got {a.shape}")
    check_positive(a, "alphas")
    opts = _engine_options(method, key, num_samples, rtol, num_nodes)
    chunks = _chunks(s.size, gm, progress)
    parts = []
    for lo, hi in chunks:
        aj, sj = jnp.asarray(a[lo:hi]), jnp.asarray(s[lo:hi])
        laws = jax.vmap(gm.noised)(aj, sj)
        uj = _trace_scale(gm, a[lo:hi], s[lo:hi])
        est = expectations.expect_many(
            _scaled_posterior_trace, laws, (aj, sj, jnp.asarray(uj)), (gm,), **opts
        )
        parts.append(_scaled(est, uj))
    return _join(parts)


def _chunks(n: int, gm: GaussianMixture, progress: bool):
    """Split a curve of ``n`` noise levels into pieces, with a progress bar if asked (and
    the work is large: D > 3, where Monte Carlo does it)."""
    if not progress or n <= 1:
        return [(0, n)]
    size = max(1, min(n, 8))
    bounds = [(i, min(n, i + size)) for i in range(0, n, size)]
    from tqdm.auto import tqdm

    return tqdm(bounds, desc=f"noise levels (D = {gm.dim})", unit="chunk", leave=False)


def _join(parts: list[Estimate]) -> Estimate:
    if len(parts) == 1:
        return parts[0]
    methods = sorted({m for p in parts for m in p.method.split("+")})
    rules = list(dict.fromkeys(p.rule for p in parts))
    return Estimate(
        np.concatenate([np.atleast_1d(p.value) for p in parts]),
        np.concatenate([np.atleast_1d(p.stderr) for p in parts]),
        "+".join(methods),
        " | ".join(rules),
    )


def effective_dimension_curve(
    gm: GaussianMixture,
    sigmas: ArrayLike,
    process: str = "ve",
    **options,
) -> Estimate:
    r"""$d_{\rm eff}(\sigma)$ over a grid of σ (``process`` picks α as in
    :func:`alphas_for`); options as in :func:`mmse_curve`."""
    s = _check_sigmas(sigmas)
    a = alphas_for(s, process)
    est = mmse_curve(gm, a, s, **options)
    return _scaled(est, (a / s) ** 2)


def heteroskedasticity_curve(
    gm: GaussianMixture,
    sigmas: ArrayLike,
    *,
    process: str = "ve",
    method: str = "auto",
    key: jax.Array | None = None,
    num_samples: int | None = None,
    rtol: float | None = None,
    num_nodes: int | None = None,
    progress: bool = False,
) -> HeteroskedasticityCurve:
    r"""$R(\sigma)$ over a grid of noise levels, with the reference $D/\sigma^2$ and the
    effective dimension $d_{\rm eff}=\sigma^2R$.

    VE: $\alpha=1$. VP: $\alpha=\sqrt{1-\sigma^2}$, so every σ must be < 1. The log-SNR is
    $\lambda=\log(\alpha^2/\sigma^2)$ (FORMULAS.md §1). As σ → 0, $R\sim\bar d/\sigma^2$:
    a slope of −2 on log-log axes, with the level $D/\sigma^2$ only for full-rank data below
    $\tilde\sigma\approx\sqrt{e_{\min}}$ (FORMULAS.md §8).

    Args:
        gm: the clean mixture.
        sigmas: 1-D array of noise levels, each finite and > 0.
        process: ``"ve"`` or ``"vp"``.
        method, key, num_samples, rtol, progress: as in :func:`mmse_curve`.

    Returns:
        :class:`HeteroskedasticityCurve` of NumPy arrays.

    Raises:
        ValueError: empty or non-positive ``sigmas``, σ >= 1 for VP, unknown process or
            method.
    """
    check_mixture(gm)
    check_choice("process", process, ("ve", "vp"))
    s = _check_sigmas(sigmas)
    alpha = alphas_for(s, process)
    est = mmse_curve(
        gm,
        alpha,
        s,
        method=method,
        key=key,
        num_samples=num_samples,
        rtol=rtol,
        num_nodes=num_nodes,
        progress=progress,
    )
    d_eff = np.asarray(est.value) * (alpha / s) ** 2
    d_se = np.asarray(est.stderr) * (alpha / s) ** 2
    lam = np.log(alpha**2 / s**2)
    return HeteroskedasticityCurve(
        s, alpha, lam, d_eff / s**2, d_se / s**2, gm.dim / s**2, est.method, d_eff, est.rule
    )


def fit_loglog_slope(x: ArrayLike, y: ArrayLike) -> float:
    r"""Least-squares slope of $\log y$ against $\log x$.

    Args:
        x: 1-D array (>= 2 entries), finite and > 0.
        y: 1-D array of the same length, finite and > 0.

    Returns:
        The slope $b$ of $\log y\approx a+b\log x$.

    Raises:
        ValueError: mismatched lengths, fewer than two points, non-positive entries, or all
            ``x`` equal.
    """
    x = as_float_array(x, "x").reshape(-1)
    y = as_float_array(y, "y").reshape(-1)
    if x.size != y.size:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if x.size < 2:
        raise ValueError("x and y need at least two points to fit a slope")
    check_positive(x, "x")
    check_positive(y, "y")
    lx, ly = np.log(x), np.log(y)
    dx = lx - lx.mean()
    denom = float(dx @ dx)
    if denom == 0.0:
        raise ValueError("x must not be all equal")
    return float(dx @ (ly - ly.mean()) / denom)


# ---------------------------------------------------------------------------------------
# DSM = SM + R
# ---------------------------------------------------------------------------------------
@jax.jit
def _draw_noisy(gm: GaussianMixture, alpha, sigma, k0, ke, like):
    r"""Draws of $(x_t,\varepsilon)$ with $x_t=\alpha x_0+\sigma\varepsilon$ (as many as
    ``like`` has rows)."""
    n = like.shape[0]
    x0 = gm.sample(k0, n)
    eps = jax.random.normal(ke, x0.shape, dtype=x0.dtype)
    return alpha * x0 + sigma * eps, eps


@jax.jit
def _dsm_terms(gt: GaussianMixture, sigma, x_t, eps, s_model):
    r"""Per-sample $\|s_\theta-s_c\|^2$ and $\|s_\theta-s^*\|^2$ (``gt`` = noised mixture)."""
    s_c = -eps / sigma
    s_true = gt.score(x_t)
    return jnp.sum((s_model - s_c) ** 2, axis=-1), jnp.sum((s_model - s_true) ** 2, axis=-1)


def dsm_decomposition(
    gm: GaussianMixture,
    score_fn: Callable,
    alpha: float,
    sigma: float,
    *,
    key: jax.Array | None = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
) -> DSMDecomposition:
    r"""Split a score model's DSM loss into the Fisher divergence and the irreducible term:

    $$\underbrace{\mathbb E\|s_\theta(x_t)-s_c\|^2}_{\text{DSM}}
    =\underbrace{\mathbb E\|s_\theta(x_t)-s^*(x_t)\|^2}_{\text{SM}}+R,\qquad
    s_c=-\varepsilon/\sigma$$

    (FORMULAS.md §4 "DSM = SM + irreducible variance"; Zhang et al. 2025). DSM and SM are
    Monte Carlo means over the same draws $x_0\sim p_0$, $\varepsilon\sim N(0,I)$ (a model is
    not a per-point function of $x_t$ with a closed form, so these are plain paired means);
    the gap DSM − SM is their paired per-sample difference, with its own standard error,
    and should equal $R$ (from :func:`irreducible_variance`, ``method="auto"``).

    Args:
        gm: the clean mixture.
        score_fn: score model ``score_fn(x, sigma)`` mapping ``(N, D)`` to ``(N, D)``.
        alpha: signal scale α > 0 (1 for VE).
        sigma: noise level σ > 0.
        key: ``jax.random`` key (``None``: ``PRNGKey(0)``).
        num_samples: Monte Carlo sample count (>= 2).

    Returns:
        :class:`DSMDecomposition`.

    Raises:
        ValueError: bad α, σ, ``num_samples``, or a ``score_fn`` output of the wrong shape.
        TypeError: ``score_fn`` not callable.
    """
    check_mixture(gm)
    alpha, sigma = _alpha_sigma(alpha, sigma)
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable, got {type(score_fn).__name__}")
    n = check_count(num_samples, "num_samples", 2)
    key, _ = expectations.resolve_key(key)
    k0, ke, kr = jax.random.split(key, 3)
    like = jnp.zeros((n, 1))
    x_t, eps = _draw_noisy(gm, alpha, sigma, k0, ke, like)
    s_model = jnp.asarray(score_fn(x_t, sigma))
    if s_model.shape != x_t.shape:
        raise ValueError(f"score_fn must return shape {x_t.shape}, got {s_model.shape}")
    check_finite(s_model, "score_fn output")
    a, b = (np.asarray(v) for v in _dsm_terms(gm.noised(alpha, sigma), sigma, x_t, eps, s_model))
    gap = a - b
    rt = math.sqrt(n)
    r = irreducible_variance(gm, alpha, sigma, key=kr)
    return DSMDecomposition(
        dsm_loss=float(a.mean()),
        dsm_stderr=float(a.std(ddof=1) / rt),
        fisher_divergence=float(b.mean()),
        fisher_stderr=float(b.std(ddof=1) / rt),
        irreducible=r.value,
        irreducible_stderr=r.stderr,
        gap=float(gap.mean()),
        gap_stderr=float(gap.std(ddof=1) / rt),
        num_samples=n,
    )
