"""Reading one case of a scoring run: its images through MONAI's ``LoadImage`` (channel first, float32), with
the geometry of every image checked against the reference; errors name the case, the file and the difference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

IMAGE_KEYS = ("reference", "synthesized", "source", "mask", "lesion")


class CaseError(ValueError):
    """A case that cannot be scored (unreadable file, geometry mismatch); the message names the case."""


def _read(path: str, loader: Any, key: str, case: str) -> Any:
    try:
        return loader(path)
    except Exception as error:  # readers raise many types; the message must name the file
        reason = _first_line(error)
        hint = " (MHA/NRRD/DICOM need ITK: pip install itk)" if not path.lower().endswith((".nii", ".nii.gz")) else ""
        raise CaseError(f"case {case}: cannot read {key} {path}: {reason}{hint}") from error


def _spacing(affine: torch.Tensor) -> np.ndarray:
    matrix = np.asarray(affine, dtype=np.float64)[:-1, :-1]
    return np.linalg.norm(matrix, axis=0)


def load_case(case: Mapping[str, str], tolerance: float = 1e-3) -> dict[str, torch.Tensor]:
    """Read a case's images (channel first, float32) and check that their geometry matches the reference.

    Returns:
        ``{key: (C, *spatial) MetaTensor}`` for each image key of the case.

    Raises:
        CaseError: an unreadable file, or an image whose shape, spacing or affine differs from the reference
            (``tolerance`` in mm); the message names the case, the image and the difference.
    """
    from monai.transforms import LoadImage

    loader = LoadImage(image_only=True, ensure_channel_first=True, dtype=np.float32)
    name = case["case"]
    images = {key: _read(case[key], loader, key, name) for key in IMAGE_KEYS if key in case}
    reference = images["reference"]
    for key, image in images.items():
        if key == "reference":
            continue
        if tuple(image.shape[1:]) != tuple(reference.shape[1:]):
            raise CaseError(
                f"case {name}: {key} shape {tuple(image.shape[1:])} differs from the reference's "
                f"{tuple(reference.shape[1:])}."
            )
        if key in ("synthesized", "source") and image.shape[0] != reference.shape[0]:
            raise CaseError(f"case {name}: {key} has {image.shape[0]} channels, the reference {reference.shape[0]}.")
        mine, theirs = _spacing(image.affine), _spacing(reference.affine)
        if not np.allclose(mine, theirs, atol=tolerance):
            raise CaseError(
                f"case {name}: {key} voxel spacing {np.round(mine, 4).tolist()} differs from the reference's "
                f"{np.round(theirs, 4).tolist()}."
            )
        offset = float(np.abs(np.asarray(image.affine) - np.asarray(reference.affine)).max())
        if offset > tolerance:
            raise CaseError(
                f"case {name}: {key} affine (orientation/origin) differs from the reference's by up to {offset:.4g} mm."
            )
    for key, image in images.items():
        if not torch.isfinite(image).all():
            raise CaseError(f"case {name}: {key} {case[key]} contains NaN or Inf.")
    return images


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
