"""The tutorial notebooks: stored without outputs, and each one runs end to end at small scale as CI runs it.

Every ``tutorials/*.ipynb`` is executed with nbclient (kernel ``python3``) on a copy in a temporary folder, with
``MONAI_KCROSS_TUTORIAL_SMALL=1`` and without ``MONAI_KCROSS_WEIGHTS`` (CI has no ImageNet/LPIPS weights, so the
notebooks must not need them). A notebook's last cell asserts its findings and writes them to
``tutorial_outputs/<name>/findings.json``; the checks below read that file again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; the small runs take well under a minute per notebook


def _check_sensitivity(findings: dict) -> None:
    # equal-MSE comparison: MSE/PSNR cannot tell a removed lesion from benign changes, MAE rates it milder,
    # gradient-based metrics and K-CROSS weight it more; whole-brain SSIM stays high while lesion SSIM collapses
    assert findings["mse_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert findings["psnr_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert findings["mae_ratio"] < 0.5
    assert findings["gmsd_ratio"] > 1 and findings["ms_ssim_ratio"] > 1
    assert findings["sim_kcross_min_ratio"] > 1.5
    assert findings["whole_brain_ssim_lesion_removed"] > 0.9 > 0.5 > findings["lesion_ssim_lesion_removed"]


def _check_evaluator(findings: dict) -> None:
    assert findings["kcross_worst"] == "lesion_removed" == findings["psnr_lesion_worst"]
    assert findings["means"]["lesion_removed/ssim"] > findings["means"]["noisy/ssim"]
    assert findings["bundle_kcross"] == pytest.approx(findings["evaluator_kcross"], abs=1e-4)


def _check_training(findings: dict) -> None:
    assert findings["stage1_loss"][1] < findings["stage1_loss"][0]
    assert findings["stage2_loss"][1] < findings["stage2_loss"][0]
    assert findings["n_test"] > 0 and 0 <= findings["my_bundle_mean"] <= 1
    assert findings["bundle_config_max_difference"] < 1e-4


def _check_set_level(findings: dict) -> None:
    fid, copies = findings["fid"], findings["near_copy_fraction"]
    assert abs(findings["fid_change_lesions_removed"]) < 0.15
    assert fid["memorising (100 %)"] < fid["faithful"]
    assert copies["memorising (100 %)"] > 0.9 and copies["faithful"] < 0.1
    voxels = findings["lesion_voxels"]
    assert voxels["lesions removed"] < 0.2 * voxels["faithful"]
    assert all(math.isfinite(value) for value in fid.values())


CHECKS: dict[str, Callable[[dict], None]] = {
    "02_sensitivity_analysis": _check_sensitivity,
    "03_kcross_in_a_monai_evaluator": _check_evaluator,
    "04_train_and_export_kcross": _check_training,
    "05_set_level_metrics_and_memorisation": _check_set_level,
}


def test_the_tutorials_exist():
    names = {path.stem for path in NOTEBOOKS}
    assert set(CHECKS) <= names, f"missing tutorials: {sorted(set(CHECKS) - names)}"
    assert (TUTORIALS / ".gitignore").read_text().count("tutorial_outputs/") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_stripped(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}, "strip notebook metadata (widgets, ...)"
    assert notebook.cells and notebook.cells[0].cell_type == "markdown", "start with a markdown introduction"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs: strip them before committing"
            assert cell.execution_count is None, f"cell {index} has an execution count: strip it"
        assert not cell.get("attachments"), f"cell {index} has attachments"
        assert set(cell.metadata) <= {"tags"}, f"cell {index} has metadata {sorted(cell.metadata)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_at_small_scale(path: Path, tmp_path: Path):
    from nbclient import NotebookClient

    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    env = {**os.environ, "MONAI_KCROSS_TUTORIAL_SMALL": "1", "MPLBACKEND": "Agg"}
    env.pop("MONAI_KCROSS_WEIGHTS", None)
    # the small runs are many small tensor operations: one intra-op thread is nearly as fast on 2 idle cores (within
    # 25 %) and does not collapse (10x and more, OpenMP spin-waiting) when the machine's cores are shared
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute(env=env)  # raises CellExecutionError (with the cell's traceback) if a cell fails
    check = CHECKS.get(path.stem)
    if check is not None:
        findings = tmp_path / "tutorial_outputs" / path.stem / "findings.json"
        assert findings.is_file(), f"{path.name} did not write {findings.relative_to(tmp_path)}"
        check(json.loads(findings.read_text()))
    assert not (TUTORIALS / "tutorial_outputs").exists(), "a tutorial wrote into the repository"
