"""Tests of dsmtheory.parameterization: kappa factors, conversions, total weights, KG's
augmentation density. Expected values come from the definitions written out here."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from tolerances import EXACT_ATOL, EXACT_RTOL

from dsmtheory import schedules, weightings
from dsmtheory.parameterization import (
    PARAMETERIZATIONS,
    augmentation_density,
    convert,
    from_eps_multiplier,
    is_monotonic,
    kappa,
    kappa_from_alpha_sigma,
    to_eps,
    to_eps_multiplier,
    total_weight,
)

# Quadrature of KG's augmentation density: composite 20-point Gauss-Legendre on 200 panels
# (panel edges at any kink) reaches ~1e-13 on these smooth integrands; 1e-9 leaves room for
# the steep ends of the cosine-schedule densities.
AUG_QUAD_ATOL = 1e-9


def _gauss_legendre(f, edges, n=20):
    """Composite Gauss-Legendre rule over the panels between consecutive ``edges``:
    one vectorized call of ``f``."""
    x, wts = np.polynomial.legendre.leggauss(n)
    a, b = np.asarray(edges[:-1])[:, None], np.asarray(edges[1:])[:, None]
    nodes = 0.5 * (b - a) * x + 0.5 * (a + b)
    vals = np.asarray(f(nodes.ravel())).reshape(nodes.shape)
    return float(np.sum(0.5 * (b - a) * wts * vals))


def _panels(lo, hi, kinks=(), n=200):
    return np.unique(np.concatenate([np.linspace(lo, hi, n + 1), np.asarray(kinks, float)]))


def _close(a, b, rtol=EXACT_RTOL, atol=EXACT_ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _targets(x0, eps, alpha, sigma, sd):
    """Targets straight from FORMULAS.md §1 and Karras et al.'s preconditioning."""
    x_t = alpha * x0 + sigma * eps
    st_ = sigma / alpha
    c_skip = sd**2 / (st_**2 + sd**2)
    c_out = st_ * sd / math.sqrt(st_**2 + sd**2)
    return x_t, {
        "eps": eps,
        "x0": x0,
        "v": alpha * eps - sigma * x0,
        "score": -eps / sigma,
        "F": (x0 - c_skip * x_t / alpha) / c_out,
    }


ALPHA_SIGMA = [(1.0, 0.3), (1.0, 7.0), (0.8, 0.6), (0.99, 0.141), (2.5, 0.4), (0.3, 3.0)]


@pytest.mark.parametrize("alpha,sigma", ALPHA_SIGMA)
@pytest.mark.parametrize("a", PARAMETERIZATIONS)
def test_kappa_is_the_error_ratio(a, alpha, sigma):
    rng = np.random.default_rng(0)
    x0, eps, eps_hat = rng.normal(size=(3, 5))
    sd = 0.7
    x_t, tgt = _targets(x0, eps, alpha, sigma, sd)
    # a network predicting eps_hat: its x0 estimate, then every target built from those
    x_hat = (x_t - sigma * eps_hat) / alpha
    _, pred = _targets(x_hat, eps_hat, alpha, sigma, sd)
    ratio = np.sum((tgt[a] - pred[a]) ** 2) / np.sum((eps - eps_hat) ** 2)
    _close(kappa_from_alpha_sigma(a, alpha, sigma, sigma_data=sd), ratio)


@pytest.mark.parametrize("process", ["ve", "vp"])
def test_kappa_table(process):
    lam = np.linspace(-15, 15, 61)
    e = np.exp(lam)
    table = {  # FORMULAS.md §1 table
        "eps": np.ones_like(lam),
        "x0": 1 / e,
        "score": e if process == "ve" else 1 + e,
        "v": (1 + 1 / e) ** 2 if process == "ve" else 1 + 1 / e,
        "F": 1 + 1 / e / 0.25,
    }
    alpha, sigma = schedules.alpha_sigma(lam, process)
    for a, expected in table.items():
        _close(kappa(a, lam, process), expected)
        _close(kappa_from_alpha_sigma(a, alpha, sigma), expected)
    # EDM's F factor equals the VP v factor when sigma_data = 1
    _close(kappa("F", lam, process, sigma_data=1.0), kappa("v", lam, "vp"))


@pytest.mark.parametrize("alpha,sigma", ALPHA_SIGMA)
def test_convert_to_true_targets(alpha, sigma):
    rng = np.random.default_rng(1)
    x0, eps = rng.normal(size=(2, 4, 3))
    sd = 0.5
    x_t, tgt = _targets(x0, eps, alpha, sigma, sd)
    for src in PARAMETERIZATIONS:
        for dst in PARAMETERIZATIONS:
            got = convert(tgt[src], src, dst, x_t, alpha, sigma, sigma_data=sd)
            _close(got, tgt[dst], rtol=1e-10, atol=1e-10)


