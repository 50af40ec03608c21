r"""An independent float64 quadrature for noised Gaussian mixtures, for the numeric derivations
of FORMULAS.md §8 (effective dimension, within-component bound, high-noise limit, the
binary-channel anchor).

It is written here, in NumPy/SciPy, on purpose: the derivations check the implementation's
closed forms and quadratures, so they must not call them. It accepts **rank-deficient**
components (lines, points) as well as full-rank ones.

Model: $x_0\sim\sum_k\pi_kN(\mu_k,\Sigma_k)$ with $\Sigma_k\succeq0$, observed in
VE-equivalent variables $y=x_0+\tilde\sigma\varepsilon$ (every quantity here depends on
$(\alpha,\sigma)$ only through $\tilde\sigma=\sigma/\alpha$). With
$S_k=\Sigma_k+\tilde\sigma^2I$ (invertible for $\tilde\sigma>0$), per point $y$
(FORMULAS.md §4):

* responsibilities $r_k\propto\pi_kN(y;\mu_k,S_k)$ (log-space softmax),
* score $s=-\sum_kr_kS_k^{-1}(y-\mu_k)$,
* component posteriors $m_k=\mu_k+\Sigma_kS_k^{-1}(y-\mu_k)$,
  $V_k=\Sigma_k-\Sigma_kS_k^{-1}\Sigma_k$ (constant in $y$),
* $\mathrm{tr}\,\mathrm{Cov}(x_0\mid y)=\sum_kr_k\mathrm{tr}V_k+\sum_kr_k\|m_k-\bar m\|^2$.

**Rule.** $\mathbb E_{y}[f]=\sum_k\pi_k\int f(\mu_k+U_k\,\mathrm{diag}(\sqrt{e_k+\tilde\sigma^2})\,
\xi)\,\varphi(\xi)\,d\xi$, each component in its own eigenbasis $(e_k,U_k)$, over the box
$[-9,9]^D$ (the Gaussian mass outside is below $2D\,\Phi(-9)\approx2\cdot10^{-19}D$), by
``scipy.integrate.cubature`` (tensor Gauss–Kronrod 21) on sub-boxes. Along a stretched axis
($e>0$) the other components' features are narrow, of width
$\sim\tilde\sigma/\sqrt{e+\tilde\sigma^2}$ in $\xi$; that axis is split at
$\pm\{1,4,16,64\}\,\tilde\sigma/\sqrt{e+\tilde\sigma^2}$ so that the adaptive rule cannot
step over them (DESIGN.md, Numerics: a box that misses a narrow component returns a
confident wrong value). Such narrow features come from the zero-variance directions of
the *other* components, so the splits are made only when another component is
rank-deficient; between full-rank components the features have width
$\sqrt{e_j/e_k}$ and the adaptive rule resolves them. A sub-box that does not converge
raises ``RuntimeError``, naming this rule.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from scipy.integrate import cubature

__all__ = ["Component", "Mixture", "pointwise", "expect", "moments", "reflection_symmetric", "BOX"]

BOX = 9.0  # half-width of the standardised integration box
_SPLITS = (1.0, 4.0, 16.0, 64.0)
_ZERO_TOL = 1e-12  # eigenvalues within this fraction of the largest are exact zeros


class Component(NamedTuple):
    """One component: weight, mean ``(D,)``, eigenvalues ``(D,)`` (>= 0) and eigenvectors
    ``(D, D)`` (columns) of its covariance."""

    weight: float
    mean: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray


class Mixture(NamedTuple):
    """A Gaussian mixture with PSD (possibly singular) covariances."""

    components: tuple[Component, ...]

    @property
    def dim(self) -> int:
        return int(self.components[0].mean.shape[0])

    @classmethod
    def of(cls, weights, means, covs) -> Mixture:
        """From weights ``(K,)``, means ``(K, D)`` and covariances ``(K, D, D)``."""
        comps = []
        for w, m, c in zip(weights, means, covs, strict=True):
            c = np.asarray(c, dtype=np.float64)
            e, u = np.linalg.eigh(0.5 * (c + c.T))
            scale = max(1.0, float(np.max(np.abs(e))))
            if np.any(e < -_ZERO_TOL * scale):
                raise ValueError("covariance must be positive semi-definite")
            e = np.where(np.abs(e) <= _ZERO_TOL * scale, 0.0, e)
            comps.append(Component(float(w), np.asarray(m, dtype=np.float64), e, u))
        return cls(tuple(comps))


class Pointwise(NamedTuple):
    """Per-point quantities of the noised mixture, each ``(N,)`` or ``(N, D)``."""

    log_p: np.ndarray
    resp: np.ndarray  # (N, K)
    score: np.ndarray  # (N, D)
    post_means: np.ndarray  # (N, K, D)
    post_mean: np.ndarray  # (N, D)
    within: np.ndarray  # (N,)  sum_k r_k tr V_k
    between: np.ndarray  # (N,)  sum_k r_k |m_k - mbar|^2


def pointwise(mix: Mixture, y: np.ndarray, sigma: float) -> Pointwise:
    """The closed forms of the module docstring at points ``y`` ``(N, D)``."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    logs, gs, ms, trv = [], [], [], []
    s2 = sigma**2
    for c in mix.components:
        z = (y - c.mean) @ c.eigvecs  # coordinates in the eigenbasis
        s = c.eigvals + s2
        log_norm = math.log(c.weight) - 0.5 * float(np.sum(np.log(2 * np.pi * s)))
        logs.append(log_norm - 0.5 * (z**2 / s).sum(-1))
        gs.append(-(z / s) @ c.eigvecs.T)
        ms.append(c.mean + (c.eigvals / s * z) @ c.eigvecs.T)
        trv.append(float(np.sum(c.eigvals * s2 / s)))
    lg = np.stack(logs, -1)
    mx = lg.max(-1, keepdims=True)
    e = np.exp(lg - mx)  # log-space softmax (scipy's logsumexp costs 3x more per call here)
    tot = e.sum(-1, keepdims=True)
    lp = (mx + np.log(tot))[:, 0]
    r = e / tot
    g = np.stack(gs, 1)
    m = np.stack(ms, 1)
    score = np.einsum("nk,nkd->nd", r, g)
    mbar = np.einsum("nk,nkd->nd", r, m)
    within = r @ np.asarray(trv)
    between = np.einsum("nk,nk->n", r, ((m - mbar[:, None, :]) ** 2).sum(-1))
    return Pointwise(lp, r, score, m, mbar, within, between)


