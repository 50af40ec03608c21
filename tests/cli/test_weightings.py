"""Tests of ``dsmtheory weightings --out DIR``."""

import csv
import math

import numpy as np
import pytest
from scipy import stats
from test_weightings import BUILTIN  # the built-in registry names, listed once

from dsmtheory.cli import main
from dsmtheory.cli import weightings as cmd

FILES = [
    "total_weights.png",
    "one_over_k_plus_snr.png",
    "total_weights.csv",
    "densities.csv",
    "family.csv",
]


def _read(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("weightings")
    assert main(["weightings", "--out", str(out), "--points", "61"]) == 0
    return out


def test_writes_every_file(outdir):
    for name in FILES:
        path = outdir / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert (outdir / "total_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_density_columns_and_values(outdir):
    header, data = _read(outdir / "densities.csv")
    assert header == ["lam", *cmd.DENSITY_COLUMNS]
    assert data.shape == (61, 7)
    lam = data[:, 0]
    np.testing.assert_allclose(lam, np.linspace(-15, 15, 61))
    # EDM training density is N(2.4, 2.4^2) (FORMULAS.md §2), untruncated
    np.testing.assert_allclose(data[:, 4], stats.norm.pdf(lam, 2.4, 2.4), rtol=1e-12)
    # cosine: sech(lam/2)/(2 pi) up to the mass lost by truncation at |lam| = 20 (< 1e-4)
    np.testing.assert_allclose(data[:, 1], 1 / np.cosh(lam / 2) / (2 * np.pi), rtol=1e-4)


def test_total_weight_columns(outdir):
    header, data = _read(outdir / "total_weights.csv")
    assert header[0] == "lam" and set(BUILTIN) <= set(header[1:])
    assert np.all(np.isfinite(data)) and np.all(data[:, 1:] >= 0)
    np.testing.assert_allclose(data[:, 1:].max(axis=0), 1.0, rtol=1e-12)  # scaled to max 1
    lam = data[:, 0]
    col = {h: data[:, i] for i, h in enumerate(header)}
    np.testing.assert_allclose(col["elbo"], 1.0, rtol=1e-10)
    sig = 1 / (1 + np.exp(lam - 2))
    np.testing.assert_allclose(col["sigmoid"], sig / sig.max(), rtol=1e-10)
    v = np.exp(-lam / 2)
    np.testing.assert_allclose(col["v"], v / v.max(), rtol=1e-10)


def test_family_columns_are_k_over_k_plus_snr(outdir):
    header, data = _read(outdir / "family.csv")
    assert header == ["lam", *cmd.FAMILY_COLUMNS]
    lam = data[:, 0]
    ks = [1.0, 0.5**-2, 1 + 0.5**-2, math.exp(2.0)]  # P2 k, sigma_d^-2, 1 + tau^-2, e^{k_KG}
    for j, k in enumerate(ks, start=1):
        np.testing.assert_allclose(data[:, j], k / (k + np.exp(lam)), rtol=1e-12)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--lam-min", "3", "--lam-max", "1"], "lam-min"),
        (["--points", "3"], "points"),
        (["--tau", "0"], "tau"),
        (["--sigma-data", "-1"], "sigma-data"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, argv, match):
    assert main(["weightings", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
