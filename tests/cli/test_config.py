"""Validation of reproduce configs (TOML and JSON)."""

import json

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli.config import SECTION_NAMES, load_config, parse_config


def test_defaults():
    cfg = parse_config({})
    assert cfg.mixture is None and cfg.process == "ve" and cfg.sections == SECTION_NAMES


def test_toml_and_json_give_the_same_config(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        'mixture = {name = "grid_2d", n = 2}\nprocess = "vp"\nseed = 3\n'
        'sections = ["compare", "prove"]\n[training]\nsteps = 10\nseeds = 2\n'
        "[heteroskedasticity]\nsigma_min = 0.01\nsigma_max = 0.5\nnum_sigmas = 5\n"
    )
    js = tmp_path / "c.json"
    js.write_text(
        json.dumps(
            {
                "mixture": {"name": "grid_2d", "n": 2},
                "process": "vp",
                "seed": 3,
                "sections": ["compare", "prove"],
                "training": {"steps": 10, "seeds": 2},
                "heteroskedasticity": {"sigma_min": 0.01, "sigma_max": 0.5, "num_sigmas": 5},
            }
        )
    )
    a, b = load_config(toml), load_config(js)
    for cfg in (a, b):
        assert cfg.sections == ("prove", "compare")  # run order, not file order
        assert (cfg.process, cfg.seed, cfg.steps, cfg.seeds) == ("vp", 3, 10, 2)
        assert (cfg.sigma_min, cfg.sigma_max, cfg.num_sigmas) == (0.01, 0.5, 5)
        assert cfg.mixture.num_components == 4
    np.testing.assert_array_equal(a.mixture.means, b.mixture.means)


def test_mixture_from_file_relative_to_the_config(tmp_path):
    gm = dsm.bimodal_1d()
    (tmp_path / "m.json").write_text(dsm.to_json(gm))
    (tmp_path / "c.toml").write_text('mixture = {file = "m.json"}\n')
    cfg = load_config(tmp_path / "c.toml")
    np.testing.assert_allclose(cfg.mixture.means, gm.means)


def test_inline_mixture():
    cfg = parse_config(
        {"mixture": {"weights": [0.5, 0.5], "means": [[0.0], [1.0]], "covs": [1.0, 2.0]}}
    )
    assert cfg.mixture.dim == 1 and cfg.mixture_label == "inline"


@pytest.mark.parametrize(
    "data, words",
    [
        ({"bogus": 1}, "unknown key(s) bogus"),
        ({"mixture": "moon"}, "mixture name must be one of"),
        ({"mixture": {"name": "ring", "radiuss": 2}}, "bad parameters"),
        ({"mixture": 3}, "mixture must be"),
        ({"mixture": {"file": "x.json", "name": "ring"}}, "cannot be combined"),
        (
            {"mixture": {"weights": [0.5, 0.6], "means": [[0.0], [1.0]], "covs": [1.0, 1.0]}},
            "weights",
        ),
        ({"process": "ode"}, "process must be"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"sections": []}, "non-empty list"),
        ({"sections": ["proof"]}, "sections: unknown 'proof'"),
        ({"training": {"steps": 0}}, "training.steps must be >= 1"),
        ({"training": {"epochs": 3}}, "unknown key(s) training.epochs"),
        ({"training": {"weightings": ["sigma2"]}}, "training.weightings[0] must be one of"),
        ({"training": {"weightings": []}}, "training.weightings must be a non-empty list"),
        ({"training": {"capacities": [25, 0]}}, "training.capacities[1] must be >= 1"),
        ({"training": {"capacities": 25}}, "training.capacities must be a non-empty list"),
        ({"training": {"batch_size": 2.5}}, "training.batch_size must be an integer"),
        ({"training": 5}, "training must be a table"),
        ({"heteroskedasticity": {"sigma_min": -1.0}}, "sigma_min must be positive"),
        ({"heteroskedasticity": {"sigma_min": 1.0, "sigma_max": 0.5}}, "must be below"),
        ({"heteroskedasticity": {"num_sigmas": 2}}, "num_sigmas must be >= 3"),
    ],
)
def test_bad_configs_name_the_problem(data, words):
    with pytest.raises(ValueError, match=None) as info:
        parse_config(data)
    assert words in str(info.value)


def test_bad_file_kinds(tmp_path):
    with pytest.raises(ValueError, match="cannot be read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "c.yaml").write_text("a: 1")
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        load_config(tmp_path / "c.yaml")


def test_every_example_config_is_valid():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "examples" / "configs"
    files = sorted(root.glob("*.toml")) + sorted(root.glob("*.json"))
    assert len(files) >= 3
    for f in files:
        cfg = load_config(f)
        assert cfg.mixture is not None, f


def test_training_table_reaches_the_compare_command(tmp_path):
    # weightings, capacities and batch size from the config become compare's options,
    # and a config mixture is passed to compare as to every other section
    from dsmtheory.cli.reproduce import _make_section

    cfg = parse_config(
        {
            "mixture": "bimodal_1d",
            "training": {
                "steps": 3,
                "seeds": 1,
                "batch_size": 8,
                "capacities": [25],
                "weightings": ["simple", "c_star"],
            },
        }
    )
    assert cfg.weightings == ("simple", "c_star") and cfg.capacities == (25,)
    sec = _make_section("compare", cfg, True, tmp_path / "mixture.json")
    cmd = sec.command.split()
    for flag, vals in (
        ("--steps", ["3"]),
        ("--seeds", ["1"]),
        ("--batch-size", ["8"]),
        ("--capacities", ["25"]),
        ("--weightings", ["simple", "c_star"]),
        ("--mixture", [str(tmp_path / "mixture.json")]),
    ):
        i = cmd.index(flag)
        assert cmd[i + 1 : i + 1 + len(vals)] == vals, flag
