"""The report of ``dsmtheory reproduce``: run named sections, each in its own folder, and
write ``report.md`` and ``report.html`` with every figure and table.

A section is one analysis (a command's ``compute`` and ``write``). Sections run one after
another, each into a hidden staging folder ``.<section>.partial`` that replaces
``<section>/`` only when the section has finished, so a section's folder never mixes two
runs. Each one's stdout is captured to ``<section>/stdout.txt``. A section that raises or
returns a non-zero status is recorded as failed (traceback in ``<section>/error.txt``) and
the next section still runs.

What the report shows is always true of the folder:

* a section that finished (``ok``) shows its figures and tables;
* a section that failed or was interrupted keeps only ``error.txt``/``stdout.txt``: its
  partial outputs and those of earlier runs are removed, nothing is shown as current;
* a section that did not start (after Ctrl-C), and a section folder of an earlier run that
  this run does not include, keeps the earlier files with a ``STALE.md`` note; the report
  says so and shows none of them.

The report is written first (every section "not run"), then rewritten (atomically) after
every section, so even a hard kill leaves a report that matches the files. Ctrl-C stops the
run: the finished sections keep their files and the report marks the rest; a second Ctrl-C
during that last write is held until it is done. Every file is written whole or not at all
(:mod:`dsmtheory._io`).
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import html
import io
import json
import math
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import _sigint
from .._io import atomic_write_text
from ._errors import UsageError

__all__ = [
    "MARKER",
    "Section",
    "SectionResult",
    "check_report_folder",
    "render_html",
    "render_markdown",
    "run_sections",
    "write_report",
]

#: The file that marks a folder as a dsmtheory report folder (its section folders are ours).
MARKER = ".dsmtheory-report"
#: Files of a failed or interrupted section that are kept (the rest is removed).
KEPT_ON_FAILURE = ("error.txt", "stdout.txt")

#: A CSV of at most this many rows is shown whole (the 40-odd proofs, a per-σ table);
#: a longer one is thinned to :data:`MAX_TABLE_ROWS` rows and the full file is linked.
WHOLE_TABLE_ROWS = 64
MAX_TABLE_ROWS = 24
#: A section that writes this file (``{"title", "tables": [{"caption", "header", "rows"}]}``)
#: has its findings shown at the top of the report, before the sections.
FINDINGS_FILE = "findings.json"


@dataclass(frozen=True)
class Section:
    """One part of the report.

    Attributes:
        name: folder name and short key (``"optimal-c"``).
        title: heading in the report.
        run: ``run(folder) -> int`` does the work, writing files into ``folder`` (a staging
            folder that becomes ``out_dir/name`` when the section has finished); a non-zero
            return value marks the section failed.
        command: the equivalent command line, shown in the report.
        description: a paragraph shown under the heading.
    """

    name: str
    title: str
    run: Callable[[Path], int]
    command: str = ""
    description: str = ""


@dataclass
class SectionResult:
    """What happened to one section: ``status`` is ``ok``, ``failed``, ``interrupted`` or
    ``not run``; ``stale`` says that ``<name>/`` holds files of an earlier run (marked by
    ``STALE.md``), which the report does not show."""

    name: str
    title: str
    status: str
    seconds: float = 0.0
    error: str = ""
    stdout: str = ""
    command: str = ""
    description: str = ""
    files: list[str] = field(default_factory=list)
    stale: bool = False


class _Tee(io.TextIOBase):
    """Capture writes while passing them on (so a long run still shows its progress)."""

    def __init__(self, passthrough):
        self._buf = io.StringIO()
        self._pass = passthrough

    def write(self, s):
        self._buf.write(s)
        if self._pass is not None:
            self._pass.write(s)
        return len(s)

    def flush(self):
        if self._pass is not None:
            self._pass.flush()

    def getvalue(self):
        return self._buf.getvalue()


def check_report_folder(out_dir, names: Sequence[str], flag: str = "--out") -> None:
    """Refuse an output folder that holds files of the names a report uses but that was not
    written by ``dsmtheory reproduce`` (a report folder is marked by :data:`MARKER`, or,
    from earlier versions, by a ``report.md`` that starts with ``# dsmtheory report``)."""
    out = Path(out_dir)
    try:
        if not out.exists():
            return
        if not out.is_dir():
            raise UsageError(f"{flag} must be a folder, got the file {str(out)!r}")
        entries = set(os.listdir(out))
        if not entries or MARKER in entries:
            return
        report = out / "report.md"
        if report.is_file():
            with open(report, encoding="utf-8", errors="replace") as fh:
                if fh.read(64).startswith("# dsmtheory report"):
                    return
    except OSError as exc:
        raise UsageError(f"{flag} {str(out)!r}: {exc.strerror}") from exc
    ours = {"report.md", "report.html", "mixture.json", *names}
    ours |= {f".{n}.partial" for n in names}
    clash = sorted(entries & ours)
    if clash:
        raise UsageError(
            f"{flag} {str(out)!r} holds {clash[0]!r}, which dsmtheory reproduce did not write; "
            "choose an empty or new folder"
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _stale_note(started: str) -> str:
    return (
        "# Stale\n\nThe files in this folder are from an earlier run of `dsmtheory reproduce`. "
        f"The run started {started} did not re-run this section, and its report does not "
        "show these files.\n"
    )


def _promote(out_dir: Path, name: str, staging: Path, ok: bool) -> None:
    """Move the staging folder into ``out_dir/name``; without ``ok`` keep only the logs."""
    if not ok:
        for p in staging.iterdir():
            if p.name not in KEPT_ON_FAILURE:
                _remove(p)
    final, trash = out_dir / name, out_dir / f".{name}.old"
    _remove(trash)
    if final.exists() or final.is_symlink():
        os.replace(final, trash)
    os.replace(staging, final)
    _remove(trash)


def _start(out_dir, sections, results, header, inputs, others) -> None:
    """Replace the previous report, record the inputs, mark earlier outputs stale."""
    started = str(header.get("started", datetime.datetime.now().isoformat(timespec="seconds")))
    for sec, res in zip(sections, results, strict=True):
        _remove(out_dir / f".{sec.name}.partial")
        res.stale = (out_dir / sec.name).is_dir()
    old = [n for n in others if (out_dir / n).is_dir()]
    if old:
        header["stale folders (earlier runs, not shown)"] = ", ".join(f"{n}/" for n in old)
    write_report(out_dir, results, header)  # first: nothing of an earlier run stays shown
    atomic_write_text(
        out_dir / MARKER, json.dumps({"tool": "dsmtheory reproduce", "started": started}) + "\n"
    )
    for name, text in (inputs or {}).items():
        if text is None:
            _remove(out_dir / name)
        else:
            atomic_write_text(out_dir / name, text)
    stale = [s.name for s, r in zip(sections, results, strict=True) if r.stale]
    for name in [*stale, *old]:
        atomic_write_text(out_dir / name / "STALE.md", _stale_note(started))


def _run_one(sec: Section, staging: Path, res: SectionResult, echo: bool) -> bool:
    """Run one section into ``staging``; fill ``res``; return whether it was interrupted."""
    staging.mkdir(parents=True)
    tee = _Tee(sys.stdout if echo else None)
    interrupted = False
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(tee):
            status = sec.run(staging)
        res.status = "ok" if not status else "failed"
        if status:
            res.error = f"exited with status {status}"
    except KeyboardInterrupt:
        res.status, interrupted = "interrupted", True
    except SystemExit as exc:
        res.status = "ok" if not exc.code else "failed"
        if exc.code:
            res.error = f"exited with status {exc.code}"
    except Exception as exc:  # noqa: BLE001 - a failing section must not stop the others
        if _sigint.received():  # Ctrl-C that surfaced as another error (e.g. ImportError)
            res.status, interrupted = "interrupted", True
        else:
            res.status = "failed"
            res.error = f"{type(exc).__name__}: {exc}"
            atomic_write_text(staging / "error.txt", traceback.format_exc())
    res.seconds = time.perf_counter() - t0
    res.stdout = tee.getvalue()
    return interrupted


def run_sections(
    sections: Sequence[Section],
    out_dir: Path,
    *,
    header: dict | None = None,
    echo: bool = True,
    log=None,
    inputs: dict | None = None,
    others: Sequence[str] = (),
) -> tuple[list[SectionResult], bool]:
    """Run ``sections`` in order into ``out_dir/<name>/`` and keep the report current.

    Args:
        sections: the sections to run.
        out_dir: the report folder (its section folders belong to the report).
        header: settings and versions shown at the top of the report.
        echo: pass each section's stdout through to the console as well.
        log: where progress lines go (default ``sys.stderr``).
        inputs: files written at the top of ``out_dir`` when the run starts, name -> text
            (``None`` removes a file of an earlier run), e.g. ``mixture.json``.
        others: names of section folders of earlier runs that this run does not include:
            marked stale if present.

    Returns:
        ``(results, interrupted)``.
    """
    log = sys.stderr if log is None else log
    out_dir = Path(out_dir)
    header = dict(header or {})
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [
        SectionResult(s.name, s.title, "not run", command=s.command, description=s.description)
        for s in sections
    ]
    interrupted = False
    try:
        with _sigint.deferred():
            _start(out_dir, sections, results, header, inputs, others)
        for i, (sec, res) in enumerate(zip(sections, results, strict=True)):
            print(f"[{i + 1}/{len(sections)}] {sec.title} ...", file=log, flush=True)
            staging = out_dir / f".{sec.name}.partial"
            interrupted = _run_one(sec, staging, res, echo)
            with _sigint.deferred(reraise=not interrupted):
                if res.stdout:
                    atomic_write_text(staging / "stdout.txt", res.stdout)
                _promote(out_dir, sec.name, staging, res.status == "ok")
                res.stale = False
                res.files = _section_files(out_dir, out_dir / sec.name)
                print(f"    {res.status} in {res.seconds:.1f} s", file=log, flush=True)
                write_report(out_dir, results, header)
            if interrupted:
                break
    except KeyboardInterrupt:  # between sections or during the bookkeeping
        interrupted = True
    with _sigint.deferred(reraise=False):
        write_report(out_dir, results, header)
    return results, interrupted


def _section_files(out_dir: Path, sec_dir: Path) -> list[str]:
    files = []
    for p in sorted(sec_dir.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp"):
            files.append(str(p.relative_to(out_dir)))
    return files


def write_report(out_dir: Path, results: Sequence[SectionResult], header: dict) -> None:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "report.md", render_markdown(out_dir, results, header))
    atomic_write_text(out_dir / "report.html", render_html(out_dir, results, header))


_STALE_TEXT = (
    "The folder {name}/ holds files of an earlier run, marked stale ({name}/STALE.md); "
    "they are not shown here."
)


def _shown(r, suffix: str) -> list[str]:
    """The files of a finished section with this suffix (a section that did not finish
    shows none: its outputs are removed)."""
    return [f for f in r.files if f.endswith(suffix)] if r.status == "ok" else []


def _csv_tables(r, out_dir: Path):
    """``(file, header, shown rows, "k of n rows")`` for each non-empty CSV of a section."""
    for f in _shown(r, ".csv"):
        head, body, n = _read_csv(out_dir / f)
        if head:
            yield f, head, body, (f"{len(body)} of {n} rows" if n > len(body) else f"{n} rows")


def _read_csv(path: Path, max_rows: int = MAX_TABLE_ROWS):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return [], [], 0
    head, body = rows[0], rows[1:]
    n = len(body)
    if n > max(max_rows, WHOLE_TABLE_ROWS):  # evenly thinned
        step = max(1, n // max_rows)
        body = body[::step][:max_rows]
    return head, [[_short(v) for v in r] for r in body], n


def _short(v: str) -> str:
    try:
        f = float(v)
    except ValueError:
        return v
    if not math.isfinite(f):  # inf / nan cells (e.g. targets' weight_ess at D <= 2) as they are
        return v
    if f == int(f) and abs(f) < 1e9 and "." not in v and "e" not in v.lower():
        return v
    return f"{f:.5g}"


def _summary_rows(results):
    return [
        [r.title, r.status, f"{r.seconds:.1f}", r.error.splitlines()[0] if r.error else ""]
        for r in results
    ]


def _findings(out_dir: Path, results) -> list[dict]:
    """The findings of finished sections (their :data:`FINDINGS_FILE`), in section order;
    a file that cannot be read is skipped (the section's own files are still linked)."""
    out = []
    for r in results:
        for f in _shown(r, FINDINGS_FILE):
            try:
                data = json.loads((out_dir / f).read_text(encoding="utf-8"))
                tables = [
                    (str(t["caption"]), [str(h) for h in t["header"]],
                     [[str(c) for c in row] for row in t["rows"]])
                    for t in data.get("tables", [])
                ]  # fmt: skip
            except (OSError, ValueError, KeyError, TypeError):
                continue
            out.append({"title": str(data.get("title", r.title)), "tables": tables})
    return out


def render_markdown(out_dir: Path, results: Sequence[SectionResult], header: dict) -> str:
    """The report as Markdown (figures and tables referenced relative to ``out_dir``); it
    opens with the sections' findings (:data:`FINDINGS_FILE`)."""
    lines = ["# dsmtheory report", ""]
    found = _findings(Path(out_dir), results)
    if found:
        lines += ["## Findings", ""]
        for block in found:
            lines += [f"### {block['title']}", ""]
            for caption, head, body in block["tables"]:
                lines += [f"{caption}:", ""]
                lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                lines += ["| " + " | ".join(row) + " |" for row in body]
                lines.append("")
    for k, v in header.items():
        lines.append(f"- **{k}**: {v}")
    lines += ["", "## Summary", "", "| section | status | seconds | note |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in _summary_rows(results)]
    total = sum(r.seconds for r in results)
    lines += ["", f"Total time: {total:.1f} s.", ""]
    for r in results:
        lines += [f"## {r.title}", ""]
        if r.description:
            lines += [r.description, ""]
        lines += [f"Status: **{r.status}** ({r.seconds:.1f} s)."]
        if r.command:
            lines += ["", f"Command: `{r.command}`"]
        if r.error:
            lines += ["", "```", r.error, "```"]
        if r.stale:
            lines += ["", _STALE_TEXT.format(name=r.name)]
        if r.stdout.strip():
            lines += ["", "<details><summary>output</summary>", "", "```"]
            lines += [r.stdout.rstrip(), "```", "", "</details>"]
        for f in _shown(r, ".png"):
            lines += ["", f"![{f}]({f})"]
        for f, head, body, shown in _csv_tables(r, out_dir):
            lines += ["", f"Table [`{f}`]({f}) ({shown}):", ""]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(row) + " |" for row in body]
        others = [f for f in r.files if not f.endswith((".png", ".csv"))]
        if others:
            lines += ["", "Files: " + ", ".join(f"[`{f}`]({f})" for f in others)]
        lines.append("")
    return "\n".join(lines) + "\n"


def render_html(out_dir: Path, results: Sequence[SectionResult], header: dict) -> str:
    """The report as one self-contained HTML page (images linked relative to ``out_dir``)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>dsmtheory report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;"
        "padding:2px 6px;font-size:90%}img{max-width:100%}pre{background:#f4f4f4;"
        "padding:.5em;overflow-x:auto}.ok{color:#060}.failed,.interrupted{color:#b00}"
        "</style></head><body><h1>dsmtheory report</h1><ul>",
    ]
    found = _findings(Path(out_dir), results)
    if found:
        parts[-1] = parts[-1][: -len("<ul>")] + "<h2>Findings</h2>"
        for block in found:
            parts.append(f"<h3>{e(block['title'])}</h3>")
            for caption, head, body in block["tables"]:
                parts.append(f"<p>{e(caption)}:</p><table>")
                parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
                for row in body:
                    parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
                parts.append("</table>")
        parts.append("<ul>")
    parts += [f"<li><b>{e(str(k))}</b>: {e(str(v))}</li>" for k, v in header.items()]
    parts.append("</ul><h2>Summary</h2><table><tr><th>section</th><th>status</th>")
    parts.append("<th>seconds</th><th>note</th></tr>")
    for row, r in zip(_summary_rows(results), results, strict=True):
        cells = [e(row[0]), f"<span class='{r.status.replace(' ', '-')}'>{e(row[1])}</span>"]
        cells += [e(row[2]), e(row[3])]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(f"</table><p>Total time: {sum(r.seconds for r in results):.1f} s.</p>")
    for r in results:
        parts.append(f"<h2>{e(r.title)}</h2>")
        if r.description:
            parts.append(f"<p>{e(r.description)}</p>")
        parts.append(f"<p>Status: <b class='{r.status}'>{e(r.status)}</b> ({r.seconds:.1f} s)</p>")
        if r.command:
            parts.append(f"<p>Command: <code>{e(r.command)}</code></p>")
        if r.error:
            parts.append(f"<pre>{e(r.error)}</pre>")
        if r.stale:
            parts.append(f"<p>{e(_STALE_TEXT.format(name=r.name))}</p>")
        if r.stdout.strip():
            parts.append(f"<details><summary>output</summary><pre>{e(r.stdout)}</pre></details>")
        for f in _shown(r, ".png"):
            parts.append(f"<p><img src='{e(f)}' alt='{e(f)}'></p>")
        for f, head, body, shown in _csv_tables(r, out_dir):
            parts.append(f"<p>Table <a href='{e(f)}'>{e(f)}</a> ({shown}):</p><table>")
            parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
            for row in body:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        others = [f for f in r.files if not f.endswith((".png", ".csv"))]
        if others:
            links = ", ".join(f"<a href='{e(f)}'>{e(f)}</a>" for f in others)
            parts.append(f"<p>Files: {links}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
