"""Every differentiable metric has finite, correct gradients: checked by finite differences (float64), at the
ideal value (``y_pred == y``), on volumes whose mask is empty on some slices, and through an optimiser step."""

from __future__ import annotations

import pytest
import torch

import monai_kcross
from monai_kcross.functional import (
    cw_ssim,
    fsim,
    gmsd,
    haarpsi,
    iw_ssim,
    mae,
    mdsi,
    ms_gmsd,
    ms_ssim,
    mse,
    nlpd,
    pcc,
    psnr,
    rmse,
    ssim,
    vif_p,
    vsi,
)
from monai_kcross.losses import MetricLoss
from monai_kcross.perceptual import dists, lpips
from monai_kcross.perceptual.feature_distance import FeatureDistance, feature_distance

# each metric with options for small images and the smallest side it accepts
CLASSIC = {
    "mae": (mae, {}, 8),
    "mse": (mse, {}, 8),
    "rmse": (rmse, {}, 8),
    "psnr": (psnr, {}, 8),
    "ssim": (ssim, {"win_size": 5}, 8),
    "ms_ssim": (ms_ssim, {"win_size": 3, "weights": (0.5, 0.5)}, 8),
    "gmsd": (gmsd, {}, 8),
    "ms_gmsd": (ms_gmsd, {}, 17),
    "nlpd": (nlpd, {}, 32),
    "haarpsi": (haarpsi, {}, 16),
    "vsi": (vsi, {}, 8),
    "fsim": (fsim, {}, 8),
    "vif_p": (vif_p, {"scales": 2}, 25),
    "iw_ssim": (iw_ssim, {"weights": (0.5, 0.5)}, 21),
    "mdsi": (mdsi, {}, 8),
    "cw_ssim": (cw_ssim, {"levels": 3}, 32),
    "pcc": (pcc, {}, 8),
}
SLICE_WISE = ["gmsd", "ms_gmsd", "nlpd", "haarpsi", "vsi", "fsim", "vif_p", "iw_ssim", "mdsi", "cw_ssim"]
# histogram counts have no gradient; MetricLoss names such metrics (see the last test)
WITHOUT_GRADIENT = {"nmi"}
# Dice/HD95 of argmax segmentations: piecewise constant, not a training loss (tested in test_segmentation.py)
SEGMENTATION = {"seg_dice", "seg_dice_lesion", "seg_hd95", "seg_hd95_lesion"}
# K-CROSS refuses gradients with a RuntimeError (rank-based harmonisation, thresholded lesions; test_kcross.py)
REFUSES_GRADIENTS = {"kcross"}
# VIF is not bounded by its ideal (a contrast-enhanced prediction scores above 1), so y_pred == y is not a
# stationary point: its gradient there is finite but not zero (its finite differences are checked above)
NOT_STATIONARY_AT_IDEAL = {"vif_p"}
RANDOM = {"backbone_weights": "random:1"}


def _pair(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference with structure and a zero background, and a noisy prediction (float64)."""
    generator = torch.Generator().manual_seed(seed)
    ref = torch.rand(shape, generator=generator, dtype=torch.float64)
    ref[..., : shape[2] // 4, :] = 0  # flat background: zero image gradients, zero Haar responses
    pred = ref + 0.05 * torch.randn(shape, generator=generator, dtype=torch.float64)
    return pred, ref


def _grad(function, pred: torch.Tensor, ref: torch.Tensor, **options) -> tuple[torch.Tensor, torch.Tensor]:
    pred = pred.clone().requires_grad_(True)
    value = function(pred, ref, **options)
    (grad,) = torch.autograd.grad(value.nansum(), pred)
    return value.detach(), grad


def test_every_registered_distance_is_covered():
    """The registry's classic metrics are all checked here (the deep ones below)."""
    names = {info.name for info in monai_kcross.list_metrics()}
    deep = {"lpips", "dists", "deepiqa", "feature_distance"}
    assert set(CLASSIC) <= names and names - set(CLASSIC) == deep | WITHOUT_GRADIENT | SEGMENTATION | REFUSES_GRADIENTS


@pytest.mark.parametrize("name", list(CLASSIC))
def test_gradcheck_2d(name):
    function, options, size = CLASSIC[name]
    pred, ref = _pair((2, 1, size, size + 3), seed=1)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: function(p, ref, **options), (pred,), fast_mode=True)


@pytest.mark.parametrize("name", list(CLASSIC))
def test_gradcheck_with_a_mask(name):
    function, options, size = CLASSIC[name]
    pred, ref = _pair((1, 1, size + 4, size + 4), seed=2)
    mask = torch.zeros(size + 4, size + 4, dtype=torch.bool)
    mask[2:-2, 3:] = True
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: function(p, ref, mask=mask, **options), (pred,), fast_mode=True)


@pytest.mark.parametrize("name", list(CLASSIC))
def test_gradient_at_the_ideal_value_is_zero(name):
    """At ``y_pred == y`` every metric is at its optimum: the gradient is 0 (sqrt and log have none there)."""
    function, options, size = CLASSIC[name]
    _, ref = _pair((2, 1, size, size + 3), seed=3)
    value, grad = _grad(function, ref, ref, **options)
    info = monai_kcross.get_metric_info(name)
    expected = torch.full_like(value, info.ideal)
    torch.testing.assert_close(value, expected, atol=1e-12 if name not in NOT_STATIONARY_AT_IDEAL else 1e-10, rtol=0)
    assert torch.isfinite(grad).all()
    if name not in NOT_STATIONARY_AT_IDEAL:
        torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", SLICE_WISE)
