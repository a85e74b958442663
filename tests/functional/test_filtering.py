"""Filtering primitives: the shifted-sum and the banded-GEMM correlations against NumPy, and the metrics that
use them giving the same values on either path (CUDA takes the GEMM path; here it is forced on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import monai_kcross.functional as kf
from monai_kcross.functional import filtering
from monai_kcross.functional.filtering import band_filter_axis, filter_axis, gaussian_kernel1d, shift_filter_axis

from ..conftest import perturbed_pair


def _numpy_valid_correlation(x: np.ndarray, axis: int, taps: list[float]) -> np.ndarray:
    return np.apply_along_axis(lambda line: np.convolve(line, taps[::-1], mode="valid"), axis, x)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-13), (torch.float32, 1e-6)])
@pytest.mark.parametrize("axis", [-3, -2, -1])
def test_band_and_shift_filters_match_numpy_on_every_axis(axis, dtype, tolerance):
    x = torch.rand(2, 3, 17, 14, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(axis))
    taps = gaussian_kernel1d(7, 1.2).tolist()
    expected = torch.from_numpy(_numpy_valid_correlation(x.numpy(), axis % x.ndim, taps))
    for function in (band_filter_axis, shift_filter_axis):
        result = function(x.to(dtype), axis, taps)
        assert result.shape == expected.shape and result.dtype == dtype
        torch.testing.assert_close(result.double(), expected, atol=tolerance, rtol=0)
    transposed = x.transpose(-1, -3)  # a non-contiguous input
    torch.testing.assert_close(band_filter_axis(transposed, axis, taps), shift_filter_axis(transposed, axis, taps))
    with pytest.raises(ValueError, match="needs at least 7 samples"):
        band_filter_axis(x[..., :6], -1, taps)


def test_filter_axis_keeps_shifted_sums_on_the_cpu():
    x = torch.rand(1, 1, 32, 32)
    assert not filtering._prefers_band(x, [0.2] * 5)
    torch.testing.assert_close(filter_axis(x, -1, [0.2] * 5), shift_filter_axis(x, -1, [0.2] * 5), atol=0, rtol=0)


@pytest.mark.parametrize(
    "metric, shape",
    [
        ("ssim", (2, 1, 40, 44)),
        ("ssim", (1, 2, 30, 28, 26)),
        ("vif_p", (2, 1, 48, 48)),
        ("iw_ssim", (1, 1, 176, 176)),
        ("cw_ssim", (1, 1, 64, 64)),
    ],
)
def test_metrics_give_the_same_values_on_the_gemm_path(metric, shape, monkeypatch):
    pred, ref = perturbed_pair(shape, seed=5, dtype=torch.float64)
    options = {"weights": (0.5, 0.5)} if metric == "iw_ssim" else {}
    shifted = getattr(kf, metric)(pred, ref, data_range=1.0, **options)
    monkeypatch.setattr(filtering, "_prefers_band", lambda x, taps: len(taps) >= 5)
    banded = getattr(kf, metric)(pred, ref, data_range=1.0, **options)
    torch.testing.assert_close(banded, shifted, atol=1e-12, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_takes_the_gemm_path_only_in_full_precision():
    x = torch.rand(2, 1, 64, 64, device="cuda")
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        assert filtering._prefers_band(x, [0.2] * 5) and not filtering._prefers_band(x, [0.5] * 2)
        expected = kf.ssim(x.cpu(), x.cpu().flip(-1), data_range=1.0)
        torch.testing.assert_close(kf.ssim(x, x.flip(-1), data_range=1.0).cpu(), expected, atol=1e-6, rtol=0)
        torch.set_float32_matmul_precision("high")  # TF32 allowed: back to the exact shifted sums
        assert not filtering._prefers_band(x, [0.2] * 5) and filtering._prefers_band(x.double(), [0.2] * 5)
    finally:
        torch.set_float32_matmul_precision(previous)
