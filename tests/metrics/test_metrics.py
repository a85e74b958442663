"""The MONAI metric classes: buffering, reductions, not-NaN counts, list input, masks."""

from __future__ import annotations

import inspect

import pytest
import torch

import monai_kcross
from monai_kcross.functional import psnr, ssim
from monai_kcross.metrics import (
    GMSDMetric,
    HaarPSIMetric,
    KCrossMetric,
    MAEMetric,
    MSEMetric,
    MultiScaleGMSDMetric,
    MultiScaleSSIMMetric,
    NLPDMetric,
    PSNRMetric,
    RMSEMetric,
    SSIMMetric,
)

from ..conftest import metric_options, perturbed_pair


def test_every_registered_metric_has_its_class():
    from monai_kcross.metrics import (
        CWSSIMMetric,
        DeepIQAMetric,
        DISTSMetric,
        FeatureDistanceMetric,
        FSIMMetric,
        IWSSIMMetric,
        LPIPSMetric,
        MDSIMetric,
        NMIMetric,
        PCCMetric,
        SegmentationDiceMetric,
        SegmentationHD95Metric,
        VIFMetric,
        VSIMetric,
    )

    classes = {
        LPIPSMetric,
        DISTSMetric,
        DeepIQAMetric,
        KCrossMetric,
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
        VSIMetric,
        FSIMMetric,
        VIFMetric,
        IWSSIMMetric,
        MDSIMetric,
        CWSSIMMetric,
        NMIMetric,
        PCCMetric,
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
    assert names[10:18] == ["vsi", "fsim", "vif_p", "iw_ssim", "mdsi", "cw_ssim", "nmi", "pcc"]
    assert names[18:23] == ["lpips", "dists", "deepiqa", "kcross", "feature_distance"]
    assert names[23:] == ["seg_dice", "seg_dice_lesion", "seg_hd95", "seg_hd95_lesion"]
    kcross = monai_kcross.get_metric_info("K-CROSS")
    assert kcross.kind == "learned" and not kcross.masks and kcross.inputs == ("source", "lesion")
    assert isinstance(monai_kcross.create_metric("kcross", branches=("complex",)), KCrossMetric)
    assert monai_kcross.get_metric_info("NCC").name == "pcc" and monai_kcross.get_metric_info("vif").name == "vif_p"


ALL_NAN_REDUCTIONS = ["mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel"]


@pytest.mark.parametrize("reduction", ALL_NAN_REDUCTIONS)
@pytest.mark.parametrize("metric_class", [SSIMMetric, MAEMetric, PSNRMetric, GMSDMetric], ids=lambda c: c.__name__)
def test_all_nan_scores_reduce_to_nan_not_zero(metric_class, reduction):
    pred, ref = perturbed_pair((2, 2, 32, 32), seed=43)
    metric = metric_class(data_range=1.0, empty_mask="nan", get_not_nans=True, reduction=reduction)
    scores = metric(pred, ref, mask=torch.zeros(32, 32, dtype=torch.bool))
    assert torch.isnan(scores).all()
    value, not_nans = metric.aggregate()
    assert torch.isnan(value).all() and (not_nans == 0).all()


def test_partly_nan_reductions_skip_only_the_empty_entries():
    pred, ref = perturbed_pair((3, 2, 32, 32), seed=44)
    mask = torch.ones(3, 2, 32, 32, dtype=torch.bool)
    mask[1] = False  # item 1: no channel scored
    mask[2, 1] = False  # item 2: channel 1 not scored
    metric = MAEMetric(empty_mask="nan", get_not_nans=True, reduction="mean_batch")
    scores = metric(pred, ref, mask=mask)
    value, not_nans = metric.aggregate()
    torch.testing.assert_close(value, torch.stack([scores[[0, 2], 0].mean(), scores[0, 1]]))
    assert not_nans.tolist() == [2.0, 1.0]
    value, not_nans = metric.aggregate("mean_channel")
    assert torch.isnan(value[1]) and value[2] == scores[2, 0] and not_nans.tolist() == [2.0, 0.0, 1.0]
    value, not_nans = metric.aggregate("mean")  # MONAI's mean of per-item means over the items with a score
    torch.testing.assert_close(value, ((scores[0].mean() + scores[2, 0]) / 2).reshape(1))
    assert not_nans.item() == 2
    assert metric.aggregate("sum")[0] == scores.nansum()


def test_float64_scores_keep_their_precision_in_aggregate():
    pred, ref = perturbed_pair((2, 1, 32, 32), seed=45)
    metric = MSEMetric()
    values = metric(pred, ref)
    assert metric.aggregate().dtype == torch.float64
    assert metric.aggregate().item() == values.mean().item()


def test_monai_namesakes_take_monai_arguments_with_monai_meaning():
    """Classes named like MONAI's accept MONAI's positional arguments and give MONAI's values with them."""
    import monai.metrics as mm

    torch.manual_seed(0)
    y = torch.rand(2, 1, 48, 40) * 3.0
    y_pred = (y + 0.2 * torch.randn_like(y)).clamp_min(0)
    cases = [
        (PSNRMetric(3.0), mm.PSNRMetric(3.0)),
        (PSNRMetric(max_val=3.0, reduction="none"), mm.PSNRMetric(max_val=3.0, reduction="none")),
        (MAEMetric("mean_batch"), mm.MAEMetric("mean_batch")),
        (MSEMetric("none"), mm.MSEMetric("none")),
        (RMSEMetric("sum"), mm.RMSEMetric("sum")),
        (SSIMMetric(2, 3.0), mm.SSIMMetric(2, 3.0)),
        (
            SSIMMetric(2, 3.0, "uniform", 7, 1.5, 0.02, 0.04, "none"),
            mm.SSIMMetric(2, 3.0, "uniform", 7, 1.5, 0.02, 0.04, "none"),
        ),
    ]
    for ours, theirs in cases:
        torch.testing.assert_close(ours(y_pred, y).double(), theirs(y_pred, y).double(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours.aggregate().double(), theirs.aggregate().double(), rtol=1e-4, atol=1e-5)
    volume = torch.rand(1, 1, 40, 40, 40)
    noisy = volume + 0.1 * torch.randn_like(volume)
    ours = MultiScaleSSIMMetric(3, 1.0, "gaussian", 5, 1.5, 0.01, 0.03, (0.5, 0.5), "none")
    theirs = mm.MultiScaleSSIMMetric(3, 1.0, "gaussian", 5, 1.5, 0.01, 0.03, (0.5, 0.5), "none")
    torch.testing.assert_close(ours(noisy, volume).double(), theirs(noisy, volume).double(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"max_val .* or data_range"):
        PSNRMetric(1.0, data_range="reference")
    with pytest.raises(TypeError, match="max_val must be a number"):
        PSNRMetric("reference")
    with pytest.raises(TypeError):
        MAEMetric(spatial_dims=2, window=3)  # unknown keywords are rejected


def test_registry_score_feeds_each_metric_what_it_declares():
    """``MetricInfo.score`` is the one call of the scorer, the benchmark, the sensitivity runner and the demo: the
    region mask goes to metrics that take one, declared further images (K-CROSS: source, lesion) to those that
    declare them, and nothing else."""
    from monai_kcross.metrics import kcross

    pred, ref = perturbed_pair((1, 1, 40, 44), seed=4, dtype=torch.float32)
    source = ref.flip(-1)
    region = torch.zeros(1, 1, 40, 44, dtype=torch.bool)
    region[..., 8:30, 8:30] = True
    lesion = torch.zeros_like(region)
    lesion[..., 12:20, 12:20] = True
    inputs = {"source": source, "lesion": lesion, "unrelated": ref}
    ssim_info = monai_kcross.get_metric_info("ssim")
    torch.testing.assert_close(
        ssim_info.score(pred, ref, mask=region, inputs=inputs, data_range=1.0),
        ssim(pred, ref, data_range=1.0, mask=region),
    )
    kcross_info = monai_kcross.get_metric_info("kcross")
    given = kcross_info.score(pred, ref, mask=region, inputs=inputs)
    torch.testing.assert_close(given, kcross(pred, ref, source, lesion))
    assert not torch.equal(given, kcross(pred, ref))  # the source and the lesion mask did reach it


@pytest.mark.parametrize(
    "info", [*monai_kcross.list_metrics(), *monai_kcross.list_no_reference_metrics()], ids=lambda i: i.name
)
def test_unknown_options_are_rejected_when_the_metric_is_built(info):
    """A misspelt option fails at construction with a TypeError naming it, not at the first batch (or never).
    The downstream-segmentation scores forward their options to the segmentation call, which checks them then."""
    if info.name.startswith("seg_"):
        metric = monai_kcross.create_metric(info.name, not_an_option=1, **metric_options(info))
        image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        with pytest.raises(TypeError, match="not_an_option"):
            metric(image, image)
        return
    with pytest.raises(TypeError, match="not_an_option"):
        monai_kcross.create_metric(info.name, not_an_option=1)


def test_class_defaults_equal_the_function_defaults():
    """An option declared on a metric class and on its function has one default (GMSD's ``t``, HaarPSI's ``c``,
    ...): a class default that drifts from the function's would give different numbers through the two APIs.
    PSNRMetric's ``data_range=None`` is the one exception: ``None`` means "``max_val`` or, without it, the
    function's default"."""
    empty = inspect.Parameter.empty
    drift = []
    for info in [*monai_kcross.list_metrics(), *monai_kcross.list_no_reference_metrics()]:
        fixed = dict(getattr(info, "options", ()))
        function = inspect.signature(info.function).parameters
        for name, parameter in inspect.signature(info.metric_class.__init__).parameters.items():
            theirs = function.get(name)
            if name in fixed or theirs is None or empty in (parameter.default, theirs.default):
                continue
            if parameter.default != theirs.default:
                drift.append((info.name, name, parameter.default, theirs.default))
    assert drift == [("psnr", "data_range", None, "reference")]
    assert PSNRMetric()(torch.full((1, 1, 8, 8), 0.5), torch.eye(8)[None, None]).item() == pytest.approx(
        float(psnr(torch.full((1, 1, 8, 8), 0.5), torch.eye(8)[None, None]))
    )
