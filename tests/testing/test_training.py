"""Tests of dsmtheory.testing.assert_same_training (FORMULAS.md §5 P10): with Adam (eps
tiny) trajectories agree to rounding iff the weightings differ by a constant; with SGD iff
the learning-rate rescale by that constant makes the updates equal."""

import math

import numpy as np
import pytest

from dsmtheory import weightings
from dsmtheory.testing import TRAIN_RTOL_F64, assert_same_training

STEPS = 60  # enough steps for the trajectories of different weightings to separate
TAU = 0.3
SKL = weightings.get("smoothed_kl", tau=TAU)
SMS = weightings.get("soft_min_snr", sigma_data=math.sqrt(TAU**2 / (1 + TAU**2)))  # P1 pair


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.slow
def test_proportional_weightings_train_the_same(optimizer):
    r = assert_same_training(SKL, SMS, optimizer=optimizer, steps=STEPS)
    assert r.same and r.max_rel_diff < 1e-12  # measured ~1e-15: rounding
    assert r.constant == pytest.approx(1 / (1 + TAU**2), rel=1e-12)
    assert r.constant_spread < 1e-12
    if optimizer == "sgd":
        assert r.learning_rates[1] == pytest.approx(r.learning_rates[0] * r.constant, rel=1e-15)
    else:
        assert r.learning_rates[0] == r.learning_rates[1]
    # the runs differ in loss value by the constant, not in trajectory
    assert r.final_losses[0] == pytest.approx(r.final_losses[1] * r.constant, rel=1e-9)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_different_weightings_do_not(optimizer):
    with pytest.raises(AssertionError) as info:
        assert_same_training("min_snr", "soft_min_snr", optimizer=optimizer, steps=STEPS)
    msg = str(info.value)
    assert "does not follow the same trajectory" in msg and "not proportional" in msg
    rel = float(msg.split("differ by up to ")[1].split(" ")[0])
    assert rel > 1e3 * TRAIN_RTOL_F64  # measured 0.09-0.15 at 60 steps: far above rounding


def test_adam_eps_breaks_the_invariance_measurably():
    big = lambda lam: 1e4 * np.asarray(SKL(lam))  # noqa: E731 - a user's callable
    r = assert_same_training(SKL, big, optimizer="adam", steps=STEPS)  # eps = 1e-30
    assert r.max_rel_diff < 1e-12
    with pytest.raises(AssertionError, match="Adam's eps=1e-08"):
        assert_same_training(SKL, big, optimizer="adam", steps=STEPS, adam_eps=1e-8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="optimizer"):
        assert_same_training(SKL, SMS, optimizer="lion")
    with pytest.raises(ValueError, match="steps"):
        assert_same_training(SKL, SMS, steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        assert_same_training(SKL, SMS, learning_rate=-1.0)
    with pytest.raises(ValueError, match="finite and > 0 on the drawn lambda"):
        assert_same_training(SKL, lambda lam: np.zeros_like(lam), steps=STEPS)
    with pytest.raises(TypeError, match="schedule"):
        assert_same_training(SKL, SMS, schedule=3)
