"""Random dtypes, shapes and values thrown at the public boundary (hypothesis): whatever is
thrown, the answer is a result or a TypeError/ValueError naming the argument — never
another exception, never a silently converted value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsmtheory as dsm
from dsmtheory import losses, metrics, schedules, weightings

from ._cases import GM

FEW = settings(max_examples=20, deadline=None)

BAD_DTYPES = [np.bool_, np.complex64, np.complex128, np.str_, object]
bad_arrays = st.builds(
    lambda dt, shape: np.zeros(shape, dtype=dt),
    st.sampled_from(BAD_DTYPES),
    st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple),
)
bad_scalars = st.one_of(
    st.booleans(),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.none(),
    st.lists(st.floats(), max_size=2).filter(lambda v: len(v) != 1),
)
nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])

ARRAY_TARGETS = {
    "GaussianMixture.score:x": lambda v: GM.score(v),
    "posterior_mean:x_t": lambda v: dsm.posterior_mean(GM, v, 1.0, 0.5),
    "energy_distance:x": lambda v: metrics.energy_distance(v, np.zeros((3, 2))),
    "nll:samples": lambda v: metrics.nll(GM, v),
    "losses.dsm_target:x0": lambda v: losses.dsm_target(
        v, np.zeros((3, 2)), 0.0, parameterization="eps", process="vp"
    ),
    "Schedule.lam:t": lambda v: schedules.get("ve").lam(v),
    "Weighting:lam": lambda v: weightings.get("simple")(v),
}

SCALAR_TARGETS = {
    "irreducible_variance:sigma": lambda v: dsm.irreducible_variance(GM, 1.0, v),
    "single_gaussian:std": lambda v: dsm.single_gaussian([0.0], v),
    "schedules.get(ve):sigma_min": lambda v: schedules.get("ve", sigma_min=v),
    "weightings.get(min_snr):gamma": lambda v: weightings.get("min_snr", gamma=v),
    "edm_sigmas:rho": lambda v: dsm.sampling.edm_sigmas(8, rho=v),
    "TrainConfig:learning_rate": lambda v: dsm.train.TrainConfig(learning_rate=v),
}


def _arg(name):
    return name.split(":")[1]


@pytest.mark.parametrize("name", sorted(ARRAY_TARGETS))
@FEW
@given(value=bad_arrays)
def test_arrays_of_bad_dtype_refused(name, value):
    with pytest.raises(TypeError) as info:
        ARRAY_TARGETS[name](value)
    assert _arg(name) in str(info.value)


@pytest.mark.parametrize("name", sorted(SCALAR_TARGETS))
@FEW
@given(value=bad_scalars)
def test_scalars_of_bad_type_refused(name, value):
    with pytest.raises((TypeError, ValueError)) as info:
        SCALAR_TARGETS[name](value)
    assert _arg(name) in str(info.value)
    # a wrong type is a TypeError; a list of floats is a wrong shape (ValueError) or wrong type
    if not isinstance(value, list):
        assert info.type is TypeError


@pytest.mark.parametrize("name", sorted(SCALAR_TARGETS))
@FEW
@given(value=st.one_of(nonfinite, st.floats(max_value=0.0, allow_nan=False)))
def test_scalars_out_of_range_refused(name, value):
    with pytest.raises(ValueError) as info:
        SCALAR_TARGETS[name](value)
    assert _arg(name) in str(info.value)


@FEW
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 4).filter(lambda c: c != 2),
)
def test_wrong_dimension_refused(rows, cols):
    with pytest.raises(ValueError) as info:
        GM.log_prob(np.zeros((rows, cols)))
    assert "x" in str(info.value) and "2" in str(info.value)


@FEW
@given(value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8))
def test_unknown_registry_names_list_the_known_ones(value):
    for getter, known in ((schedules.get, schedules.names()), (weightings.get, weightings.names())):
        if value in known:
            continue
        with pytest.raises(ValueError) as info:
            getter(value)
        assert all(k in str(info.value) for k in known)
