"""Radiomic features against PyRadiomics, FRD against frd-score, radiomic-feature agreement (CCC)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import monai_kcross
from monai_kcross.features import RadiomicsFeatures
from monai_kcross.functional.radiomics import (
    RADIOMIC_FEATURES,
    discretise,
    glcm_matrices,
    glrlm_matrices,
    radiomic_features,
)
from monai_kcross.functional.set_level import concordance, frd
from monai_kcross.metrics import FRDMetric, RadiomicAgreementMetric

from ..conftest import GOLDEN_DIR


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN_DIR / "radiomics_golden.json").read_text())


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    with np.load(GOLDEN_DIR / "radiomics_inputs.npz") as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.mark.parametrize("shift", [0, 300])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_features_equal_pyradiomics(golden, inputs, dims, shift):
    """PyRadiomics 3.1 (tests/golden/make_radiomics_golden.py): all 56 features to 1e-9 relative."""
    images, masks = inputs[f"image{dims}"], inputs[f"mask{dims}"]
    ours = radiomic_features(images, masks, voxel_array_shift=shift)
    assert tuple(ours) == RADIOMIC_FEATURES
    expected = golden["features"][f"{dims}_shift{shift}"]
    for name in RADIOMIC_FEATURES:
        reference = torch.tensor([row[name] for row in expected], dtype=torch.float64)
        torch.testing.assert_close(ours[name], reference, rtol=1e-9, atol=1e-12, msg=name)
    whole = radiomic_features(images[:1], None, voxel_array_shift=shift)  # no mask: the whole image
    for name, value in golden["features"][f"{dims}_shift{shift}_nomask"][0].items():
        assert float(whole[name][0]) == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_discretisation_glcm_and_glrlm_by_hand():
    image = torch.tensor([[[[0.0, 24.9, 25.0], [50.0, 74.0, 99.9]]]], dtype=torch.float64)
    roi = torch.ones_like(image, dtype=torch.bool)
    assert discretise(image, roi, 25.0)[0, 0].tolist() == [[1, 1, 2], [3, 3, 4]]
    assert discretise(image, roi, None, bin_count=2)[0, 0].tolist() == [[1, 1, 1], [2, 2, 2]]
    levels = torch.tensor([[[[1, 2], [2, 1]]]])
    counts = glcm_matrices(levels, torch.ones_like(levels, dtype=torch.bool))  # 4 directions, symmetric
    # directions (0, 1), (1, -1), (1, 0), (1, 1): rows and columns pair 1 with 2, the diagonals 2-2 and 1-1
    expected = [[[0, 2], [2, 0]], [[0, 0], [0, 2]], [[0, 2], [2, 0]], [[2, 0], [0, 0]]]
    assert counts[0].tolist() == expected
    runs = glrlm_matrices(torch.tensor([[[[1, 1, 2], [2, 2, 2]]]]), torch.ones(1, 1, 2, 3, dtype=torch.bool))
    # along rows (0, 1): level 1 one run of 2; level 2 runs of 1 and 3
    assert runs[0, 0].tolist() == [[0, 1, 0], [1, 0, 1]]
    assert runs[0].sum((-1, -2)).tolist() == [3, 5, 5, 6]  # runs per direction (0, 1), (1, -1), (1, 0), (1, 1)
    with pytest.raises(ValueError, match="at least 2 voxels"):
        radiomic_features(image, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W"):
        radiomic_features(image[0])


def test_frd_equals_frd_score(golden, inputs):
    """frd-score 1.0.1's v1 pipeline (z-score on the first set, log of the squared distance) on PyRadiomics
    features; ours computes the features itself. frd-score casts features to float32: 1e-4 relative."""
    extractor = RadiomicsFeatures(classes=("firstorder", "glcm"))  # the golden FRD's feature set
    real, generated = extractor(inputs["real2d"]), extractor(inputs["generated2d"])
    assert real.shape == (30, 40) and real.dtype == torch.float64
    assert float(frd(real, generated)) == pytest.approx(golden["frd"]["frd"], rel=1e-4)
    assert float(frd(real, generated, log=False)) == pytest.approx(golden["frd"]["squared_distance"], rel=1e-4)
    metric = FRDMetric(extractor, batch_size=7)
    metric(y=inputs["real2d"][:12])
    metric(y_pred=inputs["generated2d"], y=inputs["real2d"][12:])
    result = metric.aggregate()
    assert result["frd"] == pytest.approx(golden["frd"]["frd"], rel=1e-4) and result.extractor == extractor.identity
    same = FRDMetric(extractor)
    same(y_pred=inputs["real2d"], y=inputs["real2d"])
    assert same.aggregate()["frd"] < -20  # log of a squared distance that is 0 up to rounding


def test_frd_with_masks_and_volumes(inputs):
    volumes, masks = inputs["image3d"], inputs["mask3d"]
    extractor = RadiomicsFeatures(spatial_dims=3)
    metric = FRDMetric(extractor, log=False)
    metric(y_pred=volumes * 1.2, y=volumes, mask=masks)
    masked = metric.aggregate()["frd"]
    direct = frd(extractor(volumes, masks), extractor(volumes * 1.2, masks), log=False)
    assert masked == pytest.approx(float(direct), rel=1e-9) and masked > 0
    metric.reset()
    metric(y_pred=volumes * 1.2, y=volumes, y_pred_mask=masks, y_mask=masks[[1, 2, 0]])
    assert metric.aggregate()["frd"] != pytest.approx(masked)  # the real set's own masks are used
    with pytest.raises(ValueError, match="RadiomicsFeatures extractor"):
        FRDMetric(extractor="kcross")


def test_radiomic_agreement_concordance(inputs):
    images = inputs["real2d"]
    extractor = RadiomicsFeatures(classes=("firstorder",))
    noisy = images + 5 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0), dtype=images.dtype)
    p, r = extractor(noisy).numpy(), extractor(images).numpy()
    ccc = concordance(torch.from_numpy(p), torch.from_numpy(r)).numpy()
    cov = ((p - p.mean(0)) * (r - r.mean(0))).mean(0)
    direct = 2 * cov / (p.var(0) + r.var(0) + (p.mean(0) - r.mean(0)) ** 2)
    np.testing.assert_allclose(ccc, direct, rtol=1e-10)
    metric = RadiomicAgreementMetric(extractor)
    metric(y_pred=noisy, y=images)
    result = metric.aggregate()
    assert result["median_ccc"] == pytest.approx(float(np.median(direct)))
    assert result["reproducible_fraction"] == pytest.approx(float((direct >= 0.85).mean()))
    assert tuple(result.values) == monai_kcross.get_set_level_metric_info("radiomic_agreement").values
    assert set(result.details["ccc"]) == set(extractor.names) and len(extractor.names) == 18
    identical = RadiomicAgreementMetric(extractor)
    identical(y_pred=images, y=images)
    assert identical.aggregate()["median_ccc"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="paired samples"):
        concordance(torch.rand(4, 3), torch.rand(5, 3))
