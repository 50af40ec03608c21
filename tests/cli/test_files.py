"""Result files: the process umask's mode, whole or not at all, and a report that never shows
outputs that are not of this run (stale or failed sections)."""

import os
import re
import stat
from pathlib import Path

import pytest

from dsmtheory import _io
from dsmtheory.cli import main, weightings
from dsmtheory.cli.report import MARKER, Section, run_sections


@pytest.fixture
def umask():
    """Set the umask for one test and restore it."""
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask):
        os.umask(mask)

    yield set_
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("mask, want", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_umask_mode(mask, want, umask, tmp_path):
    umask(mask)
    assert _io.file_mode() == want
    paths = [
        _io.write_csv(tmp_path / "a.csv", ["x"], [[1.0]]),
        _io.write_json(tmp_path / "b.json", {"x": 1}),
        _io.atomic_write_text(tmp_path / "sub" / "c.txt", "c"),
    ]
    for p in paths:
        assert _mode(p) == want, (p, oct(_mode(p)))


def test_command_outputs_are_0644_under_umask_022(umask, tmp_path):
    umask(0o022)
    out = tmp_path / "h"
    argv = ["heteroskedasticity", "--out", str(out), "--num-sigmas", "3", "--num-samples", "64"]
    assert main(argv) == 0
    files = sorted(out.iterdir())
    assert [p.name for p in files] == [
        "heteroskedasticity.csv",
        "heteroskedasticity.json",
        "heteroskedasticity.png",
    ]
    assert all(_mode(p) == 0o644 for p in files), [oct(_mode(p)) for p in files]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "t.csv"
    _io.write_csv(target, ["x"], [[1.0]])

    def fail(*_a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(_io.WriteError, match="cannot write .*t.csv: No space left"):
        _io.write_csv(target, ["x"], [[2.0]])
    assert target.read_text() == "x\n1.0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_a_file_in_the_way_is_a_write_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(_io.WriteError, match="cannot write"):
        _io.atomic_write_text(tmp_path / "f" / "sub" / "a.txt", "a")


# ---------------------------------------------------------------------------------------
# stale outputs
# ---------------------------------------------------------------------------------------
def _writer(tag):
    def run(out: Path) -> int:
        _io.write_csv(out / "table.csv", ["run"], [[tag]])
        _io.atomic_write_bytes(out / "figure.png", b"\x89PNG" + tag.encode())
        return 0

    return run


def _half_then(exc):
    def run(out: Path) -> int:
        _io.write_csv(out / "table.csv", ["run"], [["partial"]])
        raise exc

    return run


def _links(md: str) -> set[str]:
    return set(re.findall(r"\]\(([^)]+)\)", md))


def _log():
    return open(os.devnull, "w")


def test_rerun_into_a_used_folder_never_shows_old_outputs(tmp_path):
    names = ("a", "b", "c", "d", "e")
    first = [Section(n, n.upper(), _writer("old")) for n in names]
    run_sections(first, tmp_path, echo=False, log=_log())
    assert (tmp_path / "b" / "table.csv").read_text() == "run\nold\n"
    # second run: a ok, b fails half-way, c interrupted half-way, d not run; e not in it
    second = [
        Section("a", "A", _writer("new")),
        Section("b", "B", _half_then(ZeroDivisionError("deliberate"))),
        Section("c", "C", _half_then(KeyboardInterrupt())),
        Section("d", "D", _writer("new")),
    ]
    results, interrupted = run_sections(second, tmp_path, echo=False, log=_log(), others=["e"])
    assert interrupted
    assert [r.status for r in results] == ["ok", "failed", "interrupted", "not run"]
    assert (tmp_path / "a" / "table.csv").read_text() == "run\nnew\n"
    # failed and interrupted: their partial outputs and the old ones are gone
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["error.txt"]
    assert list((tmp_path / "c").iterdir()) == []
    # not run / not part of this run: old files kept, marked stale
    for n in ("d", "e"):
        assert (tmp_path / n / "STALE.md").is_file()
        assert (tmp_path / n / "table.csv").read_text() == "run\nold\n"
    assert results[3].stale and not results[0].stale
    for report in ("report.md", "report.html"):
        text = (tmp_path / report).read_text()
        assert "b/table.csv" not in text and "c/table.csv" not in text
        assert "d/table.csv" not in text and "d/figure.png" not in text
        assert "a/figure.png" in text and "d/STALE.md" in text
        assert "stale folders (earlier runs, not shown)" in text and "e/" in text
    for link in _links((tmp_path / "report.md").read_text()):
        assert (tmp_path / link).is_file(), link
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [MARKER]
    assert not list(tmp_path.rglob("*.tmp"))


def test_reproduce_into_an_old_report_folder_drops_the_old_figures(tmp_path, capsys, monkeypatch):
    # a report folder as an earlier version left it (no marker file), with its figures
    out = tmp_path / "rq"
    (out / "weightings").mkdir(parents=True)
    (out / "report.md").write_text("# dsmtheory report\n\n![w](weightings/total_weights.png)\n")
    (out / "weightings" / "total_weights.png").write_bytes(b"\x89PNG old")
    (out / "prove").mkdir()
    (out / "prove" / "prove.csv").write_text("derivation\nold\n")

    def broken(_settings):
        raise RuntimeError("deliberate failure of the section")

    monkeypatch.setattr(weightings, "compute", broken)
    assert main(["reproduce", "--out", str(out), "--only", "weightings"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "failed sections: weightings" in err[-1] and "Traceback" not in "\n".join(err)
    assert sorted(p.name for p in (out / "weightings").iterdir()) == ["error.txt"]
    assert "deliberate failure" in (out / "weightings" / "error.txt").read_text()
    md = (out / "report.md").read_text()
    assert "total_weights.png" not in md and "| The weighting catalog | failed |" in md
    assert (out / "prove" / "STALE.md").is_file()  # not part of this run: marked stale
    assert "prove/prove.csv" not in md
