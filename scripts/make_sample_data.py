"""Build the sample pair shipped in ``monai_kcross/data/sample`` from the MNI ICBM152 2009 template.

The template (T1 plus grey/white-matter probability maps, 1 mm) ships inside the ``nilearn`` wheel, so this
runs offline. Run once, from the repository root::

    pip install --no-deps nilearn==0.14.1 scipy
    python scripts/make_sample_data.py            # or --template-dir DIR with the three .nii.gz files

What it writes (2 mm isotropic, cropped to the brain, int16 "scanner units" 0-4000 so that the
intensity policy matters as it does for real MRI):

* ``reference_t1.nii.gz`` -- the template T1 with a synthetic 12 mm hypo-intense lesion in right
  fronto-parietal white matter;
* ``synthesized_t1.nii.gz`` -- what a mediocre synthesis model might output: the anatomy without the lesion,
  slightly blurred (Gaussian sigma 0.6 voxel), with a smooth 6 % bias field and Rician noise (sigma 1.5 % of
  the white-matter intensity);
* ``brain_mask.nii.gz`` and ``lesion_mask.nii.gz`` -- uint8 masks.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

OUT = Path(__file__).resolve().parents[1] / "monai_kcross" / "data" / "sample"
NAMES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def find_template_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nilearn is not installed; pass --template-dir with the MNI152 2009 files.")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def block_mean(volume: np.ndarray, factor: int = 2) -> np.ndarray:
    shape = [s - s % factor for s in volume.shape]
    v = volume[: shape[0], : shape[1], : shape[2]]
    return v.reshape(shape[0] // factor, factor, shape[1] // factor, factor, shape[2] // factor, factor).mean((1, 3, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    template_dir = args.template_dir or find_template_dir()
    images = {key: nib.load(template_dir / name) for key, name in NAMES.items()}
    data = {key: block_mean(img.get_fdata(dtype=np.float64) / 255.0) for key, img in images.items()}
    affine = images["t1"].affine.copy()
    affine[:3, :3] *= 2.0

    brain = ndimage.binary_fill_holes(ndimage.binary_closing(data["gm"] + data["wm"] > 0.3, iterations=2))
    lo = np.maximum(np.argwhere(brain).min(0) - 3, 0)
    hi = np.minimum(np.argwhere(brain).max(0) + 4, brain.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    affine[:3, 3] += affine[:3, :3] @ lo
    t1, wm, brain = data["t1"][crop], data["wm"][crop], brain[crop]

    rng = np.random.default_rng(0)
    # lesion: smooth ellipsoid centred in deep white matter of the right hemisphere (+x is right in RAS)
    candidates = np.argwhere((ndimage.gaussian_filter(wm, 2.0) > 0.85) & (np.arange(t1.shape[0])[:, None, None] > 0))
    candidates = candidates[candidates[:, 0] > t1.shape[0] // 2 + 6]
    centre = candidates[len(candidates) // 2]
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in t1.shape], indexing="ij"), -1)
    radius = np.array([3.2, 3.0, 2.8])  # voxels of 2 mm
    distance = np.sqrt((((grid - centre) / radius) ** 2).sum(-1))
    blob = np.clip(1.5 - distance, 0.0, 1.0)
    lesion = distance <= 1.0
    reference = t1 * (1.0 - 0.55 * blob)

    wm_level = float(np.median(t1[wm > 0.9]))
    synth = ndimage.gaussian_filter(t1, 0.6)
    coords = (grid - np.array(t1.shape) / 2) / np.array(t1.shape)
    synth = synth * (1.0 + 0.06 * np.tanh(2.0 * coords[..., 0] + coords[..., 2]))
    sigma = 0.015 * wm_level
    synth = np.hypot(synth + rng.normal(0, sigma, t1.shape), rng.normal(0, sigma, t1.shape))

    scale = 3000.0 / wm_level  # white matter near 3000, like a T1w scan in arbitrary units
    args.out.mkdir(parents=True, exist_ok=True)
    for name, volume, dtype in (
        ("reference_t1", np.round(reference * scale), np.int16),
        ("synthesized_t1", np.round(synth * scale), np.int16),
        ("brain_mask", brain, np.uint8),
        ("lesion_mask", lesion, np.uint8),
    ):
        image = nib.Nifti1Image(np.clip(volume, 0, 32767).astype(dtype), affine)
        image.header.set_xyzt_units("mm")
        nib.save(image, args.out / f"{name}.nii.gz")
        print(f"wrote {args.out / name}.nii.gz {volume.shape} {dtype.__name__}")
    print(f"lesion centre (voxel) {tuple(int(c) for c in centre)}, {int(lesion.sum())} voxels")


if __name__ == "__main__":
    main()
