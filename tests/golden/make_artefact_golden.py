"""Golden values of the no-reference artefact scores from their reference implementations.

Run once in a throw-away environment, from the repository root, and commit ``artefact_inputs.npz`` and
``artefact_golden.json`` (never the reference code)::

    python -m venv /tmp/nrref && /tmp/nrref/bin/pip install numpy scipy scikit-image torch==2.13.0 torchmetrics \
        nibabel && /tmp/nrref/bin/pip install --no-deps cpbd==1.0.7
    /tmp/nrref/bin/python tests/golden/make_artefact_golden.py --medimetrics /path/mr-image-metrics \
        --marchetto /path/ImageQualityMetricsMRI

with ``/path/mr-image-metrics`` a checkout of github.com/Bayer-Group/mr-image-metrics (``medimetrics``: MLC,
MSLC, MeanTotalVar; not on PyPI) and ``/path/ImageQualityMetricsMRI`` one of
github.com/melanieganz/ImageQualityMetricsMRI (``metrics/gradient_metrics.py``: AES of Marchetto et al. 2025).
The references used:

* CPBD: the ``cpbd`` package 1.0.7 (Python port of Narvekar & Karam's MATLAB code); it imports
  ``scipy.ndimage.imread``, removed from SciPy, which is stubbed before the import (it is only used by the
  port's command-line entry point);
* MLC / MSLC / mean TV: ``medimetrics`` (its ``medimetrics.metrics`` package ``__init__`` imports LPIPS and
  torchvision, so the three modules are loaded directly from their files);
* AES: ``aes`` of ``ImageQualityMetricsMRI`` with ``crop=False, bin=False``, 2-D images as one-slice volumes,
  with and without its ``brainmask``; its unused ``utils.data_utils`` import (nibabel, dicom helpers) is
  stubbed;
* anisotropic TV: ``torchmetrics.functional.image.total_variation(reduction="sum")``.

Blur effect and the variance of the Laplacian are checked against scikit-image inside the test suite itself
(``skimage.measure.blur_effect``, ``skimage.filters.laplace``), and Canny against ``skimage.feature.canny``.

Inputs: real anatomy (axial slices of the bundled sample, unit range, padded with two zero rows and columns),
blurred, noisy and ghosted variants, a crop of scikit-image's ``camera`` photograph (CPBD needs 64x64 blocks)
with blur and noise, and an 8-slice volume.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "monai_kcross" / "data" / "sample"


def _ghosted(image: np.ndarray, phase: float = 1.0) -> np.ndarray:
    """Magnitude image with a phase error on every 4th phase-encoding line (N/4 ghosts)."""
    k = np.fft.fftshift(np.fft.fft2(image))
    k[::4] *= np.exp(1j * phase)
    return np.abs(np.fft.ifft2(np.fft.ifftshift(k)))


def build_inputs() -> dict[str, np.ndarray]:
    import skimage.data

    volume = np.asarray(nib.load(SAMPLE / "reference_t1.nii.gz").dataobj, dtype=np.float64)
    brain = np.asarray(nib.load(SAMPLE / "brain_mask.nii.gz").dataobj) > 0
    volume = np.pad(volume / volume.max(), ((2, 2), (2, 2), (0, 0)))
    brain = np.pad(brain, ((2, 2), (2, 2), (0, 0)))
    mr = volume[:, :, 40]
    rng = np.random.default_rng(17)
    camera = skimage.data.camera().astype(np.float64)[40:168, 60:188] / 255
    inputs = {
        "mr": mr,
        "mr_blur": ndimage.gaussian_filter(mr, 1.5),
        "mr_noise": np.clip(mr + rng.normal(0, 0.04, mr.shape), 0, None),
        "mr_ghost": _ghosted(mr),
        "camera": camera,
        "camera_blur": ndimage.gaussian_filter(camera, 2.0),
        "camera_noise": np.clip(camera + rng.normal(0, 0.05, camera.shape), 0, 1),
    }
    inputs = {k: v.astype(np.float32) for k, v in inputs.items()}
    inputs["volume"] = volume[:, :, 36:44].astype(np.float32)
    inputs["mr_mask"] = brain[:, :, 40].astype(np.uint8)
    inputs["volume_mask"] = brain[:, :, 36:44].astype(np.uint8)
    return inputs


def _load_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _medimetrics(root: Path) -> dict[str, types.ModuleType]:
    packages = (("medimetrics", root / "medimetrics"), ("medimetrics.metrics", root / "medimetrics" / "metrics"))
    for package, folder in packages:
        stub = types.ModuleType(package)
        stub.__path__ = [str(folder)]
        sys.modules[package] = stub
    _load_module("medimetrics.base", root / "medimetrics/base/__init__.py")
    return {
        name: _load_module(f"medimetrics.metrics.{name}", root / f"medimetrics/metrics/{name}.py")
        for name in ("line_corr", "total_var")
    }


def _marchetto_aes(root: Path):
    utils = types.ModuleType("utils")
    utils.__path__ = []
    data_utils = types.ModuleType("utils.data_utils")
    data_utils.crop_img = data_utils.bin_img = None  # unused with crop=False, bin=False
    sys.modules["utils"], sys.modules["utils.data_utils"] = utils, data_utils
    return _load_module("gradient_metrics", root / "metrics" / "gradient_metrics.py").aes


def _cpbd():
    import scipy.ndimage

    scipy.ndimage.imread = None  # removed from SciPy; the port imports it for its command-line entry point only
    from cpbd.compute import compute

    return compute


def unit(image: np.ndarray) -> np.ndarray:
    return (image - image.min()) / (image.max() - image.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--medimetrics", type=Path, required=True)
    parser.add_argument("--marchetto", type=Path, required=True)
    args = parser.parse_args()

    import torch
    import torchmetrics
    from torchmetrics.functional.image import total_variation

    inputs = build_inputs()
    np.savez_compressed(HERE / "artefact_inputs.npz", **inputs)
    inputs = dict(np.load(HERE / "artefact_inputs.npz"))  # score exactly what the tests read
    medimetrics = _medimetrics(args.medimetrics)
    aes = _marchetto_aes(args.marchetto)
    cpbd = _cpbd()
    cases: dict[str, dict[str, float]] = {}
    for name, image in inputs.items():
        if name.endswith("mask") or name == "volume":
            continue
        x = unit(image.astype(np.float64))
        h, w = x.shape
        values = {
            "mlc": float(medimetrics["line_corr"].MLC().compute(x)),
            "mean_tv": float(medimetrics["total_var"].MeanTotalVar().compute(x)),
            "tv_l1_sum": float(total_variation(torch.from_numpy(x)[None, None], reduction="sum")),
            "tv_voxels": (h - 1) * (w - 1),
            "aes": float(aes(x[None], crop=False)),
        }
        if h == w:  # medimetrics shifts columns by half the width too
            values["mslc"] = float(medimetrics["line_corr"].MSLC().compute(x))
        if min(h, w) >= 64:
            values["cpbd"] = float(cpbd(x * 255.0))
        cases[name] = values
    mr, mask = unit(inputs["mr"].astype(np.float64)), inputs["mr_mask"]
    cases["mr"]["aes_masked"] = float(aes(mr[None], brainmask=mask[None].astype(int), crop=False))
    volume = unit(inputs["volume"].astype(np.float64))
    slices, slice_masks = np.moveaxis(volume, -1, 0), np.moveaxis(inputs["volume_mask"], -1, 0).astype(int)
    cases["volume"] = {
        "aes": float(aes(slices, crop=False)),
        "aes_masked": float(aes(slices, brainmask=slice_masks, crop=False)),
        "mlc_slices": [float(medimetrics["line_corr"].MLC().compute(s)) for s in slices],
    }
    versions = {
        "cpbd": "1.0.7",
        "numpy": np.__version__,
        "scikit-image": __import__("skimage").__version__,
        "torchmetrics": torchmetrics.__version__,
    }
    (HERE / "artefact_golden.json").write_text(json.dumps({"versions": versions, "cases": cases}, indent=1) + "\n")
    print(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
