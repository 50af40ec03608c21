"""Tests of the weighting registry (dsmtheory.weightings).

Expected values are hand-derived closed forms (FORMULAS.md §3), scipy densities, or grid
searches; none is copied from the code under test.
"""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from tolerances import EXACT_ATOL, EXACT_RTOL

from dsmtheory import schedules, weightings
from dsmtheory.parameterization import is_monotonic, kappa, to_eps_multiplier

# See test_limits: digits lost by the time coordinate t(lam) near t = 1 at lam = -40.
LIMIT_T_RTOL = 1e-6

BUILTIN = [
    "simple",
    "elbo",
    "likelihood",
    "vdm",
    "sech",
    "edm",
    "edm_monotonic",
    "v",
    "sigmoid",
    "min_snr",
    "soft_min_snr",
    "p2",
    "smoothed_kl",
    "alsr",
]
GRID = jnp.linspace(-15.0, 15.0, 61)
# A cosine schedule truncated so far out that its lost mass (~(4/pi) e^{-30} = 1e-13) is below
# EXACT_RTOL: the density is then sech(lam/2)/(2 pi) to rounding.
WIDE_COSINE = schedules.get("cosine", lam_min=-60.0, lam_max=60.0)


def _close(a, b, rtol=EXACT_RTOL, atol=EXACT_ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- registry


def test_names_hold_every_builtin_entry():
    assert set(BUILTIN) <= set(weightings.names())
    assert weightings.names() == sorted(weightings.names())


@pytest.mark.parametrize(
    "name",
    # registry-driven: colleagues' entries too; the optimal weighting builds its c* table
    # (~8 s), so it runs in the slow tier
    [pytest.param(n, marks=pytest.mark.slow) if n == "optimal" else n for n in weightings.names()],
)
def test_contract(name):
    w = weightings.get(name)
    assert isinstance(w, weightings.Weighting)
    assert w.name == name
    assert isinstance(w.formula, str) and w.formula
    assert w.formulas_item.startswith("FORMULAS.md §")
    assert w.paper
    assert w.monotonic in (True, False, None)
    vals = w(GRID)
    assert vals.shape == GRID.shape
    assert vals.dtype == jnp.float64
    assert np.all(np.isfinite(vals)) and np.all(np.asarray(vals) > 0)
    # broadcasting: any array shape is kept, values as on the flat grid
    _close(w(GRID[:60].reshape(3, 20)), w(GRID[:60]).reshape(3, 20))
    assert w(0.0).shape == ()
    # jit equals eager
    _close(jax.jit(w)(GRID), vals)
    # vmap works (ALSR's batch mean makes a single example its own centre: r = 1)
    vm = jax.vmap(w)(GRID)
    if name == "alsr":
        _close(vm, weightings.get("edm")(GRID))
    else:
        _close(vm, vals)


@pytest.mark.parametrize("name", BUILTIN)
def test_docstring_names_formula_paper_and_item(name):
    doc = weightings._REGISTRY[name].__doc__
    assert "FORMULAS.md §3" in doc
    assert "$" in doc and "Paper" in doc


def _asym_cases():
    """(name, params, lam, asymptotic form) pairs, each form derived by hand."""
    tau, gam, k, sd = 0.5, 5.0, 2.0, 0.5
    pi = math.pi
    return [
        ("simple", {}, 40.0, lambda l: 1.0),
        ("simple", {}, -40.0, lambda l: 1.0),
        # elbo/likelihood: 1/p with p = sech(l/2)/(2 pi) ~ e^{-|l|/2}/pi
        ("elbo", {"schedule": WIDE_COSINE}, 40.0, lambda l: pi * math.exp(abs(l) / 2)),
        ("elbo", {"schedule": WIDE_COSINE}, -40.0, lambda l: pi * math.exp(abs(l) / 2)),
        ("likelihood", {"schedule": WIDE_COSINE}, 40.0, lambda l: pi * math.exp(abs(l) / 2)),
        ("likelihood", {"schedule": WIDE_COSINE}, -40.0, lambda l: pi * math.exp(abs(l) / 2)),
        ("vdm", {"schedule": WIDE_COSINE}, 40.0, lambda l: pi / 2 * math.exp(abs(l) / 2)),
        ("vdm", {"schedule": WIDE_COSINE}, -40.0, lambda l: pi / 2 * math.exp(abs(l) / 2)),
        ("sech", {"schedule": WIDE_COSINE}, 40.0, lambda l: 2 * pi),
        ("sech", {"schedule": WIDE_COSINE}, -40.0, lambda l: 2 * pi),
        ("edm", {}, 40.0, lambda l: 1.0),
        ("edm", {}, -40.0, lambda l: math.exp(-l) / sd**2),
        ("edm_monotonic", {}, 40.0, lambda l: 1.0),
        ("v", {}, 40.0, lambda l: 1.0),
        ("v", {}, -40.0, lambda l: math.exp(-l)),
        # sigmoid: w ~ e^{k-l} (l -> inf), w -> 1 (l -> -inf); p ~ e^{-|l|/2}/pi
        ("sigmoid", {"schedule": WIDE_COSINE}, 40.0, lambda l: pi * math.exp(k - l / 2)),
        ("sigmoid", {"schedule": WIDE_COSINE}, -40.0, lambda l: pi * math.exp(-l / 2)),
        ("min_snr", {}, 40.0, lambda l: gam * math.exp(-l)),
        ("min_snr", {}, -40.0, lambda l: 1.0),
        ("soft_min_snr", {}, 40.0, lambda l: math.exp(-l) / sd**2),
        ("soft_min_snr", {}, -40.0, lambda l: 1.0),
        ("p2", {"k": 1.0, "gamma": 0.5}, 40.0, lambda l: math.exp(-0.5 * l)),
        ("p2", {"k": 3.0, "gamma": 0.5}, -40.0, lambda l: 3.0**-0.5),
        ("smoothed_kl", {"tau": tau}, 40.0, lambda l: math.exp(-l) / tau**2),
        ("smoothed_kl", {"tau": tau}, -40.0, lambda l: 1 / (1 + tau**2)),
        ("alsr", {"mu": 0.0}, 40.0, lambda l: math.exp(-0.05 * l * l)),
        ("alsr", {"mu": 0.0}, -40.0, lambda l: math.exp(-l) / sd**2 * math.exp(-0.05 * l * l)),
    ]


@pytest.mark.parametrize("case", _asym_cases(), ids=lambda c: f"{c[0]}@{c[2]:+g}")
def test_limits(case):
    name, params, lam, form = case
    got = float(weightings.get(name, **params)(lam))
    rtol = EXACT_RTOL
    if name in ("likelihood", "vdm"):
        # these go through t(lam) = (2/pi) arctan(e^{-lam/2}); near t = 1 (lam = -40) the
        # relative rounding of 1 - t is eps / (1 - t) ~ 2e-16 * (pi/2) e^{20} ~ 2e-7
        rtol = LIMIT_T_RTOL
    assert got / form(lam) == pytest.approx(1.0, rel=rtol)


def test_edm_monotonic_left_of_peak_is_flat_total_weight():
    w = weightings.get("edm_monotonic")
    lam_star = w.params["lam_star"]
    # EDM total weight's maximum, by a fine grid search of the hand formula
    g = np.linspace(-8, 2, 200001)
    w_edm = stats.norm.pdf(g, 2.4, 2.4) * (1 + np.exp(-g) / 0.25)
    w_max = w_edm.max()
    left = np.array([-30.0, -12.0, lam_star - 0.5])
    p = stats.norm.pdf(left, 2.4, 2.4)
    _close(w(left) * p, np.full(3, w_max), rtol=1e-9)  # grid max is good to ~1e-10
    right = np.array([lam_star + 0.1, 0.0, 5.0, 14.0])
    _close(w(right), 1 + np.exp(-right) / 0.25)


def test_edm_peak_matches_formulas_value():
    g = np.linspace(-8, 2, 200001)
    total = np.asarray(weightings.get("edm").total(g, schedules.get("edm_training")))
    lam_grid = g[np.argmax(total)]
    assert lam_grid == pytest.approx(-3.31, abs=0.005)  # FORMULAS.md §3.4, quoted to 2 dp
    assert weightings.get("edm_monotonic").params["lam_star"] == pytest.approx(lam_grid, abs=1e-4)
    assert math.exp(-lam_grid / 2) == pytest.approx(5.23, abs=0.01)


# --------------------------------------------------------------------- identities


@pytest.mark.parametrize(
    "sched",
    ["cosine", "vp_linear", "ve", "edm_training", "edm_sampling"],
)
def test_likelihood_equals_elbo(sched):
    s = schedules.get(sched)
    # likelihood goes through t(lam), which loses digits as ~eps/min(t, 1-t); stay 1e-3 inside
    lam = np.asarray(s.lam(np.linspace(1e-3, 1 - 1e-3, 61)))
    _close(weightings.get("likelihood", schedule=s)(lam), weightings.get("elbo", schedule=s)(lam))
    # total weight is exactly 1 (KG: w = 1)
    _close(weightings.get("elbo", schedule=s).total(lam, s), np.ones_like(lam))
    _close(weightings.get("vdm", schedule=s).total(lam, s), np.full_like(lam, 0.5))


def test_vdm_discrete_converges_to_continuous():
    lam = np.linspace(-10, 10, 61)
    cont = np.asarray(weightings.get("vdm")(lam))
    errs = []
    for T in (1000, 10000, 100000):
        disc = np.asarray(weightings.get("vdm", steps=T)(lam))
        assert np.all(disc > 0)
        errs.append(np.max(np.abs(disc / cont - 1)))
    # first-order convergence in 1/T: each tenfold T cuts the error about tenfold
    assert errs[2] < 5e-3
    assert errs[0] / errs[1] > 5 and errs[1] / errs[2] > 5


def test_vdm_discrete_at_grid_point_is_the_vdm_formula():
    s = schedules.get("cosine")
    T = 50
    i = np.arange(1, T + 1)
    # hand formula at lam_i = lam(i/T): T/2 (e^{lam_{i-1} - lam_i} - 1), cosine closed form
    t0 = 2 / np.pi * np.arctan(np.exp(-0.5 * 20.0))
    t1 = 2 / np.pi * np.arctan(np.exp(0.5 * 20.0))
    lam_of = lambda u: -2 * np.log(np.tan(0.5 * np.pi * (t0 + (t1 - t0) * u)))
    expected = T / 2 * np.expm1(lam_of((i - 1) / T) - lam_of(i / T))
    # evaluated mid-step: at the grid points themselves ceil(T t) is decided by rounding
    _close(weightings.get("vdm", steps=T, schedule=s)(lam_of((i - 0.5) / T)), expected, rtol=1e-9)


@given(
    lam=st.floats(-30, 30),
    tau=st.floats(1e-3, 1e3),
)
def test_smoothed_kl_family_identities(lam, tau):
    t2 = tau * tau
    om = float(weightings.get("smoothed_kl", tau=tau)(lam))
    sms = float(weightings.get("soft_min_snr", sigma_data=math.sqrt(t2 / (1 + t2)))(lam))
    p2 = float(weightings.get("p2", k=1 + 1 / t2, gamma=1.0)(lam))
    sig_mult = float(jax.nn.sigmoid(math.log1p(1 / t2) - lam))  # sigmoid as a multiplier
    assert om == pytest.approx(sms / (1 + t2), rel=1e-11)
    assert om == pytest.approx(p2 / t2, rel=1e-11)
    assert om == pytest.approx(sig_mult / (1 + t2), rel=1e-11)
    # direct definition v/(v + tau^2), v = 1/(1+SNR)  (FORMULAS §3.11)
    v = 1 / (1 + math.exp(lam))
    assert om == pytest.approx(v / (v + t2), rel=1e-11)


@given(lam=st.floats(-30, 30), gamma=st.floats(1e-3, 1e3), k=st.floats(-10, 10))
def test_one_over_k_plus_snr_family(lam, gamma, k):
    # soft-min-SNR(gamma) = gamma * P2(k = gamma, 1); sigmoid(k - lam) = e^k P2(e^k, 1)
    sms = float(weightings.get("soft_min_snr", gamma=gamma)(lam))
    assert sms == pytest.approx(gamma / (gamma + math.exp(lam)), rel=1e-11)
    assert sms == pytest.approx(gamma * float(weightings.get("p2", k=gamma)(lam)), rel=1e-11)
    sig = 1 / (1 + math.exp(lam - k))
    assert sig == pytest.approx(
        math.exp(k) * float(weightings.get("p2", k=math.exp(k))(lam)), rel=1e-11
    )


@given(lam=st.floats(-30, 30), k=st.floats(0, 50), gamma=st.floats(0.05, 3))
def test_p2_definition(lam, k, gamma):
    got = float(weightings.get("p2", k=k, gamma=gamma)(lam))
    assert got == pytest.approx((k + math.exp(lam)) ** -gamma, rel=1e-11)


@given(lam=st.floats(-30, 30), gamma=st.floats(1e-2, 1e2))
def test_min_snr_in_x_eps_v(lam, gamma):
    snr = math.exp(lam)
    om = float(weightings.get("min_snr", gamma=gamma)(lam))
    # eps-loss form, x-loss form times e^{-lam}, VP v-loss form times (1 + e^{-lam})
    assert om == pytest.approx(min(snr, gamma) / snr, rel=1e-11)
    x_form = float(to_eps_multiplier(min(snr, gamma), "x0", lam, "vp"))
    v_form = float(to_eps_multiplier(min(snr, gamma) / (snr + 1), "v", lam, "vp"))
    assert om == pytest.approx(x_form, rel=1e-11)
    assert om == pytest.approx(v_form, rel=1e-11)


def test_edm_against_edm_x_loss_weight():
    lam = np.linspace(-15, 15, 61)
    for sd in (0.5, 1.0, 0.2):
        st_ = np.exp(-lam / 2)  # VE-equivalent sigma
        lam_edm = (st_**2 + sd**2) / (st_ * sd) ** 2  # Karras et al. lambda(sigma)
        _close(weightings.get("edm", sigma_data=sd)(lam), lam_edm * np.exp(-lam))
        _close(weightings.get("edm", sigma_data=sd)(lam), kappa("F", lam, "ve", sigma_data=sd))


def test_soft_min_snr_from_f_loss_multiplier():
    lam = np.linspace(-15, 15, 61)
    sd = 0.5
    s = np.exp(-lam / 2)
    f_mult = (s * sd) ** 2 / (s**2 + sd**2) ** 2  # k-diffusion's F-loss multiplier
    _close(weightings.get("soft_min_snr")(lam), f_mult * kappa("F", lam, "ve", sigma_data=sd))
    _close(weightings.get("soft_min_snr", gamma=4.0)(lam), weightings.get("soft_min_snr")(lam))
    assert weightings.get("soft_min_snr").params["sigma_data"] == 0.5
    assert weightings.get("soft_min_snr", sigma_data=1.0).params["gamma"] == pytest.approx(1.0)


# ------------------------------------------------------------- KG Table 1 (P8)


def test_kg_table1_eps_cosine_is_sech():
    lam = np.linspace(-15, 15, 61)
    tot = np.asarray(weightings.get("simple").total(lam, WIDE_COSINE))
    ratio = tot / (1 / np.cosh(lam / 2))
    _close(ratio, np.full_like(ratio, 1 / (2 * np.pi)))


def test_kg_table1_v_cosine():
    lam = np.linspace(-15, 15, 61)
    tot = weightings.get("v").total(lam, WIDE_COSINE)
    _close(tot, np.exp(-lam / 2) / np.pi)  # the constant is 1/pi (KG eq. 36 prints pi)
    assert is_monotonic(lambda l: weightings.get("v").total(l, WIDE_COSINE), lam)


def test_kg_table1_shifted_cosine_counterexample():
    s = 1.0
    sch = schedules.get("cosine", shift=s, lam_min=-60, lam_max=60)
    vals = [float(weightings.get("v").total(l, sch)) * math.exp(l / 2) for l in (-50.0, 50.0)]
    # ratio runs from e^{-s}/pi (lam -> -inf) to e^{s}/pi (lam -> +inf): not prop. to e^{-l/2}
    assert vals[0] == pytest.approx(math.exp(-s) / math.pi, rel=1e-9)
    assert vals[1] == pytest.approx(math.exp(s) / math.pi, rel=1e-9)


def test_kg_table1_edm():
    lam = np.linspace(-15, 15, 61)
    tot = weightings.get("edm").total(lam, schedules.get("edm_training"))
    _close(tot, 4 * stats.norm.pdf(lam, 2.4, 2.4) * (np.exp(-lam) + 0.25))


@pytest.mark.parametrize("name", ["elbo", "likelihood", "vdm", "sech", "sigmoid", "edm_monotonic"])
def test_monotonic_flag_matches_total_weight(name):
    w = weightings.get(name)
    sch = w.params["schedule"]
    lam = np.linspace(max(sch.lam_min, -15), min(sch.lam_max, 15), 61)
    assert is_monotonic(lambda l: w.total(l, sch), lam) is w.monotonic


def test_total_defined_entries_reproduce_their_total_weight():
    lam = np.linspace(-15, 15, 61)
    _close(weightings.get("sech").total(lam, schedules.get("cosine")), 1 / np.cosh(lam / 2))
    for k in (1.0, 2.0, 5.0):
        tot = weightings.get("sigmoid", k=k).total(lam, schedules.get("cosine"))
        _close(tot, 1 / (1 + np.exp(lam - k)))


# --------------------------------------------------------------------------- ALSR


@pytest.mark.parametrize("alpha,expected_ps", [(0.01, 1.136), (0.05, 0.956), (0.1, 0.818)])
def test_alsr_gaussian_narrows_edm_lognormal(alpha, expected_ps):
    lam = np.linspace(-40, 45, 170001)
    mu = 1.0
    p = stats.norm.pdf(lam, 2.4, 2.4)
    r = np.asarray(weightings.get("alsr", alpha=alpha, mu=mu)(lam) / weightings.get("edm")(lam))
    f = p * r
    z = np.trapezoid(f, lam)
    m = np.trapezoid(lam * f, lam) / z
    sd = math.sqrt(np.trapezoid((lam - m) ** 2 * f, lam) / z)
    # fitted lam-std = 2 * P_s^eff; FORMULAS §3.12 quotes P_s^eff to 3 decimals
    assert sd / 2 == pytest.approx(expected_ps, abs=6e-4)
    assert sd == pytest.approx(2 * (1.2**-2 + 8 * alpha) ** -0.5, rel=1e-8)
    # and the shape is Gaussian: log f is quadratic (a fit leaves rounding-level residuals)
    sel = f > 1e-12 * f.max()
    coef = np.polyfit(lam[sel], np.log(f[sel]), 2)
    assert -1 / (2 * coef[0]) == pytest.approx(sd**2, rel=1e-8)


def test_alsr_batch_mean_and_rational_variant():
    lam = jnp.array([-3.0, 0.5, 2.0, 7.0])
    edm = np.asarray(weightings.get("edm")(lam))
    m = float(np.mean(lam))
    _close(weightings.get("alsr")(lam), edm * np.exp(-0.05 * (lam - m) ** 2))
    s = np.asarray(lam) + math.log(0.25)
    _close(
        weightings.get("alsr", variant="rational")(lam),
        edm / (1 + 0.05 * (s - s.mean()) ** 2),
    )
    _close(
        weightings.get("alsr", variant="rational", mu=0.0, alpha=0.1)(lam),
        edm / (1 + 0.1 * s**2),
    )


# ------------------------------------------------------------------- bad input


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="known:.*min_snr"):
        weightings.get("nope")
    with pytest.raises(TypeError, match="name"):
        weightings.get(3)


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("min_snr", {"gamma": 0.0}, "gamma"),
        ("min_snr", {"gamma": -1.0}, "gamma"),
        ("p2", {"gamma": 0.0}, "gamma"),
        ("p2", {"k": -0.1}, "k"),
        ("soft_min_snr", {"gamma": -2.0}, "gamma"),
        ("soft_min_snr", {"sigma_data": 0.0}, "sigma_data"),
        ("soft_min_snr", {"gamma": 4.0, "sigma_data": 0.5}, "either gamma or sigma_data"),
        ("smoothed_kl", {"tau": 0.0}, "tau"),
        ("smoothed_kl", {"tau": -1.0}, "tau"),
        ("edm", {"sigma_data": -0.5}, "sigma_data"),
        ("edm_monotonic", {"sigma_data": 0.0}, "sigma_data"),
        ("edm_monotonic", {"p_std": 0.0}, "p_std"),
        ("alsr", {"alpha": 0.0}, "alpha"),
        ("alsr", {"sigma_data": 0.0}, "sigma_data"),
        ("alsr", {"variant": "cauchy"}, "ALSR variant.*gaussian, rational"),
        ("sigmoid", {"k": float("nan")}, "k"),
        ("vdm", {"steps": 0}, "steps"),
        ("min_snr", {"gama": 5.0}, "gama.*accepted: gamma"),
        ("simple", {"k": 1.0}, r"accepted: \(none\)"),
        ("alsr", {"beta": 1.0}, "accepted: alpha, variant, mu, sigma_data"),
    ],
)
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        weightings.get(name, **params)


