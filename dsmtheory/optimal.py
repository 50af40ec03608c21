r"""The variance-optimal weighting of denoising score matching: $c^*(t)$ in
$\Lambda(t)=c(t)\,\sigma_t^2$, the matrix-optimal weight $W^*$, residual variances per noise
level, and the importance-sampling optimum over noise levels (FORMULAS.md §3.15, §5 P9,
P11, P14, P16, §6).

Conventions: $x_t=\alpha x_0+\sigma\varepsilon$, conditional score
$s_c=-\varepsilon/\sigma$, true score $s^*=\nabla\log p_t$, and

$$C_t(x_t)=\mathrm{Cov}(s_c\mid x_t)=\frac{\alpha^2}{\sigma^4}\mathrm{Cov}(x_0\mid x_t),\qquad
R(t)=\mathrm{tr}\,\mathbb E\,C_t=\frac{D}{\sigma^2}-\mathrm{tr}\,I_t
=\frac{\alpha^2}{\sigma^4}\,\mathrm{mmse}(t).$$

Everything here is computed from the closed-form Tweedie posterior covariance
(:func:`dsmtheory.posterior_cov_trace`), averaged over $x_t$ by per-component
Gauss–Hermite quadrature (``D <= 3``) or by Rao–Blackwellized Monte Carlo, so $c^*$ never
suffers the cancellation of $D/\sigma^2-\mathrm{tr}I_t$ at small σ.

Because $\mathrm{Cov}(x_0\mid x_t)$ depends on $(\alpha,\sigma)$ only through
$\tilde\sigma=\sigma/\alpha=e^{-\lambda/2}$, $c^*$ is a function of $\lambda$ alone: it is
the same for VE and VP processes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import (
    check_choice,
    check_count,
    check_finite,
    check_mixture,
    check_positive,
    is_concrete,
)
from .mixture import GaussianMixture, posterior_cov, posterior_cov_trace

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

_METHODS = ("auto", "quadrature", "monte_carlo")
# Gauss-Hermite nodes per axis and component, by dimension. Measured against
# scipy.integrate.quad on the default mixtures (see tests/test_optimal.py): relative error
# ~1e-8 in 1-D with 200 nodes, ~1e-6 in 2-D with 80 nodes/axis.
_DEFAULT_NODES = {1: 200, 2: 80, 3: 24}
_DEFAULT_MC = 20_000


class Estimate(NamedTuple):
    """A computed quantity with its standard error.

    Attributes:
        value: the estimate (scalar or array).
        stderr: Monte Carlo standard error (0 for quadrature).
        method: ``"quadrature"`` (per-component Gauss–Hermite, with ``rule`` nodes/axis) or
            ``"monte_carlo"`` (Rao–Blackwellized, ``rule`` samples).
        rule: number of Gauss–Hermite nodes per axis, or of Monte Carlo samples.
    """

    value: jax.Array | float
    stderr: jax.Array | float
    method: str
    rule: int


# ---------------------------------------------------------------------------------------
# Expectations over x_t
# ---------------------------------------------------------------------------------------
def _gh_nodes(dim: int, n: int):
    """Tensor-product Gauss–Hermite nodes ``(n^D, D)`` and weights for E over N(0, I)."""
    z, w = np.polynomial.hermite.hermgauss(n)
    z = z * math.sqrt(2.0)
    w = w / math.sqrt(math.pi)
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    wg = np.meshgrid(*([w] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    weights = np.prod(np.stack([g.ravel() for g in wg], axis=-1), axis=-1)
    return jnp.asarray(nodes), jnp.asarray(weights)


def _component_nodes(gm: GaussianMixture, alpha, sigma, n: int):
    r"""Quadrature points ``(K, M, D)`` and weights ``(K, M)`` (including mixture weights)
    for expectations over $x_t\sim$ ``gm.noised(alpha, sigma)``."""
    z, w = _gh_nodes(gm.dim, n)
    et = alpha**2 * gm.eigvals + sigma**2  # (K, D)
    scaled = jnp.sqrt(et)[:, None, :] * z[None, :, :]  # (K, M, D)
    rot = jnp.einsum("kde,kme->kmd", gm.eigvecs, scaled)
    pts = alpha * gm.means[:, None, :] + rot
    return pts, gm.weights[:, None] * w[None, :]


def _resolve(gm, method, num_samples, num_nodes, key):
    check_choice("method", method, _METHODS)
    if method == "auto":
        method = "quadrature" if gm.dim <= 3 else "monte_carlo"
    if method == "quadrature":
        if gm.dim > 3:
            raise ValueError(f"method='quadrature' needs dim <= 3, got dim {gm.dim}")
        n = _DEFAULT_NODES[gm.dim] if num_nodes is None else num_nodes
        check_count(n, "num_nodes")
        return method, int(n)
    n = _DEFAULT_MC if num_samples is None else num_samples
    check_count(n, "num_samples")
    if n < 2:
        raise ValueError(f"num_samples must be >= 2, got {n}")
    if key is None:
        raise ValueError("key is required for method='monte_carlo' (a jax.random key)")
    return method, int(n)


def _expect(gm, alpha, sigma, f, method, rule, key):
    """E[f(x_t)] with x_t ~ gm.noised(alpha, sigma); f maps (..., D) to (...) values.

    Returns (value, stderr)."""
    if method == "quadrature":
        pts, w = _component_nodes(gm, alpha, sigma, rule)
        return jnp.sum(w * f(pts)), jnp.zeros(())
    k0, k1 = jax.random.split(key)
    x0 = gm.sample(k0, rule)
    eps = jax.random.normal(k1, x0.shape, dtype=x0.dtype)
    vals = f(alpha * x0 + sigma * eps)
    return jnp.mean(vals), jnp.std(vals, ddof=1) / math.sqrt(rule)


def _check_scalar_pos(x, name):
    if is_concrete(x):
        if np.ndim(x) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {np.shape(x)}")
        check_positive(x, name)


def expected_posterior_trace(
    gm: GaussianMixture,
    alpha,
    sigma,
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""$\mathrm{mmse}(t)=\mathbb E_{x_t}\,\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)$, averaged
    from the closed-form posterior covariance (Rao–Blackwellized).

    FORMULAS.md §4: $R(t)=\frac{\alpha^2}{\sigma^4}\mathrm{mmse}(t)$.

    Args:
        gm: the clean mixture.
        alpha, sigma: scalars > 0.
        method: ``"auto"`` (quadrature for D <= 3), ``"quadrature"`` or ``"monte_carlo"``.
        key: JAX PRNG key (Monte Carlo only).
        num_samples: Monte Carlo sample count (default 20000).
        num_nodes: Gauss–Hermite nodes per axis and component (default 200/80/24 for
            D = 1/2/3).

    Returns:
        :class:`Estimate` with a scalar value.

    Raises:
        ValueError: for σ ≤ 0, α ≤ 0, an unknown method or a missing key.
    """
    check_mixture(gm)
    _check_scalar_pos(alpha, "alpha")
    _check_scalar_pos(sigma, "sigma")
    method, rule = _resolve(gm, method, num_samples, num_nodes, key)
    value, se = _expect(
        gm, alpha, sigma, lambda x: posterior_cov_trace(gm, x, alpha, sigma), method, rule, key
    )
    return Estimate(value, se, method, rule)


