# ruff: noqa: B023, E402, E501, UP031 - measurement scripts: x64 is set before importing dsmtheory; closures run in their loop iteration
"""Learned (edm2_learned) and online (online_c_star) multipliers vs exact c* on a mixture,
per λ bin, against training steps; mean ± se over seeds (issue 15 items 2, 3).

Usage: python benchmarks/bench_issue15_weighting_vs_c_star.py STEPS BATCH TAG
[ring | MIXTURE.json] [CAPACITIES, comma-separated] [SEEDS]; writes TAG.json.
"""

import json
import sys
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import dsmtheory as dsm
from dsmtheory import optimal
from dsmtheory import train as T

steps, batch, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = sys.argv[4] if len(sys.argv) > 4 else "ring"
if data == "ring":
    gm = dsm.ring()
else:
    gm = dsm.from_json(open(data).read())
caps = [int(c) for c in (sys.argv[5].split(",") if len(sys.argv) > 5 else ["100", "1000"])]
nseeds = int(sys.argv[6]) if len(sys.argv) > 6 else 4
base = T.TrainConfig(steps=steps, batch_size=batch, capacity=caps[0], mixture=gm)
ev = T.EvalConfig(
    num_checkpoints=10, num_bins=12, fisher_points=128, grad_points=2, ed_samples=32, ode_steps=2
)
t0 = time.time()
res = T.sweep(
    base,
    weightings=["edm2_learned", "online_c_star"],
    capacities=caps,
    seeds=list(range(nseeds)),
    evaluation=ev,
    progress=False,
)
el = time.time() - t0
centres = 0.5 * (res.lam_edges[1:] + res.lam_edges[:-1])
c = np.asarray(
    optimal.c_star_of_lambda(
        gm,
        centres,
        **(
            {}
            if gm.dim <= 3
            else dict(method="monte_carlo", key=jax.random.PRNGKey(9), num_samples=20000)
        ),
    )
)
sig2 = np.exp(-centres)
d_eff = gm.dim / c
out = {
    "timings": {k: v for k, v in res.timings.items() if k not in ("chunk_s", "chunk_cpu_s")},
    "chunk_s": res.timings["chunk_s"],
    "steps": steps,
    "batch": batch,
    "data": data,
    "seconds": el,
    "lam_centres": centres.tolist(),
    "sigma_centres": np.exp(-centres / 2).tolist(),
    "c_star": c.tolist(),
    "checkpoints": res.checkpoint_steps.tolist(),
    "groups": {},
}
for w in ["edm2_learned", "online_c_star"]:
    for cap in caps:
        idx = [
            i for i, cf in enumerate(res.configs) if cf["weighting"] == w and cf["capacity"] == cap
        ]
        m = res.multiplier[idx]  # (S, ck, b)
        r = m / c
        rn = r / np.exp(np.mean(np.log(r), -1, keepdims=True))
        # prediction from the model's exact Fisher divergence: D / (d_eff + σ² FD)
        pred = gm.dim / (d_eff + sig2 * res.fisher[idx])
        rp = pred / c
        S = len(idx)

        def ms(a):
            return np.mean(a, 0).tolist(), (np.std(a, 0, ddof=1) / np.sqrt(S)).tolist()

        out["groups"][f"{w}/{cap}"] = {
            "ratio": ms(r),
            "ratio_norm": ms(rn),
            "pred_ratio_from_fd": ms(rp),
            "fisher_total": ms(res.fisher_total[idx]),
            "ed": ms(res.energy_distance[idx]),
        }
json.dump(out, open(f"{tag}.json", "w"))
np.set_printoptions(precision=3, suppress=True, linewidth=200)
print(tag, "seconds", round(el, 1), out["chunk_s"], "sigma", np.exp(-centres / 2))
for k, g in out["groups"].items():
    print(k, "final ratio", np.array(g["ratio"][0][-1]), "+-", np.array(g["ratio"][1][-1]))
    print(k, "final norm ", np.array(g["ratio_norm"][0][-1]))
    print(k, "FD-pred    ", np.array(g["pred_ratio_from_fd"][0][-1]))
