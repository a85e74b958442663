"""`monai-kcross score` runs that must lose nothing and hide nothing: resume and overwrite, unpaired files, NaN
values with their reasons, one-line errors, the report's worst cases, and the package's own data layouts."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_kcross.analysis import scoring
from monai_kcross.analysis.report import _worst_slice
from monai_kcross.analysis.scoring import IDENTICAL, find_cases, score_cases
from monai_kcross.cli import main
from monai_kcross.functional import psnr, ssim
from monai_kcross.functional.intensity import IntensityPolicy, parse_data_range
from monai_kcross.functional.model_cache import clear_model_cache
from monai_kcross.perceptual.backbones import build_backbone
from monai_kcross.perceptual.weights import WeightFileError, load_weight_file, random_state_dict, save_weight_file

from .test_score import _folders, _rows, _save, _volume, interrupt_scoring


def _score_args(folders: dict[str, Path], out: Path, *extra: str) -> list[str]:
    args = ["score", "--reference", str(folders["reference"]), "--synthesized", str(folders["synthesized"])]
    return [*args, "--out", str(out), "--no-progress", *extra]


def _one_line_error(capsys, *names: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monai-kcross: error"), err
    assert "Traceback" not in err and all(name in err for name in names), err
    return err


@pytest.fixture
def random_vgg(tmp_path_factory, monkeypatch):
    """A weights folder with a VGG16 backbone of random weights (enough for LPIPS/DISTS to run) and no cache."""
    folder = tmp_path_factory.mktemp("weights")
    save_weight_file(random_state_dict(build_backbone("vgg"), seed=0), folder / "vgg16_imagenet.safetensors")
    monkeypatch.setenv("MONAI_KCROSS_CACHE", str(tmp_path_factory.mktemp("empty_cache")))
    monkeypatch.setenv("MONAI_KCROSS_WEIGHTS", str(folder))
    clear_model_cache()  # networks are cached per process, whatever file they came from
    yield folder
    clear_model_cache()


# ---------------------------------------------------------------------------------------------- 1. resume


def test_resume_keeps_every_row_and_refuses_other_options(tmp_path, capsys, random_vgg, monkeypatch):
    folders = _folders(tmp_path, 3, shape=(40, 36, 6))
    out = tmp_path / "out"
    assert main(_score_args(folders, out, "--mask", str(folders["mask"]), "--metrics", "psnr", "mae", "lpips")) == 0
    first = (out / "scores.csv").read_text()
    assert len(_rows(out / "scores.csv")) == 9
    # a resume with fewer metrics scores nothing and keeps every row
    assert main(_score_args(folders, out, "--mask", str(folders["mask"]), "--metrics", "psnr", "--resume")) == 0
    assert (out / "scores.csv").read_text() == first
    assert json.loads((out / "run.json").read_text())["inputs"]["mask"] == str(folders["mask"].resolve())
    assert json.loads((out / "summary.json").read_text())["metrics"]["lpips"]["n"] == 3
    # the VGG weights are gone now: lpips is skipped, its earlier rows stay
    monkeypatch.setenv("MONAI_KCROSS_WEIGHTS", str(tmp_path / "nowhere"))
    clear_model_cache()  # a new process would not have the network
    capsys.readouterr()
    assert main(_score_args(folders, out, "--mask", str(folders["mask"]), "--resume", "--metrics", "lpips")) == 0
    assert (out / "scores.csv").read_text() == first and "metric lpips skipped" in capsys.readouterr().err
    # options that change the values are refused, each named
    assert main(_score_args(folders, out, "--metrics", "psnr", "--resume", "--spatial-dims", "3")) == 1
    err = _one_line_error(capsys, "--spatial-dims (was None, now 3)", "--mask (was", "--overwrite")
    assert "images" in err and (out / "scores.csv").read_text() == first


def test_resume_scores_only_missing_pairs(tmp_path, monkeypatch):
    folders = _folders(tmp_path, 3)
    cases = find_cases(folders["reference"], folders["synthesized"])
    score_cases(cases, tmp_path / "run", metrics=("psnr",), progress=False, report=False)
    calls = []
    original = scoring.score_case
    monkeypatch.setattr(
        scoring,
        "score_case",
        lambda images, metrics, *a, **k: calls.append(list(metrics)) or original(images, metrics, *a, **k),
    )
    run = score_cases(cases, tmp_path / "run", metrics=("psnr", "mae"), resume=True, progress=False, report=False)
    assert calls == [["mae"]] * 3  # PSNR is not computed again
    assert [(r["case"], r["metric"]) for r in run.rows] == [(f"case{i}", m) for i in range(3) for m in ("psnr", "mae")]


# ---------------------------------------------------------------------------------------------- 2. overwrite


def test_interrupted_overwrite_leaves_no_summary_of_another_table(tmp_path, monkeypatch):
    folders = _folders(tmp_path, 3)
    cases = find_cases(folders["reference"], folders["synthesized"])
    out = tmp_path / "run"
    score_cases(cases, out, metrics=("psnr",), progress=False)
    assert (out / "summary.json").is_file() and (out / "report.html").is_file()
    original = scoring.score_case
    interrupt_scoring(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        score_cases(cases, out, metrics=("psnr", "mae"), overwrite=True, progress=False)
    assert [r["case"] for r in _rows(out / "scores.csv")] == ["case0", "case0"]
    assert not (out / "summary.json").exists() and not (out / "report.html").exists()
    monkeypatch.setattr(scoring, "score_case", original)
    run = score_cases(cases, out, metrics=("psnr", "mae"), resume=True, progress=False)
    assert json.loads((out / "summary.json").read_text())["n_cases"] == 3 == run.summary["n_cases"]


# ---------------------------------------------------------------------------------------------- 3. silent gaps


def test_unpaired_files_are_named_and_the_pairs_scored(tmp_path, capsys):
    folders = _folders(tmp_path, 3)
    (folders["synthesized"] / "case1.nii.gz").unlink()
    _save(_volume(7), folders["synthesized"] / "extra.nii.gz")
    out = tmp_path / "out"
    assert main(_score_args(folders, out, "--metrics", "psnr")) == 3
    err = capsys.readouterr().err
    assert "reference without a synthesized image: " + str(folders["reference"] / "case1.nii.gz") in err
    assert "synthesized image without a reference: " + str(folders["synthesized"] / "extra.nii.gz") in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unpaired"] == {
        "reference": [str(folders["reference"] / "case1.nii.gz")],
        "synthesized": [str(folders["synthesized"] / "extra.nii.gz")],
    }
    assert [r["case"] for r in _rows(out / "scores.csv")] == ["case0", "case2"]
    assert "extra.nii.gz" in (out / "report.html").read_text()


def test_kcross_without_a_scorable_slice_is_counted_with_its_reason(tmp_path, capsys):
    folders = _folders(tmp_path, 2, shape=(32, 32, 16))
    sparse = np.zeros((32, 32, 16), np.float32)
    sparse[10:14, 10:14, :] = 500.0  # 16 of 1024 pixels per slice: below K-CROSS's 5 % foreground
    _save(sparse, folders["reference"] / "case1.nii.gz")
    _save(sparse * 0.9, folders["synthesized"] / "case1.nii.gz")
    out = tmp_path / "out"
    assert main(_score_args(folders, out, "--metrics", "psnr", "kcross", "--spatial-dims", "3", "--no-report")) == 3
    captured = capsys.readouterr()
    assert (
        "case case1: kcross not scored: kcross gave NaN (it found no slice with enough reference foreground"
        in captured.err
    )
    assert "kcross     mean" in captured.out and "(1 NaN)" in captured.out  # not dropped from the printed summary
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["kcross"]["n"] == 1 and summary["metrics"]["kcross"]["n_nan"] == 1
    assert "foreground" in summary["not_scored"]["case1"]["kcross"]
    row = next(r for r in _rows(out / "scores.csv") if r["case"] == "case1" and r["metric"] == "kcross")
    assert row["value"] == "nan" and "foreground" in row["note"]


# ---------------------------------------------------------------------------------------------- 4. unfit metric


def test_a_metric_unfit_for_one_case_is_nan_with_its_reason_and_the_others_kept(tmp_path, capsys):
    folders = _folders(tmp_path, 2, shape=(40, 36, 12))
    _save(_volume(1, (40, 36, 5)), folders["reference"] / "thin.nii.gz")
    _save(_volume(1, (40, 36, 5)) + 5, folders["synthesized"] / "thin.nii.gz")
    out = tmp_path / "out"
    assert main(_score_args(folders, out, "--metrics", "psnr", "ssim", "--spatial-dims", "3")) == 3
    assert "case thin: ssim not scored: ssim: image of spatial shape (40, 36, 5)" in capsys.readouterr().err
    rows = {(r["case"], r["metric"]): r for r in _rows(out / "scores.csv")}
    assert len(rows) == 6 and np.isfinite(float(rows[("thin", "psnr")]["value"]))
    assert rows[("thin", "ssim")]["value"] == "nan" and "SSIM window" in rows[("thin", "ssim")]["note"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == {} and "SSIM window" in summary["not_scored"]["thin"]["ssim"]
    assert summary["metrics"]["ssim"]["n"] == 2 and summary["metrics"]["psnr"]["n"] == 3


# ---------------------------------------------------------------------------------------------- 11. one-line errors


def test_an_unreadable_weight_file_skips_its_metrics_with_the_reason(tmp_path, capsys, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "vgg16_imagenet.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setenv("MONAI_KCROSS_WEIGHTS", str(weights))
    monkeypatch.setenv("MONAI_KCROSS_CACHE", str(tmp_path / "empty_cache"))
    clear_model_cache()
    with pytest.raises(WeightFileError, match=r"vgg16_imagenet\.safetensors cannot be read"):
        load_weight_file(weights / "vgg16_imagenet.safetensors")
    folders = _folders(tmp_path, 2)
    out = tmp_path / "out"
    assert main(_score_args(folders, out, "--metrics", "psnr", "lpips", "dists", "--no-report")) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("vgg16_imagenet.safetensors cannot be read") == 2
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["skipped_metrics"]) == {"lpips", "dists"} and summary["metrics"]["psnr"]["n"] == 2


def test_bad_outputs_datalists_networks_and_nproc_print_one_line(tmp_path, capfd):
    capsys = capfd  # the spawned processes write to the file descriptors
    folders = _folders(tmp_path, 2, shape=(32, 32, 4))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):
        assert main(_score_args(folders, out, "--metrics", "psnr")) == 1
        _one_line_error(capsys, str(a_file), "is a file")
    assert main(_score_args(folders, Path("/proc/monai_kcross/out"), "--metrics", "psnr")) == 1
    _one_line_error(capsys, "cannot write to --out /proc/monai_kcross/out", "writable")
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps({"test": [1, 2]}))
    assert main(["score", "--reference", str(numbers), "--out", str(tmp_path / "o"), "--metrics", "psnr"]) == 1
    _one_line_error(capsys, str(numbers), "entry 0", "not an object")

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"config": Payload()}, protocol=2))
    args = _score_args(folders, tmp_path / "o", "--metrics", "psnr", "kcross", "--network", str(evil))
    assert main(args) == 1
    _one_line_error(capsys, str(evil), "refuses", "kcross train")
    assert main([*args[:-2], "--nproc", "0"]) == 1
    _one_line_error(capsys, "--nproc must be at least 1")
    # inside spawned processes: each process says it in one line, then the command
    assert main([*args, "--nproc", "2", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "refuses" in err and "--nproc 2: a scoring process stopped" in err


# ---------------------------------------------------------------------------------------------- 12. report


def test_worst_slice_is_the_largest_error_inside_the_mask():
    reference = torch.zeros(1, 24, 24, 6)
    reference[:, 6:18, 6:18, :] = 1.0
    synthesized = reference.clone()
    synthesized[:, :, :3, 1] += 5.0  # a big error in the background of slice 1
    synthesized[:, 8:12, 8:12, 4] += 0.5  # a small one inside the brain on slice 4
    mask = (reference > 0).float()
    assert _worst_slice(reference, synthesized)[2] == "axial slice 4 of 6"  # the reference's foreground
    assert _worst_slice(reference, synthesized, mask)[2] == "axial slice 4 of 6 inside the mask"


def test_report_ranks_by_a_metric_with_an_ideal_value_and_lists_exact_copies(tmp_path):
    folders = _folders(tmp_path, 3)
    (folders["synthesized"] / "case0.nii.gz").write_bytes((folders["reference"] / "case0.nii.gz").read_bytes())
    cases = find_cases(folders["reference"], folders["synthesized"], mask=folders["mask"])
    run = score_cases(cases, tmp_path / "out", metrics=("kcross", "ssim"), progress=False, worst=3)
    report = (tmp_path / "out" / "report.html").read_text()
    worst = report.split("Worst")[1]
    assert worst.startswith(" 2 cases by ssim") and "<h3>case0" not in worst
    assert "Exact copies of the reference" in report
    assert run.summary["identical"] == ["case0"]
    assert all(IDENTICAL in r["note"] for r in run.rows if r["case"] == "case0")


# ---------------------------------------------------------------------------------------------- 13. layouts


def _noisy_copy(source: Path, target: Path, seed: int) -> None:
    image = nib.load(source)
    array = image.get_fdata().astype(np.float32)
    noise = np.random.default_rng(seed).normal(0, 0.05 * array.max(), array.shape).astype(np.float32)
    _save(array + noise, target, image.affine)


def test_score_reads_the_simulate_output(tmp_path, capsys):
    from monai_kcross.data import build_paired_dataset

    datalist = build_paired_dataset(tmp_path / "sim", n_subjects=2, shape=(48, 48), progress=False)
    entries = json.loads(datalist.read_text())["training"]
    for number, entry in enumerate(entries):  # a synthesis model's T2 outputs, named like the references
        _noisy_copy(tmp_path / "sim" / entry["t2"], tmp_path / "synth" / f"{entry['case']}_t2.nii.gz", number)
    out = tmp_path / "out"
    args = ["score", "--reference", str(datalist), "--synthesized", str(tmp_path / "synth"), "--out", str(out)]
    args += ["--metrics", "psnr", "--no-progress", "--no-report"]
    assert main(args) == 1
    _one_line_error(capsys, "'test' is empty", "training (2)", "'all'")
    assert main([*args, "--datalist-key", "all"]) == 0
    cases = find_cases(datalist, tmp_path / "synth", datalist_key="all", source_contrast="t1")
    assert cases.inputs["layout"] == "simulate" and cases.inputs["contrast"] == "t2"
    assert [c["case"] for c in cases] == [e["case"] for e in entries]
    assert cases[0]["reference"].endswith("_t2.nii.gz") and cases[0]["source"].endswith("_t1.nii.gz")
    assert cases[0]["mask"].endswith("_brain.nii.gz") and cases[0]["lesion"].endswith("_seg.nii.gz")
    # outputs named by case need the contrast
    for path in (tmp_path / "synth").iterdir():
        path.rename(path.with_name(path.name.replace("_t2.nii.gz", ".nii.gz")))
    with pytest.raises(ValueError, match="pass --contrast"):
        find_cases(tmp_path / "sim", tmp_path / "synth", datalist_key="all")
    assert len(find_cases(tmp_path / "sim", tmp_path / "synth", datalist_key="all", contrast="t2")) == 2


def test_score_reads_the_nirps_output_and_agreement_matches_its_labels(tmp_path, capsys):
    from monai_kcross.data.nirps import build_nirps_dataset

    build_nirps_dataset(
        tmp_path / "nirps",
        pairs=(("t1", "t2"),),
        architectures=("unet",),
        held_out=(),
        n_train_subjects=2,
        train_slices=1,
        n_eval_subjects=3,
        epochs=2,
        shape=(48, 48),
        progress=False,
    )
    out = tmp_path / "out"
    command = ["score", "--reference", str(tmp_path / "nirps"), "--datalist-key", "all", "--out", str(out)]
    assert main([*command, "--metrics", "psnr", "ssim", "--no-progress", "--no-report"]) == 0
    rows = _rows(out / "scores.csv")
    names = sorted({r["case"] for r in rows})
    assert len(names) == 6 and names[0] == "sim/t2/unet/epoch_1/sim07500-slice-0"  # epochs told apart
    assert json.loads((out / "run.json").read_text())["images"] == [
        "lesion",
        "mask",
        "reference",
        "source",
        "synthesized",
    ]
    capsys.readouterr()
    for ratings in ("nirps_scores.txt", "scores.csv"):
        scores = str(out / "scores.csv")
        assert (
            main(["agreement", "--scores", scores, "--ratings", str(tmp_path / "nirps" / ratings), "--n-boot", "5"])
            == 0
        )
        assert capsys.readouterr().out.startswith("6 cases with scores and ratings (0 rated")


def test_score_reads_brats_and_ixi_folders(tmp_path):
    reference, synthesized = tmp_path / "brats", tmp_path / "brats_synth"
    for number in range(2):
        case = f"BraTS2021_0000{number}"
        for kind in ("t1", "t2", "flair", "seg"):
            array = _volume(10 * number + len(kind))
            _save(
                (array > 400).astype(np.uint8) if kind == "seg" else array, reference / case / f"{case}_{kind}.nii.gz"
            )
        _noisy_copy(reference / case / f"{case}_flair.nii.gz", synthesized / f"{case}_flair.nii.gz", number)
    cases = find_cases(reference, synthesized, source_contrast="t1")
    assert cases.inputs["layout"] == "brats" and cases.inputs["contrast"] == "flair"
    assert [c["case"] for c in cases] == ["BraTS2021_00000", "BraTS2021_00001"]
    assert cases[1]["reference"].endswith("BraTS2021_00001_flair.nii.gz") and cases[1]["lesion"].endswith("_seg.nii.gz")
    ixi, ixi_synth = tmp_path / "ixi", tmp_path / "ixi_synth"
    for number, case in enumerate(("IXI002-Guys-0828", "IXI012-HH-1211")):
        for contrast in ("T1", "T2"):
            _save(_volume(number), ixi / f"{case}-{contrast}.nii.gz")
        _noisy_copy(ixi / f"{case}-T2.nii.gz", ixi_synth / f"{case}.nii.gz", number)
    cases = find_cases(ixi, ixi_synth, contrast="T2")
    assert cases.inputs["layout"] == "ixi" and [c["case"] for c in cases] == ["IXI002-Guys-0828", "IXI012-HH-1211"]
    run = score_cases(cases, tmp_path / "out", metrics=("psnr",), progress=False, report=False)
    assert len(run.rows) == 2 and not scoring.incomplete(run.summary)


# ---------------------------------------------------------------------------------------------- 14. intensity policy


def _csv_policies(path: Path) -> dict[str, set[str]]:
    policies: dict[str, set[str]] = {}
    for row in _rows(path):
        policies.setdefault(row["metric"], set()).add(row["data_range"])
    return policies


def test_data_range_policy_is_applied_and_recorded_and_a_resume_with_another_refused(tmp_path, capsys):
    folders = _folders(tmp_path, 2, shape=(32, 28, 20))
    out = tmp_path / "out"
    mask_args = ("--mask", str(folders["mask"]), "--spatial-dims")
    assert main(_score_args(folders, out, *mask_args, "3", "--metrics", "psnr", "ssim", "--data-range", "zscore")) == 0
    assert json.loads((out / "run.json").read_text())["data_range"] == "zscore@mask"
    assert json.loads((out / "summary.json").read_text())["data_range"] == "zscore@mask"
    assert _csv_policies(out / "scores.csv") == {"psnr": {"zscore@mask"}, "ssim": {"zscore@mask"}}
    # the values are the library's with that data_range (statistics inside the mask)
    case = find_cases(folders["reference"], folders["synthesized"], mask=folders["mask"])[0]
    images = scoring.load_case(case)
    x, y, m = (images[k].as_tensor()[None] for k in ("synthesized", "reference", "mask"))
    written = {r["metric"]: float(r["value"]) for r in _rows(out / "scores.csv") if r["case"] == "case0"}
    policy = IntensityPolicy("zscore")
    assert written["psnr"] == pytest.approx(float(psnr(x, y, mask=m > 0, data_range=policy)), rel=1e-6)
    assert written["ssim"] == pytest.approx(float(ssim(x, y, mask=m > 0, data_range=policy)), rel=1e-6)
    reference_psnr = float(psnr(x, y, mask=m > 0))
    assert abs(written["psnr"] - reference_psnr) > 1.0  # the policy changed the number
    # a resume with another policy is refused, naming both
    first = (out / "scores.csv").read_text()
    resume = (*mask_args, "3", "--metrics", "psnr", "mae", "--resume")
    assert main(_score_args(folders, out, *resume, "--data-range", "percentile")) == 1
    _one_line_error(capsys, "--data-range (was zscore@mask, now percentile(0.5,99.5,clip)@mask)")
    assert (out / "scores.csv").read_text() == first
    # the same policy, written differently, resumes
    assert main(_score_args(folders, out, *resume, "--data-range", "zscore()")) == 0
    assert _csv_policies(out / "scores.csv")["mae"] == {"zscore@mask"}
    # without run.json (a table copied elsewhere) the rows' column still refuses another policy
    (out / "run.json").unlink()
    assert main(_score_args(folders, out, *resume, "--data-range", "reference")) == 1
    _one_line_error(capsys, "--data-range zscore@mask, now reference")


def test_data_range_in_2d_mode_takes_the_volume_statistics_and_kcross_keeps_its_front_end(tmp_path):
    folders = _folders(tmp_path, 1, shape=(32, 32, 8))
    case = find_cases(folders["reference"], folders["synthesized"], mask=folders["mask"])[0]
    images = scoring.load_case(case)
    policy = parse_data_range("percentile(1,99)")
    values = scoring.score_case(images, ["ssim", "mae", "kcross"], spatial_dims=2, data_range=policy)
    # independently: NumPy percentiles of the volume's reference inside the mask, both images clipped and mapped
    x, y, m = (images[k].as_tensor()[0].numpy().astype(np.float64) for k in ("synthesized", "reference", "mask"))
    low, high = np.percentile(y[m > 0], [1, 99])
    x_u, y_u = ((np.clip(v, low, high) - low) / (high - low) for v in (x, y))
    keep = [k for k in range(y.shape[-1]) if (y[..., k] > 0.01 * y.max()).mean() >= 0.05 and m[..., k].any()]
    slices = [torch.from_numpy(v[..., keep]).float().permute(2, 0, 1)[:, None] for v in (x_u, y_u, m)]
    expected_ssim = ssim(slices[0], slices[1], mask=slices[2] > 0, data_range=1.0).mean()
    expected_mae = np.mean([np.abs(x_u - y_u)[..., k][m[..., k] > 0].mean() for k in keep])
    assert values["ssim"] == pytest.approx(float(expected_ssim), rel=1e-5)
    assert values["mae"] == pytest.approx(float(expected_mae), rel=1e-5)
    assert values["kcross"] == scoring.score_case(images, ["kcross"], spatial_dims=2)["kcross"]


def test_bad_data_range_is_a_one_line_usage_error(tmp_path, capsys):
    folders = _folders(tmp_path, 1, shape=(32, 28, 4))
    for value, reason in (("percentil", "an unknown name"), ("window(5,1)", "high > low"), ("-3", "> 0")):
        assert main(_score_args(folders, tmp_path / "out", "--data-range", value)) == 2
        _one_line_error(capsys, f"--data-range {value!r}", reason, "valid forms", "zscore", "window(LOW,HIGH)")
    assert not (tmp_path / "out").exists()


def test_tables_written_before_the_data_range_column_resume_as_reference(tmp_path):
    folders = _folders(tmp_path, 2, shape=(32, 28, 4))
    out = tmp_path / "out"
    assert main(_score_args(folders, out, "--metrics", "psnr")) == 0
    old = [",".join(line.split(",")[:4]) for line in (out / "scores.csv").read_text().splitlines()]
    (out / "scores.csv").write_text("\n".join(old) + "\n")  # an earlier version's table and run.json
    record = json.loads((out / "run.json").read_text())
    record["data_range"] = "reference (each volume's range; 2-D mode: the volume's window for its slices)"
    (out / "run.json").write_text(json.dumps(record))
    assert main(_score_args(folders, out, "--metrics", "psnr", "mae", "--resume")) == 0
    assert _csv_policies(out / "scores.csv") == {"psnr": {"reference"}, "mae": {"reference"}}
    assert main(_score_args(folders, out, "--metrics", "mae", "--resume", "--data-range", "minmax")) == 1


# ---------------------------------------------------------------------------------------------- 15. segmenter


class _Threshold(torch.nn.Module):
    """A downstream segmenter for tests: class 1 above half the unit range; images wider than 48 are refused."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] > 48:
            raise RuntimeError("threshold segmenter: images up to 48 rows")
        return torch.cat([0.5 - x, x - 0.5], dim=1)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_segmenter_option_changes_seg_dice_is_recorded_and_a_case_it_cannot_score_is_nan(tmp_path, capsys):
    folders = _folders(tmp_path, 1, shape=(32, 28, 20))
    _save(_volume(9, (56, 28, 20)), folders["reference"] / "tall.nii.gz")  # too tall for the test segmenter
    _save(_volume(9, (56, 28, 20)) * 0.9, folders["synthesized"] / "tall.nii.gz")
    scripted = tmp_path / "threshold.ts"
    torch.jit.script(_Threshold()).save(str(scripted))
    common = ("--metrics", "seg_dice", "seg_hd95", "--spatial-dims", "3")
    assert main(_score_args(folders, tmp_path / "default", *common)) == 0
    assert main(_score_args(folders, tmp_path / "out", *common, "--segmenter", str(scripted))) == 3
    capsys.readouterr()
    rows = {(r["case"], r["metric"]): r for r in _rows(tmp_path / "out" / "scores.csv")}
    default = {(r["case"], r["metric"]): r for r in _rows(tmp_path / "default" / "scores.csv")}
    # independently: the 2-D segmenter thresholds each slice of the unit-range images inside the reference's
    # foreground, and Dice is taken over the volume
    images = scoring.load_case(find_cases(folders["reference"], folders["synthesized"])[0])
    x, y = (images[k].as_tensor()[0].numpy().astype(np.float64) for k in ("synthesized", "reference"))
    x_u, y_u = ((v - y.min()) / (y.max() - y.min()) for v in (x, y))
    foreground = y_u > 0.01
    expected = _dice((x_u > 0.5) & foreground, (y_u > 0.5) & foreground)
    assert float(rows["case0", "seg_dice"]["value"]) == pytest.approx(expected, rel=1e-6)
    assert float(default["case0", "seg_dice"]["value"]) != pytest.approx(expected, rel=1e-3)
    assert np.isnan(float(rows["tall", "seg_dice"]["value"])) and "up to 48 rows" in rows["tall", "seg_dice"]["note"]
    record = json.loads((tmp_path / "out" / "run.json").read_text())["segmenter"]
    assert record["path"] == str(scripted.resolve())
    assert record["digest"] == "sha256:" + hashlib.sha256(scripted.read_bytes()).hexdigest()[:16]
    assert json.loads((tmp_path / "default" / "run.json").read_text())["segmenter"]["path"] is None
    # a resume with another segmenter is refused
    assert main(_score_args(folders, tmp_path / "out", *common, "--resume")) == 1
    _one_line_error(capsys, f"--segmenter (was {scripted.resolve()} sha256:", "now the package's segmenter")
    assert main(_score_args(folders, tmp_path / "o", *common, "--segmenter", str(tmp_path / "none.pt"))) == 1
    _one_line_error(capsys, "none.pt not found")


def test_seg_metrics_score_2d_images(tmp_path):
    folders = _folders(tmp_path, 2, shape=(32, 28, 1))
    run = score_cases(
        find_cases(folders["reference"], folders["synthesized"]),
        tmp_path / "out",
        metrics=("seg_dice", "seg_dice_lesion", "seg_hd95"),
        progress=False,
        report=False,
        segmenter=torch.jit.script(_Threshold()),
    )
    values = {(r["case"], r["metric"]): r["value"] for r in run.rows}
    assert 0.0 < values["case0", "seg_dice"] <= 1.0 and values["case0", "seg_hd95"] >= 0.0
    assert np.isnan(values["case0", "seg_dice_lesion"])  # the test segmenter has no class named lesion
    assert "no class 'lesion'" in run.summary["not_scored"]["case0"]["seg_dice_lesion"]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["segmenter"]["object"] == "RecursiveScriptModule"
