"""Held-out cases and their benign / harmful variants (independent of ``monai_kcross``'s transforms).

A *case* is one 2-D slice through a lesion of a held-out subject: the reference (target contrast), the source
(T1w) and the lesion map. Its *variants* are "synthesized" images: the reference under one change.

Benign (global, clinically harmless): ``scale`` x1.15, ``offset`` +5 % of the 99th percentile, ``gamma`` 0.85,
``noise`` Rician sigma 2 % of white matter, ``blur`` Gaussian sigma 0.6 px, ``bias`` a smooth +-10 % field,
``window`` clipping at the 99.5th percentile.

Harmful (local, clinically relevant): ``lesion_removed`` (re-rendered without the lesion), ``lesion_hallucinated``
(re-rendered with a second lesion elsewhere in white matter), ``lesion_inverted`` (the lesion's contrast against
the surrounding white matter reflected), ``local_warp`` (a 3-voxel displacement confined around the lesion),
``lesion_shrunk`` (re-rendered with the lesion at half its radius).

Graded series (for the monotonicity contract): ``fade`` -- lesion contrast reduced by 25, 50, 75, 100 %;
``warp`` -- local displacement of 1, 2, 3, 4 voxels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .simulator import make_subject, metaball_lesion, render

BENIGN = ("scale", "offset", "gamma", "noise", "blur", "bias", "window")
HARMFUL = ("lesion_removed", "lesion_hallucinated", "lesion_inverted", "local_warp", "lesion_shrunk")
GRADED = {"fade": (0.25, 0.5, 0.75, 1.0), "warp": (1.0, 2.0, 3.0, 4.0)}
ORIENTATIONS = {"axial": 2, "coronal": 1, "sagittal": 0}


@dataclass
class Case:
    """One held-out slice: fractions and lesion maps kept so that harmful variants can be re-rendered."""

    name: str
    subject: int
    contrast: str
    orientation: str
    fractions: np.ndarray  # (3, H, W)
    lesion: np.ndarray  # (H, W) fraction
    second_lesion: np.ndarray  # (H, W) fraction, for the hallucination
    small_lesion: np.ndarray  # (H, W) fraction, the lesion at half radius
    seed: int
    images: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def reference(self) -> np.ndarray:
        return self.images["reference"]


def _slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(volume, index, axis=volume.ndim - 3 + axis)


def _crop_box(mask: np.ndarray, margin: int = 4) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return (
        slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
        slice(max(cols[0] - margin, 0), cols[-1] + margin + 1),
    )


def build_cases(
    anatomy: dict[str, np.ndarray],
    subjects: range,
    contrasts: tuple[str, ...] = ("t2", "flair"),
    orientations: tuple[str, ...] = ("axial",),
    radius_range: tuple[float, float] = (5.0, 9.0),
) -> list[Case]:
    """Cases of held-out subjects: per subject one lesion, per orientation the slice of largest lesion area."""
    cases = []
    for subject in subjects:
        rng = np.random.default_rng(10_000 + subject)
        volume = make_subject(anatomy, seed=subject)["fractions"]
        radius = rng.uniform(*radius_range)
        lesion = metaball_lesion(volume, rng, radius)
        core = np.argwhere(lesion > 0.5)
        centre = core.mean(0).round().astype(int) if len(core) else np.array(lesion.shape) // 2
        small = _half_radius(lesion, centre)
        for orientation in orientations:
            axis = ORIENTATIONS[orientation]
            area = (lesion > 0.5).sum(axis=tuple(a for a in range(3) if a != axis))
            index = int(area.argmax()) if area.max() > 0 else int(centre[axis])
            frac2d = _slice(volume, axis, index)
            box = _crop_box(frac2d.sum(0) > 0.5)
            frac_crop = np.stack([f[box] for f in frac2d])
            lesion_crop = _slice(lesion, axis, index)[box]
            small_crop = _slice(small, axis, index)[box]
            second = metaball_lesion(frac_crop, rng, radius, avoid=lesion_crop)
            for contrast in contrasts:
                case = Case(
                    name=f"s{subject:02d}-{orientation}-{contrast}",
                    subject=subject,
                    contrast=contrast,
                    orientation=orientation,
                    fractions=frac_crop,
                    lesion=lesion_crop,
                    second_lesion=second,
                    small_lesion=small_crop,
                    seed=100_000 + 7 * subject + ORIENTATIONS[orientation],
                )
                case.images["reference"] = render(case.fractions, case.lesion, contrast, case.seed)
                case.images["source"] = render(case.fractions, case.lesion, "t1", case.seed + 1)
                cases.append(case)
    return cases


def _half_radius(lesion: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The lesion shrunk to half its radius about its centre (zoom by 0.5 around the centre)."""
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in lesion.shape], indexing="ij"))
    coords = centre[:, None, None, None] + (grid - centre[:, None, None, None]) * 2.0
    return ndimage.map_coordinates(lesion, coords, order=1, mode="constant").astype(np.float32)


