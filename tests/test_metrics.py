"""The MONAI metric classes: buffering, reductions, not-NaN counts, list input, masks."""

from __future__ import annotations

import pytest
import torch

import monai_kcross
from monai_kcross.functional import psnr, ssim
from monai_kcross.metrics import (
    GMSDMetric,
    HaarPSIMetric,
    MAEMetric,
    MSEMetric,
    MultiScaleGMSDMetric,
    MultiScaleSSIMMetric,
    NLPDMetric,
    PSNRMetric,
    RMSEMetric,
    SSIMMetric,
)

from .conftest import perturbed_pair


def test_every_registered_metric_has_its_class():
    from monai_kcross.metrics import (
        DeepIQAMetric,
        DISTSMetric,
        FeatureDistanceMetric,
        LPIPSMetric,
        SegmentationDiceMetric,
        SegmentationHD95Metric,
    )

    classes = {
        LPIPSMetric,
        DISTSMetric,
        DeepIQAMetric,
        FeatureDistanceMetric,
        MAEMetric,
        MSEMetric,
        RMSEMetric,
        PSNRMetric,
        SSIMMetric,
        MultiScaleSSIMMetric,
        GMSDMetric,
        MultiScaleGMSDMetric,
        NLPDMetric,
        HaarPSIMetric,
        SegmentationDiceMetric,
        SegmentationHD95Metric,
    }
    assert {info.metric_class for info in monai_kcross.list_metrics()} == classes


def test_accumulates_batches_and_reduces():
    metric = SSIMMetric(spatial_dims=2, data_range=1.0, reduction="mean")
    batches = [perturbed_pair((2, 1, 32, 32), seed=s) for s in range(3)]
    values = torch.cat([metric(p, r) for p, r in batches])
    assert values.shape == (6, 1)
    torch.testing.assert_close(metric.aggregate(), values.mean().reshape(1), atol=1e-6, rtol=0, check_dtype=False)
    torch.testing.assert_close(metric.aggregate("none"), values)
    expected = torch.cat([ssim(p, r, data_range=1.0) for p, r in batches])
    torch.testing.assert_close(values, expected)
    metric.reset()
    with pytest.raises(ValueError, match="nothing to aggregate"):
        metric.aggregate()


def test_reductions_over_channels_and_batch():
    pred, ref = perturbed_pair((4, 3, 24, 24), seed=40)
    metric = PSNRMetric(data_range=1.0, reduction="mean_channel")
    metric(pred, ref)
    expected = psnr(pred, ref, data_range=1.0)
    torch.testing.assert_close(metric.aggregate().double(), expected.mean(dim=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(metric.aggregate("mean_batch").double(), expected.mean(dim=0), atol=1e-5, rtol=0)


def test_nan_scores_are_skipped_and_counted():
    pred, ref = perturbed_pair((3, 1, 40, 40), seed=41)
    mask = torch.zeros(3, 1, 40, 40, dtype=torch.bool)
    mask[0, :, 10:30, 10:30] = True
    mask[2, :, 0:20, 0:40] = True
    metric = MAEMetric(empty_mask="nan", get_not_nans=True)
    scores = metric(pred, ref, mask=mask)
    assert torch.isnan(scores[1]).all()
    value, not_nans = metric.aggregate()
    assert not_nans.item() == 2
    torch.testing.assert_close(value.double(), scores[[0, 2]].mean().reshape(1), atol=1e-6, rtol=0)


def test_list_of_channel_first_tensors_with_masks():
    pred, ref = perturbed_pair((2, 1, 36, 36), seed=42)
    masks = [torch.zeros(1, 36, 36, dtype=torch.bool) for _ in range(2)]
    masks[0][:, :20] = True
    masks[1][:, 16:] = True
    metric = GMSDMetric(data_range=1.0)
    as_list = metric(list(pred), list(ref), mask=masks)
    batched = metric(pred, ref, mask=torch.stack(masks))
    torch.testing.assert_close(as_list, batched)
    shared = metric(list(pred), list(ref), mask=masks[0][0])  # one spatial mask for all items
    torch.testing.assert_close(shared, metric(pred, ref, mask=masks[0][0]))


def test_full_reference_metric_requires_y():
    with pytest.raises(ValueError, match="pass the reference image"):
        RMSEMetric()(torch.rand(1, 1, 8, 8))


def test_create_metric_and_info():
    metric = monai_kcross.create_metric("MS-SSIM", spatial_dims=3, weights=(0.5, 0.5))
    assert isinstance(metric, MultiScaleSSIMMetric)
    info = monai_kcross.get_metric_info("nlpd")
    assert not info.higher_is_better and info.volumes == "slice-wise" and info.ideal == 0.0
    names = [i.name for i in monai_kcross.list_metrics()]
    assert names[:10] == ["mae", "mse", "rmse", "psnr", "ssim", "ms_ssim", "gmsd", "ms_gmsd", "nlpd", "haarpsi"]
    assert names[10:14] == ["lpips", "dists", "deepiqa", "feature_distance"]
    assert names[14:] == ["seg_dice", "seg_dice_lesion", "seg_hd95", "seg_hd95_lesion"]