def fisher_trace(
    gm: GaussianMixture,
    *,
    method: str = "auto",
    key=None,
    num_samples: int | None = None,
    num_nodes: int | None = None,
) -> Estimate:
    r"""$\mathrm{tr}\,I=\mathbb E_{x\sim p}\|\nabla\log p(x)\|^2$ of ``gm``'s own density
    (pass ``gm.noised(alpha, sigma)`` for a noise level). FORMULAS.md §4.

    An own quadrature (the same rule as :func:`expected_posterior_trace`) so that the
    identity $R=D/\sigma^2-\mathrm{tr}I_t=\alpha^2\mathrm{mmse}/\sigma^4$ (P12) can be
    checked between two independent computations.
    """
    check_mixture(gm)
    method, rule = _resolve(gm, method, num_samples, num_nodes, key)
    one = jnp.ones((), dtype=gm.means.dtype)

    def f(x):
        return jnp.sum(gm.score(x) ** 2, axis=-1)

    if method == "quadrature":
        value, se = _expect(gm, one, 0.0 * one, f, method, rule, key)
    else:
        x = gm.sample(key, rule)
        vals = f(x)
        value, se = jnp.mean(vals), jnp.std(vals, ddof=1) / math.sqrt(rule)
    return Estimate(value, se, method, rule)


def small_noise_fisher(gm: GaussianMixture, **kw) -> float:
    r"""$J_0=\mathrm{tr}\,I_0/D$, the coefficient of P9: $c^*-1\sim\sigma^2J_0$ as σ → 0."""
    est = fisher_trace(gm, **kw)
    return float(est.value) / gm.dim


