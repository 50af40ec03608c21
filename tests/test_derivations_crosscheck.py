"""Cross-check: the sympy expressions of dsmtheory.derivations, lambdified, against the JAX
implementation (weightings, parameterization, schedules, mixture, optimal) at random points.

These imports fail loudly (ImportError at collection) if an implementation module is missing.
"""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import EXACT_ATOL, EXACT_RTOL, Z_BOUND

import dsmtheory as dsm
from dsmtheory import optimal, parameterization, schedules, weightings
from dsmtheory.derivations import (
    implied_edm,
    implied_v_cosine,
    kappa_edm,
    kappa_score,
    kappa_v,
    kappa_x0,
    p01_soft_min_snr,
    p03_p2_high_snr,
    p09_sigma2_first_order,
    p12_fisher_identity,
    p13_likelihood,
    prediction_conversions,
    schedule_densities,
    weighting_catalog,
)

# lambdified closed forms are evaluated naively in float64 (e.g. exp(-lam) then 1 + ...), the
# implementation in log space; both are exact formulas, so the shared EXACT_RTOL applies.
RTOL = EXACT_RTOL

lams = st.floats(-20.0, 20.0, allow_nan=False)
pos = st.floats(0.05, 5.0, allow_nan=False)


def fn(name, table):
    expr, syms = table[name]
    return sp.lambdify(syms, expr, "numpy")


def _close(a, b, rtol=RTOL, atol=EXACT_ATOL):
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=atol
    )


# --- weightings: eps-space multipliers -----------------------------------------------------

CAT = weighting_catalog.expressions()


@given(lam=lams, sd=pos)
def test_edm_and_v_and_simple(lam, sd):
    _close(weightings.get("edm", sigma_data=sd)(lam), fn("edm", CAT)(lam, sd))
    _close(weightings.get("edm", sigma_data=sd)(lam), fn("edm", implied_edm.expressions())(lam, sd))
    _close(weightings.get("v")(lam), fn("v", CAT)(lam))
    _close(weightings.get("v")(lam), fn("v_eps", implied_v_cosine.expressions())(lam))
    _close(weightings.get("simple")(lam), 1.0)


@given(lam=lams, gamma=pos)
def test_min_snr(lam, gamma):
    want = min(1.0, gamma * math.exp(-lam))
    _close(weightings.get("min_snr", gamma=gamma)(lam), want)
    _close(weightings.get("min_snr", gamma=gamma)(lam), float(fn("min_snr", CAT)(lam, gamma)))


@given(lam=lams, sd=st.floats(0.05, 0.99), tau=pos)
def test_soft_min_snr_and_smoothed_kl(lam, sd, tau):
    p01 = p01_soft_min_snr.expressions()
    _close(weightings.get("soft_min_snr", sigma_data=sd)(lam), fn("soft_min_snr", p01)(lam, sd))
    _close(weightings.get("soft_min_snr", gamma=sd**-2)(lam), fn("soft_min_snr", p01)(lam, sd))
    _close(weightings.get("smoothed_kl", tau=tau)(lam), fn("smoothed_kl", p01)(lam, tau))
    # P1 through the implementation: omega_tau = omega_SMS(tau^2/(1+tau^2)) / (1+tau^2)
    sms = weightings.get("soft_min_snr", sigma_data=math.sqrt(tau**2 / (1 + tau**2)))(lam)
    _close(weightings.get("smoothed_kl", tau=tau)(lam), sms / (1 + tau**2))


@given(lam=lams, k=st.floats(0.0, 5.0), gamma=st.floats(0.25, 2.0))
def test_p2(lam, k, gamma):
    _close(
        weightings.get("p2", k=k, gamma=gamma)(lam),
        fn("p2", p03_p2_high_snr.expressions())(lam, k, gamma),
    )


@given(lam=lams, a=st.floats(0.01, 0.2), mu=st.floats(-5, 5), sd=pos)
def test_alsr_gaussian(lam, a, mu, sd):
    w = weightings.get("alsr", alpha=a, mu=mu, sigma_data=sd)
    _close(w(lam), fn("alsr", CAT)(lam, sd, a, mu))


# --- weightings defined by a total weight w = p * omega -------------------------------------

SCH = schedule_densities.expressions()


def _cosine_norm(sched):
    """t(lam_min) - t(lam_max) of the untruncated cosine (sympy), the truncation constant."""
    t = fn("t_cosine", SCH)
    return float(t(sched.lam_min, sched.shift) - t(sched.lam_max, sched.shift))


