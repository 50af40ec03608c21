# ruff: noqa: B023, E402, E501, UP031 - measurement scripts: x64 is set before importing dsmtheory; closures run in their loop iteration
"""estimate_c_star with trained MLPs (simple weighting) on the ring: the model-error bias,
against the exact c* and the prediction from the exact Fisher divergence."""

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import dsmtheory as dsm
from dsmtheory import optimal
from dsmtheory import train as T
from dsmtheory.train import fisher_divergence

gm = dsm.ring()
data = np.asarray(gm.sample(jax.random.PRNGKey(0), 20000))
sigmas = np.array([0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0])
exact = optimal.c_star_curve(gm, sigmas)
print("sigma", sigmas)
print("exact c*", np.round(exact, 3))
for cap, steps in ((100, 4000), (1000, 4000)):
    cfg = T.TrainConfig(steps=steps, batch_size=256, capacity=cap, mixture=gm)
    r = T.train(cfg, jax.random.PRNGKey(1))
    prob = T.make_problem(cfg)

    def pred(x, a, s):
        a_ = jnp.full(x.shape[:1], a, jnp.float32)
        s_ = jnp.full(x.shape[:1], s, jnp.float32)
        lam = jnp.log(a_**2 / s_**2)
        e = prob.eps_hat(r.state.params, jnp.asarray(x, jnp.float32), a_, s_, lam)
        return (x - s * e) / a

    est = optimal.estimate_c_star_curve(pred, data, sigmas, "ve", key=jax.random.PRNGKey(2))
    # prediction D / (d_eff + σ² FD) with the exact FD at each σ
    pr = []
    model = T.to_model(cfg, r.state)
    for s in sigmas:
        xt = gm.noised(1.0, s).sample(jax.random.PRNGKey(3), 20000)
        lam = jnp.full((xt.shape[0],), -2 * np.log(s))

        def score(x):
            e = prob.eps_hat(
                r.state.params,
                jnp.asarray(x, jnp.float32),
                jnp.ones(x.shape[0], jnp.float32),
                jnp.full(x.shape[0], s, jnp.float32),
                lam.astype(jnp.float32),
            )
            return -e / s

        fd = float(jnp.mean(fisher_divergence(score, gm, xt, 1.0, s)))
        d = gm.dim / optimal.homoskedastic_multiplier(gm, 1.0, s).value
        pr.append(gm.dim / (d + s**2 * fd))
    print(
        f"cap {cap}: c*_hat / c*",
        np.round(est.value / exact, 3),
        "+-",
        np.round(est.stderr / exact, 3),
    )
    print(f"cap {cap}: FD-predicted / c*", np.round(np.array(pr) / exact, 3))
