"""Task-based quality labels for synthesized slices: the stand-in for radiologist ratings.

No radiologist ratings exist for the simulated dataset. Instead, every synthesized slice is scored by what a
clinician needs from it, measured with a fixed segmenter (:mod:`monai_kcross.networks.segmenter`) applied to
the synthesized and to the reference slice after rank normalisation inside the brain:

* ``lesion``: Dice of the lesion (whole tumour) found in the synthesized slice versus the one found in the
  reference; when the reference shows no lesion (fewer than ``min_lesion`` voxels), ``1 - min(1, FP / (2
  min_lesion))`` penalises hallucinated lesions;
* ``contrast``: agreement of the lesion-to-surroundings contrast, ``exp(-|c_syn - c_ref| / 0.15)`` with
  ``c = median(quantile in lesion) - median(quantile in a 1-3 voxel ring around it)`` (1 without a lesion);
* ``anatomy``: mean Dice of CSF, grey matter and white matter between the two segmentations.

``q = 0.4 lesion + 0.2 contrast + 0.4 anatomy`` in ``[0, 1]``; ``score = 1 + 9 q`` maps it onto the NIRPS
1-10 scale and ``level = round(score)``.

What the labels are: reproducible, clinically motivated proxies. Because rank normalisation is blind to any
strictly increasing global intensity mapping, scale, offset, gamma and windowing changes cost nothing, and the
segmenter, trained with Rician noise and blur, is robust to mild noise. What they are not: human judgements.
They inherit the segmenter's errors (Dice on held-out simulated slices: lesion 0.96, grey matter 0.95, white
matter 0.96, CSF 0.83), ignore artefacts that do not change tissue or lesion classification, and the weights
(0.4/0.2/0.4) are a design choice, not fitted to readers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..networks.segmenter import CLASSES, rank_normalize, segment

__all__ = ["QUALITY_WEIGHTS", "quality_labels"]

QUALITY_WEIGHTS = {"lesion": 0.4, "contrast": 0.2, "anatomy": 0.4}
_LESION = CLASSES.index("lesion")


def _dice(a: torch.Tensor, b: torch.Tensor) -> float | None:
    total = int(a.sum() + b.sum())
    return None if total == 0 else float(2 * (a & b).sum() / total)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return F.max_pool2d(mask[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


@torch.no_grad()
def quality_labels(
    synthesized: torch.Tensor,
    reference: torch.Tensor,
    brain: torch.Tensor,
    reference_label: torch.Tensor | None = None,
    segmenter: torch.nn.Module | None = None,
    min_lesion: int = 20,
) -> list[dict[str, Any]]:
    """Quality labels of synthesized slices ``(B, 1, H, W)`` against their references.

    Args:
        synthesized: synthesized slices, any intensity scale.
        reference: reference slices, same shape.
        brain: brain masks (of the reference), same shape.
        reference_label: optional ground-truth lesion labels of the reference (``> 0`` = lesion); used for the
            contrast measurement mask. The lesion Dice always compares segmenter outputs.
        segmenter: the segmenter network (default: the pretrained one shipped with the package).
        min_lesion: smallest lesion (voxels) counted as present in the reference.

    Returns:
        One dict per slice: ``score`` (1-10), ``level`` (int), ``q`` (0-1), ``lesion``, ``contrast``,
        ``anatomy`` (0-1 each), ``has_lesion``.
    """
    if synthesized.shape != reference.shape or synthesized.ndim != 4 or synthesized.shape[1] != 1:
        raise ValueError(
            f"quality_labels expects synthesized and reference slices of equal shape (B, 1, H, W), got "
            f"{tuple(synthesized.shape)} and {tuple(reference.shape)}."
        )
    brain = brain.reshape(reference.shape).bool()
    seg_syn = segment(synthesized, brain, segmenter)
    seg_ref = segment(reference, brain, segmenter)
    rank_syn, rank_ref = rank_normalize(synthesized, brain)[:, 0], rank_normalize(reference, brain)[:, 0]
    labels = []
    for index in range(reference.shape[0]):
        s, r = seg_syn[index], seg_ref[index]
        tissue_dice = [_dice(s == c, r == c) for c in (CLASSES.index(n) for n in ("csf", "gm", "wm"))]
        tissue_dice = [d for d in tissue_dice if d is not None]
        anatomy = sum(tissue_dice) / len(tissue_dice) if tissue_dice else 1.0
        lesion_ref = (reference_label[index].reshape(r.shape) > 0) if reference_label is not None else r == _LESION
        has_lesion = int((r == _LESION).sum()) >= min_lesion
        if has_lesion:
            lesion = _dice(s == _LESION, r == _LESION) or 0.0
            inner = lesion_ref if bool(lesion_ref.any()) else r == _LESION
            ring = _dilate(inner, 3) & ~_dilate(inner, 1) & brain[index, 0]
            if bool(ring.any()):
                c_ref = rank_ref[index][inner].median() - rank_ref[index][ring].median()
                c_syn = rank_syn[index][inner].median() - rank_syn[index][ring].median()
                contrast = float(torch.exp(-(c_syn - c_ref).abs() / 0.15))
            else:
                contrast = 1.0
        else:
            false_positive = int((s == _LESION).sum())
            lesion = 1.0 - min(1.0, false_positive / (2 * min_lesion))
            contrast = 1.0
        q = (
            QUALITY_WEIGHTS["lesion"] * lesion
            + QUALITY_WEIGHTS["contrast"] * contrast
            + QUALITY_WEIGHTS["anatomy"] * anatomy
        )
        score = 1.0 + 9.0 * q
        labels.append(
            {
                "score": score,
                "level": round(score),
                "q": q,
                "lesion": lesion,
                "contrast": contrast,
                "anatomy": anatomy,
                "has_lesion": has_lesion,
            }
        )
    return labels
