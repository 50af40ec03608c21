"""Tests for ``dsmtheory targets``: the files it writes and its bad-input behaviour."""

import csv
import json
from typing import NamedTuple

import jax
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli import main
from dsmtheory.cli import targets as cmd


def _bimodal_file(tmp_path):
    p = tmp_path / "bimodal.json"
    p.write_text(dsm.to_json(dsm.bimodal_1d(separation=3.0, std=0.4)))
    return p


@pytest.mark.slow
def test_quick_run_writes_consistent_files(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["targets", "--out", str(out), "--quick", "--mixture", str(_bimodal_file(tmp_path))])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "targets-heteroskedasticity.png",
        "targets-iwsm.png",
        "targets-tsm.png",
        "targets.csv",
        "targets.json",
    ]
    with open(out / "targets.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == cmd.COLUMNS
    tab = np.array(rows[1:], dtype=float)
    col = {c: tab[:, j] for j, c in enumerate(cmd.COLUMNS)}
    # weight_ess is inf for the deterministic rule of D <= 2 (no draws), all else finite
    finite = [j for j, c in enumerate(cmd.COLUMNS) if c != "weight_ess"]
    assert tab.shape == (9, len(cmd.COLUMNS)) and np.all(np.isfinite(tab[:, finite]))
    assert np.all(col["weight_ess"] == np.inf) and np.all(col["iwsm_degenerate"] == 0)
    assert np.all(col["var_iwsm_se"] == 0) and np.all(col["ess_fraction_bound"] <= 1 + 1e-9)
    # VP: α² + σ² = 1 and λ = log(α²/σ²)
    np.testing.assert_allclose(col["alpha"] ** 2 + col["sigma"] ** 2, 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.log(col["alpha"] ** 2 / col["sigma"] ** 2), col["lam"])
    # the optimal mix never has more variance than either target (up to its MC error)
    tol = 5 * col["var_mix_se"]
    assert np.all(col["var_mix"] <= np.minimum(col["R1"], col["var_tsm"]) + tol)
    meta = json.loads((out / "targets.json").read_text())
    assert meta["settings"]["quick"] is True and meta["settings"]["process"] == "vp"
    assert {"jax", "numpy", "dsmtheory"} <= set(meta["versions"])
    j0 = meta["summary"]["J0"]
    assert meta["summary"]["crossing_lambda_closed_form"] == pytest.approx(np.log(j0))
    assert "crossing" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--mixture", "does-not-exist.json"], "--mixture"),
        (["--process", "sub-vp"], "--process"),
        (["--proposal", "RING"], "--proposal"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, extra, needle):
    if extra[0] == "--proposal":  # a 2-D proposal for a 1-D mixture: wrong dimension
        ring = tmp_path / "ring.json"
        ring.write_text(dsm.to_json(dsm.ring()))
        extra = ["--mixture", str(_bimodal_file(tmp_path)), "--proposal", str(ring)]
    rc = main(["targets", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "o").exists()


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["targets", "--out", str(f), "--quick"]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.slow
def test_mix_gain_at_crossing_matches_an_independent_computation(tmp_path):
    # At lam_x = log J0 the DSM and TSM variances are equal, kappa* = 1/2 and
    # V(1/2) = D/(2 sigma^2) - tr I_t = R1 - D/(2 sigma^2) (derived by hand), so the gain
    # is R1 / (R1 - D/(2 sigma^2)); here R1 = D/sigma^2 - tr I_t with tr I_t from the
    # an independent integrand of dsmtheory.variance (the Hessian form of the Fisher
    # information, -E[H]).
    out = tmp_path / "out"
    gm = dsm.bimodal_1d(separation=3.0, std=0.4)
    mix = _bimodal_file(tmp_path)
    assert main(["targets", "--out", str(out), "--quick", "--mixture", str(mix)]) == 0
    summary = json.loads((out / "targets.json").read_text())["summary"]
    lam_x = summary["crossing_lambda_closed_form"]
    a, s = (float(v) for v in dsm.schedules.alpha_sigma(lam_x, "vp"))
    fisher = dsm.fisher_information(gm.noised(a, s), "adaptive", form="hessian")
    r1 = 1 / s**2 - float(np.trace(np.asarray(fisher.matrix)))
    want = r1 / (r1 - 1 / (2 * s**2))
    # both sides are adaptive quadratures (1e-10 relative); the gain amplifies R1's error
    # by ~13 (and the Fisher form D/σ² - tr I_t loses a few digits more)
    assert summary["mix_gain_at_crossing"] == pytest.approx(want, rel=1e-7)


class _Exact(NamedTuple):
    value: float
    stderr: float = 0.0


@pytest.mark.parametrize("process", ["vp", "ve"])
def test_single_isotropic_gaussian_gain_is_unbounded_not_a_zero_division(process):
    # N(0, s^2 I): V(kappa*) = 0 exactly at any noise level (derived in mix_gain_at), so the
    # gain R1 / V is unbounded; it used to raise ZeroDivisionError (issue 13)
    s = 0.5
    gm = dsm.single_gaussian([0.0, 0.0], s)
    i0 = _Exact(2 / s**2)
    lam_x = float(np.log(i0.value / 2))
    gain, note = cmd.mix_gain_at(gm, lam_x, process, i0, jax.random.PRNGKey(0), 64)
    assert gain is None and "zero within the accuracy" in note


def test_single_anisotropic_gaussian_gain_matches_the_closed_form():
    # K = 1, Sigma = diag(0.09, 0.01): V(kappa*) > 0; every term in closed form (by hand):
    # tr I0 = sum 1/l_i, R1 = D/sigma^2 - sum 1/(alpha^2 l_i + sigma^2)
    lams = np.array([0.09, 0.01])
    gm = dsm.GaussianMixture([1.0], [[0.0, 0.0]], [lams])
    i0 = _Exact(float(np.sum(1 / lams)))
    lam_x = float(np.log(i0.value / 2))
    a, sg = (float(v) for v in dsm.schedules.alpha_sigma(lam_x, "vp"))
    r1 = 2 / sg**2 - np.sum(1 / (a**2 * lams + sg**2))
    kap = 0.5  # kappa* at the crossing
    v = kap**2 * i0.value / a**2 + (1 - kap) ** 2 * 2 / sg**2 - (2 / sg**2 - r1)
    gain, note = cmd.mix_gain_at(gm, lam_x, "vp", i0, jax.random.PRNGKey(0), 64)
    assert note == "" and v > 0
    # R1 by the adaptive quadrature (~1e-10 relative), amplified by R1 / V (about 3 here)
    assert gain == pytest.approx(r1 / v, rel=1e-8)


@pytest.mark.slow
def test_targets_command_on_one_gaussian_writes_a_null_gain(tmp_path):
    mix = tmp_path / "g.json"
    mix.write_text(dsm.to_json(dsm.single_gaussian([0.0], 0.7)))
    out = tmp_path / "o"
    assert main(["targets", "--out", str(out), "--quick", "--mixture", str(mix)]) == 0
    summary = json.loads((out / "targets.json").read_text())["summary"]
    assert summary["mix_gain_at_crossing"] is None and "zero" in summary["mix_gain_note"]