def test_bad_types():
    with pytest.raises(TypeError, match="gamma"):
        weightings.get("min_snr", gamma="5")
    with pytest.raises(TypeError, match="schedule"):
        weightings.get("elbo", schedule=3.0)
    with pytest.raises(ValueError, match="lam"):
        weightings.get("edm")(jnp.array([0.0, jnp.nan]))
    for name in ("elbo", "likelihood", "vdm", "sech", "sigmoid"):  # cosine: [-20, 20]
        with pytest.raises(ValueError, match="lam must lie in the 'cosine' schedule's range"):
            weightings.get(name)(jnp.array([0.0, 25.0]))


def test_register():
    f = lambda scale=1.0: weightings.Weighting(
        "const",
        {"scale": scale},
        r"\omega=c",
        "none",
        "FORMULAS.md §3.0",
        None,
        lambda lam: scale * jnp.ones_like(lam),
    )
    weightings.register("const_test", f)
    try:
        assert "const_test" in weightings.names()
        _close(weightings.get("const_test", scale=2.0)(GRID), 2.0 * np.ones(61))
        with pytest.raises(ValueError, match="already registered"):
            weightings.register("const_test", f)
        weightings.register("const_test", f, overwrite=True)
    finally:
        weightings._REGISTRY.pop("const_test", None)
    with pytest.raises(TypeError, match="factory"):
        weightings.register("x", 3)


# ----------------------------------------------------------------------- catalog


def test_catalog_page_is_generated_from_registry():
    page = Path(__file__).resolve().parent.parent / "docs" / "weightings.md"
    assert page.read_text(encoding="utf-8") == weightings.catalog_markdown()


def test_catalog_has_one_section_per_entry():
    md = weightings.catalog_markdown()
    for name in weightings.names():
        assert f"## `{name}`" in md


def test_built_and_totalled_inside_jit():
    # schedule constants are taken out of the trace, so even construction inside jit works
    sch = schedules.get("vp_linear", t_min=1e-3)
    f = jax.jit(lambda l: weightings.get("sigmoid", schedule=sch).total(l, sch))
    _close(f(GRID[20:40]), 1 / (1 + np.exp(np.asarray(GRID[20:40]) - 2.0)))
