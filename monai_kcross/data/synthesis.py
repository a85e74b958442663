"""Paired multi-contrast brain MRI simulated from real anatomy and MR physics, with BraTS-style tumours.

Anatomy: the ICBM152 2009a grey-matter, white-matter and CSF probability maps (1.5 mm, shipped in
``templates/``; built by ``scripts/make_tissue_templates.py`` from a PyPI wheel). Each simulated subject is the
template under a random smooth deformation (plus a small rotation and scaling), so subjects differ in shape.

Tumours (``lesion=True``): a randomly shaped tumour in deep white matter with the BraTS 2021 labels
1 = necrotic core (NCR), 2 = peritumoural oedema (ED), 4 = enhancing tumour (ET): an irregular core of radius
``4-10 mm`` whose outer 1.5-3 mm shell is ET and whose inside is NCR, surrounded by oedema reaching 4-14 mm
further. Core voxels are pure tumour tissue; oedema voxels are 75 % oedema mixed with the tissue underneath.

Contrasts: every voxel's signal is the fraction-weighted sum of its compartments' signals (partial volume),
each given by a textbook signal equation with the parameters below (3 T; relaxation times in ms):

=========== ===== ====== ====== ======================================================
compartment  PD    T1     T2     source
=========== ===== ====== ====== ======================================================
WM           0.69   832     80   Wansapura et al. 1999 (T1, T2); BrainWeb (PD)
GM           0.80  1331    110   Wansapura et al. 1999; BrainWeb
CSF          1.00  4163   2000   Lu et al. 2005 (T1); typical literature T2; BrainWeb PD
NCR          0.90  2500    400   illustrative (fluid-like necrosis), not a measured value
ED           0.86  1500    180   illustrative (vasogenic oedema: T1 and T2 prolonged)
ET           0.82  1100    120   illustrative (cellular tumour, no contrast agent modelled)
=========== ===== ====== ====== ======================================================

* spin echo ``S = PD (1 - exp(-TR / T1)) exp(-TE / T2)``: T1w (TR 500, TE 15), T2w (TR 4000, TE 100),
  PDw (TR 4000, TE 15);
* FLAIR, inversion recovery ``S = PD |1 - 2 exp(-TI / T1) + exp(-TR / T1)| exp(-TE / T2)`` with TR 9000,
  TE 120 and TI chosen to null CSF (about 2430 ms).

Acquisition variety per contrast: a random smooth bias field (up to +-15 %), a random receiver gain (white
matter between 800 and 3000 "scanner units"), Rician noise (sigma 0.5-3 % of white matter), and a shared
mild anatomical texture (2 % spatially correlated) so images are not template-smooth. Everything is
deterministic given ``seed``.

These images are simulations: contrast, texture and tumour appearance are simplified (no contrast agent,
no mass effect, no skull, no flow or susceptibility effects). They exercise the full pipeline honestly; they
do not replace BraTS or IXI, for which readers are provided in :mod:`monai_kcross.data.readers`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor

from ..functional.filtering import gaussian_blur

__all__ = [
    "BRATS_LABELS",
    "CONTRASTS",
    "SEQUENCES",
    "TISSUES",
    "Sequence",
    "Tissue",
    "load_tissue_template",
    "signal",
    "synthesize_brain",
]

TEMPLATE = Path(__file__).resolve().parent / "templates" / "mni152_tissues_1.5mm.nii.gz"
BRATS_LABELS = {"NCR": 1, "ED": 2, "ET": 4}
CONTRASTS = ("t1", "t2", "pd", "flair")


@dataclass(frozen=True)
class Tissue:
    """Proton density (relative) and relaxation times (ms) of a compartment."""

    pd: float
    t1: float
    t2: float


TISSUES = {
    "wm": Tissue(0.69, 832.0, 80.0),
    "gm": Tissue(0.80, 1331.0, 110.0),
    "csf": Tissue(1.00, 4163.0, 2000.0),
    "ncr": Tissue(0.90, 2500.0, 400.0),
    "ed": Tissue(0.86, 1500.0, 180.0),
    "et": Tissue(0.82, 1100.0, 120.0),
}
COMPARTMENTS = ("gm", "wm", "csf", "ncr", "ed", "et")


@dataclass(frozen=True)
class Sequence:
    """Acquisition parameters (ms). ``ti`` set means inversion recovery; ``ti=0`` nulls CSF automatically."""

    tr: float
    te: float
    ti: float | None = None


def _csf_null_ti(tr: float) -> float:
    t1 = TISSUES["csf"].t1
    return t1 * math.log(2.0 / (1.0 + math.exp(-tr / t1)))


SEQUENCES = {
    "t1": Sequence(tr=500.0, te=15.0),
    "t2": Sequence(tr=4000.0, te=100.0),
    "pd": Sequence(tr=4000.0, te=15.0),
    "flair": Sequence(tr=9000.0, te=120.0, ti=_csf_null_ti(9000.0)),
}


def signal(tissue: Tissue, sequence: Sequence) -> float:
    """Steady-state signal of a tissue for a sequence (spin echo, or inversion recovery when ``ti`` is set)."""
    decay = math.exp(-sequence.te / tissue.t2)
    if sequence.ti is None:
        return tissue.pd * (1.0 - math.exp(-sequence.tr / tissue.t1)) * decay
    recovery = 1.0 - 2.0 * math.exp(-sequence.ti / tissue.t1) + math.exp(-sequence.tr / tissue.t1)
    return tissue.pd * abs(recovery) * decay


@functools.lru_cache(maxsize=4)
def load_tissue_template(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A tissue template: ``(x, y, z, 4)`` float32 maps (GM, WM, CSF, brain) in [0, 1] and the affine.

    ``path`` defaults to the shipped MNI152 template; other templates (e.g. SRI24, see
    ``scripts/make_tissue_templates.py --atlas sri24``) must have the same 4-channel uint8 layout.
    """
    template = Path(path) if path is not None else TEMPLATE
    if not template.is_file():
        raise FileNotFoundError(
            f"tissue template {template} is missing; build it with scripts/make_tissue_templates.py."
        )
    image = nib.load(template)
    if image.ndim != 4 or image.shape[-1] != 4:
        raise ValueError(f"tissue template {template} must be (x, y, z, 4) GM/WM/CSF/brain, got {image.shape}.")
    maps = np.asarray(image.dataobj, dtype=np.float32) / 255.0
    total = maps[..., :3].sum(-1, keepdims=True)
    inside = (maps[..., 3:] > 0.5) & (total > 0)
    maps[..., :3] = np.where(inside, maps[..., :3] / np.maximum(total, 1e-6), maps[..., :3])  # undo uint8 rounding
    return maps, image.affine


