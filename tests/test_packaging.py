"""Wheels and sdists built from the checkout carry every file the package needs, and the wheel installed into a
fresh virtual environment runs ``monai-kcross demo`` and ``monai-kcross bundle verify`` (no checkout on the path).

The builds use a copy of the files git tracks (what a CI checkout holds), so neither untracked files nor a stale
``build/`` folder can hide a missing package-data declaration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 900


def _tracked() -> list[str]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True, timeout=60
        )
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout ({error}): the package-data tests compare the builds with git's file list")
    return [name for name in listing.stdout.split("\0") if name]


def _clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH, so that nothing is imported from the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """A wheel and an sdist built from a copy of the tracked files; ``files``: the tracked package files."""
    tracked = _tracked()
    root = tmp_path_factory.mktemp("packaging")
    source, dist = root / "source", root / "dist"
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheel_command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), "."]
    sdist_command = [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"]
    for command in (wheel_command, sdist_command):
        result = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {
        "wheel": next(dist.glob("*.whl")),
        "sdist": next(dist.glob("*.tar.gz")),
        "files": {name for name in tracked if name.startswith("monai_kcross/")},
    }


def test_wheel_and_sdist_carry_every_package_file(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        in_wheel = {name for name in wheel.namelist() if name.startswith("monai_kcross/")}
    with tarfile.open(built["sdist"]) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/monai_kcross/" in name}
    data = {name for name in built["files"] if not name.endswith(".py")}
    assert data, "no package data tracked: the test would check nothing"
    assert "monai_kcross/bundles/kcross_brain_mri/models/model.pt" in data
    for kind, contents in (("wheel", in_wheel), ("sdist", in_sdist)):
        missing = sorted(built["files"] - contents)
        assert not missing, f"the {kind} lacks {missing}: declare them in setup.cfg [options.package_data]"
    assert in_wheel == built["files"]  # and nothing the checkout does not track


@pytest.mark.packaging
def test_wheel_installs_in_a_fresh_venv_and_runs_demo_and_verify(built, tmp_path):
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = _clean_env()
    python, cli = venv / "bin" / "python", venv / "bin" / "monai-kcross"

    def run(*command: str | Path, timeout: int = INSTALL_TIMEOUT) -> str:
        result = subprocess.run(
            [str(c) for c in command], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    try:
        run(sys.executable, "-m", "venv", venv)
        torch_version = torch.__version__.split("+")[0]
        run(python, "-m", "pip", "install", "-q", f"torch=={torch_version}", built["wheel"])
        location = run(python, "-c", "import monai_kcross; print(monai_kcross.__file__)")
        assert location.startswith(str(venv)), location  # the installed wheel, not the checkout
        demo = run(cli, "demo", "--out", "demo", "--subjects", "1")
        assert (
            "kcross" in demo and (work / "demo" / "report.html").is_file() and (work / "demo" / "scores.csv").is_file()
        )
        verify = run(cli, "bundle", "verify")
        assert "ok: models/model.pt loads safely" in verify and "ok: large_files.yml" in verify
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # about 1.3 GB
