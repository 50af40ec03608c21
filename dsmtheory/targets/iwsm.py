r"""Importance-weighted score matching (Wang et al. 2025, FORMULAS.md §3 item 16): spatial
importance weights $w=p_t/p_{B_t}$ for a proposal mixture $B$, self-normalised; see
:func:`iwsm_variance_comparison` for exactly what is compared.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import expectations
from .._validation import check_finite
from ..expectations import Estimate, ExpectationError
from ..mixture import GaussianMixture, check_mixture
from ._common import check_alpha_sigma, rotate_in, score_parts
from .order_k import target_trace_impl

__all__ = [
    "MIN_WEIGHT_ESS",
    "MAX_WEIGHT_RSE",
    "KL_ATOL",
    "ON_DEGENERATE",
    "IWSMComparison",
    "IWSMDegenerateError",
    "balanced_proposal",
    "iwsm_log_weights",
    "self_normalized_estimate",
    "iwsm_variance_comparison",
]


def _f64(v):
    return jnp.asarray(v, dtype=jnp.result_type(float))


def _check_proposal(gm, proposal):
    check_mixture(gm)
    check_mixture(proposal, "proposal")
    if proposal.dim != gm.dim:
        raise ValueError(
            f"proposal must have the same dimension as gm: proposal.dim = {proposal.dim}, "
            f"gm.dim = {gm.dim}"
        )


def iwsm_log_weights(gm: GaussianMixture, proposal: GaussianMixture, x_t, alpha, sigma):
    r"""Log spatial importance weights $\log w=\log p_t(x_t)-\log p_{B_t}(x_t)$ of IWSM
    (Wang et al. 2025; FORMULAS.md §3 item 16), both mixtures noised by the same
    $(\alpha,\sigma)$. ``(..., D)`` → ``(...)``."""
    _check_proposal(gm, proposal)
    check_alpha_sigma(alpha, sigma)
    return _log_w_jit(gm, proposal, gm.check_points(x_t, "x_t"), alpha, sigma)


@jax.jit
def _log_w_jit(gm, proposal, x_t, alpha, sigma):
    return gm.noised(alpha, sigma).log_prob(x_t) - proposal.noised(alpha, sigma).log_prob(x_t)


def self_normalized_estimate(log_weights, values) -> Estimate:
    r"""Self-normalised importance estimate $\hat F=\sum_iw_if_i/\sum_iw_i$ (weights by
    softmax of the log-weights), with the delta-method standard error
    $\sqrt{\sum_i\bar w_i^2(f_i-\hat F)^2}$, $\bar w=w/\sum w$ (FORMULAS.md §3 item 16)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    f = np.asarray(values, dtype=np.float64)
    if lw.shape != f.shape or lw.ndim != 1:
        raise ValueError(
            f"log_weights and values must be 1-D of equal length, got {lw.shape}, {f.shape}"
        )
    check_finite(lw, "log_weights")
    check_finite(f, "values")
    wn = np.exp(lw - lw.max())
    wn /= wn.sum()
    est = float(np.sum(wn * f))
    se = float(np.sqrt(np.sum(wn**2 * (f - est) ** 2)))
    return Estimate(est, se, "monte_carlo", f"self-normalised importance sampling, n={f.shape[0]}")


#: The reliability check of the Monte Carlo rule (see :func:`iwsm_variance_comparison`): the
#: draws' importance weights are *degenerate* when their Kish effective sample size is below
#: this many draws ...
MIN_WEIGHT_ESS = 100.0
#: ... or when the relative standard error of $\mathbb E_{p_t}[w]$ is above this bound, or
#: when a weight moment is not finite (float64 overflow of $w^2$ for $\log w>354$).
MAX_WEIGHT_RSE = 0.1
#: Absolute tolerance of ``kl_divergence`` under the deterministic rules (it tends to 0 at
#: high noise, where a relative tolerance cannot be met; only $e^{-\mathrm{KL}}$ is used).
KL_ATOL = 1e-12
#: What :func:`iwsm_variance_comparison` does with degenerate weights.
ON_DEGENERATE = ("raise", "nan")


