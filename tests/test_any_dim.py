"""Every analysis in every dimension (issue 14 items 3-4): the fast Monte Carlo rule of the
mmse family, its standard errors, the within-component bound c_within and the limits of
d_eff. One small 4-D mixture (one compilation of the fast rule's kernel)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import optimal, variance

D = 4


def _mixture(spread: float = 1.0, rank_deficient: bool = False):
    rng = np.random.default_rng(0)
    means = spread * rng.normal(size=(3, D))
    covs = []
    for k in range(3):
        a = rng.normal(size=(D, D)) * 0.5
        c = a @ a.T + 0.05 * np.eye(D)
        if rank_deficient and k < 2:  # components 0 and 1 of rank 2
            e, u = np.linalg.eigh(c)
            e[:2] = 0.0
            c = (u * e) @ u.T
        covs.append(c)
    return dsm.GaussianMixture([0.5, 0.3, 0.2], means, np.stack(covs))


def test_fast_rule_matches_adaptive_in_2d():
    gm = dsm.ring()
    sig = np.array([0.3, 1.0])
    exact = optimal.c_star_curve(gm, sig, method="adaptive")
    est = optimal.c_star_curve(gm, sig, method="monte_carlo", num_samples=4000, full_output=True)
    assert "fast rule" in est.rule
    assert np.all(np.abs(est.value - exact) <= 5 * est.stderr + 1e-12)


def test_stderr_is_honest_over_repeated_runs():
    gm = _mixture(0.7)
    sig = np.array([0.5, 1.5])
    runs = [
        variance.effective_dimension_curve(
            gm, sig, method="monte_carlo", key=jax.random.PRNGKey(i), num_samples=600
        )
        for i in range(12)
    ]
    vals = np.stack([r.value for r in runs])
    ses = np.stack([r.stderr for r in runs])
    ratio = vals.std(axis=0, ddof=1) / ses.mean(axis=0)
    # 12 repeats: the sample sd is within a factor ~1.6 of the truth with high probability
    assert np.all((ratio > 0.5) & (ratio < 1.7)), ratio


def test_target_rse_is_met_and_agrees_with_a_long_run():
    gm = _mixture(0.7)
    sig = np.array([0.05, 0.8])
    est = optimal.c_star_curve(gm, sig, num_samples=200, target_rse=3e-3, full_output=True)
    assert est.method == "monte_carlo"
    assert np.all(est.stderr / est.value <= 3e-3)
    ref = optimal.c_star_curve(
        gm, sig, num_samples=40_000, key=jax.random.PRNGKey(5), full_output=True
    )
    tol = 5 * np.hypot(est.stderr, ref.stderr)
    assert np.all(np.abs(est.value - ref.value) <= tol)


def test_c_within_is_an_upper_bound_tight_when_separated():
    sig = np.array([0.05, 0.5, 2.0])
    overl = _mixture(0.5)
    c = optimal.c_star_curve(overl, sig, num_samples=2000, full_output=True)
    w = optimal.c_within(overl, 1.0, sig)
    assert w.method == "closed_form_bound" and "UPPER BOUND" in w.rule
    assert np.all(w.value >= c.value - 5 * c.stderr)
    assert w.value[-1] > 1.05 * c.value[-1]  # loose where the components overlap
    sep = _mixture(1e4)
    c = optimal.c_star_curve(sep, sig, num_samples=200, full_output=True)
    w = optimal.c_within(sep, 1.0, sig).value
    np.testing.assert_allclose(c.value, w, rtol=1e-12)
    # one Gaussian: the bound is c* itself, D / sum e/(e + s^2)
    g = dsm.single_gaussian(np.zeros(D), 0.5)
    assert optimal.c_within(g, 1.0, 1.0).value == pytest.approx(D / (D * 0.25 / 1.25), 1e-14)


def test_deff_limits_and_c_star_relation():
    gm = _mixture(3.0, rank_deficient=True)
    dbar = optimal.mean_rank(gm)
    assert dbar == pytest.approx(0.5 * 2 + 0.3 * 2 + 0.2 * 4)
    sig = np.array([1e-6, 1e4])
    d = variance.effective_dimension_curve(gm, sig, method="monte_carlo", num_samples=200)
    assert d.value[0] == pytest.approx(dbar, rel=1e-4)
    assert d.value[1] < 1e-6
    c = optimal.c_star_curve(gm, sig, method="monte_carlo", num_samples=200)
    np.testing.assert_allclose(c, D / d.value, rtol=1e-12)
    one = dsm.effective_dimension(gm, 1.0, 1e-6, method="monte_carlo", num_samples=200)
    assert one.value == pytest.approx(dbar, rel=1e-4)


def test_target_rse_refused_for_deterministic_rules():
    with pytest.raises(ValueError, match="target_rse"):
        variance.effective_dimension_curve(dsm.bimodal_1d(), [0.5], target_rse=1e-3)


@pytest.mark.slow
def test_c_star_near_one_bounds_against_the_engine():
    """Derivation c_star_near_one: for a full-rank Gaussian (one component of the 4-D test
    mixture, exact closed form in any D), (1/D) u/(1+u) <= c* - 1 <= u, u = sigma^2/e_min,
    and c* equals the derivation's D/d_eff expression."""
    from dsmtheory.derivations import c_star_near_one as cn

    gm = _mixture()
    cov = np.asarray(gm.covs)[2]
    e = np.linalg.eigvalsh(cov)
    one = dsm.GaussianMixture([1.0], np.zeros((1, D)), cov[None])
    sig = np.array([0.3 * np.sqrt(e[0]), np.sqrt(e[0]), 3.0 * np.sqrt(e[0])])
    c = optimal.c_within(one, 1.0, sig).value  # one component: c_within is c* exactly
    u = sig**2 / e[0]
    assert np.all(u / (1 + u) / D <= c - 1) and np.all(c - 1 <= u)
    # the derivation's closed form, evaluated numerically on the first three eigenvalues
    expr, syms = cn.expressions()["c_star_gaussian_3d"]
    f = __import__("sympy").lambdify(syms, expr)
    three = dsm.GaussianMixture([1.0], np.zeros((1, 3)), np.diag(e[:3])[None])
    np.testing.assert_allclose(
        [f(s, *e[:3]) for s in sig],
        optimal.c_star_curve(three, sig),
        rtol=1e-9,  # the engine's adaptive/Gauss-Hermite tolerance on a single Gaussian
    )


def test_sandwich_refuses_high_dimension_clearly():
    from dsmtheory import sandwich, schedules

    gm = _mixture()
    model = sandwich.random_fourier_model(jax.random.PRNGKey(0), D, 1, 1.0)
    with pytest.raises(ValueError, match=r"tensor Gauss-Hermite.*D = 4.*simulate_fits"):
        sandwich.sandwich_variance(
            gm, model, schedules.get("ve"), lambda lam: lam * 0 + 1.0, 1, num_nodes=100
        )
