"""The pretrained segmenter, the task-based quality labels and the NIRPS-style dataset builder."""

from __future__ import annotations

import json

import pytest
import torch

import monai_kcross.transforms as T
from monai_kcross.data import read_quality_scores, synthesize_brain
from monai_kcross.data.nirps import build_nirps_dataset, normalise_slice, summarise
from monai_kcross.data.quality import quality_labels
from monai_kcross.networks import CLASSES, load_segmenter, rank_normalize, segment
from monai_kcross.networks.segmenter import targets_from_simulation


@pytest.fixture(scope="module")
def slices():
    """Held-out simulated slices (seeds never used for training the segmenter) with lesions, FLAIR and T2."""
    cases = [synthesize_brain(seed=900 + i, spatial_dims=2, lesion=True) for i in range(4)]
    out = {}
    for contrast in ("flair", "t2", "t1"):
        out[contrast] = torch.stack([c[contrast].as_tensor() for c in cases])
    out["brain"] = torch.stack([c["brain"].as_tensor() for c in cases])
    out["label"] = torch.stack([c["label"].as_tensor() for c in cases])
    out["target"] = torch.stack([targets_from_simulation(c["label"][0], c["tissues"], c["brain"][0]) for c in cases])
    return out


def test_rank_normalisation_is_invariant_to_monotone_maps():
    x = torch.rand(2, 1, 16, 16) * 1000
    brain = torch.rand(2, 1, 16, 16) > 0.3
    base = rank_normalize(x, brain)
    for mapped in (3 * x + 7, x**2.2, torch.log1p(x)):
        torch.testing.assert_close(rank_normalize(mapped, brain), base)
    assert float(base[~brain].abs().max()) == 0 and float(base.max()) == 1.0


def test_pretrained_segmenter_finds_tissues_and_lesions(slices):
    network = load_segmenter()
    for contrast in ("flair", "t2", "t1"):
        predicted = segment(slices[contrast], slices["brain"], network)
        for name in ("csf", "gm", "wm", "lesion"):
            index = CLASSES.index(name)
            p, t = predicted == index, slices["target"] == index
            dice = float(2 * (p & t).sum() / (p.sum() + t.sum()))
            # the contrast-agnostic segmenter (1.0) finds T1 lesions less well (0.59 here; 0.54 on the independent
            # held-out simulator, benchmarks/heldout/segmenter_eval.py): a known weakness stated in the model card
            floor = 0.6 if name != "lesion" else (0.5 if contrast == "t1" else 0.7)
            assert dice > floor, (contrast, name, dice)


def test_missing_weights_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"segmenter weights .*missing"):
        load_segmenter(tmp_path / "nope.pt")


def test_quality_labels_rank_lesion_removal_below_intensity_changes(slices):
    reference, brain, label = slices["flair"], slices["brain"], slices["label"]
    perfect = quality_labels(reference, reference, brain, label)
    assert all(entry["score"] == pytest.approx(10.0) for entry in perfect)
    for name in ("intensity_scale_shift", "gamma"):
        changed = torch.stack([T.create_perturbation(name, severity=1.0)(r) for r in reference])
        labels = quality_labels(changed, reference, brain, label)
        assert all(entry["score"] == pytest.approx(10.0) for entry in labels), name  # blind to calibration
    noisy = torch.stack([T.RicianNoise(severity=0.1)(r) for r in reference])
    removed = torch.stack([T.LesionRemoval()(r, region=lab) for r, lab in zip(reference, label)])
    noisy_scores = [e["score"] for e in quality_labels(noisy, reference, brain, label)]
    removed_scores = [e["score"] for e in quality_labels(removed, reference, brain, label)]
    assert all(r < n for r, n in zip(removed_scores, noisy_scores)), (removed_scores, noisy_scores)
    assert all(r < 7 for r in removed_scores) and all(n > 8 for n in noisy_scores)


def test_quality_labels_reject_bad_shapes(slices):
    with pytest.raises(ValueError, match="equal shape"):
        quality_labels(slices["flair"], slices["t2"][:, :, :-1], slices["brain"])


def test_tiny_nirps_build(tmp_path):
    datalist_path = build_nirps_dataset(
        tmp_path,
        pairs=(("t1", "t2"),),
        architectures=("unet", "pix2pix"),
        held_out=("pix2pix",),
        n_train_subjects=4,
        train_slices=1,
        n_eval_subjects=3,
        epochs=2,
        progress=False,
    )
    datalist = json.loads(datalist_path.read_text())
    assert len(datalist["test_unseen_generator"]) == 2 * 3  # pix2pix: 2 epochs x 3 evaluation slices
    seen = datalist["training"] + datalist["validation"] + datalist["test"]
    assert len(seen) == 2 * 3 and {e["model"] for e in seen} == {"unet"}
    entry = seen[0]
    for key in ("synthesized", "reference", "source", "label", "brain"):
        assert (tmp_path / entry[key]).is_file(), key
    assert entry["synthesized"].startswith("sim/t2/unet/epoch_")
    scores = read_quality_scores(tmp_path / "nirps_scores.txt")
    assert len(scores) == 12 and {s["model"] for s in scores} == {"unet", "pix2pix"}
    assert all(0 <= s["score"] <= 1 for s in scores)
    table = read_quality_scores(tmp_path / "scores.csv")
    assert all(1 <= s["score"] <= 10 for s in table)
    assert summarise(datalist_path)["test_unseen_generator"]["images"] == 6
    with pytest.raises(ValueError, match="distinct targets"):
        build_nirps_dataset(tmp_path, pairs=(("t1", "t2"), ("pd", "t2")), progress=False)


def test_normalise_slice():
    image = torch.arange(100.0).reshape(1, 10, 10)
    out = normalise_slice(image, torch.ones_like(image, dtype=torch.bool))
    assert float(out.max()) <= 1.5 and float(torch.quantile(out.flatten(), 0.995)) == pytest.approx(1.0, abs=1e-6)
