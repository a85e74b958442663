"""MAE, MSE, RMSE and PSNR against MONAI, scikit-image and direct NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import MAEMetric as MonaiMAE
from monai.metrics import MSEMetric as MonaiMSE
from monai.metrics import PSNRMetric as MonaiPSNR
from monai.metrics import RMSEMetric as MonaiRMSE
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

from monai_kcross.functional import mae, mse, psnr, rmse

from ..conftest import perturbed_pair


@pytest.mark.parametrize("shape", [(3, 1, 20, 24), (2, 1, 12, 10, 14)])
@pytest.mark.parametrize(("ours", "theirs"), [(mae, MonaiMAE), (mse, MonaiMSE), (rmse, MonaiRMSE)])
def test_errors_equal_monai(shape, ours, theirs):
    pred, ref = perturbed_pair(shape, seed=20, dtype=torch.float32)
    expected = theirs(reduction="none")(pred, ref).flatten()
    torch.testing.assert_close(ours(pred, ref).flatten(), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 1, 20, 24), (2, 1, 12, 10, 14)])
def test_psnr_equals_monai_and_skimage(shape):
    pred, ref = perturbed_pair(shape, seed=21, dtype=torch.float32)
    expected = MonaiPSNR(max_val=1.0, reduction="none")(pred, ref).flatten()
    torch.testing.assert_close(psnr(pred, ref, data_range=1.0).flatten(), expected, atol=1e-4, rtol=0)
    for b in range(shape[0]):
        sk = peak_signal_noise_ratio(ref[b, 0].double().numpy(), pred[b, 0].double().numpy(), data_range=1.0)
        assert psnr(pred[b : b + 1].double(), ref[b : b + 1].double(), data_range=1.0).item() == pytest.approx(sk)


def test_psnr_reference_range_on_scanner_units(sample):
    ref, pred = sample["reference"].double(), sample["synthesized"].double()
    span = float(ref.max() - ref.min())
    expected = peak_signal_noise_ratio(ref[0, 0].numpy(), pred[0, 0].numpy(), data_range=span)
    assert psnr(pred, ref).item() == pytest.approx(expected, rel=1e-12)
    # a numeric range and an explicit window give the matching values
    assert psnr(pred, ref, data_range=span).item() == pytest.approx(expected, rel=1e-12)
    assert psnr(pred, ref, data_range=(-100.0, span - 100.0)).item() == pytest.approx(expected, rel=1e-12)


def test_masked_errors_equal_numpy_inside_region(sample):
    ref, pred = sample["reference"].double(), sample["synthesized"].double()
    for name in ("brain_mask", "lesion_mask"):
        region = sample[name][0, 0].numpy()
        diff = pred[0, 0].numpy()[region] - ref[0, 0].numpy()[region]
        assert mae(pred, ref, mask=sample[name]).item() == pytest.approx(np.abs(diff).mean(), rel=1e-12)
        assert mse(pred, ref, mask=sample[name]).item() == pytest.approx((diff**2).mean(), rel=1e-12)
        sk = mean_squared_error(ref[0, 0].numpy()[region], pred[0, 0].numpy()[region])
        assert rmse(pred, ref, mask=sample[name]).item() == pytest.approx(np.sqrt(sk), rel=1e-12)


def test_relative_errors_use_the_reference_range(sample):
    ref, pred = sample["reference"].double(), sample["synthesized"].double()
    span = float(ref.max() - ref.min())
    assert mae(pred, ref, data_range="reference").item() == pytest.approx(mae(pred, ref).item() / span)
    assert mse(pred, ref, data_range=2.0).item() == pytest.approx(mse(pred, ref).item() / 4.0)


def test_per_channel_results():
    pred, ref = perturbed_pair((2, 3, 16, 16), seed=22)
    pred[:, 1] = ref[:, 1]  # channel 1 identical
    out = mae(pred, ref)
    assert out.shape == (2, 3)
    assert torch.all(out[:, 1] == 0) and torch.all(out[:, [0, 2]] > 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_large_images_sum_in_blocks_to_the_float64_value(dtype):
    """Above 262,144 voxels the unmasked sums run block by block through one reused buffer: the same value as a
    float64 NumPy sum, for a non-contiguous batch of several images and channels, whatever the block borders."""
    pred, ref = perturbed_pair((2, 3, 70, 66, 40), seed=7, dtype=torch.float32)
    pred, ref = pred.to(dtype).transpose(2, 4), ref.to(dtype).transpose(2, 4)  # (2, 3, 40, 66, 70), strided
    assert pred.numel() > 262_144 and not pred.is_contiguous()
    difference = pred.double().numpy() - ref.double().numpy()
    for function, expected in (
        (mae, np.abs(difference).mean(axis=(2, 3, 4))),
        (mse, (difference**2).mean(axis=(2, 3, 4))),
        (psnr, -10 * np.log10((difference**2).mean(axis=(2, 3, 4)))),
    ):
        value = function(pred, ref, **({"data_range": 1.0} if function is psnr else {}))
        assert value.shape == (2, 3) and value.dtype == torch.float32
        np.testing.assert_allclose(value.double().numpy(), expected, rtol=2e-6)
