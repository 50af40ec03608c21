"""The command line as a real process: exit status, exactly one line on stderr, no
traceback; Ctrl-C (SIGINT) at 0.2 s, at 1 s and in the middle of a section of ``reproduce``
exits 130 and leaves a report that is true of its folder.

Each case starts a Python process (about 1.5 s of imports), so only a few run here; the
full table of bad input runs in-process in ``test_bad_input.py``.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dsmtheory

ROOT = str(Path(dsmtheory.__file__).resolve().parents[1])  # the package under test
STATUSES = {"ok", "failed", "interrupted", "not run"}


def _env(**extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, **extra)
    env.pop("PYTHONSTARTUP", None)
    return env


def _cli(*argv, cwd=None, sigint_ignored=False, **popen):
    cmd = [sys.executable, "-m", "dsmtheory.cli", *argv]
    if sigint_ignored:  # as a shell's background job gets it (issue 13: "exit 0")
        cmd = ["bash", "-c", 'trap "" INT; exec "$@"', "bash", *cmd]
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # no preexec_fn (it would fork a multithreaded JAX process): the command line
        # installs its own SIGINT handler, also where the parent had SIGINT ignored
        **popen,
    )


def _finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def assert_report_consistent(folder: Path):
    """Whatever the report shows exists and is of this run: every linked file is there, the
    sections that did not finish show no figure or table, nothing half-written is left."""
    assert not list(folder.rglob("*.tmp")), list(folder.rglob("*.tmp"))
    assert not [p for p in folder.glob(".*.partial")], "a staging folder was left"
    md_path = folder / "report.md"
    if not md_path.exists():  # interrupted before the report: nothing of a run is there
        assert not any(p.is_dir() for p in folder.iterdir()) if folder.exists() else True
        return
    md = md_path.read_text()
    assert md.startswith("# dsmtheory report") and (folder / "report.html").is_file()
    table = md.split("## Summary")[1].split("Total time")[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \| [\d.]+ \|", table, re.M)
    assert rows and all(status in STATUSES for _, status in rows), rows
    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (folder / link).is_file(), link
    for title, status in rows:
        if status != "ok":
            sec = md.split(f"## {title}")[1].split("\n## ")[0]
            assert ".png" not in sec and ".csv" not in sec, (title, sec)


def _one_line(err):
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.slow
def test_bad_input_as_a_real_process(tmp_path):
    """Four cases of issue 13 that printed tracebacks, as real processes, in parallel."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    vp = tmp_path / "vp.toml"
    vp.write_text('process = "vp"\n[heteroskedasticity]\nsigma_max = 2.0\n')
    work = tmp_path / "cwd"
    work.mkdir()
    cases = {
        "seed": (["heteroskedasticity", "--out", str(tmp_path / "s"), "--seed", "9" * 20],
                 "--seed"),
        "out-file": (["reproduce", "--out", str(afile)], "--out"),
        "out-empty": (["weightings", "--out", ""], "--out"),
        "vp-config": (["reproduce", "--out", str(tmp_path / "r"), "--config", str(vp)],
                      "sigma_max"),
    }  # fmt: skip
    procs = {k: _cli(*argv, cwd=work) for k, (argv, _) in cases.items()}
    for k, proc in procs.items():
        code, _, err = _finish(proc)
        assert code == 2, (k, err)
        assert cases[k][1] in _one_line(err), (k, err)
    assert list(work.iterdir()) == []  # --out "" wrote nothing into the working directory
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def _wait_past_interpreter_start(pid, timeout=30.0):
    """Until the child has begun ``import dsmtheory`` (NumPy's extension is loaded after
    dsmtheory's first module). Before that the interpreter itself is starting, which no
    package can cover; on an idle machine it is over after about 0.05 s."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if "_multiarray_umath" in Path(f"/proc/{pid}/maps").read_text():
                return
        except OSError:
            return  # no /proc, or already gone: send anyway
        time.sleep(0.005)


@pytest.mark.parametrize("delay, ignored", [(0.2, False), (1.0, False), (1.0, True)])
def test_ctrl_c_in_the_first_second_of_reproduce(delay, ignored, tmp_path):
    out = tmp_path / "rq"
    proc = _cli("reproduce", "--quick", "--out", str(out), sigint_ignored=ignored)
    time.sleep(delay)
    _wait_past_interpreter_start(proc.pid)
    proc.send_signal(signal.SIGINT)
    code, _, err = _finish(proc, timeout=60)
    assert code == 130, err
    assert _one_line(err).endswith("interrupted")
    assert_report_consistent(out)


@pytest.mark.slow
def test_ctrl_c_in_the_middle_of_a_section(tmp_path):
    """Into a folder of an earlier run: the interrupted section's old outputs go, a section
    not in this run is marked stale, the report shows neither."""
    out = tmp_path / "rq"
    (out / "prove").mkdir(parents=True)
    (out / "prove" / "prove.csv").write_text("derivation\nold\n")
    (out / "weightings").mkdir()
    (out / "weightings" / "total_weights.png").write_bytes(b"\x89PNG old")
    (out / "report.md").write_text("# dsmtheory report\n\n![old](weightings/total_weights.png)\n")
    proc = _cli("reproduce", "--only", "prove", "--only", "heteroskedasticity", "--out", str(out))
    t0 = time.time()
    lines = []
    for line in proc.stderr:  # the progress line says the first section has started
        lines.append(line)
        if line.startswith("[1/2]"):
            break
        assert time.time() - t0 < 90, lines
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    code, _, err = _finish(proc, timeout=60)
    err = "".join(lines) + err
    assert code == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(
        "finished sections are kept"
    )
    md = (out / "report.md").read_text()
    assert "| Symbolic proofs of the propositions | interrupted |" in md
    assert "| Heteroskedasticity of the DSM target | not run |" in md
    assert not (out / "prove" / "prove.csv").exists()
    assert (out / "weightings" / "STALE.md").is_file() and "total_weights.png" not in md
    assert_report_consistent(out)
