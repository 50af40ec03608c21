"""``dsmtheory fit`` and mixtures by name on the command line.

Fitting needs scikit-learn, the optional extra ``dsmtheory[data]``: those tests are skipped
where it is missing (``pytest.importorskip``); the ``test`` extra that CI installs includes
``data``, so in CI they run. Bad data files are refused before scikit-learn is imported, so
those cases run everywhere.
"""

import json
import sys

import numpy as np
import pytest
from synthetic_data import data64 as _data64
from synthetic_data import sklearn_mixture as _sklearn

import dsmtheory as dsm
from dsmtheory import datasets, mixture_io
from dsmtheory.cli import main
from dsmtheory.cli.config import parse_config


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_fit_then_heteroskedasticity_on_a_64d_user_mixture(tmp_path, capsys):
    _sklearn()
    x = _data64()
    np.save(tmp_path / "data.npy", x)
    out = tmp_path / "mix.npz"
    argv = ["fit", "--data", str(tmp_path / "data.npy"), "--components", "3", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "K = 3" in printed and "D = 64" in printed and "eigenvalue floor" in printed
    gm = mixture_io.load(out)
    assert (gm.num_components, gm.dim) == (3, 64)
    info = json.loads((tmp_path / "mix.fit.json").read_text())
    assert info["settings"]["num_samples"] == 300 and info["fit"]["converged"]
    assert info["mixture"]["sha256"] == mixture_io.content_hash(gm)
    # each piece spans 8 of 64 directions: 56 eigenvalues per component on the floor
    assert info["eigenvalue_floor"]["on_floor"] == [56, 56, 56]
    # the same data as .csv (with a header) and .npz gives the same mixture, bit for bit
    np.savetxt(tmp_path / "data.csv", x, delimiter=",", header=",".join(["a"] * 64), fmt="%.17g")
    np.savez(tmp_path / "data.npz", data=x, labels=np.zeros(300))
    for name in ("data.csv", "data.npz"):
        o = tmp_path / f"{name}.json"
        assert (
            main(["fit", "--data", str(tmp_path / name), "--components", "3", "--out", str(o)]) == 0
        )
        assert mixture_io.content_hash(mixture_io.load(o)) == mixture_io.content_hash(gm)
    capsys.readouterr()
    het = tmp_path / "het"
    argv = ["heteroskedasticity", "--mixture", str(out), "--out", str(het), "--method",
            "monte_carlo", "--num-samples", "256", "--num-sigmas", "3", "--sigma-min", "0.01",
            "--sigma-max", "1"]  # fmt: skip
    assert main(argv) == 0
    meta = json.loads((het / "heteroskedasticity.json").read_text())
    # the result references the mixture (file, hash, K, D) and does not embed it
    assert meta["mixture"] == {
        "source": str(out),
        "num_components": 3,
        "dim": 64,
        "sha256": mixture_io.content_hash(gm),
    }
    rows = np.loadtxt(het / "heteroskedasticity.csv", delimiter=",", skiprows=1)
    # stderr >= 0: the Monte Carlo rule is exact within components, and at sigma = 0.01 the
    # three far-apart pieces leave no between-component spread (a zero error is honest)
    assert rows.shape == (3, 6) and np.all(np.isfinite(rows)) and np.all(rows[:, 4] >= 0)
    assert rows[-1, 4] > 0  # at sigma = 1 the components overlap: a Monte Carlo error


def test_mixture_by_name_on_the_command_line(tmp_path, cache, capsys):
    _sklearn()
    het = tmp_path / "het"
    argv = ["heteroskedasticity", "--mixture", "digits:2:seed=1", "--out", str(het), "--method",
            "monte_carlo", "--num-samples", "256", "--num-sigmas", "2", "--sigma-min", "0.1",
            "--sigma-max", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "fitting digits (K = 2, seed 1" in capsys.readouterr().err  # the first time only
    meta = json.loads((het / "heteroskedasticity.json").read_text())
    expected = datasets.digits(num_components=2, seed=1)
    assert meta["mixture"]["source"] == "digits:2:seed=1" and meta["mixture"]["dim"] == 64
    assert meta["mixture"]["sha256"] == mixture_io.content_hash(expected)
    assert main(argv) == 0
    assert "fitting" not in capsys.readouterr().err  # read from the cache


def test_config_accepts_data_set_names(cache):
    _sklearn()
    cfg = parse_config({"mixture": "digits:1"})
    assert cfg.mixture.dim == 64 and cfg.mixture_label == "digits:1"
    cfg = parse_config({"mixture": {"name": "digits", "num_components": 1, "seed": 2}})
    assert cfg.mixture_label == "digits:num_components=1:seed=2"
    assert mixture_io.content_hash(cfg.mixture) == mixture_io.content_hash(
        datasets.digits(num_components=1, seed=2)
    )


@pytest.mark.parametrize(
    "spec,needle",
    [
        ("digits:ten", "num_components must be a non-negative integer"),
        ("digits:2:colour=1", "unknown key 'colour'"),
        ("patches:2:size=9", "dimension 81 is above the supported 64"),
        ("digits:5000", "5000 components is above the supported"),
    ],
)
def test_bad_data_set_names_exit_2(tmp_path, capsys, spec, needle):
    argv = ["heteroskedasticity", "--mixture", spec, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    _one_line_error(capsys, needle)
    with pytest.raises(ValueError):
        parse_config({"mixture": spec})


def test_missing_extra_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.setitem(sys.modules, "sklearn.mixture", None)
    argv = ["heteroskedasticity", "--mixture", "digits:2", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    _one_line_error(capsys, 'pip install "dsmtheory[data]"')
    np.save(tmp_path / "d.npy", _data64(30))
    argv = ["fit", "--data", str(tmp_path / "d.npy"), "--components", "2", "--out",
            str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 2
    _one_line_error(capsys, 'pip install "dsmtheory[data]"')
    assert not (tmp_path / "m.json").exists()


def _bad_files(d):
    np.save(d / "obj.npy", np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)
    np.save(d / "cube.npy", np.zeros((3, 2, 2)))
    np.save(d / "one.npy", np.zeros((1, 3)))
    np.save(d / "d65.npy", np.zeros((10, 65)))
    np.save(d / "nan.npy", np.where(np.arange(20).reshape(10, 2) == 7, np.nan, 1.0))
    np.save(d / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(d / "bools.npy", np.ones((4, 2), dtype=bool))
    np.savez(d / "two.npz", a=np.zeros((5, 2)), b=np.zeros((5, 2)))
    (d / "text.csv").write_text("x,y\n1,2\n3,oops\n")
    (d / "ragged.csv").write_text("1,2\n3\n")
    (d / "header_only.csv").write_text("x,y\n")
    (d / "latin1.csv").write_bytes("1,\xe9\n".encode("latin-1"))
    (d / "garbage.npy").write_bytes(b"not numpy")
    (d / "data.txt").write_text("1,2\n")
    np.save(d / "ok.npy", np.random.default_rng(0).normal(size=(10, 2)))
    (d / "folder.npy").mkdir()


@pytest.mark.parametrize(
    "data,extra,needle",
    [
        ("missing.npy", [], "cannot be read (No such file or directory)"),
        ("folder.npy", [], "is a folder"),
        ("data.txt", [], "expected a .npy, .npz or .csv file"),
        ("obj.npy", [], "not a readable .npy file"),
        ("garbage.npy", [], "not a readable .npy file"),
        ("cube.npy", [], "must be an (N, D) array, got shape (3, 2, 2)"),
        ("one.npy", [], "need at least 2 samples"),
        ("d65.npy", [], "dimension 65 is above the supported 64"),
        ("nan.npy", [], "row 3 has NaN or inf"),
        ("strings.npy", [], "samples must be real numbers, got strings"),
        ("bools.npy", [], "samples must be real numbers, got booleans"),
        ("two.npz", [], "must hold one array or one named 'data'; its arrays: a, b"),
        ("text.csv", [], "data row 3: 'oops' is not a number"),
        ("ragged.csv", [], "data row 2 has 1 fields, the first has 2"),
        ("header_only.csv", [], "a header but no data rows"),
        ("latin1.csv", [], "not UTF-8 text"),
        ("ok.npy", ["--components", "11"], "--components 11 is more than the 10 samples"),
        ("ok.npy", ["--components", "0"], "--components must be >= 1"),
        ("ok.npy", ["--rank-tol", "-1"], "--rank-tol must be >= 0"),
        ("ok.npy", ["--reg-covar", "0"], "--reg-covar must be positive"),
        ("ok.npy", ["--seed", "-3"], "--seed must be >= 0"),
        ("ok.npy", ["--out", "mixture.txt"], "--out must end in .json or .npz"),
    ],
)
def test_bad_data_files_exit_2_with_one_line(tmp_path, capsys, data, extra, needle):
    _bad_files(tmp_path)
    # a repeated option overrides the first (argparse): extra may replace --components, --out
    argv = ["fit", "--data", str(tmp_path / data), "--components", "2", "--out",
            str(tmp_path / "m.json"), *extra]  # fmt: skip
    assert main(argv) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "m.json").exists()


def test_a_fit_sklearn_cannot_make_is_a_user_error(tmp_path, capsys):
    _sklearn()
    # 3 identical points, 2 components, a floor of 1e-300: the covariance is singular
    np.save(tmp_path / "same.npy", np.ones((3, 2)))
    argv = ["fit", "--data", str(tmp_path / "same.npy"), "--components", "2", "--out",
            str(tmp_path / "m.json"), "--reg-covar", "1e-300"]  # fmt: skip
    assert main(argv) == 2
    _one_line_error(capsys, "try a larger --reg-covar or fewer --components")


def test_npz_mixture_files_everywhere_mixture_is_read(tmp_path, capsys):
    path = dsm.save_mixture(dsm.bimodal_1d(), tmp_path / "b.npz")
    argv = ["heteroskedasticity", "--mixture", str(path), "--out", str(tmp_path / "h"),
            "--num-sigmas", "2", "--sigma-min", "0.1", "--sigma-max", "1"]  # fmt: skip
    assert main(argv) == 0
    meta = json.loads((tmp_path / "h" / "heteroskedasticity.json").read_text())
    assert meta["mixture"]["inline"]["weights"] == [0.5, 0.5]  # small: also inline
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    argv[2] = str(bad)
    assert main(argv) == 2
    _one_line_error(capsys, "bad.npz")
    cfg = parse_config({"mixture": {"file": str(path)}})
    assert cfg.mixture.num_components == 2
