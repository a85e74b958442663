"""Imports flow one way: the functional core needs torch only, and the command line and registry start without it.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds everything).
"""

from __future__ import annotations

import json
import subprocess
import sys

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
