"""The MR simulator, the dataset builder and the readers for BraTS, IXI and NIRPS-style score lists."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_kcross.data import (
    build_paired_dataset,
    find_brats_cases,
    find_ixi_cases,
    parse_nirps_path,
    read_quality_scores,
    synthesize_brain,
)
from monai_kcross.data.synthesis import SEQUENCES, TISSUES, signal


def tissue_means(data: dict, contrast: str) -> dict[str, float]:
    """Mean intensity of voxels that are (almost) pure GM, WM, CSF, and of oedema."""
    image, tissues, label = data[contrast][0], data["tissues"], data["label"][0]
    pure = {name: (tissues[i] > 0.9) & (label == 0) for i, name in enumerate(("gm", "wm", "csf"))}
    pure["ed"] = label == 2
    return {name: float(image[mask].mean()) for name, mask in pure.items() if bool(mask.any())}


@pytest.fixture(scope="module")
def subject():
    # axial slice 62 crosses both the ventricles (pure CSF) and this subject's tumour oedema
    return synthesize_brain(seed=4, spatial_dims=2, lesion=True, noise=(0.005, 0.005), slice_index=62)


def test_signal_equations_order_tissues_as_in_textbooks():
    s = {c: {t: signal(v, SEQUENCES[c]) for t, v in TISSUES.items()} for c in SEQUENCES}
    assert s["t1"]["wm"] > s["t1"]["gm"] > s["t1"]["csf"]
    assert s["t2"]["csf"] > s["t2"]["gm"] > s["t2"]["wm"]
    assert s["flair"]["csf"] < 1e-9 and s["flair"]["ed"] > s["flair"]["gm"] > s["flair"]["wm"]
    assert s["pd"]["gm"] > s["pd"]["wm"]


def test_simulated_contrasts_follow_physics(subject):
    t1, t2, flair = (tissue_means(subject, c) for c in ("t1", "t2", "flair"))
    assert t1["wm"] > t1["gm"] > t1["csf"]
    assert t2["csf"] > t2["gm"] > t2["wm"]
    assert flair["csf"] < flair["wm"] < flair["gm"] < flair["ed"]


def test_output_structure_and_labels_inside_brain(subject):
    for contrast in ("t1", "t2", "pd", "flair"):
        image = subject[contrast]
        assert isinstance(image, MetaTensor) and image.shape == (1, 112, 128) and image.dtype == torch.float32
        assert image.affine.shape == (4, 4) and float(image.affine[0, 0]) == 1.5
        assert float(image.min()) >= 0
    label, brain = subject["label"], subject["brain"]
    assert set(torch.unique(label).tolist()) <= {0, 1, 2, 4} and {2}.issubset(set(torch.unique(label).tolist()))
    assert not bool(((label > 0) & ~brain).any())
    torch.testing.assert_close(subject["tissues"].sum(0)[brain[0]].max(), torch.tensor(1.0), atol=1e-4, rtol=0)


def test_determinism_and_variety():
    a = synthesize_brain(seed=11, spatial_dims=2)
    b = synthesize_brain(seed=11, spatial_dims=2)
    c = synthesize_brain(seed=12, spatial_dims=2)
    for key in ("t1", "flair", "label", "brain"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["t1"], c["t1"])
    other_slice = synthesize_brain(seed=11, spatial_dims=2, slice_seed=1)
    assert not torch.equal(a["t1"], other_slice["t1"])


def test_healthy_and_3d():
    healthy = synthesize_brain(seed=3, spatial_dims=2, lesion=False)
    assert int(healthy["label"].sum()) == 0
    volume = synthesize_brain(seed=3, spatial_dims=3, shape=(96, 112, 96), contrasts=("t1", "flair"))
    assert volume["t1"].shape == (1, 96, 112, 96) and "t2" not in volume
    assert {1, 2, 4}.issubset(set(torch.unique(volume["label"]).tolist()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        synthesize_brain(spatial_dims=1)
    with pytest.raises(ValueError, match="unknown contrasts"):
        synthesize_brain(contrasts=("t1ce",))
    with pytest.raises(ValueError, match="slice_index"):
        synthesize_brain(slice_index=500)


def test_build_dataset_writes_nifti_and_datalist(tmp_path):
    path = build_paired_dataset(tmp_path, n_subjects=5, slices_per_subject=2, progress=False)
    datalist = json.loads(path.read_text())
    entries = datalist["training"] + datalist["validation"] + datalist["test"]
    assert len(entries) == 10
    subjects = {split: {e["subject"] for e in datalist[split]} for split in ("training", "validation", "test")}
    assert not (subjects["training"] & subjects["validation"]) and not (subjects["training"] & subjects["test"])
    first = entries[0]
    image = nib.load(tmp_path / first["flair"])
    assert image.shape == (112, 128) and np.allclose(image.header.get_zooms()[:2], 1.5)
    label = np.asarray(nib.load(tmp_path / first["label"]).dataobj)
    assert label.dtype == np.uint8
    cases = find_brats_cases(tmp_path, modalities=("t1", "t2", "flair"))  # the BraTS naming round-trips
    assert len(cases) == 10 and all(c["label"] for c in cases)
    again = build_paired_dataset(tmp_path / "again", n_subjects=5, slices_per_subject=2, progress=False)
    np.testing.assert_array_equal(
        nib.load(tmp_path / first["t1"]).get_fdata(), nib.load(again.parent / first["t1"]).get_fdata()
    )


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)


def test_brats_reader(tmp_path):
    for case in ("BraTS2021_00000", "BraTS2021_00002"):
        for kind in ("t1", "t1ce", "t2", "flair", "seg"):
            _touch(tmp_path / case / f"{case}_{kind}.nii.gz")
    cases = find_brats_cases(tmp_path)
    assert [c["case"] for c in cases] == ["BraTS2021_00000", "BraTS2021_00002"]
    assert cases[0]["flair"].endswith("BraTS2021_00000_flair.nii.gz") and cases[0]["label"].endswith("_seg.nii.gz")
    (tmp_path / "BraTS2021_00002" / "BraTS2021_00002_t2.nii.gz").unlink()
    with pytest.raises(ValueError, match="BraTS2021_00002 lacks"):
        find_brats_cases(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_brats_cases(tmp_path / "nope")


def test_ixi_reader(tmp_path):
    for modality in ("T1", "T2", "PD"):
        _touch(tmp_path / f"IXI-{modality}" / f"IXI002-Guys-0828-{modality}.nii.gz")
    _touch(tmp_path / "IXI-T1" / "IXI012-HH-1211-T1.nii.gz")
    with pytest.warns(UserWarning, match="1 IXI subject"):
        cases = find_ixi_cases(tmp_path)
    assert len(cases) == 1 and cases[0]["subject"] == "IXI002" and cases[0]["site"] == "Guys"
    assert cases[0]["PD"].endswith("IXI002-Guys-0828-PD.nii.gz")
    assert len(find_ixi_cases(tmp_path, modalities=("T1",))) == 2


def test_quality_score_readers(tmp_path):
    nirps = tmp_path / "nirps_dataset_human.txt"
    nirps.write_text(
        "1.0000, ./nirps_dataset/ixi/t2/cyclegan/epoch_5/IXI158-Guys-0783-slice-76\n"
        "0.9708, ./nirps_dataset/brats2021/flair/munit/epoch_12/BraTS2021_01765-slice-70\n"
        "0.5000, ./nirps_dataset/ixi/t2/cyclegan/epoch_5/IXI158-Guys-0783-slice-76\n"
    )
    rows = read_quality_scores(nirps)
    assert len(rows) == 2 and rows[0]["count"] == 2 and rows[0]["score"] == pytest.approx(0.75)
    assert rows[1]["model"] == "munit" and rows[1]["epoch"] == 12 and rows[1]["slice"] == 70
    assert rows[1]["modality"] == "flair" and rows[1]["case"] == "BraTS2021_01765"
    assert read_quality_scores(nirps, duplicates="first")[0]["score"] == 1.0
    with pytest.raises(ValueError, match="listed more than once"):
        read_quality_scores(nirps, duplicates="error")
    table = tmp_path / "ratings.csv"
    table.write_text("path,score,rater\na/b.nii.gz,7,r1\nc/d.nii.gz,3.5,r2\n")
    rows = read_quality_scores(table)
    assert [r["score"] for r in rows] == [7.0, 3.5] and rows[1]["rater"] == "r2"
    bare = tmp_path / "bare.csv"
    bare.write_text("a.nii.gz,4\nb.nii.gz,9\n")
    assert [r["score"] for r in read_quality_scores(bare)] == [4.0, 9.0]
    broken = tmp_path / "broken.csv"
    broken.write_text("path,score\na.nii.gz,high\n")
    with pytest.raises(ValueError, match=r"broken\.csv:2: score 'high' is not a number"):
        read_quality_scores(broken)
    assert parse_nirps_path("x/y.png") is None
