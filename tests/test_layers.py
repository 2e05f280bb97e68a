"""The package's shape: imports go one way down the layers that README's Layout table and
docs/INTERFACES.md name, and project modules are imported at module top (lazy loads only where a
comment says why)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Highest first; a module may import its own layer and any layer below it.
LAYERS = ("cli", "training", "evaluation", "data_synth", "objectives", "rewards", "plugins", "selection",
          "features", "agents", "core")
FOLDERS = {"agents": "agents", "rewards": "rewards", "data_synth": "data_synth"}
# Functions whose project imports are deliberate lazy loads (argument parsing before torch loads).
LAZY_OK = {"tspo/cli", "tspo/selection/clips.py"}


def _files() -> list[Path]:
    return [p for top in ("tspo", *FOLDERS) for p in (ROOT / top).rglob("*.py")]


def _layer_of_module(name: str) -> str:
    parts = name.split(".")
    if len(parts) < 2:
        return "core"
    return parts[1] if parts[1] in LAYERS else "core"


def _layer_of_file(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] in FOLDERS:
        return rel[0]
    if rel == ("tspo", "__main__.py"):  # `python -m tspo` is the command line
        return "cli"
    return rel[1] if len(rel) > 2 and rel[1] in LAYERS else "core"


def _project_imports(tree: ast.AST, path: Path):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                yield node, "relative"
            elif (node.module or "").startswith("tspo"):
                yield node, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tspo"):
                    yield node, alias.name


def test_imports_go_down_the_layers_only():
    upward = []
    for path in _files():
        here = LAYERS.index(_layer_of_file(path))
        tree = ast.parse(path.read_text())
        for node, name in _project_imports(tree, path):
            if name == "relative":
                continue  # inside its own package
            if name == "tspo":  # the package root: only the version and the lazy public names
                continue
            there = LAYERS.index(_layer_of_module(name))
            if there < here:
                upward.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert upward == [], "imports up the layers:\n" + "\n".join(upward)


def test_project_modules_are_imported_at_module_top():
    inside = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        if any(rel.startswith(ok) for ok in LAZY_OK):
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                inside += [f"{rel}:{node.lineno} {name}" for node, name in _project_imports(fn, path)]
    assert inside == [], "project imports inside functions (move them to the top):\n" + "\n".join(inside)
