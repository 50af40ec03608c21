"""IWSM variance comparison in any dimension: the Monte Carlo rule with standard errors, the
degeneracy check of the importance weights, the balanced proposal and the CLI at D > 2.

Independent checks: the deterministic rule at D = 2, w = 1 identities, brute-force Monte
Carlo of the self-normalised estimator itself (replicated runs from the proposal) and of
the plain DSM loss (x0 ~ p0).
"""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerances import Z_BOUND

import dsmtheory as dsm
from dsmtheory import targets as T

FIELDS = ("objective", "irreducible", "var_dsm", "var_sm", "var_iwsm", "ess_fraction",
          "kl_divergence")  # fmt: skip

# 2-D: two components, a proposal with the same means, reweighted and widened (bounded
# weights, so the Monte Carlo moments of w have finite variance)
GM2 = dsm.GaussianMixture([0.7, 0.3], [[0.0, 0.0], [1.5, 0.5]], [[0.3, 0.2], [0.2, 0.4]])
PROP2 = dsm.GaussianMixture([0.4, 0.6], [[0.0, 0.0], [1.5, 0.5]], [[0.45, 0.3], [0.3, 0.5]])
# Every 6-D case below has K = 3 full covariances for the mixture, the proposal and the
# model's shapes alike, so the engine compiles its two Monte Carlo passes once for all.
GM6 = dsm.random_anisotropic(seed=11, num_components=3, dim=6, spread=1.0)


def _reweighted(gm, weights):
    return dsm.GaussianMixture(weights, np.asarray(gm.means), np.asarray(gm.covs))


def test_monte_carlo_rule_agrees_with_the_deterministic_rule_in_2d():
    alpha, sigma = 0.9, 0.5
    det = T.iwsm_variance_comparison(GM2, PROP2, alpha, sigma)
    mc = T.iwsm_variance_comparison(GM2, PROP2, alpha, sigma, method="monte_carlo")
    assert det.weight_ess == np.inf and not det.degenerate
    assert mc.weight_ess > 0.5 * 20_000 and not mc.degenerate
    for name in FIELDS:
        se = getattr(mc, name + "_stderr")
        assert 0 < se < 0.1 * abs(getattr(mc, name)) + 1e-12, name
        z = abs(getattr(mc, name) - getattr(det, name)) / se
        assert z < Z_BOUND, (name, getattr(mc, name), getattr(det, name), se)
    # high noise: KL ~ 1e-11 -> 0, where the cubature's 1e-10 relative is out of reach (it
    # raised here before KL_ATOL); the absolute tolerance holds, and KL >= 0
    hi = T.iwsm_variance_comparison(GM2, PROP2, 1e-5, 1.0)
    assert -T.iwsm.KL_ATOL <= hi.kl_divergence < 1e-9
    assert 1 - 1e-9 < hi.ess_fraction <= np.exp(-hi.kl_divergence) + 1e-9
    est = mc.estimate("var_iwsm")
    assert (est.value, est.stderr, est.method) == (mc.var_iwsm, mc.var_iwsm_stderr, "monte_carlo")


def test_proposal_equal_to_the_mixture_has_unit_weights_in_6d():
    c = T.iwsm_variance_comparison(GM6, GM6, 0.8, 0.6, num_samples=4000)
    # w = exp(0) = 1 at every draw: the IWSM moments are the oracle's, term by term
    assert c.var_iwsm == c.var_sm and c.var_iwsm_stderr == c.var_sm_stderr
    np.testing.assert_allclose(c.ess_fraction, 1.0, rtol=1e-12)
    assert c.kl_divergence == 0.0 and c.ess_fraction_stderr == 0.0
    np.testing.assert_allclose(c.weight_ess, 4000 + 2 * 3, rtol=1e-12)
    assert "monte_carlo" == c.estimate("objective").method