def _smooth_noise(shape: tuple[int, ...], sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian-smoothed white noise scaled to a maximum absolute value of 1."""
    noise = torch.randn((1, *shape), generator=generator, dtype=torch.float32)
    field = gaussian_blur(noise, sigma, tuple(range(1, len(shape) + 1)))[0]
    return field / field.abs().amax().clamp_min(1e-12)


def _deformation_grid(shape: tuple[int, ...], generator: torch.Generator, strength: float) -> torch.Tensor:
    """A ``grid_sample`` grid: small rotation/scaling plus a smooth random displacement (voxels)."""
    dims = len(shape)
    axes = [torch.linspace(-1, 1, n) for n in shape]
    coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)  # (..., dims), first spatial axis first
    angle = (torch.rand(1, generator=generator).item() * 2 - 1) * math.radians(6) * strength
    scale = 1 + (torch.rand(dims, generator=generator) * 2 - 1) * 0.05 * strength
    rotation = torch.eye(dims)
    rotation[0, 0] = rotation[1, 1] = math.cos(angle)
    rotation[0, 1], rotation[1, 0] = -math.sin(angle), math.sin(angle)
    coords = coords @ (rotation * scale[None, :]).T
    displacement = torch.stack([_smooth_noise(shape, 6.0, generator) for _ in range(dims)], -1)
    voxel = torch.tensor([2.0 / max(n - 1, 1) for n in shape])
    coords = coords + displacement * 3.0 * strength * voxel  # up to 3 voxels (4.5 mm)
    return coords.flip(-1)[None]  # grid_sample: last axis first


def _warp(maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(maps[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def _crop_offsets(spatial: tuple[int, ...], shape: tuple[int, ...]) -> list[int]:
    """Index in the input of output voxel 0 along each axis (negative: zero padding before)."""
    return [(size - target) // 2 if size > target else -((target - size) // 2) for size, target in zip(spatial, shape)]


def _pad_to(volume: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Centre-crop or zero-pad the spatial axes of ``(C, *spatial)`` to ``shape``."""
    for axis, (offset, target) in enumerate(zip(_crop_offsets(tuple(volume.shape[1:]), shape), shape), start=1):
        size = volume.shape[axis]
        if offset > 0:
            volume = volume.narrow(axis, offset, target)
        elif size < target:
            pad = [0, 0] * (volume.ndim - 1)
            index = 2 * (volume.ndim - 1 - axis)
            pad[index], pad[index + 1] = -offset, target - size + offset
            volume = F.pad(volume, pad)
    return volume


def _tumour(
    wm: torch.Tensor, brain: torch.Tensor, generator: torch.Generator, voxel_mm: float, center: list[int] | None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """BraTS-style label map and compartment fractions (NCR, ED, ET) inside white matter."""
    from scipy import ndimage

    shape = tuple(wm.shape)
    core_mm = 4.0 + 6.0 * torch.rand(1, generator=generator).item()
    rim_mm = 1.5 + 1.5 * torch.rand(1, generator=generator).item()
    oedema_mm = 4.0 + 10.0 * torch.rand(1, generator=generator).item()
    core = core_mm / voxel_mm
    if center is None:
        depth = ndimage.distance_transform_edt((wm > 0.6).numpy())
        candidates = np.argwhere(depth >= min(core * 0.8, depth.max()))
        pick = int(torch.randint(len(candidates), (1,), generator=generator).item())
        center = candidates[pick].tolist()
    axes = [torch.arange(n, dtype=torch.float32) for n in shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    radii = 0.75 + 0.5 * torch.rand(len(shape), generator=generator)
    distance = torch.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii.tolist())))
    wobble = _smooth_noise(shape, 2.5, generator)  # irregular outlines
    core_d = distance + 0.45 * core * wobble
    oedema_d = distance + 0.45 * (core + oedema_mm / voxel_mm) * _smooth_noise(shape, 4.0, generator)
    inside_brain = brain > 0.5
    in_core = (core_d <= core) & inside_brain
    in_et = in_core & (core_d > core - rim_mm / voxel_mm)
    in_ncr = in_core & ~in_et
    in_ed = (oedema_d <= core + oedema_mm / voxel_mm) & ~in_core & inside_brain
    labels = torch.zeros(shape, dtype=torch.int64)
    labels[in_ed] = BRATS_LABELS["ED"]
    labels[in_ncr] = BRATS_LABELS["NCR"]
    labels[in_et] = BRATS_LABELS["ET"]
    fractions = {"ncr": in_ncr.float(), "et": in_et.float(), "ed": 0.75 * in_ed.float()}
    return labels, fractions


