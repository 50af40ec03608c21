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
from .mixture import GaussianMixture, check_mixture, posterior_components, posterior_cov_trace

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
    if gm.kind == "low_rank":  # Woodbury, never D x D (posterior_components is dense)
        return posterior_cov_trace(gm, x, alpha, sigma)
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
    if _use_fast_rule(gm, method, num_nodes):
        est = mmse_curve(gm, [alpha], [sigma], method=method, key=key, num_samples=num_samples)
        return est._replace(value=float(est.value[0]), stderr=float(est.stderr[0]))
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


# ---------------------------------------------------------------------------------------
# the fast Monte Carlo rule of the mmse family: within-component part exact, the
# between-component spread by antithetic, stratified draws shared by every noise level
# ---------------------------------------------------------------------------------------
#: Antithetic pairs per evaluation block of the fast rule (the last block is padded).
_FAST_PAIRS = 256
#: Noise levels per compiled call of the fast rule (a curve is padded to a multiple).
_FAST_SIGMAS = 8
#: Points per noise level of the first stage of the fast rule with ``target_rse`` and no
#: ``num_samples``: a pilot whose variances size the next stage of each level separately (the
#: digits benchmark needs 0 to ~3e4 pairs per level; a common first stage of 1e4 pairs spent
#: most of the time at levels that needed none).
FAST_PILOT_SAMPLES = 2048
#: Largest ``K * D * D`` for the fast rule (it holds every component's eigenbasis).
_FAST_MAX_ELEMENTS = 1 << 26


def within_component_deff(gm: GaussianMixture, alphas, sigmas) -> np.ndarray:
    r"""$\sum_k\pi_k\sum_ie_{ki}/(e_{ki}+\tilde\sigma^2)$, $\tilde\sigma=\sigma/\alpha$: the
    part of $d_{\rm eff}$ that the posterior spread *within* each component contributes,
    exactly (closed form; FORMULAS.md §8, derivation ``within_component_bound``).

    Since $\mathbb E_{x_t}[r_k(x_t)]=\pi_k$ and $\mathrm{Cov}(x_0\mid x_t,k)$ does not depend
    on $x_t$, $\mathbb E\,\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)=\sum_k\pi_k\,\mathrm{tr}V_k+
    \mathbb E\sum_kr_k\|m_k-\bar m\|^2$; this is the first term over $\tilde\sigma^2$. It is a
    lower bound of $d_{\rm eff}$, exact when the components do not overlap.

    Args:
        gm: the clean mixture (any D). alphas, sigmas: ``(n,)`` (or scalars) > 0.

    Returns:
        ``(n,)`` float64 NumPy array.
    """
    check_mixture(gm)
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    a = np.broadcast_to(np.atleast_1d(np.asarray(alphas, dtype=np.float64)), s.shape)
    st2 = (s / a) ** 2
    e = np.maximum(np.asarray(gm.eigvals, dtype=np.float64), 0.0)  # (K, D)
    pi = np.asarray(gm.weights, dtype=np.float64)
    out = np.zeros(s.shape)
    for i, t in enumerate(st2):  # a loop: (n, K, D) at once can be large
        out[i] = pi @ np.sum(e / (e + t), axis=-1)
    return out


@jax.jit
def _pair_coordinates(eigvecs, eigvals, means, comp, z, eps):
    r"""Every component's coordinates of a block of antithetic pairs, for every noise level:
    ``(a1, a2, b, ucat)`` with ``a1[p, l] = U_l^T (x_0 - mu_l)``, ``a2`` the same for the twin
    $2\mu_c-x_0$, ``b[p, l] = U_l^T eps`` (each ``(P, K, D)``), ``ucat = [U_1 | ... | U_K]``
    ``(D, K D)``; $x_0=\mu_c+U_c\sqrt{e_c}z$. Three GEMMs ``(P, D) @ (D, K D)``."""
    u, e, mu = eigvecs, eigvals, means
    k, d, _ = u.shape
    ucat = jnp.transpose(u, (1, 0, 2)).reshape(d, k * d)
    nu = jnp.einsum("kdi,kd->ki", u, mu).reshape(-1)
    x0 = mu[comp] + jnp.einsum("bdi,bi->bd", u[comp], jnp.sqrt(e[comp]) * z)
    a1 = (x0 @ ucat - nu[None]).reshape(-1, k, d)
    a2 = ((2.0 * mu[comp] - x0) @ ucat - nu[None]).reshape(-1, k, d)
    b = (eps @ ucat).reshape(-1, k, d)
    return a1, a2, b, ucat


