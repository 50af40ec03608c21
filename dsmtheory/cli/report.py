"""The report of ``dsmtheory reproduce``: run named sections, each in its own folder, and
write ``report.md`` and ``report.html`` with every figure and table.

A section is one analysis (a subcommand run with its own arguments). Sections run one
after another; each one's stdout is captured to ``<section>/stdout.txt``. A section that
raises or returns a non-zero status is recorded as failed (traceback in
``<section>/error.txt``) and the next section still runs. Ctrl-C stops the run: the
finished sections keep their files and the report is written with the interrupted and
unstarted sections marked. The report is rewritten (atomically) after every section, so
even a hard kill leaves a readable report of what finished. Every file is written whole or
not at all (:mod:`dsmtheory._io`).
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._io import atomic_write_text

__all__ = ["Section", "SectionResult", "run_sections", "render_markdown", "render_html"]

#: At most this many rows of a CSV are shown in the report; the full file is linked.
MAX_TABLE_ROWS = 12


@dataclass(frozen=True)
class Section:
    """One part of the report.

    Attributes:
        name: folder name and short key (``"optimal-c"``).
        title: heading in the report.
        run: ``run(out_dir) -> int`` does the work, writing files into ``out_dir``; a
            non-zero return value marks the section failed.
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
    ``not run``."""

    name: str
    title: str
    status: str
    seconds: float = 0.0
    error: str = ""
    stdout: str = ""
    command: str = ""
    description: str = ""
    files: list[str] = field(default_factory=list)


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


def run_sections(
    sections: Sequence[Section],
    out_dir: Path,
    *,
    header: dict | None = None,
    echo: bool = True,
    log=None,
) -> tuple[list[SectionResult], bool]:
    """Run ``sections`` in order into ``out_dir/<name>/`` and keep the report current.

    Args:
        sections: the sections to run.
        out_dir: the report folder.
        header: settings and versions shown at the top of the report.
        echo: pass each section's stdout through to the console as well.
        log: where progress lines go (default ``sys.stderr``).

    Returns:
        ``(results, interrupted)``.
    """
    log = sys.stderr if log is None else log
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [
        SectionResult(s.name, s.title, "not run", command=s.command, description=s.description)
        for s in sections
    ]
    interrupted = False
    for i, (sec, res) in enumerate(zip(sections, results, strict=True)):
        sec_dir = out_dir / sec.name
        sec_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{i + 1}/{len(sections)}] {sec.title} ...", file=log, flush=True)
        tee = _Tee(sys.stdout if echo else None)
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(tee):
                status = sec.run(sec_dir)
            res.status = "ok" if not status else "failed"
            if status:
                res.error = f"exited with status {status}"
        except KeyboardInterrupt:
            res.status = "interrupted"
            interrupted = True
        except SystemExit as exc:  # argparse inside a section
            res.status = "ok" if not exc.code else "failed"
            if exc.code:
                res.error = f"exited with status {exc.code}"
        except Exception as exc:  # a failing section must not stop the others
            res.status = "failed"
            res.error = f"{type(exc).__name__}: {exc}"
            atomic_write_text(sec_dir / "error.txt", traceback.format_exc())
        res.seconds = time.perf_counter() - t0
        res.stdout = tee.getvalue()
        if res.stdout:
            atomic_write_text(sec_dir / "stdout.txt", res.stdout)
        res.files = _section_files(out_dir, sec_dir)
        print(f"    {res.status} in {res.seconds:.1f} s", file=log, flush=True)
        write_report(out_dir, results, header or {})
        if interrupted:
            break
    write_report(out_dir, results, header or {})
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


def _csv_tables(r, out_dir: Path):
    """``(file, header, shown rows, "k of n rows")`` for each non-empty CSV of a section."""
    for f in r.files:
        if f.endswith(".csv"):
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
    if n > max_rows:  # first and last rows, evenly thinned in between
        step = max(1, n // max_rows)
        body = body[::step][:max_rows]
    return head, [[_short(v) for v in r] for r in body], n


def _short(v: str) -> str:
    try:
        f = float(v)
    except ValueError:
        return v
    if f == int(f) and abs(f) < 1e9 and "." not in v and "e" not in v.lower():
        return v
    return f"{f:.5g}"


def _summary_rows(results):
    return [
        [r.title, r.status, f"{r.seconds:.1f}", r.error.splitlines()[0] if r.error else ""]
        for r in results
    ]


def render_markdown(out_dir: Path, results: Sequence[SectionResult], header: dict) -> str:
    """The report as Markdown (figures and tables referenced relative to ``out_dir``)."""
    lines = ["# dsmtheory report", ""]
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
        if r.stdout.strip():
            lines += ["", "<details><summary>output</summary>", "", "```"]
            lines += [r.stdout.rstrip(), "```", "", "</details>"]
        for f in r.files:
            if f.endswith(".png"):
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
        if r.stdout.strip():
            parts.append(f"<details><summary>output</summary><pre>{e(r.stdout)}</pre></details>")
        for f in r.files:
            if f.endswith(".png"):
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