@settings(max_examples=10)  # builds five weightings per example
@given(lam=st.floats(-19.0, 19.0), k=st.floats(-3, 5))
def test_total_weights_under_cosine(lam, k):
    sched = schedules.get("cosine")
    _close(weightings.get("elbo").total(lam, sched), 1.0)
    _close(weightings.get("likelihood").total(lam, sched), 1.0)
    _close(weightings.get("vdm").total(lam, sched), 0.5)
    _close(weightings.get("sech").total(lam, sched), fn("sech_total", CAT)(lam))
    _close(weightings.get("sigmoid", k=k).total(lam, sched), fn("sigmoid_total", CAT)(lam, k))
    # implied v + cosine weight e^{-lam/2}/pi (eq. 36) with the truncation constant
    v_total = weightings.get("v").total(lam, sched) * _cosine_norm(sched)
    _close(v_total, fn("v_cosine_total", implied_v_cosine.expressions())(lam))
    _close(v_total, math.exp(-lam / 2) / math.pi)


def test_edm_monotonic_total():
    sd, pm, ps = 0.5, -1.2, 1.2
    expr, syms = CAT["edm_total"]
    e = expr.subs(dict(zip(syms[1:], (sd, pm, ps), strict=True)))
    lam = syms[0]
    lam_star = float(sp.nsolve(sp.diff(sp.log(e), lam), lam, -3))
    w_sym = sp.lambdify(lam, e, "math")
    w = weightings.get("edm_monotonic", sigma_data=sd, p_mean=pm, p_std=ps)
    sched = w.params["schedule"]
    for x in np.linspace(-12, 12, 49):
        want = w_sym(max(float(x), lam_star))
        _close(w.total(float(x), sched), want, rtol=1e-9)  # lam* from nsolve vs Brent: 1e-9


# --- parameterization --------------------------------------------------------------------


@given(lam=lams, sd=pos)
def test_kappa(lam, sd):
    k = parameterization.kappa
    _close(k("x0", lam, "vp"), fn("kappa_x0", kappa_x0.expressions())(lam))
    _close(k("x0", lam, "ve"), fn("kappa_x0", kappa_x0.expressions())(lam))
    _close(k("score", lam, "ve"), fn("kappa_score_ve", kappa_score.expressions())(lam))
    _close(k("score", lam, "vp"), fn("kappa_score_vp", kappa_score.expressions())(lam))
    _close(k("v", lam, "vp"), fn("kappa_v_vp", kappa_v.expressions())(lam))
    _close(k("v", lam, "ve"), fn("kappa_v_ve", kappa_v.expressions())(lam))
    _close(k("F", lam, "vp", sigma_data=sd), fn("kappa_edm", kappa_edm.expressions())(lam, sd))
    _close(k("eps", lam, "vp"), 1.0)


@given(x=st.floats(-5, 5), e=st.floats(-3, 3), a=st.floats(0.1, 2), s=st.floats(0.05, 3), sd=pos)
def test_convert_from_eps(x, e, a, s, sd):
    ex = prediction_conversions.expressions()
    for to in ("x0", "v", "score"):
        got = parameterization.convert(np.array([e]), "eps", to, np.array([x]), a, s)
        _close(got[0], fn(to, ex)(x, e, a, s))
    got = parameterization.convert(np.array([e]), "eps", "F", np.array([x]), a, s, sigma_data=sd)
    _close(got[0], fn("F", ex)(x, e, a, s, sd), rtol=1e-9)  # c_out division: ~1e-11 observed


# --- schedules -----------------------------------------------------------------------------


@given(u=st.floats(0.0, 1.0))
def test_schedule_densities(u):
    cases = [
        ("vp_linear", {}, lambda sch: (sch.beta_min, sch.beta_max)),
        ("ve", {"sigma_min": 0.01, "sigma_max": 50.0}, lambda sch: (sch.sigma_min, sch.sigma_max)),
        ("edm_sampling", {}, lambda sch: (sch.sigma_min, sch.sigma_max, sch.rho)),
        ("cosine", {"shift": 0.7}, lambda sch: (sch.shift,)),
    ]
    for name, kw, params in cases:
        sch = schedules.get(name, **kw)
        lam = sch.lam_min + u * (sch.lam_max - sch.lam_min)
        t = fn(f"t_{name}", SCH)
        p = fn(f"p_{name}", SCH)
        norm = float(t(sch.lam_min, *params(sch)) - t(sch.lam_max, *params(sch)))
        _close(sch.density(lam), p(lam, *params(sch)) / norm, rtol=1e-9)  # root-solve t0,t1


