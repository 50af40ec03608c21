"""Bad input to the command line: each case is refused before anything runs, with exit status
2, one line on stderr that names the option or key and what was wrong, no traceback, and no
result file written.

The cases run in-process through ``main(argv)`` (a traceback would show in the captured
stderr); ``test_subprocess.py`` runs a few of them as real processes. Files used by the
cases (``@NAME``) are made once in a temporary folder by :func:`inputs`.
"""

import json
import os
from pathlib import Path

import pytest

import dsmtheory as dsm
from dsmtheory.cli import main

BIG = "99999999999999999999"


def _mix(dim, k=1, iso=True):
    return {
        "weights": [1.0 / k] * k,
        "means": [[0.0] * dim for _ in range(k)],
        "covs": [1.0] * k if iso else [[1.0] * dim for _ in range(k)],
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """name -> path of every input file the cases refer to as ``@name``."""
    d = tmp_path_factory.mktemp("inputs")
    files = {}

    def put(name, content, mode="w"):
        p = d / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        files[name.split(".")[0]] = str(p)

    put("afile.txt", "x")
    put("latin1.json", '{"weights": [1.0], "means": [[0.0]], "covs": ["\xe9"]}'.encode("latin-1"))
    put("empty.json", "")
    put("array.json", "[1, 2]")
    put("string.json", '"hello"')
    put("dim100k.json", json.dumps(_mix(100_000)))
    put("k5000.json", json.dumps(_mix(1, k=5000)))
    put("dim4.json", json.dumps(_mix(4)))
    put("dim3.json", json.dumps(_mix(3)))
    put("nanweight.json", json.dumps({"weights": [float("nan")], "means": [[0.0]], "covs": [1.0]}))
    put("typo.json", json.dumps({"wieghts": [1.0], "means": [[0.0]], "covs": [1.0]}))
    put("ring.json", dsm.to_json(dsm.ring()))
    put("bimodal.json", dsm.to_json(dsm.bimodal_1d()))
    (d / "folder").mkdir()
    files["folder"] = str(d / "folder")
    (d / "cfgdir.toml").mkdir()
    files["cfgdir"] = str(d / "cfgdir.toml")
    # a folder that holds a report.md dsmtheory did not write
    (d / "foreign").mkdir()
    (d / "foreign" / "report.md").write_text("# my own notes\n")
    files["foreign"] = str(d / "foreign")
    # configs
    configs = {
        "c_dim100k.toml": 'mixture = {name = "random_anisotropic", dim = 100000}\n',
        "c_vp2.toml": 'process = "vp"\n[heteroskedasticity]\nsigma_max = 2.0\n',
        "c_vp_nomax.toml": 'process = "vp"\n',
        "c_namelist.toml": 'mixture = {name = ["ring"]}\n',
        "c_name3.json": json.dumps({"mixture": {"name": 3}}),
        "c_unknown.toml": "sead = 3\n",
        "c_unknown_het.toml": "[heteroskedasticity]\nsigma_mn = 0.1\n",
        "c_unknown_train.toml": "[training]\nepochs = 3\n",
        "c_seed_str.toml": 'seed = "3"\n',
        "c_sigma_str.toml": '[heteroskedasticity]\nsigma_min = "0.1"\n',
        "c_weights_str.toml": 'mixture = {weights = ["0.5", "0.5"], means = [[0.0], [1.0]], '
        "covs = [1.0, 1.0]}\n",
        "c_seed_bool.toml": "seed = true\n",
        "c_seed_big.json": '{"seed": ' + BIG + "}",
        "c_sigma_tiny.toml": "[heteroskedasticity]\nsigma_min = 1e-300\n",
        "c_latin1.toml": b'mixture = "\xe9"\n',
        "c_yaml.yaml": "seed: 3\n",
        "c_array.json": "[1, 2]",
        "c_file3.toml": "mixture = {file = 3}\n",
        "c_file_missing.toml": 'mixture = {file = "nope.json"}\n',
        "c_file_latin1.toml": f"mixture = {{file = {json.dumps(files['latin1'])}}}\n",
        "c_ring_huge.toml": 'mixture = {name = "ring", num_modes = 100000000}\n',
        "c_grid_huge.toml": 'mixture = {name = "grid_2d", n = 100000}\n',
        "c_radius_str.toml": 'mixture = {name = "ring", radius = "2"}\n',
        "c_std_bool.toml": 'mixture = {name = "ring", std = true}\n',
        "c_param_unknown.toml": 'mixture = {name = "ring", radiuss = 2}\n',
        "c_inline_extra.toml": "mixture = {weights = [1.0], means = [[0.0]], covs = [1.0], "
        "labels = [1]}\n",
        "c_inline_nocovs.toml": "mixture = {weights = [1.0], means = [[0.0]]}\n",
        "c_inline_dim.json": json.dumps({"mixture": _mix(100_000)}),
        "c_sections_str.toml": 'sections = "prove"\n',
        "c_sections_int.toml": "sections = [1]\n",
        "c_caps_huge.toml": "[training]\ncapacities = [1000000000000]\n",
        "c_steps_str.toml": '[training]\nsteps = "100"\n',
        "c_process_list.toml": 'process = ["ve"]\n',
        "c_schedule_int.toml": "schedule = 3\n",
        "c_nsig_huge.toml": "[heteroskedasticity]\nnum_sigmas = 1000000000\n",
        "c_sig_order.toml": "[heteroskedasticity]\nsigma_min = 1.0\nsigma_max = 0.5\n",
        "c_single_noparams.toml": 'mixture = {name = "single_gaussian"}\n',
        "c_mix_empty.toml": "mixture = {}\n",
        "c_nested.json": "[" * 100_000 + "]" * 100_000,
    }
    for name, text in configs.items():
        put(name, text)
    return files


def _sub(argv, files):
    """``@name`` -> the file's path; ``@name/rest`` -> a path below it."""
    out = []
    for a in argv:
        if a.startswith("@"):
            name, _, rest = a[1:].partition("/")
            a = files[name] + (f"/{rest}" if rest else "")
        out.append(a)
    return out


# (argv, words that the one stderr line must contain)
CASES = [
    # --out
    (["heteroskedasticity", "--out", "@afile/sub"], ["--out", "lies below the file"]),
    (["heteroskedasticity", "--out", "/proc/dsmtheory-test/out"], ["--out"]),
    (["heteroskedasticity", "--out", "/sys/dsmtheory-test"], ["--out"]),
    (["reproduce", "--out", "@afile"], ["--out", "must be a folder"]),
    (["heteroskedasticity", "--out", ""], ["--out", "empty"]),
    (["weightings", "--out", ""], ["--out", "empty"]),
    (["reproduce", "--out", ""], ["--out", "empty"]),
    (["targets", "--out", "@afile/sub"], ["--out"]),
    (["compare", "--out", "@afile/sub"], ["--out"]),
    (["optimal-c", "--out", "@afile/sub"], ["--out"]),
    (["weightings", "--out", "@afile"], ["--out"]),
    (["reproduce", "--out", "@foreign"], ["--out", "report.md", "did not write"]),
    # seeds
    (["heteroskedasticity", "--out", "OUT", "--seed", BIG], ["--seed", "<="]),
    (["optimal-c", "--out", "OUT", "--seed", BIG], ["--seed"]),
    (["targets", "--out", "OUT", "--seed", BIG], ["--seed"]),
    (["heteroskedasticity", "--out", "OUT", "--seed", "-1"], ["--seed", ">= 0"]),
    (["targets", "--out", "OUT", "--seed", str(2**63)], ["--seed"]),
    # noise levels and grid sizes
    (["heteroskedasticity", "--out", "OUT", "--sigma-min", "1e-300"], ["--sigma-min"]),
    (["heteroskedasticity", "--out", "OUT", "--sigma-max", "1e300"], ["--sigma-max"]),
    (["heteroskedasticity", "--out", "OUT", "--sigma-min", "nan"], ["--sigma-min", "finite"]),
    (["heteroskedasticity", "--out", "OUT", "--sigma-max", "inf"], ["--sigma-max", "finite"]),
    (
        [
            "heteroskedasticity",
            "--out",
            "OUT",
            "--process",
            "vp",
            "--sigma-min",
            "1e-300",
            "--sigma-max",
            "0.5",
        ],
        ["--sigma-min"],
    ),  # fmt: skip
    (["heteroskedasticity", "--out", "OUT", "--num-sigmas", "100000000"], ["--num-sigmas"]),
    (["heteroskedasticity", "--out", "OUT", "--num-samples", str(10**12)], ["--num-samples"]),
    (["heteroskedasticity", "--out", "OUT", "--num-samples", "1"], ["--num-samples"]),
    (["heteroskedasticity", "--out", "OUT", "--num-sigmas", "1.5"], ["--num-sigmas"]),
    (
        ["heteroskedasticity", "--out", "OUT", "--method", "adaptive", "--mixture", "@dim4"],
        ["--method adaptive", "D = 4"],
    ),  # fmt: skip
    # weightings
    (["weightings", "--out", "OUT", "--lam-min", "nan"], ["--lam-min"]),
    (["weightings", "--out", "OUT", "--lam-max", "inf"], ["--lam-max"]),
    (["weightings", "--out", "OUT", "--lam-min=-1e6"], ["--lam-min", ">= -500"]),
    (["weightings", "--out", "OUT", "--points", str(10**9)], ["--points"]),
    (["weightings", "--out", "OUT", "--k", "nan"], ["--k"]),
    (["weightings", "--out", "OUT", "--tau", "inf"], ["--tau"]),
    # compare
    (["compare", "--out", "OUT", "--capacities", str(10**12)], ["--capacities"]),
    (["compare", "--out", "OUT", "--seeds", "100000"], ["--seeds"]),
    (["compare", "--out", "OUT", "--batch-size", str(10**9)], ["--batch-size"]),
    (["compare", "--out", "OUT", "--weightings", ""], ["--weightings", "unknown weighting"]),
    # mixture files
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@latin1"], ["--mixture", "UTF-8"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@empty"], ["--mixture", "malformed"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@folder"], ["--mixture", "folder"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@array"], ["--mixture", "object"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@string"], ["--mixture", "object"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@dim100k"], ["--mixture", "100000"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@k5000"], ["--mixture", "5000"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@nanweight"], ["--mixture", "weights"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", "@typo"], ["--mixture", "weights"]),
    (["heteroskedasticity", "--out", "OUT", "--mixture", ""], ["--mixture", "empty"]),
    (["optimal-c", "--out", "OUT", "--mixture", "@folder"], ["--mixture", "folder"]),
    (["targets", "--out", "OUT", "--proposal", "@latin1"], ["--proposal", "UTF-8"]),
    (["targets", "--out", "OUT", "--proposal", "@nope"], ["--proposal", "cannot be read"]),
    (
        ["targets", "--out", "OUT", "--mixture", "@bimodal", "--proposal", "@ring"],
        ["--proposal", "dimension"],
    ),  # fmt: skip
    (["compare", "--out", "OUT", "--mixture", "@latin1"], ["--mixture", "UTF-8"]),
    # reproduce configs
    (["reproduce", "--out", "OUT", "--config", "@c_dim100k"], ["dimension 100000"]),
    (["reproduce", "--out", "OUT", "--config", "@c_vp2"], ["sigma_max", "< 1", "vp"]),
    (["reproduce", "--out", "OUT", "--config", "@c_vp_nomax"], ["sigma_max", "vp"]),
    (["reproduce", "--out", "OUT", "--config", "@c_namelist"], ["mixture name", "['ring']"]),
    (["reproduce", "--out", "OUT", "--config", "@c_name3"], ["mixture name"]),
    (["reproduce", "--out", "OUT", "--config", "@c_unknown"], ["sead", "known:", "seed"]),
    (["reproduce", "--out", "OUT", "--config", "@c_unknown_het"], ["sigma_mn", "known:"]),
    (["reproduce", "--out", "OUT", "--config", "@c_unknown_train"], ["epochs", "known:"]),
    (["reproduce", "--out", "OUT", "--config", "@c_seed_str"], ["seed", "integer"]),
    (["reproduce", "--out", "OUT", "--config", "@c_sigma_str"], ["sigma_min", "number"]),
    (["reproduce", "--out", "OUT", "--config", "@c_weights_str"], ["mixture.weights", "numbers"]),
    (["reproduce", "--out", "OUT", "--config", "@c_seed_bool"], ["seed", "integer"]),
    (["reproduce", "--out", "OUT", "--config", "@c_seed_big"], ["seed", "<="]),
    (["reproduce", "--out", "OUT", "--config", "@c_sigma_tiny"], ["sigma_min"]),
    (["reproduce", "--out", "OUT", "--config", "@c_latin1"], ["UTF-8"]),
    (["reproduce", "--out", "OUT", "--config", "@c_yaml"], [".toml or .json"]),
    (["reproduce", "--out", "OUT", "--config", "@c_array"], ["table"]),
    (["reproduce", "--out", "OUT", "--config", "@c_file3"], ["mixture.file"]),
    (["reproduce", "--out", "OUT", "--config", "@c_file_missing"], ["mixture.file", "nope.json"]),
    (["reproduce", "--out", "OUT", "--config", "@c_file_latin1"], ["mixture.file", "UTF-8"]),
    (["reproduce", "--out", "OUT", "--config", "@c_ring_huge"], ["100000000 components"]),
    (["reproduce", "--out", "OUT", "--config", "@c_grid_huge"], ["components"]),
    (["reproduce", "--out", "OUT", "--config", "@c_radius_str"], ["mixture.radius", "numbers"]),
    (["reproduce", "--out", "OUT", "--config", "@c_std_bool"], ["mixture.std", "numbers"]),
    (["reproduce", "--out", "OUT", "--config", "@c_param_unknown"], ["radiuss", "known:"]),
    (["reproduce", "--out", "OUT", "--config", "@c_inline_extra"], ["labels", "known:"]),
    (["reproduce", "--out", "OUT", "--config", "@c_inline_nocovs"], ["lacks", "covs"]),
    (["reproduce", "--out", "OUT", "--config", "@c_inline_dim"], ["dimension 100000"]),
    (["reproduce", "--out", "OUT", "--config", "@c_sections_str"], ["sections"]),
    (["reproduce", "--out", "OUT", "--config", "@c_sections_int"], ["sections", "unknown"]),
    (["reproduce", "--out", "OUT", "--config", "@c_caps_huge"], ["training.capacities[0]"]),
    (["reproduce", "--out", "OUT", "--config", "@c_steps_str"], ["training.steps", "integer"]),
    (["reproduce", "--out", "OUT", "--config", "@c_process_list"], ["process"]),
    (["reproduce", "--out", "OUT", "--config", "@c_schedule_int"], ["schedule"]),
    (["reproduce", "--out", "OUT", "--config", "@c_nsig_huge"], ["num_sigmas"]),
    (["reproduce", "--out", "OUT", "--config", "@c_sig_order"], ["sigma_min", "below"]),
    (["reproduce", "--out", "OUT", "--config", "@c_single_noparams"], ["single_gaussian"]),
    (["reproduce", "--out", "OUT", "--config", "@c_mix_empty"], ["mixture needs"]),
    (["reproduce", "--out", "OUT", "--config", "@c_nested"], ["config"]),
    (["reproduce", "--out", "OUT", "--config", "@cfgdir"], ["config", "cannot be read"]),
    (["reproduce", "--out", "OUT", "--config", "@nope.toml"], ["config", "cannot be read"]),
    (["reproduce", "--out", "OUT", "--only", "bogus"], ["--only"]),
    (["bogus-command"], ["invalid choice"]),
]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_refused_with_one_line_and_exit_2(argv, words, inputs, tmp_path, capsys):
    files = {**inputs, "nope": str(tmp_path / "nope.json"), "nope.toml": str(tmp_path / "n.toml")}
    out = tmp_path / "out"
    argv = [str(out) if a == "OUT" else a for a in _sub(argv, files)]
    try:
        code = main(argv)
    except SystemExit as exc:  # the old parser exited from inside main
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not out.exists() or not any(out.iterdir()), sorted(os.listdir(out))
    assert not Path("/sys/dsmtheory-test").exists()