def test_reweighted_proposal_against_the_self_normalised_estimator_itself():
    """6-D, proposal = the same components with other weights: var_iwsm against the
    spread of the self-normalised estimate over 1000 independent runs of n = 128 draws from
    the proposal, and var_dsm against the plain DSM loss (x0 ~ p0)."""
    alpha, sigma = 0.8, 0.6
    prop = _reweighted(GM6, np.asarray(GM6.weights)[::-1])
    c = T.iwsm_variance_comparison(GM6, prop, alpha, sigma, num_samples=20_000)
    assert not c.degenerate
    fit = dsm.GaussianMixture(
        [1.0], np.asarray(GM6.mean())[None], np.asarray(GM6.covariance())[None]
    )
    mt, pt = fit.noised(alpha, sigma), GM6.noised(alpha, sigma)
    score = jax.jit(lambda g, x: g.score(x))
    reps, n = 1000, 128
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(21), 3)
    xb = jax.jit(lambda k: prop.noised(alpha, sigma).sample(k, reps * n))(k1)
    lw = np.asarray(T.iwsm_log_weights(GM6, prop, xb, alpha, sigma)).reshape(reps, n)
    f = np.sum(np.asarray(score(mt, xb) - score(pt, xb)) ** 2, -1).reshape(reps, n)
    w = np.exp(lw)
    est = np.sum(w * f, 1) / np.sum(w, 1)
    # n Var(F-hat) -> var_iwsm; the sample variance of 1000 runs has relative se
    # sqrt((kurtosis - 1) / reps), measured from the runs themselves; the finite-n bias of
    # n Var(F-hat), O(1/n), is far below that
    dev = est - est.mean()
    v, v_se = n * np.mean(dev**2), n * np.std(dev**2) / np.sqrt(reps)
    assert abs(v - c.var_iwsm) < Z_BOUND * np.hypot(v_se, c.var_iwsm_stderr)
    # the proposal's weights are bounded, and its ESS fraction is 1 / E_B[w^2]
    ess_bf = 1.0 / np.mean(w**2)
    ess_se = np.std(w**2) / np.sqrt(w.size) * ess_bf**2
    assert abs(ess_bf - c.ess_fraction) < Z_BOUND * np.hypot(ess_se, c.ess_fraction_stderr)
    assert c.ess_fraction <= np.exp(-c.kl_divergence) + Z_BOUND * c.kl_divergence_stderr
    # plain DSM: x0 ~ p0, loss ||s_theta(x_t) - h1||^2 with h1 = -(x_t - alpha x0) / sigma^2
    m = 50_000
    x0 = np.asarray(jax.jit(lambda k: GM6.sample(k, m))(k2))
    eps = np.asarray(jax.random.normal(k3, x0.shape))
    xt = alpha * x0 + sigma * eps
    loss = np.sum((np.asarray(score(mt, jnp.asarray(xt))) + eps / sigma) ** 2, -1)
    sq = (loss - loss.mean()) ** 2
    assert abs(sq.mean() - c.var_dsm) < Z_BOUND * np.hypot(sq.std() / np.sqrt(m), c.var_dsm_stderr)
    assert abs(loss.mean() - c.objective - c.irreducible) < Z_BOUND * loss.std() / np.sqrt(m)


def _far_pair():
    """p0 = (N(0, S) + N(0, S)) / 4 + N(12 e1, S) / 2 and a proposal N(0, S) (as three equal
    components), S = GM6's first covariance: the proposal misses the far component."""
    cov = np.asarray(GM6.covs)[0]
    means = np.zeros((3, 6))
    means[2, 0] = 12.0
    gm = dsm.GaussianMixture([0.25, 0.25, 0.5], means, np.stack([cov] * 3))
    miss = dsm.GaussianMixture(np.full(3, 1 / 3), np.zeros((3, 6)), np.stack([cov] * 3))
    return gm, miss, cov


def test_degenerate_weights_raise_or_are_nan_never_a_silent_number():
    """A proposal missing a far component: w = p_t / p_B is e^(~hundreds) on it."""
    gm, miss, cov = _far_pair()
    alpha, sigma = 1.0, 0.5
    with pytest.raises(T.IWSMDegenerateError, match=r"degenerate.*effective sample size"):
        T.iwsm_variance_comparison(gm, miss, alpha, sigma, num_samples=2000)
    c = T.iwsm_variance_comparison(gm, miss, alpha, sigma, num_samples=2000, on_degenerate="nan")
    assert c.degenerate and c.weight_ess < T.MIN_WEIGHT_ESS
    for name in ("var_iwsm", "ess_fraction", "var_iwsm_stderr", "ess_fraction_stderr"):
        assert np.isnan(getattr(c, name)), name
    # the rest stays: the oracle's moments and the Jensen bound ESS/n <= exp(-KL). Here
    # p_t = (N_near + N_far)/2 and p_B = N_near, both of covariance S_t = a^2 S + s^2 I:
    # log w = log(1/2) near and log(1/2) + d/2 far, d = mu' S_t^-1 mu (the Mahalanobis
    # distance of the far mean), up to terms below e^-40, so KL = d/4 - log 2
    assert np.isfinite(c.var_sm) and np.isfinite(c.var_dsm)
    mu = np.asarray(gm.means)[2]
    d = mu @ np.linalg.solve(alpha**2 * cov + sigma**2 * np.eye(6), mu)
    assert d > 160
    assert abs(c.kl_divergence - (d / 4 - np.log(2.0))) < Z_BOUND * c.kl_divergence_stderr
    # the balanced proposal of the same mixture keeps every component: w <= K max pi = 3/2
    b = T.iwsm_variance_comparison(gm, T.balanced_proposal(gm), alpha, sigma, num_samples=2000)
    assert not b.degenerate and 1 / 1.5**2 <= b.ess_fraction <= 1.0


