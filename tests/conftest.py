"""Shared fixtures: real brain anatomy from the bundled sample pair and deterministic perturbations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_kcross.data import load_sample_pair

GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def sample() -> dict:
    return load_sample_pair()


@pytest.fixture(scope="session")
def golden() -> dict:
    return json.loads((GOLDEN_DIR / "golden_values.json").read_text())["cases"]


@pytest.fixture(scope="session")
def golden_inputs() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / "inputs.npz") as data:
        return {k: data[k].astype(np.float64) for k in data.files}


def perturbed_pair(shape: tuple[int, ...], seed: int = 0, noise: float = 0.1, dtype=torch.float64):
    """A smooth random image in [0, 1] and a noisy copy, both ``(B, C, *spatial)``."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(shape, generator=generator, dtype=torch.float64)
    spatial = len(shape) - 2
    pool = torch.nn.functional.avg_pool2d if spatial == 2 else torch.nn.functional.avg_pool3d
    smooth = pool(base, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    smooth = (smooth - smooth.amin()) / (smooth.amax() - smooth.amin())
    noisy = (smooth + noise * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return noisy.to(dtype), smooth.to(dtype)


@pytest.fixture
def pair2d():
    return perturbed_pair((2, 1, 64, 72), seed=1)


@pytest.fixture
def pair3d():
    return perturbed_pair((2, 1, 40, 36, 32), seed=2)


RANDOM_WEIGHTS = {
    "lpips": {"backbone_weights": "random:1"},
    "dists": {"backbone_weights": "random:1"},
    "deepiqa": {"weights": "random:1"},
}


def threshold_segmenter(images: torch.Tensor) -> torch.Tensor:
    """A fast deterministic 'segmenter' of unit-range images: classes 0, 1, 2 split at 1/3 and 2/3; class 3 (the
    'lesion' of the lesion entries) above 0.9."""
    return (images[:, 0] > 1 / 3).long() + (images[:, 0] > 2 / 3).long() + (images[:, 0] > 0.9).long()


THRESHOLD_SEGMENTER = None


def _threshold_segmenter():
    global THRESHOLD_SEGMENTER
    if THRESHOLD_SEGMENTER is None:
        from monai_kcross.functional.segmentation import Segmenter

        def smoothed(images: torch.Tensor) -> torch.Tensor:  # blob-like maps of the smooth test images
            s = torch.nn.functional.avg_pool2d(images, 5, 1, 2, count_include_pad=False)[:, 0]
            return (s > 0.47).long() + (s > 0.53).long()

        THRESHOLD_SEGMENTER = Segmenter(smoothed, 2, ("background", "low", "high"), name="smoothed threshold")
    return THRESHOLD_SEGMENTER


def metric_options(info, small: bool = True) -> dict:
    """Options that let every registered metric run here: two MS-SSIM (three VIFp) scales for small images,
    deterministic random weights for the deep metrics whose ImageNet weights are not available in CI, and a
    smoothed-threshold segmenter for the downstream-segmentation scores (the package's segmenter is tested on
    brain images in test_segmentation.py)."""
    options = dict(RANDOM_WEIGHTS.get(info.name, {}))
    if getattr(info, "uses_segmenter", False):
        options["segmenter"] = _threshold_segmenter()
    if info.name == "ms_ssim" and small:
        options.update({"weights": (0.5, 0.5), "win_size": 7})
    if info.name == "iw_ssim" and small:
        options["weights"] = (0.5, 0.5)
    if info.name == "cw_ssim" and small:
        options["levels"] = 3  # 4 levels need 64 pixels per side
    if info.name == "vif_p" and small:
        options["scales"] = 3  # 4 scales need 41 pixels per side
    return options