@functools.lru_cache(maxsize=2)
def _subject(
    seed: int, lesion: bool, deformation: float, lesion_center: tuple[int, ...] | None, template: str | None
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, np.ndarray, torch.Tensor]:
    """A subject's 3-D compartment fractions, labels, brain mask, affine and the generator state after them.

    Cached, so several slices of one subject simulate its anatomy once.
    """
    maps_np, affine = load_tissue_template(template)
    generator = torch.Generator().manual_seed(seed)
    maps = torch.from_numpy(np.ascontiguousarray(np.moveaxis(maps_np, -1, 0)))  # (4, x, y, z)
    maps = _warp(maps, _deformation_grid(tuple(maps.shape[1:]), generator, deformation))
    gm, wm, csf, brain = maps
    labels = torch.zeros(wm.shape, dtype=torch.int64)
    fractions = {name: torch.zeros_like(wm) for name in ("ncr", "ed", "et")}
    if lesion:
        center = None if lesion_center is None else list(lesion_center)
        labels, fractions = _tumour(wm, brain, generator, float(abs(affine[0, 0])), center)
    normal = (1.0 - fractions["ncr"] - fractions["et"] - fractions["ed"]).clamp(0, 1)
    compartments = {"gm": gm * normal, "wm": wm * normal, "csf": csf * normal, **fractions}
    return compartments, labels, brain, affine, generator.get_state()


