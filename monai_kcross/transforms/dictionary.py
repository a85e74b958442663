"""Dictionary versions of the package's transforms (``...d``, with ``keys`` and ``allow_missing_keys``).

Perturbations: ``Xd`` applies ``X`` to every key with one random draw; ``RandXd`` does so with probability
``prob`` and a severity drawn from a range (see :mod:`monai_kcross.transforms.base`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable

from . import global_perturbations as G
from . import kspace as K
from . import kspace_artefacts as A
from . import local_perturbations as L
from .base import PerturbationDict, RandPerturbationDict
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


class _Mapped(MapTransform):
    """Apply one array transform to every key."""

    array_class: type

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = self.array_class(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class ToKSpaced(_Mapped):
    """Dictionary version of :class:`~monai_kcross.transforms.ToKSpace`."""

    array_class = K.ToKSpace


class FromKSpaced(_Mapped):
    """Dictionary version of :class:`~monai_kcross.transforms.FromKSpace`."""

    array_class = K.FromKSpace


class KSpaceComponentsd(_Mapped):
    """Dictionary version of :class:`~monai_kcross.transforms.KSpaceComponents`."""

    array_class = K.KSpaceComponents


class KSpaceUndersampled(Randomizable, MapTransform):
    """Dictionary version of :class:`~monai_kcross.transforms.KSpaceUndersample`.

    Every key gets the same sampling mask; the zero-filled image replaces the key and the mask is stored under
    ``mask_key`` (default ``"<first key>_kspace_mask"``).
    """

    def __init__(
        self, keys: KeysCollection, mask_key: str | None = None, allow_missing_keys: bool = False, **kwargs: Any
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.transform = K.KSpaceUndersample(**kwargs)
        self.mask_key = mask_key or f"{self.keys[0]}_kspace_mask"

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Randomizable:
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.transform.randomize()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        state = self.transform._state.get_state()
        for key in self.key_iterator(d):
            self.transform._state.set_state(state)  # identical lines for every key
            d[key], d[self.mask_key] = self.transform(d[key], randomize=False)
        return d


def _pair(perturbation: type) -> tuple[type, type]:
    """The fixed and the random dictionary class of a perturbation, sharing one mechanism."""
    doc = f"Dictionary version of :class:`~monai_kcross.transforms.{perturbation.__name__}`."
    fixed = type(f"{perturbation.__name__}d", (PerturbationDict,), {"perturbation_class": perturbation, "__doc__": doc})
    rand_doc = f"Random dictionary version of :class:`~monai_kcross.transforms.{perturbation.__name__}` (``prob``)."
    random = type(
        f"Rand{perturbation.__name__}d",
        (RandPerturbationDict,),
        {"perturbation_class": perturbation, "__doc__": rand_doc},
    )
    for cls in (fixed, random):
        cls.__module__ = __name__
    return fixed, random


IntensityScaleShiftd, RandIntensityScaleShiftd = _pair(G.IntensityScaleShift)
Gammad, RandGammad = _pair(G.Gamma)
BiasFieldd, RandBiasFieldd = _pair(G.BiasField)
GaussianNoised, RandGaussianNoised = _pair(G.GaussianNoise)
RicianNoised, RandRicianNoised = _pair(G.RicianNoise)
GaussianBlurd, RandGaussianBlurd = _pair(G.GaussianBlur)
HistogramShiftd, RandHistogramShiftd = _pair(G.HistogramShift)
KSpaceSpiked, RandKSpaceSpiked = _pair(A.KSpaceSpike)
MotionGhostingd, RandMotionGhostingd = _pair(A.MotionGhosting)
GibbsRingingd, RandGibbsRingingd = _pair(A.GibbsRinging)
UndersamplingAliasingd, RandUndersamplingAliasingd = _pair(A.UndersamplingAliasing)
PhaseRampd, RandPhaseRampd = _pair(A.PhaseRamp)
LocalElasticDeformationd, RandLocalElasticDeformationd = _pair(L.LocalElasticDeformation)
LesionResized, RandLesionResized = _pair(L.LesionResize)
LesionRemovald, RandLesionRemovald = _pair(L.LesionRemoval)
LesionInsertiond, RandLesionInsertiond = _pair(L.LesionInsertion)
LocalContrastChanged, RandLocalContrastChanged = _pair(L.LocalContrastChange)
Memorised, RandMemorised = _pair(Memorise)
