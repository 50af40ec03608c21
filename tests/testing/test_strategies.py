"""Tests of dsmtheory.testing.strategies: every strategy draws valid objects, and the
package explains how to get hypothesis when it is missing."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

from dsmtheory import schedules, weightings
from dsmtheory.testing import DiscreteSchedule, ddpm_log_snr
from dsmtheory.testing import strategies as dst

GRID = np.linspace(-10.0, 10.0, 41)


@given(dst.log_snrs(-3.0, 4.0))
def test_log_snrs(lam):
    assert -3.0 <= lam <= 4.0


@settings(max_examples=10)
@given(dst.weightings())
def test_weightings_are_valid(w):
    assert isinstance(w, weightings.Weighting) and w.name in weightings.names()
    vals = np.asarray(w(GRID))
    assert vals.shape == GRID.shape and np.all(np.isfinite(vals)) and np.all(vals > 0)


def test_every_registry_entry_has_a_recipe():
    for name in weightings.names():
        dst.weighting_params(name)  # no error
    with pytest.raises(ValueError, match="unknown weighting"):
        dst.weighting_params("nope")


@settings(max_examples=6)
@given(dst.schedules(discrete=True))
def test_schedules_are_valid(s):
    if isinstance(s, DiscreteSchedule):
        lam = ddpm_log_snr(s.alphas_cumprod)
        assert lam.shape == (s.num_train_timesteps,) and np.all(np.diff(lam) < 0)
        assert np.all(np.isfinite(lam))
    else:
        assert isinstance(s, schedules.Schedule) and s.name in schedules.names()
        lam = np.linspace(max(s.lam_min, -10), min(s.lam_max, 10), 11)
        assert np.all(np.asarray(s.density(lam)) > 0)


@given(dst.parameterizations(exclude=["F"]))
def test_parameterizations(p):
    assert p in ("eps", "x0", "v", "score")


@settings(max_examples=8)
@given(dst.mixtures(dim=3, max_components=3))
def test_mixtures_are_valid(gm):
    assert gm.dim == 3 and 1 <= gm.num_components <= 3
    np.testing.assert_allclose(float(np.sum(gm.weights)), 1.0, rtol=1e-12)
    covs = np.asarray(gm.covs)
    assert np.all(np.linalg.eigvalsh(covs) > 0)
    np.testing.assert_allclose(covs, np.swapaxes(covs, 1, 2), atol=1e-15)


@settings(max_examples=6)
@given(dst.mixtures(dim=4, kinds=["rank_deficient"]))
def test_rank_deficient_mixtures(gm):
    e = np.linalg.eigvalsh(np.asarray(gm.covs))  # (K, D), ascending
    floor = dst.RANK_DEFICIENT_FLOOR
    assert np.all(np.abs(e[:, 0] - floor) <= 1e-9)  # rank < D: at least one floor direction
    assert np.all(e >= floor * (1 - 1e-6))


@settings(max_examples=5)
@given(dst.mixtures(dim=2, kinds=["isotropic"]))
def test_isotropic_mixtures(gm):
    covs = np.asarray(gm.covs)
    np.testing.assert_allclose(covs[:, 0, 0], covs[:, 1, 1])
    assert np.all(covs[:, 0, 1] == 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="min_value < max_value"):
        dst.log_snrs(1.0, 1.0)
    with pytest.raises(ValueError, match="kinds"):
        dst.mixtures(kinds=["banded"])
    with pytest.raises(ValueError, match="unknown schedule"):
        dst.schedules(["nope"])
    with pytest.raises(ValueError, match="beta_schedules"):
        dst.discrete_schedules(["cosine"])


def test_missing_hypothesis_gives_the_install_command():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "from dsmtheory import testing\n"
        "import numpy as np\n"
        "testing.assert_weighting(lambda s: np.minimum(s, 5) / (s + 1), 'min_snr',\n"
        "                         parameterization='v', gamma=5.0)\n"
        "try:\n"
        "    testing.strategies\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR:', e)\n"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "IMPORT-ERROR: dsmtheory.testing.strategies needs hypothesis" in out.stdout
    assert 'pip install "dsmtheory[testing]"' in out.stdout
