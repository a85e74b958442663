"""The shared mechanism of the package's transforms: MetaTensor handling, severities, regions, seeds, traces.

Every perturbation is an array transform ``P(severity=..., seed=...)`` acting on a channel-first image
``(C, H, W[, D])`` (a ``MetaTensor``, tensor or NumPy array; the output has the input's type, metadata and
affine). ``severity`` runs from 0 (identity, exactly) to 1 (the strongest documented setting); values in
between interpolate one physical parameter that each class names.

Array transforms and their ``...d`` dictionary versions are **deterministic**: for fixed parameters the output
is a function of the input. Perturbations that draw random numbers (noise, field shapes, positions) take them
from a generator seeded by ``seed`` (the noise realisation; ``set_random_state(seed)`` sets the same thing, as
MONAI's seeding API does). Randomness lives only in the ``Rand...d`` versions
(:mod:`monai_kcross.transforms.dictionary`): applied with probability ``prob``, a severity drawn from a range
and a fresh ``seed`` per call, from MONAI's ``Randomizable`` state.

Local alterations need a region (a lesion label, a brain mask): when it is empty (a healthy subject) or cannot
hold the alteration, the image passes through unchanged and the reason is recorded; ``strict=True`` raises
instead.

Traces: on a ``MetaTensor``, each call appends a record to ``applied_operations`` (MONAI's
``TraceableTransform``): the class name, ``do_transform`` and ``extra_info`` with ``severity``, ``seed``,
``applied`` (False when skipped, with the ``reason``), the settings and the physical parameters used.
Perturbations that are one-to-one intensity maps are ``InvertibleTransform`` transforms whose ``inverse`` reads that
record. The record of the last call is also ``transform.applied`` (useful for plain tensors, which carry none).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, RandomizableTransform, TraceableTransform, Transform
from monai.utils import TraceKeys, convert_to_dst_type

from ..functional.validation import as_plain_tensor

__all__ = [
    "ImageTransform",
    "InvertiblePerturbation",
    "NotApplicable",
    "Perturbation",
    "PerturbationDict",
    "RandPerturbationDict",
    "as_region",
    "check_seed",
    "check_severity",
    "settings_of",
]

_MAX_SEED = 2**32  # MONAI's seed range


def check_severity(severity: float, name: str = "severity") -> float:
    """Return ``severity`` as a float in ``[0, 1]`` or raise a ``ValueError``."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1], got {severity!r}.")
    if not 0.0 <= float(severity) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (0 = identity, 1 = strongest), got {severity!r}.")
    return float(severity)


def check_seed(seed: int) -> int:
    """Return ``seed`` as a non-negative int below ``2**32`` (MONAI's range, taken modulo) or raise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    return int(seed) % _MAX_SEED


def draw_seed(seed: int) -> int:
    """The generator seed of a realisation: the first draw of ``RandomState(seed)``.

    This is what a MONAI ``Randomizable`` seeded with ``set_random_state(seed)`` draws first, so seeds given
    before this package's transforms became deterministic select the same realisation as they did then.
    """
    return int(np.random.RandomState(seed).randint(0, 2**31 - 1))


class NotApplicable(ValueError):
    """The perturbation cannot act on this image (empty region, no room): skipped unless ``strict``."""


def as_region(region: Any, image: torch.Tensor, labels: Sequence[int] | None = None, name: str = "") -> torch.Tensor:
    """A region (mask or label map) as a bool tensor of the image's spatial shape.

    Args:
        region: ``(1|C, *spatial)`` or ``spatial``-shaped mask or label map; channels are combined with "or".
        image: channel-first image ``(C, *spatial)``.
        labels: label values forming the region (default: every non-zero value).
        name: transform name for messages.

    Returns:
        Bool tensor of shape ``spatial``, possibly empty (check with :func:`require_nonempty`).

    Raises:
        ValueError: missing or wrongly shaped region.
    """
    if region is None:
        raise ValueError(f"{name}: this perturbation needs a region (a mask or label map), got None.")
    region = as_plain_tensor(region if isinstance(region, torch.Tensor) else np.asarray(region))
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
    return selected.any(dim=0).to(image.device)


def require_nonempty(region: torch.Tensor, labels: Sequence[int] | None, name: str) -> None:
    """Raise :class:`NotApplicable` when ``region`` selects no voxel."""
    if not bool(region.any()):
        raise NotApplicable(f"{name}: the region is empty{'' if labels is None else f' (labels {list(labels)})'}.")


_SETTINGS_EXCLUDED = {"self", "severity", "seed", "strict", "training_images"}


@functools.cache
def _parameter_names(cls: type) -> tuple[str, ...]:
    return tuple(inspect.signature(cls).parameters)


def settings_of(transform: Any) -> dict[str, Any]:
    """The constructor settings of ``transform`` that a trace can hold (numbers, strings, bools, lists).

    Read from the constructor's signature and the attributes of the same names; tensors, ``None`` and the
    arguments recorded apart (``severity``, ``seed``, ``strict``) are left out.
    """
    out: dict[str, Any] = {}
    for name in _parameter_names(type(transform)):
        value = getattr(transform, name, None)
        if name in _SETTINGS_EXCLUDED or value is None:
            continue
        if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            out[name] = list(value)
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


class ImageTransform(Transform):
    """Base of the package's array transforms: unwrap to a plain tensor, re-wrap keeping type and metadata."""

    @staticmethod
    def unwrap(img: Any) -> torch.Tensor:
        return as_plain_tensor(img)

    @staticmethod
    def wrap(out: torch.Tensor, img: Any) -> Any:
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]

    @staticmethod
    def check_channel_first(x: torch.Tensor, name: str) -> None:
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{name}: expected a channel-first image (C, H, W) or (C, H, W, D), got shape {tuple(x.shape)}."
            )


