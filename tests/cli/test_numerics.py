"""Numerical corners through the command line: what the CSV says is the closed form.

The hard-panel cases of issue 13 (modes 1e3 apart, a variance of 1e-6 in one direction),
which the old single-box quadrature got wrong (half of R; 1e-108 instead of 1.5e6), through
the command line with the expectation engine's default rule.
"""

import csv

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli import main


def _r_column(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["sigma"]) for r in rows]), np.array([float(r["R"]) for r in rows])


def _run(tmp_path, gm, lo, hi, method="auto", process="ve"):
    mix = tmp_path / "m.json"
    mix.write_text(dsm.to_json(gm))
    out = tmp_path / "o"
    argv = ["heteroskedasticity", "--out", str(out), "--mixture", str(mix), "--method", method,
            "--process", process, "--sigma-min", str(lo), "--sigma-max", str(hi),
            "--num-sigmas", "2"]  # fmt: skip
    assert main(argv) == 0
    return _r_column(out / "heteroskedasticity.csv")


@pytest.mark.parametrize("process, hi", [("vp", 0.9)])
def test_one_gaussian_r_is_the_closed_form(tmp_path, process, hi):
    # K = 1, N(0, s^2): R = D/sigma^2 - tr I_t with
    # tr I_t = D / (alpha^2 s^2 + sigma^2) (derived by hand)
    s = 0.5
    sig, r = _run(tmp_path, dsm.single_gaussian([0.0], s), 1e-3, hi, "adaptive", process)
    alpha = np.ones_like(sig) if process == "ve" else np.sqrt(1 - sig**2)
    want = 1 / sig**2 - 1 / (alpha**2 * s**2 + sig**2)
    np.testing.assert_allclose(r, want, rtol=1e-8)


def test_modes_far_apart_in_the_csv(tmp_path):
    # two modes at +-1e3, variance 0.01: far apart, tr I_t = 1/(0.01 + sigma^2) exactly
    # up to exp(-1e8)
    gm = dsm.GaussianMixture([0.5, 0.5], [[-1e3], [1e3]], [0.01, 0.01])
    sig, r = _run(tmp_path, gm, 1e-4, 1e-2)
    np.testing.assert_allclose(r, 1 / sig**2 - 1 / (0.01 + sig**2), rtol=1e-8)


def test_a_thin_direction_in_the_csv(tmp_path):
    # N(0, diag(1, 1e-6)): tr I_t = 1/(1 + sigma^2) + 1/(1e-6 + sigma^2) exactly
    gm = dsm.GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1e-6]])
    sig, r = _run(tmp_path, gm, 1e-3, 1e-1)
    want = 2 / sig**2 - 1 / (1 + sig**2) - 1 / (1e-6 + sig**2)
    np.testing.assert_allclose(r, want, rtol=1e-8)