@given(u=st.floats(0.0, 1.0))
def test_vp_linear_g2(u):
    sch = schedules.get("vp_linear")
    t = fn("t_vp_linear", SCH)
    t0 = float(t(sch.lam_max, sch.beta_min, sch.beta_max))
    t1 = float(t(sch.lam_min, sch.beta_min, sch.beta_max))
    g2 = fn("vp_linear_g2", p13_likelihood.expressions())
    _close(sch.g2(u), (t1 - t0) * g2(t0 + (t1 - t0) * u, sch.beta_min, sch.beta_max), rtol=1e-9)


# --- mixture closed forms (single Gaussian) ----------------------------------------------------

G = p12_fisher_identity.expressions()


@settings(max_examples=10)  # each example builds a new mixture (eager JAX): keep it short
@given(
    x=st.floats(-5, 5),
    m=st.floats(-2, 2),
    s=st.floats(0.1, 3),
    a=st.floats(0.1, 2),
    sig=st.floats(0.01, 3),
)
def test_single_gaussian_closed_forms(x, m, s, a, sig):
    gm = dsm.single_gaussian([m], s)
    noised = gm.noised(a, sig)
    xt = np.array([x])
    args = (x, m, s, a, sig)
    _close(noised.score(xt)[0], fn("score", G)(*args))
    _close(noised.hessian(xt)[0, 0], fn("hessian", G)(*args))
    _close(dsm.posterior_cov(gm, xt, a, sig)[0, 0], fn("posterior_var", G)(*args))
    _close(dsm.posterior_mean(gm, xt, a, sig)[0], fn("posterior_mean", G)(*args))


@pytest.mark.parametrize("s,sig", [(0.5, 0.1), (1.0, 1.0), (2.0, 0.3)])
def test_homoskedastic_multiplier_gaussian(s, sig):
    gm = dsm.single_gaussian([0.3], s)
    c = optimal.homoskedastic_multiplier(gm, 1.0, sig)
    want = fn("c_star_gaussian_ve", p09_sigma2_first_order.expressions())(sig, s)
    # c* comes from a quadrature (or MC) of mmse: 1e-8 covers the quadrature rule, and
    # Z_BOUND standard errors the Monte Carlo case
    assert abs(float(c.value) - want) <= 1e-8 * want + Z_BOUND * float(c.stderr)


@given(lam=lams)
def test_edm_training_density(lam):
    from dsmtheory.derivations._common import normal_pdf

    x = sp.Symbol("x", real=True)
    p = sp.lambdify(x, normal_pdf(x, sp.Rational(12, 5), sp.Rational(12, 5)), "math")
    _close(schedules.get("edm_training").density(lam), p(lam))


@pytest.mark.parametrize("a", [0.01, 0.05, 0.1])
def test_alsr_on_edm_is_lognormal_with_effective_width(a):
    """P15 through the implementation: p_EDM * omega_ALSR / omega_EDM is N(m', 4 P_eff^2)."""
    from dsmtheory.derivations import p15_alsr_width

    mu, pm, ps = 1.0, -1.2, 1.2
    sched = schedules.get("edm_training")
    lam = np.linspace(-10.0, 15.0, 41)
    ratio = np.asarray(weightings.get("alsr", alpha=a, mu=mu)(lam)) / np.asarray(
        weightings.get("edm")(lam)
    )
    prod = np.asarray(sched.density(lam)) * ratio
    p_eff = p15_alsr_width.effective_p_std(a, ps)
    mean = (-2 * pm + 8 * a * ps**2 * mu) / (1 + 8 * a * ps**2)
    gauss = np.exp(-0.5 * ((lam - mean) / (2 * p_eff)) ** 2)
    const = prod / gauss
    _close(const, np.full_like(const, const[20]))


@settings(max_examples=10)  # each example builds and jits a new density
@given(k=st.floats(-3, 5), c=st.floats(0.2, 5.0), u=st.floats(0.0, 1.0))
def test_augmentation_density_atom_is_normalised(k, c, u):
    """P7 / KG eq. 11 through the implementation: atom w(lam_max)/w(lam_min), not w(lam_max)."""
    import jax

    from dsmtheory.derivations import p07_monotone_density

    ex = p07_monotone_density.expressions()
    lo, hi = -8.0, 9.0
    aug = parameterization.augmentation_density(lambda x: c * jax.nn.sigmoid(k - x), lo, hi)
    _close(aug.atom_mass, fn("atom_mass", ex)(0.0, k, c, lo, hi))
    lam = lo + u * (hi - lo)
    _close(aug.density(lam), fn("density", ex)(lam, k, c, lo, hi))


