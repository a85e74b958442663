"""Dictionary versions of the package's transforms (``...d``, with ``keys`` and ``allow_missing_keys``).

Perturbations: ``Xd`` applies ``X`` deterministically to every key (the same realisation ``seed``);
``RandXd`` does so with probability ``prob``, a severity drawn from a range and a fresh realisation per call
(see :mod:`monai_kcross.transforms.base`). k-space: ``ToKSpaced``, ``FromKSpaced``, ``KSpaceComponentsd``
(invertible), ``KSpaceUndersampled`` and ``RandKSpaceUndersampled``.

The classes are generated from their array transforms: each has the array transform's parameters as
keyword-only arguments in its signature (``inspect.signature``, ``help``) and docstring, and rejects unknown
keywords with a ``TypeError`` naming them. Four names equal MONAI's (``RandGaussianNoised``,
``RandRicianNoised``, ``RandBiasFieldd``, ``RandHistogramShiftd``) but take this package's severity-based
arguments; their docstrings say how they differ.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, RandomizableTransform

from . import global_perturbations as G
from . import kspace as K
from . import kspace_artefacts as A
from . import local_perturbations as L
from .base import (
    InvertiblePerturbation,
    InvertiblePerturbationDict,
    PerturbationDict,
    RandPerturbationDict,
    check_keywords,
)
from .memorisation import Memorise

__all__ = [
    "BiasFieldd",
    "FromKSpaced",
    "Gammad",
    "GaussianBlurd",
    "GaussianNoised",
    "GibbsRingingd",
    "HistogramShiftd",
    "IntensityScaleShiftd",
    "KSpaceComponentsd",
    "KSpaceSpiked",
    "KSpaceUndersampled",
    "LesionInsertiond",
    "LesionRemovald",
    "LesionResized",
    "LocalContrastChanged",
    "LocalElasticDeformationd",
    "Memorised",
    "MotionGhostingd",
    "PhaseRampd",
    "RandBiasFieldd",
    "RandGammad",
    "RandGaussianBlurd",
    "RandGaussianNoised",
    "RandGibbsRingingd",
    "RandHistogramShiftd",
    "RandIntensityScaleShiftd",
    "RandKSpaceSpiked",
    "RandKSpaceUndersampled",
    "RandLesionInsertiond",
    "RandLesionRemovald",
    "RandLesionResized",
    "RandLocalContrastChanged",
    "RandLocalElasticDeformationd",
    "RandMemorised",
    "RandMotionGhostingd",
    "RandPhaseRampd",
    "RandRicianNoised",
    "RandUndersamplingAliasingd",
    "RicianNoised",
    "ToKSpaced",
    "UndersamplingAliasingd",
]

# ---------------------------------------------------------------------------------------------- generated API

#: how the classes whose names equal MONAI's differ from MONAI's (docstrings and unknown-keyword errors)
MONAI_DIFFERENCES = {
    "RandGaussianNoised": (
        "the noise standard deviation is ``severity * max_sigma`` times the image's intensity span (max - min), "
        "with ``severity`` drawn from a range, and the mean is 0; MONAI's ``mean``, ``std`` (absolute) and "
        "``sample_std`` are not accepted."
    ),
    "RandRicianNoised": (
        "Gaussian noise of ``sigma = severity * max_sigma * (max - min)`` on a real and an imaginary channel, "
        "magnitude taken, the same sigma for every channel; MONAI's ``mean``, ``std``, ``channel_wise``, "
        "``relative`` and ``sample_std`` are not accepted."
    ),
    "RandBiasFieldd": (
        "the field is ``exp(a * P)`` with ``P`` a random polynomial of degree ``order`` scaled to ``max|P| = 1`` "
        "and a peak gain ``(1 + max_change) ** severity``; MONAI's ``degree`` is ``order`` here, and its "
        "``coeff_range`` (Legendre coefficients) and ``dtype`` are not accepted."
    ),
    "RandHistogramShiftd": (
        "a smooth monotone remapping ``u + a sin(2 pi k u) / (2 pi k)`` with fixed min and max "
        "(``max_slope_change``, ``cycles``) instead of MONAI's random piecewise-linear control points; "
        "``num_control_points`` is not accepted."
    ),
}

_COMMON = {
    "keys": "keys of the images to transform (every key gets the same realisation).",
    "region_key": "key of the mask or label map that a local alteration acts on (required by them; "
    "not accepted by transforms of the whole image).",
    "label_key": "key under which a local alteration stores the altered lesion footprint (uint8, with the "
    "region's metadata), e.g. ``region_key`` itself to keep labels consistent.",
    "allow_missing_keys": "skip absent image keys, and pass the images through (recorded) when ``region_key`` "
    "is absent, instead of raising.",
    "prob": "probability of applying the transform (MetaTensors record ``do_transform`` either way).",
    "mask_key": 'key of the sampling mask ``(1, *spatial)`` (default ``"<first key>_kspace_mask"``).',
    "severity": "in ``[0, 1]``: 0 is the identity, 1 the strongest documented setting.",
    "seed": "the realisation of the random numbers drawn (noise, shapes, positions, lines); fixed, so the "
    "transform is deterministic.",
    "strict": "raise when the region is empty or cannot hold the alteration, instead of passing the image "
    "through unchanged (recorded as ``applied=False`` with the reason).",
    "labels": "label values forming the region (default: every non-zero value).",
}
_RAND_SEVERITY = "a fixed severity or a ``(low, high)`` range in ``[0, 1]``, sampled uniformly per call."


def _documented_args(cls: type) -> dict[str, str]:
    """``name: description`` entries of the ``Args:`` section of ``cls``'s docstring (one paragraph each)."""
    doc = inspect.getdoc(cls) or ""
    if "Args:" not in doc:
        return {}
    entries: dict[str, str] = {}
    name = None
    for line in doc.split("Args:", 1)[1].splitlines()[1:]:
        if line and not line.startswith(" "):
            break  # the next section
        stripped = line.strip()
        head, _, rest = stripped.partition(": ")
        if line.startswith("    ") and not line.startswith("     ") and rest and head.isidentifier():
            name = head
            entries[name] = rest
        elif name and stripped:
            entries[name] += " " + stripped
    return entries


