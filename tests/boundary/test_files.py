"""Mixture JSON and configuration TOML readers: unknown keys refused listing the known ones,
strings and booleans where numbers belong refused naming the key, bytes not read as a
file name, non-UTF-8 files refused."""

from __future__ import annotations

import json

import pytest

import dsmtheory as dsm

GOOD = {"weights": [0.5, 0.5], "means": [[0.0], [1.0]], "covs": [1.0, 2.0]}


def _with(**kw):
    d = dict(GOOD)
    d.update(kw)
    return json.dumps(d)


def test_unknown_key_lists_the_known_ones():
    text = json.dumps({"wieghts": [1.0], "means": [[0.0]], "covs": [1.0]})
    with pytest.raises(ValueError) as info:
        dsm.from_json(text)
    msg = str(info.value)
    assert "wieghts" in msg and all(k in msg for k in ("weights", "means", "covs"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("weights", ["0.5", "0.5"]),
        ("weights", [True, 0.5]),
        ("means", [["0"], [1.0]]),
        ("covs", ["1.0", 2.0]),
        ("covs", [None, 2.0]),
        ("means", [[0.0], [1.0, 2.0]]),
    ],
)
def test_strings_booleans_and_ragged_values_refused_naming_the_key(key, value):
    with pytest.raises((TypeError, ValueError)) as info:
        dsm.from_json(_with(**{key: value}))
    assert key in str(info.value)


def test_bytes_are_not_a_file_name():
    with pytest.raises(TypeError) as info:
        dsm.from_json(_with().encode())
    assert "source" in str(info.value)


def test_non_utf8_file_refused(tmp_path):
    p = tmp_path / "m.json"
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError) as info:
        dsm.from_json(p)
    assert "UTF-8" in str(info.value)


def test_round_trip_still_reads():
    gm = dsm.from_json(_with())
    assert dsm.from_json(dsm.to_json(gm)).num_components == 2


def _toml(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_config_unknown_key_lists_the_known_ones(tmp_path):
    from dsmtheory.cli.config import load_config

    with pytest.raises(ValueError) as info:
        load_config(_toml(tmp_path, 'mixtrue = "ring"\n'))
    assert "mixtrue" in str(info.value) and "known" in str(info.value)


def test_config_string_where_number_belongs(tmp_path):
    from dsmtheory.cli.config import load_config

    with pytest.raises((TypeError, ValueError)) as info:
        load_config(_toml(tmp_path, '[training]\nsteps = "100"\n'))
    assert "steps" in str(info.value)