# ------------------------------------------------------------------------------------------ variants
def _wm_level(case: Case, image: np.ndarray) -> float:
    ring = ndimage.binary_dilation(case.lesion > 0.5, iterations=4) & ~ndimage.binary_dilation(
        case.lesion > 0.1, iterations=1
    )
    ring &= case.fractions[2] > 0.5
    return float(np.median(image[ring])) if ring.any() else float(np.median(image[case.fractions[2] > 0.5]))


def _local_warp(case: Case, image: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    core = np.argwhere(case.lesion > 0.5)
    centre = core.mean(0) if len(core) else np.array(image.shape) / 2
    radius = max(np.sqrt(max(len(core), 1) / np.pi), 3.0)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in image.shape], indexing="ij"))
    envelope = np.exp(-((grid - centre[:, None, None]) ** 2).sum(0) / (2 * (2.0 * radius) ** 2))
    angle = rng.uniform(0, 2 * np.pi)
    swirl = np.stack([np.cos(angle) * envelope, np.sin(angle) * envelope])
    # a direction field that rotates around the lesion makes the warp change shape, not just position
    radial = (grid - centre[:, None, None]) / (np.sqrt(((grid - centre[:, None, None]) ** 2).sum(0)) + 1e-6)
    displacement = amplitude * (0.6 * swirl + 0.4 * radial * envelope)
    return ndimage.map_coordinates(image, grid + displacement, order=1, mode="nearest").astype(np.float32)


def variant(case: Case, name: str, level: float | None = None) -> np.ndarray:
    """The reference of ``case`` under one benign or harmful change (``level`` for the graded series)."""
    ref = case.reference
    rng = np.random.default_rng(case.seed * 31 + sum(map(ord, name)))
    p99 = float(np.percentile(ref, 99))
    wm = float(np.median(ref[case.fractions[2] > 0.5]))
    if name == "scale":
        return ref * 1.15
    if name == "offset":
        return ref + 0.05 * p99
    if name == "gamma":
        return (np.clip(ref / p99, 0, None) ** 0.85 * p99).astype(np.float32)
    if name == "noise":
        sigma = 0.02 * wm
        return np.hypot(ref + rng.normal(0, sigma, ref.shape), rng.normal(0, sigma, ref.shape)).astype(np.float32)
    if name == "blur":
        return ndimage.gaussian_filter(ref, 0.6).astype(np.float32)
    if name == "bias":
        field = ndimage.gaussian_filter(rng.normal(0, 1, ref.shape), 25)
        field = field / max(np.abs(field).max(), 1e-6)
        return (ref * (1 + 0.1 * field)).astype(np.float32)
    if name == "window":
        return np.minimum(ref, np.percentile(ref, 99.5)).astype(np.float32)
    if name == "lesion_removed":
        return render(case.fractions, np.zeros_like(case.lesion), case.contrast, case.seed)
    if name == "lesion_hallucinated":
        return render(case.fractions, np.maximum(case.lesion, case.second_lesion), case.contrast, case.seed)
    if name == "lesion_shrunk":
        return render(case.fractions, case.small_lesion, case.contrast, case.seed)
    if name in ("lesion_inverted", "fade"):
        level_wm = _wm_level(case, ref)
        weight = np.clip(case.lesion, 0, 1)
        factor = 2.0 if name == "lesion_inverted" else float(level)
        return (ref - factor * weight * (ref - level_wm)).astype(np.float32)
    if name in ("local_warp", "warp"):
        return _local_warp(case, ref, 3.0 if level is None else float(level), rng)
    raise ValueError(f"unknown variant {name!r}")
