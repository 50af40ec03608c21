"""Validation of reproduce configs (TOML and JSON)."""

import json

import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory.cli import UsageError
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
        ({"mixture": {"name": "ring", "radiuss": 2}}, "unknown parameter(s) radiuss; known:"),
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
    # weightings, capacities, steps, seeds and batch size from the config become compare's
    # settings, and the config mixture is the one compare trains on (no command line between)
    from dsmtheory.cli.reproduce import plan

    cfg = parse_config(
        {
            "mixture": "bimodal_1d",
            "sections": ["compare"],
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
    (sec,) = plan(cfg, tmp_path, quick=True).sections
    s = sec.settings
    assert sec.name == "compare" and sec.module.NAME == "compare"
    assert s.weightings == ("simple", "c_star") and s.capacities == (25,)
    assert s.seeds == (0,) and s.quick
    assert (s.base.steps, s.base.batch_size, s.budget["steps"]) == (3, 8, 3)
    assert s.base.mixture is cfg.mixture
    # the command shown in the report says the same
    cmd = sec.command.split()
    for flag, vals in (("--steps", ["3"]), ("--seeds", ["1"]), ("--batch-size", ["8"]),
                       ("--capacities", ["25"]), ("--weightings", ["simple", "c_star"]),
                       ("--mixture", ["<out>/mixture.json"])):  # fmt: skip
        i = cmd.index(flag)
        assert cmd[i + 1 : i + 1 + len(vals)] == vals, flag


def test_every_section_gets_the_config_values(tmp_path):
    from dsmtheory.cli.reproduce import plan

    cfg = parse_config(
        {
            "mixture": {"name": "ring", "num_modes": 4},
            "process": "vp",
            "schedule": "cosine",
            "seed": 7,
            "heteroskedasticity": {"sigma_min": 0.01, "sigma_max": 0.9, "num_sigmas": 5},
        }
    )
    from dsmtheory.cli.reproduce import data_extra_missing

    p = plan(cfg, tmp_path, quick=True)
    got = {sp.name: sp.settings for sp in p.sections}
    expected = [n for n in SECTION_NAMES if n != "realdata" or not data_extra_missing()]
    assert list(got) == expected
    het = got["heteroskedasticity"]
    assert het.mixture is cfg.mixture and het.process == "vp" and het.seed == 7
    np.testing.assert_allclose(het.sigmas, np.geomspace(0.01, 0.9, 5))
    opt = got["optimal-c"]
    assert opt.mixtures["user_mixture"] is cfg.mixture and opt.schedule == "cosine"
    assert opt.seed == 7 and opt.quick
    tg = got["targets"]
    assert tg.mixture is cfg.mixture and tg.process == "vp" and tg.seed == 7
    assert got["compare"].base.mixture is cfg.mixture
    if "realdata" in got:  # the built-in data sets, not the config's mixture
        assert got["realdata"].seed == 7 and got["realdata"].quick
        assert list(got["realdata"].mixtures) == ["digits:10"]


def test_realdata_is_left_out_without_the_data_extra(tmp_path, monkeypatch):
    from dsmtheory.cli import reproduce

    monkeypatch.setattr(reproduce, "data_extra_missing", lambda: True)
    p = reproduce.plan(parse_config({"sections": ["prove", "realdata"]}), tmp_path)
    assert [sp.name for sp in p.sections] == ["prove"]
    with pytest.raises(UsageError, match=r"realdata needs the optional extra: pip install"):
        reproduce.plan(parse_config({"sections": ["realdata"]}), tmp_path)
