"""Internal errors: one line naming the saved traceback, exit status 1, never a traceback on
stderr; a ValueError from inside a computation is not passed off as the user's fault."""

import pytest

from dsmtheory.cli import heteroskedasticity, main, prove


def _boom(_settings):
    raise ZeroDivisionError("float division by zero")


def _unpack(_settings):
    a, b, c = (1, 2, 3, 4)  # noqa: F841 - a bug that raises ValueError, as issue 13 found


def _one_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("fault", [_boom, _unpack])
def test_internal_error_names_the_traceback_file_in_out(fault, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(heteroskedasticity, "compute", fault)
    out = tmp_path / "out"
    assert main(["heteroskedasticity", "--out", str(out), "--num-sigmas", "3"]) == 1
    line = _one_line(capsys)
    log = out / "error.log"
    assert "internal error" in line and str(log) in line
    text = log.read_text()
    assert "Traceback" in text and fault.__name__ in text
    assert ("ZeroDivisionError" if fault is _boom else "ValueError") in line
    assert not (out / "heteroskedasticity.csv").exists()


def test_internal_error_without_out_goes_to_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(prove, "compute", _boom)
    assert main(["prove"]) == 1
    line = _one_line(capsys)
    (log,) = (tmp_path / "cache" / "dsmtheory").glob("error-*.log")
    assert "internal error" in line and str(log) in line
    assert "ZeroDivisionError" in log.read_text()


def test_internal_error_with_unwritable_places_still_one_line(tmp_path, capsys, monkeypatch):
    # no place for the log at all: still one line, still exit 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(blocker / "tmp"))
    monkeypatch.setattr(prove, "compute", _boom)
    assert main(["prove"]) == 1
    assert "traceback could not be saved" in _one_line(capsys)


def test_an_interrupt_inside_a_command_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(_settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(heteroskedasticity, "compute", interrupted)
    assert main(["heteroskedasticity", "--out", str(tmp_path / "o")]) == 130
    assert _one_line(capsys).endswith("interrupted")


def test_a_closed_stdout_pipe_is_not_a_traceback(capsys, monkeypatch):
    def closed(*_a, **_k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(prove, "compute", closed)
    assert main(["prove"]) == 1
    assert capsys.readouterr().err == ""
