"""DESIGN.md's contract block, run verbatim in a fresh interpreter.

The block in ``../shared/DESIGN.md`` ("The contract") is the public API other tools rely on.
It is read from the file at test time (never copied here), its free names are bound to small
values, each ``...`` placeholder is replaced by a value chosen from its keyword, and the whole
block runs in a subprocess, so no import made by another test can mask a missing attribute.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DESIGN = Path(__file__).resolve().parents[2] / "shared" / "DESIGN.md"

# values for the free names of the block (plain data; the block itself imports dsmtheory)
PREAMBLE = """
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
weights = np.array([0.3, 0.7])
means = np.array([[-1.0, 0.5], [1.0, -0.25]])
covs = np.array([[[0.5, 0.1], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.4]]])
x = np.array([[0.1, 0.2], [-0.3, 0.4], [1.5, -2.0]])
x_t = x
y = x[::-1] + 0.5
key = jax.random.PRNGKey(0)
n = 16
alpha, sigma = 0.8, 0.6
lam = np.linspace(-4.0, 4.0, 9)
params = {}
factors = np.array([[[1.0], [0.5]], [[0.2], [-0.3]]])
diag = np.array([[0.1, 0.2], [0.3, 0.0]])
data = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (64, 2)))
def predict_x0(x_t, alpha, sigma):
    return dsm.posterior_mean(gm, x_t, alpha, sigma)
from sklearn.mixture import GaussianMixture as _SkGM
model = _SkGM(2, covariance_type="full", random_state=0).fit(data)
"""

# the keyword of each `...` placeholder -> the expression put in its place
PLACEHOLDERS = {
    "key": "jax.random.PRNGKey(2)",
    "num_samples": "64",
    "num_bins": "16",
    "lam_range": "(-8.0, 8.0)",
    "decay": "0.9",
}

# `name` means a different registry in different lines: the registry each line reads
NAME_FOR = {"weightings": '"edm"', "schedules": '"vp_linear"'}


def _contract_block() -> str:
    text = DESIGN.read_text(encoding="utf-8")
    m = re.search(r"## The contract.*?```python\n(.*?)```", text, re.S)
    assert m, f"no ```python block under '## The contract' in {DESIGN}"
    return m.group(1)


class _Fill(ast.NodeTransformer):
    def visit_keyword(self, node: ast.keyword) -> ast.keyword:
        if isinstance(node.value, ast.Constant) and node.value.value is Ellipsis:
            assert node.arg in PLACEHOLDERS, f"no value for the placeholder {node.arg}=..."
            node.value = ast.parse(PLACEHOLDERS[node.arg], mode="eval").body
        return node


def _program(block: str) -> str:
    tree = _Fill().visit(ast.parse(block))
    lines = []
    for stmt in tree.body:
        src = ast.unparse(stmt)
        for registry, value in NAME_FOR.items():
            if f"dsm.{registry}." in src:
                lines.append(f"name = {value}")
        lines.append(src)
        if isinstance(stmt, ast.Import | ast.ImportFrom) and "dsmtheory" in src:
            lines.append(PREAMBLE)
    # every top-level expression's value must exist and be finite where it is numeric
    body = "\n".join(lines)
    return body + "\nprint('CONTRACT-OK')\n"


@pytest.mark.slow
def test_contract_block_runs_verbatim_in_a_fresh_interpreter(tmp_path):
    assert DESIGN.exists(), f"{DESIGN} is missing (the repository's ../shared/ folder)"
    program = _program(_contract_block())
    # the block's first line is `import dsmtheory as dsm`; the preamble follows it
    assert program.lstrip().startswith("import dsmtheory as dsm"), program[:200]
    env = dict(os.environ, DSMTHEORY_CACHE_DIR=str(tmp_path), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"contract block failed:\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip().endswith("CONTRACT-OK")


def test_every_module_named_in_the_layers_is_an_attribute():
    """Each ``name.py`` / ``name/`` of DESIGN.md's layer diagram is reachable from
    ``import dsmtheory as dsm`` in a fresh interpreter (cli, private modules excepted)."""
    text = DESIGN.read_text(encoding="utf-8")
    layers = re.search(r"## Layers.*?```\n(.*?)```", text, re.S).group(1)
    names = set()
    for line in layers.splitlines():
        left = line[:29]
        names |= set(re.findall(r"\b([a-z][a-z_]*)(?:\.py|/)", left))
    names -= {"cli"}
    assert {"mixture", "optimal", "train", "targets", "testing"} <= names, names
    code = (
        "import json, dsmtheory as dsm\n"
        f"names = {sorted(names)!r}\n"
        "print(json.dumps([n for n in names if not hasattr(dsm, n)]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