def record_inverse_input(transform: TraceableTransform, data: Any) -> dict[str, Any]:
    """Pop ``transform``'s most recent record from a ``MetaTensor`` (a named error for anything else)."""
    name = type(transform).__name__
    if not isinstance(data, MetaTensor):
        raise ValueError(
            f"{name}.inverse needs the MetaTensor that {name} returned (its applied_operations hold the "
            f"parameters to undo), got {type(data).__name__}; for a plain tensor use invert(image, record)."
        )
    return transform.pop_transform(data)


class Perturbation(TraceableTransform, ImageTransform):
    """A severity-controlled, deterministic perturbation of a channel-first image (see the module docstring).

    Args:
        severity: in ``[0, 1]``; 0 is the identity, 1 the strongest documented setting.
        labels: local alterations: label values forming the region (default: every non-zero value).
        seed: the realisation of the random numbers the perturbation draws (noise, shapes, positions).
        strict: local alterations: raise when the region is empty or cannot hold the alteration, instead of
            passing the image through unchanged (recorded as ``applied=False`` with the reason).

    Computation runs in float32 (float64 inputs stay float64); half-precision inputs get half-precision output,
    integer inputs float32 output.

    Subclasses implement :meth:`apply` (which may add physical parameters to ``self.applied``) and set
    ``needs_region`` when they act on a region (then ``margin`` states how far from the region, in voxels,
    voxels may change). After a call, ``new_region`` holds the lesion footprint (local alterations).
    """

    needs_region: bool = False
    margin: float | None = None

    def __init__(
        self, severity: float = 1.0, labels: Sequence[int] | None = None, seed: int = 0, strict: bool = False
    ) -> None:
        self.severity = check_severity(severity)
        self.labels = labels
        self.seed = check_seed(seed)
        self.strict = bool(strict)
        self.select(self.seed)
        self.new_region: torch.Tensor | None = None  # region after a local alteration (see label_key)
        self.applied: dict[str, Any] = {}  # the record of the last call

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Perturbation:
        """Select the realisation with MONAI's seeding API: ``seed`` sets :attr:`seed`; ``state`` draws one.

        The transform stays deterministic: every later call uses that realisation.
        """
        if seed is None:
            seed = (state or np.random.RandomState()).randint(0, 2**31 - 1)
        self.seed = check_seed(seed)
        self.select(self.seed)
        return self

    def select(self, seed: int) -> None:
        """Make :meth:`generator` produce the realisation ``seed`` (for one call; see :meth:`perturb`)."""
        self._draw = draw_seed(seed)

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch generator of the current call's realisation (same seed -> same numbers)."""
        generator = torch.Generator(device=device)
        generator.manual_seed(self._draw)
        return generator

    def unchanged_footprint(self, region: torch.Tensor) -> torch.Tensor:
        """The lesion footprint when nothing is altered (the region itself; insertions override it)."""
        return region

    def __call__(self, img: Any, region: Any = None, severity: float | None = None, seed: int | None = None) -> Any:
        """Perturb ``img`` ``(C, H, W[, D])``; ``region`` is required by local alterations.

        ``severity`` and ``seed`` override the instance's values for this call.
        """
        out = self.perturb(img, region, severity, seed)
        return self.push_transform(out, extra_info=dict(self.applied)) if isinstance(out, MetaTensor) else out

    def record(self, severity: float, seed: int, applied: bool = True, reason: str = "") -> dict[str, Any]:
        """The trace of a call: severity, seed (when the class draws random numbers), settings, outcome."""
        seeded = {"seed": seed} if "seed" in _parameter_names(type(self)) else {}
        return {"severity": severity, **seeded, "applied": applied, "reason": reason, **settings_of(self)}

    def perturb(self, img: Any, region: Any = None, severity: float | None = None, seed: int | None = None) -> Any:
        """Perturb without tracing; the record is left in :attr:`applied`."""
        name = type(self).__name__
        strength = self.severity if severity is None else check_severity(severity)
        seed = self.seed if seed is None else check_seed(seed)
        x = self.unwrap(img)
        self.check_channel_first(x, name)
        original = x.dtype
        x = x.to(x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32)
        self.select(seed)
        self.applied = self.record(strength, seed)
        mask = as_region(region, x, self.labels, name) if self.needs_region else None
        self.new_region = None if mask is None else self.unchanged_footprint(mask)
        try:
            if mask is not None:
                require_nonempty(mask, self.labels, name)
            out = x.clone() if strength == 0.0 else self.apply(x, strength, mask)
        except NotApplicable as error:
            if self.strict:
                raise
            self.applied.update(applied=False, reason=str(error))
            self.new_region = self.unchanged_footprint(mask) if mask is not None else None
            out = x.clone()
        if original in (torch.float16, torch.bfloat16):  # computed in float32, returned in half precision
            out = out.to(original)
        return self.wrap(out, img)

    def apply(self, x: torch.Tensor, severity: float, region: torch.Tensor | None) -> torch.Tensor:
        """Perturb a float tensor ``(C, *spatial)`` with ``0 < severity <= 1``; ``region`` is bool ``spatial``."""
        raise NotImplementedError


