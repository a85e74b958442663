"""Bad input gets a ValueError that names the problem, never a silent number."""

from __future__ import annotations

import pytest
import torch

import monai_kcross
from monai_kcross.functional import ms_ssim, nlpd, ssim

from ..conftest import metric_options

METRICS = monai_kcross.list_metrics()


def kw(info) -> dict:
    """Options that make every metric accept 40-pixel images and run without external weights."""
    return metric_options(info)


def good(spatial_dims: int = 2) -> torch.Tensor:
    shape = (1, 1, 40, 40) if spatial_dims == 2 else (1, 1, 40, 40, 12)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("info", METRICS, ids=lambda i: i.name)
class TestEveryMetric:
    def test_shape_mismatch(self, info):
        with pytest.raises(ValueError, match="shape mismatch"):
            info.function(good(), good()[..., :-1], **kw(info))

    def test_spatial_dims_mismatch(self, info):
        with pytest.raises(ValueError, match=r"spatial_dims=3 expects \(B, C, H, W, D\)"):
            info.function(good(), good(), spatial_dims=3, **kw(info))

    def test_wrong_dimensionality(self, info):
        with pytest.raises(ValueError, match="got 3-D input"):
            info.function(good()[0], good()[0], **kw(info))

    @pytest.mark.parametrize("bad", [float("nan"), float("inf")])
    def test_nan_or_inf(self, info, bad):
        pred = good()
        pred[0, 0, 3, 4] = bad
        with pytest.raises(ValueError, match="y_pred` contains NaN or Inf"):
            info.function(pred, good(), **kw(info))

    @pytest.mark.parametrize("data_range", [0, -1.0, (1.0, 1.0), "max"])
    def test_bad_data_range(self, info, data_range):
        with pytest.raises(ValueError, match="data_range"):
            info.function(good(), good(), data_range=data_range, **kw(info))

    def test_constant_reference_with_reference_range(self, info):
        with pytest.raises(ValueError, match="reference is constant"):
            info.function(good(), torch.zeros(1, 1, 40, 40), data_range="reference", **kw(info))


@pytest.mark.parametrize("info", [info for info in METRICS if info.masks], ids=lambda i: i.name)
class TestEveryRegionMask:
    def test_empty_mask(self, info):
        with pytest.raises(ValueError, match="mask is empty"):
            info.function(good(), good(), mask=torch.zeros(40, 40, dtype=torch.bool), **kw(info))

    def test_mask_of_wrong_shape(self, info):
        with pytest.raises(ValueError, match="mask of shape"):
            info.function(good(), good(), mask=torch.ones(40, 39, dtype=torch.bool), **kw(info))

    def test_mask_values_outside_0_1(self, info):
        with pytest.raises(ValueError, match="mask values must be 0/1"):
            info.function(good(), good(), mask=torch.full((40, 40), 2.0), **kw(info))

    def test_empty_mask_nan_policy(self, info):
        mask = torch.zeros(2, 1, 40, 40, dtype=torch.bool)
        mask[0, :, 5:35, 5:35] = True
        pred, ref = good().repeat(2, 1, 1, 1), good().repeat(2, 1, 1, 1) * 0.9
        value = info.function(pred, ref, mask=mask, empty_mask="nan", **kw(info))
        assert torch.isfinite(value[0]).all() and torch.isnan(value[1]).all()


@pytest.mark.parametrize("info", [info for info in METRICS if not info.masks], ids=lambda i: i.name)
def test_a_region_mask_is_refused_where_a_metric_takes_none(info):
    """K-CROSS scores whole slices: a region mask must not be silently ignored (nor taken for its lesion mask)."""
    with pytest.raises(ValueError, match="no evaluation-region mask"):
        info.function(good(), good(), mask=torch.ones(40, 40, dtype=torch.bool), **kw(info))


def test_image_smaller_than_window():
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        ssim(torch.rand(1, 1, 8, 40), torch.rand(1, 1, 8, 40))


def test_image_smaller_than_ms_ssim_pyramid():
    with pytest.raises(ValueError, match="too small for 5 scales"):
        ms_ssim(torch.rand(1, 1, 100, 200), torch.rand(1, 1, 100, 200))


def test_image_smaller_than_nlpd_pyramid():
    with pytest.raises(ValueError, match="at least 32 pixels"):
        nlpd(torch.rand(1, 1, 20, 40), torch.rand(1, 1, 20, 40))


def test_mask_empty_inside_valid_region():
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[0:3, 0:3] = True  # only border voxels: no 11-tap window is centred there
    with pytest.raises(ValueError, match="'valid' region"):
        ssim(good(), good(), mask=mask)


def test_non_tensor_and_complex_inputs():
    with pytest.raises(ValueError, match=r"must be a torch\.Tensor"):
        ssim(good().numpy(), good())
    with pytest.raises(ValueError, match="complex"):
        ssim(torch.complex(good(), good()), good())


def test_bad_slice_axis():
    with pytest.raises(ValueError, match="slice_axis"):
        nlpd(good(3), good(3), slice_axis=3)


def test_unknown_preset_and_metric():
    with pytest.raises(ValueError, match="unknown SSIM preset"):
        ssim(good(), good(), preset="matlab")
    with pytest.raises(ValueError, match="unknown metric 'mad'"):
        monai_kcross.create_metric("mad")


@pytest.mark.parametrize("win_size", [4, (7, 8), 0, 2.5, True])
def test_ssim_window_must_be_a_positive_odd_integer(win_size):
    with pytest.raises(ValueError, match="win_size must be"):
        ssim(good(), good(), win_size=win_size)
    with pytest.raises(ValueError, match="win_size must be"):
        ms_ssim(good(), good(), win_size=win_size, weights=(0.5, 0.5))


def test_finite_check_names_the_argument_and_never_flags_finite_input():
    """The two inputs are checked with one synchronisation; a non-finite value is still attributed to its
    argument, and finite values whose float32 sum would overflow are not mistaken for Inf."""
    from monai_kcross.functional.validation import check_finite

    finite = good()
    broken = good()
    broken[0, 0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="`y` contains NaN or Inf"):
        check_finite(finite, broken, "test")
    with pytest.raises(ValueError, match="`y_pred` contains NaN or Inf"):
        check_finite(broken, finite, "test")
    huge = torch.full((1, 1, 40, 40), 1e300, dtype=torch.float64)  # its sum does not fit float32
    check_finite(finite, huge, "test")
    check_finite(huge, finite.half(), "test")
    with pytest.raises(ValueError, match="`y` contains NaN or Inf"):
        check_finite(finite, torch.full((1, 1, 4, 4), float("inf"), dtype=torch.float16), "test")
