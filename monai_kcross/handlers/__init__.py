"""ignite handlers (MONAI ``IgniteMetricHandler``) for every metric of the package."""

from .metric_handlers import (
    FullReferenceHandler,
    GMSDHandler,
    HaarPSIHandler,
    MAEHandler,
    MSEHandler,
    MultiScaleGMSDHandler,
    MultiScaleSSIMHandler,
    NLPDHandler,
    PSNRHandler,
    RMSEHandler,
    SSIMHandler,
)

__all__ = [
    "FullReferenceHandler",
    "GMSDHandler",
    "HaarPSIHandler",
    "MAEHandler",
    "MSEHandler",
    "MultiScaleGMSDHandler",
    "MultiScaleSSIMHandler",
    "NLPDHandler",
    "PSNRHandler",
    "RMSEHandler",
    "SSIMHandler",
]
