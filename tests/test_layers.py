"""The package's layers, read from its imports with `ast`: no cycle, and no import that climbs.

`harvest/` may import `graph/`, `lake/` and `catalog/`; `graph/` and `lake/` never import `harvest/`
or each other; the shared top modules (`config`, `models`) and `catalog/` import no layer; the
simulator imports nothing of the harvester outside itself. Imports inside functions count too: a
deferred import still ties the modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "harvester"

# What each room may import, besides itself. Modules at the top (cli, progress, __init__) may
# import anything below them; they are the roof.
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "config": {"models", "catalog"},
    "catalog": set(),
    "graph": {"models", "config", "catalog"},
    "lake": {"models", "config"},
    "harvest": {"models", "config", "catalog", "graph", "lake"},
    "simulator": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    return _imports_of(
        path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py"
    )


def _imports_of(source: str, name: str, *, is_package: bool) -> set[str]:
    """The harvester modules a module's source imports (absolute or relative), as dotted names."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "harvester")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "harvester":
                continue
            found.add(module)
            # `from harvester.lake import sink` imports the module harvester.lake.sink.
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                if _path_of(candidate) is not None:
                    found.add(candidate)
    return {m for m in found if _path_of(m) is not None}


def _path_of(module: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _room(module: str) -> str | None:
    """The layer a module belongs to; None for the roof (cli, progress, the package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return parts[1] if parts[1] in ALLOWED else None


def test_the_graph_is_read() -> None:
    graph = _graph()
    # A few arrows that must be seen, so a broken reader cannot pass the other tests by seeing none.
    assert "harvester.graph.client" in graph["harvester.harvest.pipeline"]
    assert "harvester.lake.sink" in graph["harvester.harvest.pipeline"]
    assert "harvester.models" in graph["harvester.graph.client"]
    assert len(graph) > 50


def test_no_import_climbs_or_crosses() -> None:
    climbs = []
    for module, imported in _graph().items():
        room = _room(module)
        if room is None:
            continue
        for target in imported:
            target_room = _room(target)
            if target_room is None:
                climbs.append(f"{module} -> {target} (the roof)")
            elif target_room != room and target_room not in ALLOWED[room]:
                climbs.append(f"{module} -> {target}")
    assert climbs == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            # A package's __init__ importing its own modules is no cycle of theirs.
            if module == target or target.startswith(module + "."):
                continue
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from harvester.lake.sink import ParquetSink\n", {"harvester.lake.sink"}),
        ("from harvester.lake import sink\n", {"harvester.lake", "harvester.lake.sink"}),
        ("def f():\n    import harvester.graph.errors\n", {"harvester.graph.errors"}),
        ("from .usage import parse_usage\n", {"harvester.graph.usage"}),
        ("from ..models import Rows\n", {"harvester.models"}),
        ("import orjson\n", set()),
    ],
)
def test_imports_are_read(source: str, expected: set[str]) -> None:
    assert _imports_of(source, "harvester.graph.probe", is_package=False) == expected
