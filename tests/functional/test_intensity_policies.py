"""Normalisation policies passed as ``data_range``: statistics against NumPy, masks, per-image mapping,
clipping, canonical names, and that every registered metric accepts them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import monai_kcross
from monai_kcross.functional import (
    IntensityPolicy,
    gmsd,
    intensity_policy_name,
    intensity_window,
    mae,
    mse,
    parse_data_range,
    psnr,
    rmse,
    ssim,
)

from ..conftest import metric_options, perturbed_pair


def mri_like(shape=(2, 1, 36, 40), seed=0):
    """Positive intensities on an arbitrary scale with a dark background, like unnormalised MRI."""
    pred, ref = perturbed_pair(shape, seed=seed)
    return 800 * pred + 40, 800 * ref + 40


def region(shape):
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[4:-6, 5:-3] = True
    return mask


@pytest.mark.parametrize("masked", [False, True])
def test_windows_equal_numpy_statistics(masked):
    _, ref = mri_like()
    mask = region(ref.shape[2:]) if masked else None
    for b in range(ref.shape[0]):
        values = ref[b, 0].numpy()
        values = values[mask.numpy()] if masked else values.ravel()
        expected = {
            "percentile": (np.percentile(values, 0.5), np.percentile(values, 99.5) - np.percentile(values, 0.5)),
            "zscore": (values.mean(), values.std()),
            "median_iqr": (np.median(values), np.percentile(values, 75) - np.percentile(values, 25)),
            "minmax": (values.min(), values.max() - values.min()),
            "volume_max": (0.0, ref[b, 0].numpy().max()),  # fastMRI: whole volume, mask or not
        }
        for kind, (low, span) in expected.items():
            w = None if mask is None else mask.reshape(1, 1, *mask.shape).double()
            got_low, got_span = intensity_window(ref, kind, mask=w)
            assert got_low[b, 0].item() == pytest.approx(low, abs=1e-9), kind
            assert got_span[b, 0].item() == pytest.approx(span, abs=1e-9), kind


def test_minmax_without_mask_is_the_reference_policy_and_defaults_unchanged():
    pred, ref = mri_like()
    torch.testing.assert_close(ssim(pred, ref, data_range="minmax"), ssim(pred, ref), atol=0, rtol=0)
    torch.testing.assert_close(psnr(pred, ref, data_range="minmax"), psnr(pred, ref), atol=0, rtol=0)
    for b in range(ref.shape[0]):  # fastMRI: data_range = max of the reference volume
        fastmri = psnr(pred[b : b + 1], ref[b : b + 1], data_range=(0.0, float(ref[b].max())))
        torch.testing.assert_close(psnr(pred, ref, data_range="volume_max")[b : b + 1], fastmri, atol=1e-12, rtol=0)


def test_masked_policy_uses_statistics_inside_the_mask():
    pred, ref = mri_like()
    mask = region(ref.shape[2:])
    ref_out = ref.clone()
    ref_out[..., ~mask] = 5000.0  # an outside outlier changes the unmasked window only
    pred_out = pred.clone()
    pred_out[..., ~mask] = 5000.0
    for kind in ("percentile", "zscore", "median_iqr", "minmax"):
        inside = mae(pred, ref, data_range=kind, mask=mask)
        torch.testing.assert_close(mae(pred_out, ref_out, data_range=kind, mask=mask), inside, atol=1e-12, rtol=0)
        assert not torch.allclose(mae(pred_out, ref_out, data_range=kind), mae(pred, ref, data_range=kind))


def test_each_removes_global_intensity_errors_and_reference_mapping_keeps_them():
    pred, ref = mri_like()
    shifted = 1.7 * pred + 300.0
    each = IntensityPolicy("zscore", each=True)
    torch.testing.assert_close(ssim(shifted, ref, data_range=each), ssim(pred, ref, data_range=each))
    torch.testing.assert_close(
        psnr(shifted, ref, data_range="median_iqr(each)"), psnr(pred, ref, data_range="median_iqr(each)")
    )
    assert torch.all(ssim(shifted, ref, data_range="zscore") < ssim(pred, ref, data_range="zscore") - 0.05)


def test_percentile_clips_both_images_to_the_window():
    pred, ref = mri_like((1, 1, 40, 40))
    spiky = pred.clone()
    spiky[0, 0, 3, 3] = 1e6  # one hot pixel in the prediction
    low, span = intensity_window(ref, "percentile")
    clipped = spiky.clamp(float(low), float(low + span))
    clipped_ref = ref.clamp(float(low), float(low + span))
    expected = mae(clipped, clipped_ref) / span.reshape(1, 1)
    torch.testing.assert_close(mae(spiky, ref, data_range="percentile"), expected)
    assert mae(spiky, ref, data_range="percentile(0.5,99.5,noclip)").item() > 10 * expected.item()


def test_names_round_trip_and_mark_masks():
    policies = [
        "reference",
        255.0,
        (-1000.0, 1000.0),
        IntensityPolicy("percentile"),
        IntensityPolicy("percentile", 1, 99, each=True, clip=False),
        IntensityPolicy("zscore", each=True),
        IntensityPolicy("median_iqr"),
        IntensityPolicy("minmax", clip=True),
        IntensityPolicy("volume_max"),
    ]
    names = [intensity_policy_name(p) for p in policies]
    assert names[:4] == ["reference", "window(0,255)", "window(-1000,1000)", "percentile(0.5,99.5,clip)"]
    assert names[4:] == ["percentile(1,99,noclip,each)", "zscore(each)", "median_iqr", "minmax(clip)", "volume_max"]
    assert [parse_data_range(n) for n in names[3:]] == policies[3:]
    assert parse_data_range("window(0,255)") == (0.0, 255.0) and parse_data_range("255") == 255.0
    assert intensity_policy_name("zscore", masked=True) == "zscore@mask"
    assert intensity_policy_name("volume_max", masked=True) == "volume_max"  # fastMRI ignores the mask
    assert intensity_policy_name("reference", masked=True) == "reference"


@pytest.mark.parametrize("bad", ["max", "zscore(7)", "percentile(1)", "percentile(99,1)", "window(1)", "minmax(x)"])
def test_bad_policies_are_rejected(bad):
    pred, ref = mri_like()
    with pytest.raises(ValueError, match="data_range"):
        psnr(pred, ref, data_range=bad)


def test_constant_region_is_rejected():
    pred, ref = mri_like()
    ref = ref.clone()
    mask = region(ref.shape[2:])
    ref[..., mask] = 7.0
    with pytest.raises(ValueError, match="constant"):
        ssim(pred, ref, data_range="zscore", mask=mask)


@pytest.mark.parametrize("info", [i for i in monai_kcross.list_metrics() if i.masks], ids=lambda i: i.name)
def test_every_metric_accepts_a_masked_policy(info):
    pred, ref = mri_like((1, 1, 40, 44), seed=3)
    mask = region(ref.shape[2:])
    options = metric_options(info)
    value = info.function(pred, ref, data_range="percentile(0.5,99.5,clip,each)", mask=mask, **options)
    assert value.shape == (1, 1) and torch.isfinite(value).all()
    same = info.function(1.5 * pred + 10, ref, data_range="percentile(0.5,99.5,clip,each)", mask=mask, **options)
    tol = 1e-4 if info.kind == "learned" else 1e-9
    torch.testing.assert_close(same, value, atol=tol, rtol=tol)


# -- policies with the numerics of the metrics: float64 statistics and sums, extreme ranges, gradients --------


def _numpy_policy_errors(pred: torch.Tensor, ref: torch.Tensor, kind: str, mask: torch.Tensor | None) -> np.ndarray:
    """MAE, MSE and PSNR of a policy without ``each``, per image, in float64 NumPy (statistics inside ``mask``)."""
    rows = []
    for b in range(ref.shape[0]):
        p, r = pred[b, 0].double().numpy(), ref[b, 0].double().numpy()
        inside = np.ones(r.shape, bool) if mask is None else mask.numpy()
        values = r[inside]
        if kind == "percentile":
            low, high = np.percentile(values, 0.5), np.percentile(values, 99.5)
            p, r, span = np.clip(p, low, high), np.clip(r, low, high), high - low
        elif kind == "zscore":
            span = values.std()
        else:  # median_iqr
            span = np.percentile(values, 75) - np.percentile(values, 25)
        d = (p - r)[inside]
        mse_value = (d**2).mean() / span**2
        rows.append([np.abs(d).mean() / span, mse_value, -10 * np.log10(mse_value)])
    return np.array(rows)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("kind", ["percentile", "zscore", "median_iqr"])
def test_policy_errors_on_float32_volumes_match_float64(kind, masked):
    """Masked statistics and the blocked float32-then-float64 sums together: MAE/MSE to 1e-6 relative, PSNR to
    1e-5 dB of a float64 NumPy computation on the same float32 inputs (a sequential float32 norm is ~1e-4 off)."""
    pred, ref = perturbed_pair((2, 1, 40, 44, 36), seed=60, dtype=torch.float32)
    pred, ref = 1000 * pred + 7, 1000 * ref + 7
    mask = None
    if masked:
        mask = torch.zeros(ref.shape[2:], dtype=torch.bool)
        mask[3:37, 5:40, 2:33] = True
    expected = _numpy_policy_errors(pred, ref, kind, mask)
    for column, function in enumerate((mae, mse, psnr)):
        got = function(pred, ref, data_range=kind, mask=mask)
        assert got.dtype == torch.float32
        tolerance = {"rtol": 0, "atol": 1e-5} if function is psnr else {"rtol": 1e-6, "atol": 0}
        np.testing.assert_allclose(got[:, 0].double().numpy(), expected[:, column], **tolerance)


@pytest.mark.parametrize("scale", [1e-40, 3e38], ids=["denormal", "huge"])
@pytest.mark.parametrize("policy", ["zscore", "percentile", "median_iqr(each)"])
def test_policies_at_the_ends_of_float32(policy, scale):
    """Statistics in float64 and maps in float64 where float32 cannot hold them: float32 inputs near 1e-40 or
    3e38 score like their float64 copies (a float32 z-score of 3e38 intensities overflows)."""
    pred, ref = perturbed_pair((2, 1, 40, 40), seed=61, dtype=torch.float32)
    pred, ref = pred * scale, ref * scale
    mask = region(ref.shape[2:])
    for function in (mae, psnr, ssim, gmsd):
        got = function(pred, ref, data_range=policy, mask=mask)
        expected = function(pred.double(), ref.double(), data_range=policy, mask=mask)
        assert got.dtype == torch.float32 and torch.isfinite(got).all(), function.__name__
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=2e-5, msg=function.__name__)


@pytest.mark.parametrize("policy", ["zscore(each)", "percentile(0.5,99.5,clip,each)", "median_iqr"])
@pytest.mark.parametrize("function", [mae, rmse, psnr, ssim, gmsd], ids=lambda f: f.__name__)
def test_policy_gradients_include_the_predictions_statistics(function, policy):
    """With ``each`` the prediction's own statistics depend on it: the gradient follows them (finite differences;
    the prediction has no tied intensities, where a percentile has no derivative)."""
    _, ref = mri_like((1, 1, 14, 17), seed=62)
    pred = ref + 40 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(62), dtype=ref.dtype)
    mask = torch.zeros(14, 17, dtype=torch.bool)
    mask[1:13, 2:16] = True
    options = {"win_size": 5} if function is ssim else {}
    pred = pred.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: function(p, ref, data_range=policy, mask=mask, **options), (pred,), fast_mode=True
    )
    # at the optimum the gradient is zero, not NaN
    same = ref.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(function(same, ref, data_range=policy, mask=mask, **options).sum(), same)
    assert torch.isfinite(grad).all() and grad.abs().max() < 1e-9


@pytest.mark.parametrize("function", [mae, psnr, ssim, gmsd], ids=lambda f: f.__name__)
def test_masked_policy_on_an_empty_mask_scores_nan(function):
    """``empty_mask="nan"`` with a masked policy: the image without mask voxels scores NaN (no "constant
    reference" error), the others keep their value and finite gradients."""
    pred, ref = mri_like((2, 1, 32, 32), seed=63)
    mask = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    mask[0, :, 6:26, 6:26] = True
    pred = pred.clone().requires_grad_(True)
    value = function(pred, ref, data_range="zscore(each)", mask=mask, empty_mask="nan")
    assert torch.isnan(value[1]).all() and torch.isfinite(value[0]).all()
    alone = function(pred[:1], ref[:1], data_range="zscore(each)", mask=mask[:1])
    torch.testing.assert_close(value[:1], alone)
    (grad,) = torch.autograd.grad(value.nansum(), pred)
    assert torch.isfinite(grad).all() and (grad[1] == 0).all() and grad[0].abs().sum() > 0


@pytest.mark.parametrize("function", [mae, psnr], ids=lambda f: f.__name__)
def test_clipping_policy_does_not_hide_nan_or_inf(function):
    """Clipping would turn an Inf voxel into a finite one: the inputs are checked before."""
    pred, ref = mri_like((1, 1, 32, 32), seed=64)
    broken = pred.clone()
    broken[0, 0, 3, 4] = float("inf")
    with pytest.raises(ValueError, match="`y_pred` contains NaN or Inf"):
        function(broken, ref, data_range="percentile")
    broken = ref.clone()
    broken[0, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="`y` contains NaN or Inf"):
        function(pred, broken, data_range="percentile(each)")