def synthesize_brain(
    seed: int = 0,
    spatial_dims: int = 2,
    lesion: bool = True,
    shape: tuple[int, ...] | None = None,
    slice_index: int | None = None,
    deformation: float = 1.0,
    noise: tuple[float, float] = (0.005, 0.03),
    contrasts: tuple[str, ...] = CONTRASTS,
    lesion_center: list[int] | None = None,
    slice_seed: int = 0,
    template: str | Path | None = None,
) -> dict[str, Any]:
    """Simulate one subject: co-registered T1w, T2w, PDw and FLAIR images with lesion labels and brain mask.

    Args:
        seed: everything (deformation, tumour, bias, gain, noise, slice) is deterministic given the seed.
        spatial_dims: 2 for an axial slice, 3 for a volume (1.5 mm isotropic).
        lesion: insert a tumour (BraTS labels 1, 2, 4); ``False`` gives a healthy subject.
        shape: output spatial shape, centre-cropped/zero-padded; default ``(112, 128)`` or ``(112, 128, 112)``.
        slice_index: axial slice (template z index) for 2-D; default through the tumour (within its core) or
            a random slice in the central 40 % of the brain for healthy subjects.
        deformation: strength of the random anatomical deformation (0 = the template itself).
        noise: range of the Rician noise sigma relative to white-matter signal.
        contrasts: which of ``"t1", "t2", "pd", "flair"`` to simulate.
        lesion_center: tumour centre (template voxel indices, 3 values); default random in deep white matter.
        slice_seed: 2-D only: picks among the candidate slices of the same subject (same anatomy, tumour and
            acquisition); different values give different slices while there are candidates left.
        template: path of another tissue template (see :func:`load_tissue_template`); default MNI152.

    Returns:
        ``{contrast: MetaTensor (1, *shape) float32, "label": (1, *shape) int64, "brain": (1, *shape) bool,
        "tissues": (3, *shape) float32 GM/WM/CSF fractions}``; the MetaTensors carry the affine (mm).
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    unknown = [c for c in contrasts if c not in SEQUENCES]
    if unknown:
        raise ValueError(f"unknown contrasts {unknown}; choose from {list(SEQUENCES)}.")
    shape = tuple(shape) if shape is not None else ((112, 128) if spatial_dims == 2 else (112, 128, 112))
    if len(shape) != spatial_dims:
        raise ValueError(f"shape {shape} does not have {spatial_dims} dimensions.")
    compartments, labels, brain, affine, state = _subject(
        int(seed),
        bool(lesion),
        float(deformation),
        None if lesion_center is None else tuple(lesion_center),
        None if template is None else str(template),
    )
    generator = torch.Generator()
    generator.set_state(state)
    wm = compartments["wm"]

    if spatial_dims == 2:
        z = slice_index
        if z is None:
            if lesion and bool((labels > 0).any()):
                core = (labels == BRATS_LABELS["NCR"]) | (labels == BRATS_LABELS["ET"])
                candidates = torch.unique(torch.nonzero(core if core.any() else labels > 0)[:, 2])
            else:
                depth = wm.shape[2]
                candidates = torch.arange(int(depth * 0.4), int(depth * 0.8))
            order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(int(seed) * 7919 + 1))
            z = int(candidates[order[slice_seed % len(candidates)]])
        if not 0 <= z < wm.shape[2]:
            raise ValueError(f"slice_index {z} is outside the template's {wm.shape[2]} axial slices.")
        take = lambda v: v[..., z]  # noqa: E731
        affine = affine.copy()
        affine[:3, 3] += affine[:3, 2] * z
    else:
        take = lambda v: v  # noqa: E731

    stacked = torch.stack([take(compartments[name]) for name in COMPARTMENTS])  # (6, *spatial)
    spatial = tuple(stacked.shape[1:])
    wm_signal = {c: signal(TISSUES["wm"], SEQUENCES[c]) for c in contrasts}
    # subject-level acquisition settings (shared by all slices of a subject) ...
    gains = {c: (800.0 + 2200.0 * torch.rand(1, generator=generator).item()) / wm_signal[c] for c in contrasts}
    sigmas = {
        c: (noise[0] + (noise[1] - noise[0]) * torch.rand(1, generator=generator).item()) * wm_signal[c]
        for c in contrasts
    }
    # ... and image-level random fields (texture, bias, noise), which differ between slices
    fields = torch.Generator().manual_seed(int(seed) * 7919 + 17 + (slice_seed if spatial_dims == 2 else 0))
    texture = 1.0 + 0.02 * _smooth_noise(spatial, 1.0, fields)
    out: dict[str, Any] = {}
    brain_s = take(brain) > 0.5
    for contrast in contrasts:
        weights = torch.tensor([signal(TISSUES[n], SEQUENCES[contrast]) for n in COMPARTMENTS])
        image = (stacked * weights.reshape(-1, *[1] * len(spatial))).sum(0) * texture
        bias = torch.exp(math.log(1.15) * _smooth_noise(spatial, 12.0, fields))
        gain, sigma = gains[contrast], sigmas[contrast]
        real = image * bias + sigma * torch.randn(spatial, generator=fields)
        imag = sigma * torch.randn(spatial, generator=fields)
        out[contrast] = torch.hypot(real, imag) * gain
    out["label"] = take(labels)
    out["brain"] = brain_s
    out["tissues"] = torch.stack([take(compartments[n]) for n in ("gm", "wm", "csf")])
    affine = affine.copy()
    for axis, offset in enumerate(_crop_offsets(spatial, shape)):
        affine[:3, 3] += affine[:3, axis] * offset
    result = {}
    for key, value in out.items():
        volume = value[None] if key != "tissues" else value
        volume = _pad_to(volume, shape)
        if key in CONTRASTS:
            volume = volume.float()
        result[key] = MetaTensor(volume.clone(), affine=torch.as_tensor(affine, dtype=torch.float64))
    result["seed"] = int(seed)
    return result