class IWSMDegenerateError(ExpectationError):
    """The importance weights' Monte Carlo sample is degenerate: the weight-dependent
    variances of IWSM (``var_iwsm``, ``ess_fraction``) have no trustworthy estimate.

    The message gives the measured Kish effective sample size of the draws' weights, the
    relative standard error of $\\mathbb E_{p_t}[w]$, the thresholds and the Jensen bound
    $\\mathrm{ESS}/n\\le e^{-\\mathrm{KL}(p_t\\|p_{B_t})}$, which stays reliable.
    """


class IWSMComparison(NamedTuple):
    r"""Per-sample variances of three estimators of the same objective
    $F(t)=\mathbb E_{p_t}\|s_\theta-s^*\|^2$ for a fixed model $s_\theta$ at one noise level.

    Every value has its standard error in the ``*_stderr`` field of the same name (0 for the
    deterministic rules of $D\le2$, whose error is below their rtol 1e-10).

    Attributes:
        objective: $F$.
        irreducible: $R_1$ (the DSM loss estimates $F+R_1$; same θ-gradient).
        var_dsm: $\mathrm{Var}\|s_\theta(x_t)-h_1\|^2$, $x_0\sim p_0$ (plain DSM).
        var_sm: $\mathrm{Var}_{p_t}\|s_\theta-s^*\|^2$ (oracle: $x_t\sim p_t$, exact score).
        var_iwsm: $\mathbb E_{p_{B_t}}[w^2(f-F)^2]$, the asymptotic per-sample variance of the
            self-normalised IWSM estimator ($x_t\sim p_{B_t}$, exact score); NaN when
            ``degenerate``.
        ess_fraction: $1/\mathbb E_{p_{B_t}}[w^2]$, the effective sample size per draw; NaN
            when ``degenerate``.
        method: the engine's account of the rule.
        objective_stderr: standard error of ``objective`` (Monte Carlo rule; likewise below).
        irreducible_stderr: of ``irreducible``.
        var_dsm_stderr: of ``var_dsm``.
        var_sm_stderr: of ``var_sm``.
        var_iwsm_stderr: of ``var_iwsm``.
        ess_fraction_stderr: of ``ess_fraction``.
        kl_divergence: $\mathrm{KL}(p_t\|p_{B_t})=\mathbb E_{p_t}[\log w]$; by Jensen
            ``ess_fraction`` $\le e^{-\mathrm{KL}}$ always, a bound whose Monte Carlo
            estimate stays reliable when the weights are degenerate ($\log w$ grows only
            quadratically).
        kl_divergence_stderr: its standard error.
        weight_ess: Kish effective sample size of the Monte Carlo draws' weights,
            $n\,\hat{\mathbb E}[w]^2/\hat{\mathbb E}[w^2]$ ($x\sim p_t$, $n$ draws); ``inf``
            for the deterministic rules.
        degenerate: the reliability check failed (only with ``on_degenerate="nan"``).
    """

    objective: float
    irreducible: float
    var_dsm: float
    var_sm: float
    var_iwsm: float
    ess_fraction: float
    method: str
    objective_stderr: float = 0.0
    irreducible_stderr: float = 0.0
    var_dsm_stderr: float = 0.0
    var_sm_stderr: float = 0.0
    var_iwsm_stderr: float = 0.0
    ess_fraction_stderr: float = 0.0
    kl_divergence: float = float("nan")
    kl_divergence_stderr: float = 0.0
    weight_ess: float = float("inf")
    degenerate: bool = False

    def estimate(self, name: str) -> Estimate:
        """The field ``name`` with its standard error, as an :class:`Estimate`."""
        if name not in _VALUE_FIELDS:
            raise ValueError(f"name must be one of {_VALUE_FIELDS}, got {name!r}")
        se = getattr(self, name + "_stderr")
        kind = "monte_carlo" if np.isfinite(self.weight_ess) else "deterministic"
        return Estimate(getattr(self, name), se, kind, self.method)


_VALUE_FIELDS = ("objective", "irreducible", "var_dsm", "var_sm", "var_iwsm", "ess_fraction",
                 "kl_divergence")  # fmt: skip


