"""Reference / synthesized pairs with known benign or harmful changes: the ranking signal of K-CROSS training.

Every reference is a random slice of :class:`~monai_kcross.data.randomised.RandomisedBrains` (target contrast,
plus a second contrast as the source). Its variants are "synthesized" images with one change each, from two
independent mechanisms:

* **counterfactual re-rendering** of the slice's anatomy with the same noise, bias and texture
  (:class:`~monai_kcross.data.randomised.Scene`): the lesion removed, faded towards white matter (graded),
  inverted, shrunk or grown, a lesion added elsewhere in white matter, grey and white matter swapped in a
  blob (graded), a displacement confined around the lesion (graded); and a new noise realisation (benign);
* **the package's perturbation suite** (:mod:`monai_kcross.transforms`) on the rendered reference: benign
  intensity maps (scale/offset, gamma), Rician noise, blur and bias at mild severities; harmful lesion removal,
  resizing, insertion, local contrast change and local elastic deformation (graded by severity).

"Benign" means clinically harmless (global, segmentation-preserving); "harmful" means a change of what a
reader would diagnose. Every variant also gets the task-based quality label of
:func:`~monai_kcross.data.quality.quality_labels`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..functional.foreground import enclosed_foreground
from .randomised import COMPARTMENTS, RandomisedBrains, Scene

__all__ = ["BENIGN", "HARMFUL", "build_pairs", "variants_of"]

BENIGN = ("reacquired", "scale_offset", "gamma", "noise", "blur", "bias")
HARMFUL = (
    "lesion_removed",
    "lesion_faded",
    "lesion_inverted",
    "lesion_shrunk",
    "lesion_grown",
    "lesion_added",
    "tissue_swap",
    "local_warp",
    "suite_removal",
    "suite_resize",
    "suite_insertion",
    "suite_contrast",
    "suite_elastic",
)
GRADED = {"lesion_faded": (0.35, 0.7, 1.0), "tissue_swap": (0.4, 0.7, 1.0), "local_warp": (0.34, 0.67, 1.0)}
_LESION = slice(3, None)
_WM, _GM = COMPARTMENTS.index("wm"), COMPARTMENTS.index("gm")


def _u(generator: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * torch.rand(1, generator=generator).item()


def _blob(shape: Sequence[int], centre: Sequence[float], radius: float, generator: torch.Generator) -> torch.Tensor:
    """Soft irregular 2-D blob (1 inside) of about ``radius`` pixels."""
    axes = [torch.arange(n, dtype=torch.float32) for n in shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    stretch = 0.7 + 0.6 * torch.rand(2, generator=generator)
    distance = torch.sqrt(sum(((g - c) / (radius * s)) ** 2 for g, c, s in zip(grid, centre, stretch.tolist())))
    angle = torch.atan2(grid[0] - centre[0], grid[1] - centre[1])
    phase = _u(generator, 0, 2 * math.pi)
    distance = distance * (1 + 0.15 * torch.sin(3 * angle + phase))
    return ((1 - distance) * radius + 0.5).clamp(0, 1)


def _pick_point(mask: torch.Tensor, generator: torch.Generator) -> list[float] | None:
    points = torch.nonzero(mask)
    if len(points) == 0:
        return None
    return points[int(torch.randint(len(points), (1,), generator=generator))].float().tolist()


def _to_host(fractions: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Give lesion fraction ``removed`` ``(5, h, w)`` back to white matter."""
    out = fractions.clone()
    out[_LESION] = out[_LESION] - removed
    out[_WM] = out[_WM] + removed.sum(0)
    return out