def _summary(cls: type) -> str:
    return (inspect.getdoc(cls) or "").split("\n\n", 1)[0].replace("\n", " ")


def _body(cls: type, random: bool) -> str:
    """``cls``'s docstring without its first paragraph, its ``Args``/``Returns`` sections and, for a random
    version, the paragraph on determinism."""
    parts = (inspect.getdoc(cls) or "").split("\n\n")[1:]
    skipped = ("Args:", "Returns:", "Deterministic") if random else ("Args:", "Returns:")
    return "\n\n".join(p for p in parts if not p.startswith(skipped))


def _api(cls: type, base_init: Any, array_class: type, excluded: tuple[str, ...], intro: str) -> None:
    """Give ``cls`` a real ``__signature__`` and a docstring listing every argument."""
    own = [
        p
        for name, p in inspect.signature(base_init).parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    taken = {p.name for p in own} | set(excluded)
    passed = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, p in inspect.signature(array_class).parameters.items()
        if name not in taken
    ]
    cls.__signature__ = inspect.Signature([*own, *passed], return_annotation=None)
    described = {**_documented_args(array_class), **_COMMON}
    if issubclass(cls, RandomizableTransform):
        described["severity"] = _RAND_SEVERITY
    if not getattr(array_class, "needs_region", False):
        described["allow_missing_keys"] = "skip absent keys instead of raising."
        described["region_key"] = described["label_key"] = "must stay ``None``: this transform acts on the whole image."
    array_name = array_class.__name__
    lines = [f"{intro} :class:`~monai_kcross.transforms.{array_name}`: {_summary(array_class)}", ""]
    body = _body(array_class, _kind(cls) == "random")
    if body:
        lines += [body, ""]
    behaviour = _BEHAVIOUR[_kind(cls)].format(array=array_name)
    if _kind(cls) == "random" and "severity" not in cls.__signature__.parameters:
        behaviour = behaviour.replace("with a severity drawn from ``severity`` and ", "with ")
    lines += [textwrap.fill(behaviour, 116), "", "Args:"]
    for p in [*own, *passed]:
        description = described.get(p.name) or f"as in :class:`~monai_kcross.transforms.{array_name}`."
        default = "" if p.default is inspect.Parameter.empty else f" Default: ``{p.default!r}``."
        entry = f"{p.name}: {description}{default}"
        lines.append(textwrap.fill(entry, 116, initial_indent="    ", subsequent_indent="        "))
    difference = MONAI_DIFFERENCES.get(cls.__name__)
    if difference:
        lines += ["", textwrap.fill(f"Unlike MONAI's ``{cls.__name__}``: {difference}", 116)]
    cls.__doc__ = "\n".join(lines)
    cls.__module__ = __name__