class InvertiblePerturbation(InvertibleTransform, Perturbation):
    """A perturbation that is a one-to-one intensity map: ``inverse`` undoes it from the recorded parameters.

    Subclasses record what :meth:`apply_inverse` needs in ``self.applied`` during :meth:`apply`.
    """

    def inverse(self, data: Any) -> Any:
        """Undo the most recent call of this transform on ``data`` (a ``MetaTensor`` it returned)."""
        record = record_inverse_input(self, data)
        return self.invert(data, record[TraceKeys.EXTRA_INFO])

    def invert(self, img: Any, record: Mapping[str, Any]) -> Any:
        """Undo the perturbation described by ``record`` (an ``extra_info`` or :attr:`applied`), untraced.

        Computed in float64 and returned in ``img``'s dtype.
        """
        if not record.get("applied", True) or record["severity"] == 0:
            return img
        x = self.unwrap(img)
        out = self.apply_inverse(x.to(torch.float64), record).to(x.dtype)
        return self.wrap(out, img)

    def apply_inverse(self, y: torch.Tensor, record: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError


class PerturbationDict(MapTransform, TraceableTransform):
    """Dictionary version of a perturbation: deterministic, the same realisation for every key.

    Every key gets ``perturbation_class``'s output; MetaTensors record it (under the array class's name, as
    MONAI's dictionary transforms do).

    Args:
        keys: keys of the images to perturb.
        region_key: key of the mask or label map that local alterations act on.
        label_key: key under which a local alteration stores the altered lesion footprint (uint8, with the
            metadata of the region), e.g. the same key as ``region_key`` to keep labels consistent.
        allow_missing_keys: skip absent image keys, and pass the images through (recorded) when ``region_key``
            is absent, instead of raising.
        kwargs: keyword arguments of ``perturbation_class``; unknown names raise a ``TypeError``.
    """

    perturbation_class: type[Perturbation]
    #: what differs from MONAI's transform of the same name, if there is one (docstring and error messages)
    monai_difference: str = ""

    def __init__(
        self,
        keys: KeysCollection,
        region_key: str | None = None,
        label_key: str | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        check_keywords(type(self), kwargs, self.array_keywords(), self.monai_difference)
        self.perturbation = self.perturbation_class(**kwargs)
        self.region_key, self.label_key = region_key, label_key
        name = type(self).__name__
        if self.perturbation.needs_region and region_key is None:
            raise ValueError(f"{name} needs region_key (the mask or label key it acts on).")
        if not self.perturbation.needs_region and (region_key is not None or label_key is not None):
            raise ValueError(f"{name} acts on the whole image: region_key and label_key do not apply to it.")

    @classmethod
    def array_keywords(cls) -> dict[str, inspect.Parameter]:
        """The array class's parameters that the dictionary version passes on."""
        return dict(inspect.signature(cls.perturbation_class).parameters)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        """Select the realisation of the array perturbation (see :meth:`Perturbation.set_random_state`)."""
        self.perturbation.set_random_state(seed, state)
        return self

    def region(self, data: Mapping[Hashable, Any]) -> tuple[Any, bool]:
        """``(region, present)``; a missing ``region_key`` raises unless ``allow_missing_keys``."""
        if self.region_key is None:
            return None, True
        if self.region_key in data:
            return data[self.region_key], True
        if self.allow_missing_keys:
            return None, False
        raise ValueError(
            f"{type(self).__name__}: region_key {self.region_key!r} is not in the data "
            f"(keys: {sorted(map(str, data))}); pass allow_missing_keys=True to pass such data through."
        )

    def perturb_key(self, image: Any, region: Any, present: bool) -> Any:
        if present:
            return self.perturbation(image, region=region)
        out = self.passthrough(image, f"region_key {self.region_key!r} is missing")
        return self.perturbation.push_transform(out, extra_info=dict(self.perturbation.applied))

    def passthrough(self, image: Any, reason: str, severity: float | None = None, seed: int | None = None) -> Any:
        """The unchanged image, with a skip record in ``perturbation.applied``."""
        p = self.perturbation
        p.applied = p.record(
            p.severity if severity is None else severity, p.seed if seed is None else seed, False, reason
        )
        p.new_region = None
        return p.wrap(p.unwrap(image).clone(), image)

    def undo(self, image: Any) -> Any:
        """Undo this transform's most recent record on ``image`` (invertible perturbations only)."""
        return self.perturbation.inverse(image)

    def store_footprint(self, d: dict[Hashable, Any], region: Any) -> None:
        if self.label_key is not None and self.perturbation.new_region is not None:
            footprint = self.perturbation.new_region[None].to(torch.uint8)
            d[self.label_key] = ImageTransform.wrap(footprint, region) if region is not None else footprint

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.perturbation.new_region = None
        region, present = self.region(d)
        for key in self.key_iterator(d):
            d[key] = self.perturb_key(d[key], region, present)
        self.store_footprint(d, region)
        return d


class RandPerturbationDict(RandomizableTransform, PerturbationDict):
    """Random dictionary version: applied with probability ``prob``, a severity drawn from a range and a fresh
    realisation (``seed``) per call, the same for every key. MetaTensors record it under this class's name,
    with ``do_transform``.

    Args:
        keys, region_key, label_key, allow_missing_keys: as in :class:`PerturbationDict`.
        prob: probability of applying the perturbation.
        severity: a fixed severity or a ``(low, high)`` range sampled uniformly per call.
        kwargs: further keyword arguments of ``perturbation_class`` (not ``seed``: drawn per call).
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
        self._severity, self._seed = self.severity_range[0], 0

    @classmethod
    def array_keywords(cls) -> dict[str, inspect.Parameter]:
        keywords = super().array_keywords()
        return {name: p for name, p in keywords.items() if name not in ("severity", "seed")}

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        return RandomizableTransform.set_random_state(self, seed, state)

    def undo(self, image: Any) -> Any:
        record = record_inverse_input(self, image)
        if not record[TraceKeys.DO_TRANSFORM]:
            return image
        return self.perturbation.invert(image, record[TraceKeys.EXTRA_INFO])

    def randomize(self, data: Any = None) -> None:
        RandomizableTransform.randomize(self, None)
        self._severity = float(self.R.uniform(*self.severity_range))
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def perturb_key(self, image: Any, region: Any, present: bool) -> Any:
        p = self.perturbation
        if not self._do_transform:
            out, info = p.wrap(p.unwrap(image).clone(), image), {}
            if p.needs_region and present:  # the label footprint is the unaltered region
                p.new_region = p.unchanged_footprint(as_region(region, p.unwrap(image), p.labels, type(self).__name__))
        elif present:
            out, info = p.perturb(image, region, self._severity, self._seed), dict(p.applied)
        else:
            out = self.passthrough(image, f"region_key {self.region_key!r} is missing", self._severity, self._seed)
            info = dict(p.applied)
        return self.push_transform(out, extra_info=info) if isinstance(out, MetaTensor) else out

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        return PerturbationDict.__call__(self, data)


class InvertiblePerturbationDict(InvertibleTransform):
    """Mixin of the dictionary versions of invertible perturbations: ``inverse`` undoes every key."""

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.undo(d[key])
        return d


def check_keywords(
    cls: type, given: Mapping[str, Any], accepted: Mapping[str, inspect.Parameter], monai_difference: str = ""
) -> None:
    """Raise a ``TypeError`` naming the keywords of ``given`` that ``cls`` does not accept."""
    unknown = sorted(set(given) - set(accepted))
    if not unknown:
        return
    names = list(inspect.signature(cls).parameters)
    message = f"{cls.__name__} got unknown argument(s) {unknown}; it accepts {', '.join(names)}."
    if monai_difference:
        message += f" (This is monai_kcross's {cls.__name__}, not monai.transforms.{cls.__name__}: {monai_difference})"
    raise TypeError(message)