def _gaussian_fit(gm: GaussianMixture) -> GaussianMixture:
    c = np.asarray(gm.covariance())
    c = 0.5 * (c + c.T)  # symmetric to rounding
    return GaussianMixture([1.0], np.asarray(gm.mean())[None], c[None])


def balanced_proposal(gm: GaussianMixture) -> GaussianMixture:
    r"""The mode-balancing proposal: every component of ``gm`` with equal weights $1/K$.

    Its weights are bounded, $w=p_t/p_{B_t}=\sum_k\pi_kN_k/\sum_k K^{-1}N_k\le K\max_k\pi_k$
    at every noise level and in every dimension, so $\mathrm{ESS}/n\ge1/(K\max_k\pi_k)^2$
    and the Monte Carlo moments of $w$ are as reliable as those of $f$. This is IWSM's
    mode-balancing use (Wang et al. 2025, FORMULAS.md §3 item 16): rare modes sampled as
    often as common ones. The default proposal of ``dsmtheory targets`` for $D>2$.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> b = dsm.targets.balanced_proposal(dsm.GaussianMixture([0.9, 0.1], [[0.0], [3.0]],
        ...                                                       [1.0, 1.0]))
        >>> tuple(round(float(v), 3) for v in b.weights)
        (0.5, 0.5)
    """
    check_mixture(gm)
    children, aux = gm.tree_flatten()
    if children[0] is not gm.log_weights:  # every kind stores log-weights first
        raise TypeError(f"gm: unsupported mixture kind {gm.kind!r}")
    k = gm.num_components
    lw = jnp.full((k,), -np.log(k), dtype=gm.log_weights.dtype)
    return type(gm).tree_unflatten(aux, (lw, *children[1:]))