@settings(max_examples=6)  # 50 eager conversions per example; 6 examples keep it fast
@given(
    lam=st.floats(-12, 12),
    process=st.sampled_from(["ve", "vp"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_convert_round_trips(lam, process, seed):
    rng = np.random.default_rng(seed)
    pred, x_t = rng.normal(size=(2, 3, 2))
    alpha, sigma = (float(v) for v in schedules.alpha_sigma(lam, process))
    for src in PARAMETERIZATIONS:
        for dst in PARAMETERIZATIONS:
            there = convert(pred, src, dst, x_t, alpha, sigma)
            back = convert(there, dst, src, x_t, alpha, sigma)
            # round-off scales with the conversion factors' size, up to e^{|lam|/2}
            _close(back, pred, rtol=1e-9, atol=1e-9 * math.exp(abs(lam) / 2))


def test_convert_batched_alpha_sigma_and_jit():
    rng = np.random.default_rng(2)
    lam = np.array([-3.0, 0.0, 4.0])
    a, s = schedules.alpha_sigma(lam, "vp")
    pred, x_t = rng.normal(size=(2, 3, 2))
    batched = convert(pred, "eps", "v", x_t, a, s)
    for i in range(3):
        _close(batched[i], convert(pred[i], "eps", "v", x_t[i], float(a[i]), float(s[i])))
    _close(
        jax.jit(lambda p: convert(p, "eps", "F", x_t, a, s))(pred),
        convert(pred, "eps", "F", x_t, a, s),
    )


@given(lam=st.floats(-20, 20), omega=st.floats(1e-6, 1e6))
def test_multiplier_round_trip(lam, omega):
    for a in PARAMETERIZATIONS:
        for process in ("ve", "vp"):
            o_a = from_eps_multiplier(omega, a, lam, process)
            assert float(to_eps_multiplier(o_a, a, lam, process)) == pytest.approx(omega, rel=1e-12)


def test_total_weight_accepts_schedule_or_callable():
    lam = np.linspace(-15, 15, 61)
    s = schedules.get("cosine")
    w = weightings.get("v")
    _close(total_weight(w, lam, s), s.density(lam) * (1 + np.exp(-lam)))
    _close(total_weight(w, lam, s.density), total_weight(w, lam, s))
    with pytest.raises(TypeError, match="density"):
        total_weight(w, lam, 3.0)
    with pytest.raises(TypeError, match="weighting"):
        total_weight(3.0, lam, s)


def test_is_monotonic():
    g = np.linspace(-15, 15, 61)
    assert is_monotonic(lambda l: jnp.exp(-l), g)
    assert is_monotonic(lambda l: jnp.ones_like(l), g)
    assert not is_monotonic(lambda l: 1 / jnp.cosh(l / 2), g)
    assert not is_monotonic(lambda l: l, g)
    with pytest.raises(ValueError, match="lam_grid"):
        is_monotonic(jnp.exp, [1.0])


@pytest.mark.parametrize("k", [1.0, 2.0, 5.0])
def test_augmentation_density_of_sigmoid_is_logistic(k):
    lo, hi = -10.0, 12.0
    w = lambda l: jax.nn.sigmoid(k - l)
    aug = augmentation_density(w, lo, hi)
    w_lo = 1 / (1 + math.exp(lo - k))
    lam = np.linspace(lo, hi, 61)
    # -w' = logistic pdf (FORMULAS.md §3.7), divided by w(lam_min)
    _close(aug.density(lam), stats.logistic.pdf(lam, loc=k) / w_lo)
    assert aug.atom_mass == pytest.approx((1 / (1 + math.exp(hi - k))) / w_lo, rel=1e-12)
    mass = _gauss_legendre(aug.density, _panels(lo, hi))
    assert mass + aug.atom_mass == pytest.approx(1.0, abs=AUG_QUAD_ATOL)
    assert float(aug.density(lo - 1)) == 0.0 and float(aug.density(hi + 1)) == 0.0


@pytest.mark.parametrize(
    "name,sched",
    [
        ("edm_monotonic", "edm_training"),
        ("v", "cosine"),
        ("elbo", "vp_linear"),
        ("sigmoid", "cosine"),
    ],
)
def test_augmentation_density_integrates_to_one(name, sched):
    s = schedules.get(sched)
    w = weightings.get(name)
    lo, hi = max(s.lam_min, -10.0), min(s.lam_max, 10.0)
    aug = augmentation_density(lambda l: w.total(l, s), lo, hi)
    kinks = [w.params["lam_star"]] if name == "edm_monotonic" else []
    mass = _gauss_legendre(aug.density, _panels(lo, hi, kinks))
    assert mass + aug.atom_mass == pytest.approx(1.0, abs=AUG_QUAD_ATOL)
    assert 0 <= aug.atom_mass <= 1


def test_augmentation_density_rejects_non_monotone():
    with pytest.raises(ValueError, match="non-increasing"):
        augmentation_density(lambda l: 1 / jnp.cosh(l / 2), -5.0, 5.0)
    with pytest.raises(ValueError, match="lam_min must be < lam_max"):
        augmentation_density(lambda l: jnp.exp(-l), 5.0, -5.0)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown parameterization 'z'.*known"):
        kappa("z", 0.0)
    with pytest.raises(ValueError, match="process"):
        kappa("v", 0.0, "sub-vp")
    with pytest.raises(ValueError, match="sigma_data"):
        kappa("F", 0.0, sigma_data=0.0)
    with pytest.raises(ValueError, match="lam"):
        kappa("x0", np.nan)
    with pytest.raises(ValueError, match="alpha"):
        kappa_from_alpha_sigma("v", 0.0, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        convert(np.ones(2), "eps", "x0", np.ones(2), 1.0, -1.0)
    with pytest.raises(ValueError, match="shape"):
        convert(np.ones(2), "eps", "x0", np.ones(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="to"):
        convert(np.ones(2), "eps", "y", np.ones(2), 1.0, 1.0)


# ---------------------------------------------------------------------------------------
# to_eps: the one conversion to eps-hat
# ---------------------------------------------------------------------------------------
def _per_example_targets(x0, eps, alpha, sigma, sigma_data):
    """Each parameterization's exact target, written from its definition (FORMULAS.md §1)."""
    a, s = alpha[:, None], sigma[:, None]
    x_t = a * x0 + s * eps
    st = s / a
    c_skip = sigma_data**2 / (st**2 + sigma_data**2)
    c_out = st * sigma_data / np.sqrt(st**2 + sigma_data**2)
    return x_t, {
        "eps": eps,
        "x0": x0,
        "v": a * eps - s * x0,
        "score": -eps / s,
        "F": (x0 - c_skip * x_t / a) / c_out,
    }


@pytest.mark.parametrize("name", ["eps", "x0", "v", "score", "F"])
def test_to_eps_of_each_exact_target_is_the_noise(name):
    rng = np.random.default_rng(0)
    x0, eps = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    alpha = np.array([1.0, 0.9, 0.5, 0.1, 1.0, 0.99])
    sigma = np.array([0.01, 0.4, 0.8, 0.99, 30.0, 0.1])
    x_t, target = _per_example_targets(x0, eps, alpha, sigma, 0.5)
    got = to_eps(jnp.asarray(target[name]), name, jnp.asarray(x_t), alpha, sigma, sigma_data=0.5)
    np.testing.assert_allclose(np.asarray(got), eps, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    back = convert(target[name], name, "eps", x_t, alpha, sigma, sigma_data=0.5)
    np.testing.assert_allclose(np.asarray(back), eps, rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_to_eps_keeps_float32_accuracy_of_F_at_small_noise():
    # sigma_tilde = 1e-3 << sigma_d: (x - alpha D)/sigma with D = c_skip x + c_out F cancels
    # (1 - c_skip = 4e-6) and loses ~3 of float32's 7 digits of eps; the cancellation-free
    # form keeps eps to a few float32 ulps of the same inputs evaluated in float64
    rng = np.random.default_rng(1)
    x0, eps = rng.normal(size=(64, 2)), rng.normal(size=(64, 2))
    alpha, sigma = np.ones(64), np.full(64, 1e-3)
    x_t, target = _per_example_targets(x0, eps, alpha, sigma, 0.5)
    f, x = (jnp.asarray(v, jnp.float32) for v in (target["F"], x_t))
    a, s = jnp.asarray(alpha, jnp.float32), jnp.asarray(sigma, jnp.float32)
    got = to_eps(f, "F", x, a, s, sigma_data=0.5)
    assert got.dtype == jnp.float32
    ref = np.asarray(to_eps(f.astype(jnp.float64), "F", x.astype(jnp.float64), alpha, sigma))
    np.testing.assert_allclose(np.asarray(got), ref, atol=1e-6)
    # the cancelling form in float32, for contrast: its error is far above that bound
    st = s / a
    c_skip, c_out = 0.25 / (st**2 + 0.25), st * 0.5 / jnp.sqrt(st**2 + 0.25)
    naive = (x - a[:, None] * (c_skip[:, None] * x / a[:, None] + c_out[:, None] * f)) / s[:, None]
    assert np.max(np.abs(np.asarray(naive) - ref)) > 1e-4