# ---------------------------------------------------------------------------------------
# c*(t): homoskedastic irreducible noise (criterion (c))
# ---------------------------------------------------------------------------------------
def homoskedastic_multiplier(gm: GaussianMixture, alpha, sigma, **kw) -> Estimate:
    r"""$c^*(t)$ making the weighted irreducible noise $\Lambda R$ constant over t.

    $$c^*=\frac{1}{1-\sigma^2\,\mathrm{tr}I_t/D}=\frac{D}{\sigma^2R(t)}
    =\frac{D\,\sigma^2}{\alpha^2\,\mathrm{mmse}(t)},$$

    computed from the last form (no cancellation at small σ). Properties: $c^*\ge1$,
    $c^*\to1$ as σ → 0 with $c^*-1\sim\sigma^2J_0$ (P9), and $c^*=1+\sigma^2/s^2$ for VE
    Gaussian data of std s (EDM with $\sigma_d=s$, P14). Zhang et al. 2025 (scalar
    optimum, rebuilt); FORMULAS.md §3.15, §6(c).

    Args:
        gm: the clean mixture. alpha, sigma: scalars > 0.
        **kw: ``method``, ``key``, ``num_samples``, ``num_nodes`` as in
            :func:`expected_posterior_trace`.

    Returns:
        :class:`Estimate`; for Monte Carlo the stderr is propagated by the delta method,
        $\mathrm{se}(c^*)=c^*\,\mathrm{se}(\mathrm{mmse})/\mathrm{mmse}$.

    Example:
        >>> float(homoskedastic_multiplier(dsm.bimodal_1d(), 1.0, 0.25).value)  # ≈ 2.000
    """
    est = expected_posterior_trace(gm, alpha, sigma, **kw)
    c = gm.dim * sigma**2 / (alpha**2 * est.value)
    return Estimate(c, c * est.stderr / est.value, est.method, est.rule)


def score_weight(gm: GaussianMixture, alpha, sigma, **kw) -> Estimate:
    r"""$\Lambda^*(t)=\sigma^2c^*(t)=D/\mathrm{tr}\,\mathbb E\,C_t$, the scalar
    inverse-variance score-loss weight (FORMULAS.md §3.15)."""
    c = homoskedastic_multiplier(gm, alpha, sigma, **kw)
    return Estimate(sigma**2 * c.value, sigma**2 * c.stderr, c.method, c.rule)


def _alpha_of(sigmas, process):
    check_choice("process", process, ("ve", "vp"))
    if process == "ve":
        return jnp.ones_like(sigmas)
    if is_concrete(sigmas) and np.any(np.asarray(sigmas) >= 1.0):
        raise ValueError("sigmas must be < 1 for process='vp' (alpha^2 + sigma^2 = 1)")
    return jnp.sqrt(1.0 - sigmas**2)


def c_star_curve(
    gm: GaussianMixture, sigmas, process: str = "ve", *, num_nodes: int | None = None
) -> jax.Array:
    r"""$c^*(\sigma)$ on a grid of σ, vectorised (quadrature; D <= 3).

    Args:
        gm: the clean mixture.
        sigmas: ``(n,)`` noise levels > 0 (< 1 for VP).
        process: ``"ve"`` (α = 1) or ``"vp"`` (α = √(1 − σ²)).
        num_nodes: Gauss–Hermite nodes per axis.

    Returns:
        ``(n,)`` values of $c^*=D\sigma^2/(\alpha^2\mathrm{mmse})$.
    """
    check_mixture(gm)
    sigmas = jnp.atleast_1d(jnp.asarray(sigmas, dtype=gm.means.dtype))
    check_positive(sigmas, "sigmas")
    alphas = _alpha_of(sigmas, process)
    _, rule = _resolve(gm, "quadrature", None, num_nodes, None)
    return _c_star_batch(gm, alphas, sigmas, rule)


def c_star_of_lambda(gm: GaussianMixture, lam, *, num_nodes: int | None = None) -> jax.Array:
    r"""$c^*(\lambda)$ (the same for every process: it depends on $\tilde\sigma=e^{-\lambda/2}$
    only), ``(n,)`` → ``(n,)``."""
    check_mixture(gm)
    lam = jnp.atleast_1d(jnp.asarray(lam, dtype=gm.means.dtype))
    check_finite(lam, "lam")
    _, rule = _resolve(gm, "quadrature", None, num_nodes, None)
    sig = jnp.exp(-0.5 * lam)
    return _c_star_batch(gm, jnp.ones_like(sig), sig, rule)


