"""SSIM and MS-SSIM against scikit-image, MONAI 1.6 and pytorch-msssim, in 2-D and 3-D."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import pytorch_msssim
import torch
from monai.metrics import MultiScaleSSIMMetric as MonaiMSSSIM
from monai.metrics import SSIMMetric as MonaiSSIM
from skimage.metrics import structural_similarity

from monai_kcross.functional import MS_SSIM_WEIGHTS, ms_ssim, ssim

from ..conftest import perturbed_pair


def skimage_ssim(pred: torch.Tensor, ref: torch.Tensor, data_range: float, **kwargs) -> float:
    return structural_similarity(ref.numpy(), pred.numpy(), data_range=data_range, **kwargs)


WANG = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


@pytest.mark.parametrize("shape", [(64, 72), (30, 34, 28)])
def test_ssim_equals_skimage_wang_settings(shape):
    pred, ref = perturbed_pair((1, 1, *shape), seed=3)
    ours = ssim(pred, ref, data_range=1.0).item()
    assert ours == pytest.approx(skimage_ssim(pred[0, 0], ref[0, 0], 1.0, **WANG), abs=1e-6)


@pytest.mark.parametrize("shape", [(64, 72), (30, 34, 28)])
def test_ssim_float32_equals_skimage_to_1e4(shape):
    pred, ref = perturbed_pair((1, 1, *shape), seed=4, dtype=torch.float32)
    ours = ssim(pred, ref, data_range=1.0)
    assert ours.dtype == torch.float32
    expected = skimage_ssim(pred[0, 0].double(), ref[0, 0].double(), 1.0, **WANG)
    assert ours.item() == pytest.approx(expected, abs=1e-4)


def test_ssim_skimage_preset_equals_skimage_defaults():
    pred, ref = perturbed_pair((1, 1, 50, 45), seed=5)
    ours = ssim(pred, ref, data_range=1.0, preset="skimage").item()
    assert ours == pytest.approx(skimage_ssim(pred[0, 0], ref[0, 0], 1.0), abs=1e-6)
    pred3, ref3 = perturbed_pair((1, 1, 20, 22, 19), seed=6)
    ours3 = ssim(pred3, ref3, data_range=1.0, preset="skimage").item()
    assert ours3 == pytest.approx(skimage_ssim(pred3[0, 0], ref3[0, 0], 1.0), abs=1e-6)


def test_ssim_reference_range_on_real_mri_equals_skimage(sample):
    # scanner units (0..~3300): data_range="reference" maps the reference's [min, max] to [0, 1]
    ref = sample["reference"][..., 30:70].double()
    pred = sample["synthesized"][..., 30:70].double()
    assert ref.min() == 0  # so skimage's data_range=max-min without a shift is the same policy
    expected = skimage_ssim(pred[0, 0], ref[0, 0], float(ref.max() - ref.min()), **WANG)
    assert ssim(pred, ref).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 48, 52), (2, 1, 24, 26, 22)])
def test_ssim_equals_monai(shape):
    pred, ref = perturbed_pair(shape, seed=7, dtype=torch.float32)
    expected = MonaiSSIM(spatial_dims=len(shape) - 2, data_range=1.0, reduction="none")(pred, ref).flatten()
    ours = ssim(pred, ref, data_range=1.0).mean(dim=1)  # MONAI averages over channels
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_masked_ssim_averages_the_skimage_map_inside_the_mask():
    pred, ref = perturbed_pair((1, 1, 60, 64), seed=8)
    mask = torch.zeros(1, 1, 60, 64, dtype=torch.bool)
    mask[..., 10:40, 20:50] = True
    _, full = structural_similarity(ref[0, 0].numpy(), pred[0, 0].numpy(), data_range=1.0, full=True, **WANG)
    inner = (slice(5, -5), slice(5, -5))  # the 'valid' region of an 11-tap window
    expected = full[inner][mask[0, 0].numpy()[inner]].mean()
    assert ssim(pred, ref, data_range=1.0, mask=mask).item() == pytest.approx(expected, abs=1e-6)


def test_masked_ssim_3d_matches_masked_monai_map():
    pred, ref = perturbed_pair((1, 1, 26, 28, 30), seed=9)
    mask = torch.rand(1, 1, 26, 28, 30, generator=torch.Generator().manual_seed(0)) > 0.5
    from monai.metrics.regression import compute_ssim_and_cs

    ssim_map, _ = compute_ssim_and_cs(
        pred, ref, spatial_dims=3, kernel_size=(11,) * 3, kernel_sigma=(1.5,) * 3, data_range=1.0
    )
    valid = mask[..., 5:-5, 5:-5, 5:-5]
    expected = ssim_map.double()[valid].mean().item()
    assert ssim(pred, ref, data_range=1.0, mask=mask).item() == pytest.approx(expected, abs=1e-5)


def test_ms_ssim_2d_equals_monai_and_pytorch_msssim():
    pred, ref = perturbed_pair((2, 1, 192, 192), seed=10, dtype=torch.float32)
    ours = ms_ssim(pred, ref, data_range=1.0)
    monai = MonaiMSSSIM(spatial_dims=2, data_range=1.0, reduction="none")(pred, ref).flatten()
    torch.testing.assert_close(ours.flatten(), monai, atol=1e-5, rtol=0)
    reference = pytorch_msssim.ms_ssim(pred, ref, data_range=1.0, size_average=False)
    torch.testing.assert_close(ours.flatten(), reference, atol=1e-4, rtol=0)


def test_ms_ssim_3d_equals_monai_and_pytorch_msssim():
    pred, ref = perturbed_pair((2, 1, 48, 48, 48), seed=11, dtype=torch.float32)
    weights = (0.2, 0.3, 0.5)
    ours = ms_ssim(pred, ref, data_range=1.0, weights=weights, win_size=3).flatten()
    monai = MonaiMSSSIM(spatial_dims=3, data_range=1.0, kernel_size=3, weights=weights, reduction="none")
    torch.testing.assert_close(ours, monai(pred, ref).flatten(), atol=1e-5, rtol=0)
    reference = pytorch_msssim.ms_ssim(pred, ref, data_range=1.0, size_average=False, win_size=3, weights=weights)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


def test_ms_ssim_3d_default_scales_on_smallest_monai_volume():
    pred, ref = perturbed_pair((1, 1, 176, 176, 176), seed=12, noise=0.2, dtype=torch.float32)
    ours = ms_ssim(pred, ref, data_range=1.0).flatten()
    reference = pytorch_msssim.ms_ssim(pred, ref, data_range=1.0, size_average=False)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


def test_ms_ssim_too_small_names_the_minimum():
    pred, ref = perturbed_pair((1, 1, 170, 200), seed=13)
    with pytest.raises(ValueError, match=r"at least \(176, 176\) voxels"):
        ms_ssim(pred, ref, data_range=1.0)
    # fewer scales make it fit
    assert ms_ssim(pred, ref, data_range=1.0, weights=MS_SSIM_WEIGHTS[:4]).shape == (1, 1)


def test_sample_covariance_changes_only_the_normalisation():
    pred, ref = perturbed_pair((1, 1, 40, 40), seed=14)
    a = ssim(pred, ref, data_range=1.0, covariance="sample").item()
    b = skimage_ssim(pred[0, 0], ref[0, 0], 1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=True)
    assert a == pytest.approx(b, abs=1e-6)
    assert a != pytest.approx(ssim(pred, ref, data_range=1.0).item(), abs=1e-6)


def test_ssim_is_differentiable():
    pred, ref = perturbed_pair((1, 1, 32, 32), seed=15)
    pred.requires_grad_(True)
    ssim(pred, ref, data_range=1.0).sum().backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_ssim_chunked_pipeline_matches_one_shot(monkeypatch):
    # the slab pipeline must not depend on where the slabs are cut
    ssim_module = importlib.import_module("monai_kcross.functional.ssim")

    pred, ref = perturbed_pair((3, 2, 33, 29, 31), seed=16)
    mask = torch.rand(3, 1, 33, 29, 31, generator=torch.Generator().manual_seed(1)) > 0.3
    whole = ssim(pred, ref, data_range=1.0, mask=mask)
    monkeypatch.setattr(ssim_module, "_CPU_CHUNK_ELEMENTS", 29 * 31 * 12)
    torch.testing.assert_close(ssim(pred, ref, data_range=1.0, mask=mask), whole, atol=1e-12, rtol=0)
    np.testing.assert_array_less(-1.0, whole.numpy())
