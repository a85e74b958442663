"""Fit the NIQE and BRISQUE models shipped in ``monai_kcross/functional/nr_models`` (deterministic, offline).

Four models, two per metric::

    python scripts/fit_no_reference_models.py            # writes niqe_{mri,natural}.npz, brisque_{mri,natural}.npz

* ``niqe_mri``: pristine images are healthy brain slices of the package's MR simulator
  (``synthesize_brain(seed, spatial_dims=2, lesion=False, noise=(0.005, 0.01), slice_seed=k)``, seeds 0-23,
  slice seeds 0-3, contrasts T1w, T2w, PDw, FLAIR: 384 slices of 112x128); 32x32 patches, sharpness threshold
  0.75 (NIQE's ``estimatemodelparam`` recipe with a patch size that fits MR slices).
* ``niqe_natural``: the 13 photographs bundled with scikit-image (astronaut, camera, coffee, chelsea, rocket,
  immunohistochemistry, brick, grass, gravel, coins, moon, and both views of stereo_motorcycle; colour images
  converted with MATLAB's ``rgb2gray`` weights and rounded to 8 bits); 96x96 patches, threshold 0.75 (the
  paper's recipe on a smaller pristine set than its 125 images).
* ``brisque_mri``: 96 pristine slices (seeds 0-23, slice seed 0, the four contrasts) and, for each, three random
  strengths of four MR degradations: Gaussian blur (sigma 0.5-4 pixels), Rician noise (sigma 1-10 % of the
  slice's 99th percentile), k-space truncation (central 30-70 % of k-space kept: blur and Gibbs ringing) and
  ghosting (phase error 0.2-1.0 rad on every other phase-encoding line): 1248 images.
* ``brisque_natural``: up to four 256x256 crops of the photographs above and, for each, two random strengths of
  Gaussian blur (sigma 0.4-3), white noise (sigma 2-30 grey levels) and JPEG (quality 5-60, Pillow).

The BRISQUE target is ``100 (1 - SSIM(degraded, pristine))`` (``monai_kcross.functional.ssim``, Wang et al.'s
preset, ``data_range="reference"``): 0 for pristine images, larger for worse ones -- a full-reference proxy for
the LIVE DMOS that trained the original (not available offline). The regressor is RBF kernel ridge regression
(:func:`monai_kcross.functional.no_reference.fit_brisque_model`) on the 36 features; ``gamma`` and the ridge
are chosen by 4-fold cross-validation grouped by source image (subject for MRI) over a fixed grid. Random
numbers come from ``numpy.random.default_rng(2024)``; the output depends only on the package, scikit-image's
bundled images and Pillow's JPEG codec.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage, stats

from monai_kcross.data import synthesize_brain
from monai_kcross.functional import ssim
from monai_kcross.functional.brisque import _brisque_regress
from monai_kcross.functional.no_reference import (
    NR_MODEL_DIR,
    brisque_features,
    fit_brisque_model,
    fit_niqe_model,
    save_brisque_model,
    save_niqe_model,
)

CONTRASTS = ("t1", "t2", "pd", "flair")
NIQE_MRI_SEEDS, NIQE_MRI_SLICES = range(24), range(4)
BRISQUE_MRI_SLICES = range(1)
PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "coins",
    "moon",
)
GAMMAS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
RIDGES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
CROP = 256


def mri_slices(seeds: range, slices: range) -> list[tuple[int, int, np.ndarray]]:
    """``(subject seed, slice seed, slice (112, 128) float64)`` of the simulator's healthy low-noise slices."""
    out = []
    for seed in seeds:
        for slice_seed in slices:
            subject = synthesize_brain(seed, 2, lesion=False, noise=(0.005, 0.01), slice_seed=slice_seed)
            out += [(seed, slice_seed, subject[c][0].as_tensor().double().numpy()) for c in CONTRASTS]
    return out


