"""The house's layering, checked from the source, type-hint imports included.

Libraries, bottom to top — each imports only from its own layer and those below:

0. ``safe_io``: untrusted input and files (decoder, ImageNet readers, paths, storage);
1. ``scaled_models``: Table 7, architectures, weight families, weights, the zoo;
2. ``cam``: methods, engine, figure, rendering, metrics, statistics, evaluation, report.

Applications sit on top and may use every library: the app (``app``), the command lines
(``cam.cli``, ``cam.__main__``, ``scaled_models.__main__``), the trainer
(``scaled_models.train``: the one part of ``scaled_models`` that uses ``cam``) and the
benchmarks (``benchmarks``). No library imports an application. Between applications only two
edges exist: ``python -m cam bench`` hosts the benchmarks, and the serve benchmark reads the
labels the app exports. No import cycle between modules, not even one made of imports under
``if TYPE_CHECKING:`` (a circle for the type checker is a circle for the reader).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

LIBRARIES = ("safe_io", "scaled_models", "cam")  # bottom to top
APPLICATIONS = {  # group → module prefixes
    "app": ("app",),
    "cam-cli": ("cam.cli", "cam.__main__"),
    "models-cli": ("scaled_models.__main__",),
    "trainer": ("scaled_models.train",),
    "benchmarks": ("benchmarks",),
}
APPLICATION_EDGES = {("cam-cli", "benchmarks"), ("benchmarks", "app")}
PACKAGES = LIBRARIES + ("app", "benchmarks")
APP_ONLY_PACKAGES = ("streamlit", "selenium")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path = REPO, project_only: bool = True) -> dict[str, set[str]]:
    """module → the project modules it imports (absolute or relative, anywhere in the file,
    ``TYPE_CHECKING`` blocks and function bodies included); with ``project_only=False``, every
    name it imports, third-party packages too."""
    graph = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = _module_name(path, root)
            here = name if path.name == "__init__.py" else name.rpartition(".")[0]
            found = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        anchor = here.split(".")[:len(here.split(".")) - node.level + 1]
                        base = ".".join(anchor + ([base] if base else []))
                    found.add(base)
                    found |= {f"{base}.{alias.name}" for alias in node.names}
            graph[name] = {m for m in found
                           if m.split(".")[0] in PACKAGES or not project_only}
    if not project_only:
        return graph
    modules = set(graph)
    return {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}


def application_of(module: str) -> str | None:
    for group, prefixes in APPLICATIONS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return group
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points up, or from a library into an application, or between
    applications other than the allowed edges."""
    found = []
    for module, deps in sorted(graph.items()):
        group = application_of(module)
        for dep in sorted(deps):
            dep_group = application_of(dep)
            if group is None and dep_group is not None:
                found.append(f"library {module} imports application {dep}")
            elif group is None and (LIBRARIES.index(dep.split(".")[0])
                                    > LIBRARIES.index(module.split(".")[0])):
                found.append(f"{module} imports {dep}, a layer above it")
            elif (group and dep_group and group != dep_group
                  and (group, dep_group) not in APPLICATION_EDGES):
                found.append(f"application {module} imports application {dep}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """One cycle per strongly connected group of modules (Tarjan), as 'a -> b -> a'."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for dep in sorted(graph[module]):
            if dep not in index:
                connect(dep)
                low[module] = min(low[module], low[dep])
            elif dep in on_stack:
                low[module] = min(low[module], index[dep])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(" -> ".join(sorted(group) + [sorted(group)[0]]))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return found


def test_every_package_is_placed():
    """A new top-level package must be given its place here before it can hide from the test."""
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"tests"} == set(PACKAGES)


def test_layers_point_one_way():
    assert layer_violations(imports()) == []


def test_no_library_knows_the_app():
    """Serving pages and driving browsers is the applications' business: a library module that
    imports Streamlit or selenium is an application (a benchmark, a view) in the wrong house."""
    found = {module: sorted(n for n in names if n.split(".")[0] in APP_ONLY_PACKAGES)
             for module, names in imports(project_only=False).items()
             if application_of(module) is None}
    assert {module: names for module, names in found.items() if names} == {}


def test_no_import_cycle_between_modules():
    assert cycles(imports()) == []


def test_the_checks_see_type_checking_imports_and_cycles(tmp_path):
    """The checks themselves, on a tiny tree whose faults are known: a cycle made only of a
    type-hint import, and a library importing upward and into an application."""
    files = {
        "safe_io/__init__.py": "",
        "safe_io/disk.py": "from scaled_models import zoo\n",
        "scaled_models/__init__.py": "",
        "scaled_models/zoo.py": "from . import family\n",
        "scaled_models/family.py": ("from typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from .zoo import Zoo\n"),
        "cam/__init__.py": "",
        "cam/engine.py": "from app import main\n",
        "app/__init__.py": "",
        "app/main.py": "from cam import engine\n",
        "benchmarks/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = imports(tmp_path)
    assert cycles(graph) == ["app.main -> cam.engine -> app.main",
                             "scaled_models.family -> scaled_models.zoo -> scaled_models.family"]
    assert layer_violations(graph) == [
        "library cam.engine imports application app",
        "library cam.engine imports application app.main",
        "safe_io.disk imports scaled_models, a layer above it",
        "safe_io.disk imports scaled_models.zoo, a layer above it"]


@pytest.mark.parametrize("module, group", [
    ("app.main", "app"), ("cam.cli", "cam-cli"), ("scaled_models.__main__", "models-cli"),
    ("scaled_models.train.fixres", "trainer"), ("benchmarks.serve", "benchmarks"),
    ("cam.engine", None), ("scaled_models.zoo", None), ("safe_io.paths", None)])
def test_applications_are_named_by_module(module, group):
    assert application_of(module) == group
