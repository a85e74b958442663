"""Golden radiomic features and FRD values from PyRadiomics and frd-score (run once in a throw-away venv).

    python -m venv /tmp/frd && /tmp/frd/bin/pip install pyradiomics-bhklab==3.1.4 frd-score==1.0.1
    /tmp/frd/bin/python tests/golden/make_radiomics_golden.py

(``pyradiomics-bhklab`` is a packaging of PyRadiomics 3.1 that builds on Python 3.11; ``frd-score`` needs it.)
Writes ``radiomics_inputs.npz`` (small 2-D and 3-D images with masks, two image sets) and
``radiomics_golden.json``: PyRadiomics first-order, GLCM and GLRLM features of every image (2-D images as 2-D SimpleITK
images, 3-D as volumes; ``binWidth`` 25, ``voxelArrayShift`` 0 and 300), and the FRD of the two 2-D sets with
frd-score's v1 normalisation (z-score on the first set, NaN/Inf columns dropped, ``log`` of the squared
Fréchet distance) computed by frd-score's own functions on the PyRadiomics first-order and GLCM features.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from frd_score import frd as frd_module
from radiomics import featureextractor

HERE = Path(__file__).parent
GLCM = [
    "Autocorrelation",
    "JointAverage",
    "ClusterProminence",
    "ClusterShade",
    "ClusterTendency",
    "Contrast",
    "Correlation",
    "DifferenceAverage",
    "DifferenceEntropy",
    "DifferenceVariance",
    "JointEnergy",
    "JointEntropy",
    "Imc1",
    "Imc2",
    "Idm",
    "Idmn",
    "Id",
    "Idn",
    "InverseVariance",
    "MaximumProbability",
    "SumEntropy",
    "SumSquares",
]


def _images(rng: np.random.Generator, shape: tuple[int, ...], n: int, scale: float) -> np.ndarray:
    """Smooth random textures with a bright blob, intensities about 0..300 * scale."""
    out = []
    for _ in range(n):
        noise = rng.standard_normal(shape)
        for axis in range(len(shape)):  # cheap smoothing: running mean of 3 along each axis
            noise = (noise + np.roll(noise, 1, axis) + np.roll(noise, -1, axis)) / 3
        grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
        centre = rng.uniform(-0.4, 0.4, len(shape))
        blob = np.exp(-sum((g - c) ** 2 for g, c in zip(grid, centre)) / 0.15)
        out.append((120 + 90 * noise + 120 * blob) * scale)
    return np.stack(out)[:, None].astype(np.float64)


def _masks(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Ellipsoidal ROIs."""
    out = []
    for _ in range(n):
        grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
        radii = rng.uniform(0.5, 0.9, len(shape))
        out.append(sum((g / r) ** 2 for g, r in zip(grid, radii)) <= 1)
    return np.stack(out)[:, None].astype(np.uint8)


def _features(extractor, image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    result = extractor.execute(sitk.GetImageFromArray(image), sitk.GetImageFromArray(mask.astype(np.uint8)))
    return {k.replace("original_", ""): float(v) for k, v in result.items() if k.startswith("original_")}


def main() -> None:
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    rng = np.random.default_rng(2026)
    inputs = {
        "image2d": _images(rng, (24, 28), 4, 1.0),
        "mask2d": _masks(rng, (24, 28), 4),
        "image3d": _images(rng, (12, 14, 10), 3, 1.0),
        "mask3d": _masks(rng, (12, 14, 10), 3),
        "real2d": _images(rng, (16, 16), 30, 1.0),
        "generated2d": _images(rng, (16, 16), 30, 1.3),
    }
    np.savez_compressed(HERE / "radiomics_inputs.npz", **inputs)
    golden: dict = {"pyradiomics": radiomics.__version__, "frd_score": "1.0.1", "features": {}}
    for shift in (0, 300):
        settings = {"binWidth": 25, "voxelArrayShift": shift, "label": 1}
        extractor = featureextractor.RadiomicsFeatureExtractor(**settings)
        extractor.disableAllFeatures()
        extractor.enableFeaturesByName(firstorder=[], glcm=GLCM, glrlm=[])
        for dims in ("2d", "3d"):
            images, masks = inputs[f"image{dims}"], inputs[f"mask{dims}"]
            golden["features"][f"{dims}_shift{shift}"] = [
                _features(extractor, images[i, 0], masks[i, 0]) for i in range(len(images))
            ]
            golden["features"][f"{dims}_shift{shift}_nomask"] = [
                _features(extractor, images[i, 0], np.ones_like(masks[i, 0])) for i in range(1)
            ]
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=25, label=1)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(firstorder=[], glcm=GLCM)
    sets = []
    for key in ("real2d", "generated2d"):
        rows = [_features(extractor, img[0], np.ones(img.shape[1:], np.uint8)) for img in inputs[key]]
        sets.append(np.array([[row[k] for k in rows[0]] for row in rows], dtype=np.float64))
    # frd-score's v1 pipeline on these feature matrices: float32, z-score on set 1, NaN/Inf columns dropped
    sets = [s.astype(np.float32) for s in sets]
    normalised = [
        frd_module.z_score_normalize(s, 0, 1, replace_nan=False, base_distribution=sets[0], handle_std_zero=False)
        for s in sets
    ]
    keep = ~np.zeros(normalised[0].shape[1], dtype=bool)
    for s in normalised:
        keep &= np.isfinite(s).all(0)
    normalised = [s[:, keep] for s in normalised]
    distance = frd_module.calculate_frechet_distance(
        normalised[0].mean(0),
        np.cov(normalised[0], rowvar=False),
        normalised[1].mean(0),
        np.cov(normalised[1], rowvar=False),
    )
    golden["frd"] = {"squared_distance": float(distance), "frd": float(np.log(distance)), "features": int(keep.sum())}
    (HERE / "radiomics_golden.json").write_text(json.dumps(golden, indent=1))
    print(json.dumps(golden["frd"]))


if __name__ == "__main__":
    main()
