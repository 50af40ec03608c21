"""Tests of ``dsmtheory identify`` (dsmtheory/cli/identify.py)."""

import numpy as np
import pytest

from dsmtheory.cli import identify as cmd
from dsmtheory.cli import main
from dsmtheory.testing import ddpm_alphas_cumprod

from . import bug_zoo as zoo

SNR = np.exp(np.linspace(-9.0, 9.0, 60))


def _csv(path, x, w, header="snr,weight", fmt="%.17g"):
    np.savetxt(path, np.c_[x, w], delimiter=",", header=header, comments="", fmt=fmt)
    return str(path)


def test_match_exits_0(tmp_path, capsys):
    f = _csv(tmp_path / "w.csv", SNR, zoo.min_snr_v_eps_formula(SNR))
    assert main(["identify", "--csv", f, "--parameterization", "v", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "identify: 60 points (input 'snr'" in out and "weights on the 'v' MSE" in out
    assert "match: min_snr(gamma=5) written for 'eps'" in out
    assert out.count("\n") >= 6 and "rank  weighting" in out


def test_no_match_exits_1(tmp_path, capsys):
    f = _csv(tmp_path / "w.csv", SNR, zoo.min_snr_eps_max(SNR))
    assert main(["identify", "--csv", f, "--parameterization", "eps"]) == 1
    assert "no match within 0.0001; nearest:" in capsys.readouterr().out


def test_timesteps_and_printed_digits(tmp_path, capsys):
    a = ddpm_alphas_cumprod("scaled_linear", 1000, 0.00085, 0.012)
    t = np.arange(0, 1000, 10)
    snr = a[t] / (1 - a[t])
    f = _csv(tmp_path / "t.csv", t, zoo.min_snr_v(snr), header="t,w", fmt="%.6g")
    argv = ["identify", "--csv", f, "--parameterization", "v_prediction", "--input",
            "timestep", "--beta-schedule", "scaled_linear", "--beta-start", "0.00085",
            "--beta-end", "0.012"]  # fmt: skip
    assert main(argv) == 0  # 6 printed digits fit within the tolerance 1e-4
    out = capsys.readouterr().out
    assert "match: min_snr(gamma=5) written for 'v'" in out and "'v' MSE" in out
    ac = tmp_path / "ac.txt"
    np.savetxt(ac, a)
    argv = ["identify", "--csv", f, "--parameterization", "v", "--input", "timestep",
            "--alphas-cumprod", str(ac)]  # fmt: skip
    assert main(argv) == 0


def test_compute_is_pure():
    r = cmd.compute(SNR, zoo.min_snr_x0_eps_formula(SNR), parameterization="sample")
    assert r.fits and r.parameterization == "x0" and r.num_points == 60
    assert r.matches[0].parameterization == "eps" and r.tolerance == 1e-4
    assert r.lam_range == pytest.approx((-9.0, 9.0))


@pytest.mark.parametrize(
    "content, extra, msg",
    [
        (None, [], "is not a file"),
        ("snr,weight\n", [], "at least 2 data rows"),
        ("snr,weight\n1,2,3\n4,5,6\n", [], "expected 2 columns"),
        ("snr,weight\n1,a\n2,3\n", [], "not two numbers"),
        ("snr,weight\n1,0\n2,3\n", [], "finite and > 0"),
        ("snr,weight\n1,nan\n2,3\n", [], "values must be finite"),
        ("t,w\n1,1\n2,3\n", ["--input", "timestep"], "needs --beta-schedule"),
        ("t,w\n1.5,1\n2,3\n", ["--input", "timestep", "--beta-schedule", "linear"], "integers"),
        ("snr,weight\n1,1\n2,3\n", ["--beta-schedule", "linear"], "need --input timestep"),
        ("snr,weight\n1,1\n2,3\n", ["--top", "0"], "--top"),
    ],
)
def test_bad_files_and_arguments_exit_2(tmp_path, capsys, content, extra, msg):
    f = tmp_path / "bad.csv"
    if content is not None:
        f.write_text(content)
    assert main(["identify", "--csv", str(f), "--parameterization", "v", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsmtheory identify: error:") and msg in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_parameterization_exits_2(capsys):
    assert main(["identify", "--csv", "x.csv", "--parameterization", "noise"]) == 2
