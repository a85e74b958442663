"""The shared mechanism of the package's transforms: MetaTensor handling, severities, regions, dict wrappers.

Every perturbation is an array transform ``P(severity=...)`` acting on a channel-first image
``(C, H, W[, D])`` (a ``MetaTensor``, tensor or NumPy array; the output has the input's type, metadata and
affine). ``severity`` runs from 0 (identity, exactly) to 1 (the strongest documented setting); values in
between interpolate one physical parameter that each class names. Random choices (noise, field shapes,
positions) come from the transform's ``R`` (MONAI's ``Randomizable``), so ``set_random_state(seed)`` makes
results reproducible.

Each perturbation has two dictionary versions built by the same mechanism:

* ``Pd(keys, severity=..., region_key=...)`` applies it to every key with the same random draw;
* ``RandPd(keys, prob=..., severity=(low, high))`` applies it with probability ``prob`` and a severity drawn
  uniformly from the range.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, RandomizableTransform, Transform
from monai.utils import convert_to_dst_type

__all__ = [
    "ImageTransform",
    "Perturbation",
    "PerturbationDict",
    "RandPerturbationDict",
    "as_region",
    "check_severity",
]


def check_severity(severity: float, name: str = "severity") -> float:
    """Return ``severity`` as a float in ``[0, 1]`` or raise a ``ValueError``."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1], got {severity!r}.")
    if not 0.0 <= float(severity) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (0 = identity, 1 = strongest), got {severity!r}.")
    return float(severity)


def as_region(region: Any, image: torch.Tensor, labels: Sequence[int] | None = None, name: str = "") -> torch.Tensor:
    """A region (mask or label map) as a bool tensor of the image's spatial shape.

    Args:
        region: ``(1|C, *spatial)`` or ``spatial``-shaped mask or label map; channels are combined with "or".
        image: channel-first image ``(C, *spatial)``.
        labels: label values forming the region (default: every non-zero value).
        name: transform name for messages.

    Raises:
        ValueError: missing, wrongly shaped or empty region.
    """
    if region is None:
        raise ValueError(f"{name}: this perturbation needs a region (a mask or label map), got None.")
    region = torch.as_tensor(np.asarray(region) if not isinstance(region, torch.Tensor) else region)
    if isinstance(region, torch.Tensor) and type(region) is not torch.Tensor:
        region = region.as_subclass(torch.Tensor)
    spatial = tuple(image.shape[1:])
    if tuple(region.shape) == spatial:
        region = region[None]
    if region.ndim != len(spatial) + 1 or tuple(region.shape[1:]) != spatial:
        raise ValueError(
            f"{name}: region of shape {tuple(region.shape)} does not match image of shape {tuple(image.shape)}."
        )
    if labels is None:
        selected = region != 0
    else:
        selected = torch.zeros_like(region, dtype=torch.bool)
        for value in labels:
            selected |= region == value
    selected = selected.any(dim=0).to(image.device)
    if not bool(selected.any()):
        raise ValueError(f"{name}: the region is empty{'' if labels is None else f' (labels {list(labels)})'}.")
    return selected


class ImageTransform(Transform):
    """Base of the package's array transforms: unwrap to a plain tensor, re-wrap keeping type and metadata."""

    @staticmethod
    def unwrap(img: Any) -> torch.Tensor:
        tensor = torch.as_tensor(img) if not isinstance(img, torch.Tensor) else img
        return tensor if type(tensor) is torch.Tensor else tensor.as_subclass(torch.Tensor)

    @staticmethod
    def wrap(out: torch.Tensor, img: Any) -> Any:
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]

    @staticmethod
    def check_channel_first(x: torch.Tensor, name: str) -> None:
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{name}: expected a channel-first image (C, H, W) or (C, H, W, D), got shape {tuple(x.shape)}."
            )


