"""Tests of dsmtheory.train's configuration: bad settings name the argument."""

import pytest

from dsmtheory import train as T


def test_unknown_weighting_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown weighting 'nope'.*matrix_optimal.*simple"):
        T.TrainConfig(weighting="nope")


@pytest.mark.parametrize("field", ["capacity", "steps", "batch_size"])
def test_counts_below_one_name_the_argument(field):
    with pytest.raises(ValueError, match=f"{field} must be >= 1"):
        T.TrainConfig(**{field: 0})


def test_other_bad_settings():
    with pytest.raises(TypeError, match="capacity must be an integer"):
        T.TrainConfig(capacity=2.5)
    with pytest.raises(ValueError, match="learning_rate"):
        T.TrainConfig(learning_rate=-1.0)
    with pytest.raises(ValueError, match="unknown parameterization"):
        T.TrainConfig(parameterization="y")
    with pytest.raises(ValueError, match="batch_size must be even"):
        T.TrainConfig(noise_sampling="antithetic", batch_size=3)
    with pytest.raises(ValueError, match="capacity 3 is too small"):
        T.TrainConfig(capacity=3)
    with pytest.raises(TypeError, match="mixture must be a GaussianMixture"):
        T.TrainConfig(mixture=[0.0])


def test_model_sizes_of_the_zhang_capacities():
    # h² + 10h + 2 parameters in 2-D (two hidden layers of width h, 4 noise features)
    widths = [T.width_for_capacity(c, 2) for c in (25, 100, 500, 1000)]
    assert widths == [2, 6, 18, 27]
    assert [T.num_params(w, 2) for w in widths] == [w * w + 10 * w + 2 for w in widths]
