"""Domain-randomised brain MRI for training contrast-agnostic networks (in the spirit of SynthSeg).

Billot et al. (2023, "SynthSeg", Medical Image Analysis 86:102789) showed that a segmenter trained on images
whose contrast, resolution and artefacts are drawn at random from anatomical label maps works on real scans of
any contrast. This module applies the idea to what K-CROSS and its lesion finder need: paired images of one
anatomy under two random contrasts, with lesions of several kinds, in 2-D slices of any orientation or 3-D.

**Anatomy** -- tissue templates (GM, WM, CSF fractions and a brain mask, see
:func:`~monai_kcross.data.synthesis.load_tissue_template`): the shipped MNI152 2009a template plus any other
template found by :func:`available_templates` (``scripts/make_tissue_templates.py`` builds SRI24 and the CAT12
IXI555 template locally from PyPI wheels). Every subject is a template under a random affine map (rotation up to
12 degrees about each axis, scaling 0.85-1.15 per axis) and a smooth elastic deformation (up to 4 voxels).

**Lesions** (``LESION_KINDS``), each subject one kind, about a quarter healthy:

* ``tumour`` -- the BraTS-like tumours of :mod:`~monai_kcross.data.synthesis` (necrotic core, enhancing rim,
  oedema; 4-24 mm);
* ``wm_lesions`` -- 2-12 small ellipsoidal white-matter lesions 3-15 voxels across, periventricular (within 4
  voxels of the ventricles) or juxtacortical (within 2 voxels of grey matter);
* ``infarct`` -- an irregular cortical-subcortical lesion (7-20 voxels across) centred at the grey/white
  boundary, restricted to tissue.

Lesion compartments get their own random tissue properties in every image, so a lesion may be hyper- or
hypo-intense, but never invisible: its signal differs from the tissue around it by at least ``min_contrast``
of the image's tissue range.

**Contrast** -- per image, either MR physics with randomised parameters (spin echo, inversion recovery or
spoiled gradient echo; random TR/TE/TI/flip angle; tissue PD/T1/T2 jittered by up to 20 %) or a random
Gaussian-mixture intensity per compartment (SynthSeg's scheme). **Acquisition** -- random pixel spacing (0.9-3
mm per in-plane axis, i.e. thick slices seen side-on), slab thickness (partial volume across the slice), bias
field (up to +-30 %), blur, Rician noise (up to 5 % of the tissue range), spatially correlated tissue texture.

Everything is a deterministic function of the seeds. These are simulations for training; they are not used to
evaluate K-CROSS (``benchmarks/heldout`` holds a separate simulator for that).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..functional.filtering import gaussian_blur
from ..functional.foreground import enclosed_foreground
from .synthesis import TEMPLATE, _tumour, load_tissue_template

__all__ = [
    "COMPARTMENTS",
    "LESION_KINDS",
    "RandomisedBrains",
    "Scene",
    "available_templates",
    "random_subject",
    "segmentation_target",
]

COMPARTMENTS = ("gm", "wm", "csf", "ncr", "et", "ed", "wml", "inf")
LESION_COMPARTMENTS = ("ncr", "et", "ed", "wml", "inf")
LESION_KINDS = ("healthy", "tumour", "wm_lesions", "infarct")
TEMPLATES_ENV = "MONAI_KCROSS_TEMPLATES"

# nominal 3 T properties (PD relative, T1/T2 in ms) of the normal compartments; lesions are drawn per image
_NORMAL = {"gm": (0.80, 1330.0, 110.0), "wm": (0.69, 830.0, 80.0), "csf": (1.0, 4200.0, 2000.0)}


def available_templates(folder: str | Path | None = None) -> dict[str, str]:
    """Tissue templates for the generator: the shipped MNI152 one plus every ``*_tissues_*.nii.gz`` in ``folder``
    (default: ``$MONAI_KCROSS_TEMPLATES``), keyed by the name before ``_tissues``."""
    found = {"mni152": str(TEMPLATE)}
    folder = folder if folder is not None else os.environ.get(TEMPLATES_ENV)
    if folder:
        for path in sorted(Path(folder).glob("*_tissues_*.nii.gz")):
            found.setdefault(path.name.split("_tissues")[0], str(path))
    return found


# ----------------------------------------------------------------------------------------------- anatomy
def _smooth_field(shape: Sequence[int], sigma: float, generator: torch.Generator, count: int = 1) -> torch.Tensor:
    """``count`` smooth random fields ``(count, *shape)``, each scaled to a maximum absolute value of 1."""
    noise = torch.randn((count, *shape), generator=generator)
    field = gaussian_blur(noise[None], sigma, tuple(range(2, len(shape) + 2)))[0]
    return field / field.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *[1] * len(shape))


def _rotation(angles: Sequence[float]) -> torch.Tensor:
    """3-D rotation matrix from three angles (radians)."""
    matrix = torch.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        r = torch.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        matrix = r @ matrix
    return matrix


def _random_warp(maps: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Maps ``(C, x, y, z)`` under a random affine map and smooth elastic deformation (trilinear)."""
    shape = tuple(maps.shape[1:])
    axes = [torch.linspace(-1, 1, n) for n in shape]
    coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    u = lambda n: torch.rand(n, generator=generator) * 2 - 1  # noqa: E731
    angles = (u(3) * math.radians(12) * strength).tolist()
    scale = 1 + u(3) * 0.15 * strength
    extent = torch.tensor(shape, dtype=torch.float32)
    linear = _rotation(angles) * scale[None, :]
    # rotate in millimetre-like units (isotropic voxels), not in the normalised [-1, 1] box
    coords = ((coords * extent) @ linear.T) / extent
    knots = [max(2, n // 16) for n in shape]  # smooth displacement: random knots, trilinear upsampling
    displacement = F.interpolate(torch.randn((1, 3, *knots), generator=generator), size=shape, mode="trilinear")
    displacement = displacement[0] / displacement.abs().amax().clamp_min(1e-6)
    coords = coords + displacement.permute(1, 2, 3, 0) * 4.0 * strength * (2.0 / (extent - 1))
    grid = coords.flip(-1)[None]
    return F.grid_sample(maps[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def _ellipsoid(
    shape: Sequence[int], center: Sequence[float], radii: Sequence[float], wobble: torch.Tensor | None
) -> torch.Tensor:
    """Soft ellipsoid (1 inside, linear edge over one voxel) with an optional irregular outline."""
    axes = [torch.arange(n, dtype=torch.float32) for n in shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    distance = torch.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii)))
    if wobble is not None:
        distance = distance + 0.35 * wobble
    scale = float(min(radii))
    return ((1.0 - distance) * scale + 0.5).clamp(0, 1)


def _pick(candidates: np.ndarray, generator: torch.Generator) -> list[int] | None:
    if len(candidates) == 0:
        return None
    return candidates[int(torch.randint(len(candidates), (1,), generator=generator))].tolist()


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Cubic dilation of a 3-D bool mask by ``radius`` voxels (separable max pooling)."""
    x = mask[None, None].float()
    for axis in range(3):
        kernel, padding = [1, 1, 1], [0, 0, 0]
        kernel[axis], padding[axis] = 2 * radius + 1, radius
        x = F.max_pool3d(x, kernel, 1, padding)
    return x[0, 0] > 0


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return ~_dilate(~mask, radius)


def _wm_lesions(
    gm: torch.Tensor, wm: torch.Tensor, csf: torch.Tensor, brain: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Fraction map of 2-12 small periventricular / juxtacortical white-matter lesions."""
    ventricles = (csf > 0.5) & _erode(brain > 0.5, 8)
    white = wm > 0.5
    sites = {
        "periventricular": torch.nonzero(white & _dilate(ventricles, 4)).numpy(),
        "juxtacortical": torch.nonzero(white & _dilate(gm > 0.5, 2)).numpy(),
    }
    out = torch.zeros_like(wm)
    count = int(torch.randint(2, 13, (1,), generator=generator))
    for _ in range(count):
        kind = "periventricular" if torch.rand(1, generator=generator).item() < 0.6 else "juxtacortical"
        center = _pick(sites[kind], generator)
        if center is None:
            continue
        diameter = 3.0 + 12.0 * torch.rand(1, generator=generator).item() ** 1.5
        radii = (diameter / 2) * (0.6 + 0.8 * torch.rand(3, generator=generator))
        lo = [max(int(c - r - 3), 0) for c, r in zip(center, radii.tolist())]
        hi = [min(int(c + r + 4), n) for c, r, n in zip(center, radii.tolist(), wm.shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        size = [b - a for a, b in zip(lo, hi)]
        local = [c - a for c, a in zip(center, lo)]
        wobble = _smooth_field(size, 1.5, generator)[0] if min(size) > 3 else None
        out[box] = torch.maximum(out[box], _ellipsoid(size, local, radii.tolist(), wobble))
    return out * (wm + gm).clamp(0, 1)  # lesions replace tissue, never CSF


def _infarct(gm: torch.Tensor, wm: torch.Tensor, brain: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Fraction map of one irregular cortical-subcortical lesion at the grey/white boundary."""
    boundary = (gm > 0.35) & _dilate(wm > 0.5, 2) & (brain > 0.5)
    center = _pick(torch.nonzero(boundary).numpy(), generator)
    if center is None:
        return torch.zeros_like(wm)
    diameter = 7.0 + 13.0 * torch.rand(1, generator=generator).item()
    radii = (diameter / 2) * (0.6 + 0.8 * torch.rand(3, generator=generator))
    lo = [max(int(c - r - 4), 0) for c, r in zip(center, radii.tolist())]
    hi = [min(int(c + r + 5), n) for c, r, n in zip(center, radii.tolist(), wm.shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    size = [b - a for a, b in zip(lo, hi)]
    local = [c - a for c, a in zip(center, lo)]
    out = torch.zeros_like(wm)
    out[box] = _ellipsoid(size, local, radii.tolist(), _smooth_field(size, 2.0, generator)[0])
    return out * (wm + gm).clamp(0, 1)


def random_subject(
    template: str | Path | None = None, seed: int = 0, lesion: str | None = None, strength: float = 1.0
) -> dict[str, Any]:
    """A random subject: compartment fractions of a deformed template with lesions of one kind.

    Args:
        template: tissue template path (default: the shipped MNI152 one).
        seed: everything is deterministic given the seed.
        lesion: one of :data:`LESION_KINDS`; ``None`` draws one (25 % healthy, 35 % tumour, 25 % white-matter
            lesions, 15 % infarct).
        strength: deformation strength (0 = the template itself).

    Returns:
        ``{"fractions": (8, x, y, z) float32`` in :data:`COMPARTMENTS` order, summing to the brain fraction,
        ``"brain": (x, y, z) bool``, ``"lesion": kind, "template": path, "seed": seed}``.
    """
    generator = torch.Generator().manual_seed(int(seed))
    if lesion is None:
        draw = torch.rand(1, generator=generator).item()
        lesion = "healthy" if draw < 0.25 else "tumour" if draw < 0.6 else "wm_lesions" if draw < 0.85 else "infarct"
    if lesion not in LESION_KINDS:
        raise ValueError(f"lesion must be one of {LESION_KINDS} or None, got {lesion!r}.")
    maps_np, affine = load_tissue_template(None if template is None else str(template))
    maps = torch.from_numpy(np.ascontiguousarray(np.moveaxis(maps_np, -1, 0)))
    # pad so that rotations keep the whole brain
    maps = F.pad(maps, (8, 8, 8, 8, 8, 8))
    gm, wm, csf, brain = _random_warp(maps, generator, strength)
    fractions = {name: torch.zeros_like(wm) for name in LESION_COMPARTMENTS}
    if lesion == "tumour":
        _, tumour = _tumour(wm, brain, generator, float(abs(affine[0, 0])), None)
        fractions.update(tumour)
    elif lesion == "wm_lesions":
        fractions["wml"] = _wm_lesions(gm, wm, csf, brain, generator)
    elif lesion == "infarct":
        fractions["inf"] = _infarct(gm, wm, brain, generator)
    lesion_total = sum(fractions.values()).clamp(0, 1)
    normal = 1.0 - lesion_total
    stacked = torch.stack([gm * normal, wm * normal, csf * normal, *(fractions[n] for n in LESION_COMPARTMENTS)])
    return {"fractions": stacked, "brain": brain > 0.5, "lesion": lesion, "template": str(template), "seed": seed}


def segmentation_target(
    fractions: torch.Tensor, foreground: torch.Tensor, lesion_threshold: float = 0.5
) -> torch.Tensor:
    """Class map (background 0, CSF 1, GM 2, WM 3, lesion 4) of fraction maps ``(B, 8, *spatial)``.

    Lesion where the lesion compartments together exceed ``lesion_threshold``; else the dominant normal tissue
    inside ``foreground`` ``(B, *spatial)``.
    """
    tissue = fractions[:, :3].argmax(1)  # gm, wm, csf -> classes 2, 3, 1
    classes = torch.tensor([2, 3, 1], device=fractions.device)[tissue]
    classes = torch.where(fractions[:, 3:].sum(1) > lesion_threshold, torch.full_like(classes, 4), classes)
    return torch.where(foreground, classes, torch.zeros_like(classes))


# ---------------------------------------------------------------------------------------------- contrast
@dataclass(frozen=True)
class _Acquisition:
    family: str
    tr: float
    te: float
    ti: float
    flip: float


def _signal(pd: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, acq: _Acquisition) -> torch.Tensor:
    """Steady-state signal of compartments with properties ``pd, t1, t2`` (tensors) for one acquisition."""
    e1, decay = torch.exp(-acq.tr / t1), torch.exp(-acq.te / t2)
    if acq.family == "se":
        return pd * (1 - e1) * decay
    if acq.family == "ir":
        return pd * (1 - 2 * torch.exp(-acq.ti / t1) + e1).abs() * decay
    alpha = math.radians(acq.flip)  # spoiled gradient echo (T2* taken as 0.7 T2)
    return pd * math.sin(alpha) * (1 - e1) / (1 - math.cos(alpha) * e1) * torch.exp(-acq.te / (0.7 * t2))


def _random_acquisition(generator: torch.Generator) -> _Acquisition:
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(1, generator=generator).item()  # noqa: E731
    draw = torch.rand(1, generator=generator).item()
    if draw < 0.45:  # spin echo: T1w .. PDw .. T2w
        return _Acquisition("se", u(300, 6000), u(8, 140), 0.0, 90.0)
    if draw < 0.75:  # inversion recovery: FLAIR-like (CSF nulled) or T1-weighted IR / STIR-like
        tr = u(5000, 11000)
        ti = 4200.0 * math.log(2.0 / (1.0 + math.exp(-tr / 4200.0))) * u(0.85, 1.15) if draw < 0.62 else u(100, 1200)
        return _Acquisition("ir", tr, u(10, 140), ti, 90.0)
    return _Acquisition("gre", u(5, 40), u(2, 25), 0.0, u(5, 45))


def _compartment_values(generator: torch.Generator, min_contrast: float, mimic: float = 0.0) -> torch.Tensor:
    """Mean intensity of each of :data:`COMPARTMENTS` in ``[0, 1]``-ish units for one random contrast.

    With probability ``mimic`` the lesion compartments take intensities between two normal tissues (as a
    white-matter lesion that looks like grey matter or CSF on T2w), so that shape and location, not brightness
    alone, identify them; they still differ from white and grey matter by ``min_contrast``.
    """
    u = lambda n=1: torch.rand(n, generator=generator)  # noqa: E731
    for _ in range(20):
        if u().item() < 0.6:  # physics
            acq = _random_acquisition(generator)
            base = torch.tensor([_NORMAL[n] for n in ("gm", "wm", "csf")])
            normal = base * (1 + 0.2 * (2 * u(9).view(3, 3) - 1))
            # lesions: relative to white matter, prolonged or shortened T1/T2, PD near tissue
            lesion = torch.stack(
                [
                    0.69 * (0.8 + 0.5 * u(5)),
                    830.0 * (0.7 + 2.8 * u(5)),
                    80.0 * (0.6 + 5.0 * u(5) ** 2),
                ],
                1,
            )
            props = torch.cat([normal, lesion])
            values = _signal(props[:, 0], props[:, 1], props[:, 2], acq)
        else:  # Gaussian-mixture contrast
            values = u(8)
        span = values[:3].amax().clamp_min(1e-6)
        values = values / span
        tissue = values[:3]
        if mimic and u().item() < mimic:
            pair = torch.randperm(3, generator=generator)[:2]
            values = torch.cat([tissue, torch.lerp(tissue[pair[0]], tissue[pair[1]], u(5))])
        # lesion compartments must be visible against the tissues they replace (WM and GM)
        gap = (values[3:, None] - tissue[None, :2]).abs().amin(1)
        if bool((gap >= min_contrast).all()) and float(tissue.amax() - tissue.amin()) > 0.1:
            return values
        # otherwise push each invisible lesion compartment away from the tissue range around it
        direction = torch.where(u(5) < 0.5, -1.0, 1.0)
        pushed = torch.where(
            gap < min_contrast,
            (tissue[:2].mean() + direction * (min_contrast + 0.3 * u(5))).clamp(0.0, 1.5),
            values[3:],
        )
        values = torch.cat([tissue, pushed])
        gap = (values[3:, None] - tissue[None, :2]).abs().amin(1)
        if bool((gap >= min_contrast).all()) and float(tissue.amax() - tissue.amin()) > 0.1:
            return values
    return values


class RandomisedBrains:
    """Random 2-D slices (or 3-D volumes) with paired random contrasts, drawn from a pool of random subjects.

    Args:
        templates: tissue template paths (default: :func:`available_templates`).
        pool_size: subjects held in memory; ``refresh`` replaces the oldest ones.
        shape: output spatial shape ``(H, W)`` (slices are centred on the brain, cropped or zero-padded).
        seed: seed of the whole stream.
        lesion_kinds: restrict the drawn lesion kinds (default: all, 25 % healthy).
        min_contrast: smallest lesion-to-tissue intensity difference (fraction of the tissue range).
        artefacts: scale of the acquisition randomisation (0 = clean images at 1.5 mm).
        mimic: probability that lesions take an intensity between two normal tissues (see
            :func:`_compartment_values`).

    Example::

        brains = RandomisedBrains(pool_size=16, shape=(128, 128))
        batch = brains.sample(8, contrasts=2)   # images (8, 2, 128, 128), target (8, 128, 128), ...
    """

    def __init__(
        self,
        templates: Sequence[str | Path] | None = None,
        pool_size: int = 24,
        shape: tuple[int, int] = (128, 128),
        seed: int = 0,
        lesion_kinds: Sequence[str] | None = None,
        min_contrast: float = 0.12,
        artefacts: float = 1.0,
        mimic: float = 0.0,
        progress: bool = False,
    ) -> None:
        self.templates = [str(t) for t in (templates or available_templates().values())]
        self.shape = tuple(shape)
        self.seed = int(seed)
        self.lesion_kinds = tuple(lesion_kinds) if lesion_kinds else None
        self.min_contrast = min_contrast
        self.mimic = mimic
        self.artefacts = artefacts
        self.generator = torch.Generator().manual_seed(self.seed)
        self._next_subject = 0
        self.pool: list[dict[str, Any]] = []
        from ..progress import tqdm

        for _ in tqdm(range(pool_size), desc="random subjects", disable=not progress):
            self.pool.append(self._new_subject())

    def _new_subject(self) -> dict[str, Any]:
        index = self._next_subject
        self._next_subject += 1
        template = self.templates[index % len(self.templates)]
        lesion = None
        if self.lesion_kinds:
            lesion = self.lesion_kinds[index % len(self.lesion_kinds)]
        subject = random_subject(template, seed=self.seed * 100_003 + index, lesion=lesion)
        lesion_map = subject["fractions"][3:].sum(0) > 0.5
        others = lambda axis: [d for d in range(3) if d != axis]  # noqa: E731
        subject["coverage"] = [subject["brain"].float().mean(others(a)) for a in range(3)]
        subject["lesion_cover"] = [lesion_map.float().sum(others(a)) for a in range(3)]
        subject["lesion_centre"] = torch.nonzero(lesion_map).float().mean(0) if bool(lesion_map.any()) else None
        subject["fractions"] = subject["fractions"].half()  # memory: the pool holds many subjects
        return subject

    def refresh(self, count: int = 1) -> None:
        """Replace the ``count`` oldest subjects of the pool with new ones."""
        for _ in range(count):
            self.pool.pop(0)
            self.pool.append(self._new_subject())

    # ----------------------------------------------------------------------------------------- slices
    def _u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * torch.rand(1, generator=self.generator).item()

    def _slice(self, subject: dict[str, Any]) -> torch.Tensor:
        """Fraction maps ``(8, h, w)`` of a random slab in a random orientation, at random pixel spacing."""
        fractions = subject["fractions"]
        axis = int(torch.randint(3, (1,), generator=self.generator))
        coverage = subject["coverage"][axis]
        candidates = torch.nonzero(coverage >= 0.35 * coverage.max()).flatten()
        if subject["lesion_centre"] is not None and self._u() < 0.7:  # favour slices through the lesion
            with_lesion = torch.nonzero(subject["lesion_cover"][axis] > 0).flatten()
            candidates = with_lesion if len(with_lesion) else candidates
        index = int(candidates[int(torch.randint(len(candidates), (1,), generator=self.generator))])
        thickness = 1 + int(self._u() * 3 * self.artefacts) if self.artefacts > 0 else 1  # 1-3 voxels (1.5-4.5 mm)
        lo = max(index - thickness // 2, 0)
        slab = fractions.narrow(axis + 1, lo, min(thickness, fractions.shape[axis + 1] - lo)).float().mean(axis + 1)
        flip, transpose = self._u() < 0.5, self._u() < 0.5
        if flip:
            slab = slab.flip(-1)
        if transpose:
            slab = slab.transpose(-1, -2)
        # random pixel spacing per axis: 0.9-3 mm (sources are 1.5 mm)
        if self.artefacts > 0:
            spacing = [self._u(0.9, 0.9 + 2.1 * self.artefacts) if self._u() < 0.6 else 1.5 for _ in range(2)]
            size = [max(16, round(n * 1.5 / s)) for n, s in zip(slab.shape[-2:], spacing)]
            slab = F.interpolate(slab[None], size=size, mode="area" if size[0] < slab.shape[-2] else "bilinear")[0]
        return self._fit(slab)

    def _fit(self, slab: torch.Tensor) -> torch.Tensor:
        """Place the brain (or, half of the time, its lesion) near the centre of ``self.shape`` (crop or pad)."""
        out = torch.zeros(slab.shape[0], *self.shape)
        lesion = slab[3:].sum(0) > 0.5
        focus = lesion if bool(lesion.any()) and self._u() < 0.5 else slab[:3].sum(0) > 0.5
        rows, cols = torch.nonzero(focus.any(1)).flatten(), torch.nonzero(focus.any(0)).flatten()
        centre = [
            int((rows[0] + rows[-1]) // 2) if len(rows) else slab.shape[-2] // 2,
            int((cols[0] + cols[-1]) // 2) if len(cols) else slab.shape[-1] // 2,
        ]
        src, dst = [], []
        for c, n, m in zip(centre, slab.shape[-2:], self.shape):
            start = c - m // 2 + int(self._u(-m * 0.1, m * 0.1))
            a, b = max(start, 0), min(start + m, n)
            src.append(slice(a, b))
            dst.append(slice(a - start, b - start))
        out[:, dst[0], dst[1]] = slab[:, src[0], src[1]]
        return out

    def _acquisition(self) -> dict[str, float]:
        """Random acquisition parameters of one image: bias strength, blur, noise, gamma (0 = off)."""
        a = self.artefacts
        params = {"bias": math.log(1 + 0.3 * a * self._u())}
        params["blur"] = self._u(0.3, 1.2) if self._u() < 0.5 * a else 0.0
        params["noise"] = 0.05 * a * self._u() ** 2
        params["gamma"] = math.exp(self._u(-0.4, 0.4)) if self._u() < 0.5 * a else 1.0
        return params

    def sample(self, batch: int, contrasts: int = 1, return_scenes: bool = False) -> dict[str, Any]:
        """A batch of random slices.

        Args:
            batch: number of slices.
            contrasts: random contrasts per slice (same anatomy, geometry, texture and bias field).
            return_scenes: also return the :class:`Scene` of every slice (to re-render changed anatomy).

        Returns:
            ``images (B, contrasts, H, W)`` in ``[0, 1]`` (the same anatomy and acquisition geometry, random
            contrasts), ``fractions (B, 8, H, W)``, ``target (B, H, W)`` int64 classes of
            :func:`segmentation_target` (anatomy: total fraction above 0.5), ``lesion (B, H, W)`` bool and
            ``foreground (B, H, W)`` bool, the :func:`enclosed_foreground` of the first contrast (what a
            segmenter sees at inference)[, ``scenes``].
        """
        images, fractions, scenes = [], [], []
        for _ in range(batch):
            subject = self.pool[int(torch.randint(len(self.pool), (1,), generator=self.generator))]
            slab = self._slice(subject)
            h, w = slab.shape[-2:]
            knots = 3 + int(torch.randint(4, (1,), generator=self.generator))
            bias = F.interpolate(torch.randn((1, 1, knots, knots), generator=self.generator), (h, w), mode="bicubic")
            texture = _smooth_field((h, w), 1.0, self.generator)  # shared, scaled per compartment
            amplitude = 0.05 * self.artefacts * torch.rand((8, 1, 1), generator=self.generator)
            scene = Scene(slab, 1 + amplitude * texture, bias[0, 0] / bias.abs().amax().clamp_min(1e-6))
            for _ in range(contrasts):
                noise = torch.randn((2, h, w), generator=self.generator)
                values = _compartment_values(self.generator, self.min_contrast, self.mimic)
                scene.contrasts.append({"noise_field": noise, "values": values, **self._acquisition()})
            images.append(torch.stack([scene.render(k) for k in range(contrasts)]))
            fractions.append(slab)
            scenes.append(scene)
        images_t, fractions_t = torch.stack(images), torch.stack(fractions)
        foreground = enclosed_foreground(images_t[:, :1])[:, 0]
        target = segmentation_target(fractions_t, fractions_t.sum(1) > 0.5)
        out: dict[str, Any] = {
            "images": images_t,
            "fractions": fractions_t,
            "target": target,
            "lesion": target == 4,
            "foreground": foreground,
        }
        if return_scenes:
            out["scenes"] = scenes
        return out


@dataclass
class Scene:
    """Everything random about one slice except its anatomy's changes: fraction maps ``(8, h, w)``, the shared
    texture ``(8, h, w)`` and bias field ``(h, w)``, and per contrast the noise ``(2, h, w)``, the compartment
    values ``(8,)`` and the acquisition parameters. :meth:`render` re-renders any contrast, optionally with
    changed fractions or compartment values -- exact counterfactuals (same noise, bias and texture)."""

    fractions: torch.Tensor
    texture: torch.Tensor
    bias: torch.Tensor
    contrasts: list[dict[str, Any]] = field(default_factory=list)

    def render(
        self, index: int, fractions: torch.Tensor | None = None, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Contrast ``index`` as a unit-range image ``(h, w)`` (normalised by the unchanged image's maximum)."""
        acq = self.contrasts[index]
        scale = self._raw(acq, self.fractions, acq["values"]).amax().clamp_min(1e-6)
        fractions = self.fractions if fractions is None else fractions
        values = acq["values"] if values is None else values
        image = (self._raw(acq, fractions, values) / scale).clamp_min(0)
        return image.pow(acq["gamma"]) if acq["gamma"] != 1.0 else image

    def _raw(self, acq: dict[str, Any], fractions: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        image = (fractions * values.view(-1, 1, 1) * self.texture).sum(0)
        image = image * torch.exp(acq["bias"] * self.bias)
        if acq["blur"] > 0:
            image = gaussian_blur(image[None, None], acq["blur"], (2, 3))[0, 0]
        noise = acq["noise"] * acq["noise_field"]
        return torch.hypot(image + noise[0], noise[1])
