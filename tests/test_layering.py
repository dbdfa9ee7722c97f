"""The house's layering, checked from the source, type-hint imports included.

Libraries, bottom to top — each imports only from its own layer and those below:

0. ``safe_io``: untrusted input and files (decoder, ImageNet readers, paths, storage);
1. ``scaled_models``: Table 7 and the paper's rows, ladders, architectures, weight families,
   weights, the zoo;
2. ``cam.engine``: computing maps (methods, targets, inputs, the engine, geometry, the figure);
3. ``cam.eval``: measuring them (metrics, statistics, agreement, runs, summaries, sanity);
4. ``cam.render``: drawing and formatting them (grid, exports, report, text, plots);
5. ``cam.notebook``: the notebook's entry to all three.

Applications sit on top and may use every library: the app (``app``), the command lines
(``cam.cli`` and ``cam.__main__``; ``scaled_models.cli`` and ``scaled_models.__main__``, which
hold every argparse piece the command lines share), the trainer (``scaled_models.train``) and
the benchmarks (``benchmarks``). No library imports an application, argparse, Streamlit or
selenium. Between applications only these edges exist: every command line builds on
``scaled_models.cli``, ``python -m cam bench`` hosts the benchmarks, and the serve benchmark
reads the labels the app exports. No import cycle between modules, not even one made of imports
under ``if TYPE_CHECKING:`` (a circle for the type checker is a circle for the reader).
``TREE`` lists every module with its place, so the folders say what they hold and a new module
must be given its place.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

# bottom to top; a module's layer is the longest prefix that names it
LIBRARIES = ("safe_io", "scaled_models", "cam.engine", "cam.eval", "cam.render", "cam.notebook")
APPLICATIONS = {  # group → module prefixes
    "app": ("app",),
    "cam-cli": ("cam.cli", "cam.__main__"),
    "models-cli": ("scaled_models.cli", "scaled_models.__main__"),
    "trainer": ("scaled_models.train",),
    "benchmarks": ("benchmarks",),
}
APPLICATION_EDGES = {("cam-cli", "models-cli"), ("trainer", "models-cli"),
                     ("benchmarks", "models-cli"), ("cam-cli", "benchmarks"),
                     ("benchmarks", "app")}
PACKAGES = ("safe_io", "scaled_models", "cam", "app", "benchmarks")
APP_ONLY_PACKAGES = ("streamlit", "selenium", "argparse")
# Every module, by folder, and what it is there for: a new module is placed here first.
TREE = {
    "safe_io": "untrusted input and files: heavy (one memory-heavy step at a time), imagenet "
               "(classes), imagenet_val (val folders, Box), images (the decoder), paths "
               "(allowed roots), storage (atomic writes, free space), digest_store (computed "
               "maps on disk)",
    "scaled_models": "models: table7, paper (printed rows), ladders, architectures, family, "
                     "efficientnet, lite, resnet (families), brought (your models), files, "
                     "checkpoint_meta, weights, "
                     "preprocessing, devices, provenance, zoo, expand, derived_facts, "
                     "distributed; __main__ (python -m scaled_models)",
    "scaled_models.cli": "application: the shared model options, argtypes, the table command",
    "scaled_models.train": "application: the trainer: cli, config, data, recipes, teachers, "
                           "run, loop, fixres, judge, evaluation, save, state, epoch_log, "
                           "variants, __main__",
    "cam": "the CAM library's lazy public names; __main__ (python -m cam)",
    "cam.engine": "compute: methods, targets, inputs, engine, cache, fold, heap, maps, geometry, "
                  "figure, cascade",
    "cam.eval": "measure: metrics (base, localization, pointing, energy, faithfulness, "
                "similarity), stats, agreement, rows, layout, chunked, run, summary, sanity, "
                "sanity_run, sanity_summary, map_export",
    "cam.render": "draw and format: style, overlay, typeset, grid, export, manifest, report, "
                  "summary_text, summary_plots, sanity_text, sanity_plots",
    "cam.notebook": "the notebook's entry: compare, cascade",
    "cam.cli": "application: main, args, figure, evaluate, report, bench",
    "app": "application: the Streamlit page: main, session, warm_up, page, sidebar, "
           "images_view, maps_view, "
           "inspect_view, evaluate_view, export_view, sanity_view, resources, engines, settings, "
           "labels, text, plots, memory, threads",
    "benchmarks": "application: engine, first_grid, serve, launch",
}


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


def layer_of(module: str) -> int:
    """Index in ``LIBRARIES`` of the longest prefix naming ``module`` (``cam`` itself, whose
    names are lazy, sits below its sub-packages)."""
    matches = [i for i, layer in enumerate(LIBRARIES)
               if module == layer or module.startswith(layer + ".")]
    return max(matches, key=lambda i: len(LIBRARIES[i])) if matches else LIBRARIES.index(
        "scaled_models")


def folder_of(module: str) -> str:
    """The ``TREE`` entry that holds ``module``: its longest listed prefix."""
    listed = [f for f in TREE if module == f or module.startswith(f + ".")]
    return max(listed, key=len)


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
            elif group is None and layer_of(dep) > layer_of(module):
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
    """Serving pages, driving browsers and parsing command lines is the applications' business:
    a library module that imports Streamlit, selenium or argparse is an application (a
    benchmark, a view, a command) in the wrong house."""
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
    ("app.main", "app"), ("cam.cli.main", "cam-cli"), ("scaled_models.__main__", "models-cli"),
    ("scaled_models.cli.argtypes", "models-cli"), ("scaled_models.train.fixres", "trainer"),
    ("benchmarks.serve", "benchmarks"), ("cam.engine.engine", None),
    ("scaled_models.zoo", None), ("safe_io.paths", None)])
def test_applications_are_named_by_module(module, group):
    assert application_of(module) == group


def test_every_module_is_listed_in_the_tree_with_its_place():
    """Each folder's entry names every module it holds (so the tree reads as the README's
    layout, and a module put in the wrong folder shows as missing from its entry)."""
    unlisted = []
    for module in imports():
        folder = folder_of(module)
        name = module[len(folder) + 1:].split(".")[0] if module != folder else ""
        if name and name not in re.split(r"[\s,;:()]+", TREE[folder]):
            unlisted.append(f"{module} (in {folder})")
    assert unlisted == []


@pytest.mark.slow
def test_the_libraries_install_and_the_applications_do_not(tmp_path):
    """The wheel's top-level packages are the three libraries (the CLI and the trainer ride in
    them, with their console scripts); the app and the benchmarks run from the checkout."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "checkout"  # a copy: building writes build/ and *.egg-info beside it
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(source)], check=True, timeout=600,
                   capture_output=True)
    wheel = next(tmp_path.glob("scalecam-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"cam", "safe_io", "scaled_models"}
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "scalecam = cam.cli.main:main" in scripts
    assert "scalecam-train = scaled_models.train.cli:main" in scripts


@pytest.mark.parametrize("module", ["cam.eval.stats", "cam.eval.metrics", "cam"])
def test_a_pure_helper_loads_no_torch(module):
    """Importing numpy-only helpers (statistics, metrics) or the package's lazy names costs no
    torch (seconds on a small CPU), in a fresh interpreter."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules, 'cv2' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=True)
    assert run.stdout.split()[0] == "False"
