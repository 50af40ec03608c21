r"""Evaluation of trained configurations against the exact mixture: PF-ODE energy
distance, per-σ-bin gradient spread and per-σ-bin exact Fisher divergence
(FORMULAS.md §7, the protocol of Zhang et al. 2508.01597).

The evaluation points are fixed by ``EvalConfig.seed`` and shared by all configurations;
one compiled, vmapped program evaluates the stacked configurations (hidden layers
zero-padded to a common width, which leaves every output unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import sampling as _sampling
from .. import schedules as _schedules
from ..metrics import energy_distance
from ..mixture import GaussianMixture
from ._config import EvalConfig, TrainConfig
from ._problem import alpha_sigma, make_batch, mixture_sample, standard_normal
from ._weighting import LossWeighting

F32 = jnp.float32
EVAL_KEYS = (
    "energy_distance",
    "grad_std",
    "fisher",
    "fisher_se",
    "fisher_total",
    "fisher_total_se",
    "fisher_total_sigma2",
    "fisher_total_sigma2_se",
    "fisher_relative",
    "fisher_relative_se",
)
RHO = 7.0  # EDM's sampling grid exponent
ONE_SHOT = {"xla_backend_optimization_level": 0}  # XLA options of programs that run once


def fisher_divergence(score_fn: Callable, gm: GaussianMixture, x_t, alpha, sigma) -> jax.Array:
    r"""Pointwise squared score error $\|s_\theta(x_t)-s^*(x_t)\|^2$ against the exact score
    $s^*$ of ``gm.noised(alpha, sigma)``; its mean over $x_t\sim p_t$ is the Fisher divergence.

    Args:
        score_fn: ``score_fn(x_t) -> (N, D)`` the model's score at this noise level.
        gm: the clean mixture. x_t: ``(N, D)``. alpha, sigma: scalars > 0.

    Returns:
        ``(N,)`` squared errors, in the mixture's dtype.

    Raises:
        ValueError: if ``x_t`` is not ``(N, gm.dim)`` or ``score_fn`` returns another shape.
    """
    x_t = jnp.asarray(x_t)
    if x_t.ndim != 2 or x_t.shape[-1] != gm.dim:
        raise ValueError(f"x_t must have shape (N, {gm.dim}) to match the mixture, got {x_t.shape}")
    s_star = gm.noised(alpha, sigma).score(x_t)
    s_theta = jnp.asarray(score_fn(x_t), s_star.dtype)
    if s_theta.shape != s_star.shape:
        raise ValueError(f"score_fn must return shape {s_star.shape}, got {s_theta.shape}")
    return jnp.sum((s_theta - s_star) ** 2, -1)


def ode_sigmas(num_steps: int, sigma_min: float, sigma_max: float) -> np.ndarray:
    r"""EDM's ρ = 7 grid of ``num_steps`` levels from $\tilde\sigma_{max}$ to
    $\tilde\sigma_{min}$, then 0 (:func:`dsmtheory.sampling.edm_sigmas`; one level: the single
    Euler step $[\tilde\sigma_{max}, 0]$)."""
    if num_steps < 2:
        return np.asarray([sigma_max, 0.0])
    return np.asarray(
        _sampling.edm_sigmas(num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=RHO)
    )


class Evaluator:
    """Fixed evaluation points and one jitted, vmapped evaluation of stacked parameters.

    Args:
        base: the sweep's shared settings (mixture, schedule, parameterization).
        ev: the evaluation settings.
        eps_hat: ``eps_hat(params, x_t, alpha, sigma, lam)`` of the model (any width).
        per_example: ``per_example(params, batch) -> (B,)``, the weighted loss.
        weightings: the sweep's resolved weightings; configuration ``i`` is evaluated with
            ``weightings[index[i]]`` (see :meth:`evaluate`).
    """

    def __init__(
        self,
        base: TrainConfig,
        ev: EvalConfig,
        eps_hat: Callable,
        per_example: Callable,
        weightings: Sequence[LossWeighting],
    ):
        self.ev = ev
        self.eps_hat = eps_hat
        self.per_example = per_example
        sch = base.build_schedule()
        gm = base.mixture
        self.process = process = sch.process
        nb, m, g = ev.num_bins, ev.fisher_points, ev.grad_points
        edges = np.linspace(sch.lam_min, sch.lam_max, nb + 1)
        self.lam_edges = edges
        centers = 0.5 * (edges[1:] + edges[:-1])
        self.sigma_centers = np.asarray(sch.sigma(centers), dtype=np.float64)
        # bin probabilities under the schedule's density (each λ range is one t interval)
        t_edges = np.asarray(sch.t(jnp.asarray(edges)), dtype=np.float64)
        self.bin_prob = np.abs(np.diff(t_edges))
        a_hi, s_hi = (float(v) for v in _schedules.alpha_sigma(float(sch.lam_min), process))
        a_lo, s_lo = (float(v) for v in _schedules.alpha_sigma(float(sch.lam_max), process))
        self.sigmas = ode_sigmas(ev.ode_steps, s_lo / a_lo, s_hi / a_hi)
        matrix = any(lw.kind == "matrix" for lw in weightings)

        # every fixed point in one compiled program (instead of many eager operations), which
        # runs once: compiled without XLA's backend optimizations (a third of the compile time)
        @partial(jax.jit, compiler_options=ONE_SHOT)
        def points(gm, key):
            # every variate from one call of jax.random.uniform, in the mixture's dtype
            sizes = {"true": ev.ed_samples, "prior": ev.ed_samples, "fisher": nb * m, "grad": g}
            total = sum(sizes.values())
            lat = gm.latent_dim  # normals per mixture sample: D for the dense kind
            u = jax.random.uniform(key, (total, lat + gm.dim + 2), gm.means.dtype)
            cuts = np.cumsum(list(sizes.values()))[:-1]
            parts = dict(zip(sizes, jnp.split(u, cuts), strict=True))

            def sample(v):  # mixture samples and one standard normal per coordinate
                z = standard_normal(v[:, 1 : lat + gm.dim + 1])
                return mixture_sample(gm, v[:, 0], z[:, :lat]), z[:, lat:], v[:, -1]

            # energy distance: true samples and exact samples of p at the largest noise level
            true = jnp.asarray(sample(parts["true"])[0], F32)
            x0, e, _ = sample(parts["prior"])
            x_init = jnp.asarray(x0 + (s_hi / a_hi) * e, F32)  # VE-equivalent x̃ = x_t / α
            # Fisher points: λ uniform in each bin, x_t ~ p_λ, exact score in gm's dtype
            x0, e, u_f = sample(parts["fisher"])
            lam_f = (
                jnp.asarray(edges[:-1])[:, None]
                + u_f.reshape(nb, m) * jnp.asarray(np.diff(edges))[:, None]
            )
            a_f, s_f = _schedules.alpha_sigma(lam_f, process)
            xt = a_f[..., None] * x0.reshape(nb, m, gm.dim) + s_f[..., None] * e.reshape(
                nb, m, gm.dim
            )
            score = jax.vmap(jax.vmap(lambda x, a, s: gm.noised(a, s).score(x)))(xt, a_f, s_f)
            # gradient points: bin centre λ, fixed (x0, ε), weighed once per weighting
            x0, e, _ = sample(parts["grad"])
            g_x0 = jnp.broadcast_to(jnp.asarray(x0, F32), (nb, g, gm.dim))
            g_eps = jnp.broadcast_to(jnp.asarray(e, F32), g_x0.shape)
            g_lam = jnp.broadcast_to(jnp.asarray(centers, F32)[:, None], (nb, g))
            batches = [make_batch(g_x0, g_eps, g_lam, process, lw) for lw in weightings]
            eye = jnp.eye(gm.dim, dtype=F32)

            def as_matrix(w):
                return w[..., None, None] * eye[None, None] if w.ndim == 2 else w

            weights = jnp.stack([as_matrix(b.weight) if matrix else b.weight for b in batches])
            fisher = (jnp.asarray(lam_f, F32), jnp.asarray(xt, F32), jnp.asarray(score, F32))
            return true, x_init, fisher, s_f, batches[0]._replace(weight=None), weights

        out = points(gm, jax.random.PRNGKey(ev.seed))
        self.true, self.x_init, (self.f_lam, self.f_xt, self.f_score), s_f = out[:4]
        self.f_sigma2 = np.asarray(s_f, np.float64) ** 2
        # the scale of the Fisher divergence per bin: E||s*||² = tr I_t averaged over the
        # bin, estimated on the same points (so fisher_relative is a ratio estimator)
        self.score_norm2 = np.mean(np.sum(np.asarray(self.f_score, np.float64) ** 2, -1), -1)
        self.g_batch, self.g_weights = out[4:]  # weights: (W, bins, g) or (W, bins, g, D, D)
        self._eval = jax.jit(jax.vmap(self._evaluate_one))

    # --- per configuration ----------------------------------------------------------------
    def _sample_ode(self, params):
        """PF-ODE dx̃/dσ̃ = ε̂ (x̃ = x/α) by :func:`dsmtheory.sampling.heun_pf_ode`."""
        eps_hat, process = self.eps_hat, self.process

        def score_fn(x, sig):  # the VE-equivalent score −ε̂/σ̃
            lam = jnp.full(x.shape[:-1], -2.0 * jnp.log(sig), F32)
            a, s = alpha_sigma(lam, process)
            return -eps_hat(params, a[..., None] * x, a, s, lam) / sig

        return _sampling.heun_pf_ode(score_fn, self.x_init, self.sigmas).samples

    def _grad_std_one(self, params, weights):
        per_example = self.per_example

        def loss_one(p, example):
            single = jax.tree_util.tree_map(lambda v: v[None], example)
            return per_example(p, single)[0]

        def one_bin(inputs):
            batch, w = inputs
            g = jax.vmap(jax.grad(loss_one), in_axes=(None, 0))(params, batch._replace(weight=w))
            flat = jnp.concatenate(
                [v.reshape(v.shape[0], -1) for v in jax.tree_util.tree_leaves(g)], -1
            )
            dev = flat - flat.mean(0, keepdims=True)
            return jnp.sqrt(jnp.sum(dev**2) / (flat.shape[0] - 1))

        return jax.lax.map(one_bin, (self.g_batch, weights))

    def _fisher_one(self, params):
        a, s = alpha_sigma(self.f_lam, self.process)
        s_theta = -self.eps_hat(params, self.f_xt, a, s, self.f_lam) / s[..., None]
        return jnp.sum((s_theta - self.f_score) ** 2, -1)  # (bins, points)

    def _evaluate_one(self, params, weights):
        x = self._sample_ode(params)
        # blocks of 128 rows keep memory at O(configs · 128 · ed_samples) under vmap
        ed = energy_distance(x, self.true, unbiased=True, block_size=min(128, x.shape[0]))
        return ed, self._grad_std_one(params, weights), self._fisher_one(params)

    # --- public to the engine ----------------------------------------------------------------
    def evaluate(self, params, index, sharding=None) -> dict:
        """Energy distance, gradient spread and Fisher statistics of stacked ``params``
        (configuration axis first); ``index[i]`` is configuration ``i``'s weighting."""
        weights = self.g_weights[np.asarray(index)]
        if sharding is not None:
            weights = jax.device_put(weights, sharding)
        ed, gs, sq = (np.asarray(v, np.float64) for v in self._eval(params, weights))
        m = sq.shape[-1]  # sq: (n, bins, m)
        f = sq.mean(-1)
        se = sq.std(-1, ddof=1) / math.sqrt(m)
        s2 = sq * self.f_sigma2[None]
        f2 = s2.mean(-1)
        se2 = s2.std(-1, ddof=1) / math.sqrt(m)
        p = self.bin_prob[None]
        return {
            "energy_distance": ed,
            "grad_std": gs,
            "fisher": f,
            "fisher_se": se,
            "fisher_total": (p * f).sum(-1),
            "fisher_total_se": np.sqrt((p**2 * se**2).sum(-1)),
            "fisher_total_sigma2": (p * f2).sum(-1),
            "fisher_total_sigma2_se": np.sqrt((p**2 * se2**2).sum(-1)),
            "fisher_relative": f / self.score_norm2[None],
            "fisher_relative_se": se / self.score_norm2[None],
        }