@given(lam=st.floats(-19.0, 19.0), shift=st.floats(-2.0, 2.0))
def test_cosine_density_from_implied_modules(lam, shift):
    from dsmtheory.derivations import implied_sech, implied_shifted_cosine

    sched = schedules.get("cosine", shift=shift)
    norm = _cosine_norm(sched)
    p = fn("shifted_cosine_density", implied_shifted_cosine.expressions())
    _close(sched.density(lam) * norm, p(lam, shift))
    if shift == 0.0:
        _close(sched.density(lam) * norm, fn("cosine_density", implied_sech.expressions())(lam))


def _fisher_1d_bimodal(sig, sep=4.0, std=0.25):
    """J = E[score^2] of the VE-noised 1-D bimodal mixture by adaptive quadrature (numpy,
    log-space responsibilities), independent of dsmtheory.mixture / optimal."""
    from scipy.integrate import quad

    var = std**2 + sig**2
    means = (-sep / 2, sep / 2)

    def f(x):
        logs = np.array([np.log(0.5) - 0.5 * (x - m) ** 2 / var for m in means])
        mx = logs.max()
        e = np.exp(logs - mx)
        score = (e / e.sum()) @ np.array([-(x - m) / var for m in means])
        return np.exp(mx) * e.sum() / np.sqrt(2 * np.pi * var) * score**2

    return quad(
        f, -sep - 10 * np.sqrt(var), sep + 10 * np.sqrt(var), epsabs=0, epsrel=1e-12, limit=500
    )[0]


@pytest.mark.parametrize("sig", [0.02, 0.3, 1.0, 3.0])
def test_homoskedastic_multiplier_mixture_vs_fisher_form(sig):
    """P9 on a mixture: the implementation's c* (from mmse) equals 1/(1 - sigma^2 J) with J
    from an independent quadrature, and at small sigma its first-order form 1 + sigma^2 J0."""
    ex = p09_sigma2_first_order.expressions()
    c = optimal.homoskedastic_multiplier(dsm.bimodal_1d(), 1.0, sig)
    want = fn("c_star_from_fisher", ex)(sig, _fisher_1d_bimodal(sig))
    # two different quadratures (mmse vs Fisher) of smooth integrands: 1e-8 relative
    assert abs(float(c.value) - want) <= 1e-8 * want + Z_BOUND * float(c.stderr)
    if sig <= 0.02:
        first = fn("c_star_first_order", ex)(sig, _fisher_1d_bimodal(0.0))
        # P9's series: the neglected term is sigma^4 (J0^2 + J2) + O(sigma^6); for well-
        # separated Gaussian modes J2 ~ -1/s^4 = -J0^2, so sigma^4 J0^2 is a generous bound
        assert abs(float(c.value) - first) <= sig**4 * 16.0**2


# --- FORMULAS.md §8: effective dimension, limits of c*, EDM2, the binary-channel anchor ------


@pytest.mark.parametrize("sig", [0.05, 0.3, 2.0])
def test_deff_gaussian_against_implementation(sig):
    """d_eff = D/c* of a full-covariance 2-D Gaussian: the implementation's c* (mmse by
    quadrature) against the lambdified sum_i e_i/(e_i + st^2)."""
    from dsmtheory.derivations import deff_gaussian

    cov = np.array([[0.5, 0.2], [0.2, 0.1]])
    e1, e2 = np.linalg.eigvalsh(cov)
    gm = dsm.GaussianMixture([1.0], [[0.3, -0.2]], [cov])
    ex = deff_gaussian.expressions()
    c = optimal.homoskedastic_multiplier(gm, 1.0, sig)
    _close(c.value, fn("c_star_gaussian_2d", ex)(sig, e1, e2))
    _close(2.0 / c.value, fn("d_eff_gaussian_2d", ex)(sig, e1, e2))


def test_within_bound_against_implementation():
    """c* <= c_within on a separated ring, with near equality at small sigma."""
    from dsmtheory.derivations import within_component_bound

    gm = dsm.ring(num_modes=6, radius=4.0, std=0.3)
    cw = fn("c_within_2x2", within_component_bound.expressions())
    for sig in (0.05, 0.1, 0.2, 1.0, 3.0):
        c = float(optimal.homoskedastic_multiplier(gm, 1.0, sig).value)
        bound = float(cw(sig, 0.09, 0.09, 0.09, 0.09, 0.5))
        # the implementation's default rule (adaptive) is good to 1e-10 relative
        assert c <= bound * (1 + 1e-10), (sig, c, bound)
        if sig <= 0.1:  # modes 4 apart, std 0.3: c*/c_within - 1 = -9e-11 at 0.05, -6e-7 at 0.2
            assert c / bound > 1 - 1e-6, (sig, c, bound)


