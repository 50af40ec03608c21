"""Tests of dsmtheory.optimal.estimate_c_star: with the exact posterior mean it equals the
exact c* within its standard error, its standard error matches the spread over keys, a
worse denoiser is biased low by exactly its extra error, and bad input is refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import optimal
from dsmtheory.mixture import posterior_mean

GM = dsm.bimodal_1d()
DATA = np.asarray(GM.sample(jax.random.PRNGKey(0), 4000))


def bayes(x, a, s):
    return posterior_mean(GM, x, a, s)


@pytest.mark.parametrize("process,sigma", [("ve", 0.25), ("ve", 1.5), ("vp", 0.6)])
def test_bayes_denoiser_gives_c_star_within_stderr(process, sigma):
    alpha = 1.0 if process == "ve" else float(np.sqrt(1 - sigma**2))
    est = optimal.estimate_c_star(bayes, DATA, alpha, sigma, key=jax.random.PRNGKey(1))
    exact = optimal.homoskedastic_multiplier(GM, alpha, sigma).value
    assert est.stderr > 0 and est.method == "monte_carlo"
    assert abs(est.value - exact) < 4 * est.stderr, (est.value, exact, est.stderr)


def test_stderr_matches_the_spread_over_keys():
    vals, ses = [], []
    for i in range(40):
        e = optimal.estimate_c_star(
            bayes, DATA, 1.0, 0.5, key=jax.random.PRNGKey(100 + i), num_samples=500
        )
        vals.append(e.value)
        ses.append(e.stderr)
    # 40 replicates: the sample sd is within ~±25 % of its mean (the subsets of the 4000
    # points overlap, which correlates the replicates a little and lowers the spread)
    ratio = np.std(vals, ddof=1) / np.mean(ses)
    assert 0.6 < ratio < 1.4, ratio


def test_a_worse_denoiser_is_biased_low_by_its_extra_error():
    # x̂0 = posterior mean + b: E e = mmse + b²D, so ĉ* → D σ̃² / (mmse + b² D) (derived)
    b, sigma = 0.2, 0.5
    est = optimal.estimate_c_star(
        lambda x, a, s: bayes(x, a, s) + b, DATA, 1.0, sigma, key=jax.random.PRNGKey(2)
    )
    exact = optimal.homoskedastic_multiplier(GM, 1.0, sigma).value
    mmse = sigma**2 / exact  # D = 1
    want = sigma**2 / (mmse + b**2)
    assert est.value < exact - 5 * est.stderr
    assert abs(est.value - want) < 4 * est.stderr


def test_curve_and_bad_input():
    cur = optimal.estimate_c_star_curve(
        bayes, DATA, [0.25, 1.0], "ve", key=jax.random.PRNGKey(3), num_samples=1000
    )
    exact = optimal.c_star_curve(GM, [0.25, 1.0])
    assert np.all(np.abs(cur.value - exact) < 4 * cur.stderr)
    key = jax.random.PRNGKey(0)
    with pytest.raises(TypeError, match="predict_x0"):
        optimal.estimate_c_star(None, DATA, 1.0, 0.5, key=key)
    with pytest.raises(ValueError, match="data"):
        optimal.estimate_c_star(bayes, DATA[:, 0], 1.0, 0.5, key=key)
    with pytest.raises(ValueError, match="num_samples"):
        optimal.estimate_c_star(bayes, DATA, 1.0, 0.5, key=key, num_samples=10**5)
    with pytest.raises(ValueError, match="sigma"):
        optimal.estimate_c_star(bayes, DATA, 1.0, -0.5, key=key)
    with pytest.raises(ValueError, match="shape"):
        optimal.estimate_c_star(lambda x, a, s: x[:, :0], DATA, 1.0, 0.5, key=key)
    with pytest.raises(ValueError, match="non-finite"):
        optimal.estimate_c_star(lambda x, a, s: x * jnp.nan, DATA, 1.0, 0.5, key=key)
    with pytest.raises(ValueError, match="< 1"):
        optimal.estimate_c_star_curve(bayes, DATA, [1.5], "vp", key=key)
