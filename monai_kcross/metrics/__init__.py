"""MONAI ``CumulativeIterationMetric`` classes for every metric of the package."""

from .base import FullReferenceMetric
from .full_reference import (
    GMSDMetric,
    HaarPSIMetric,
    MAEMetric,
    MSEMetric,
    MultiScaleGMSDMetric,
    MultiScaleSSIMMetric,
    NLPDMetric,
    PSNRMetric,
    RMSEMetric,
    SSIMMetric,
)

__all__ = [
    "FullReferenceMetric",
    "GMSDMetric",
    "HaarPSIMetric",
    "MAEMetric",
    "MSEMetric",
    "MultiScaleGMSDMetric",
    "MultiScaleSSIMMetric",
    "NLPDMetric",
    "PSNRMetric",
    "RMSEMetric",
    "SSIMMetric",
]
