"""Closed forms of a noised Gaussian mixture, checked against autodiff and Monte Carlo.

The law of x_t = alpha x0 + sigma eps for a Gaussian-mixture x0 is again a mixture, so its
score, Hessian and the Tweedie posterior moments are exact. This script prints them for a
2-D ring, checks both Tweedie identities

    E[x0 | x_t]   = (x_t + sigma^2 grad log p_t) / alpha
    Cov[x0 | x_t] = sigma^2 / alpha^2 (I + sigma^2 grad^2 log p_t)

and the posterior mean against a Monte Carlo estimate over the joint law.

Run: python examples/01_closed_forms.py     (DSM_EXAMPLE_TINY=1 for a seconds-long run)
"""

import os

import jax
import jax.numpy as jnp

import dsmtheory as dsm

dsm.enable_x64()
TINY = os.environ.get("DSM_EXAMPLE_TINY") == "1"

gm = dsm.ring(num_modes=8, radius=2.0, std=0.25)
alpha, sigma = 0.8, 0.6  # any positive pair (VP would have alpha^2 + sigma^2 = 1)
pt = gm.noised(alpha, sigma)

x = pt.sample(jax.random.PRNGKey(0), 4)
score, hess = pt.score(x), pt.hessian(x)
print("x_t =\n", x)
print("score =\n", score)

# Autodiff of the closed-form log-density agrees with the closed-form score and Hessian.
g = jax.vmap(jax.grad(pt.log_prob))(x)
h = jax.vmap(jax.hessian(pt.log_prob))(x)
print("max |score - grad log p|   =", float(jnp.max(jnp.abs(score - g))))
print("max |hessian - hess log p| =", float(jnp.max(jnp.abs(hess - h))))

# Tweedie's identities, both ways.
m = dsm.posterior_mean(gm, x, alpha, sigma)
c = dsm.posterior_cov(gm, x, alpha, sigma)
eye = jnp.eye(gm.dim)
print("Tweedie mean error =", float(jnp.max(jnp.abs(m - (x + sigma**2 * score) / alpha))))
tweedie_cov = sigma**2 / alpha**2 * (eye + sigma**2 * hess)
print("Tweedie cov error  =", float(jnp.max(jnp.abs(c - tweedie_cov))))
print("posterior covariances are PSD:", bool(jnp.all(jnp.linalg.eigvalsh(c) > 0)))

# Monte Carlo: regress x0 on x_t near one point by importance weights of q(x_t | x0).
n = 20_000 if TINY else 400_000
k0, k1 = jax.random.split(jax.random.PRNGKey(1))
x0 = gm.sample(k0, n)
target = x[0]
logw = -jnp.sum((target - alpha * x0) ** 2, axis=-1) / (2 * sigma**2)
w = jax.nn.softmax(logw)
mc_mean = jnp.sum(w[:, None] * x0, axis=0)
ess = 1.0 / jnp.sum(w**2)
mc_se = jnp.sqrt(jnp.sum(w[:, None] ** 2 * (x0 - mc_mean) ** 2, axis=0))
print(f"E[x0 | x_t] exact {m[0]}  Monte Carlo {mc_mean} +- {mc_se} (ESS {float(ess):.0f})")