@jax.jit
def _between_levels(a1, a2, b, ucat, eigvals, log_weights, alphas, sigmas):
    r"""$\tfrac12[B(x_t)+B(x_t')]$ for each pair of :func:`_pair_coordinates` and each noise
    level, ``(S, P)``: $B=\sum_lr_l\|m_l-\bar m\|^2$ at $x_t=\alpha x_0+\sigma\varepsilon$
    and at its antithetic twin $x_t'=2\alpha\mu_c-x_t$.

    With $p=x_t/\alpha$ and $y_l=U_l^\top(x_t-\alpha\mu_l)=\alpha a_l+\sigma b_l$,
    $m_l-p=U_l(c_l\circ y_l)$ with $c_{li}=-\sigma^2/(\alpha(\alpha^2e_{li}+\sigma^2))$, so

    $$B=\sum_lr_l\|m_l-p\|^2-\|\bar m-p\|^2=\sum_lr_l\|c_l\circ y_l\|^2-\Big\|\sum_lU_l
    (r_lc_l\circ y_l)\Big\|^2$$

    (any reference point $p$ gives $B$, since $\sum_lr_l=1$). The quadratic forms
    $\sum_iw_{li}y_{li}^2$ (Mahalanobis distances, $\|c_l\circ y_l\|^2$) come for every
    noise level at once from $a^2$, $ab$, $b^2$ by small GEMMs; per noise level there remain
    one elementwise pass over ``(P, K, D)`` and one GEMM ``(P, K D) @ (K D, D)``. Rounding:
    both terms are at most of order $D\tilde\sigma^2$, so $B$ carries an absolute rounding
    error of order $10^{-16}D\tilde\sigma^2$, i.e. $10^{-16}D$ in $d_{\rm eff}$."""
    e = eigvals
    al = alphas[:, None, None]
    s = sigmas[:, None, None]
    et = al**2 * e[None] + s**2  # (S, K, D) eigenvalues of the noised covariances
    logdet = jnp.sum(jnp.log(et), -1)  # (S, K)
    c = -(s**2) / (al * et)
    bb = b * b

    def quad(a, w, sign):  # sum_i w_si y_pki^2, y = alpha a + sign sigma b, every level
        aa, ab = a * a, a * b
        out = jnp.einsum("pki,ski->spk", aa, w * al**2)
        out = out + jnp.einsum("pki,ski->spk", ab, (2.0 * sign) * w * al * s)
        return out + jnp.einsum("pki,ski->spk", bb, w * s**2)

    def spread(a, sign):
        maha = quad(a, 1.0 / et, sign)
        # r: (S, P, K)
        r = jax.nn.softmax(log_weights[None, None] - 0.5 * (logdet[:, None] + maha), -1)
        q = jnp.sum(r * quad(a, c * c, sign), -1)  # (S, P)

        def rotate(level):
            r_s, c_s, al_s, s_s = level
            v = (r_s[..., None] * c_s[None]) * (al_s * a + (sign * s_s) * b)  # (P, K, D)
            w = v.reshape(v.shape[0], -1) @ ucat.T  # sum_l U_l r_l c_l y_l
            return jnp.sum(w * w, -1)

        return q - jax.lax.map(rotate, (r, c, alphas, sigmas))

    return 0.5 * (spread(a1, 1.0) + spread(a2, -1.0))