def _kind(cls: type) -> str:
    if issubclass(cls, RandomizableTransform):
        return "random"
    return "perturbation" if issubclass(cls, PerturbationDict) else "mapped"


_BEHAVIOUR = {
    "perturbation": (
        "Deterministic: every call and every key get the same output for the same input (the realisation "
        "``seed``). On a MetaTensor the call is recorded in ``applied_operations`` under ``{array}``."
    ),
    "random": (
        "Random: applied with probability ``prob``, with a severity drawn from ``severity`` and a fresh "
        "realisation per call (``set_random_state`` seeds the draws), the same for every key. On a MetaTensor "
        "the call is recorded under this class's name with ``do_transform`` and, when applied, the parameters "
        "used (severity, seed, physical values)."
    ),
    "mapped": "On a MetaTensor the call is recorded in ``applied_operations`` under ``{array}``.",
}


def _perturbation_dicts(array_class: type) -> tuple[type, type]:
    """The deterministic and the random dictionary class of a perturbation, sharing one mechanism."""
    invertible = issubclass(array_class, InvertiblePerturbation)
    mixin = (InvertiblePerturbationDict,) if invertible else ()
    made = []
    for prefix, base in (("", PerturbationDict), ("Rand", RandPerturbationDict)):
        name = f"{prefix}{array_class.__name__}d"
        cls = type(
            name,
            (base, *mixin),
            {"perturbation_class": array_class, "monai_difference": MONAI_DIFFERENCES.get(name, "")},
        )
        excluded = ("seed",) if base is RandPerturbationDict else ()
        intro = "Random dictionary version of" if prefix else "Dictionary version of"
        _api(cls, base.__init__, array_class, excluded, intro)
        if invertible:
            cls.__doc__ += "\n\nInvertible: ``inverse`` undoes the recorded call on every key."
        made.append(cls)
    return made[0], made[1]


# ---------------------------------------------------------------------------------------------- k-space


class _Mapped(InvertibleTransform, MapTransform):
    """Apply one invertible array transform to every key; ``inverse`` converts every key back."""

    array_class: type

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        check_keywords(type(self), kwargs, inspect.signature(self.array_class).parameters)
        self.transform = self.array_class(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform.inverse(d[key])
        return d


def _mapped(array_class: type) -> type:
    cls = type(f"{array_class.__name__}d", (_Mapped,), {"array_class": array_class})
    _api(cls, _Mapped.__init__, array_class, (), "Dictionary version of")
    cls.__doc__ += "\n\nInvertible: ``inverse`` converts every key back (see the array transform)."
    return cls


ToKSpaced = _mapped(K.ToKSpace)
FromKSpaced = _mapped(K.FromKSpace)
KSpaceComponentsd = _mapped(K.KSpaceComponents)


class KSpaceUndersampled(MapTransform):
    """Every key undersampled with the same lines; the mask is stored under ``mask_key``."""

    def __init__(
        self, keys: KeysCollection, mask_key: str | None = None, allow_missing_keys: bool = False, **kwargs: Any
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        check_keywords(type(self), kwargs, self.array_keywords())
        self.transform = K.KSpaceUndersample(**kwargs)
        self.mask_key = mask_key or f"{self.keys[0]}_kspace_mask"

    @classmethod
    def array_keywords(cls) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(K.KSpaceUndersample).parameters)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        """Select the realisation of the lines (see :meth:`KSpaceUndersample.set_random_state`)."""
        self.transform.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key], d[self.mask_key] = self.transform(d[key])
        return d