def iwsm_variance_comparison(
    gm: GaussianMixture,
    proposal: GaussianMixture,
    alpha,
    sigma,
    *,
    model: GaussianMixture | None = None,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    grid_size: int | None = None,
    on_degenerate: str = "raise",
) -> IWSMComparison:
    r"""Variance comparison of IWSM against plain DSM at one noise level (Wang et al.
    2025; FORMULAS.md §3 item 16), every integral over $x_t\sim p_t$ by the engine.

    The fixed model is $s_\theta=\nabla\log(\text{model noised by }(\alpha,\sigma))$, by
    default the moment-matched Gaussian of ``gm``. With $f(x)=\|s_\theta(x)-s^*(x)\|^2$ and
    $w=p_t/p_{B_t}$:

    * plain DSM: $\mathrm{Var}\|s_\theta(x_t)-h_1\|^2$ over $x_0\sim p_0,\varepsilon$, from
      the closed form per posterior component $k$: with $v=s_\theta-u\sim N(m_k,C_k)$,
      $\mathbb E[(\|v\|^2-c)^2]=(\|m_k\|^2+\mathrm{tr}C_k-c)^2+4m_k^\top C_km_k+2\,\mathrm{tr}C_k^2$
      ($c=F+R_1$), integrated over $x_t$;
    * IWSM (self-normalised, exact score, $x_t\sim p_{B_t}$):
      $\mathbb E_{p_t}[w(f-F)^2]=\int p_t^2(f-F)^2/p_{B_t}\,dx$, and
      $\mathrm{ESS}/n=1/\mathbb E_{p_t}[w]$;
    * oracle SM: $\mathbb E_{p_t}[(f-F)^2]$.

    Rules. ``method="auto"``: in $D\le2$ the engine's adaptive cubature (rtol 1e-10, as
    before: two passes, the second needs $F$; the Monte Carlo sanity check is off for the
    weight terms, whose Monte Carlo variance is infinite when the proposal is narrower than
    $p_t$); in $D>2$, and for ``method="monte_carlo"`` in any $D$, the engine's stratified
    Monte Carlo rule (``num_samples`` draws, default 20 000, stratified over the components
    of $p_t$): a first pass for $F$ and $R_1$, then a second on independent draws
    (``fold_in(key, 1)``) for the centred moments $(f-\hat F)^2$, $w(f-\hat F)^2$, the DSM
    fourth moment above, $w$, $w^2$ and $\log w$ (common draws for all of them). Standard
    errors: the second pass's, plus for ``var_iwsm`` the independent first-order term
    $2\,|\mathbb E_{p_t}[w(f-F)]|\,\mathrm{se}(\hat F)$ (and its analogue for ``var_sm``,
    of second order there; the DSM moment is stationary in $c$); ``ess_fraction`` by the
    delta method, $\mathrm{se}(\hat W)/\hat W^2$. ``"adaptive"`` and ``"gauss_hermite"``
    force those rules.

    Reliability check (Monte Carlo rule only). $\hat{\mathbb E}_{p_t}[w]$ is a plain mean of
    $w$ over $x\sim p_t$, and $w$ can span $e^{\pm\text{hundreds}}$ in high $D$ when the
    proposal misses components; such a mean (and its standard error) is then set by the
    few largest draws and is not trustworthy. The weights are *degenerate* when their Kish
    effective sample size $n\hat{\mathbb E}[w]^2/\hat{\mathbb E}[w^2]$ is below
    :data:`MIN_WEIGHT_ESS` (100 draws), or the relative standard error of
    $\hat{\mathbb E}[w]$ exceeds :data:`MAX_WEIGHT_RSE` (0.1), or a weight moment is not
    finite. Then ``on_degenerate="raise"`` (default) raises :class:`IWSMDegenerateError`
    with the measured ESS; ``on_degenerate="nan"`` returns ``var_iwsm``, ``ess_fraction``
    and their standard errors as NaN with ``degenerate=True`` (the other fields, the
    measured ``weight_ess`` and the bound ``ess_fraction`` $\le e^{-\mathrm{KL}}$ are
    returned as computed). The check does not prove a passing estimate right (a heavy tail
    not yet sampled can hide from any finite sample); a proposal that keeps every component,
    such as :func:`balanced_proposal`, has bounded weights and no such risk.

    Args:
        gm: the data mixture $p_0$.
        proposal: the proposal ("buffer") mixture $B$, same dimension.
        alpha, sigma: the noise level, positive.
        model: the fixed model's mixture (default: moment-matched Gaussian of ``gm``).
        method: ``"auto"``, ``"adaptive"``, ``"gauss_hermite"`` or ``"monte_carlo"``.
        key: Monte Carlo key (``None``: ``PRNGKey(0)``).
        num_samples: Monte Carlo draws per pass (plus two per component).
        grid_size: deprecated and ignored.
        on_degenerate: ``"raise"`` or ``"nan"`` (see above).

    Returns:
        :class:`IWSMComparison`.

    Raises:
        ValueError: bad input, naming the argument (a proposal of another dimension,
            α or σ ≤ 0, an unknown ``method`` or ``on_degenerate``).
        IWSMDegenerateError: degenerate weights with ``on_degenerate="raise"``.

    Example:
        >>> import dsmtheory as dsm
        >>> dsm.enable_x64()
        >>> gm = dsm.random_anisotropic(seed=0, num_components=3, dim=4)
        >>> c = dsm.targets.iwsm_variance_comparison(gm, gm, 1.0, 0.5, num_samples=2000)
        >>> c.var_iwsm == c.var_sm, round(c.ess_fraction, 12)
        (True, 1.0)
    """
    _check_proposal(gm, proposal)
    check_alpha_sigma(alpha, sigma)
    if model is None:
        model = _gaussian_fit(gm)
    _check_proposal(gm, model)
    method = expectations.resolve_method(method)
    if on_degenerate not in ON_DEGENERATE:
        raise ValueError(f"on_degenerate must be one of {ON_DEGENERATE}, got {on_degenerate!r}")
    if grid_size is not None:
        warnings.warn(
            "grid_size is deprecated and ignored: the engine's rules replace the grid",
            DeprecationWarning,
            stacklevel=2,
        )
    alpha, sigma = _f64(alpha), _f64(sigma)
    if method == "monte_carlo" or (method == "auto" and gm.dim > 2):
        return _monte_carlo_comparison(
            gm, proposal, model, alpha, sigma, key, num_samples, on_degenerate
        )
    law = gm.noised(alpha, sigma)
    opts = {"method": method, "key": key, "num_samples": num_samples}
    args = (alpha, sigma, gm, proposal, model)
    first = expectations.expect(_iwsm_first, law, args, **opts)
    f_mean, r1, m4, f2 = (float(v) for v in first.value)
    second = expectations.expect(
        _iwsm_weighted, law, (*args, _f64(f_mean)), sanity_check=False, **opts
    )
    w1, iw = (float(v) for v in second.value)
    # KL -> 0 at high noise, where 1e-10 relative is out of reach: KL_ATOL absolute
    kl = expectations.expect(_iwsm_log_w, law, (alpha, sigma, gm, proposal), atol=KL_ATOL, **opts)
    return IWSMComparison(
        f_mean,
        r1,
        m4 - (f_mean + r1) ** 2,
        f2 - f_mean**2,
        iw,
        1.0 / w1,
        first.rule,
        kl_divergence=float(kl.value),
        kl_divergence_stderr=float(kl.stderr),
    )


