"""compare in any dimension: capacities relative to D, σ_d of EDM and Soft-Min-SNR from the
data, the c* table above D = 3, a weighting that cannot run named in one line, and the
capped matrix weight. Settings only (no training), so these are cheap."""

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import train as T
from dsmtheory.cli import compare, main


def _gm64(k=2, d=64, seed=0):
    """A K = 2, D = 64 mixture, one component rank-deficient (16 exact zeros)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d)) / np.sqrt(d)
    covs = a @ np.swapaxes(a, 1, 2) * 0.3
    e, u = np.linalg.eigh(covs[0])
    e[:16] = 0.0
    covs[0] = (u * e) @ u.T
    covs[0] = 0.5 * (covs[0] + covs[0].T)
    return dsm.GaussianMixture([0.4, 0.6], rng.normal(size=(k, d)) * 0.5, covs)


def test_default_capacities_scale_with_the_dimension():
    assert T.capacities_for_dim(2) == compare.CAPACITIES  # the 2-D protocol is unchanged
    assert T.capacities_for_dim(64) == (800, 3200, 16000, 32000)
    assert compare.resolve_capacities(["50D", 300], 64) == (3200, 300)
    gm = _gm64()
    s = compare.settings(gm, quick=True)
    assert s.capacities == (800, 3200, 16000, 32000)


def test_sigma_data_and_c_star_table_come_from_the_data():
    gm = _gm64()
    sd = float(np.sqrt(np.trace(np.asarray(gm.covariance())) / 64))  # tr Cov[x0] / D
    s = compare.settings(gm, quick=True, weightings=("edm", "soft_min_snr", "c_star", "simple"))
    assert s.weighting_params["edm"] == {"sigma_data": pytest.approx(sd, rel=1e-12)}
    assert s.weighting_params["soft_min_snr"] == {"sigma_data": pytest.approx(sd, rel=1e-12)}
    nodes, draws = compare.C_STAR_TABLE["quick"]
    assert s.weighting_params["c_star"] == {
        "num_grid": nodes, "method": "monte_carlo", "num_samples": draws,
    }  # fmt: skip
    assert "simple" not in s.weighting_params
    # the user's own parameters win
    given = T.data_weighting_params(gm, ["soft_min_snr"], {"soft_min_snr": {"gamma": 2.0}})
    assert given == {"soft_min_snr": {"gamma": 2.0}}


def test_a_capacity_below_the_smallest_model_and_a_bad_multiple_exit_2(tmp_path, capsys):
    path = dsm.save_mixture(_gm64(), tmp_path / "m.npz")
    for caps, needle in ((["25"], "the smallest model in D = 64 has 199 parameters"),
                         (["xD"], "a multiple of D such as 50D")):  # fmt: skip
        argv = ["compare", "--mixture", str(path), "--out", str(tmp_path / "o"),
                "--capacities", *caps]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err


def test_a_weighting_that_cannot_be_built_is_named():
    # an unusable c* table setting: the error names the weighting, the mixture's size and
    # the reason, and compare turns it into a one-line usage error
    gm = _gm64()
    base = T.TrainConfig(mixture=gm, capacity=800, steps=1, batch_size=2)
    with pytest.raises(ValueError, match=r"weighting 'c_star' cannot run on this mixture "
                       r"\(K = 2, D = 64\): num_grid"):  # fmt: skip
        T.sweep(base, weightings=["c_star"], capacities=[800], seeds=[0],
                weighting_params={"c_star": {"num_grid": 2}}, progress=False)  # fmt: skip


def test_matrix_weight_is_capped_where_the_data_pins_the_noise():
    # one 1-D Gaussian of variance s²: Cov[ε | x_t] = s²/(s² + σ²) (VE), so the matrix
    # weight is 1 + σ²/s² (derived by hand), capped at MATRIX_MAX_WEIGHT
    s2 = 1e-6
    gm = dsm.single_gaussian([0.0], np.sqrt(s2))
    lw = T.matrix_optimal_weighting(gm)
    sig = np.array([1e-4, 1e-3, 0.05, 1.0])
    x = np.zeros((4, 1))
    m = np.asarray(lw.weigh(x, np.ones(4), sig, -2 * np.log(sig)))[:, 0, 0]
    exact = 1.0 + sig**2 / s2
    np.testing.assert_allclose(m[:3], exact[:3], rtol=1e-6)  # 1.01, 2, 2501; float32 out
    assert m[3] == np.float32(T.MATRIX_MAX_WEIGHT) and exact[3] > 1e6  # capped
