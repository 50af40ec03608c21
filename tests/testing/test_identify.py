"""Tests of dsmtheory.testing.identify_weighting: exact identification of registry weightings
(their parameters and the parameterization they are written for), the known bugs, no-match,
ranking and bad input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsmtheory import parameterization as param
from dsmtheory import schedules, weightings
from dsmtheory.testing import FIT_TOL, format_matches, identify_weighting
from dsmtheory.testing import strategies as dst
from dsmtheory.testing.identify import _REPLICAS, log_kappa

from . import bug_zoo as zoo

LAM = np.linspace(-10.0, 10.0, 201)
SNR = np.exp(LAM)
# a registry weighting sampled on LAM and divided by kappa_b is recovered to this accuracy:
# the fit converges to ~1e-12 in the log residual (measured); FIT_TOL is 1e-4.
RECOVERED = 1e-8


def _as_written(w, b, process="vp", sd=1.0):
    return np.asarray(w(LAM)) / np.asarray(param.kappa(b, LAM, process, sigma_data=sd))


def _first_fit(ms):
    fits = [m for m in ms if m.fits]
    assert fits, format_matches(ms, 5)
    return fits


# one example of every registry entry with parameters away from the defaults
CASES = [
    ("simple", {}),
    ("v", {}),
    ("edm", {"sigma_data": 0.7}),
    ("min_snr", {"gamma": 3.0}),
    ("soft_min_snr", {"sigma_data": 0.4}),
    ("smoothed_kl", {"tau": 0.25}),
    ("p2", {"k": 2.0, "gamma": 0.7}),
    ("sigmoid", {"k": 1.5, "schedule": schedules.get("cosine", shift=0.5)}),
    ("elbo", {"schedule": schedules.get("cosine", shift=-0.8)}),
    ("sech", {"schedule": schedules.get("cosine", shift=0.3)}),
    ("edm_monotonic", {"sigma_data": 0.6, "p_mean": -0.8, "p_std": 1.4}),
    ("alsr", {"alpha": 0.05, "mu": 1.5, "sigma_data": 0.5, "variant": "gaussian"}),
    ("alsr", {"alpha": 0.1, "mu": -1.0, "sigma_data": 1.2, "variant": "rational"}),
]


def _same_params(found, want):
    for k, v in want.items():
        if k == "schedule":
            assert found["schedule"].shift == pytest.approx(v.shift, abs=1e-6)
        elif isinstance(v, str):
            assert found[k] == v
        else:
            assert found[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


@pytest.mark.parametrize("name, params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_registry_entries_are_recovered(name, params):
    w = weightings.get(name, **params)
    b = "v" if len(name) % 2 else "x0"  # written for a non-eps parameterization
    g = 3.0 * _as_written(w, b)
    ms = identify_weighting(LAM, g, parameterization=b, input="lam")
    top = [m for m in _first_fit(ms) if m.name == name and m.parameterization == b]
    assert top, format_matches(ms, 6)
    m = top[0]
    assert m.max_log_error <= RECOVERED and not m.misapplied
    assert m.constant == pytest.approx(3.0 * (m.constant / 3.0))  # reported, any value
    if "schedule" not in params:  # density-defined ones carry the truncation constant
        assert m.constant == pytest.approx(3.0, rel=1e-8)
    _same_params(m.params, params)


@settings(max_examples=4)
@given(
    w=dst.weightings(["min_snr", "soft_min_snr", "p2", "smoothed_kl", "edm"]),
    b=dst.parameterizations(exclude=["F"]),
    a=dst.parameterizations(exclude=["F"]),
    process=st.sampled_from(["vp", "ve"]),
)
def test_misapplied_formulas_are_named(w, b, a, process):
    # w's b-space formula put on an a-space loss: identify names w, written for b
    g = _as_written(w, b, process)
    ms = identify_weighting(LAM, g, parameterization=a, process=process, input="lam")
    hits = [m for m in _first_fit(ms) if m.parameterization == b and m.max_log_error <= RECOVERED]
    assert any(m.misapplied == (a != b) for m in hits)
    # the same function of lambda as w (up to a constant) among them
    for m in hits:
        r = np.log(np.asarray(m.weighting()(LAM))) - np.log(np.asarray(w(LAM)))
        assert np.ptp(r) <= 1e-7


def test_inputs_snr_sigma_timestep_agree():
    g = zoo.min_snr_v(SNR)
    by_snr = identify_weighting(SNR, g, parameterization="v")[0]
    by_sigma = identify_weighting(np.exp(-LAM / 2), g, parameterization="v", input="sigma")[0]
    assert by_snr.label == by_sigma.label == "min_snr(gamma=5)"
    a = 1 / (1 + np.exp(-LAM))  # alphas_cumprod with these log-SNRs
    t = np.arange(LAM.size)
    by_t = identify_weighting(t, g, parameterization="v", input="timestep", alphas_cumprod=a)[0]
    assert by_t.label == "min_snr(gamma=5)" and by_t.fits


def test_known_bugs():
    ms = identify_weighting(SNR, zoo.min_snr_v_eps_formula(SNR), parameterization="v")
    assert (ms[0].label, ms[0].parameterization, ms[0].misapplied) == (
        "min_snr(gamma=5)", "eps", True,
    )  # fmt: skip
    assert "the 'eps' multiplier applied to a 'v' loss" in ms[0].describe()
    ms = identify_weighting(SNR, zoo.debiased_v_eps_formula(SNR), parameterization="v")
    assert ms[0].label == "p2(k=0, gamma=0.5)" and ms[0].parameterization == "eps"
    # k-diffusion's F-space Soft-Min-SNR as a function of sigma: sigma_d found, gamma = sd^-2
    sig = np.exp(-LAM / 2)
    ms = identify_weighting(
        sig, zoo.soft_min_snr_f_kdiffusion(sig, 0.35), parameterization="F", input="sigma"
    )
    m = ms[0]
    assert m.name == "soft_min_snr" and m.parameterization == "F" and not m.misapplied
    assert m.params["sigma_data"] == pytest.approx(0.35, rel=1e-8)
    assert m.sigma_data == pytest.approx(0.35, rel=1e-8) and m.constant == pytest.approx(1.0)


def test_no_match_reports_the_nearest():
    ms = identify_weighting(SNR, zoo.min_snr_eps_max(SNR), parameterization="eps")
    assert not ms[0].fits and not any(m.fits for m in ms)
    assert ms[0].rms_log_error <= ms[1].rms_log_error or ms[0].at_bound is False
    assert ms[0].name == "edm" and ms[0].max_log_error > 0.1
    assert "edm(sigma_data=" in format_matches(ms, 3)


def test_tolerance_decides_fits():
    g = zoo.min_snr_v(SNR) * (1 + 1e-3 * np.sin(LAM))  # a 1e-3 wiggle
    assert not identify_weighting(SNR, g, parameterization="v", names=["min_snr"])[0].fits
    m = identify_weighting(SNR, g, parameterization="v", names=["min_snr"], tolerance=2e-3)[0]
    assert m.fits and m.tolerance == 2e-3 and FIT_TOL == 1e-4


def test_ranking_prefers_correct_use_and_fewer_parameters():
    g = _as_written(weightings.get("soft_min_snr", sigma_data=0.5), "eps")
    ms = identify_weighting(LAM, g, parameterization="eps", input="lam")
    fits = _first_fit(ms)
    assert fits[0].name == "soft_min_snr" and fits[0].num_params == 1
    names = [m.name for m in fits]
    assert "smoothed_kl" in names and "p2" in names  # the same 1/(k + SNR) family
    assert names.index("p2") > names.index("smoothed_kl")  # 2 parameters after 1
    assert all(not m.misapplied for m in fits[:3])


def test_replicas_match_the_registry():
    # the search's NumPy replicas equal the registry up to a constant (they only steer it)
    rng = np.random.default_rng(0)
    for key, fn in _REPLICAS.items():
        name = key.split("/")[0]
        for _ in range(3):
            v = {
                "sigma_data": rng.uniform(0.2, 2), "gamma": rng.uniform(0.3, 8),
                "tau": rng.uniform(0.1, 2), "k": rng.uniform(0, 3), "shift": rng.uniform(-1, 1),
                "p_mean": rng.uniform(-2, 0), "p_std": rng.uniform(0.6, 2),
                "alpha": rng.uniform(0.01, 0.2), "mu": rng.uniform(-3, 3),
            }  # fmt: skip
            kw = {k: v[k] for k in weightings.get(name).params if k in v}
            if name == "soft_min_snr":
                kw.pop("gamma")
            if name == "alsr":
                kw["variant"] = key.split("/")[1]
            if "schedule" in weightings.get(name).params and name != "edm_monotonic":
                kw["schedule"] = schedules.get("cosine", shift=v["shift"], lam_min=-11, lam_max=11)
            reg = np.log(np.asarray(weightings.get(name, **kw)(LAM)))
            rep = np.asarray(fn(LAM, v), dtype=float)
            assert np.ptp(reg - rep) <= 1e-9, (key, v)


@pytest.mark.parametrize("p", ["eps", "x0", "v", "score", "F"])
@pytest.mark.parametrize("process", ["vp", "ve"])
def test_log_kappa_matches_the_library(p, process):
    want = np.log(np.asarray(param.kappa(p, LAM, process, sigma_data=0.3)))
    np.testing.assert_allclose(log_kappa(p, LAM, process, 0.3), want, rtol=1e-13, atol=1e-13)


def test_bad_input():
    with pytest.raises(ValueError, match="finite and > 0"):
        identify_weighting(SNR, np.zeros_like(SNR), parameterization="v")
    with pytest.raises(ValueError, match="one value per point"):
        identify_weighting(SNR, SNR[:-1], parameterization="v")
    with pytest.raises(ValueError, match="at least 2 points"):
        identify_weighting([1.0], [1.0], parameterization="v")
    with pytest.raises(ValueError, match="must be > 0 for input='snr'"):
        identify_weighting(-SNR, SNR, parameterization="v")
    with pytest.raises(ValueError, match="unknown weighting"):
        identify_weighting(SNR, SNR, parameterization="v", names=["nope"])
    with pytest.raises(TypeError, match="timesteps must be integers"):
        identify_weighting(
            SNR, SNR, parameterization="v", input="timestep", alphas_cumprod=[0.5] * 201
        )
    with pytest.raises(ValueError, match="sigma_data must be finite and > 0"):
        identify_weighting(SNR, SNR, parameterization="F", sigma_data=-1.0)
    assert math.isfinite(identify_weighting(SNR, SNR, parameterization="eps")[0].rms_log_error)
