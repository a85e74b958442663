"""Data shipped with the package: a small reference/synthesized sample pair (see ``sample/README.md``)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch

__all__ = ["SAMPLE_FILES", "load_sample_pair", "sample_data_dir"]

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
