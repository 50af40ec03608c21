"""The ``dsmtheory compare`` command with a micro budget writes every file."""

import json

import pytest

from dsmtheory.cli import compare, main


@pytest.mark.slow
def test_compare_micro_budget_writes_every_file(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--out", str(out), "--quick", "--steps", "4", "--seeds", "2",
            "--batch-size", "8", "--capacities", "25", "100", "--no-progress",
            "--weightings", "simple", "edm"]  # fmt: skip
    assert main(argv) == 0
    for name in compare.FIGURES + compare.TABLES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0, 1]
    assert set(res["versions"]) >= {"dsmtheory", "jax", "optax", "numpy", "python"}
    assert res["timings"]["wall_s"] > 0
    n = 2 * 2 * 2  # weightings × capacities × seeds
    assert len(res["configs"]) == n
    assert res["checkpoint_steps"] == [0, 2, 4]
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == n + 1 and summary[0].startswith("seed,weighting,capacity")
    assert f"wrote {len(compare.FIGURES)} figures" in capsys.readouterr().out
    assert res["settings"]["sigma_data"] > 0 and "fisher_relative" in res


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "expected a positive integer"),
        (["--weightings", "nope"], "unknown weighting 'nope'"),
        (["--capacities", "3"], "capacity 3 is too small"),
        (["--mixture", "no-such-file.json"], "--mixture must be a mixture file"),
    ],
)
def test_compare_bad_arguments_exit_2(tmp_path, capsys, argv, message):
    code = None
    try:
        code = main(["compare", "--out", str(tmp_path / "x"), "--quick", *argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "results.json").exists()


@pytest.mark.slow
def test_compare_on_a_user_mixture(tmp_path):
    import dsmtheory as dsm

    mix = tmp_path / "bimodal.json"
    mix.write_text(dsm.to_json(dsm.bimodal_1d(separation=3.0, std=0.4)))
    out = tmp_path / "cmp"
    argv = ["compare", "--out", str(out), "--quick", "--steps", "4", "--seeds", "1",
            "--batch-size", "8", "--capacities", "25", "--no-progress",
            "--weightings", "simple", "--mixture", str(mix)]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["mixture"]["inline"]["means"] == [[-1.5], [1.5]]
    assert len(res["configs"]) == 1
