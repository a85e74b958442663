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
from .perceptual import DISTSLoss, LPIPSLoss, PerceptualLoss

__all__ = [
    "DISTSLoss",
    "LPIPSLoss",
    "PerceptualLoss",
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
