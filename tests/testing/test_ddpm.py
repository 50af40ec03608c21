"""Tests of dsmtheory.testing.ddpm: diffusers' DDPMScheduler betas rebuilt with plain
Python loops from the formulas in its source (beta_schedule "linear", "scaled_linear",
"squaredcos_cap_v2")."""

import math

import numpy as np
import pytest

from dsmtheory.testing import DiscreteSchedule, ddpm_alphas_cumprod, ddpm_log_snr


def _loop(schedule, n, b0=1e-4, b1=0.02):
    if schedule == "linear":
        betas = [b0 + (b1 - b0) * i / (n - 1) for i in range(n)]
    elif schedule == "scaled_linear":
        r0, r1 = math.sqrt(b0), math.sqrt(b1)
        betas = [(r0 + (r1 - r0) * i / (n - 1)) ** 2 for i in range(n)]
    else:

        def f(u):
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = [min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)]
    out, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        out.append(prod)
    return np.array(out)


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("n", [10, 1000])
def test_alphas_cumprod_as_diffusers(schedule, n):
    b0, b1 = (0.00085, 0.012) if schedule == "scaled_linear" else (1e-4, 0.02)
    got = ddpm_alphas_cumprod(schedule, n, b0, b1)
    np.testing.assert_allclose(got, _loop(schedule, n, b0, b1), rtol=1e-12)
    assert got.shape == (n,) and np.all(np.diff(got) < 0) and 0 < got[-1] < got[0] < 1


def test_cosine_last_beta_is_clipped():
    a = ddpm_alphas_cumprod("squaredcos_cap_v2", 1000)
    assert a[-1] / a[-2] == pytest.approx(1 - 0.999, rel=1e-9)


def test_float32_like_diffusers():
    a32 = ddpm_alphas_cumprod("linear", 1000, dtype=np.float32)
    assert a32.dtype == np.float32
    np.testing.assert_allclose(a32, ddpm_alphas_cumprod("linear"), rtol=1e-4)


def test_log_snr_and_schedule_object():
    a = ddpm_alphas_cumprod("linear")
    lam = ddpm_log_snr(a)
    np.testing.assert_allclose(np.exp(lam), a / (1 - a), rtol=1e-12)
    s = DiscreteSchedule.build("scaled_linear", 1000, 0.00085, 0.012)
    assert s.beta_start == 0.00085 and s.timesteps[-1] == 999
    np.testing.assert_allclose(s.snr, s.alphas_cumprod / (1 - s.alphas_cumprod), rtol=1e-12)
    assert DiscreteSchedule.build("squaredcos_cap_v2", 50).beta_start is None


def test_bad_input():
    with pytest.raises(ValueError, match="beta_schedule"):
        ddpm_alphas_cumprod("cosine")
    with pytest.raises(ValueError, match="num_train_timesteps"):
        ddpm_alphas_cumprod("linear", 1)
    with pytest.raises(ValueError, match="beta_start must be < beta_end"):
        ddpm_alphas_cumprod("linear", 100, 0.02, 0.01)
    with pytest.raises(ValueError, match=r"alphas_cumprod\[2\] = 0.0"):
        ddpm_log_snr([0.9, 0.5, 0.0])  # zero terminal SNR
    with pytest.raises(TypeError, match="real array"):
        ddpm_log_snr(np.array([True, False]))
