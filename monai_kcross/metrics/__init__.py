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
from .kcross import KCrossMetric, kcross, load_kcross

__all__ = [
    "DISTSMetric",
    "DeepIQAMetric",
    "FeatureDistanceMetric",
    "FullReferenceMetric",
    "GMSDMetric",
    "HaarPSIMetric",
    "KCrossMetric",
    "LPIPSMetric",
    "MAEMetric",
    "MSEMetric",
    "MultiScaleGMSDMetric",
    "MultiScaleSSIMMetric",
    "NLPDMetric",
    "PSNRMetric",
    "RMSEMetric",
    "SSIMMetric",
    "kcross",
    "load_kcross",
]
