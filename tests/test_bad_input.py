"""Bad input at the public boundary (DESIGN.md, "Bad input"): each case asserts the error
type AND that the message names the offending argument (and the component, the known
names or the valid range where the design asks for it)."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import schedules
from dsmtheory.mixture import GaussianMixture, posterior_cov, posterior_mean

W = [0.5, 0.5]
MU = [[0.0, 0.0], [1.0, 1.0]]
COVS = [np.eye(2), 2.0 * np.eye(2)]


@pytest.fixture(scope="module")
def gm():
    return GaussianMixture(W, MU, COVS)


def _raises(exc, *needles):
    """pytest.raises that also checks every needle appears in the message."""

    class _Ctx:
        def __enter__(self):
            self._cm = pytest.raises(exc)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *a):
            out = self._cm.__exit__(*a)
            msg = str(self.info.value)
            for n in needles:
                assert n in msg, f"{n!r} not in {msg!r}"
            return out

    return _Ctx()


# ---------------------------------------------------------------------------------------
# GaussianMixture construction
# ---------------------------------------------------------------------------------------
def test_negative_weight():
    with _raises(ValueError, "weights", "> 0"):
        GaussianMixture([1.2, -0.2], MU, COVS)


def test_zero_weight():
    with _raises(ValueError, "weights[1]"):
        GaussianMixture([1.0, 0.0], MU, COVS)


def test_weights_not_summing_to_one():
    with _raises(ValueError, "weights", "sum to 1"):
        GaussianMixture([0.5, 0.6], MU, COVS)


def test_weights_wrong_rank():
    with _raises(ValueError, "weights", "(K,)"):
        GaussianMixture([[0.5, 0.5]], MU, COVS)


def test_weights_not_numbers():
    with _raises(TypeError, "weights"):
        GaussianMixture(["a", "b"], MU, COVS)


def test_covariance_not_symmetric_names_component():
    bad = [np.eye(2), np.array([[1.0, 0.5], [0.0, 1.0]])]
    with _raises(ValueError, "covs[1]", "symmetric", "component 1"):
        GaussianMixture(W, MU, bad)


def test_covariance_not_positive_semi_definite_names_component():
    # PSD covariances (zero eigenvalues) are accepted since issue 14; negative ones are not
    bad = [np.array([[1.0, 2.0], [2.0, 1.0]]), np.eye(2)]
    with _raises(ValueError, "covs[0]", "positive semi-definite", "component 0"):
        GaussianMixture(W, MU, bad)


def test_isotropic_and_diagonal_variances_must_be_non_negative():
    with _raises(ValueError, "covs[1]", ">= 0"):
        GaussianMixture(W, MU, [1.0, -1.0])
    with _raises(ValueError, "covs[0]", ">= 0"):
        GaussianMixture(W, MU, [[1.0, -0.5], [1.0, 1.0]])


def test_means_shape_mismatch():
    with _raises(ValueError, "means", "(2, D)"):
        GaussianMixture(W, [[0.0, 0.0]], COVS)
    with _raises(ValueError, "means"):
        GaussianMixture(W, [0.0, 1.0], COVS)


def test_covs_shape_mismatch():
    with _raises(ValueError, "covs", "(K, D, D)"):
        GaussianMixture(W, MU, np.stack([np.eye(3), np.eye(3)]))
    with _raises(ValueError, "covs", "(K, D)"):
        GaussianMixture(W, MU, [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    with _raises(ValueError, "covs", "(K,)"):
        GaussianMixture(W, MU, [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "which,args",
    [
        ("weights", ([0.5, math.nan], MU, COVS)),
        ("means", (W, [[0.0, math.nan], [1.0, 1.0]], COVS)),
        ("covs", (W, MU, [1.0, math.inf])),
    ],
)
def test_non_finite_parameters(which, args):
    with _raises(ValueError, which, "finite"):
        GaussianMixture(*args)


# ---------------------------------------------------------------------------------------
# per-point methods and posterior
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["log_prob", "score", "hessian", "responsibilities"])
def test_x_wrong_last_dimension(gm, method):
    with _raises(ValueError, "x", "(..., 2)"):
        getattr(gm, method)(np.zeros((4, 3)))


def test_x_scalar(gm):
    with _raises(ValueError, "x"):
        gm.log_prob(0.0)


def test_nan_in_x(gm):
    with _raises(ValueError, "x", "finite"):
        gm.score(np.array([[0.0, math.nan]]))
    with _raises(ValueError, "x_t", "finite"):
        posterior_mean(gm, np.array([math.inf, 0.0]), 1.0, 0.5)


def test_posterior_x_t_wrong_dimension(gm):
    with _raises(ValueError, "x_t", "(..., 2)"):
        posterior_cov(gm, np.zeros(3), 1.0, 0.5)


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan])
def test_sigma_not_positive(gm, sigma):
    with _raises(ValueError, "sigma"):
        gm.noised(1.0, sigma)
    with _raises(ValueError, "sigma"):
        posterior_mean(gm, np.zeros(2), 1.0, sigma)


@pytest.mark.parametrize("alpha", [0.0, -0.5, math.inf])
def test_alpha_not_positive(gm, alpha):
    with _raises(ValueError, "alpha"):
        gm.noised(alpha, 0.5)
    with _raises(ValueError, "alpha"):
        posterior_cov(gm, np.zeros(2), alpha, 0.5)


def test_alpha_sigma_not_scalar(gm):
    with _raises(ValueError, "sigma", "scalar"):
        gm.noised(1.0, np.array([0.1, 0.2]))
    with _raises(ValueError, "alpha", "scalar"):
        dsm.posterior_cov_trace(gm, np.zeros(2), np.array([1.0, 1.0]), 0.1)


@pytest.mark.parametrize(
    ("n", "exc"), [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_sample_n_not_positive_integer(gm, n, exc):
    # a count of the wrong type (a float, a bool) is a TypeError, a count < 1 a ValueError
    with _raises(exc, "n", "positive integer"):
        gm.sample(jax.random.PRNGKey(0), n)


@pytest.mark.parametrize(
    "ctor,kwargs,name",
    [
        (dsm.ring, {"num_modes": 0}, "num_modes"),
        (dsm.ring, {"std": -1.0}, "std"),
        (dsm.grid_2d, {"n": 0}, "n"),
        (dsm.grid_2d, {"spacing": 0.0}, "spacing"),
        (dsm.bimodal_1d, {"weight": 1.0}, "weight"),
        (dsm.bimodal_1d, {"separation": -1.0}, "separation"),
        (dsm.random_anisotropic, {"dim": 0}, "dim"),
        (dsm.random_anisotropic, {"num_components": 0}, "num_components"),
        (dsm.random_anisotropic, {"std_range": (0.5, 0.1)}, "std_range"),
        (dsm.single_gaussian, {"mean": [0.0], "std": 0.0}, "std"),
    ],
)
def test_constructor_arguments(ctor, kwargs, name):
    with _raises(ValueError, name):
        ctor(**kwargs)


# ---------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,needle",
    [
        ('{"weights": [0.5, 0.5], "means": [[0.0], [1.0]]', "malformed"),
        ('{"weights": [1.0], "means": [[0.0]]}', "covs"),
        ("[1, 2, 3]", "object"),
        ('{"weights": [0.5, 0.5], "means": [[0.0], [1.0]], "covs": [[1.0]]}', "covs"),
        ('{"weights": [0.5, 0.5], "means": [[0.0, 1.0]], "covs": [1.0, 1.0]}', "means"),
        ('{"weights": "abc", "means": [[0.0]], "covs": [1.0]}', "weights"),
        ('{"weights": [0.5, 0.5], "means": [[0.0], [1.0, 2.0]], "covs": [1.0, 1.0]}', "means"),
    ],
    ids=[
        "bad-json",
        "missing-key",
        "not-object",
        "covs-shape",
        "means-shape",
        "weights-text",
        "ragged-means",
    ],
)
def test_from_json_malformed(text, needle, tmp_path):
    with _raises(ValueError, needle):
        dsm.from_json(text)
    path = tmp_path / "bad.json"
    path.write_text(text)
    with _raises(ValueError, needle):
        dsm.from_json(str(path))


def test_from_json_missing_file(tmp_path):
    with _raises(ValueError, "mixture file", "cannot be read"):
        dsm.from_json(str(tmp_path / "nope.json"))


def test_cli_malformed_mixture_one_line_exit_2(tmp_path, capsys):
    from dsmtheory.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"weights": [0.5, 0.6], "means": [[0.0], [1.0]], "covs": [1, 1]}))
    out = tmp_path / "out"
    code = main(["heteroskedasticity", "--out", str(out), "--mixture", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "weights" in lines[0] and "Traceback" not in err
    # nothing written half: no result files for a rejected run
    assert not out.exists() or not any(out.iterdir())


def test_cli_unparseable_mixture_json(tmp_path, capsys):
    from dsmtheory.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code = main(["heteroskedasticity", "--out", str(tmp_path / "o"), "--mixture", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "malformed" in err


# ---------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------
def test_unknown_schedule_lists_known():
    with _raises(ValueError, "schedule", "'nope'", *schedules.names()):
        schedules.get("nope")


def test_schedule_name_not_a_string():
    with _raises(TypeError, "name"):
        schedules.get(3)


def test_unknown_schedule_parameter():
    with _raises(ValueError, "bogus", "vp_linear", "beta_min"):
        schedules.get("vp_linear", bogus=1.0)


def test_unknown_process():
    with _raises(ValueError, "process", "'xx'", "ve", "vp"):
        schedules.get("cosine", process="xx")
    with _raises(ValueError, "process"):
        schedules.alpha_sigma(0.0, "edm")


@pytest.mark.parametrize("name", schedules.names())
def test_lam_min_not_below_lam_max(name):
    with _raises(ValueError, "lam_min", "lam_max"):
        schedules.get(name, lam_min=1.0, lam_max=1.0)
    with _raises(ValueError, "lam_min", "lam_max"):
        schedules.get(name, lam_min=2.0, lam_max=-2.0)


def test_lam_outside_the_natural_range():
    with _raises(ValueError, "lam_max", "edm_sampling"):
        schedules.get("edm_sampling", lam_max=20.0)
    with _raises(ValueError, "lam_min", "ve"):
        schedules.get("ve", lam_min=-50.0)


def test_t_of_lam_outside_truncated_range():
    s = schedules.get("cosine", lam_min=-5.0, lam_max=5.0)
    with _raises(ValueError, "lam", "[-5, 5]"):
        s.t(6.0)
    with _raises(ValueError, "lam", "finite"):
        s.t(math.nan)


def test_t_outside_unit_interval():
    s = schedules.get("vp_linear")
    with _raises(ValueError, "t", "[0, 1]"):
        s.lam(np.array([0.5, 1.5]))
    with _raises(ValueError, "t"):
        s.g2(-0.1)


@pytest.mark.parametrize(
    "name,kwargs,needle",
    [
        ("ve", {"sigma_min": -1.0}, "sigma_min"),
        ("ve", {"sigma_min": 10.0, "sigma_max": 1.0}, "sigma_min"),
        ("vp_linear", {"beta_min": 0.0}, "beta_min"),
        ("vp_linear", {"t_min": 1.5}, "t_min"),
        ("edm_training", {"p_std": 0.0}, "p_std"),
        ("edm_sampling", {"rho": -7.0}, "rho"),
        ("cosine", {"shift": math.inf}, "shift"),
    ],
)
def test_schedule_parameter_values(name, kwargs, needle):
    with _raises(ValueError, needle):
        schedules.get(name, **kwargs)


def test_density_nan():
    with _raises(ValueError, "lam"):
        schedules.get("ve").density(math.nan)
