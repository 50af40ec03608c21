"""Tests of the kit's shared pieces: formula texts (checked numerically against the
registry), parameterization aliases, input conversions."""

import numpy as np
import pytest

from dsmtheory import parameterization as param
from dsmtheory import weightings
from dsmtheory.testing import _spec, log_snr_of

LAM = np.linspace(-12, 12, 97)
SNR = np.exp(LAM)
PARAMS = {
    "simple": {},
    "v": {},
    "edm": {"sigma_data": 0.7},
    "min_snr": {"gamma": 3.0},
    "soft_min_snr": {"sigma_data": 0.4},
    "p2": {"k": 2.0, "gamma": 0.7},
    "smoothed_kl": {"tau": 0.3},
}


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("p", ["eps", "x0", "v", "score", "F"])
@pytest.mark.parametrize("process", ["vp", "ve"])
def test_multiplier_texts_equal_omega_over_kappa(name, p, process):
    w = weightings.get(name, **PARAMS[name])
    for sd in [w.params.get("sigma_data"), 1.3] if p == "F" else [None]:
        if sd is None and p == "F":
            continue
        text = _spec.multiplier_text(name, w.params, p, process, sd)
        want = np.asarray(w(LAM)) / np.asarray(param.kappa(p, LAM, process, sigma_data=sd or 1))
        np.testing.assert_allclose(_spec.eval_text(text, SNR), want, rtol=1e-12, err_msg=text)


def test_p2_with_k_zero_text():
    w = weightings.get("p2", k=0.0, gamma=0.5)
    for p in ("eps", "x0", "v"):
        text = _spec.multiplier_text("p2", w.params, p, "vp")
        want = np.asarray(w(LAM)) / np.asarray(param.kappa(p, LAM, "vp"))
        np.testing.assert_allclose(_spec.eval_text(text, SNR), want, rtol=1e-12, err_msg=text)
    assert _spec.multiplier_text("sigmoid", {"k": 1.0}, "v", "vp") is None


def test_aliases_and_conversions():
    assert _spec.parameterization_name("sample") == "x0"
    assert _spec.parameterization_name("epsilon") == "eps"
    assert _spec.parameterization_name("v_prediction") == "v"
    with pytest.raises(ValueError, match="parameterization"):
        _spec.parameterization_name("noise")
    for kind in ("snr", "lam", "sigma"):
        np.testing.assert_allclose(
            log_snr_of(_spec.lam_to_input(LAM, kind), kind), LAM, rtol=1e-13, atol=1e-13
        )
    with pytest.raises(ValueError, match="input"):
        log_snr_of(SNR, "t")
    assert _spec.fmt_runs([(1.0, 2.0), (3.0, 3.0)]) == "[1, 2] and {3}"
