"""rank_tol: the regularisation floor of a fitted mixture clipped to exact zeros, giving a
rank-deficient mixture that the package accepts (dsmtheory.datasets, dsmtheory fit).

These need scikit-learn, the optional extra ``dsmtheory[data]`` (skipped with
``pytest.importorskip`` only where it is missing; the ``test`` extra that CI installs
includes ``data``), and GaussianMixture's rank-deficient covariances (issue 14 item 1).
"""

import json

import numpy as np
import pytest
import scipy.stats
from synthetic_data import data64 as _data64
from synthetic_data import sklearn_mixture as _sklearn
from synthetic_data import subspace_data as _subspace_data

from dsmtheory import datasets, mixture_io
from dsmtheory.cli import main


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(datasets.CACHE_ENV, str(folder))
    return folder


# ---------------------------------------------------------------------------------------
# rank_tol: exact zeros, a mixture the package accepts
# ---------------------------------------------------------------------------------------
def test_rank_tol_gives_exact_zeros_and_a_usable_mixture():
    skm = _sklearn()
    x = _subspace_data()
    model = skm.GaussianMixture(2, covariance_type="full", reg_covar=1e-6, random_state=0).fit(x)
    gm, floor = datasets.from_sklearn(model, rank_tol=1e-5, return_info=True)
    np.testing.assert_array_equal(floor.zeroed, [3, 3])
    np.testing.assert_array_equal(floor.ranks, [3, 3])
    assert floor.mean_rank == 3.0
    e = np.asarray(gm.eigvals)
    np.testing.assert_array_equal(np.sum(e == 0.0, axis=1), [3, 3])  # exactly zero
    assert np.all(e[e != 0.0] > 1e-3)
    # the kept spectrum is sklearn's: covariances U diag(e [e > tol]) U^T
    ev, u = np.linalg.eigh(model.covariances_)
    clipped = np.einsum("kij,kj,klj->kil", u, np.where(ev <= 1e-5, 0.0, ev), u)
    np.testing.assert_allclose(np.asarray(gm.covs), clipped, atol=1e-13)
    # the noised mixture is an ordinary one: its density against scipy's, component by
    # component, at sigma = 0.1 (independent of dsmtheory's factorization)
    sigma = 0.1
    pt = gm.noised(1.0, sigma)
    pts = x[:25] + 0.05
    ref = np.logaddexp.reduce(
        [
            np.log(model.weights_[k])
            + scipy.stats.multivariate_normal(
                model.means_[k], clipped[k] + sigma**2 * np.eye(6)
            ).logpdf(pts)
            for k in range(2)
        ],
        axis=0,
    )
    np.testing.assert_allclose(pt.log_prob(pts), ref, rtol=1e-11)


@pytest.mark.parametrize("cov_type", ["diag", "spherical"])
def test_rank_tol_on_diagonal_and_spherical_models(cov_type):
    skm = _sklearn()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4)) * [1.0, 0.5, 0.0, 0.0]  # two coordinates constant
    if cov_type == "spherical":
        x = np.concatenate([x, np.tile([5.0, 5.0, 0.0, 0.0], (50, 1))])  # an atom at (5, 5)
    model = skm.GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(x)
    gm, floor = datasets.from_sklearn(model, rank_tol=1e-5, return_info=True)
    e = np.asarray(gm.eigvals)
    if cov_type == "diag":
        np.testing.assert_array_equal(floor.zeroed, [2, 2])
        assert np.all(e[:, 2:] == 0.0) and np.all(e[:, :2] > 1e-3)
    else:  # one component is the atom: its one variance is clipped, D zeros
        assert sorted(floor.zeroed.tolist()) == [0, 4]
        assert sorted(floor.ranks.tolist()) == [0, 4]
    assert gm.diagonal
    assert np.all(np.isfinite(np.asarray(gm.noised(1.0, 0.1).log_prob(x[:10]))))


def test_digits_rank_tol_uses_the_same_cached_fit(cache):
    _sklearn()
    gm, info = datasets.digits(num_components=2, seed=0, return_info=True)
    clipped, cinfo = datasets.digits(num_components=2, seed=0, rank_tol=1e-5, return_info=True)
    assert cinfo.cached and cinfo.cache_path == info.cache_path
    e = np.asarray(clipped.eigvals)
    np.testing.assert_array_equal(np.sum(e == 0.0, axis=1), cinfo.floor.zeroed)
    assert np.all(cinfo.floor.zeroed >= info.floor.on_floor)  # the floor (<= 1.01e-6) and more
    assert cinfo.floor.mean_rank < 64


def test_fit_with_rank_tol_writes_a_rank_deficient_mixture(tmp_path, capsys):
    _sklearn()
    np.save(tmp_path / "d.npy", _data64())
    out = tmp_path / "m.json"
    argv = ["fit", "--data", str(tmp_path / "d.npy"), "--components", "3", "--out", str(out),
            "--rank-tol", "1e-5", "--seed", "2"]  # fmt: skip
    assert main(argv) == 0
    assert "set 168 eigenvalues to 0" in capsys.readouterr().out
    gm = mixture_io.load(out)
    np.testing.assert_array_equal(np.sum(np.asarray(gm.eigvals) == 0.0, axis=1), [56, 56, 56])
    info = json.loads((tmp_path / "m.fit.json").read_text())
    assert info["eigenvalue_floor"]["ranks"] == [8, 8, 8]
    assert info["eigenvalue_floor"]["mean_rank"] == pytest.approx(8.0, rel=1e-12)
