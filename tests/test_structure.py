"""The house: bench's rooms, and imports that only go down (no circles, no climbs).

Rooms in order, lowest first; a module may import its own room and the rooms below it.
Imports inside ``if TYPE_CHECKING:`` are for type checkers only and are not followed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("common", "spec", "tracking", "results", "run", "report", "commands", "cli")
TOP_FILES = {"__init__.py", "__main__.py", "cli.py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str) -> set[str]:
    """Every ``bench``/``zoo`` module ``path`` imports, at any depth, except for type checks."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _graph(top: str) -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in (ROOT / top).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        graph[name] = {m for m in _imports(path, name) if m in paths and m != name}
    return graph


def _level(module: str) -> int:
    """The room's place in ``ROOMS``: ``bench.results.stats`` -> 3; ``bench.cli`` and the
    package itself are the top."""
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 else "cli"
    return ROOMS.index(room) if room in ROOMS else ROOMS.index("cli")


def test_bench_top_level_holds_only_rooms_and_the_cli():
    files = {p.name for p in (ROOT / "bench").glob("*.py")}
    folders = {p.name for p in (ROOT / "bench").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert files <= TOP_FILES, f"modules outside a room: {sorted(files - TOP_FILES)}"
    assert folders == set(ROOMS) - {"cli"}


def test_imports_only_go_down():
    graph = _graph("bench")
    climbs = [f"{module} -> {dep}" for module, deps in graph.items() for dep in deps
              if dep != "bench" and _level(dep) > _level(module)]
    assert climbs == []


def test_no_import_circles():
    graph = {**_graph("bench"), **_graph("zoo")}
    # A package importing its own children is how it exports its face, not a circle.
    edges = {m: {d for d in deps if not (m and d.startswith(m + "."))}
             for m, deps in graph.items()}
    cycles, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*stack[stack.index(dep):], dep]))
            elif dep not in state:
                walk(dep, [*stack, dep])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert cycles == []


@pytest.mark.parametrize("forbidden", ["bench", "ray", "mlflow"])
def test_zoo_imports_no_bench_ray_or_mlflow(forbidden):
    offenders = sorted(
        _module_name(p) for p in (ROOT / "zoo").rglob("*.py")
        if any(m == forbidden or m.startswith(forbidden + ".")
               for m in _imports(p, _module_name(p))))
    assert offenders == []


def test_the_walker_sees_a_circle_and_a_climb(tmp_path):
    """The checks above can fail: a function-level import counts, a TYPE_CHECKING one does not."""
    code = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bench.run.sweep\n" \
           "def f():\n    from bench.run import sweep\n"
    path = tmp_path / "m.py"
    path.write_text(code)
    found = _imports(path, "bench.results.m")
    assert "bench.run.sweep" in found  # the function-level one
    path.write_text(code.replace("def f():\n    from bench.run import sweep\n", ""))
    assert _imports(path, "bench.results.m") == {"typing", "typing.TYPE_CHECKING"}


@pytest.mark.parametrize("room", [r for r in ROOMS if r != "cli"])
def test_each_room_exports_its_public_face_lazily(room):
    """``bench.<room>.<name>`` resolves for every exported name, and an unknown one is an
    AttributeError (a typo'd export fails here, not in a user's import)."""
    import importlib

    package = importlib.import_module(f"bench.{room}")
    for name in getattr(package, "__all__", ()):
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018
