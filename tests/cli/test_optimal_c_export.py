"""Tests of `dsmtheory optimal-c --export` and of its loaders: the table against the closed
form of one Gaussian (c* = 1 + σ̃²/s²) and hand-written κ factors, JSON and CSV agree,
load_export interpolates log-linearly and clamps, and the docs' PyTorch class, run as
written with a NumPy stand-in for torch, gives the loader's numbers."""

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli import main

ROOT = Path(__file__).resolve().parents[2]
S = 0.5  # the data std of the test mixture


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    mix = tmp / "gauss.json"
    mix.write_text(dsm.to_json(dsm.single_gaussian([0.3], S)))
    paths = {}
    for ext in ("json", "csv"):
        p = tmp / f"c_star.{ext}"
        argv = ["optimal-c", "--mixture", str(mix), "--no-defaults", "--quick", "--export"]
        assert main([*argv, str(p)]) == 0
        paths[ext] = p
    return paths


def test_table_is_the_closed_form_in_every_space(exported):
    doc = json.loads(exported["json"].read_text())
    cols = {k: np.asarray(v) for k, v in doc["columns"].items()}
    lam = cols["lam"]
    assert lam[0] == -12.0 and lam[-1] == 12.0 and np.all(np.diff(lam) > 0)
    st2 = np.exp(-lam)
    c = 1.0 + st2 / S**2  # one Gaussian of std s: c* = 1 + σ̃²/s² (P14)
    np.testing.assert_allclose(cols["c_star"], c, rtol=1e-9)
    np.testing.assert_allclose(cols["sigma_tilde"], np.sqrt(st2), rtol=1e-14)
    np.testing.assert_allclose(cols["d_eff"], 1.0 / c, rtol=1e-9)
    # hand-written κ_a (FORMULAS.md §1): ω_a = c*/κ_a; σ_d of F = the data std s
    sig2_vp = 1.0 / (1.0 + np.exp(lam))
    kappa = {
        "ve_eps": 1.0, "vp_eps": 1.0,
        "ve_x0": st2, "vp_x0": st2,
        "ve_score": 1.0 / st2, "vp_score": 1.0 / sig2_vp,
        "ve_v": (1.0 + st2) ** 2, "vp_v": 1.0 + st2,
        "ve_F": 1.0 + st2 / S**2, "vp_F": 1.0 + st2 / S**2,
    }  # fmt: skip
    for name, k in kappa.items():
        np.testing.assert_allclose(cols[name] * k, c, rtol=1e-9, err_msg=name)
    meta = doc["meta"]
    assert meta["mixture"]["dim"] == 1 and meta["mixture"]["components"] == 1
    assert "dsmtheory" in meta["versions"]
    back = dsm.from_json(json.dumps(meta["mixture"]["json"]))
    np.testing.assert_allclose(np.asarray(back.means), [[0.3]])


def test_csv_and_json_agree_and_load_export_interpolates(exported):
    tj = dsm.optimal.load_export(exported["json"])
    tc = dsm.optimal.load_export(exported["csv"])
    assert set(tj.columns) == set(tc.columns) and tc.meta == {}
    for k in tj.columns:
        np.testing.assert_allclose(tc.columns[k], tj.columns[k], rtol=1e-12)
    lam = tj.lam
    mid = 0.5 * (lam[1:] + lam[:-1])
    # at the midpoints: the geometric mean of the neighbours (log-linear), exactly
    np.testing.assert_allclose(
        tj.multiplier(mid), np.sqrt(tj.columns["c_star"][1:] * tj.columns["c_star"][:-1])
    )
    # and close to the truth: log c* has |(log c*)''| <= 1/4 in λ, h = 0.5: h²/8/4 < 0.008
    np.testing.assert_allclose(tj.multiplier(mid), 1 + np.exp(-mid) / S**2, rtol=0.008)
    # clamped beyond the ends
    np.testing.assert_allclose(tj.multiplier([-40.0, 40.0]), tj.columns["c_star"][[0, -1]])
    with pytest.raises(ValueError, match="column"):
        tj.multiplier(0.0, "nope")


class _FakeTorch(types.ModuleType):
    """The torch functions the docs' class calls, in NumPy (torch is not a dependency)."""

    float64 = np.float64

    def __init__(self):
        super().__init__("torch")
        self.as_tensor = lambda x, dtype=None: np.asarray(x, dtype)
        self.log, self.exp = np.log, np.exp
        self.clamp = np.clip
        self.searchsorted = lambda seq, x: np.searchsorted(seq, x, side="left")
        self.lerp = lambda a, b, t: a + t * (b - a)


def test_the_docs_pytorch_class_matches_load_export(exported, monkeypatch):
    page = (ROOT / "docs" / "c-star-own-model.md").read_text(encoding="utf-8")
    section = page.split("## Use the exported table in PyTorch")[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    monkeypatch.setitem(sys.modules, "torch", _FakeTorch())
    ns: dict = {}
    exec(compile(code, "c-star-own-model.md", "exec"), ns)
    table = dsm.optimal.load_export(exported["json"])
    lam = np.concatenate([np.linspace(-15, 15, 301), table.lam])  # nodes and beyond the ends
    for column in ("vp_eps", "ve_x0", "ve_F"):
        w = ns["CStarWeight"](str(exported["json"]), column)
        np.testing.assert_allclose(w(lam), table.multiplier(lam, column), rtol=1e-12)


def test_export_bad_input(tmp_path, capsys):
    assert main(["optimal-c", "--export", str(tmp_path / "x.txt")]) == 2
    assert "--export" in capsys.readouterr().err
    assert main(["optimal-c", "--export", str(tmp_path / "no" / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["optimal-c"]) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(ValueError, match=".json or .csv"):
        dsm.optimal.load_export(tmp_path / "x.txt")
