"""Tests of dsmtheory.losses: one network output gives one weighted loss in every
parameterization; Min-SNR in v-space does not reuse the eps formula (diffusers #5654)."""

import math

import jax
import numpy as np
import pytest
from tolerances import EXACT_ATOL

from dsmtheory import schedules, weightings
from dsmtheory.losses import dsm_loss, dsm_target
from dsmtheory.parameterization import PARAMETERIZATIONS, convert

# The same output converted between parameterizations agrees to rounding; the brief asks
# for 1e-12 relative.
SAME_LOSS_RTOL = 1e-12


def _batch(seed=0, n=16, d=3):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(n, d))
    eps = rng.normal(size=(n, d))
    eps_hat = eps + 0.3 * rng.normal(size=(n, d))  # a "network output" in eps space
    lam = rng.uniform(-8, 8, size=n)
    return x0, eps, eps_hat, lam


@pytest.mark.parametrize("process", ["ve", "vp"])
@pytest.mark.parametrize("wname", ["simple", "min_snr", "edm", "soft_min_snr", "sigmoid"])
def test_same_output_same_weighted_loss(process, wname):
    x0, eps, eps_hat, lam = _batch()
    w = weightings.get(wname)
    a, s = schedules.alpha_sigma(lam, process)
    x_t = a[:, None] * x0 + s[:, None] * eps
    # hand formula: omega_eps * ||eps - eps_hat||^2
    expected = np.asarray(w(lam)) * np.sum((eps - eps_hat) ** 2, axis=-1)
    for p in PARAMETERIZATIONS:
        pred = convert(eps_hat, "eps", p, x_t, a, s)
        got = dsm_loss(pred, x0, eps, lam, parameterization=p, weighting=w, process=process)
        assert got.shape == (16,)
        np.testing.assert_allclose(got, expected, rtol=SAME_LOSS_RTOL, atol=0)


def test_min_snr_v_space_is_not_the_eps_formula():
    x0, eps, eps_hat, lam = _batch(1)
    gamma = 5.0
    snr = np.exp(lam)
    a, s = schedules.alpha_sigma(lam, "vp")
    x_t = a[:, None] * x0 + s[:, None] * eps
    v = a[:, None] * eps - s[:, None] * x0
    v_hat = convert(eps_hat, "eps", "v", x_t, a, s)
    x_hat = convert(eps_hat, "eps", "x0", x_t, a, s)
    v_mse = np.sum((v - v_hat) ** 2, axis=-1)
    x_mse = np.sum((x0 - x_hat) ** 2, axis=-1)
    e_mse = np.sum((eps - eps_hat) ** 2, axis=-1)
    x_loss = np.minimum(snr, gamma) * x_mse  # Hang et al.: x-loss weight min(SNR, gamma)
    e_loss = np.minimum(snr, gamma) / snr * e_mse
    v_loss = np.minimum(snr, gamma) / (snr + 1) * v_mse  # the correct v-loss weight
    np.testing.assert_allclose(x_loss, e_loss, rtol=1e-11)
    np.testing.assert_allclose(v_loss, e_loss, rtol=1e-11)
    ours = dsm_loss(
        v_hat,
        x0,
        eps,
        lam,
        parameterization="v",
        weighting=weightings.get("min_snr", gamma=gamma),
        process="vp",
    )
    np.testing.assert_allclose(ours, v_loss, rtol=1e-11)
    # the diffusers #5654 bug: the eps weight min(SNR,gamma)/SNR put on the v-MSE is off by
    # the factor kappa_v = 1 + e^{-lam} (largest at low SNR)
    buggy = np.minimum(snr, gamma) / snr * v_mse
    np.testing.assert_allclose(buggy / np.asarray(ours), 1 + np.exp(-lam), rtol=1e-11)
    assert np.all(np.abs(buggy / np.asarray(ours) - 1) > 3e-4)


def test_targets_and_zero_loss():
    x0, eps, _, lam = _batch(2)
    for process in ("ve", "vp"):
        a, s = schedules.alpha_sigma(lam, process)
        a, s = np.asarray(a)[:, None], np.asarray(s)[:, None]
        st_ = s / a
        c_skip = 0.25 / (st_**2 + 0.25)
        c_out = st_ * 0.5 / np.sqrt(st_**2 + 0.25)
        F = (x0 - c_skip * (a * x0 + s * eps) / a) / c_out
        np.testing.assert_allclose(
            dsm_target(x0, eps, lam, parameterization="F", process=process), F, rtol=1e-12
        )
        np.testing.assert_allclose(
            dsm_target(x0, eps, lam, parameterization="score", process=process),
            -eps / s,
            rtol=1e-12,
        )
        for p in PARAMETERIZATIONS:
            tgt = dsm_target(x0, eps, lam, parameterization=p, process=process)
            loss = dsm_loss(
                tgt,
                x0,
                eps,
                lam,
                parameterization=p,
                weighting=weightings.get("edm"),
                process=process,
            )
            np.testing.assert_allclose(loss, 0.0, atol=EXACT_ATOL)


def test_vmap_and_jit_per_example():
    x0, eps, eps_hat, lam = _batch(3)
    w = weightings.get("p2", gamma=0.5)
    f = lambda p, x, e, l: dsm_loss(p, x, e, l, parameterization="eps", weighting=w, process="vp")
    batched = f(eps_hat, x0, eps, lam)
    np.testing.assert_allclose(jax.vmap(f)(eps_hat, x0, eps, lam), batched, rtol=1e-13)
    np.testing.assert_allclose(jax.jit(f)(eps_hat, x0, eps, lam), batched, rtol=1e-13)


def test_precomputed_batch_weights_for_alsr():
    x0, eps, eps_hat, lam = _batch(4)
    omega = weightings.get("alsr")(lam)  # batch mean taken over the whole batch
    got = jax.vmap(
        lambda p, x, e, l, o: dsm_loss(
            p, x, e, l, parameterization="eps", weighting=o, process="ve"
        )
    )(eps_hat, x0, eps, lam, omega)
    expected = np.asarray(omega) * np.sum((eps - eps_hat) ** 2, axis=-1)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    m = lam.mean()
    edm = 1 + np.exp(-lam) / 0.25
    np.testing.assert_allclose(omega, edm * np.exp(-0.05 * (lam - m) ** 2), rtol=1e-12)


def test_bad_input():
    x0, eps, eps_hat, lam = _batch(5)
    w = weightings.get("simple")
    with pytest.raises(TypeError, match="weightings.get"):
        dsm_loss(eps_hat, x0, eps, lam, parameterization="eps", weighting="min_snr", process="vp")
    with pytest.raises(ValueError, match="parameterization"):
        dsm_loss(eps_hat, x0, eps, lam, parameterization="e", weighting=w, process="vp")
    with pytest.raises(ValueError, match="process"):
        dsm_loss(eps_hat, x0, eps, lam, parameterization="eps", weighting=w, process="xx")
    with pytest.raises(ValueError, match="shape"):
        dsm_loss(eps_hat[:, :2], x0, eps, lam, parameterization="eps", weighting=w, process="vp")
    with pytest.raises(ValueError, match="sigma_data"):
        dsm_loss(
            eps_hat, x0, eps, lam, parameterization="F", weighting=w, process="vp", sigma_data=-1.0
        )
    assert math.isfinite(
        float(
            dsm_loss(eps_hat, x0, eps, lam, parameterization="F", weighting=w, process="vp").sum()
        )
    )