def _warp(fractions: torch.Tensor, centre: Sequence[float], radius: float, amplitude: float, generator) -> torch.Tensor:
    h, w = fractions.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    envelope = torch.exp(-((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2) / (2 * (1.5 * radius) ** 2))
    angle = _u(generator, 0, 2 * math.pi)
    dy, dx = amplitude * envelope * math.sin(angle), amplitude * envelope * math.cos(angle)
    grid = torch.stack([(xs + dx) / (w - 1) * 2 - 1, (ys + dy) / (h - 1) * 2 - 1], -1)[None]
    return F.grid_sample(fractions[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def _counterfactuals(scene: Scene, index: int, generator: torch.Generator) -> list[dict[str, Any]]:
    """Re-rendered variants of contrast ``index`` of ``scene`` (see the module docstring)."""
    fr = scene.fractions
    lesion = fr[_LESION]
    lesion_map = lesion.sum(0)
    values = scene.contrasts[index]["values"]
    out: list[dict[str, Any]] = []

    def add(name: str, image: torch.Tensor, level: float = 1.0, harmful: bool = True) -> None:
        out.append({"kind": name, "level": level, "harmful": harmful, "image": image})

    noise = scene.contrasts[index]["noise_field"]
    scene.contrasts[index]["noise_field"] = torch.randn(noise.shape, generator=generator)
    add("reacquired", scene.render(index), harmful=False)
    scene.contrasts[index]["noise_field"] = noise
    tissue = fr[_WM] + fr[_GM]
    has_lesion = float(lesion_map.max()) > 0.5
    if has_lesion:
        add("lesion_removed", scene.render(index, fractions=_to_host(fr, lesion)))
        wm_value = values[_WM]
        for level in GRADED["lesion_faded"]:
            faded = values.clone()
            faded[_LESION] = values[_LESION] + level * (wm_value - values[_LESION])
            add("lesion_faded", scene.render(index, values=faded), level)
        inverted = values.clone()
        inverted[_LESION] = (2 * wm_value - values[_LESION]).clamp_min(0)
        add("lesion_inverted", scene.render(index, values=inverted))
        shrunk = -F.max_pool2d(-lesion[None], 5, 1, 2)[0]
        add("lesion_shrunk", scene.render(index, fractions=_to_host(fr, lesion - shrunk)))
        grown = F.max_pool2d(lesion[None], 5, 1, 2)[0]
        extra = ((grown - lesion).clamp_min(0) * (tissue > 0.3)).clamp(max=1)
        grown_fr = fr.clone()
        grown_fr[_LESION] = lesion + extra
        take = extra.sum(0).clamp(max=1)
        share = fr[_WM] / tissue.clamp_min(1e-6)
        grown_fr[_WM] = (fr[_WM] - take * share).clamp_min(0)
        grown_fr[_GM] = (fr[_GM] - take * (1 - share)).clamp_min(0)
        add("lesion_grown", scene.render(index, fractions=grown_fr))
    # a new lesion elsewhere in white matter (hallucination)
    away = F.max_pool2d((lesion_map > 0.1).float()[None, None], 21, 1, 10)[0, 0] < 0.5
    point = _pick_point((fr[_WM] > 0.8) & away, generator)
    if point is not None:
        radius = _u(generator, 2.0, 6.0)
        blob = _blob(fr.shape[-2:], point, radius, generator) * tissue.clamp(max=1)
        added = fr.clone()
        # the slice's own lesion compartment if it has one, else a random one (every lesion value is visible)
        kind = (
            3 + int(torch.argmax(lesion.flatten(1).sum(1)))
            if has_lesion
            else int(torch.randint(3, 8, (1,), generator=generator))
        )
        added[kind] = added[kind] + blob
        added[_WM] = (added[_WM] - blob * fr[_WM] / tissue.clamp_min(1e-6)).clamp_min(0)
        added[_GM] = (added[_GM] - blob * fr[_GM] / tissue.clamp_min(1e-6)).clamp_min(0)
        add("lesion_added", scene.render(index, fractions=added))
    # grey/white matter swapped in a blob, and a local displacement (around the lesion if there is one)
    centre = _pick_point(lesion_map > 0.5, generator) if has_lesion else _pick_point(tissue > 0.9, generator)
    if centre is not None:
        radius = max(math.sqrt(float((lesion_map > 0.5).sum()) / math.pi), 4.0) if has_lesion else 5.0
        for level in GRADED["tissue_swap"]:
            swap = _blob(fr.shape[-2:], centre, 3.0 + 4.0 * level, generator)
            swapped = fr.clone()
            swapped[_WM] = fr[_WM] * (1 - swap) + fr[_GM] * swap
            swapped[_GM] = fr[_GM] * (1 - swap) + fr[_WM] * swap
            add("tissue_swap", scene.render(index, fractions=swapped), level)
        for level in GRADED["local_warp"]:
            add("local_warp", scene.render(index, fractions=_warp(fr, centre, radius, 4.0 * level, generator)), level)
    return out


def _suite(image: torch.Tensor, lesion: torch.Tensor, generator: torch.Generator) -> list[dict[str, Any]]:
    """Variants of a unit-range image ``(h, w)`` from the package's perturbation suite."""
    from ..transforms import (
        BiasField,
        Gamma,
        GaussianBlur,
        IntensityScaleShift,
        LesionInsertion,
        LesionRemoval,
        LesionResize,
        LocalContrastChange,
        LocalElasticDeformation,
        RicianNoise,
    )

    x = image[None]
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    out = []

    def run(transform: Any, region: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(transform, "set_random_state"):
            transform.set_random_state(seed)
        result = transform(x.clone(), region=region) if region is not None else transform(x.clone())
        return torch.as_tensor(result)[0].float()

    benign = [
        ("scale_offset", IntensityScaleShift(_u(generator, 0.2, 1.0))),
        ("gamma", Gamma(_u(generator, 0.1, 0.6))),
        ("noise", RicianNoise(_u(generator, 0.05, 0.25))),
        ("blur", GaussianBlur(_u(generator, 0.15, 0.35))),
        ("bias", BiasField(_u(generator, 0.1, 0.35))),
    ]
    for name, transform in benign:
        out.append({"kind": name, "level": 1.0, "harmful": False, "image": run(transform)})
    region = lesion > 0.5
    if int(region.sum()) >= 10:
        harmful = [
            ("suite_removal", LesionRemoval(1.0), 1.0),
            ("suite_resize", LesionResize(_u(generator, 0.5, 1.0), mode="shrink"), 1.0),
            ("suite_contrast", LocalContrastChange(_u(generator, 0.5, 1.0)), 1.0),
            ("suite_elastic", LocalElasticDeformation(_u(generator, 0.6, 1.0)), 1.0),
        ]
        for name, transform, level in harmful:
            try:
                out.append({"kind": name, "level": level, "harmful": True, "image": run(transform, region[None])})
            except ValueError:  # e.g. a region the transform cannot handle
                continue
    insertion_region = (image > 0.05) & ~F.max_pool2d(region.float()[None, None], 15, 1, 7)[0, 0].bool()
    try:
        insertion = LesionInsertion(_u(generator, 0.6, 1.0), hyperintense=_u(generator) < 0.5)
        inserted = run(insertion, insertion_region[None])
        out.append({"kind": "suite_insertion", "level": 1.0, "harmful": True, "image": inserted})
    except ValueError:
        pass
    return out


def variants_of(scene: Scene, index: int, generator: torch.Generator) -> list[dict[str, Any]]:
    """All benign and harmful variants of contrast ``index`` of one scene (unit range, the reference's map)."""
    reference = scene.render(index)
    lesion = scene.fractions[_LESION].sum(0)
    return _counterfactuals(scene, index, generator) + _suite(reference, lesion, generator)


def build_pairs(
    n_references: int,
    seed: int = 70_000,
    templates: Sequence[str] | None = None,
    shape: tuple[int, int] = (112, 128),
    segmenter: torch.nn.Module | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Reference/variant pairs with labels for K-CROSS's score heads.

    Returns:
        ``synthesized, reference, source, lesion`` ``(N, 1, H, W)`` (unit range; the source is the second
        contrast of the same slice), ``group (N,)`` (reference index), ``harmful (N,)`` bool, ``kind`` list,
        ``level (N,)`` and ``q (N,)`` (task-based quality label, 1 = perfect).
    """
    from ..progress import tqdm
    from .quality import quality_labels

    generator = torch.Generator().manual_seed(seed)
    brains = RandomisedBrains(templates, pool_size=max(4, min(24, n_references // 8)), shape=shape, seed=seed)
    keys = ("synthesized", "reference", "source", "lesion", "group", "harmful", "kind", "level")
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    for group in tqdm(range(n_references), desc="ranking pairs", disable=not progress):
        if group and group % 8 == 0:
            brains.refresh(1)
        sample = brains.sample(1, contrasts=2, return_scenes=True)
        scene = sample["scenes"][0]
        reference, source = sample["images"][0, 0], sample["images"][0, 1]
        lesion = sample["lesion"][0].float()
        for item in variants_of(scene, 0, generator):
            rows["synthesized"].append(item["image"][None])
            rows["reference"].append(reference[None])
            rows["source"].append(source[None])
            rows["lesion"].append(lesion[None])
            rows["group"].append(group)
            rows["harmful"].append(item["harmful"])
            rows["kind"].append(item["kind"])
            rows["level"].append(item["level"])
    out: dict[str, Any] = {k: torch.stack(rows[k]) for k in ("synthesized", "reference", "source", "lesion")}
    out["group"] = torch.tensor(rows["group"])
    out["harmful"] = torch.tensor(rows["harmful"])
    out["level"] = torch.tensor(rows["level"], dtype=torch.float32)
    out["kind"] = rows["kind"]
    labels = []
    for start in range(0, len(out["group"]), 64):
        part = slice(start, start + 64)
        brain = enclosed_foreground(out["reference"][part])
        labels += [
            item["q"]
            for item in quality_labels(
                out["synthesized"][part], out["reference"][part], brain, out["lesion"][part], segmenter
            )
        ]
    out["q"] = torch.tensor(labels, dtype=torch.float32)
    return out
