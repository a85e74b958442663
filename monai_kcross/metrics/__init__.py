"""MONAI ``CumulativeIterationMetric`` classes for every metric of the package."""

from .base import FullReferenceMetric
from .full_reference import (
    DeepIQAMetric,
    DISTSMetric,
    FeatureDistanceMetric,
    GMSDMetric,
    HaarPSIMetric,
    LPIPSMetric,
    MAEMetric,
    MSEMetric,
    MultiScaleGMSDMetric,
    MultiScaleSSIMMetric,
    NLPDMetric,
    PSNRMetric,
    RMSEMetric,
    SSIMMetric,
)
from .kcross import KCrossMetric, KCrossScorer, kcross, load_kcross
from .no_reference import BRISQUEMetric, NIQEMetric, NoReferenceMetric
from .set_level import (
    DiversityMetric,
    FIDMetric,
    KIDMetric,
    MemorisationMetric,
    MMDMetric,
    PRDCMetric,
    SetLevelMetric,
    SetLevelResult,
)

__all__ = [
    "BRISQUEMetric",
    "DISTSMetric",
    "DeepIQAMetric",
    "DiversityMetric",
    "FIDMetric",
    "FeatureDistanceMetric",
    "FullReferenceMetric",
    "GMSDMetric",
    "HaarPSIMetric",
    "KCrossMetric",
    "KCrossScorer",
    "KIDMetric",
    "LPIPSMetric",
    "MAEMetric",
    "MMDMetric",
    "MSEMetric",
    "MemorisationMetric",
    "MultiScaleGMSDMetric",
    "MultiScaleSSIMMetric",
    "NIQEMetric",
    "NLPDMetric",
    "NoReferenceMetric",
    "PRDCMetric",
    "PSNRMetric",
    "RMSEMetric",
    "SSIMMetric",
    "SetLevelMetric",
    "SetLevelResult",
    "kcross",
    "load_kcross",
]
