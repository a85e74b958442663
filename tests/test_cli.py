"""The command line: the demo (sample pair and scored demo set) and the metric listing."""

from __future__ import annotations

import subprocess
import sys

import monai_kcross
from monai_kcross.cli import main


def test_demo_prints_every_metric_with_three_regions(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--subjects", "1"]) == 0
    out = capsys.readouterr().out
    # the scored demo set: every defect a column, K-CROSS rates the erased lesion below the nearly perfect synthesis
    header = next(row for row in out.splitlines() if row.startswith("metric ") and "lesion_removed" in row).split()
    kcross_row = next(row for row in out.splitlines() if row.startswith("kcross ")).split()
    assert float(kcross_row[header.index("lesion_removed")]) < float(kcross_row[header.index("mild_noise")])
    assert (tmp_path / "report.html").is_file() and (tmp_path / "summary.json").is_file()
    for info in monai_kcross.list_metrics():
        line = next(row for row in out.splitlines() if row.startswith(info.name + " "))
        cells = line.split()[4:7]  # after "name", "x is better"
        if info.needs_weights and cells == ["n/a"] * 3:
            assert f"{info.name} needs" in out  # weights absent here: said so, not a crash
            continue
        assert len([float(v) for v in cells]) == 3
    lesion_ssim = float(next(r for r in out.splitlines() if r.startswith("ssim ")).split()[6])
    brain_ssim = float(next(r for r in out.splitlines() if r.startswith("ssim ")).split()[5])
    assert lesion_ssim < 0.5 < brain_ssim  # the missing lesion is visible only in the lesion region


def test_metrics_listing(capsys):
    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    assert "haarpsi" in out and "slice-wise" in out and "higher is better" in out


def test_console_entry_point_and_errors():
    done = subprocess.run([sys.executable, "-m", "monai_kcross", "demo", "--device", "cuda:7"], capture_output=True)
    if not __import__("torch").cuda.is_available():
        assert done.returncode == 1 and b"CUDA is not available" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "monai_kcross", "frobnicate"], capture_output=True)
    assert bad.returncode == 2