def _axis_breaks(e: float, sigma: float, split: bool) -> np.ndarray:
    base = [-BOX, 0.0, BOX]
    if split and e > 0.0:
        w = np.asarray(_SPLITS) * sigma / math.sqrt(e + sigma**2)
        w = w[w < BOX]
        base = np.concatenate([base, w, -w])
    return np.unique(np.asarray(base, dtype=np.float64))


def reflection_symmetric(mix: Mixture) -> bool:
    """Whether every component is centred at the origin with an axis-aligned covariance, so
    that the mixture (and any function of its closed forms) is invariant under each
    coordinate reflection."""
    for c in mix.components:
        cov = (c.eigvecs * c.eigvals) @ c.eigvecs.T
        if np.any(c.mean != 0.0) or np.any(np.abs(cov - np.diag(np.diag(cov))) > 0.0):
            return False
        if np.any(np.abs(np.abs(c.eigvecs).max(0) - 1.0) > 1e-15):
            return False  # eigenvectors must be (signed) coordinate axes
    return True


def expect(
    mix: Mixture,
    sigma: float,
    f,
    *,
    rtol: float = 1e-11,
    atol: float = 1e-14,
    fold: bool = False,
):
    r"""$\mathbb E_{y\sim p_{\tilde\sigma}}[f(y)]$ for ``f(points (N, D), pointwise) ->
    (N, M)``, by the rule of the module docstring. ``atol`` is per sub-box, on integrands of
    order one (scale them so). With ``fold=True`` (only for a mixture that is
    :func:`reflection_symmetric`, and an ``f`` invariant under coordinate reflections, such
    as the scalars used here) only the sub-boxes with $\xi\ge0$ are integrated and the sum
    is multiplied by $2^D$: the same rule at $2^{-D}$ of the cost. Returns ``(M,)``.

    Raises:
        RuntimeError: a sub-box did not converge.
        ValueError: ``fold=True`` for a mixture without the symmetry.
    """
    if fold and not reflection_symmetric(mix):
        raise ValueError("fold=True needs a mixture symmetric under coordinate reflections")
    total = 0.0
    for c in mix.components:
        sd = np.sqrt(c.eigvals + sigma**2)
        dim = sd.shape[0]
        split = any(
            np.any(o.eigvals == 0.0) for o in mix.components if o is not c
        )  # narrow features come from the other components' zero-variance directions
        axes = [_axis_breaks(float(e), sigma, split) for e in c.eigvals]

        def integrand(xi, c=c, sd=sd, dim=dim):
            y = c.mean + (xi * sd) @ c.eigvecs.T
            phi = np.exp(-0.5 * (xi**2).sum(-1)) / (2 * np.pi) ** (dim / 2)
            return f(y, pointwise(mix, y, sigma)) * phi[:, None]

        for box in itertools.product(*[list(zip(a[:-1], a[1:], strict=True)) for a in axes]):
            lo = np.array([b[0] for b in box])
            hi = np.array([b[1] for b in box])
            if fold and np.any(lo < 0.0):
                continue
            res = cubature(integrand, lo, hi, rtol=rtol, atol=atol)
            if res.status != "converged":
                raise RuntimeError(
                    "derivations._quadrature.expect (per-component Gauss-Kronrod cubature): "
                    f"sub-box {lo}..{hi} did not converge at rtol={rtol}"
                )
            total = total + c.weight * np.asarray(res.estimate)
    return np.asarray(total) * (2.0**mix.dim if fold else 1.0)


def moments(mix: Mixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Mean ``(D,)``, covariance ``(D, D)`` and third cumulant ``(D, D, D)`` of $p_0$ in
    closed form: with $c_k=\mu_k-\mu$,
    $\Sigma=\sum_k\pi_k(\Sigma_k+c_kc_k^\top)$ and
    $\kappa_3=\sum_k\pi_k\big(c_k\otimes c_k\otimes c_k+\mathrm{sym}_3(\Sigma_k\otimes c_k)\big)$
    (the Gaussian part of each component has no third cumulant)."""
    w = np.array([c.weight for c in mix.components])
    mus = np.stack([c.mean for c in mix.components])
    covs = np.stack([(c.eigvecs * c.eigvals) @ c.eigvecs.T for c in mix.components])
    mu = w @ mus
    cen = mus - mu
    cov = np.einsum("k,kij->ij", w, covs) + np.einsum("k,ki,kj->ij", w, cen, cen)
    k3 = np.einsum("k,ki,kj,kl->ijl", w, cen, cen, cen)
    k3 = k3 + np.einsum("k,kij,kl->ijl", w, covs, cen)
    k3 = k3 + np.einsum("k,kil,kj->ijl", w, covs, cen)
    k3 = k3 + np.einsum("k,kjl,ki->ijl", w, covs, cen)
    return mu, cov, k3