def _c_star_batch(gm, alphas, sigmas, rule):
    return _c_star_kernel(gm, alphas, sigmas, rule)


@jax.jit
def _c_star_one(gm, a, s, z, w):
    et = a**2 * gm.eigvals + s**2
    pts = a * gm.means[:, None, :] + jnp.einsum(
        "kde,kme->kmd", gm.eigvecs, jnp.sqrt(et)[:, None, :] * z[None, :, :]
    )
    mmse = jnp.sum(gm.weights[:, None] * w[None, :] * posterior_cov_trace(gm, pts, a, s))
    return gm.dim * s**2 / (a**2 * mmse)


def _c_star_kernel(gm, alphas, sigmas, rule):
    z, w = _gh_nodes(gm.dim, rule)
    # a Python-level loop in chunks would also do; vmap keeps it one compiled call
    return jax.vmap(_c_star_one, in_axes=(None, 0, 0, None, None))(gm, alphas, sigmas, z, w)


# ---------------------------------------------------------------------------------------
# The `optimal` registry weighting
# ---------------------------------------------------------------------------------------
class OptimalWeighting:
    r"""The ε-space weighting $\omega_\varepsilon(\lambda)=c^*(\lambda)$ (score-space
    $\Lambda=\sigma^2c^*$) for one mixture, tabulated on a λ grid and interpolated in λ
    (linear in $\log c^*$). Outside the grid it follows the exact asymptotes:
    $c^*-1\propto e^{-\lambda}$ for λ → +∞ (P9) and $c^*\propto e^{-\lambda}$ for
    λ → −∞ (mmse → tr Cov(x₀)).

    Call it on λ: ``w(lam) -> omega_eps``; ``w.total(lam, density)`` is KG's
    $w=p\,\omega_\varepsilon$.
    """

    name = "optimal"

    def __init__(self, gm, process="ve", lam_min=-16.0, lam_max=16.0, num_grid=513, num_nodes=None):
        check_mixture(gm)
        check_choice("process", process, ("ve", "vp"))
        check_count(num_grid, "num_grid")
        if num_grid < 2:
            raise ValueError(f"num_grid must be >= 2, got {num_grid}")
        if not float(lam_min) < float(lam_max):
            raise ValueError(f"lam_min must be < lam_max, got {lam_min} and {lam_max}")
        self.gm = gm
        self.process = process
        self.grid = jnp.linspace(float(lam_min), float(lam_max), int(num_grid))
        self.log_c = jnp.log(c_star_of_lambda(gm, self.grid, num_nodes=num_nodes))
        self.params = {"gm": gm, "process": process}

    def __call__(self, lam) -> jax.Array:
        lam = jnp.asarray(lam, dtype=self.grid.dtype)
        if is_concrete(lam):
            check_finite(lam, "lam")
        lo, hi = self.grid[0], self.grid[-1]
        inside = jnp.interp(lam, self.grid, self.log_c)
        c_hi = jnp.exp(self.log_c[-1])
        above = jnp.log1p((c_hi - 1.0) * jnp.exp(-(jnp.maximum(lam, hi) - hi)))
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
            ``num_nodes`` of its quadrature.

    Returns:
        A :class:`dsmtheory.weightings.Weighting` (or the bare :class:`OptimalWeighting`
        table when the registry module is unavailable).
    """
    if gm is None:
        from .mixture import bimodal_1d

        gm = bimodal_1d()
    table = OptimalWeighting(gm, process, **kw)
    try:
        from .weightings import Weighting
    except ImportError:  # pragma: no cover - registry not built
        return table
    from types import MappingProxyType

    return Weighting(
        name="optimal",
        params=MappingProxyType({"gm": gm, "process": process, **kw}),
        formula=r"\omega_\varepsilon(\lambda)=c^*(\lambda)=\frac{D\tilde\sigma^2}"
        r"{\mathrm{mmse}(\tilde\sigma)},\ \tilde\sigma=e^{-\lambda/2}",
        paper="Zhang et al. 2025 (2508.01597), scalar inverse-variance optimum (rebuilt)",
        formulas_item="FORMULAS.md §3.15, §6(c)",
        monotonic=None,
        fn=table,
    )


def _register():
    try:
        from . import weightings
    except ImportError:  # the registry module is not built yet
        return
    register = getattr(weightings, "register", None)
    if register is None:  # pragma: no cover
        return
    register("optimal", optimal_weighting, overwrite=True)


_register()


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
    from . import weightings

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
    _check_scalar_pos(alpha, "alpha")
    _check_scalar_pos(sigma, "sigma")
    inv, _ = _inv_psd(posterior_cov(gm, x_t, alpha, sigma))
    return (sigma**4 / alpha**2) * inv


def matrix_weight_trace(gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""$\mathrm{tr}\,W^*(x_t)=\frac{\sigma^4}{\alpha^2}\sum_i 1/e_i$ over the eigenvalues
    $e_i$ of $\mathrm{Cov}(x_0\mid x_t)$. ``(..., D)`` → ``(...)``."""
    check_mixture(gm)
    _check_scalar_pos(alpha, "alpha")
    _check_scalar_pos(sigma, "sigma")
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


