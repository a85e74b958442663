"""MONAI transforms for k-space and for controlled, severity-parameterised perturbations.

* k-space: :class:`ToKSpace`, :class:`FromKSpace`, :class:`KSpaceComponents`, :class:`KSpaceUndersample`;
* global perturbations: :class:`IntensityScaleShift`, :class:`Gamma`, :class:`BiasField`,
  :class:`GaussianNoise`, :class:`RicianNoise`, :class:`GaussianBlur`, :class:`HistogramShift`;
* k-space artefacts: :class:`KSpaceSpike`, :class:`MotionGhosting`, :class:`GibbsRinging`,
  :class:`UndersamplingAliasing`, :class:`PhaseRamp`;
* local alterations: :class:`LocalElasticDeformation`, :class:`LesionResize`, :class:`LesionRemoval`,
  :class:`LesionInsertion`, :class:`LocalContrastChange`;
* memorisation: :class:`Memorise`;

each with dictionary versions ``...d`` and ``Rand...d`` (:mod:`monai_kcross.transforms.dictionary`), and a
registry of perturbations by name (:data:`PERTURBATIONS`) used by the sensitivity runner.

Array and ``...d`` versions are deterministic (random numbers come from a fixed realisation ``seed``); only
``Rand...d`` versions are random. Every call is recorded in a MetaTensor's ``applied_operations``; the k-space
conversions and the one-to-one intensity maps (``IntensityScaleShift``, ``Gamma``, ``BiasField``,
``HistogramShift``) are MONAI ``InvertibleTransform`` transforms. Local alterations pass an image with an empty
region through unchanged (recorded) unless ``strict=True``.
"""

from .base import (
    ImageTransform,
    InvertiblePerturbation,
    NotApplicable,
    Perturbation,
    PerturbationDict,
    RandPerturbationDict,
    check_severity,
)
from .dictionary import *  # noqa: F403
from .dictionary import __all__ as _dictionary_all
from .global_perturbations import (
    BiasField,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    HistogramShift,
    IntensityScaleShift,
    RicianNoise,
)
from .kspace import (
    FromKSpace,
    KSpaceComponents,
    KSpaceUndersample,
    ToKSpace,
    cartesian_mask,
    from_kspace,
    kspace_components,
    to_kspace,
)
from .kspace_artefacts import GibbsRinging, KSpaceSpike, MotionGhosting, PhaseRamp, UndersamplingAliasing
from .local_perturbations import (
    LesionInsertion,
    LesionRemoval,
    LesionResize,
    LocalContrastChange,
    LocalElasticDeformation,
)
from .memorisation import Memorise

# name -> (class, kind); kind is "global" (benign appearance change), "artefact" or "local"
PERTURBATIONS: dict[str, tuple[type[Perturbation], str]] = {
    "intensity_scale_shift": (IntensityScaleShift, "global"),
    "gamma": (Gamma, "global"),
    "bias_field": (BiasField, "global"),
    "gaussian_noise": (GaussianNoise, "global"),
    "rician_noise": (RicianNoise, "global"),
    "gaussian_blur": (GaussianBlur, "global"),
    "histogram_shift": (HistogramShift, "global"),
    "kspace_spike": (KSpaceSpike, "artefact"),
    "motion_ghosting": (MotionGhosting, "artefact"),
    "gibbs_ringing": (GibbsRinging, "artefact"),
    "undersampling": (UndersamplingAliasing, "artefact"),
    "phase_ramp": (PhaseRamp, "artefact"),
    "local_elastic": (LocalElasticDeformation, "local"),
    "lesion_shrink": (LesionResize, "local"),
    "lesion_grow": (LesionResize, "local"),
    "lesion_removal": (LesionRemoval, "local"),
    "lesion_insertion": (LesionInsertion, "local"),
    "local_contrast": (LocalContrastChange, "local"),
}
PERTURBATION_DEFAULTS: dict[str, dict] = {"lesion_shrink": {"mode": "shrink"}, "lesion_grow": {"mode": "grow"}}


def create_perturbation(name: str, **kwargs) -> Perturbation:
    """Build a registered perturbation by name (``kwargs`` override its defaults)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; available: {', '.join(PERTURBATIONS)}.")
    cls, _ = PERTURBATIONS[name]
    return cls(**{**PERTURBATION_DEFAULTS.get(name, {}), **kwargs})


__all__ = [
    "PERTURBATIONS",
    "BiasField",
    "FromKSpace",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "GibbsRinging",
    "HistogramShift",
    "ImageTransform",
    "InvertiblePerturbation",
    "IntensityScaleShift",
    "KSpaceComponents",
    "KSpaceSpike",
    "KSpaceUndersample",
    "LesionInsertion",
    "LesionRemoval",
    "LesionResize",
    "LocalContrastChange",
    "LocalElasticDeformation",
    "Memorise",
    "MotionGhosting",
    "NotApplicable",
    "Perturbation",
    "PerturbationDict",
    "PhaseRamp",
    "RandPerturbationDict",
    "RicianNoise",
    "ToKSpace",
    "UndersamplingAliasing",
    "cartesian_mask",
    "check_severity",
    "create_perturbation",
    "from_kspace",
    "kspace_components",
    "to_kspace",
    *_dictionary_all,
]
