"""Data: the bundled sample pair, the MR simulator, dataset builders and readers for real layouts.

* :func:`load_sample_pair` -- the reference/synthesized sample pair used by the demo (``sample/README.md``);
* :func:`synthesize_brain` -- simulated paired T1w/T2w/PDw/FLAIR with BraTS-style tumour labels from real
  MNI152 anatomy and MR signal equations (:mod:`monai_kcross.data.synthesis`);
* :func:`build_paired_dataset` -- write simulated subjects as NIfTI plus a MONAI datalist;
* :func:`find_brats_cases`, :func:`find_ixi_cases`, :func:`read_quality_scores` -- index real BraTS 2021, IXI
  and NIRPS-style score lists.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from .builder import build_paired_dataset
from .readers import find_brats_cases, find_ixi_cases, parse_nirps_path, read_pair_datalist, read_quality_scores
from .synthesis import synthesize_brain

__all__ = [
    "SAMPLE_FILES",
    "build_paired_dataset",
    "find_brats_cases",
    "find_ixi_cases",
    "load_sample_pair",
    "parse_nirps_path",
    "read_pair_datalist",
    "read_quality_scores",
    "sample_data_dir",
    "synthesize_brain",
]

SAMPLE_FILES = {
    "reference": "reference_t1.nii.gz",
    "synthesized": "synthesized_t1.nii.gz",
    "brain_mask": "brain_mask.nii.gz",
    "lesion_mask": "lesion_mask.nii.gz",
}


def sample_data_dir() -> Path:
    """Folder holding the sample NIfTI files."""
    return Path(__file__).resolve().parent / "sample"


def load_sample_pair() -> dict[str, torch.Tensor | np.ndarray]:
    """Load the bundled sample pair as batch-first tensors.

    Returns:
        ``reference`` and ``synthesized``: float32 ``(1, 1, H, W, D)`` in scanner units (about 0-3300);
        ``brain_mask`` and ``lesion_mask``: bool ``(1, 1, H, W, D)``; ``affine``: the ``(4, 4)`` voxel-to-world
        matrix (numpy).

    Raises:
        FileNotFoundError: naming the missing file if the package data is incomplete.
    """
    folder = sample_data_dir()
    out: dict[str, torch.Tensor | np.ndarray] = {}
    for key, name in SAMPLE_FILES.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"sample file {path} is missing; reinstall monai-kcross.")
        image = nib.load(path)
        volume = torch.from_numpy(np.asarray(image.dataobj, dtype=np.float32))[None, None]
        out[key] = volume > 0 if key.endswith("mask") else volume
        out.setdefault("affine", image.affine)
    return out
