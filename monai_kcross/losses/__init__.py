"""Losses: perceptual distances as losses and the K-CROSS training losses."""

from .kcross import (
    RatingLoss,
    frequency_loss,
    inconsistency_loss,
    laplacian_loss,
    mmd_loss,
    ranking_loss,
    rating_loss,
    severity_order_loss,
    stage1_losses,
    structure_loss,
    tumour_loss,
    within_group_loss,
)
from .perceptual import DISTSLoss, LPIPSLoss, MetricLoss

__all__ = [
    "DISTSLoss",
    "LPIPSLoss",
    "MetricLoss",
    "RatingLoss",
    "frequency_loss",
    "inconsistency_loss",
    "laplacian_loss",
    "mmd_loss",
    "ranking_loss",
    "rating_loss",
    "severity_order_loss",
    "stage1_losses",
    "structure_loss",
    "tumour_loss",
    "within_group_loss",
]


def __getattr__(name: str):
    if name == "PerceptualLoss":
        raise ImportError(
            "monai_kcross.losses.PerceptualLoss was renamed MetricLoss (any lower-is-better registered metric as a "
            "loss, e.g. MetricLoss('lpips')): MONAI's PerceptualLoss is a different class."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
