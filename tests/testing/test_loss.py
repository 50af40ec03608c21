"""Tests of dsmtheory.testing.assert_loss: users' per-example losses, written here by hand
in NumPy (targets from FORMULAS.md §1), against dsmtheory.losses.dsm_loss."""

import numpy as np
import pytest
from tolerances import EXACT_RTOL

from dsmtheory import mixture
from dsmtheory.testing import assert_loss

from . import bug_zoo as zoo

GM = mixture.ring()
EXACT = EXACT_RTOL  # float64 user code against the float64 registry: rounding only


def _ab(lam):  # VP: alpha^2 = sigmoid(lam), sigma^2 = sigmoid(-lam)
    return np.sqrt(1 / (1 + np.exp(-lam))), np.sqrt(1 / (1 + np.exp(lam)))


def _targets(x0, eps, lam, sd=0.5):
    a, s = _ab(lam)
    a, s = a[:, None], s[:, None]
    x_t = a * x0 + s * eps
    st2 = np.exp(-lam)[:, None]  # sigma-tilde^2
    c_skip = sd**2 / (st2 + sd**2)
    c_out = np.sqrt(st2) * sd / np.sqrt(st2 + sd**2)
    return {
        "eps": eps,
        "x0": x0,
        "v": a * eps - s * x0,
        "score": -eps / s,
        "F": (x0 - c_skip * x_t / a) / c_out,
    }


def _loss(target, weight):
    """A user's loss: weight(SNR) times the squared error against ``target``."""

    def fn(out, x0, eps, lam):
        t = _targets(x0, eps, lam)[target]
        return weight(np.exp(lam)) * np.sum((t - out) ** 2, axis=-1)

    return fn


@pytest.mark.parametrize(
    "p, weight",
    [
        ("eps", zoo.min_snr_eps),
        ("x0", zoo.min_snr_x0),
        ("v", zoo.min_snr_v),
        ("score", lambda s: np.minimum(1, 5.0 / s) / (1 + s)),
    ],
)
def test_correct_losses_pass(p, weight):
    res = assert_loss(
        _loss(p, weight), GM, schedule="cosine", parameterization=p, weighting="min_snr",
        gamma=5.0, rtol=EXACT,
    )  # fmt: skip
    assert res.max_rel_error <= EXACT and res.num_points == 256


def test_correct_f_loss_passes():
    # k-diffusion's Soft-Min-SNR on the F loss, sigma = e^{-lam/2}
    fn = _loss("F", lambda s: zoo.soft_min_snr_f_kdiffusion(s**-0.5, 0.5))
    assert_loss(
        fn, GM, schedule="cosine", parameterization="F",
        weighting="soft_min_snr", sigma_data=0.5, rtol=1e-11,
    )  # fmt: skip


def _message(fn, p, **kw):
    with pytest.raises(AssertionError) as info:
        assert_loss(fn, GM, schedule="cosine", parameterization=p, weighting="min_snr", **kw)
    return str(info.value)


def test_eps_weight_on_the_v_mse():
    msg = _message(_loss("v", zoo.min_snr_v_eps_formula), "v", gamma=5.0)
    assert "loss_fn / exact = kappa_v(lambda): a factor in the multiplier." in msg
    assert "matches: min_snr(gamma=5) written for 'eps'" in msg
    assert "Expected multiplier on the 'v' MSE: min(SNR, 5)/(SNR + 1)" in msg


def test_wrong_target_is_named():
    msg = _message(_loss("eps", zoo.min_snr_v), "v", gamma=5.0)
    assert "compares the model output with the 'eps' target, not the 'v' target" in msg
    assert "min_snr(gamma=5) written for 'v'" in msg


def test_missing_c_out_squared():
    sd = 0.5
    good = _loss("F", lambda s: zoo.soft_min_snr_f_kdiffusion(s**-0.5, sd))

    def bad(out, x0, eps, lam):
        st2 = np.exp(-lam)
        return good(out, x0, eps, lam) * st2 * sd**2 / (st2 + sd**2)  # an extra c_out^2

    with pytest.raises(AssertionError, match=r"loss_fn / exact = c_out\^2\(lambda\)"):
        assert_loss(
            bad, GM, schedule="cosine", parameterization="F", weighting="soft_min_snr",
            sigma_data=sd,
        )  # fmt: skip


def test_mean_instead_of_sum_and_constants():
    half = lambda *a: _loss("v", zoo.min_snr_v)(*a) / 2  # noqa: E731 - D = 2
    msg = _message(half, "v", gamma=5.0)
    assert "= 1/D (D = 2): a mean over the last axis instead of a sum" in msg
    res = assert_loss(
        half, GM, schedule="cosine", parameterization="v", weighting="min_snr", gamma=5.0,
        up_to_constant=True,
    )  # fmt: skip
    assert res.constant == pytest.approx(0.5, rel=1e-12)


def test_unrelated_loss():
    def noisy(out, x0, eps, lam):
        return np.sum(out**2, axis=-1) + 1.0

    msg = _message(noisy, "v", gamma=5.0)
    assert "varies by a factor up to" in msg and "same lambda" in msg


def test_bad_arguments():
    fn = _loss("v", zoo.min_snr_v)
    with pytest.raises(ValueError, match="one loss per example"):
        assert_loss(lambda *a: 1.0, GM, schedule="cosine", parameterization="v", weighting="simple")
    with pytest.raises(TypeError, match="GaussianMixture"):
        assert_loss(fn, None, schedule="cosine", parameterization="v", weighting="simple")
    with pytest.raises(ValueError, match='parameterization="F" needs the sigma_data'):
        assert_loss(fn, GM, schedule="cosine", parameterization="F", weighting="min_snr")
    with pytest.raises(ValueError, match="num_lam"):
        assert_loss(fn, GM, schedule="cosine", parameterization="v", weighting="v", num_lam=1)
