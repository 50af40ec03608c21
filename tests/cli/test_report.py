"""The reproduce pipeline: sections, failures, interrupts, and the written report."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dsmtheory._io import write_csv
from dsmtheory.cli import main
from dsmtheory.cli.report import Section, run_sections


def _ok(out: Path) -> int:
    write_csv(out / "table.csv", ["sigma", "R"], [[0.1, 200.0], [1.0, 1.5]])
    print("section output line")
    return 0


def _boom(out: Path) -> int:
    raise ZeroDivisionError("deliberate")


def _status3(out: Path) -> int:
    return 3


def _interrupt(out: Path) -> int:
    raise KeyboardInterrupt


def _no_tmp_files(folder: Path):
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_a_failing_section_is_reported_and_the_rest_still_runs(tmp_path):
    secs = [
        Section("a", "First", _ok),
        Section("b", "Second", _boom),
        Section("c", "Third", _status3),
        Section("d", "Fourth", _ok),
    ]
    results, interrupted = run_sections(secs, tmp_path, echo=False, log=open(os.devnull, "w"))
    assert not interrupted
    assert [r.status for r in results] == ["ok", "failed", "failed", "ok"]
    assert "ZeroDivisionError: deliberate" in results[1].error
    assert (tmp_path / "b" / "error.txt").read_text().count("Traceback") == 1
    assert "status 3" in results[2].error
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    for text in (md, html):
        assert "First" in text and "Fourth" in text and "deliberate" in text
        assert "a/table.csv" in text
    assert "| 0.1 | 200 |" in md  # the CSV is rendered as a table
    assert (tmp_path / "a" / "stdout.txt").read_text() == "section output line\n"
    assert not _no_tmp_files(tmp_path)


def _non_finite(out: Path) -> int:
    (out / "table.csv").write_text("lam,weight_ess,var\n-6,inf,nan\n2,-inf,0.123456789\n")
    return 0


def test_report_tables_show_inf_and_nan_cells(tmp_path):
    """A section's CSV with inf / nan cells (targets' weight_ess is inf at D <= 2) is shown
    as it stands; reproduce --quick failed on it with an OverflowError."""
    results, _ = run_sections(
        [Section("a", "First", _non_finite)], tmp_path, echo=False, log=open(os.devnull, "w")
    )
    assert [r.status for r in results] == ["ok"]
    md = (tmp_path / "report.md").read_text()
    assert "| -6 | inf | nan |" in md and "| 2 | -inf | 0.12346 |" in md
    assert "inf" in (tmp_path / "report.html").read_text()


def test_an_interrupt_keeps_finished_sections_and_marks_the_rest(tmp_path):
    secs = [
        Section("a", "First", _ok),
        Section("b", "Second", _interrupt),
        Section("c", "Third", _ok),
    ]
    results, interrupted = run_sections(secs, tmp_path, echo=False, log=open(os.devnull, "w"))
    assert interrupted
    assert [r.status for r in results] == ["ok", "interrupted", "not run"]
    assert (tmp_path / "a" / "table.csv").exists()
    assert not (tmp_path / "c" / "table.csv").exists()
    md = (tmp_path / "report.md").read_text()
    assert "interrupted" in md and "not run" in md
    assert not _no_tmp_files(tmp_path)


def test_sigint_during_reproduce_keeps_the_report_whole(tmp_path):
    """A real Ctrl-C (SIGINT) in a subprocess: exit status 130, report written whole."""
    script = textwrap.dedent(
        f"""
        import signal, time, sys
        from pathlib import Path
        # A shell that starts a job in the background (as some CI runners do) hands it
        # SIGINT ignored; restore Python's default handler, as an interactive terminal has.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from dsmtheory.cli.report import Section, run_sections
        from dsmtheory._io import write_csv
        def ok(out):
            write_csv(out / "t.csv", ["x"], [[1]]); return 0
        def slow(out):
            print("READY", file=sys.stderr, flush=True); time.sleep(60); return 0
        res, intr = run_sections([Section("a", "A", ok), Section("b", "B", slow),
                                  Section("c", "C", ok)], Path({str(tmp_path)!r}), echo=False)
        sys.exit(130 if intr else 0)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    t0 = time.time()
    for line in proc.stderr:
        if "READY" in line:
            break
        assert time.time() - t0 < 60
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    md = (tmp_path / "report.md").read_text()
    assert "| A | ok |" in md and "| B | interrupted |" in md and "| C | not run |" in md
    assert (tmp_path / "a" / "t.csv").read_text() == "x\n1\n"
    assert not _no_tmp_files(tmp_path)


def test_reproduce_cli_bad_config_is_one_line_exit_2(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('mixture = "moon"\n')
    assert main(["reproduce", "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mixture name must be one of" in err[0]


@pytest.mark.parametrize("text", ["not = [valid", '{"json": '])
def test_reproduce_cli_malformed_config(tmp_path, capsys, text):
    suffix = ".json" if text.startswith("{") else ".toml"
    cfg = tmp_path / f"bad{suffix}"
    cfg.write_text(text)
    code = main(["reproduce", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "malformed" in err[0]
    assert not (tmp_path / "o" / "report.md").exists()


def test_empty_toml_config_is_the_defaults(tmp_path):
    # An empty TOML file is a valid, empty config. Checked at the config layer: running
    # reproduce on it would run the whole (default, non-quick) analysis.
    from dsmtheory.cli.config import ReproduceConfig, load_config

    cfg = tmp_path / "empty.toml"
    cfg.write_text("")
    got = load_config(cfg)
    assert dataclasses.replace(got, source="") == dataclasses.replace(ReproduceConfig(), source="")
