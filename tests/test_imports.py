"""Imports flow one way: the functional core needs torch only, and the command line and registry start without it.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds everything).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_functional_core_imports_neither_monai_nor_ignite_nor_the_upper_layers():
    loaded = _modules_after("import monai_kcross.functional")
    assert "torch" in loaded
    upper = {"ignite", "monai", "monai_kcross.handlers", "monai_kcross.metrics", "monai_kcross.analysis"}
    assert not upper & loaded, sorted(upper & loaded)


@pytest.mark.parametrize(
    "statement",
    [
        "import monai_kcross; [info.name for info in monai_kcross.list_metrics()]",
        "import monai_kcross.registry as r; r.get_metric_info('ssim').direction",
        "from monai_kcross.cli import build_parser; build_parser().format_help()",
    ],
)
def test_the_registry_and_the_command_line_start_without_torch(statement):
    assert "torch" not in _modules_after(statement)


# ------------------------------------------------------------------------------------------ static import graph

PACKAGE = Path(__file__).resolve().parents[1] / "monai_kcross"
#: the layers of docs/architecture.md, lowest first; an import may point to its own layer or a lower one
LAYERS = {
    "functional": 0,
    "progress": 0,
    "networks": 1,
    "transforms": 1,
    "perceptual": 2,
    "features": 2,
    "data": 2,
    "metrics": 3,
    "handlers": 4,
    "losses": 4,
    "training": 5,
    "analysis": 5,
    "bundles": 5,
    "cli": 6,
    "__main__": 6,
}
#: upward imports still in the code (function-level), each with its reason; the list may only shrink
KNOWN_UPWARD = {("functional", "networks"): "functional/segmentation.py loads the package's default segmenter"}


def _imports() -> list[tuple[str, str, bool, str]]:
    """Every import of a package module by another: (importer, imported, at module level, place)."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if parts[-1] == "__init__" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = (
                    [".".join([*base, node.module])] if node.module else [".".join([*base, a.name]) for a in node.names]
                )
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("monai_kcross."):
                    found.append((module, name, id(node) in top, f"{path.relative_to(PACKAGE)}:{node.lineno}"))
    return found


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "<root>"


def test_imports_point_down_the_layers():
    upward = {}
    for importer, imported, _, place in _imports():
        a, b = _layer(importer), _layer(imported)
        if a in LAYERS and b in LAYERS and LAYERS[b] > LAYERS[a]:
            upward.setdefault((a, b), []).append(place)
    unexplained = {pair: places for pair, places in upward.items() if pair not in KNOWN_UPWARD}
    assert not unexplained, f"imports up the layers (see docs/architecture.md): {unexplained}"
    assert set(KNOWN_UPWARD) <= set(upward), "a known upward import is gone: remove it from KNOWN_UPWARD"


def test_no_import_cycles_between_modules():
    """Module-level imports form no cycle (a module importing the package it belongs to is not counted: Python
    has that package initialised, or initialising, first)."""
    graph: dict[str, set[str]] = {}
    for importer, imported, top_level, _ in _imports():
        if top_level and not importer.startswith(imported + "."):
            graph.setdefault(importer, set()).add(imported)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*trail[trail.index(nxt) :], nxt])}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
