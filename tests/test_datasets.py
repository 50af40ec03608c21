"""The built-in data sets and from_sklearn (dsmtheory.datasets).

Most tests need scikit-learn (and the patch tests scikit-image): the optional extra
``dsmtheory[data]``. They are skipped with ``pytest.importorskip`` only where it is
missing: the ``test`` extra that CI installs includes ``data``, so in CI they run. The
tests of names, checks and the missing-extra message run everywhere.
"""

import os
import sys
import warnings

import jax
import numpy as np
import pytest
import scipy.stats
from synthetic_data import sklearn_mixture as _sklearn
from synthetic_data import subspace_data as _subspace_data

import dsmtheory as dsm
from dsmtheory import datasets


def _leaves(gm):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(gm)]


def _bit_identical(a, b) -> bool:
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(la, lb, strict=True)
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(datasets.CACHE_ENV, str(folder))
    return folder


# ---------------------------------------------------------------------------------------
# from_sklearn
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_from_sklearn_equals_score_samples(cov_type):
    skm = _sklearn()
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [rng.normal(size=(150, 5)) * [1, 2, 0.5, 1, 1.5], rng.normal(3, 1, (150, 5))]
    )
    model = skm.GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(x)
    gm = dsm.from_sklearn(model)
    assert isinstance(gm, dsm.GaussianMixture)
    assert (gm.num_components, gm.dim) == (3, 5)
    pts = np.concatenate([x[::7], rng.normal(0, 4, (30, 5))])
    # log-densities ~ -5 .. -60: both are exact float64 closed forms of the same density,
    # by different factorizations (eigh here, Cholesky there)
    np.testing.assert_allclose(gm.log_prob(pts), model.score_samples(pts), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(np.asarray(gm.weights), model.weights_, rtol=1e-14)


def test_from_sklearn_reports_the_floor():
    skm = _sklearn()
    x = _subspace_data()
    model = skm.GaussianMixture(2, covariance_type="full", reg_covar=1e-6, random_state=0).fit(x)
    gm, floor = dsm.from_sklearn(model, return_info=True)
    # the data span 3 of 6 directions: 3 eigenvalues per component sit on the floor
    assert floor.floor == 1e-6
    np.testing.assert_array_equal(floor.on_floor, [3, 3])
    assert floor.median_on_floor == 3.0
    np.testing.assert_allclose(floor.min_eigenvalue, 1e-6, rtol=1e-8)
    assert floor.rank_tol is None and floor.mean_rank == 6.0
    np.testing.assert_array_equal(floor.zeroed, [0, 0])
    assert gm.dim == 6


def test_from_sklearn_refuses_what_is_not_a_fitted_model():
    skm = _sklearn()
    with pytest.raises(TypeError, match="call fit first"):
        dsm.from_sklearn(skm.GaussianMixture(2))
    with pytest.raises(TypeError, match="fitted scikit-learn GaussianMixture"):
        dsm.from_sklearn(object())
    model = skm.GaussianMixture(1).fit(np.random.default_rng(0).normal(size=(20, 2)))
    for bad in (-1.0, float("nan"), "1e-5", True):
        with pytest.raises((TypeError, ValueError), match="rank_tol"):
            dsm.from_sklearn(model, rank_tol=bad)


def test_bayesian_mixture_is_accepted():
    skm = _sklearn()
    x = np.random.default_rng(2).normal(size=(100, 3))
    with warnings.catch_warnings():  # 20 iterations need not converge: only the conversion
        warnings.simplefilter("ignore")  # of the fitted arrays is tested
        model = skm.BayesianGaussianMixture(n_components=2, random_state=0, max_iter=20).fit(x)
    gm = dsm.from_sklearn(model)
    # the plug-in mixture of its weights_, means_, covariances_ (score_samples of a
    # Bayesian mixture is a variational expectation, a different quantity)
    ref = np.logaddexp.reduce(
        [
            np.log(model.weights_[k])
            + scipy.stats.multivariate_normal(model.means_[k], model.covariances_[k]).logpdf(x)
            for k in range(2)
        ],
        axis=0,
    )
    np.testing.assert_allclose(gm.log_prob(x), ref, rtol=1e-12, atol=1e-10)


# ---------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------
def test_fit_is_deterministic_and_seeded():
    _sklearn()
    x = _subspace_data(seed=4)
    a, info = datasets.fit(x, 2, seed=7, return_info=True)
    b = datasets.fit(x, 2, seed=7)
    assert _bit_identical(a, b)
    assert info.converged and info.num_samples == 400 and info.dim == 6 and not info.cached
    assert info.settings == datasets.FIT_SETTINGS
    with pytest.raises(ValueError, match="num_components must be between 1 and 400"):
        datasets.fit(x, 401)
    with pytest.raises(ValueError, match="data must be finite, but row 3"):
        datasets.fit(np.where(np.arange(400)[:, None] == 3, np.nan, x), 2)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        datasets.fit(x, 2, covariance_type="banded")


# ---------------------------------------------------------------------------------------
# the built-in data sets
# ---------------------------------------------------------------------------------------
def test_digits_data_is_scaled():
    pytest.importorskip("sklearn", reason="needs the optional extra [data]")
    x = datasets.digits_data()
    assert x.shape == (1797, 64) and x.dtype == np.float64
    assert x.min() == -1.0 and x.max() == 1.0
    # grey levels 0..16 map to multiples of 1/8
    np.testing.assert_array_equal((x + 1.0) * 8.0, np.round((x + 1.0) * 8.0))


def test_digits_deterministic_fresh_and_cached(cache):
    _sklearn()
    gm, info = datasets.digits(num_components=2, seed=3, return_info=True)
    assert (gm.num_components, gm.dim) == (2, 64) and not info.cached
    assert info.cache_path is not None and os.path.dirname(info.cache_path) == str(cache)
    again, info2 = datasets.digits(num_components=2, seed=3, return_info=True)
    assert info2.cached and _bit_identical(gm, again)
    fresh = datasets.digits(num_components=2, seed=3, cache=False)
    assert _bit_identical(gm, fresh)
    # the floor: digits' always-blank corner pixels are constant, so every component has
    # eigenvalues on it
    assert info.floor.on_floor.min() >= 1 and info.floor.mean_rank == 64.0
    other = datasets.digits(num_components=2, seed=4)
    assert not _bit_identical(gm, other)
    assert len(list(cache.iterdir())) == 2  # one file a fit, named by its key


def test_cache_survives_a_corrupt_or_foreign_file(cache):
    _sklearn()
    _, info = datasets.digits(num_components=1, return_info=True)
    path = info.cache_path
    with open(path, "wb") as fh:
        fh.write(b"garbage")
    with pytest.warns(RuntimeWarning, match="ignoring the cache file"):
        gm, info2 = datasets.digits(num_components=1, return_info=True)
    assert not info2.cached
    _, info3 = datasets.digits(num_components=1, return_info=True)  # rewritten
    assert info3.cached and _bit_identical(gm, datasets.digits(num_components=1))


def test_unwritable_cache_still_returns_the_fit(tmp_path, monkeypatch):
    _sklearn()
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(datasets.CACHE_ENV, str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not write the cache"):
        gm = datasets.digits(num_components=1)
    assert gm.dim == 64


def test_image_patches_data_and_fit(cache):
    pytest.importorskip("skimage", reason="needs the optional extra [data]")
    _sklearn()
    x = datasets.image_patches_data(4, num_patches=600)
    assert x.shape == (600, 16)
    np.testing.assert_allclose(x.sum(axis=1), 0.0, atol=1e-12)  # DC removed
    assert np.abs(x).max() <= 2.0
    np.testing.assert_array_equal(x, datasets.image_patches_data(4, num_patches=600))
    gm, info = datasets.image_patches(num_components=2, size=4, num_patches=600, return_info=True)
    assert (gm.dim, info.num_samples) == (16, 600)
    # the all-ones direction carries no data variance: at least one eigenvalue per
    # component on the floor
    assert info.floor.on_floor.min() >= 1
    again = datasets.image_patches(num_components=2, size=4, num_patches=600, cache=False)
    assert _bit_identical(gm, again)
    with pytest.raises(ValueError, match="size must be between 2 and 8"):
        datasets.image_patches(size=9)


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now fails
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(datasets.MissingDependencyError, match=r'pip install "dsmtheory\[data\]"'):
        datasets.digits()
    assert issubclass(datasets.MissingDependencyError, ImportError)


# ---------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec,expected",
    [
        ("digits", ("digits", {})),
        ("digits:50", ("digits", {"num_components": 50})),
        ("digits:10:rank_tol=1e-5", ("digits", {"num_components": 10, "rank_tol": 1e-5})),
        ("patches:20:seed=1:size=6", ("patches", {"num_components": 20, "seed": 1, "size": 6})),
        (" patches ", ("patches", {})),
    ],
)
def test_parse_spec(spec, expected):
    assert datasets.parse_spec(spec) == expected
    assert datasets.is_spec(spec)


@pytest.mark.parametrize(
    "spec,needle",
    [
        ("mnist:10", "unknown data set"),
        ("digits:ten", "num_components must be a non-negative integer"),
        ("digits:10:size=4", "unknown key 'size'"),
        ("digits:10:rank_tol=inf", "rank_tol must be a finite number"),
        ("digits:10:10", "must be key=value"),
        ("digits:seed=1:seed=2", "seed given twice"),
    ],
)
def test_parse_spec_refusals(spec, needle):
    with pytest.raises(ValueError) as info:
        datasets.parse_spec(spec)
    assert needle in str(info.value)


def test_spec_dim_and_cache_dir(monkeypatch, tmp_path):
    assert datasets.spec_dim("digits:5") == 64 and datasets.spec_dim("patches:3:size=5") == 25
    monkeypatch.delenv(datasets.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets.cache_dir() == tmp_path / "dsmtheory" / "datasets"
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "mine"))
    assert datasets.cache_dir() == tmp_path / "mine"


def test_reachable_from_the_package():
    assert dsm.datasets.digits is datasets.digits and dsm.from_sklearn is datasets.from_sklearn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "sklearn" not in dir(datasets)