def _monte_carlo_comparison(gm, proposal, model, alpha, sigma, key, num_samples, on_degenerate):
    rng, kdesc = expectations.resolve_key(key)
    n = expectations.DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    law = gm.noised(alpha, sigma)
    opts = {"method": "monte_carlo", "num_samples": num_samples}
    first = expectations.expect(
        _mc_first, law, (alpha, sigma, gm, model), key=jax.random.fold_in(rng, 0), **opts
    )
    (f_hat, r1), (f_se, r1_se) = first.value, first.stderr
    args = (alpha, sigma, gm, proposal, model, _f64(f_hat), _f64(f_hat + r1))
    with np.errstate(over="ignore", invalid="ignore"):  # w^2 may overflow: checked below
        second = expectations.expect(_mc_second, law, args, key=jax.random.fold_in(rng, 1), **opts)
    (w, w2, iw, wdev, sm, dsm_v, kl, fdev), se = second.value, second.stderr
    w_se, _, iw_se, _, sm_se, dsm_se, kl_se, _ = se
    n_total = n + 2 * gm.num_components
    with np.errstate(all="ignore"):
        ess = float(n_total * w * w / w2) if np.isfinite(w2) and w2 > 0 else 0.0
        rse = float(w_se / w) if w > 0 else float("inf")
    finite = bool(np.all(np.isfinite([w, w2, iw, w_se, iw_se])))
    degenerate = not (finite and ess >= MIN_WEIGHT_ESS and rse <= MAX_WEIGHT_RSE)
    if degenerate and on_degenerate == "raise":
        raise IWSMDegenerateError(
            f"iwsm_variance_comparison: the importance weights w = p_t/p_B are degenerate at "
            f"alpha = {float(alpha):.4g}, sigma = {float(sigma):.4g}: over {n_total} Monte "
            f"Carlo draws x ~ p_t their effective sample size is {ess:.3g} "
            f"(needs >= {MIN_WEIGHT_ESS:g}) and the relative standard error of E[w] is "
            f"{rse:.3g} (needs <= {MAX_WEIGHT_RSE:g}), so var_iwsm and ess_fraction have no "
            f"trustworthy estimate; KL(p_t || p_B) = {kl:.4g} +- {kl_se:.2g}, so the IWSM "
            f"effective sample fraction is at most exp(-KL) = {np.exp(-kl):.3g}. A proposal "
            "keeping every component (balanced_proposal) has bounded weights; "
            "on_degenerate='nan' returns NaN for the affected fields instead"
        )
    if degenerate:
        iw = iw_se = ess_f = ess_se = float("nan")
    else:
        # F enters var_iwsm at first order (E_pt[w (f - F)] != 0 in general); F-hat comes
        # from independent draws, so its error adds in quadrature
        iw_se = float(np.hypot(iw_se, 2.0 * abs(wdev) * f_se))
        ess_f, ess_se = float(1.0 / w), float(w_se / w**2)
    # the same term for var_sm (there E[f - F] = 0, so it is of second order)
    sm_se = float(np.hypot(sm_se, 2.0 * abs(fdev) * f_se))
    rule = (
        f"{second.rule}; two passes on independent draws (F and R1, then the centred "
        f"moments; {kdesc}, folded in with 0 and 1); weight ESS {ess:.4g} of {n_total} draws"
    )
    return IWSMComparison(
        float(f_hat), float(r1), float(dsm_v), float(sm), float(iw), ess_f, rule,
        objective_stderr=float(f_se), irreducible_stderr=float(r1_se),
        var_dsm_stderr=float(dsm_se), var_sm_stderr=float(sm_se), var_iwsm_stderr=iw_se,
        ess_fraction_stderr=ess_se, kl_divergence=float(kl), kl_divergence_stderr=float(kl_se),
        weight_ess=ess, degenerate=degenerate,
    )  # fmt: skip