def photographs() -> list[np.ndarray]:
    """The bundled scikit-image photographs as 8-bit grey images (float64 values 0-255)."""
    import skimage.data

    images = [getattr(skimage.data, name)() for name in PHOTOS]
    images += list(skimage.data.stereo_motorcycle()[:2])
    grey = []
    for image in images:
        if image.ndim == 3:  # MATLAB rgb2gray weights, rounded to 8 bits like MATLAB's uint8 arithmetic
            image = np.round(image[..., :3].astype(np.float64) @ np.array([0.298936021, 0.587043074, 0.114020904]))
        grey.append(image.astype(np.float64))
    return grey


def crops(image: np.ndarray, size: int = CROP) -> list[np.ndarray]:
    """Up to four non-overlapping ``size`` crops on a regular grid (top-left first)."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    return [image[r * size : (r + 1) * size, c * size : (c + 1) * size] for r in range(rows) for c in range(cols)][:4]


# --- degradations ----------------------------------------------------------------------------------------------


def blur(image: np.ndarray, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, rng.uniform(low, high), mode="reflect")


def rician(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(0.01, 0.10) * np.percentile(image, 99)
    return np.hypot(image + sigma * rng.standard_normal(image.shape), sigma * rng.standard_normal(image.shape))


def truncate_kspace(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    keep = rng.uniform(0.3, 0.7)
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    mask = np.zeros(image.shape, dtype=bool)
    half = [max(1, round(keep * s / 2)) for s in image.shape]
    centre = [s // 2 for s in image.shape]
    mask[centre[0] - half[0] : centre[0] + half[0], centre[1] - half[1] : centre[1] + half[1]] = True
    return np.abs(np.fft.ifft2(np.fft.ifftshift(np.where(mask, spectrum, 0))))


def ghost(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.fft2(image)
    phase = np.ones(image.shape[0], dtype=np.complex128)
    phase[1::2] = np.exp(1j * rng.uniform(0.2, 1.0))
    return np.abs(np.fft.ifft2(spectrum * phase[:, None]))


def white_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.round(image + rng.uniform(2, 30) * rng.standard_normal(image.shape)), 0, 255)


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="JPEG", quality=int(rng.integers(5, 61)))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float64)


MRI_DEGRADATIONS = (
    lambda x, rng: blur(x, rng, 0.5, 4.0),
    rician,
    truncate_kspace,
    ghost,
)
PHOTO_DEGRADATIONS = (
    lambda x, rng: np.round(blur(x, rng, 0.4, 3.0)),
    white_noise,
    jpeg,
)


# --- fitting ---------------------------------------------------------------------------------------------------


def degraded_set(pristine, degradations, rng, levels: int):
    """Images, groups and targets ``100 (1 - SSIM)`` of pristine images and their degraded versions."""
    images, groups, targets = [], [], []
    for group, image in pristine:
        reference = torch.from_numpy(image)[None, None]
        images.append(image), groups.append(group), targets.append(0.0)
        for degrade in degradations:
            for _ in range(levels):
                degraded = degrade(image, rng)
                quality = ssim(torch.from_numpy(degraded)[None, None], reference, data_range="reference").item()
                images.append(degraded), groups.append(group), targets.append(100.0 * (1.0 - quality))
    return images, np.asarray(groups), np.asarray(targets)


def features_of(images: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([brisque_features(torch.from_numpy(i)[None, None]).reshape(1, -1).numpy() for i in images])


def cross_validate(features: np.ndarray, targets: np.ndarray, groups: np.ndarray) -> tuple[float, float, dict]:
    """Grouped 4-fold CV over the (gamma, ridge) grid; returns the best pair and its pooled predictions."""
    unique = np.unique(groups)
    fold_of = {g: i % 4 for i, g in enumerate(unique)}
    folds = np.array([fold_of[g] for g in groups])
    best: tuple[float, float, float, np.ndarray] | None = None
    for gamma in GAMMAS:
        for ridge in RIDGES:
            predicted = np.zeros_like(targets)
            for fold in range(4):
                train, test = folds != fold, folds == fold
                model = fit_brisque_model(features[train], targets[train], gamma=gamma, ridge=ridge)
                predicted[test] = _brisque_regress(torch.from_numpy(features[test]), model).numpy()
            rmse = float(np.sqrt(np.mean((predicted - targets) ** 2)))
            if best is None or rmse < best[0]:
                best = (rmse, gamma, ridge, predicted)
    assert best is not None
    rmse, gamma, ridge, predicted = best
    summary = {
        "cv_rmse": rmse,
        "cv_spearman": float(stats.spearmanr(predicted, targets).statistic),
        "cv_pearson": float(np.corrcoef(predicted, targets)[0, 1]),
        "target_std": float(targets.std()),
    }
    return gamma, ridge, summary


def fit_brisque(name: str, images, groups, targets, recipe: str, out: Path) -> None:
    features = features_of(images)
    usable = np.isfinite(features).all(1)
    features, groups, targets = features[usable], groups[usable], targets[usable]
    gamma, ridge, summary = cross_validate(features, targets, groups)
    description = (
        f"{recipe}; target 100 (1 - SSIM); RBF kernel ridge gamma={gamma}, ridge={ridge}; "
        f"{len(targets)} images; grouped 4-fold CV: RMSE {summary['cv_rmse']:.2f} (target SD "
        f"{summary['target_std']:.2f}), Spearman {summary['cv_spearman']:.3f}"
    )
    model = fit_brisque_model(features, targets, gamma=gamma, ridge=ridge, description=description)
    save_brisque_model(model, out / f"brisque_{name}.npz")
    print(f"brisque_{name}: {description}")


def fit_niqe(name: str, images, patch_size: int, recipe: str, out: Path) -> None:
    tensors = [torch.from_numpy(i) for i in images]
    model = fit_niqe_model(tensors, patch_size=patch_size, sharpness_threshold=0.75)
    model["description"] = f"{recipe}; {model['n_patches']} patches of {model['n_images']} images"
    save_niqe_model(model, out / f"niqe_{name}.npz")
    print(f"niqe_{name}: {model['description']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=NR_MODEL_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    mri = mri_slices(NIQE_MRI_SEEDS, NIQE_MRI_SLICES)
    fit_niqe(
        "mri",
        [image for _, _, image in mri],
        32,
        "healthy simulator slices (synthesize_brain seeds 0-23, slice seeds 0-3, T1w/T2w/PDw/FLAIR, noise "
        "0.5-1 %), 32x32 patches, sharpness threshold 0.75",
        args.out,
    )
    photos = photographs()
    fit_niqe(
        "natural",
        photos,
        96,
        "scikit-image photographs (13, 8-bit grey), 96x96 patches, sharpness threshold 0.75",
        args.out,
    )

    rng = np.random.default_rng(2024)
    pristine = [(seed, image) for seed, slice_seed, image in mri if slice_seed in BRISQUE_MRI_SLICES]
    images, groups, targets = degraded_set(pristine, MRI_DEGRADATIONS, rng, levels=3)
    fit_brisque(
        "mri",
        images,
        groups,
        targets,
        "simulator slices (seeds 0-23, slice seed 0, 4 contrasts) with blur, Rician noise, k-space truncation "
        "and ghosting at 3 random strengths each",
        args.out,
    )
    photo_crops = [(index, crop) for index, photo in enumerate(photos) for crop in crops(photo)]
    images, groups, targets = degraded_set(photo_crops, PHOTO_DEGRADATIONS, rng, levels=2)
    fit_brisque(
        "natural",
        images,
        groups,
        targets,
        "256x256 crops of the scikit-image photographs with blur, white noise and JPEG at 2 random strengths each",
        args.out,
    )


if __name__ == "__main__":
    main()
