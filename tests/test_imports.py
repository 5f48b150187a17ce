"""The package's import graph has no cycle, counting imports inside functions.

A cycle hidden in a function body still ties two modules together (each must know
the other's internals, and neither can be read or tested alone); only imports under
``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sessionware"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """The sessionware modules a module's code imports, wherever the import statement is."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sessionware"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sessionware"):
            base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {
        name: {m for m in _imports(ast.parse(path.read_text()), modules) if m != name}
        for name, path in files.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.rsplit(".", 1)[0] == node or node == "sessionware":
                continue  # a package importing its own submodules to re-export them
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = walk(start)
            if found:
                return found
    return None


def test_the_import_graph_is_found() -> None:
    """The scan sees the package's real edges (so an empty graph cannot pass the test)."""
    graph = _graph()
    assert "sessionware.auth.series" in graph["sessionware.auth.login"]
    assert "sessionware.auth.login" in graph["sessionware.remember"]


def test_no_import_cycle_in_the_package() -> None:
    """No module reaches itself through imports, function-level imports included."""
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


# -- no framework below the adapters ---------------------------------------------------

FRAMEWORKS = ("starlette", "fastapi", "flask")


def _framework_imports(tree: ast.AST) -> list[str]:
    """The framework modules a module's code imports, at any level but under TYPE_CHECKING."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        found.extend(n for n in names if n.split(".")[0] in FRAMEWORKS)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _neutral() -> list[str]:
    """auth (every module of the package) and remember-me: the layers that must serve
    any framework through the RequestView."""
    files = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return [*sorted(m for m in files if m.startswith("sessionware.auth")), "sessionware.remember"]


def _source(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_the_framework_scan_sees_imports() -> None:
    """The scan finds a framework import in a function and skips one under TYPE_CHECKING
    (so a scan that saw nothing could not pass the tests below)."""
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from starlette.types import Scope\n"
        "def f():\n    import fastapi.routing\n    from flask import g\n"
    )
    assert _framework_imports(ast.parse(code)) == ["fastapi.routing", "flask"]
    assert "sessionware.auth.login" in _neutral() and len(_neutral()) > 8
    assert _framework_imports(ast.parse(_source("sessionware.fastapi").read_text()))


def test_auth_and_remember_import_no_framework() -> None:
    """No module of sessionware.auth, nor sessionware.remember, imports Starlette, FastAPI
    or Flask, at module level or in a function (type names under TYPE_CHECKING only)."""
    offenders = {
        module: found
        for module in _neutral()
        if (found := _framework_imports(ast.parse(_source(module).read_text())))
    }
    assert offenders == {}


def test_what_auth_and_remember_import_imports_no_framework() -> None:
    """Nor does any sessionware module they import, directly or through others, so the
    rule cannot be sidestepped through a helper module."""
    graph = _graph()
    seen: set[str] = set()
    todo = list(_neutral())
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    offenders = {
        module: found
        for module in sorted(seen)
        if (found := _framework_imports(ast.parse(_source(module).read_text())))
    }
    assert offenders == {}
    assert "sessionware.session" in seen and "sessionware.request" in seen
