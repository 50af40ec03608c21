# ruff: noqa: B023, E402, E501, UP031 - measurement scripts: x64 is set before importing dsmtheory; closures run in their loop iteration
"""Bias and variance of adaptive.online_c_star against exact c*, fed the exact posterior
mean's losses (no model error): quick (400 x 64) and full (20000 x 256) budgets."""

import json

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import dsmtheory as dsm
from dsmtheory import adaptive, optimal
from dsmtheory import train as T
from dsmtheory.mixture import posterior_mean

out = {}
for name, gm in (("ring", dsm.ring()), ("bimodal_1d", dsm.bimodal_1d())):
    sched = T.TrainConfig(mixture=gm).build_schedule()
    lo, hi = float(sched.lam_min), float(sched.lam_max)
    nb = 32
    est = adaptive.online_c_star(nb, (lo, hi), 0.99, dim=gm.dim)
    centres = lo + (np.arange(nb) + 0.5) * (hi - lo) / nb
    c = np.asarray(optimal.c_star_of_lambda(gm, centres))
    # bin-averaged target: D / mean_bin d_eff (8 points per bin, midpoint rule)
    sub = lo + (np.arange(nb * 8) + 0.5) * (hi - lo) / (nb * 8)
    d_sub = gm.dim / np.asarray(optimal.c_star_of_lambda(gm, sub))
    c_bin = gm.dim / d_sub.reshape(nb, 8).mean(1)
    for budget, (steps, batch) in (("quick", (400, 64)), ("full", (20000, 256))):

        def one(key):
            def step(state, k):
                k1, k2, k3 = jax.random.split(k, 3)
                lam = jax.random.uniform(k1, (batch,), minval=lo, maxval=hi)
                x0 = gm.sample(k2, batch)
                eps = jax.random.normal(k3, x0.shape)
                s = jnp.exp(-lam / 2)
                x_t = x0 + s[:, None] * eps
                x0_hat = jax.vmap(lambda x, ss: posterior_mean(gm, x[None], 1.0, ss)[0])(x_t, s)
                eps_hat = (x_t - x0_hat) / s[:, None]
                return est.update(state, lam, jnp.sum((eps - eps_hat) ** 2, -1)), None

            st, _ = jax.lax.scan(step, est.init(), jax.random.split(key, steps))
            return est.weight(st, jnp.asarray(centres))

        reps = 8
        w = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(7), reps)))
        rel = w / c - 1.0
        relb = w / c_bin - 1.0
        out[f"{name}/{budget}"] = {
            "bias_vs_centre": rel.mean(0).tolist(),
            "sd": rel.std(0, ddof=1).tolist(),
            "bias_vs_bin_avg": relb.mean(0).tolist(),
            "bias_se": (rel.std(0, ddof=1) / np.sqrt(reps)).tolist(),
        }
        print(
            name,
            budget,
            "max|bias| vs c*(centre) %.4f  max|bias| vs bin-avg %.4f (se %.4f) median sd %.4f  max sd %.4f"
            % (
                np.abs(rel.mean(0)).max(),
                np.abs(relb.mean(0)).max(),
                (rel.std(0, ddof=1) / np.sqrt(reps)).max(),
                np.median(rel.std(0, ddof=1)),
                rel.std(0, ddof=1).max(),
            ),
            flush=True,
        )
json.dump(out, open("online_exact.json", "w"))
