r"""Asymptotic (sandwich) variance of the DSM estimator for a linear-in-parameters score
model, and short training runs of that model (FORMULAS.md §6(b), §6(d), §5 P10).

Model: $s_\theta(x,\sigma)=\Phi(x,\sigma)\theta$ with $\Phi=\frac{1}{\sqrt S}
\,(I_D\otimes\psi(u)^\top)$, $u=x/\sqrt S$, $S=\alpha^2 v_d+\sigma^2$ ($v_d$ = the data
variance per dimension), and $\psi(u)=(-u_1,\dots,-u_D,\cos(\omega_j^\top u+b_j))$ — the
linear part makes a Gaussian's score exactly representable, the random Fourier part adds
capacity.

Estimator: draw $N$ samples $(\lambda_i\sim p,\,x_0,\,\varepsilon)$ and minimise
$\sum_i\omega(\lambda_i)\|\Phi_i\theta-s_{c,i}\|^2$ (closed-form weighted least squares),
$\omega$ the score-space per-sample multiplier; the objective weight is $\Lambda=p\,\omega$
and $\omega=\sigma^2c(\lambda)$ for $\Lambda=c\,\sigma^2$ per unit of $p$ (ε-space
multiplier $c=\omega_\varepsilon$). Then

$$\mathrm{Var}(\hat\theta)\approx\frac1N A^{-1}BA^{-1},\quad
A=\int p\,\omega\,a(\lambda)\,d\lambda,\quad B=\int p\,\omega^2\,b(\lambda)\,d\lambda,$$

$$a=\mathbb E_{x_t}[\Phi^\top\Phi],\qquad
b=\mathbb E_{x_t}[\Phi^\top(C_t+\delta\delta^\top)\Phi],\quad
C_t=\tfrac{\alpha^2}{\sigma^4}\mathrm{Cov}(x_0\mid x_t),\ \delta=s^*-\Phi\theta^*.$$

$B$ is the exact second moment of the per-sample estimating function at $\theta^*$:
$\mathbb E[(s_c-\Phi\theta^*)(s_c-\Phi\theta^*)^\top\mid x_t]=C_t+\delta\delta^\top$ (the
cross term vanishes because $\mathbb E[s_c\mid x_t]=s^*$), so the finite-capacity misfit
$\delta$ is *included*. (FORMULAS.md writes $a=2\mathbb E[J^\top J]$, $b=4\mathbb E[J^\top C
J]$; the factors 2 and 4 cancel in $A^{-1}BA^{-1}$.) Expectations over $x_t$ use
per-component Gauss–Hermite quadrature; over λ, Gauss–Legendre on the schedule's range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import expectations
from ._numerics import lead
from ._validation import check_count, check_positive
from .mixture import GaussianMixture, check_mixture, posterior_cov
from .schedules import Schedule

__all__ = [
    "FeatureModel",
    "SandwichResult",
    "FitSpread",
    "random_fourier_model",
    "features",
    "sandwich_variance",
    "optimal_scalar_weight",
    "simulate_fits",
    "train_linear",
]


class FeatureModel(NamedTuple):
    """A linear-in-parameters score model (a pytree).

    Attributes:
        freqs: ``(F, D)`` random Fourier frequencies ω_j (in units of the standardised u).
        phases: ``(F,)`` phases b_j.
        data_var: scalar v_d, the data variance per dimension used in S = α² v_d + σ².
    """

    freqs: jax.Array
    phases: jax.Array
    data_var: jax.Array

    @property
    def dim(self) -> int:
        return self.freqs.shape[1]

    @property
    def num_params(self) -> int:
        return self.dim * (self.dim + self.freqs.shape[0])


def random_fourier_model(key, dim: int, num_features: int, data_var, bandwidth=1.0):
    """A :class:`FeatureModel` with ``num_features`` random Fourier features, frequencies
    ~ N(0, bandwidth² I), phases ~ U(0, 2π). ``num_params = dim·(dim + num_features)``."""
    check_count(dim, "dim")
    check_count(num_features, "num_features", minimum=0)
    check_positive(data_var, "data_var")
    check_positive(bandwidth, "bandwidth")
    kf, kp = jax.random.split(key)
    freqs = bandwidth * jax.random.normal(kf, (int(num_features), int(dim)))
    phases = jax.random.uniform(kp, (int(num_features),), maxval=2 * math.pi)
    return FeatureModel(freqs, phases, jnp.asarray(float(data_var)))


def features(model: FeatureModel, x, alpha, sigma) -> jax.Array:
    r"""The design matrix $\Phi(x,\sigma)$, ``(..., D)`` → ``(..., D, P)`` with
    $P=D(D+F)$; ``alpha``, ``sigma`` broadcast against the batch dims of ``x``."""
    x = jnp.asarray(x)
    alpha = jnp.asarray(alpha)[..., None]
    sigma = jnp.asarray(sigma)[..., None]
    s = alpha**2 * model.data_var + sigma**2  # (..., 1)
    nd = max(x.ndim, s.ndim)
    x, s = lead(x, nd), lead(s, nd)
    u = x / jnp.sqrt(s)
    cos = jnp.cos(u @ model.freqs.T + lead(model.phases, nd))
    psi = jnp.concatenate([-u, cos], axis=-1)  # (..., Q)
    psi = psi / jnp.sqrt(s)
    d = x.shape[-1]
    eye = lead(jnp.eye(d, dtype=x.dtype)[:, :, None], nd + 2)
    return (eye * psi[..., None, None, :]).reshape(*x.shape[:-1], d, -1)


def _lam_nodes(schedule: Schedule, n: int):
    z, w = np.polynomial.legendre.leggauss(n)
    lo, hi = schedule.lam_min, schedule.lam_max
    lam = 0.5 * (hi - lo) * z + 0.5 * (hi + lo)
    return jnp.asarray(lam), jnp.asarray(0.5 * (hi - lo) * w)


class SandwichResult(NamedTuple):
    r"""Output of :func:`sandwich_variance`.

    Attributes:
        cov: ``(P, P)`` asymptotic covariance of θ̂ for ``num_samples`` samples.
        trace: ``tr cov``.
        theta_star: ``(P,)`` population minimiser θ* for the weighting.
        A, B: the sandwich matrices (per sample).
        lam: ``(n,)`` λ nodes; a_trace, b_trace: ``(n,)`` tr a(λ), tr b(λ) at the nodes.
        fisher_divergence: $\int p\,\omega\,\mathbb E\|\Phi\theta^*-s^*\|^2 d\lambda$ /
            $\int p\,\omega\,d\lambda$, the misfit of θ*.
    """

    cov: jax.Array
    trace: float
    theta_star: jax.Array
    A: jax.Array
    B: jax.Array
    lam: jax.Array
    a_trace: jax.Array
    b_trace: jax.Array
    fisher_divergence: float


def _sandwich_first(x, alpha, sigma, gm, model):
    r"""Per point: $\Phi^\top\Phi$, $\Phi^\top C_t\Phi$ and $\Phi^\top s^*$ stacked as
    ``(B, 2P + 1, P)`` (one engine integrand)."""
    phi = features(model, x, alpha, sigma)  # (B, D, P)
    sstar = gm.noised(alpha, sigma).score(x)
    cov = posterior_cov(gm, x, alpha, sigma) * (alpha**2 / sigma**4)  # C_t
    aa = jnp.einsum("bdp,bdq->bpq", phi, phi)
    bc = jnp.einsum("bdp,bde,beq->bpq", phi, cov, phi)
    bs = jnp.einsum("bdp,bd->bp", phi, sstar)
    return jnp.concatenate([aa, bc, bs[:, None, :]], axis=1)


def _sandwich_second(x, alpha, sigma, gm, model, theta):
    r"""Per point, with the misfit $\delta=s^*-\Phi\theta^*$: $(\Phi^\top\delta)
    (\Phi^\top\delta)^\top$ and $\|\delta\|^2$ stacked as ``(B, P + 1, P)``."""
    phi = features(model, x, alpha, sigma)
    delta = gm.noised(alpha, sigma).score(x) - jnp.einsum("bdp,p->bd", phi, theta)
    pd = jnp.einsum("bdp,bd->bp", phi, delta)
    outer = pd[:, :, None] * pd[:, None, :]
    last = jnp.zeros_like(pd).at[:, 0].set(jnp.sum(delta**2, axis=-1))
    return jnp.concatenate([outer, last[:, None, :]], axis=1)


#: Largest Gauss-Hermite node count per component of the sandwich (as in the engine).
_MAX_NODES = 4e6


def _sandwich_core(gm, model, alpha, sigma, pw, omega, num_nodes):
    """The two passes of :func:`sandwich_variance` over the λ nodes (engine, Gauss–Hermite)."""
    laws = jax.vmap(gm.noised)(alpha, sigma)
    opts = {"method": "gauss_hermite", "num_nodes": int(num_nodes)}
    first = expectations.expect_many(_sandwich_first, laws, (alpha, sigma), (gm, model), **opts)
    v = jnp.asarray(first.value)
    p = v.shape[-1]
    aa, bc, bs = v[:, :p], v[:, p : 2 * p], v[:, 2 * p]
    A = jnp.einsum("l,lpq->pq", pw, aa)
    theta = jnp.linalg.solve(A, jnp.einsum("l,lp->p", pw, bs))
    # the misfit may vanish (a Gaussian's score is representable): then this pass is
    # rounding noise, which the sanity check must measure against the scale of the first
    atol = 1e-12 * float(jnp.max(jnp.abs(bc)))
    second = expectations.expect_many(
        _sandwich_second, laws, (alpha, sigma), (gm, model, theta), atol=atol, **opts
    )
    w2 = jnp.asarray(second.value)
    b_lvl = bc + w2[:, :p]
    B = jnp.einsum("l,lpq->pq", pw * omega, b_lvl)
    fd = jnp.sum(pw * w2[:, p, 0]) / jnp.sum(pw)
    return A, B, theta, jnp.trace(aa, axis1=1, axis2=2), jnp.trace(b_lvl, axis1=1, axis2=2), fd


def sandwich_variance(
    gm: GaussianMixture,
    model: FeatureModel,
    schedule: Schedule,
    c_fn: Callable,
    num_samples: int,
    *,
    num_lam: int = 48,
    num_nodes: int | None = None,
) -> SandwichResult:
    r"""$\mathrm{Var}(\hat\theta)\approx A^{-1}BA^{-1}/N$ for the weighted DSM least-squares
    estimator (FORMULAS.md §6(d)), exactly from the mixture (misfit δ included).

    Args:
        gm: the clean mixture (D <= 2 recommended).
        model: the :class:`FeatureModel`.
        schedule: the sampling density p(λ) (its range is the λ range).
        c_fn: $c(\lambda)=\omega_\varepsilon(\lambda)$, the multiplier of $\sigma^2$ in the
            score-space per-sample weight $\omega=\sigma^2c$ (e.g. a registry weighting).
        num_samples: N, the number of training samples.
        num_lam: Gauss–Legendre nodes over λ.
        num_nodes: Gauss–Hermite nodes per axis and component over x_t (default 64 in
            1-D, 32 in 2-D, 16 above). On the 2-D ring at the high-noise end of the VE
            range (σ ≈ 46) 10 and 16 nodes per axis miss the first pass's expectations by
            about 20 % and 15 % (the engine's Monte Carlo sanity check refuses them); 32
            agree with 4·10⁵ Monte Carlo draws within 2.4 standard errors at every λ node.

    Returns:
        :class:`SandwichResult`.

    Raises:
        ValueError: bad arguments, or ``num_nodes^D`` over 4e6 (high D: the message names
            the dimension and the alternative, :func:`simulate_fits`).
    """
    check_mixture(gm)
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    if not callable(c_fn):
        raise TypeError(f"c_fn must be callable (a function of lam), got {type(c_fn).__name__}")
    if model.dim != gm.dim:
        raise ValueError(f"model dim {model.dim} does not match the mixture dim {gm.dim}")
    check_count(num_samples, "num_samples")
    check_count(num_lam, "num_lam")
    if num_nodes is None:
        num_nodes = 64 if gm.dim == 1 else 32 if gm.dim == 2 else 16
    check_count(num_nodes, "num_nodes")
    if float(num_nodes) ** gm.dim > _MAX_NODES:
        raise ValueError(
            f"sandwich_variance integrates over x_t by tensor Gauss-Hermite, num_nodes^D = "
            f"{num_nodes}^{gm.dim} = {float(num_nodes) ** gm.dim:.3g} points per component and "
            f"noise level, over the limit of {_MAX_NODES:.0e}: it supports low dimensions "
            f"(D <= 3 with the default nodes; here D = {gm.dim}); use fewer num_nodes in D <= 5, "
            "or simulate_fits (empirical spread of least-squares fits) in higher D"
        )
    lam, wl = _lam_nodes(schedule, num_lam)
    alpha, sigma = schedule.alpha(lam), schedule.sigma(lam)
    omega = sigma**2 * jnp.asarray(c_fn(lam))
    if not bool(jnp.all(jnp.isfinite(omega)) and jnp.all(omega > 0)):
        raise ValueError("c_fn must return finite values > 0 on the schedule's lambda range")
    pw = wl * schedule.density(lam) * omega  # quadrature weight × p × ω
    A, B, theta, a_tr, b_tr, fd = _sandwich_core(gm, model, alpha, sigma, pw, omega, num_nodes)
    ainv = jnp.linalg.inv(A)
    cov = ainv @ B @ ainv / num_samples
    cov = 0.5 * (cov + cov.T)
    return SandwichResult(
        cov,
        float(jnp.trace(cov)),
        theta,
        A,
        B,
        lam,
        a_tr,
        b_tr,
        float(fd),
    )


def optimal_scalar_weight(
    gm: GaussianMixture,
    model: FeatureModel,
    schedule: Schedule,
    *,
    iterations: int = 3,
    num_lam: int = 48,
    num_nodes: int | None = None,
):
    r"""The scalar sandwich optimum $\omega^*\propto\mathrm{tr}\,a(\lambda)/\mathrm{tr}\,b(\lambda)$
    (FORMULAS.md §6(d): minimise $\int p\omega^2b$ at fixed $\int p\omega a$; matrices
    scalarised by their traces), as a function $c(\lambda)=\omega^*/\sigma^2$ interpolated on
    the λ nodes. Since b depends on θ* (through the misfit δ), which depends on ω, the
    fixed point is iterated ``iterations`` times starting from $c\equiv1$.

    Returns:
        ``c_fn`` (a callable of λ).
    """

    def make(lam, log_c):
        return lambda x: jnp.exp(jnp.interp(jnp.asarray(x), lam, log_c))

    c_fn = lambda x: jnp.ones_like(jnp.asarray(x))  # noqa: E731
    for _ in range(int(iterations)):
        res = sandwich_variance(gm, model, schedule, c_fn, 1, num_lam=num_lam, num_nodes=num_nodes)
        omega = res.a_trace / res.b_trace  # ω* up to a constant
        log_c = jnp.log(omega / schedule.sigma(res.lam) ** 2)
        c_fn = make(res.lam, log_c - jnp.max(log_c))
    return c_fn


class FitSpread(NamedTuple):
    """Empirical spread of θ̂ over independent least-squares fits.

    Attributes:
        thetas: ``(M, P)`` fitted parameters.
        trace: unbiased estimate of tr Var(θ̂).
        trace_stderr: its standard error (from the per-fit squared deviations).
    """

    thetas: jax.Array
    trace: float
    trace_stderr: float


def simulate_fits(
    key,
    gm: GaussianMixture,
    model: FeatureModel,
    schedule: Schedule,
    c_fn: Callable,
    num_samples: int,
    num_fits: int,
) -> FitSpread:
    r"""``num_fits`` independent weighted least-squares fits, each on ``num_samples``
    fresh samples $(\lambda\sim p,\,x_0\sim p_0,\,\varepsilon)$, vectorised with ``vmap``:
    $\hat\theta=(\sum\omega_i\Phi_i^\top\Phi_i)^{-1}\sum\omega_i\Phi_i^\top s_{c,i}$,
    $s_c=-\varepsilon/\sigma$, $\omega=\sigma^2c(\lambda)$.
    """
    check_count(num_samples, "num_samples")
    check_count(num_fits, "num_fits")
    if num_fits < 2:
        raise ValueError(f"num_fits must be >= 2, got {num_fits}")

    # batched over fits (no jit: one small compiled kernel per op keeps compile time low;
    # Schedule.sample also reads its truncation constants with float(), so not traceable)
    kl, kx, ke = jax.random.split(key, 3)
    lam = schedule.sample(kl, (num_fits, num_samples))
    a, s = schedule.alpha(lam), schedule.sigma(lam)
    x0 = gm.sample(kx, num_fits * num_samples).reshape(num_fits, num_samples, gm.dim)
    eps = jax.random.normal(ke, x0.shape, dtype=x0.dtype)
    xt = a[..., None] * x0 + s[..., None] * eps
    phi = features(model, xt, a, s)  # (M, N, D, P)
    om = s**2 * c_fn(lam)
    lhs = jnp.einsum("mn,mndp,mndq->mpq", om, phi, phi)
    rhs = jnp.einsum("mn,mndp,mnd->mp", om, phi, -eps / s[..., None])
    thetas = jnp.linalg.solve(lhs, rhs[..., None])[..., 0]
    dev = jnp.sum((thetas - thetas.mean(0, keepdims=True)) ** 2, axis=1) * num_fits / (num_fits - 1)
    return FitSpread(thetas, float(dev.mean()), float(jnp.std(dev, ddof=1) / math.sqrt(num_fits)))


def train_linear(
    key,
    gm: GaussianMixture,
    model: FeatureModel,
    schedule: Schedule,
    c_fn: Callable,
    optimizer,
    *,
    steps: int,
    batch_size: int,
    theta0=None,
):
    r"""Train $s_\theta=\Phi\theta$ with an optax ``optimizer`` on the weighted DSM loss
    $\frac1n\sum_i\sigma_i^2c(\lambda_i)\|\Phi_i\theta-s_{c,i}\|^2$ (score-space
    $\Lambda=c\,\sigma^2$), the same batches for every call with the same ``key``.

    Used for P10: a constant c is a learning-rate multiplier under SGD and (up to Adam's ε)
    invisible to Adam; a time-varying c(λ) is not (FORMULAS.md §5 P10, §6(b)).

    Returns:
        ``(steps + 1, P)`` parameter trajectory.
    """
    check_count(steps, "steps")
    check_count(batch_size, "batch_size")
    theta = jnp.zeros(model.num_params) if theta0 is None else jnp.asarray(theta0)
    # everything that depends on the schedule and on c is drawn/evaluated outside jit, so
    # the compiled scan depends only on the optimizer (one compile per optimizer object)
    kl, kr = jax.random.split(key)
    lams = schedule.sample(kl, (steps, batch_size))
    alphas, sigmas = schedule.alpha(lams), schedule.sigma(lams)
    omegas = sigmas**2 * jnp.asarray(c_fn(lams))
    keys = jax.random.split(kr, steps)
    traj = _train_scan(optimizer, gm, model, theta, keys, alphas, sigmas, omegas)
    return jnp.concatenate([theta[None], traj], axis=0)


@partial(jax.jit, static_argnums=0)
def _train_scan(optimizer, gm, model, theta, keys, alphas, sigmas, omegas):
    def loss(th, a, s, om, eps, x0):
        xt = a[:, None] * x0 + s[:, None] * eps
        phi = features(model, xt, a, s)
        r = jnp.einsum("ndp,p->nd", phi, th) + eps / s[:, None]
        return jnp.mean(om * jnp.sum(r**2, axis=-1))

    def step(carry, inputs):
        th, st = carry
        k, a, s, om = inputs
        kx, ke = jax.random.split(k)
        x0 = gm.sample(kx, a.shape[0])
        eps = jax.random.normal(ke, x0.shape, dtype=x0.dtype)
        g = jax.grad(loss)(th, a, s, om, eps, x0)
        upd, st = optimizer.update(g, st, th)
        return (th + upd, st), th + upd

    _, traj = jax.lax.scan(step, (theta, optimizer.init(theta)), (keys, alphas, sigmas, omegas))
    return traj