def fast_rule_applies(gm: GaussianMixture) -> bool:
    """Whether the fast Monte Carlo rule of :func:`mmse_curve` can run on ``gm`` (a dense
    view with at most 2^26 = 6.7e7 eigenvector entries)."""
    from .mixture import DENSE_VIEW_MAX_DIM

    return gm.dim <= DENSE_VIEW_MAX_DIM and gm.num_components * gm.dim**2 <= _FAST_MAX_ELEMENTS


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, shown only if ``enabled`` and stderr is a terminal (so never
    under tests or in logs)."""
    import sys

    from tqdm.auto import tqdm

    show = bool(enabled) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, disable=not show, leave=False, file=sys.stderr)


class _Moments:
    """Per-noise-level, per-component running means and squared deviations (Chan's merge)."""

    def __init__(self, levels: int, k: int):
        self.count = np.zeros((levels, k))
        self.mean = np.zeros((levels, k))
        self.m2 = np.zeros((levels, k))

    def add(self, rows, f, onehot, lab):
        c_b = onehot.sum(0)
        mean_b = (f @ onehot) / np.maximum(c_b, 1.0)
        dev = f - mean_b[:, lab]
        m2_b = (dev * dev) @ onehot
        n_old = self.count[rows]
        n_new = n_old + c_b
        frac = np.where(n_new > 0, c_b / np.maximum(n_new, 1.0), 0.0)
        delta = mean_b - self.mean[rows]
        self.mean[rows] = self.mean[rows] + delta * frac
        self.m2[rows] = self.m2[rows] + m2_b + delta * delta * n_old * frac
        self.count[rows] = n_new

    def estimate(self, pi):
        var_k = self.m2 / np.maximum(self.count - 1.0, 1.0)
        se = np.sqrt(np.sum(pi**2 * var_k / np.maximum(self.count, 1.0), axis=1))
        return self.mean @ pi, se


def _prefix_labels(pi: np.ndarray, total: int) -> np.ndarray:
    r"""Component labels of ``total`` pairs whose every prefix is stratified: two per
    component first, then label $i$ at $u_i=(i+\tfrac12)\varphi \bmod 1$ (the golden-ratio
    sequence, $\varphi=(\sqrt5-1)/2$) through the inverse CDF of the weights, so that the
    first $n$ labels hold each component close to $\pi_kn$ times (discrepancy
    $O(\log n/n)$) and a noise level may stop after any number of blocks."""
    k = pi.size
    base = np.repeat(np.arange(k), 2)
    rest = max(int(total) - base.size, 0)
    u = np.mod((np.arange(rest) + 0.5) * (0.5 * (math.sqrt(5.0) - 1.0)), 1.0)
    cdf = np.cumsum(pi)
    extra = np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), k - 1)
    return np.concatenate([base, extra]).astype(np.int32)[: max(int(total), base.size)]


