"""Tests of dsmtheory.testing.assert_weighting and assert_equivalent.

The "user" implementations are written here by hand from FORMULAS.md §1 (kappa) and §3
(the catalog) in SNR terms, independent of the kit and of the registry's code; the buggy
ones come from tests/testing/bug_zoo.py.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import EXACT_RTOL

from dsmtheory import testing, weightings
from dsmtheory.testing import strategies as dst

from . import bug_zoo as zoo

EXACT = EXACT_RTOL  # float64 user code against the float64 registry: rounding only

# omega_eps in SNR terms (FORMULAS.md §3.2, 3.4, 3.6, 3.8-3.11)
EPS_FORMS = {
    "simple": lambda s, p: np.ones_like(s),
    "v": lambda s, p: 1 + 1 / s,
    "edm": lambda s, p: 1 + 1 / (p["sigma_data"] ** 2 * s),
    "min_snr": lambda s, p: np.minimum(1, p["gamma"] / s),
    "soft_min_snr": lambda s, p: 1 / (1 + p["sigma_data"] ** 2 * s),
    "p2": lambda s, p: (p["k"] + s) ** (-p["gamma"]),
    "smoothed_kl": lambda s, p: 1 / (1 + p["tau"] ** 2 * (1 + s)),
}


def kappa(p, s, process, sd=None):
    """FORMULAS.md §1 table, by hand."""
    if p == "eps":
        return np.ones_like(s)
    if p == "x0":
        return 1 / s
    if p == "F":
        return 1 + 1 / (sd**2 * s)
    if p == "v":
        return 1 + 1 / s if process == "vp" else (1 + 1 / s) ** 2
    return 1 + s if process == "vp" else s  # score


def _user_fn(name, params, p, process, sd):
    def fn(snr):
        return EPS_FORMS[name](snr, params) / kappa(p, snr, process, sd)

    return fn


@settings(max_examples=40)
@given(
    name=st.sampled_from(sorted(EPS_FORMS)),
    data=st.data(),
    p=dst.parameterizations(),
    process=st.sampled_from(["vp", "ve"]),
)
def test_correct_implementations_pass(name, data, p, process):
    params = data.draw(dst.weighting_params(name))
    resolved = dict(weightings.get(name, **params).params)
    kw = dict(params)
    sd = resolved.get("sigma_data")
    if p == "F" and sd is None:
        sd = data.draw(st.floats(0.2, 2.0))
        kw["sigma_data"] = sd
    fn = _user_fn(name, resolved, p, process, sd)
    res = testing.assert_weighting(fn, name, parameterization=p, process=process, rtol=EXACT, **kw)
    assert res.max_rel_error <= EXACT and res.constant == 1.0 and res.num_points == 2001


@pytest.mark.slow
@settings(max_examples=8)
@given(sched=dst.discrete_schedules(), gamma=st.floats(0.5, 20.0))
def test_timestep_input_with_diffusers_alphas_cumprod(sched, gamma):
    a = np.asarray(sched.alphas_cumprod)
    snr_t = a / (1 - a)  # diffusers' compute_snr

    def fn(t):
        s = snr_t[t]
        return np.minimum(s, gamma) / (s + 1)

    res = testing.assert_weighting(
        fn, "min_snr", parameterization="v_prediction", input="timestep",
        alphas_cumprod=a, lam_range=(-math.inf, math.inf), gamma=gamma, rtol=EXACT,
    )  # fmt: skip
    assert res.num_points == sched.num_train_timesteps


def test_timestep_input_catches_the_eps_formula():
    # Stable Diffusion's schedule: scaled_linear, beta 0.00085 -> 0.012, T = 1000
    a = testing.ddpm_alphas_cumprod("scaled_linear", 1000, 0.00085, 0.012)
    snr_t = a / (1 - a)
    with pytest.raises(AssertionError, match="written for 'eps'"):
        testing.assert_weighting(
            lambda t: zoo.min_snr_v_eps_formula(snr_t[t]), "min_snr",
            parameterization="v", input="timestep", alphas_cumprod=a,
            lam_range=(-math.inf, math.inf), gamma=5.0,
        )  # fmt: skip


def test_timestep_lam_range_selects_timesteps():
    a = testing.ddpm_alphas_cumprod("linear")
    lam = np.log(a / (1 - a))
    seen = []

    def fn(t):
        seen.append(t.copy())
        return np.minimum(a[t] / (1 - a[t]), 5.0) / (a[t] / (1 - a[t]))

    res = testing.assert_weighting(
        fn, "min_snr", parameterization="eps", input="timestep", alphas_cumprod=a, gamma=5.0
    )
    inside = np.flatnonzero((lam >= -10) & (lam <= 10))
    np.testing.assert_array_equal(seen[0], inside)
    assert res.num_points == inside.size < 1000  # the last steps have lambda < -10


@pytest.mark.parametrize("kind", ["snr", "lam", "sigma"])
def test_input_kinds(kind):
    sd = 0.5

    def x_weight(x):  # EDM's x-loss weight (s^2 + sd^2)/(s sd)^2 with s = sigma-tilde
        s2 = {"snr": lambda x: 1 / x, "lam": lambda x: np.exp(-x), "sigma": lambda x: x**2}[kind](x)
        return (s2 + sd**2) / (s2 * sd**2)

    for process in ("vp", "ve"):
        res = testing.assert_weighting(
            x_weight, "edm", parameterization="x0", process=process, input=kind,
            sigma_data=sd, rtol=EXACT,
        )  # fmt: skip
        assert res.max_rel_error <= EXACT


@pytest.mark.parametrize(
    "name, params",
    [
        ("elbo", {}),
        ("sech", {}),
        ("sigmoid", {"k": 2.0}),
        ("sigmoid", {"k": -1.0, "shift": 0.7}),
        ("likelihood", {"shift": -0.3}),
    ],
)
def test_density_defined_weightings_up_to_constant(name, params):
    # w / p on the (shifted) cosine p = sech(lam/2 - s) / (2 pi), truncation a constant
    from dsmtheory import schedules

    s = params.pop("shift", 0.0)
    sched = schedules.get("cosine", shift=s)
    total = {
        "elbo": lambda lam: np.ones_like(lam),
        "likelihood": lambda lam: np.ones_like(lam),
        "sech": lambda lam: 1 / np.cosh(lam / 2),
        "sigmoid": lambda lam: 1 / (1 + np.exp(lam - params["k"])),
    }[name]

    def fn(lam):
        return total(lam) * np.cosh(lam / 2 - s)

    res = testing.assert_weighting(
        fn, name, parameterization="eps", input="lam", up_to_constant=True,
        schedule=sched, rtol=1e-11, **params,
    )  # fmt: skip
    assert res.max_rel_error <= 1e-11
    with pytest.raises(AssertionError, match="up to the constant factor"):
        testing.assert_weighting(
            fn, name, parameterization="eps", input="lam", schedule=sched, **params
        )


def test_float32_user_code_passes_the_default_tolerance():
    # WEIGHT_RTOL (1e-5) leaves room for a user's float32 arithmetic
    def v32(snr):
        s = snr.astype(np.float32)
        return np.minimum(s, np.float32(5.0)) / (s + np.float32(1.0))

    res = testing.assert_weighting(v32, "min_snr", parameterization="v", gamma=5.0)
    assert 1e-9 < res.max_rel_error < testing.WEIGHT_RTOL  # float32 rounding, measured ~1e-7


def test_weighting_object_as_expected():
    w = weightings.get("smoothed_kl", tau=0.4)
    fn = _user_fn("smoothed_kl", {"tau": 0.4}, "v", "vp", None)
    assert testing.assert_weighting(fn, w, parameterization="v", rtol=EXACT).constant == 1.0


# ---------------------------------------------------------------- the bug zoo, caught


def _message(fn, expected, **kw):
    with pytest.raises(AssertionError) as info:
        testing.assert_weighting(fn, expected, **kw)
    return str(info.value)


def test_zoo_correct_ones_pass():
    testing.assert_weighting(zoo.min_snr_v, "min_snr", parameterization="v", gamma=5.0)
    testing.assert_weighting(zoo.min_snr_x0, "min_snr", parameterization="sample", gamma=5.0)
    testing.assert_weighting(zoo.min_snr_eps, "min_snr", parameterization="eps", gamma=5.0)
    testing.assert_weighting(zoo.debiased_v, "p2", parameterization="v", k=0.0, gamma=0.5)
    testing.assert_weighting(
        zoo.soft_min_snr_f, "soft_min_snr", parameterization="F", input="sigma",
        gamma=5.0, sigma_data=0.5,
    )  # fmt: skip


# Every wrong variant of bug_zoo.py is run by tests/testing/test_docs.py, which compares its
# whole message (what it matches, the expected formula, where it fails) with the one
# docs/testing.md shows; here only what the page does not show.


def test_eps_formula_on_v_names_its_range():
    msg = _message(zoo.min_snr_v_eps_formula, "min_snr", parameterization="v", gamma=5.0)
    assert "lambda in [-10, 10]" in msg and "at lambda = -10" in msg
    # with SNR + 1 inside the min, fn * kappa_v = gamma/SNR once SNR >= gamma - 1, and the
    # correct weight is gamma/SNR for SNR >= gamma: the mismatch ends at SNR = 5 (grid 0.01)
    msg = _message(zoo.min_snr_v_snr_plus_one, "min_snr", parameterization="v", gamma=5.0)
    assert f"for lambda in [-10, {math.floor(100 * math.log(5.0)) / 100:g}]" in msg


def test_constant_factor_is_reported():
    msg = _message(lambda s: 2.0 * zoo.min_snr_v(s), "min_snr", parameterization="v", gamma=5.0)
    assert "fn matches min_snr(gamma=5) up to the constant factor 2" in msg
    res = testing.assert_weighting(
        lambda s: 2.0 * zoo.min_snr_v(s), "min_snr", parameterization="v", gamma=5.0,
        up_to_constant=True,
    )  # fmt: skip
    assert res.constant == pytest.approx(2.0, rel=1e-12)


def test_zero_and_nan_outputs_fail():
    msg = _message(
        lambda s: np.where(s > 100, 0.0, zoo.min_snr_v(s)), "min_snr", parameterization="v"
    )
    assert "zero, negative or not finite at" in msg
    with pytest.raises(AssertionError):
        testing.assert_weighting(
            lambda s: np.full_like(s, np.nan), "simple", parameterization="eps"
        )


def test_bad_arguments():
    ok = zoo.min_snr_v
    with pytest.raises(ValueError, match="parameterization"):
        testing.assert_weighting(ok, "min_snr", parameterization="velocity2")
    with pytest.raises(ValueError, match="unknown weighting"):
        testing.assert_weighting(ok, "min_snrr", parameterization="v")
    with pytest.raises(ValueError, match='parameterization="F" needs the sigma_data'):
        testing.assert_weighting(ok, "min_snr", parameterization="F")
    with pytest.raises(ValueError, match="one multiplier per input point"):
        testing.assert_weighting(lambda s: 1.0, "simple", parameterization="eps")
    with pytest.raises(ValueError, match="needs alphas_cumprod"):
        testing.assert_weighting(ok, "min_snr", parameterization="v", input="timestep")
    with pytest.raises(ValueError, match="VP process"):
        testing.assert_weighting(
            ok, "min_snr", parameterization="v", input="timestep", process="ve",
            alphas_cumprod=testing.ddpm_alphas_cumprod(),
        )  # fmt: skip
    with pytest.raises(ValueError, match="lam_range must be finite"):
        testing.assert_weighting(ok, "min_snr", parameterization="v", lam_range=(-np.inf, 1))
    with pytest.raises(TypeError, match="fn must be callable"):
        testing.assert_weighting(3.0, "min_snr", parameterization="v")
    with pytest.raises(ValueError, match="Weighting object"):
        testing.assert_weighting(ok, weightings.get("min_snr"), parameterization="v", gamma=3.0)


# -------------------------------------------------------------------- assert_equivalent


@given(tau=st.floats(0.02, 5.0))
def test_soft_min_snr_is_smoothed_kl(tau):
    # FORMULAS.md §5 P1 (smoothed-KL Prop. 3.3): omega_tau = (1+tau^2)^-1 omega_SMS(sd^2 =
    # tau^2/(1+tau^2)); and tau^-2 P2(k = 1 + tau^-2, gamma = 1) (§3.11)
    sd = math.sqrt(tau**2 / (1 + tau**2))
    ours = weightings.get("smoothed_kl", tau=tau)
    res = testing.assert_equivalent(ours, weightings.get("soft_min_snr", sigma_data=sd), rtol=EXACT)
    assert res.constant == pytest.approx(1 / (1 + tau**2), rel=1e-12)
    res = testing.assert_equivalent(
        ours, weightings.get("p2", k=1 + tau**-2, gamma=1.0), up_to="constant", rtol=EXACT
    )
    assert res.constant == pytest.approx(tau**-2, rel=1e-12)


def test_exact_vs_constant_and_process():
    tau = 0.3
    sd = math.sqrt(tau**2 / (1 + tau**2))
    a, b = weightings.get("smoothed_kl", tau=tau), weightings.get("soft_min_snr", sigma_data=sd)
    with pytest.raises(AssertionError, match="equivalent up to the constant 0.917431"):
        testing.assert_equivalent(a, b, up_to="exact")
    v_weight = (zoo.min_snr_v, "v")  # a multiplier on the v-MSE of SNR... as a function of lam
    pair = (lambda lam: zoo.min_snr_v(np.exp(lam)), "v")
    res = testing.assert_equivalent(pair, weightings.get("min_snr", gamma=5.0), up_to="exact")
    assert res.max_rel_error < 1e-12
    with pytest.raises(AssertionError, match="process 've'"):  # kappa_v differs in VE
        testing.assert_equivalent(pair, "min_snr", up_to="exact", process="ve")
    with pytest.raises(AssertionError, match="not equivalent"):
        testing.assert_equivalent("min_snr", "soft_min_snr")
    with pytest.raises(ValueError, match="up_to"):
        testing.assert_equivalent("min_snr", "min_snr", up_to="lr")
    with pytest.raises(TypeError, match=r"\(fn, parameterization\)"):
        testing.assert_equivalent(v_weight + ("x",), "min_snr")