class Perturbation(Randomizable, ImageTransform):
    """A severity-controlled perturbation of a channel-first image (see the module docstring).

    Computation runs in float32 (float64 inputs stay float64); half-precision inputs get half-precision output,
    integer inputs float32 output.

    Subclasses implement :meth:`apply` and set ``needs_region`` when they act on a region (then ``margin``
    states how far from the region, in voxels, voxels may change).
    """

    needs_region: bool = False
    margin: float | None = None

    def __init__(self, severity: float = 1.0, labels: Sequence[int] | None = None) -> None:
        self.severity = check_severity(severity)
        self.labels = labels
        self._seed = 0
        self.new_region: torch.Tensor | None = None  # region after a local alteration (see label_key)

    def randomize(self, data: Any = None) -> None:
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch generator seeded from the last :meth:`randomize` draw (same draw -> same numbers)."""
        generator = torch.Generator(device=device)
        generator.manual_seed(self._seed)
        return generator

    def __call__(self, img: Any, region: Any = None, severity: float | None = None, randomize: bool = True) -> Any:
        """Perturb ``img`` ``(C, H, W[, D])``; ``region`` is required by local alterations."""
        name = type(self).__name__
        strength = self.severity if severity is None else check_severity(severity)
        x = self.unwrap(img)
        self.check_channel_first(x, name)
        original = x.dtype
        x = x.to(x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32)
        mask = as_region(region, x, self.labels, name) if self.needs_region else None
        if randomize:
            self.randomize()
        self.new_region = mask
        out = x.clone() if strength == 0.0 else self.apply(x, strength, mask)
        if original in (torch.float16, torch.bfloat16):  # computed in float32, returned in half precision
            out = out.to(original)
        return self.wrap(out, img)

    def apply(self, x: torch.Tensor, severity: float, region: torch.Tensor | None) -> torch.Tensor:
        """Perturb a float tensor ``(C, *spatial)`` with ``0 < severity <= 1``; ``region`` is bool ``spatial``."""
        raise NotImplementedError


class PerturbationDict(Randomizable, MapTransform):
    """Dictionary version of a perturbation: the same random draw for every key.

    Args:
        keys: keys of the images to perturb.
        region_key: key of the mask or label map that local alterations act on.
        label_key: key under which a local alteration stores the altered lesion footprint (uint8, with the
            metadata of the region), e.g. the same key as ``region_key`` to keep labels consistent.
        allow_missing_keys: skip absent image keys instead of raising.
        kwargs: arguments of ``perturbation_class`` (``severity`` and the class's own).
    """

    perturbation_class: type[Perturbation]

    def __init__(
        self,
        keys: KeysCollection,
        region_key: str | None = None,
        label_key: str | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.perturbation = self.perturbation_class(**kwargs)
        self.region_key = region_key
        self.label_key = label_key
        if self.perturbation.needs_region and region_key is None:
            raise ValueError(f"{type(self).__name__} needs region_key (the mask or label key it acts on).")

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Randomizable:
        super().set_random_state(seed, state)
        self.perturbation.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.perturbation.randomize()

    def region(self, data: Mapping[Hashable, Any]) -> Any:
        if self.region_key is None:
            return None
        if self.region_key not in data:
            raise ValueError(
                f"{type(self).__name__}: region_key {self.region_key!r} is not in the data "
                f"(keys: {sorted(map(str, data))})."
            )
        return data[self.region_key]

    def apply_to(self, data: Mapping[Hashable, Any], severity: float | None) -> dict[Hashable, Any]:
        d = dict(data)
        region = self.region(d)
        for key in self.key_iterator(d):
            d[key] = self.perturbation(d[key], region=region, severity=severity, randomize=False)
        if self.label_key is not None and self.perturbation.new_region is not None:
            footprint = self.perturbation.new_region[None].to(torch.uint8)
            d[self.label_key] = ImageTransform.wrap(footprint, region) if region is not None else footprint
        return d

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        return self.apply_to(data, None)


class RandPerturbationDict(RandomizableTransform, PerturbationDict):
    """Random dictionary version: applied with probability ``prob``, severity drawn from a range.

    Args:
        keys, region_key, label_key, allow_missing_keys: as in :class:`PerturbationDict`.
        prob: probability of applying the perturbation.
        severity: a fixed severity or a ``(low, high)`` range sampled uniformly per call.
        kwargs: further arguments of ``perturbation_class``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        severity: float | tuple[float, float] = (0.0, 1.0),
        region_key: str | None = None,
        label_key: str | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        PerturbationDict.__init__(self, keys, region_key, label_key, allow_missing_keys, **kwargs)
        low, high = (severity, severity) if isinstance(severity, (int, float)) else severity
        self.severity_range = (check_severity(low), check_severity(high))
        if self.severity_range[0] > self.severity_range[1]:
            raise ValueError(f"severity range must be (low, high) with low <= high, got {severity!r}.")
        self._severity = self.severity_range[0]

    def randomize(self, data: Any = None) -> None:
        RandomizableTransform.randomize(self, None)
        self._severity = float(self.R.uniform(*self.severity_range))
        self.perturbation.randomize()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        if not self._do_transform:
            return dict(data)
        return self.apply_to(data, self._severity)
