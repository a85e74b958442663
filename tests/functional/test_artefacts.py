"""No-reference MR artefact scores (CPBD, blur effect, variance of the Laplacian, MLC/MSLC, AES, mean TV).

References: golden values of the cpbd package, Bayer's medimetrics, Marchetto et al.'s AES code and torchmetrics
(``tests/golden/make_artefact_golden.py``); scikit-image itself for blur effect, the Laplacian and Canny.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.feature import canny as skimage_canny
from skimage.filters import laplace
from skimage.measure import blur_effect as skimage_blur_effect

import monai_kcross
from monai_kcross.functional import (
    average_edge_strength,
    blur_effect,
    cpbd,
    laplacian_variance,
    mean_line_correlation,
    total_variation,
)
from monai_kcross.functional.edges import canny
from monai_kcross.registry import get_no_reference_metric_info, list_no_reference_metrics

GOLDEN = Path(__file__).parents[1] / "golden"
CASES = json.loads((GOLDEN / "artefact_golden.json").read_text())["cases"]
ARTEFACT_SCORES = [info for info in list_no_reference_metrics() if info.masks]


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    with np.load(GOLDEN / "artefact_inputs.npz") as data:
        return {k: torch.from_numpy(data[k].astype(np.float64)) for k in data.files}


def batch(image: torch.Tensor) -> torch.Tensor:
    return image[None, None]


def unit(image: torch.Tensor) -> torch.Tensor:
    return (image - image.min()) / (image.max() - image.min())


IMAGES = [name for name in CASES if name != "volume"]


# ---------------------------------------------------------------------------------------------- references


@pytest.mark.parametrize("name", IMAGES)
def test_line_correlation_and_edge_strength_equal_their_references(inputs, name):
    x, expected = batch(inputs[name]), CASES[name]
    assert float(mean_line_correlation(x)) == pytest.approx(expected["mlc"], abs=1e-12)
    if "mslc" in expected:
        assert float(mean_line_correlation(x, shift="half")) == pytest.approx(expected["mslc"], abs=1e-12)
    assert float(average_edge_strength(x)) == pytest.approx(expected["aes"], rel=1e-12)
    if "aes_masked" in expected:
        masked = average_edge_strength(x, mask=inputs["mr_mask"])
        assert float(masked) == pytest.approx(expected["aes_masked"], rel=1e-12)


@pytest.mark.parametrize("name", [n for n in IMAGES if "cpbd" in CASES[n]])
def test_cpbd_equals_the_authors_port(inputs, name):
    # exact but for ties of the thinned Sobel response at the 1e-14 level (summation order): camera has one
    assert float(cpbd(batch(inputs[name]))) == pytest.approx(CASES[name]["cpbd"], abs=2e-3)


def test_cpbd_tracks_blur(inputs):
    assert float(cpbd(batch(inputs["camera_blur"]))) < 0.1 < float(cpbd(batch(inputs["camera"])))
    assert float(cpbd(batch(inputs["mr_blur"]))) < float(cpbd(batch(inputs["mr"])))


@pytest.mark.parametrize("name", IMAGES)
def test_total_variation_equals_medimetrics_torchmetrics_and_its_definition(inputs, name):
    x = unit(inputs[name])
    l2, l1 = float(total_variation(batch(x))), float(total_variation(batch(x), norm="l1"))
    dx, dy = x[1:, 1:] - x[:-1, 1:], x[1:, 1:] - x[1:, :-1]  # backward differences, by hand
    assert l2 == pytest.approx(float(torch.sqrt(dx**2 + dy**2).mean()), rel=1e-12)
    assert l1 == pytest.approx(float((dx.abs() + dy.abs()).mean()), rel=1e-12)
    frame = torch.ones_like(x, dtype=torch.bool)
    frame[2:-2, 2:-2] = False
    if not bool(x[frame].any()):  # the peers' border conventions agree on images with a zero 2-pixel frame
        assert l2 == pytest.approx(CASES[name]["mean_tv"], rel=1e-12)
        assert l1 * CASES[name]["tv_voxels"] == pytest.approx(CASES[name]["tv_l1_sum"], rel=1e-12)


def test_volumes_slice_wise_scores_equal_the_per_slice_references(inputs):
    volume, mask = batch(inputs["volume"]), inputs["volume_mask"]
    expected = CASES["volume"]
    assert float(average_edge_strength(volume)) == pytest.approx(expected["aes"], rel=1e-12)
    assert float(average_edge_strength(volume, mask=mask)) == pytest.approx(expected["aes_masked"], rel=1e-12)
    assert float(mean_line_correlation(volume)) == pytest.approx(float(np.mean(expected["mlc_slices"])), abs=1e-12)


@pytest.mark.parametrize("name", ["mr", "mr_noise", "camera_blur"])
@pytest.mark.parametrize("h_size", [11, 4])
def test_blur_effect_and_laplacian_equal_scikit_image_2d(inputs, name, h_size):
    x = unit(inputs[name])
    reference = skimage_blur_effect(x.numpy(), h_size=h_size)
    assert float(blur_effect(batch(x), h_size=h_size)) == pytest.approx(reference, abs=1e-12)
    assert float(laplacian_variance(batch(x))) == pytest.approx(float(np.var(laplace(x.numpy()))), rel=1e-12)


def test_native_3d_scores_equal_scikit_image(inputs):
    volume = unit(inputs["volume"])
    assert float(blur_effect(batch(volume))) == pytest.approx(skimage_blur_effect(volume.numpy()), abs=1e-12)
    expected = float(np.var(laplace(volume.numpy())))
    assert float(laplacian_variance(batch(volume))) == pytest.approx(expected, rel=1e-12)


def test_canny_equals_scikit_image(inputs):
    for name, sigma, low, high in (("camera", 1.0, 0.1, 0.2), ("mr", math.sqrt(2), 0.05, 0.15)):
        x = unit(inputs[name])
        expected = skimage_canny(x.numpy(), sigma=sigma, low_threshold=low, high_threshold=high)
        mine = canny(x[None], sigma, low, high)[0].numpy()
        assert mine.any() and (mine == expected).all()


# ---------------------------------------------------------------------------------------------- 3-D, masks, policy


def test_3d_total_variation_of_a_ramp_is_its_slope():
    i, j, k = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in (6, 7, 8)), indexing="ij")
    ramp = batch(0.3 * i - 0.2 * j + 0.1 * k)
    assert float(total_variation(ramp, data_range=1.0)) == pytest.approx(math.sqrt(0.14), rel=1e-12)
    assert float(total_variation(ramp, data_range=1.0, norm="l1")) == pytest.approx(0.6, rel=1e-12)


def test_slice_wise_cpbd_pools_the_slices_of_a_volume(inputs):
    camera = unit(inputs["camera"])
    stack = torch.stack([camera] * 3, dim=-1)
    assert float(cpbd(batch(stack))) == pytest.approx(float(cpbd(batch(camera))), abs=1e-12)
    assert float(cpbd(batch(stack.movedim(-1, 0)), slice_axis=0)) == pytest.approx(float(cpbd(batch(camera))))
    mixed = torch.stack([camera, unit(inputs["camera_blur"])], dim=-1)
    both = sorted(float(cpbd(batch(mixed[..., s]))) for s in range(2))
    assert both[0] < float(cpbd(batch(mixed))) < both[1]


@pytest.mark.parametrize("info", ARTEFACT_SCORES, ids=lambda i: i.name)
def test_all_ones_mask_changes_nothing_and_empty_masks_follow_the_policy(inputs, info):
    x = batch(inputs["camera"]).expand(2, 1, -1, -1)
    options = dict(info.options)
    plain = info.function(x, **options)
    torch.testing.assert_close(info.function(x, mask=torch.ones(128, 128), **options), plain)
    empty = torch.zeros(2, 1, 128, 128)
    empty[0] = 1
    with pytest.raises(ValueError, match="empty"):
        info.function(x, mask=empty, **options)
    result = info.function(x, mask=empty, empty_mask="nan", **options)
    assert torch.isnan(result[1]).all() and torch.isfinite(result[0]).all()


def test_masks_restrict_the_pooled_voxels(inputs):
    x = unit(inputs["mr"])
    mask = inputs["mr_mask"].bool()
    dx, dy = x[1:, 1:] - x[:-1, 1:], x[1:, 1:] - x[1:, :-1]
    inner = mask[1:, 1:]
    expected = float(torch.sqrt(dx**2 + dy**2)[inner].mean())
    assert float(total_variation(batch(x), mask=mask)) == pytest.approx(expected, rel=1e-12)
    laplacian = torch.from_numpy(laplace(x.numpy()))
    assert float(laplacian_variance(batch(x), mask=mask)) == pytest.approx(float(laplacian[mask].var(False)), rel=1e-10)


def test_intensity_policy(inputs):
    x = batch(inputs["mr"])
    scaled = 1000 * x + 50
    for function in (blur_effect, mean_line_correlation, cpbd, average_edge_strength, total_variation):
        torch.testing.assert_close(function(scaled), function(x))  # "image": each image's own min-max
    assert float(total_variation(x, data_range=2.0)) == pytest.approx(float(total_variation(x, data_range=1.0)) / 2)
    low, high = float(x.min()), float(x.max())
    torch.testing.assert_close(laplacian_variance(x, data_range=(low, high)), laplacian_variance(x))


def test_bad_input_is_named(inputs):
    x = batch(inputs["mr"])
    with pytest.raises(ValueError, match="constant"):
        total_variation(torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 64 pixels"):
        cpbd(x[..., :40])
    with pytest.raises(ValueError, match="shift must be"):
        mean_line_correlation(x, shift=0)
    with pytest.raises(ValueError, match="norm must be"):
        total_variation(x, norm="l3")
    with pytest.raises(ValueError, match="NaN"):
        blur_effect(torch.full((1, 1, 8, 8), math.nan))
    with pytest.raises(ValueError, match="data_range"):
        laplacian_variance(x, data_range="volume")
    with pytest.raises(ValueError, match="slice_axis"):
        average_edge_strength(batch(inputs["volume"]), slice_axis=3)
    with pytest.raises(ValueError, match="mask of shape"):
        total_variation(x, mask=torch.ones(5, 5))


# ---------------------------------------------------------------------------------------------- MONAI wiring


def test_registry_metrics_and_handlers(inputs):
    x = batch(inputs["camera"])
    mask = torch.ones(1, 1, 128, 128)
    for info in list_no_reference_metrics():
        metric = monai_kcross.create_metric(info.name)
        values = metric(torch.cat([x, x]))
        torch.testing.assert_close(
            values, info.function(torch.cat([x, x]), **dict(info.options)).float(), check_dtype=False
        )
        lo, hi = info.value_range
        assert bool(((values >= lo) & (values <= hi)).all())
        if info.masks:
            listed = metric([x[0], x[0]], mask=[mask[0], mask[0]])
            torch.testing.assert_close(listed, values)
        else:
            with pytest.raises(ValueError, match="takes no mask"):
                metric(x, mask=mask)
    assert get_no_reference_metric_info("MSLC").options == (("shift", "half"),)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['sigma'\]"):
        monai_kcross.create_metric("total_variation", sigma=1.0)
    with pytest.raises(ValueError, match="no-reference"):
        monai_kcross.create_metric("sharpness")


def test_handler_reads_images_and_masks_in_an_engine(inputs):
    from ignite.engine import Engine
    from monai.handlers import from_engine

    images = [batch(inputs[name])[0] for name in ("mr", "mr_blur")]
    masks = [inputs["mr_mask"][None].float()] * 2
    engine = Engine(lambda engine, data: [{"pred": p, "mask": m} for p, m in zip(*data)])
    monai_kcross.create_handler("aes", output_transform=from_engine(["pred", "mask"])).attach(engine, "aes")
    monai_kcross.create_handler("mslc", output_transform=from_engine(["pred"])).attach(engine, "mslc")
    engine.run([(images, masks)], max_epochs=1)
    expected = average_edge_strength(torch.stack(images), mask=inputs["mr_mask"]).mean()
    assert engine.state.metrics["aes"] == pytest.approx(float(expected), rel=1e-5)
    assert "mslc" in engine.state.metrics
