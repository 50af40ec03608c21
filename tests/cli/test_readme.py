"""The README's two commands and its example stay true, and CI runs the README's command."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MARK_OPEN, MARK_CLOSE = "<!-- test-command -->", "<!-- /test-command -->"


def test_exactly_one_test_command_between_markers():
    assert README.count(MARK_OPEN) == 1 and README.count(MARK_CLOSE) == 1
    block = README.split(MARK_OPEN)[1].split(MARK_CLOSE)[0]
    lines = [ln for ln in block.strip().splitlines() if not ln.startswith("```")]
    assert len(lines) == 1, lines
    assert "pytest" in lines[0] and "pip install" in lines[0]


def test_ci_script_extracts_the_readme_markers():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci and "/test-command" in ci
    assert "mkdocs build --strict" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_main_job_command_names_an_existing_subcommand():
    block = README.split("Install and run the main job")[1].split("```bash")[1].split("```")[0]
    cmd = block.strip()
    assert cmd.startswith("pip install .")
    sub = re.search(r"dsmtheory (\S+)", cmd).group(1)
    from dsmtheory.cli import build_parser

    parser, handlers = build_parser()
    assert sub in handlers, f"README main job uses unknown subcommand {sub!r}"


def test_readme_python_example_runs():
    code = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "(5, 2) (5, 2, 2)" in proc.stdout
