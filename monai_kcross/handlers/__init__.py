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
from .no_reference import BRISQUEHandler, NIQEHandler, NoReferenceHandler
from .set_level import SetLevelHandler

__all__ = [
    "BRISQUEHandler",
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
    "NIQEHandler",
    "NLPDHandler",
    "NoReferenceHandler",
    "PSNRHandler",
    "RMSEHandler",
    "SSIMHandler",
    "SetLevelHandler",
]