def test_balanced_proposal_bounds_the_weights():
    b = T.balanced_proposal(GM6)
    np.testing.assert_allclose(np.asarray(b.weights), 1 / 3, rtol=1e-15)
    np.testing.assert_array_equal(np.asarray(b.means), np.asarray(GM6.means))
    np.testing.assert_array_equal(np.asarray(b.covs), np.asarray(GM6.covs))
    bound = 3 * float(np.max(GM6.weights))
    x = jax.random.normal(jax.random.PRNGKey(0), (500, 6)) * 3
    lw = np.asarray(T.iwsm_log_weights(GM6, b, x, 0.9, 0.3))
    assert np.all(lw <= np.log(bound) + 1e-12)
    c = T.iwsm_variance_comparison(GM6, b, 0.9, 0.3, num_samples=2000)
    assert 1 / bound**2 <= c.ess_fraction <= 1.0


def test_balanced_proposal_low_noise_limit_is_exact():
    """Components far apart, low noise: w = K pi_k on component k (to e^-100), so
    ESS/n = 1 / (K sum pi_k^2) and KL = sum pi_k log(K pi_k) exactly, and the stratified
    Monte Carlo rule, constant within each stratum, must return them to rounding."""
    cov = np.asarray(GM6.covs)[0]
    means = np.zeros((3, 6))
    means[1, 0], means[2, 1] = 12.0, 12.0
    pi = np.array([0.2, 0.3, 0.5])
    gm = dsm.GaussianMixture(pi, means, np.stack([cov] * 3))
    c = T.iwsm_variance_comparison(gm, T.balanced_proposal(gm), 1.0, 0.05, num_samples=2000)
    np.testing.assert_allclose(c.ess_fraction, 1 / (3 * np.sum(pi**2)), rtol=1e-12)
    np.testing.assert_allclose(c.kl_divergence, np.sum(pi * np.log(3 * pi)), rtol=1e-12)
    assert c.ess_fraction_stderr < 1e-12 and c.kl_divergence_stderr < 1e-12


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="on_degenerate"):
        T.iwsm_variance_comparison(GM6, GM6, 1.0, 0.5, on_degenerate="ignore")
    with pytest.raises(ValueError, match="proposal"):
        T.iwsm_variance_comparison(GM6, GM2, 1.0, 0.5)
    with pytest.raises(ValueError, match="method"):
        T.iwsm_variance_comparison(GM6, GM6, 1.0, 0.5, method="trapezoid")
    with pytest.raises(ValueError, match="sigma"):
        T.iwsm_variance_comparison(GM6, GM6, 1.0, 0.0)
    with pytest.raises(ValueError, match="name"):
        T.IWSMComparison(*range(6), "rule").estimate("var_x")
    with pytest.raises(TypeError, match="gm"):
        T.balanced_proposal(np.zeros(3))


def test_iwsm_figure_takes_stderr_bands_nan_and_the_bound():
    from dsmtheory.plots.targets import iwsm_figure

    lam = np.array([0.0, 1.0, 2.0])
    v = np.array([1.0, 2.0, 3.0])
    fig = iwsm_figure(lam, v, v / 2, np.array([0.5, np.nan, 4.0]), np.array([0.9, np.nan, 0.1]),
                      stderrs={"var_iwsm": v / 10, "ess_fraction": v / 100},
                      ess_bound=np.array([0.95, 0.5, 0.2]), title="t")  # fmt: skip
    assert fig.axes[0].get_title() == "t" and len(fig.axes[1].get_lines()) == 4
    with pytest.raises(ValueError, match="ess_bound"):
        iwsm_figure(lam, v, v, v, v, ess_bound=v[:2])


@pytest.mark.slow
def test_targets_command_writes_iwsm_columns_in_4d(tmp_path):
    from dsmtheory.cli import main
    from dsmtheory.cli import targets as cmd

    mix = tmp_path / "g4.json"
    mix.write_text(dsm.to_json(dsm.random_anisotropic(seed=2, num_components=3, dim=4)))
    out = tmp_path / "o"
    assert main(["targets", "--out", str(out), "--quick", "--mixture", str(mix)]) == 0
    assert (out / "targets-iwsm.png").exists()
    with open(out / "targets.csv") as fh:
        rows = list(csv.reader(fh))
    tab = np.array(rows[1:], dtype=float)
    col = {c: tab[:, j] for j, c in enumerate(cmd.COLUMNS)}
    # balanced proposal: bounded weights, never degenerate; every se positive and finite
    assert np.all(col["iwsm_degenerate"] == 0)
    for name in ("var_iwsm", "var_sm", "var_dsm_loss", "ess_fraction", "iwsm_objective"):
        assert np.all(np.isfinite(col[name])), name
        assert np.all(col[name + "_se"] > 0), name
    assert np.all(col["ess_fraction"] <= col["ess_fraction_bound"] * (1 + 1e-6) + 5 * col[
        "ess_fraction_se"])  # fmt: skip
    meta = json.loads((out / "targets.json").read_text())
    assert meta["settings"]["proposal_source"].startswith("every component")
    assert meta["summary"]["iwsm_degenerate_levels"] == 0
