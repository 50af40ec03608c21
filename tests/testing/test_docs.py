"""docs/testing.md stays true: its Python blocks run, every message and output it shows is
what the kit prints now (numbers to 3 significant digits; residuals at rounding level, below
1e-9, compare equal), and its property tests pass."""

import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from dsmtheory.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "testing.md").read_text()
BLOCK = re.compile(r"(<!-- (kit-[a-z]+) -->\n)?```(\w+)\n(.*?)```", re.S)
NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _same(shown: str, got: str) -> bool:
    a, b = shown.strip().splitlines(), got.strip().splitlines()
    if len(a) != len(b):
        return False
    for la, lb in zip(a, b, strict=True):
        if NUM.sub("#", la).split() != NUM.sub("#", lb).split():
            return False
        for x, y in zip(NUM.findall(la), NUM.findall(lb), strict=True):
            fx, fy = float(x), float(y)
            if abs(fx) < 1e-9 and abs(fy) < 1e-9:
                continue
            if abs(fx - fy) > 1e-3 * max(abs(fx), abs(fy)):
                return False
    return True


def _blocks():
    return [(m.group(2), m.group(3), m.group(4)) for m in BLOCK.finditer(DOC)]


WRONG_VARIANTS = [
    "min_snr_v_eps_formula",
    "min_snr_v_plus_one",
    "min_snr_v_snr_plus_one",
    "min_snr_x0_eps_formula",
    "min_snr_eps_max",
    "debiased_v_eps_formula",
    "soft_min_snr_f_kdiffusion",
]


def test_the_page_has_what_the_issue_asks_for():
    blocks = _blocks()
    kinds = [k for k, _, _ in blocks]
    assert kinds.count("kit-message") >= 8 and "kit-output" in kinds and "kit-command" in kinds
    # every wrong variant of the bug zoo is run on the page, with its message shown
    pairs = zip(blocks[:-1], blocks[1:], strict=True)
    caught = [code for (_, _, code), nxt in pairs if nxt[0] == "kit-message"]
    for name in WRONG_VARIANTS:
        assert any(f"zoo.{name}," in c for c in caught), name
    assert '--8<-- "tests/testing/bug_zoo.py"' in DOC
    prop = next(code for _, lang, code in _blocks() if "test_soft_min_snr_is_smoothed_kl" in code)
    assert len(prop.strip().splitlines()) <= 10


@pytest.mark.slow
def test_docs_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "testing"))
    ns: dict = {"__name__": "docs_testing"}
    blocks = _blocks()
    i = 0
    while i < len(blocks):
        kind, lang, code = blocks[i]
        nxt = blocks[i + 1] if i + 1 < len(blocks) else (None, None, None)
        if lang == "python" and "--8<--" not in code:
            out = io.StringIO()
            if nxt[0] == "kit-message":
                with pytest.raises(AssertionError) as info:
                    exec(compile(code, "docs/testing.md", "exec"), ns)
                assert _same(nxt[2], str(info.value)), str(info.value)
                i += 1
            else:
                with contextlib.redirect_stdout(out):
                    exec(compile(code, "docs/testing.md", "exec"), ns)
                if nxt[0] == "kit-output":
                    assert _same(nxt[2], out.getvalue()), out.getvalue()
                    i += 1
        elif kind == "kit-command":
            first, *rest = code.strip().splitlines()
            assert first.startswith("$ dsmtheory ")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(shlex.split(first[len("$ dsmtheory ") :])) == 0
            assert _same("\n".join(rest), out.getvalue()), out.getvalue()
        i += 1
    tests = [v for k, v in ns.items() if k.startswith("test_") and callable(v)]
    assert len(tests) >= 2
    for t in tests:  # the page's property tests, with a small budget here
        settings(max_examples=5)(t)()
    assert os.path.exists("weights.csv")
    assert "bug_zoo" in sys.modules
