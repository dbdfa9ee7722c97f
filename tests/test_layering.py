"""The house's layering, checked from the source: app → cam → scaled_models, no import cycle
between modules, and the trainer (an application on top of both) the one part of scaled_models
that uses cam."""
from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PACKAGES = ("app", "cam", "scaled_models")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for type hints only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports() -> dict[str, set[str]]:
    """module → the project modules it imports (absolute or relative)."""
    graph = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = _module_name(path)
            here = name if path.name == "__init__.py" else name.rpartition(".")[0]
            found = set()
            for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        anchor = here.split(".")[:len(here.split(".")) - node.level + 1]
                        base = ".".join(anchor + ([base] if base else []))
                    found.add(base)
                    found |= {f"{base}.{alias.name}" for alias in node.names}
            graph[name] = {m for m in found if m.split(".")[0] in PACKAGES}
    modules = set(graph)
    return {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}


def test_layers_point_one_way():
    graph = _imports()
    for module, deps in graph.items():
        top = module.split(".")[0]
        trainer = module.startswith("scaled_models.train")
        for dep in deps:
            assert not (top != "app" and dep.startswith("app")), (module, dep)
            if top == "scaled_models" and not trainer:
                assert not dep.startswith("cam"), (module, dep)
            if top == "cam":
                assert not dep.startswith("scaled_models.train"), (module, dep)


def test_no_import_cycle_between_modules():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in graph[module]:
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep] if dep in path else [module, dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if state.get(dep) is None:
                visit(dep, path + [dep])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
