"""A sweep sharded over 2 (forced host) devices equals the one-device sweep.

Both runs happen in subprocesses, since the device count is fixed when JAX starts.
Tolerance: the per-configuration programs are the same float32 operations in both runs;
only XLA's partitioning (and so possibly fusion and summation order) differs, so results
agree to float32 rounding amplified over a few Adam steps: 1e-5 relative.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SHARD_RTOL = 1e-5
SHARD_ATOL = 1e-6

SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np
    import dsmtheory as dsm
    from dsmtheory import train as T
    dsm.enable_x64()
    base = T.TrainConfig(steps=4, batch_size=8, capacity=25)
    ev = T.EvalConfig(num_checkpoints=1, num_bins=2, fisher_points=8, grad_points=4,
                      ed_samples=8, ode_steps=3)
    res = T.sweep(base, weightings=["simple", "edm", "min_snr"], capacities=[25],
                  seeds=[0], evaluation=ev, progress=False)
    print(json.dumps({
        "devices": jax.device_count(),
        "timing_devices": res.timings["devices"],
        "loss": res.loss.tolist(),
        "ed": res.energy_distance.tolist(),
        "fisher": res.fisher_total.tolist(),
        "grad_std": res.grad_std.tolist(),
        "w1": np.asarray(res.final_state.params[0][0]).tolist(),
    }))
    """
)


def _start(ndev):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={ndev}"
    ).strip()
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sharded_sweep_equals_single_device():
    procs = {n: _start(n) for n in (1, 2)}
    out = {}
    for n, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        out[n] = json.loads(stdout.strip().splitlines()[-1])
    assert out[1]["devices"] == 1 and out[2]["devices"] == 2
    assert out[2]["timing_devices"] == 2  # 3 configurations padded to 4, 2 per device
    for k in ("loss", "ed", "fisher", "grad_std", "w1"):
        np.testing.assert_allclose(
            np.asarray(out[2][k]),
            np.asarray(out[1][k]),
            rtol=SHARD_RTOL,
            atol=SHARD_ATOL,
            err_msg=k,
        )
