"""Normalisation policies passed as ``data_range``: statistics against NumPy, masks, per-image mapping,
clipping, canonical names, and that every registered metric accepts them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import monai_kcross
from monai_kcross.functional import (
    IntensityPolicy,
    intensity_policy_name,
    intensity_window,
    mae,
    parse_data_range,
    psnr,
    ssim,
)

from .conftest import metric_options, perturbed_pair


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


@pytest.mark.parametrize("info", monai_kcross.list_metrics(), ids=lambda i: i.name)
def test_every_metric_accepts_a_masked_policy(info):
    pred, ref = mri_like((1, 1, 40, 44), seed=3)
    mask = region(ref.shape[2:])
    options = metric_options(info)
    value = info.function(pred, ref, data_range="percentile(0.5,99.5,clip,each)", mask=mask, **options)
    assert value.shape == (1, 1) and torch.isfinite(value).all()
    same = info.function(1.5 * pred + 10, ref, data_range="percentile(0.5,99.5,clip,each)", mask=mask, **options)
    tol = 1e-4 if info.name in {"lpips", "dists", "deepiqa", "feature_distance"} else 1e-9
    torch.testing.assert_close(same, value, atol=tol, rtol=tol)
