"""The package's structure, checked by parsing it (DESIGN.md "Layers"; issue 12 item 4).

* No import circle between dsmtheory's modules (imports inside functions count too: a lazy
  import only hides a circle).
* No private reach: no module imports or uses another module's underscore names, except
  from private helper modules (``_*.py``), which exist to be shared.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "dsmtheory"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in ROOT.rglob("*.py")}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return (ROOT.parent / name.replace(".", "/") / "__init__.py").exists()


def _resolve(current: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not _is_package(current):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, tree: ast.Module):
    """``(target module, imported name or None, node)`` for every import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from . import optimal`: the module itself
                    yield sub, None, node
                else:
                    yield target, alias.name, node


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for name, tree in MODULES.items():
        for target, _, _ in _imports(name, tree):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_the_parser_sees_the_package():
    assert "dsmtheory.expectations" in MODULES and "dsmtheory.cli" in MODULES
    assert "dsmtheory.variance" in _graph()["dsmtheory.optimal"]


def test_no_import_circles():
    graph = _graph()
    # importing a package's __init__ from inside that package is how sub-modules reach
    # their siblings' re-exports; such an edge to one's own parent package is not a circle
    # of concepts, so it is left out
    for name in graph:
        graph[name] -= _parents(name)
    seen, cycles = set(), []

    def visit(node, path, on_path):
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, path + [nxt], on_path | {nxt})

    for start in sorted(graph):
        if start not in seen:
            seen.add(start)
            visit(start, [start], {start})
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles[:10])


def _private_module(target: str) -> bool:
    return target.split(".")[-1].startswith("_") and not target.endswith("__init__")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_reach(name):
    """``from other import _name`` and ``other._name`` are refused unless ``other`` is a
    private helper module (``_x.py``) or the module itself."""
    tree = MODULES[name]
    bad = []
    aliases = {}  # local name -> module it refers to
    for target, imported, node in _imports(name, tree):
        if not target.startswith("dsmtheory"):
            continue
        if imported is None:
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[-1]
                aliases[local] = target
            continue
        if imported.startswith("_") and not imported.startswith("__"):
            if target != name and not _private_module(target):
                bad.append(f"line {node.lineno}: from {target} import {imported}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            target = aliases[node.value.id]
            if target != name and not _private_module(target):
                bad.append(f"line {node.lineno}: {node.value.id}.{node.attr} ({target})")
    assert not bad, f"{name} reaches into private names:\n" + "\n".join(bad)