class RandKSpaceUndersampled(RandomizableTransform, KSpaceUndersampled):
    """New random lines per call (the same for every key); not applied, the images stay and the mask is ones."""

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str | None = None,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        KSpaceUndersampled.__init__(self, keys, mask_key, allow_missing_keys, **kwargs)
        self._seed = 0

    @classmethod
    def array_keywords(cls) -> dict[str, inspect.Parameter]:
        return {k: v for k, v in super().array_keywords().items() if k != "seed"}

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        return RandomizableTransform.set_random_state(self, seed, state)

    def randomize(self, data: Any = None) -> None:
        RandomizableTransform.randomize(self, None)
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        d = dict(data)
        for key in self.key_iterator(d):
            image = self.transform.unwrap(d[key])
            if self._do_transform:
                with self.transform.trace_transform(False):
                    d[key], d[self.mask_key] = self.transform(d[key], seed=self._seed)
                info = dict(self.transform.applied)
            else:
                ones = torch.ones((1, *image.shape[1:]), dtype=torch.float32, device=image.device)
                d[key], d[self.mask_key] = self.transform.wrap(image.clone(), d[key]), self.transform.wrap(ones, d[key])
                info = {}
            if isinstance(d[key], MetaTensor):
                d[key] = self.push_transform(d[key], extra_info=info)
        return d


_api(KSpaceUndersampled, KSpaceUndersampled.__init__, K.KSpaceUndersample, (), "Dictionary version of")
_api(RandKSpaceUndersampled, RandKSpaceUndersampled.__init__, K.KSpaceUndersample, ("seed",), "Random version of")

# ---------------------------------------------------------------------------------------------- perturbations

IntensityScaleShiftd, RandIntensityScaleShiftd = _perturbation_dicts(G.IntensityScaleShift)
Gammad, RandGammad = _perturbation_dicts(G.Gamma)
BiasFieldd, RandBiasFieldd = _perturbation_dicts(G.BiasField)
GaussianNoised, RandGaussianNoised = _perturbation_dicts(G.GaussianNoise)
RicianNoised, RandRicianNoised = _perturbation_dicts(G.RicianNoise)
GaussianBlurd, RandGaussianBlurd = _perturbation_dicts(G.GaussianBlur)
HistogramShiftd, RandHistogramShiftd = _perturbation_dicts(G.HistogramShift)
KSpaceSpiked, RandKSpaceSpiked = _perturbation_dicts(A.KSpaceSpike)
MotionGhostingd, RandMotionGhostingd = _perturbation_dicts(A.MotionGhosting)
GibbsRingingd, RandGibbsRingingd = _perturbation_dicts(A.GibbsRinging)
UndersamplingAliasingd, RandUndersamplingAliasingd = _perturbation_dicts(A.UndersamplingAliasing)
PhaseRampd, RandPhaseRampd = _perturbation_dicts(A.PhaseRamp)
LocalElasticDeformationd, RandLocalElasticDeformationd = _perturbation_dicts(L.LocalElasticDeformation)
LesionResized, RandLesionResized = _perturbation_dicts(L.LesionResize)
LesionRemovald, RandLesionRemovald = _perturbation_dicts(L.LesionRemoval)
LesionInsertiond, RandLesionInsertiond = _perturbation_dicts(L.LesionInsertion)
LocalContrastChanged, RandLocalContrastChanged = _perturbation_dicts(L.LocalContrastChange)
Memorised, RandMemorised = _perturbation_dicts(Memorise)
