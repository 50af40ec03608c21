"""Tests of `dsmtheory optimal-c` (one quick run on a small user mixture; bad input)."""

import csv
import json

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli import main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("optc")
    mix = tmp / "gauss.json"
    mix.write_text(dsm.to_json(dsm.single_gaussian([0.0], 0.5)))
    out = tmp / "out"
    rc = main(
        [
            "optimal-c",
            "--out",
            str(out),
            "--mixture",
            str(mix),
            "--no-defaults",
            "--quick",
            "--seed",
            "3",
        ]
    )
    return rc, out


@pytest.mark.slow
def test_quick_run_writes_everything(quick_run, capsys):
    rc, out = quick_run
    assert rc == 0
    for f in (
        "c_star.csv",
        "residual_variance.csv",
        "sandwich.csv",
        "importance_sampling.csv",
        "criteria.json",
        "optimal-c-star.png",
        "optimal-heteroskedasticity.png",
        "optimal-first-order.png",
        "optimal-residual-variance.png",
        "optimal-densities.png",
    ):
        assert (out / f).stat().st_size > 0, f
    meta = json.loads((out / "criteria.json").read_text())
    assert meta["seed"] == 3 and meta["schedule"]["name"] == "ve"
    assert set(meta["mixtures"]) == {"user_gauss"}
    assert {"jax", "numpy", "dsmtheory"} <= set(meta["versions"])


@pytest.mark.slow  # the module's quick optimal-c run (~30 s of CPU)
def test_c_star_csv_is_edm_for_gaussian(quick_run):
    # N(0, 0.5²): c* = 1 + σ²/0.25 (derived by hand), the EDM column with σ_d = 0.5
    _, out = quick_run
    with open(out / "c_star.csv") as fh:
        rows = list(csv.DictReader(fh))
    sig = np.array([float(r["sigma"]) for r in rows])
    c = np.array([float(r["c_star"]) for r in rows])
    np.testing.assert_allclose(c, 1 + sig**2 / 0.25, rtol=1e-10)
    np.testing.assert_allclose(c, [float(r["c_edm"]) for r in rows], rtol=1e-10)


@pytest.mark.slow  # the module's quick optimal-c run (~30 s of CPU)
def test_criteria_consistent(quick_run):
    _, out = quick_run
    crit = json.loads((out / "criteria.json").read_text())["criteria"]
    sw = crit["sandwich (d)"]["user_gauss"]
    assert sw["best"] in sw["trace_per_sample"]
    for ratios in crit["importance_sampling (e)"].values():
        assert abs(ratios["optimal"] - 1.0) < 1e-9
        assert all(v >= 1.0 - 1e-9 for v in ratios.values())


@pytest.mark.parametrize(
    ("argv", "msg"),
    [
        (["--schedule", "nope"], "schedule"),
        (["--mixture", "/nonexistent/m.json"], "--mixture"),
        (["--no-defaults"], "--no-defaults"),
    ],
)
def test_bad_input_exit_2(tmp_path, capsys, argv, msg):
    rc = main(["optimal-c", "--out", str(tmp_path / "o"), *argv])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err
    assert not (tmp_path / "o").exists()


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["optimal-c", "--out", str(f)]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.slow  # the module's quick optimal-c run (~30 s of CPU)
def test_reported_c_star_values_are_exact_at_their_sigma(quick_run):
    # criteria.json reports c* at named sigma; for N(0, 0.5²) it must be 1 + σ²/0.25 there
    # exactly (not interpolated from the plot grid, which would be off by up to ~1e-3).
    _, out = quick_run
    meta = json.loads((out / "criteria.json").read_text())
    at = meta["criteria"]["homoskedastic (c)"]["user_gauss"]["c_star_at_sigma"]
    assert set(at) == {"0.05", "0.1", "0.25", "1", "4", "10"}
    for s, c in at.items():
        assert c == pytest.approx(1.0 + float(s) ** 2 / 0.25, rel=1e-9), s
