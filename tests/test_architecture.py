"""The layering rules of docs/ARCHITECTURE.md, checked on the source's import graph.

* the core (``dynprobe`` minus ``dynprobe.plugins``) imports no plugin, not even lazily;
* a plugin imports the core and never another plugin (shared numerics belong in the core);
* module-level imports form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "dynprobe"
PLUGINS = "dynprobe.plugins"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(module: str, package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Every dynprobe module ``path`` imports (``from pkg import name`` counts ``pkg.name`` when
    that is a module). ``top_level_only``: skip imports inside functions and TYPE_CHECKING."""
    module, package = _module_name(path), _is_package(path)
    found: set[str] = set()

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or _type_checking(child)
            if isinstance(child, ast.Import) and not (top_level_only and nested):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and not (top_level_only and nested):
                target = _resolve(module, package, child)
                found.add(target)
                found.update(f"{target}.{a.name}" for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    known = {_module_name(p) for p in ROOT.rglob("*.py")}
    return {name for name in found if name in known and name != module}


SOURCES = sorted(ROOT.rglob("*.py"))


def _plugin_of(module: str) -> str | None:
    if not module.startswith(PLUGINS + "."):
        return None
    return module.split(".")[2]


@pytest.mark.parametrize("path", [p for p in SOURCES if _plugin_of(_module_name(p)) is None
                                  and _module_name(p) != PLUGINS], ids=lambda p: _module_name(p))
def test_the_core_imports_no_plugin(path):
    bad = sorted(m for m in imports(path, top_level_only=False) if m.startswith(PLUGINS))
    assert not bad, f"{_module_name(path)} imports plugins {bad}"


@pytest.mark.parametrize("path", [p for p in SOURCES if _plugin_of(_module_name(p))], ids=lambda p: _module_name(p))
def test_a_plugin_imports_no_other_plugin(path):
    own = _plugin_of(_module_name(path))
    bad = sorted(m for m in imports(path, top_level_only=False) if _plugin_of(m) not in (None, own))
    assert not bad, f"{_module_name(path)} (plugin {own!r}) imports {bad}; move shared code into the core"


def test_module_level_imports_have_no_cycle():
    graph = {_module_name(p): imports(p, top_level_only=True) for p in SOURCES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # a package importing its own submodule is how packages re-export, not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if state.get(name) is None and (cycle := dfs(name)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_a_plugin_import(tmp_path):
    """The rules could fail: a lazy plugin import inside a core function is found."""
    fake = ROOT / "_import_graph_probe.py"
    try:
        fake.write_text("def f():\n    from dynprobe.plugins.lyapunov import lyapunov\n")
        assert "dynprobe.plugins.lyapunov" in imports(fake, top_level_only=False)
        assert "dynprobe.plugins.lyapunov" not in imports(fake, top_level_only=True)
    finally:
        fake.unlink()
