"""Properties every metric must have: ideal value for identical images, symmetry, mask consistency, dtypes."""

from __future__ import annotations

import math

import pytest
import torch

import monai_kcross
from monai_kcross.functional import MS_SSIM_WEIGHTS

from ..conftest import metric_options, perturbed_pair

METRICS = monai_kcross.list_metrics()
WITH_IDEAL = [info for info in METRICS if info.ideal is not None]  # DeepIQA's value depends on its training
SYMMETRIC = [info for info in METRICS if info.symmetric]


REGION_MASKS = [info for info in METRICS if info.masks]  # K-CROSS scores whole slices (its mask is a lesion's)


def tol(info) -> float:
    return 1e-6 if info.kind == "learned" else 1e-10  # trained networks compute in float32


def options(info) -> dict:
    return {**metric_options(info), **({"weights": MS_SSIM_WEIGHTS[:2]} if info.name == "ms_ssim" else {})}


def images(spatial_dims: int, dtype=torch.float64):
    shape = (2, 2, 40, 44) if spatial_dims == 2 else (2, 1, 40, 36, 34)
    return perturbed_pair(shape, seed=30 + spatial_dims, dtype=dtype)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("info", WITH_IDEAL, ids=lambda i: i.name)
def test_identical_images_give_the_ideal_value(info, spatial_dims):
    _, ref = images(spatial_dims)
    value = info.function(ref.clone(), ref, **options(info))
    assert value.shape == ref.shape[:2]
    if math.isinf(info.ideal):
        assert torch.all(torch.isinf(value) & (value > 0))
    else:
        torch.testing.assert_close(value, torch.full_like(value, info.ideal), atol=tol(info), rtol=0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("info", WITH_IDEAL, ids=lambda i: i.name)
def test_values_lie_in_the_documented_range_and_direction(info, spatial_dims):
    pred, ref = images(spatial_dims)
    value = info.function(pred, ref, data_range=1.0, **options(info))
    low, high = info.value_range
    assert torch.all((value >= low) & (value <= high))
    worse = info.function((pred + 0.3 * (pred - ref)).clamp(0, 1), ref, data_range=1.0, **options(info))
    better = worse < value if info.higher_is_better else worse > value
    assert torch.all(better), f"{info.name}: a larger distortion should score worse"


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("info", SYMMETRIC, ids=lambda i: i.name)
def test_symmetry_with_a_fixed_range(info, spatial_dims):
    pred, ref = images(spatial_dims)
    forward = info.function(pred, ref, data_range=1.0, **options(info))
    backward = info.function(ref, pred, data_range=1.0, **options(info))
    torch.testing.assert_close(forward, backward, atol=tol(info), rtol=0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("info", REGION_MASKS, ids=lambda i: i.name)
def test_all_ones_mask_equals_unmasked(info, spatial_dims):
    pred, ref = images(spatial_dims)
    odd = (slice(None), slice(None), slice(0, 39))  # odd sizes exercise the pyramid padding
    pred, ref = pred[odd], ref[odd]
    plain = info.function(pred, ref, **options(info))
    for mask in (torch.ones_like(ref, dtype=torch.bool), torch.ones(ref.shape[2:]), torch.ones_like(ref[:, :1])):
        masked = info.function(pred, ref, mask=mask, **options(info))
        torch.testing.assert_close(masked, plain, atol=tol(info), rtol=0)


@pytest.mark.parametrize("info", [info for info in WITH_IDEAL if info.masks], ids=lambda i: i.name)
def test_mask_changes_the_score_where_errors_are_local(info):
    _, ref = images(2)
    pred = ref.clone()
    pred[..., 5:25, 5:25] = 1.0 - pred[..., 5:25, 5:25]  # a local alteration
    region = torch.zeros(ref.shape[2:], dtype=torch.bool)
    region[2:30, 2:30] = True
    outside = ~region
    inside_score = info.function(pred, ref, mask=region, **options(info))
    outside_score = info.function(pred, ref, mask=outside, **options(info))
    if info.higher_is_better:
        assert torch.all(inside_score < outside_score)
    else:
        assert torch.all(inside_score > outside_score)


@pytest.mark.parametrize("info", METRICS, ids=lambda i: i.name)
def test_dtypes_agree(info):
    pred, ref = images(3)
    reference = info.function(pred, ref, data_range=1.0, **options(info))
    for dtype, tol in ((torch.float32, 1e-4), (torch.float16, 1e-2)):
        value = info.function(pred.to(dtype), ref.to(dtype), data_range=1.0, **options(info))
        assert value.dtype == torch.float32
        finite = torch.isfinite(reference)
        torch.testing.assert_close(value.double()[finite], reference[finite], atol=tol, rtol=tol)


@pytest.mark.parametrize("info", METRICS, ids=lambda i: i.name)
def test_batch_items_are_independent(info):
    pred, ref = images(2)
    together = info.function(pred, ref, **options(info))
    alone = torch.cat([info.function(pred[i : i + 1], ref[i : i + 1], **options(info)) for i in range(2)])
    torch.testing.assert_close(together, alone, atol=tol(info), rtol=0)


@pytest.mark.parametrize("info", METRICS, ids=lambda i: i.name)
def test_metatensor_input(info):
    from monai.data import MetaTensor

    pred, ref = images(2)
    value = info.function(MetaTensor(pred), MetaTensor(ref), **options(info))
    assert type(value) is torch.Tensor
    torch.testing.assert_close(value, info.function(pred, ref, **options(info)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("info", METRICS, ids=lambda i: i.name)
def test_cuda_equals_cpu(info):
    pred, ref = images(3, dtype=torch.float32)
    cpu = info.function(pred, ref, **options(info))
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # learned scores: TF32 convolutions differ
        gpu = info.function(pred.cuda(), ref.cuda(), **options(info))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