def _fast_deff(gm, alphas, sigmas, key, num_samples, target_rse, max_samples, progress):
    """``(d_eff (n,), stderr (n,), rule)`` by the fast rule (see :func:`mmse_curve`)."""
    if gm.kind == "low_rank":
        gm = gm.to_dense()
    rng, kdesc = expectations.resolve_key(key)
    k, dim = gm.num_components, gm.dim
    pi = np.asarray(gm.weights, dtype=np.float64)
    n_lev = sigmas.size
    args = (gm.eigvecs, jnp.maximum(gm.eigvals, 0.0), gm.means, gm.log_weights)
    mom = _Moments(n_lev, k)
    scale = (alphas / sigmas) ** 2
    within = within_component_deff(gm, alphas, sigmas)

    def run(levels, n_pairs, stage):
        """Add ``n_pairs[i]`` (at least 2K) stratified pairs at noise level ``levels[i]``: one
        stream of draws per stage, each level taking its first blocks (the same draws at
        every level: common random numbers; every prefix stratified, _prefix_labels)."""
        n_pairs = np.maximum(np.asarray(n_pairs, dtype=np.int64), 2 * k)
        nblk = -(-n_pairs // _FAST_PAIRS)
        nb = int(nblk.max())
        lab = _prefix_labels(pi, nb * _FAST_PAIRS)
        kz, ke = jax.random.split(jax.random.fold_in(rng, stage))
        bar = progress_bar(int(nblk.sum()), f"d_eff Monte Carlo (D = {dim}, K = {k})", progress)
        onehot_all = np.zeros((lab.size, k))
        onehot_all[np.arange(lab.size), lab] = 1.0
        for j in range(nb):
            act = levels[nblk > j]
            lo = j * _FAST_PAIRS
            lb = lab[lo : lo + _FAST_PAIRS]
            onehot = onehot_all[lo : lo + _FAST_PAIRS]
            z = jax.random.normal(jax.random.fold_in(kz, j), (_FAST_PAIRS, dim))
            eps = jax.random.normal(jax.random.fold_in(ke, j), (_FAST_PAIRS, dim))
            coords = _pair_coordinates(*args[:3], jnp.asarray(lb), z, eps)
            for g in range(0, act.size, _FAST_SIGMAS):
                ch = act[g : g + _FAST_SIGMAS]
                width = 1 << (int(ch.size) - 1).bit_length()  # 1, 2, 4 or 8: few compilations
                idx = np.concatenate([ch, np.full(width - ch.size, ch[-1])])
                al, sg = jnp.asarray(alphas[idx]), jnp.asarray(sigmas[idx])
                f = np.asarray(_between_levels(*coords, args[1], args[3], al, sg))
                mom.add(ch, f[: ch.size], onehot, lb)
                bar.update(ch.size)
        bar.close()

    n0 = max(num_samples // 2, 2 * k)
    run(np.arange(n_lev), np.full(n_lev, n0), 0)
    between, between_se = mom.estimate(pi)
    value, se = within + scale * between, scale * between_se
    stages = 1
    if target_rse is not None:
        cap = max(max_samples // 2, n0)
        while True:
            rse = se / np.maximum(value, 1e-300)
            have = mom.count.sum(axis=1)
            short = np.flatnonzero((rse > target_rse) & (have < cap))
            if short.size == 0:
                break
            # the pairs each level still needs, by its variance so far (20 % margin)
            need = have[short] * ((rse[short] / target_rse) ** 2 * 1.2 - 1.0)
            need = np.minimum(np.maximum(need, 2 * k), cap - have[short])
            run(short, need.astype(np.int64), stages)
            stages += 1
            between, between_se = mom.estimate(pi)
            value, se = within + scale * between, scale * between_se
    pairs = mom.count.sum(axis=1)
    span = f"{int(pairs.min())}" + (f"-{int(pairs.max())}" if pairs.max() > pairs.min() else "")
    rule = (
        "Monte Carlo, fast rule of the mmse family: the within-component part exact "
        "(closed form), the between-component spread E sum_k r_k |m_k - m|^2 by "
        f"{span} antithetic pairs per noise level, stratified over {k} components, the same "
        f"draws at every noise level, {kdesc}"
    )
    if target_rse is not None:
        rule += f"; drawn in {stages} stages until the relative standard error <= {target_rse:g}"
    return value, se, rule


def _use_fast_rule(gm: GaussianMixture, method: str, num_nodes) -> bool:
    """The mmse family goes to the fast Monte Carlo rule for ``method="monte_carlo"``, and for
    ``"auto"`` in D > 3 (where ``"auto"`` means Monte Carlo), when the mixture allows it."""
    method = expectations.resolve_method(method)
    if num_nodes is not None and method == "auto":
        return False
    mc = method == "monte_carlo" or (method == "auto" and gm.dim > 3)
    return mc and fast_rule_applies(gm)


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
    target_rse: float | None = None,
    max_samples: int | None = None,
) -> Estimate:
    r"""$\mathrm{mmse}(\alpha_i,\sigma_i)$ on a grid, in one call of the engine (vectorised
    over the grid for Gauss–Hermite and Monte Carlo, which uses the same draws at every
    noise level: common random numbers, so the curve is smooth).

    Monte Carlo (``method="monte_carlo"``, and ``"auto"`` in D > 3) uses the fast rule of
    the mmse family (FORMULAS.md §8): with $r_k$, $m_k$, $V_k$ the responsibilities,
    means and covariances of the components of $x_0\mid x_t$,

    $$\mathrm{mmse}=\sum_k\pi_k\,\mathrm{tr}V_k+\mathbb E_{x_t}\Big[\sum_kr_k(x_t)
    \|m_k(x_t)-\bar m(x_t)\|^2\Big],\qquad \mathrm{tr}V_k=\sum_i\frac{e_{ki}
    \tilde\sigma^2}{e_{ki}+\tilde\sigma^2},$$

    (since $\mathbb E[r_k]=\pi_k$ and $V_k$ does not depend on $x_t$): the first term is
    exact, and only the between-component spread is sampled — by antithetic pairs
    ($x_t$ and its reflection $2\alpha\mu_k-x_t$ through its component's centre),
    stratified over the components, with the same draws at every noise level, every
    component's coordinates computed once per draw for all noise levels. Its standard error
    is the stratified one of the pair means. The spread vanishes where the components are
    resolved (low noise), so there the result is exact to rounding; it carries the whole
    Monte Carlo error at moderate noise.

    Args:
        gm: the clean mixture.
        alphas, sigmas: ``(n,)`` arrays of positive signal scales and noise levels.
        method, key, num_samples, rtol, num_nodes: as in :func:`mmse` (``num_samples``:
            points per noise level, i.e. twice the antithetic pairs, of the first stage;
            default 20 000, or :data:`FAST_PILOT_SAMPLES` = 2048 with ``target_rse``).
        progress: show a progress bar on stderr (only when it is a terminal).
        target_rse: Monte Carlo only: draw further stages of samples at the noise levels
            whose relative standard error is above this, until it is met or
            ``max_samples`` is reached, each level drawing the pairs its own variance so
            far asks for, plus 20 % (the stderr then reflects the samples drawn; with
            this sequential stopping it is a slightly optimistic estimate, checked against
            repeated runs in tests/test_any_dim.py).
        max_samples: cap of points per noise level with ``target_rse`` (default 4e6).

    Returns:
        :class:`~dsmtheory.expectations.Estimate` with ``(n,)`` value and stderr.
    """
    check_mixture(gm)
    s = _check_sigmas(sigmas)
    a = as_float_array(alphas, "alphas").reshape(-1)
    if a.shape != s.shape:
        raise ValueError(f"alphas must have the shape of sigmas {s.shape}, got {a.shape}")
    check_positive(a, "alphas")
    if target_rse is not None:
        target_rse = check_scalar(target_rse, "target_rse", positive=True)
    max_samples = 4_000_000 if max_samples is None else check_count(max_samples, "max_samples", 4)
    if _use_fast_rule(gm, method, num_nodes):
        if num_samples is None:
            n = expectations.DEFAULT_NUM_SAMPLES if target_rse is None else FAST_PILOT_SAMPLES
        else:
            n = check_count(num_samples, "num_samples", 2)
        deff, se, rule = _fast_deff(gm, a, s, key, n, target_rse, max_samples, progress)
        st2 = (s / a) ** 2
        return Estimate(deff * st2, se * st2, "monte_carlo", rule)
    if target_rse is not None:
        raise ValueError(
            "target_rse applies to Monte Carlo only (method='monte_carlo', or 'auto' in D > 3)"
        )
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
    import sys

    from tqdm.auto import tqdm

    show = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(
        bounds, desc=f"noise levels (D = {gm.dim})", unit="chunk", leave=False, disable=not show
    )


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
