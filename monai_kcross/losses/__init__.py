"""Losses built on the package's metrics (gradients flow through the functional metrics)."""

from .perceptual import DISTSLoss, LPIPSLoss, PerceptualLoss

__all__ = ["DISTSLoss", "LPIPSLoss", "PerceptualLoss"]
