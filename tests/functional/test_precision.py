"""Precision and range of float32 computation, against float64 references of the same float32 inputs.

Tolerances: MAE/MSE/RMSE relative 1e-6 (a few float32 roundings of the result; a sequential norm is off by
~1e-4), PSNR 1e-5 dB; SSIM-family and the slice-wise metrics 2e-5 absolute at every intensity scale that float32
can hold (1e-40 ... 3e38).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_kcross.functional import gmsd, haarpsi, mae, ms_gmsd, ms_ssim, mse, nlpd, psnr, rmse, ssim

from ..conftest import perturbed_pair


def _float32_pair(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    pred, ref = perturbed_pair(shape, seed=seed, dtype=torch.float32)
    return pred, ref


def _numpy_errors(pred: torch.Tensor, ref: torch.Tensor) -> dict[str, np.ndarray]:
    """float64 NumPy reference per image (pairwise float64 sums of the float32 inputs)."""
    p = pred.double().numpy().reshape(*pred.shape[:2], -1)
    r = ref.double().numpy().reshape(*ref.shape[:2], -1)
    d = p - r
    span = r.max(-1) - r.min(-1)
    squared = (d**2).mean(-1)
    return {
        "mae": np.abs(d).mean(-1),
        "mse": squared,
        "rmse": np.sqrt(squared),
        "psnr": 10 * np.log10(span**2 / squared),
    }


@pytest.mark.parametrize("shape", [(8, 1, 256, 256), (1, 1, 96, 96, 96)])
def test_pixelwise_float32_matches_float64_reference(shape):
    pred, ref = _float32_pair(shape, seed=30)
    pred = pred * 1000.0 + 7.0  # scanner-like units, so that float32 sums are not exact
    ref = ref * 1000.0 + 7.0
    expected = _numpy_errors(pred, ref)
    for name, function in (("mae", mae), ("mse", mse), ("rmse", rmse)):
        got = function(pred, ref).double().numpy()
        np.testing.assert_allclose(got, expected[name], rtol=1e-6, atol=0, err_msg=name)
    got = psnr(pred, ref).double().numpy()
    np.testing.assert_allclose(got, expected["psnr"], rtol=0, atol=1e-5)


# scale factors of both images: the extremes (denormal 1e-40, ~1e-30, 1e19, 1e20, ~3e38)
SCALES = [1e-40, 1e-30, 1e19, 1e20, 3.0e38]


@pytest.mark.parametrize("scale", SCALES)
def test_pixelwise_at_extreme_intensities(scale):
    pred, ref = _float32_pair((2, 1, 32, 32), seed=31)
    pred, ref = pred * scale, ref * scale  # float32: rounded (denormals lose bits); the reference sees the same
    expected = _numpy_errors(pred, ref)
    for name, function in (("mae", mae), ("rmse", rmse)):
        # raw-unit errors are returned in float32: at 1e-40 that is a denormal of a few significant bits
        got = function(pred, ref).double().numpy()
        rounded = expected[name].astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(got, rounded, rtol=1e-6, atol=3e-45, err_msg=name)
    for name, function in (("mae", mae), ("mse", mse), ("rmse", rmse)):  # range-relative errors are O(1)
        relative = function(pred, ref, data_range="reference").double().numpy()
        span = (ref.double().amax((2, 3)) - ref.double().amin((2, 3))).numpy()
        power = 2 if name == "mse" else 1
        np.testing.assert_allclose(relative, expected[name] / span**power, rtol=1e-6, atol=0, err_msg=name)
    got = psnr(pred, ref)
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.double().numpy(), expected["psnr"], rtol=0, atol=1e-5)


WINDOWED = {
    "ssim": (ssim, {}),
    "ms_ssim": (ms_ssim, {"weights": (0.3, 0.7), "win_size": 7}),
    "gmsd": (gmsd, {}),
    "ms_gmsd": (ms_gmsd, {}),
    "nlpd": (nlpd, {}),
    "haarpsi": (haarpsi, {}),
}


def _shifted(x: torch.Tensor) -> torch.Tensor:
    """Map [0, 1] onto [-3e38, 3e38] (a reference window wider than float32's range)."""
    return ((x - 0.5) * 2.0) * 3.0e38


@pytest.mark.parametrize("name", list(WINDOWED))
@pytest.mark.parametrize("transform", [*SCALES, "shift"], ids=lambda t: f"x{t:g}" if isinstance(t, float) else t)
def test_windowed_metrics_at_extreme_intensities(name, transform):
    function, options = WINDOWED[name]
    pred, ref = _float32_pair((2, 1, 40, 40), seed=32)
    pred, ref = (_shifted(pred), _shifted(ref)) if transform == "shift" else (pred * transform, ref * transform)
    assert torch.isfinite(pred).all() and torch.isfinite(ref).all()
    got = function(pred, ref, **options)
    expected = function(pred.double(), ref.double(), **options)  # float64 holds every float32 range exactly
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, atol=2e-5, rtol=0)


def test_ssim_on_a_huge_window_equals_the_unit_range_value():
    """SSIM with the reference range is invariant to an affine map of both images; float32 keeps that."""
    pred, ref = _float32_pair((2, 1, 40, 40), seed=33)
    unit = ssim(pred.double(), ref.double())
    for transform in (lambda x: x * 1e-40, lambda x: x * 3e38, _shifted):
        torch.testing.assert_close(ssim(transform(pred), transform(ref)).double(), unit, atol=2e-5, rtol=0)


def test_prediction_far_outside_the_reference_range_is_scored_in_float64():
    """A prediction 1e25 times the reference range: float32 statistics overflow, the float64 rerun does not."""
    pred, ref = _float32_pair((1, 1, 40, 40), seed=34)
    pred = pred * 1e25
    for function, options in [(rmse, {"data_range": 1.0}), (psnr, {}), (ssim, {}), (gmsd, {}), (nlpd, {})]:
        got = function(pred, ref, **options)
        expected = function(pred.double(), ref.double(), **options)
        assert torch.isfinite(got).all(), function.__name__
        torch.testing.assert_close(got.double(), expected.to(torch.float32).double(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("function", [mae, mse, psnr, ssim, gmsd], ids=lambda f: f.__name__)
def test_nan_or_inf_inputs_are_still_named(function):
    pred, ref = _float32_pair((1, 1, 32, 32), seed=35)
    for bad in (float("nan"), float("inf")):
        broken = pred.clone()
        broken[0, 0, 3, 4] = bad
        with pytest.raises(ValueError, match="`y_pred` contains NaN or Inf"):
            function(broken, ref)
        with pytest.raises(ValueError, match="`y` contains NaN or Inf"):
            function(pred, broken)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[10:20, 10:20] = True
    broken = pred.clone()
    broken[0, 0, 0, 0] = float("nan")  # outside the mask: still rejected
    with pytest.raises(ValueError, match="`y_pred` contains NaN or Inf"):
        function(broken, ref, mask=mask)
