"""The sensitivity runner: tidy rows, equal-MSE matching, CSV, plots, file-based datalists, CLI."""

from __future__ import annotations

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_kcross.analysis import run_sensitivity
from monai_kcross.cli import main


@pytest.fixture(scope="module")
def cases(sample):
    crop = (slice(8, 72), slice(10, 90))
    return [
        {
            "image": sample["reference"][0, ..., z][(slice(None), *crop)].clone(),
            "label": sample["lesion_mask"][0, ..., z][(slice(None), *crop)].clone(),
            "brain": sample["brain_mask"][0, ..., z][(slice(None), *crop)].clone(),
            "case": f"z{z}",
        }
        for z in (52, 54)
    ]


PERTURBATIONS = ["gamma", "gaussian_noise", "gaussian_blur", "lesion_removal", "local_contrast"]
METRICS = ["psnr", "ssim", "haarpsi"]


@pytest.fixture(scope="module")
def result(cases):
    return run_sensitivity(
        cases,
        metrics=METRICS,
        perturbations=PERTURBATIONS,
        severities=(0.5, 1.0),
        region_key="label",
        mask_key="brain",
        progress=False,
    )


def test_rows_are_tidy_and_complete(result):
    assert len(result.rows) == 2 * len(PERTURBATIONS) * 3 * len(METRICS)  # severities 0, 0.5, 1
    for row in result.rows:
        assert set(row) == {"case", "perturbation", "kind", "severity", "mse", "metric", "value", "degradation"}
        if row["severity"] == 0:
            assert row["degradation"] == 0 and row["mse"] == 0
    for case in ("z52", "z54"):
        for perturbation in PERTURBATIONS:
            mse = [r["mse"] for r in result.rows if r["case"] == case and r["perturbation"] == perturbation]
            assert mse == sorted(mse) and mse[-1] > 0


def test_equal_mse_matching_gives_psnr_ratio_one(result):
    psnr_rows = [r for r in result.matched if r["metric"] == "psnr"]
    assert psnr_rows and all(r["ratio"] == pytest.approx(1.0, abs=1e-3) for r in psnr_rows)
    assert {r["global"] for r in result.matched} == {"gamma", "gaussian_noise", "gaussian_blur"}
    assert {r["local"] for r in result.matched} == {"lesion_removal", "local_contrast"}
    summary = result.local_vs_global()
    assert summary[("psnr", "lesion_removal")] == pytest.approx(1.0, abs=1e-3)
    assert all(math.isfinite(v) and v > 0 for v in summary.values())


def test_normalised_response_scale(result):
    response = result.normalised_response()
    for metric in METRICS:
        values = [v for (m, _, _), v in response.items() if m == metric]
        assert max(values) == pytest.approx(1.0)
        assert all(math.isfinite(v) for v in values)


def test_csv_and_plots(result, tmp_path):
    path = result.to_csv(tmp_path / "rows.csv")
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.rows) and rows[0]["metric"] in METRICS
    result.local_vs_global_csv(tmp_path / "matched.csv")
    pngs = result.plot(tmp_path / "plots")
    assert [p.name for p in pngs] == ["response_vs_severity.png", "local_vs_global.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_datalist_with_nifti_files_and_3d(tmp_path, sample):
    items = []
    for index, offset in enumerate((0, 4)):
        crop = (slice(20 + offset, 52 + offset), slice(30, 70), slice(38, 66))
        for key, name in (("image", "reference"), ("label", "lesion_mask")):
            volume = sample[name][0, 0][crop].numpy().astype(np.float32)
            nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / f"{key}{index}.nii.gz")
        items.append({"image": str(tmp_path / f"image{index}.nii.gz"), "label": str(tmp_path / f"label{index}.nii.gz")})
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": items}))
    result = run_sensitivity(
        datalist,
        metrics=["mse", "ssim"],
        perturbations=["bias_field", "lesion_shrink"],
        severities=(1.0,),
        progress=False,
    )
    assert {r["case"] for r in result.rows} == {"0", "1"}
    mse_matched = [r for r in result.matched if r["metric"] == "mse"]
    assert mse_matched and all(r["ratio"] == pytest.approx(1.0, abs=1e-3) for r in mse_matched)


def test_local_perturbations_skip_cases_without_region(cases):
    no_label = [{"image": c["image"], "case": c["case"]} for c in cases]
    result = run_sensitivity(no_label, metrics=["psnr"], perturbations=["gamma", "lesion_removal"], progress=False)
    assert {r["perturbation"] for r in result.rows} == {"gamma"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="no cases"):
        run_sensitivity([], progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        run_sensitivity([{"image": torch.rand(1, 40, 40)}], metrics=["fid"], progress=False)
    with pytest.raises(ValueError, match="unknown perturbation"):
        run_sensitivity([{"image": torch.rand(1, 40, 40)}], perturbations=["zoom"], progress=False)


def test_cli_verb(tmp_path, capsys):
    code = main(
        [
            "sensitivity",
            "--out",
            str(tmp_path),
            "--metrics",
            "psnr",
            "ssim",
            "--perturbations",
            "gamma",
            "lesion_removal",
            "--severities",
            "1.0",
            "--slices",
            "53",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "lesion_removal" in out and (tmp_path / "sensitivity.csv").is_file()
    assert (tmp_path / "local_vs_global.png").is_file()


def test_multichannel_psnr_ratio_spatial_mask_and_empty_labels(sample):
    crop = (slice(None), slice(24, 64), slice(30, 70), slice(44, 62))
    reference = sample["reference"][0][crop]
    image = torch.cat([reference, 0.5 * reference + 100])  # two channels with different ranges
    label = sample["lesion_mask"][0][crop]
    brain = sample["brain_mask"][0, 0][crop[1:]]  # spatial-only mask
    cases = [
        {"image": image, "label": label, "brain": brain, "case": "lesion"},
        {"image": image, "label": torch.zeros_like(label), "brain": brain, "case": "healthy"},
    ]
    result = run_sensitivity(
        cases,
        metrics=["psnr", "mse"],
        perturbations=["gaussian_noise", "lesion_removal"],
        severities=(1.0,),
        mask_key="brain",
        progress=False,
    )
    assert {r["case"] for r in result.rows if r["perturbation"] == "lesion_removal"} == {"lesion"}
    matched = {r["metric"]: r["ratio"] for r in result.matched}
    assert matched["mse"] == pytest.approx(1.0, abs=1e-3)  # matching is on the raw MSE over all channels
    assert math.isfinite(matched["psnr"]) and matched["psnr"] > 0
