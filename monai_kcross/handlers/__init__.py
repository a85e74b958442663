"""ignite handlers (MONAI ``IgniteMetricHandler``) for every metric of the package."""

from .metric_handlers import (
    DeepIQAHandler,
    DISTSHandler,
    FeatureDistanceHandler,
    FullReferenceHandler,
    GMSDHandler,
    HaarPSIHandler,
    KCrossHandler,
    LPIPSHandler,
    MAEHandler,
    MSEHandler,
    MultiScaleGMSDHandler,
    MultiScaleSSIMHandler,
    NLPDHandler,
    PSNRHandler,
    RMSEHandler,
    SSIMHandler,
)
from .set_level import SetLevelHandler

__all__ = [
    "DISTSHandler",
    "DeepIQAHandler",
    "FeatureDistanceHandler",
    "FullReferenceHandler",
    "GMSDHandler",
    "HaarPSIHandler",
    "KCrossHandler",
    "LPIPSHandler",
    "MAEHandler",
    "MSEHandler",
    "MultiScaleGMSDHandler",
    "MultiScaleSSIMHandler",
    "NLPDHandler",
    "PSNRHandler",
    "RMSEHandler",
    "SSIMHandler",
    "SetLevelHandler",
]
