"""Write simulated subjects to disk as NIfTI plus a MONAI datalist (splits by subject).

Files follow the BraTS naming (``<case>/<case>_t1.nii.gz``, ``_t2``, ``_pd``, ``_flair``, ``_seg`` for the
labels, ``_brain`` for the mask), so :func:`~monai_kcross.data.readers.find_brats_cases` reads them back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..progress import tqdm
from .synthesis import CONTRASTS, synthesize_brain

__all__ = ["build_paired_dataset", "split_subjects"]


def split_subjects(n_subjects: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> list[str]:
    """Deterministic split names (``training``/``validation``/``test``) for subject indices ``0..n-1``."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}.")
    n_val = round(n_subjects * fractions[1])
    n_test = round(n_subjects * fractions[2])
    n_train = n_subjects - n_val - n_test
    return ["training"] * n_train + ["validation"] * n_val + ["test"] * n_test


def _save(volume: Any, affine: np.ndarray, path: Path, dtype: type) -> None:
    array = np.asarray(volume)[0]
    image = nib.Nifti1Image(array.astype(dtype), affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def build_paired_dataset(
    out_dir: str | Path,
    n_subjects: int = 20,
    spatial_dims: int = 2,
    slices_per_subject: int = 1,
    lesion_fraction: float = 0.75,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    shape: tuple[int, ...] | None = None,
    progress: bool = True,
) -> Path:
    """Simulate subjects and write them with a datalist ``datalist.json``; returns the datalist path.

    Args:
        out_dir: output folder (created).
        n_subjects: number of simulated subjects (each its own deformation seed).
        spatial_dims: 2 (axial slices) or 3 (volumes).
        slices_per_subject: 2-D only: slices per subject (through the tumour, or random for healthy subjects).
        lesion_fraction: fraction of subjects with a tumour (the first ones of each split are healthy).
        seed: base seed; subject ``i`` uses seed ``seed * 100_003 + i``.
        fractions: training/validation/test fractions of subjects (splits never share a subject).
        shape: output spatial shape (see :func:`synthesize_brain`).
        progress: show a progress bar.

    Returns:
        Path of ``datalist.json`` with keys ``training``, ``validation``, ``test`` (entries: ``case``,
        ``subject``, ``lesion``, ``t1``, ``t2``, ``pd``, ``flair``, ``label``, ``brain``; paths relative to the
        datalist) and ``description``.
    """
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n_subjects}.")
    if spatial_dims == 3 and slices_per_subject != 1:
        raise ValueError("slices_per_subject applies to 2-D datasets only.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = split_subjects(n_subjects, fractions)
    rng = np.random.RandomState(seed)
    with_lesion = rng.permutation(n_subjects) < round(lesion_fraction * n_subjects)
    datalist: dict[str, Any] = {
        "description": (
            "monai-kcross simulated paired brain MRI (MNI152 anatomy, MR signal equations, synthetic BraTS-style "
            f"tumours); spatial_dims={spatial_dims}, seed={seed}"
        ),
        "training": [],
        "validation": [],
        "test": [],
    }
    jobs = [(s, k) for s in range(n_subjects) for k in range(slices_per_subject)]
    for subject, index in tqdm(jobs, desc="simulating", disable=not progress):
        subject_seed = seed * 100_003 + subject
        lesion = bool(with_lesion[subject])
        case = f"sim{seed:03d}_{subject:04d}" + (f"_s{index}" if spatial_dims == 2 else "")
        data = synthesize_brain(
            seed=subject_seed, spatial_dims=spatial_dims, lesion=lesion, shape=shape, slice_seed=index
        )
        folder = out / case
        folder.mkdir(exist_ok=True)
        affine = data["t1"].affine.numpy()
        entry = {"case": case, "subject": subject, "lesion": lesion}
        for contrast in CONTRASTS:
            _save(data[contrast], affine, folder / f"{case}_{contrast}.nii.gz", np.float32)
            entry[contrast] = f"{case}/{case}_{contrast}.nii.gz"
        _save(data["label"], affine, folder / f"{case}_seg.nii.gz", np.uint8)
        _save(data["brain"], affine, folder / f"{case}_brain.nii.gz", np.uint8)
        entry["label"] = f"{case}/{case}_seg.nii.gz"
        entry["brain"] = f"{case}/{case}_brain.nii.gz"
        datalist[splits[subject]].append(entry)
    path = out / "datalist.json"
    path.write_text(json.dumps(datalist, indent=1))
    return path