def _iwsm_parts(x, alpha, sigma, gm, proposal, model):
    pt = gm.noised(alpha, sigma)
    bt = proposal.noised(alpha, sigma)
    mt = model.noised(alpha, sigma)
    lp = pt.log_prob(x)
    d = mt.score(x)
    s = pt.score(x)
    f = jnp.sum((d - s) ** 2, -1)
    w = jnp.exp(lp - bt.log_prob(x))
    return f, d, w


def _iwsm_first(x, alpha, sigma, gm, proposal, model):
    """Per point: f, tr Var(h1|x), E[||s_theta - u||^4 | x] and f^2 (``(B, 4)``)."""
    f, d, w = _iwsm_parts(x, alpha, sigma, gm, proposal, model)
    r, g, c = score_parts(gm, x, alpha, sigma)
    trv = target_trace_impl(gm, x, alpha, sigma, 1)
    mres = d[..., None, :] - g  # (B, K, D): mean of s_theta - u in component k
    mr = rotate_in(gm, mres)
    trc = jnp.sum(c, -1)
    m2 = jnp.sum(mres**2, -1)
    e4 = (m2 + trc[None]) ** 2 + 4 * jnp.sum(mr * mr * c[None], -1) + 2 * jnp.sum(c * c, -1)[None]
    e4 = jnp.sum(r * e4, -1)
    return jnp.stack([f, trv, e4, f * f], axis=-1)


def _iwsm_weighted(x, alpha, sigma, gm, proposal, model, f_mean):
    """Per point: w and w (f - F)^2 (centred, so nothing cancels), ``(B, 2)``."""
    f, _, w = _iwsm_parts(x, alpha, sigma, gm, proposal, model)
    return jnp.stack([w, w * (f - f_mean) ** 2], axis=-1)


def _iwsm_log_w(x, alpha, sigma, gm, proposal):
    """Per point: log w (the KL integrand)."""
    return gm.noised(alpha, sigma).log_prob(x) - proposal.noised(alpha, sigma).log_prob(x)


def _mc_first(x, alpha, sigma, gm, model):
    """Per point: f and tr Var(h1 | x) (``(B, 2)``)."""
    f = jnp.sum((model.noised(alpha, sigma).score(x) - gm.noised(alpha, sigma).score(x)) ** 2, -1)
    return jnp.stack([f, target_trace_impl(gm, x, alpha, sigma, 1)], axis=-1)


def _mc_second(x, alpha, sigma, gm, proposal, model, f_mean, c):
    """Per point, centred so nothing cancels: w, w^2, w (f - F)^2, w (f - F), (f - F)^2,
    E[(||s_theta - u||^2 - c)^2 | x], log w and f - F (``(B, 8)``)."""
    pt = gm.noised(alpha, sigma)
    lw = pt.log_prob(x) - proposal.noised(alpha, sigma).log_prob(x)
    w = jnp.exp(lw)
    d = model.noised(alpha, sigma).score(x)
    dev = jnp.sum((d - pt.score(x)) ** 2, -1) - f_mean
    r, g, cv = score_parts(gm, x, alpha, sigma)
    mres = d[..., None, :] - g  # (B, K, D): mean of s_theta - u in component k
    mr = rotate_in(gm, mres)
    mu = jnp.sum(mres**2, -1) + jnp.sum(cv, -1)[None]  # E[||s_theta - u||^2 | x, k]
    e4 = (mu - c) ** 2 + 4 * jnp.sum(mr * mr * cv[None], -1) + 2 * jnp.sum(cv * cv, -1)[None]
    e4 = jnp.sum(r * e4, -1)
    return jnp.stack([w, w * w, w * dev**2, w * dev, dev**2, e4, lw, dev], axis=-1)
