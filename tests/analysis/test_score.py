"""`monai-kcross score` end to end on NIfTI folders written here: pairing, geometry checks, values, outputs,
interruption and resume, two processes, agreement and bundle commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from monai_kcross.analysis import scoring
from monai_kcross.analysis.scoring import CaseError, case_name, find_cases, load_case, score_case, score_cases
from monai_kcross.cli import main
from monai_kcross.data.demo import DEMO_DEFECTS, write_demo_set
from monai_kcross.functional import psnr, ssim
from monai_kcross.metrics import kcross

AFFINE = np.diag([1.2, 1.2, 2.0, 1.0])


def _volume(seed: int, shape=(40, 36, 12)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = gaussian_filter(rng.random(shape), (3, 3, 1))
    image[image < np.percentile(image, 30)] = 0  # background, so that slices have a foreground
    return (image * 1000).astype(np.float32)


def _save(array: np.ndarray, path: Path, affine: np.ndarray = AFFINE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)


def _folders(root: Path, n: int = 3, shape=(40, 36, 12)) -> dict[str, Path]:
    folders = {key: root / key for key in ("reference", "synthesized", "source", "mask")}
    for i in range(n):
        reference = _volume(i, shape)
        noise = np.random.default_rng(100 + i).normal(0, 20 * (i + 1), shape).astype(np.float32)
        _save(reference, folders["reference"] / f"case{i}.nii.gz")
        _save(reference + noise, folders["synthesized"] / f"case{i}.nii.gz")
        _save(_volume(50 + i, shape), folders["source"] / f"case{i}.nii.gz")
        _save((reference > 0).astype(np.uint8), folders["mask"] / f"case{i}.nii.gz")
    return folders


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def interrupt_scoring(monkeypatch, at_call: int) -> None:
    """Make the ``at_call``-th call of ``score_case`` (one per case) raise ``KeyboardInterrupt``."""
    calls, original = {"n": 0}, scoring.score_case

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_case", interrupted)


def test_pairing_by_name_and_clear_errors(tmp_path):
    folders = _folders(tmp_path, 2)
    cases = find_cases(folders["reference"], folders["synthesized"], source=folders["source"])
    assert [c["case"] for c in cases] == ["case0", "case1"] and all("source" in c for c in cases)
    assert case_name("a/sub-01_T2w.nii.gz") == "sub-01_T2w" and case_name("x.mha") == "x"
    _save(_volume(9), folders["synthesized"] / "stray.nii.gz")  # unpaired files are listed, the pairs kept
    cases = find_cases(folders["reference"], folders["synthesized"])
    assert [c["case"] for c in cases] == ["case0", "case1"]
    assert cases.unpaired == {"reference": [], "synthesized": [str(folders["synthesized"] / "stray.nii.gz")]}
    (folders["synthesized"] / "stray.nii.gz").unlink()
    (folders["source"] / "case1.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"source folder .* no image for case.*case1"):
        find_cases(folders["reference"], folders["synthesized"], source=folders["source"])
    with pytest.raises(FileNotFoundError, match="mask folder"):
        find_cases(folders["reference"], folders["synthesized"], mask=tmp_path / "nowhere")
    # a datalist works as the reference argument
    datalist = tmp_path / "pairs.json"
    entries = [{"reference": f"reference/case{i}.nii.gz", "synthesized": f"synthesized/case{i}.nii.gz"} for i in (0, 1)]
    datalist.write_text(json.dumps({"test": entries}))
    assert [c["case"] for c in find_cases(datalist)] == ["case0", "case1"]


def test_geometry_and_unreadable_files_name_the_case(tmp_path):
    folders = _folders(tmp_path, 1)
    case = find_cases(folders["reference"], folders["synthesized"], mask=folders["mask"])[0]
    assert load_case(case)["reference"].shape == (1, 40, 36, 12)
    _save(_volume(0, (40, 36, 5)), folders["synthesized"] / "case0.nii.gz")
    with pytest.raises(CaseError, match=r"case case0: synthesized shape \(40, 36, 5\) differs"):
        load_case(case)
    _save(_volume(0), folders["synthesized"] / "case0.nii.gz", np.diag([1.0, 1.2, 2.0, 1.0]))
    with pytest.raises(CaseError, match="synthesized voxel spacing"):
        load_case(case)
    shifted = AFFINE.copy()
    shifted[0, 3] = 5.0
    _save(_volume(0), folders["synthesized"] / "case0.nii.gz", shifted)
    with pytest.raises(CaseError, match=r"affine .* by up to 5 mm"):
        load_case(case)
    (folders["synthesized"] / "case0.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(CaseError, match="cannot read synthesized"):
        load_case(case)


def test_values_equal_the_functional_metrics_in_2d_and_3d(tmp_path):
    folders = _folders(tmp_path, 1)
    case = find_cases(folders["reference"], folders["synthesized"], source=folders["source"], mask=folders["mask"])
    images = load_case(case[0])
    x, y, m = (images[k].as_tensor()[None] for k in ("synthesized", "reference", "mask"))
    native = score_case(images, ["psnr", "ssim"], spatial_dims=3)
    assert native["psnr"] == pytest.approx(float(psnr(x, y, mask=m > 0)), rel=1e-6)
    assert native["ssim"] == pytest.approx(float(ssim(x, y, mask=m > 0)), rel=1e-6)
    # 2-D mode: axial slices with foreground and mask, the volume's window, averaged
    planar = score_case(images, ["ssim"], spatial_dims=2)
    keep = (y[0].movedim(-1, 0) > 0.01 * y.max()).flatten(1).float().mean(1) >= 0.05
    xs, ys, ms = (t[0].movedim(-1, 0)[keep] for t in (x, y, m))
    window = (float(y.min()), float(y.max()))
    assert planar["ssim"] == pytest.approx(float(ssim(xs, ys, mask=ms > 0, data_range=window).mean()), rel=1e-6)
    # K-CROSS without a source image: the structure branch is off
    without_source = {k: v for k, v in images.items() if k != "source"}
    expected = kcross(x, y, branches=("complex", "tumour"), spatial_dims=3)
    assert score_case(without_source, ["kcross"])["kcross"] == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        score_case(images, ["psnr"], spatial_dims=4)


def test_cli_scores_good_pairs_and_reports_bad_ones(tmp_path, capsys):
    folders = _folders(tmp_path, 3)
    _save(_volume(3), folders["reference"] / "bad_shape.nii.gz")
    _save(_volume(3, (40, 36, 4)), folders["synthesized"] / "bad_shape.nii.gz")
    _save(_volume(4), folders["reference"] / "corrupt.nii.gz")
    (folders["synthesized"] / "corrupt.nii.gz").write_bytes(b"\x00garbage")
    out = tmp_path / "out"
    args = ["score", "--reference", str(folders["reference"]), "--synthesized", str(folders["synthesized"])]
    args += ["--mask", str(folders["mask"]), "--metrics", "psnr", "ssim", "--out", str(out), "--no-progress"]
    (folders["mask"] / "bad_shape.nii.gz").write_bytes((folders["mask"] / "case0.nii.gz").read_bytes())
    (folders["mask"] / "corrupt.nii.gz").write_bytes((folders["mask"] / "case0.nii.gz").read_bytes())
    assert main(args) == 3  # finished, but some cases could not be scored
    captured = capsys.readouterr()
    assert "case bad_shape: synthesized shape" in captured.err and "cannot read synthesized" in captured.err
    rows = _rows(out / "scores.csv")
    assert [(r["case"], r["metric"]) for r in rows] == [(f"case{i}", m) for i in range(3) for m in ("psnr", "ssim")]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["failed"]) == {"bad_shape", "corrupt"} and summary["n_cases"] == 3
    values = [float(r["value"]) for r in rows if r["metric"] == "psnr"]
    entry = summary["metrics"]["psnr"]
    assert entry["mean"] == pytest.approx(np.mean(values)) and entry["ci95"][0] <= entry["mean"] <= entry["ci95"][1]
    assert values[0] > values[1] > values[2]  # more noise, lower PSNR
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 1 + 3 and "bad_shape" in report  # distributions + worst cases
    assert main(args) == 1 and "--resume" in capsys.readouterr().err  # never silently overwritten
    assert main(["score", "--reference", str(tmp_path / "none"), "--synthesized", str(out), "--out", str(out)]) == 1


def test_interrupted_run_loses_nothing_and_resumes(tmp_path, monkeypatch):
    folders = _folders(tmp_path, 4)
    cases = find_cases(folders["reference"], folders["synthesized"])
    reference = score_cases(cases, tmp_path / "full", metrics=("psnr", "mae"), progress=False, report=False)
    original = scoring.score_case
    interrupt_scoring(monkeypatch, 4)  # no metric needs weights, so no probe call: the 4th case is interrupted
    with pytest.raises(KeyboardInterrupt):
        score_cases(cases, tmp_path / "run", metrics=("psnr", "mae"), progress=False, report=False)
    assert [r["case"] for r in _rows(tmp_path / "run" / "scores.csv")] == ["case0"] * 2 + ["case1"] * 2 + ["case2"] * 2
    monkeypatch.setattr(scoring, "score_case", original)
    resumed = score_cases(cases, tmp_path / "run", metrics=("psnr", "mae"), resume=True, progress=False, report=False)
    assert resumed.resumed == ["case0", "case1", "case2"] and resumed.scored == ["case3"]
    assert (tmp_path / "run" / "scores.csv").read_text() == (tmp_path / "full" / "scores.csv").read_text()
    assert resumed.summary["metrics"] == reference.summary["metrics"]


def test_two_processes_write_the_single_process_table(tmp_path):
    folders = _folders(tmp_path, 5, shape=(32, 32, 4))
    common = ["score", "--reference", str(folders["reference"]), "--synthesized", str(folders["synthesized"])]
    common += ["--metrics", "psnr", "ssim", "gmsd", "--no-progress", "--no-report"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    assert (tmp_path / "two" / "scores.csv").read_text() == (tmp_path / "one" / "scores.csv").read_text()
    assert not (tmp_path / "two" / "parts").exists()


def test_demo_set_agreement_and_bundle_commands(tmp_path, capsys):
    folders = write_demo_set(tmp_path / "data", subjects=1)
    cases = find_cases(folders["reference"], folders["synthesized"], mask=folders["mask"])
    assert [c["case"] for c in cases] == sorted(f"sub0_{d}" for d in DEMO_DEFECTS)
    run = score_cases(cases, tmp_path / "out", metrics=("psnr", "gmsd", "kcross"), progress=False, report=False)
    by = {(r["case"], r["metric"]): r["value"] for r in run.rows}
    assert by[("sub0_mild_noise", "psnr")] > by[("sub0_noise", "psnr")]
    assert by[("sub0_mild_noise", "kcross")] > by[("sub0_lesion_removed", "kcross")]
    # ratings that follow PSNR exactly: PSNR gets SRCC 1, and lower-is-better GMSD is flipped, not negated
    ratings = tmp_path / "ratings.csv"
    lines = ["case,rating,subject"] + [f"{c['case']},{by[(c['case'], 'psnr')] / 50:.6f},s0" for c in cases]
    ratings.write_text("\n".join(lines) + "\n")
    scores = str(tmp_path / "out" / "scores.csv")
    assert main(["agreement", "--scores", scores, "--ratings", str(ratings), "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    psnr_row = next(line for line in out.splitlines() if line.startswith("psnr "))
    assert psnr_row.split()[1] == "1.000"  # srcc
    # a metric of the same table as the reference (e.g. downstream-segmentation Dice): GMSD against PSNR here
    assert main(["agreement", "--scores", scores, "--ratings-metric", "psnr", "--n-boot", "20"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "gmsd" in rows and "kcross" in rows and "psnr" not in rows
    assert main(["agreement", "--scores", scores, "--ratings-metric", "psnr", "--ratings", str(ratings)]) == 1
    assert "exactly one of --ratings" in capsys.readouterr().err
    assert main(["agreement", "--scores", scores, "--ratings-metric", "seg_dice"]) == 1
    assert "is not in" in capsys.readouterr().err
    ratings.write_text("case,rating\nother,1\n")
    assert main(["agreement", "--scores", scores, "--ratings", str(ratings)]) == 1
    assert "only 0 case(s)" in capsys.readouterr().err
    assert main(["bundle", "info"]) == 0 and "model.pt" in capsys.readouterr().out
    assert main(["bundle", "verify"]) == 0 and "loads safely" in capsys.readouterr().out
    assert main(["bundle", "verify", "--bundle", str(tmp_path)]) == 1


def test_report_kspace_map_shows_lost_high_frequencies():
    from monai_kcross.analysis.report import kspace_log_amplitude

    image = torch.rand(32, 32, generator=torch.Generator().manual_seed(0))  # texture: energy at all frequencies
    shifts = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    blurred = sum(torch.roll(image, s, dims=(0, 1)) for s in shifts) / 9  # circular 3x3 box blur
    difference = (kspace_log_amplitude(blurred) - kspace_log_amplitude(image)).abs()
    radius = torch.cdist(torch.cartesian_prod(torch.arange(32.0), torch.arange(32.0)), torch.tensor([[16.0, 16.0]]))
    radius = radius.view(32, 32)
    assert difference[16, 16] < 1e-6  # the mean (DC, centred) is kept
    assert difference[radius > 8].mean() > 10 * difference[radius <= 2].mean()  # high frequencies lost


def test_resume_keeps_rows_of_incomplete_cases_and_datalist_masks_resolve(tmp_path, monkeypatch):
    folders = _folders(tmp_path, 3)
    cases = find_cases(folders["reference"], folders["synthesized"])
    score_cases(cases, tmp_path / "run", metrics=("psnr",), progress=False, report=False)
    interrupt_scoring(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):  # a metric added, and the run interrupted after one case
        score_cases(cases, tmp_path / "run", metrics=("psnr", "mae"), resume=True, progress=False, report=False)
    kept = {(r["case"], r["metric"]) for r in _rows(tmp_path / "run" / "scores.csv")}
    assert {("case1", "psnr"), ("case2", "psnr"), ("case0", "mae")} <= kept  # nothing scored before is lost
    # relative mask paths of a datalist are resolved against the datalist's folder, whatever the working folder
    entries = [
        {
            "reference": f"reference/case{i}.nii.gz",
            "synthesized": f"synthesized/case{i}.nii.gz",
            "mask": f"mask/case{i}.nii.gz",
        }
        for i in (0, 1)
    ]
    (tmp_path / "pairs.json").write_text(json.dumps({"test": entries}))
    monkeypatch.chdir("/")
    assert Path(find_cases(tmp_path / "pairs.json")[0]["mask"]) == folders["mask"] / "case0.nii.gz"
