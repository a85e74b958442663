"""A small folder set for the demo and the tutorials: simulated T2w references, T1w sources, brain and lesion
masks, and "synthesized" T2w images that are the reference with one controlled defect each.

Each subject gives one case per defect, named ``sub<i>_<defect>``, so that a scoring run shows which metric notices
what: ``mild_noise`` (the nearly perfect synthesis), ``noise``, ``blur``, ``ghosting`` (k-space phase errors),
``bias_field`` (a benign smooth intensity change) and ``lesion_removed`` (the tumour inpainted with healthy
tissue: small in MSE, fatal for a radiologist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from ..transforms import BiasField, GaussianBlur, LesionRemoval, MotionGhosting, RicianNoise
from .synthesis import synthesize_brain

__all__ = ["DEMO_DEFECTS", "write_demo_set"]

VOXEL_MM = 1.5


def _defects() -> dict[str, Any]:
    return {
        "mild_noise": RicianNoise(severity=0.1, max_sigma=0.1),
        "noise": RicianNoise(severity=0.6, max_sigma=0.1),
        "blur": GaussianBlur(severity=0.6, max_sigma=2.0),
        "ghosting": MotionGhosting(severity=0.25),
        "bias_field": BiasField(severity=0.8),
        "lesion_removed": LesionRemoval(severity=1.0),
    }


DEMO_DEFECTS = tuple(_defects())


def write_demo_set(
    out: str | Path, subjects: int = 3, seed: int = 0, shape: tuple[int, int] = (112, 128)
) -> dict[str, Path]:
    """Write the demo set as 2-D NIfTI files and return its folders.

    Args:
        out: destination; sub-folders ``reference``, ``synthesized``, ``source``, ``mask`` (brain) and ``lesion``.
        subjects: simulated subjects (each with a tumour), one case per defect each.
        seed: first subject's simulation seed (deterministic).
        shape: in-plane size of the axial slices.

    Returns:
        ``{"reference": path, "synthesized": ..., "source": ..., "mask": ..., "lesion": ...}``.
    """
    out = Path(out)
    folders = {key: out / key for key in ("reference", "synthesized", "source", "mask", "lesion")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    defects = _defects()
    for subject in range(subjects):
        images = synthesize_brain(seed=seed + subject, spatial_dims=2, shape=shape, contrasts=("t1", "t2"))
        lesion = images["label"] > 0
        for number, (defect, transform) in enumerate(defects.items()):
            transform.set_random_state(seed=1000 * (seed + subject) + number)
            synthesized = transform(images["t2"].clone(), region=lesion if defect == "lesion_removed" else None)
            name = f"sub{subject}_{defect}.nii.gz"
            arrays = {
                "reference": images["t2"],
                "synthesized": synthesized,
                "source": images["t1"],
                "mask": images["brain"],
                "lesion": lesion,
            }
            for key, array in arrays.items():
                data = np.asarray(
                    torch.as_tensor(array)[0], dtype=np.uint8 if key in ("mask", "lesion") else np.float32
                )
                nib.save(nib.Nifti1Image(data, affine), folders[key] / name)
    return folders
