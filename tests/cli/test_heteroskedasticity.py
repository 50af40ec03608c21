"""Tests of ``dsmtheory heteroskedasticity`` (small grids, tmp_path)."""

import csv
import json

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli import main
from dsmtheory.variance import fit_loglog_slope

# The low-sigma log-log slope of R must be -2 within this (the brief's acceptance bound;
# the O(sigma^2 J) correction moves it by ~1e-3 on the grids below).
SLOPE_ATOL = 0.05


def _read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=float)


def test_default_mixture_small_grid_writes_files_and_slope(tmp_path, capsys):
    out = tmp_path / "het"
    rc = main(
        [
            "heteroskedasticity",
            "--out",
            str(out),
            "--sigma-min",
            "1e-3",
            "--sigma-max",
            "1",
            "--num-sigmas",
            "7",
            "--num-samples",
            "2000",
        ]
    )
    assert rc == 0
    header, data = _read_csv(out / "heteroskedasticity.csv")
    assert header == ["sigma", "alpha", "lam", "R", "stderr", "D_over_sigma2"]
    assert data.shape == (7, 6)
    sigma, alpha, lam, r, se, ref = data.T
    np.testing.assert_allclose(sigma, np.geomspace(1e-3, 1.0, 7), rtol=1e-12)
    np.testing.assert_allclose(ref, 2.0 / sigma**2, rtol=1e-12)
    np.testing.assert_allclose(lam, -2.0 * np.log(sigma), rtol=1e-12)
    # the default rule (auto) is adaptive in 2-D: exact to 1e-10, no standard error
    assert np.all(alpha == 1.0) and np.all(se == 0) and np.all(r < ref)
    assert (out / "heteroskedasticity.png").stat().st_size > 1000
    meta = json.loads((out / "heteroskedasticity.json").read_text())
    assert meta["low_sigma_slope"] == pytest.approx(-2.0, abs=SLOPE_ATOL)
    # The slope in the JSON is the fit over the lowest decade of the CSV values.
    low = sigma <= 10 * sigma[0] * (1 + 1e-12)
    assert meta["low_sigma_slope"] == pytest.approx(fit_loglog_slope(sigma[low], r[low]))
    assert set(meta["versions"]) == {"dsmtheory", "jax", "numpy"}
    assert meta["settings"]["method"] == "auto" and meta["method"] == "adaptive"
    printed = capsys.readouterr().out
    assert "slope" in printed and "0.001" in printed


def test_json_mixture_vp_quadrature(tmp_path):
    mix = tmp_path / "mix.json"
    mix.write_text(dsm.to_json(dsm.bimodal_1d()))
    out = tmp_path / "vp"
    rc = main(
        [
            "heteroskedasticity",
            "--out",
            str(out),
            "--mixture",
            str(mix),
            "--process",
            "vp",
            "--sigma-min",
            "1e-3",
            "--sigma-max",
            "0.5",
            "--num-sigmas",
            "4",
            "--method",
            "quadrature",
        ]
    )
    assert rc == 0
    _, data = _read_csv(out / "heteroskedasticity.csv")
    sigma, alpha, _, r, se, ref = data.T
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, rtol=1e-12)
    assert np.all(se == 0.0)
    meta = json.loads((out / "heteroskedasticity.json").read_text())
    assert meta["low_sigma_slope"] == pytest.approx(-2.0, abs=SLOPE_ATOL)
    # the result references the mixture; a small one is also inline (mixture_io.reference)
    assert meta["mixture"]["inline"]["weights"] == [0.5, 0.5]
    assert meta["mixture"]["sha256"].startswith("sha256:") and meta["mixture"]["dim"] == 1


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--sigma-min", "0"], "--sigma-min"),
        (["--sigma-min", "-1"], "--sigma-min"),
        (["--sigma-min", "2", "--sigma-max", "1"], "--sigma-max"),
        (["--sigma-min", "1", "--sigma-max", "1"], "--sigma-max"),
        (["--process", "vp"], "vp"),
        (["--num-sigmas", "1"], "--num-sigmas"),
        (["--num-samples", "0"], "--num-samples"),
        (["--mixture", "MISSING"], "cannot be read"),
        (["--mixture", "BAD"], "malformed"),
        (["--mixture", "NOKEYS"], "lacks"),
    ],
)
def test_bad_input_exits_2_with_one_stderr_line(tmp_path, capsys, extra, needle):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    nokeys = tmp_path / "nokeys.json"
    nokeys.write_text('{"weights": [1.0]}')
    subst = {
        "MISSING": str(tmp_path / "missing.json"),
        "BAD": str(bad),
        "NOKEYS": str(nokeys),
    }
    extra = [subst.get(a, a) for a in extra]
    out = tmp_path / "out"
    rc = main(["heteroskedasticity", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert "Traceback" not in err
    assert not (out / "heteroskedasticity.csv").exists()