@pytest.mark.parametrize("sig", [10.0, 30.0])
def test_high_noise_expansion_against_implementation(sig):
    """The implementation's c* at large noise minus the two leading terms matches the
    third-cumulant remainder derived in high_noise_mixture, to O(sigma^-4)."""
    from dsmtheory.derivations import _quadrature, high_noise_limit, high_noise_mixture

    mix = high_noise_mixture.MIXTURE
    gm = dsm.GaussianMixture(
        [c.weight for c in mix.components],
        [c.mean for c in mix.components],
        [(c.eigvecs * c.eigvals) @ c.eigvecs.T for c in mix.components],
    )
    e1, e2 = np.linalg.eigvalsh(_quadrature.moments(mix)[1])
    lead = fn("c_star_high_noise_2d", high_noise_limit.expressions())(sig, e1, e2)
    rem = high_noise_mixture.coefficients(mix)["c_rem"] / sig**2
    c = float(optimal.c_star_of_lambda(gm, np.array([-2 * math.log(sig)]))[0])
    # next term observed at 0.4/sigma^4 (high_noise_mixture); 2/sigma^4 as there
    assert abs(c - lead - rem) <= 2.0 / sig**4, (c, lead, rem)


@pytest.mark.parametrize("sig", [0.3, 1.0])
def test_order2_identity_against_implementation(sig):
    """R_2 (Rao-Blackwellised, the engine's default rule) + E (H + s^2)^2 = D(D+1)/sigma^4."""
    from dsmtheory import targets
    from dsmtheory.derivations import order2_identity

    gm = dsm.bimodal_1d()
    r2 = targets.irreducible_target_variance(gm, 1.0, sig, order=2)
    half = 2.0 + 10.0 * math.sqrt(0.0625 + sig**2)
    x = np.linspace(-half, half, 4001)[:, None]
    nz = gm.noised(1.0, sig)
    p = np.exp(np.asarray(nz.log_prob(x)))
    m2 = np.asarray(nz.hessian(x))[:, 0, 0] + np.asarray(nz.score(x))[:, 0] ** 2
    second = float(np.sum(p * m2**2) * (x[1, 0] - x[0, 0]))
    want = fn("r2_leading", order2_identity.expressions())(1, sig)
    # two trapezoid sums of smooth Gaussian-tailed integrands: ~1e-13 observed
    _close(r2.value + second, want, rtol=1e-9)
    assert r2.value * sig**4 / 2 <= 1.0


@pytest.mark.parametrize("s,sig", [(0.5, 0.2), (1.0, 1.0), (0.3, 3.0)])
def test_edm2_learned_weight_for_gaussian_data_is_edm(s, sig):
    """At the Bayes denoiser EDM2's learned eps-multiplier (c/D) c* with c = D is c*; for
    N(0, s^2) data it equals the registry's EDM weight with sigma_data = s (P14)."""
    from dsmtheory.derivations import edm2_learned_weighting

    gm = dsm.single_gaussian([0.0], s)
    c_star = float(optimal.homoskedastic_multiplier(gm, 1.0, sig).value)
    om = fn("omega_eps_learned", edm2_learned_weighting.expressions())(1, c_star, 1)
    lam = -2 * math.log(sig)
    _close(om, weightings.get("edm", sigma_data=s)(lam), rtol=1e-8)  # c* by 1-D quadrature


@pytest.mark.parametrize("sig", [0.1, 0.5, 2.0])
def test_channel_anchor_against_implementation(sig):
    """tr I_t of bimodal_1d (modes +-2, std 0.25) by the implementation's quadrature against
    (1 - g mmse_B(g))/v (Guo-Shamai-Verdu)."""
    from dsmtheory.derivations import bimodal_channel_anchor

    got = float(dsm.variance.fisher_trace(dsm.bimodal_1d().noised(1.0, sig)).value)
    want = bimodal_channel_anchor.fisher_formula(2.0, 0.25, sig)
    # the engine's default rule promises 1e-10 relative (the old 200-node Gauss-Hermite rule
    # was 6.7e-7 off at sigma = 0.5, where the responsibilities switch sharply)
    _close(got, want, rtol=1e-10)