def residual_variance(
    gm: GaussianMixture, alpha, sigma, weight="matrix", *, num_nodes: int | None = None
) -> ResidualVariance:
    r"""Residual (label-noise) variance of a score-loss weighting at one noise level,
    exactly from the closed forms (P16, sharpened).

    Args:
        gm: the clean mixture (D <= 3). alpha, sigma: scalars > 0.
        weight: ``"matrix"`` for $W^*=C_t^{-1}$, or a scalar score-space weight $\Lambda>0$
            (e.g. $\sigma^2$, $\sigma^2c^*$, $\sigma^2\omega_\varepsilon$).

    Returns:
        :class:`ResidualVariance`. For $\Lambda=\sigma^2$: raw $=\sigma^2-\sigma^4J_t$;
        for $W^*$: raw $=\mathbb E\mathrm{tr}C^{-1}/D\approx\sigma^2+\sigma^4J$.
    """
    check_mixture(gm)
    _check_scalar_pos(alpha, "alpha")
    _check_scalar_pos(sigma, "sigma")
    _, rule = _resolve(gm, "quadrature", None, num_nodes, None)
    pts, w = _component_nodes(gm, alpha, sigma, rule)
    d = gm.dim
    if isinstance(weight, str):
        if weight != "matrix":
            raise ValueError(f"weight must be 'matrix' or a positive scalar, got {weight!r}")
        tr_winv = jnp.sum(w * matrix_weight_trace(gm, pts, alpha, sigma))
        raw = float(tr_winv) / d
        return ResidualVariance(raw, raw, 1.0 / raw)
    check_positive(weight, "weight")
    r = alpha**2 / sigma**4 * jnp.sum(w * posterior_cov_trace(gm, pts, alpha, sigma))
    lam_w = float(weight)
    return ResidualVariance(lam_w**2 * float(r) / d, lam_w, float(r) / d)


# ---------------------------------------------------------------------------------------
# Importance sampling of noise levels (P11, criterion (e))
# ---------------------------------------------------------------------------------------
def _grid_args(lam, *arrays):
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2 or not np.all(np.diff(lam) > 0):
        raise ValueError("lam must be a strictly increasing 1-D grid with >= 2 points")
    out = []
    for name, a in arrays:
        a = np.asarray(a, dtype=np.float64)
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
    gm: GaussianMixture, lam, process: str = "ve", *, num_nodes: int | None = None
):
    r"""Per-λ second moment of the per-sample gradient $g=2(s_	heta-s_c)$ of the unweighted
    score loss at the true score, for the nonparametric model ($J_	heta=I$):
    $m_2=4\,\mathbb E\,\mathrm{tr}C_t=4R(\lambda)=4D/(\sigma^2c^*(\lambda))$, with $m_1=0$
    (FORMULAS.md §5 P11). ``process`` picks σ(λ) (``"ve"``: $e^{-\lambda/2}$; ``"vp"``:
    $\mathrm{sigmoid}(-\lambda)^{1/2}$). ``(n,)`` → ``(n,)``."""
    from .schedules import alpha_sigma

    check_mixture(gm)
    lam = jnp.atleast_1d(jnp.asarray(lam, dtype=gm.means.dtype))
    check_finite(lam, "lam")
    check_choice("process", process, ("ve", "vp"))
    c = c_star_of_lambda(gm, lam, num_nodes=num_nodes)
    sig2 = alpha_sigma(lam, process)[1] ** 2
    return 4.0 * gm.dim / (sig2 * c)
