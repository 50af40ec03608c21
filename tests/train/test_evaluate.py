"""Tests of the evaluation helpers of dsmtheory.train."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import train as T


def test_mismatched_sample_dimensions():
    with pytest.raises(ValueError, match=r"x_t must have shape \(N, 1\)"):
        T.fisher_divergence(lambda x: x, dsm.bimodal_1d(), jnp.zeros((3, 2)), 1.0, 0.5)
    with pytest.raises(ValueError, match="same number of dimensions"):
        dsm.metrics.energy_distance(jnp.zeros((3, 1)), jnp.zeros((3, 2)))


def test_fisher_divergence_helper_is_zero_for_the_true_score():
    gm = dsm.ring()
    x = gm.noised(1.0, 0.3).sample(jax.random.PRNGKey(0), 50)
    f = T.fisher_divergence(gm.noised(1.0, 0.3).score, gm, x, 1.0, 0.3)
    np.testing.assert_array_equal(np.asarray(f), 0.0)