def test_volume_with_empty_slices_in_the_mask(name):
    """Slices without mask voxels (and all-zero slices) add nothing: finite score, zero gradient there."""
    function, options, size = CLASSIC[name]
    pred, ref = _pair((1, 1, size, size, 5), seed=4)
    pred[..., 4], ref[..., 4] = 0, 0  # an all-zero background slice, inside the mask
    mask = torch.zeros(size, size, 5, dtype=torch.bool)
    mask[2:-2, 2:-2, 2:] = True  # slices 0 and 1 empty
    value, grad = _grad(function, pred, ref, mask=mask, **options)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    assert (grad[..., :2] == 0).all() and grad[..., 2:4].abs().sum() > 0
    # the identity stays finite too
    _, grad = _grad(function, ref, ref, mask=mask, **options)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ["ssim", "ms_ssim", "mae", "psnr"])
def test_volume_with_a_partial_mask(name):
    function, options, _ = CLASSIC[name]
    pred, ref = _pair((1, 1, 16, 16, 16), seed=5)
    mask = torch.zeros(16, 16, 16, dtype=torch.bool)
    mask[4:12, 4:12, 4:12] = True
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: function(p, ref, mask=mask, **options), (pred,), fast_mode=True)


def test_empty_mask_nan_scores_keep_gradients_of_the_others_finite():
    pred, ref = _pair((2, 1, 32, 32), seed=6)
    mask = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    mask[0, :, 8:24, 8:24] = True  # image 1 has no region: NaN score, skipped by nansum
    for name, (function, options, _) in CLASSIC.items():
        value, grad = _grad(function, pred, ref, mask=mask, empty_mask="nan", **options)
        assert torch.isnan(value[1]).all() and torch.isfinite(value[0]).all(), name
        assert torch.isfinite(grad).all() and (grad[1] == 0).all(), name


@pytest.mark.parametrize("function", [lpips, dists], ids=["lpips", "dists"])
def test_deep_metrics_on_volumes_with_empty_mask_slices(function):
    generator = torch.Generator().manual_seed(7)
    ref = torch.rand(1, 1, 32, 32, 4, generator=generator)
    pred = ref + 0.05 * torch.randn(ref.shape, generator=generator)
    mask = torch.zeros(32, 32, 4, dtype=torch.bool)
    mask[4:28, 4:28, 2:] = True
    value, grad = _grad(function, pred, ref, mask=mask, **RANDOM)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    assert (grad[..., :2] == 0).all() and grad[..., 2:].abs().sum() > 0
    _, grad = _grad(function, ref, ref, mask=mask, **RANDOM)
    assert torch.isfinite(grad).all() and grad.abs().max() < 1e-6


def test_feature_distance_gradients_with_a_differentiable_input():
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
    torch.nn.init.constant_(network[0].bias, -10.0)  # all-zero feature vectors: the normalisation's kink
    distance = FeatureDistance(network, ["1", "2"])
    pred, ref = _pair((1, 1, 20, 20, 3), seed=8)
    mask = torch.zeros(20, 20, 3, dtype=torch.bool)
    mask[..., 1:] = True
    value, grad = _grad(feature_distance, pred.float(), ref.float(), mask=mask, distance=distance, data_range=1.0)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all() and (grad[..., 0] == 0).all()


def test_perceptual_loss_optimiser_step_keeps_weights_finite():
    """The issue's case: MetricLoss("gmsd") on volumes with empty mask slices and an exact background."""
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 1, 3, padding=1)
    source = torch.rand(2, 1, 32, 32, 6)
    source[..., 5] = 0
    target = source.clone()
    mask = torch.zeros(2, 1, 32, 32, 6, dtype=torch.bool)
    mask[:, :, 4:28, 4:28, 2:4] = True
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for name in ["gmsd", "ms_gmsd", "nlpd", "rmse", "mse", "mae"]:  # the distances (HaarPSI is a similarity)
        loss = MetricLoss(name, data_range=1.0)(model(source), target, mask=mask)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        assert torch.isfinite(loss), name
        assert all(torch.isfinite(p).all() for p in model.parameters()), name
    # at the optimum (prediction equals the target) the step leaves the weights unchanged
    identity = torch.nn.Conv3d(1, 1, 1, bias=False)
    torch.nn.init.ones_(identity.weight)
    loss = MetricLoss("gmsd", data_range=1.0)(identity(source), source, mask=mask)
    loss.backward()
    assert identity.weight.grad is not None and (identity.weight.grad == 0).all()


def test_loss_of_a_metric_without_gradient_raises():
    pred, ref = _pair((1, 1, 32, 32), seed=9)
    distance = FeatureDistance(
        torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), ["0"], preprocess=lambda x, y: (x.detach(), y)
    )
    with pytest.raises(ValueError, match="not differentiable"):
        MetricLoss("feature_distance", distance=distance)(pred.float().requires_grad_(True), ref.float())
    for name in WITHOUT_GRADIENT:  # no graph, so no silent zero gradient either
        assert not monai_kcross.get_metric_info(name).function(pred.clone().requires_grad_(True), ref).requires_grad
