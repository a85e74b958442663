"""Perceptual distances as training losses (for example in synthesis models or K-CROSS's tumour branch)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..registry import get_metric_info

__all__ = ["DISTSLoss", "LPIPSLoss", "MetricLoss"]


class MetricLoss(nn.Module):
    """A lower-is-better metric of the registry as a differentiable loss.

    (Called ``PerceptualLoss`` before: renamed because MONAI's ``PerceptualLoss`` is another class, a network
    loss built from ``spatial_dims`` and ``network_type``.)

    Args:
        metric: registry name of a distance (``"lpips"``, ``"dists"``, ``"feature_distance"``, ``"mse"``, ...).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the ``(B, C)`` values.
        options: keyword arguments of the metric's function (``data_range``, ``net``, weights, ``slice_axis``...).

    Inputs ``y_pred`` and ``y`` are ``(B, C, H, W[, D])``; ``mask`` restricts the distance to a region. Gradients
    are finite everywhere, also where ``y_pred == y`` and on slices of a volume where the mask is empty (these
    add nothing); a metric that cannot give a gradient with the chosen options raises a ``ValueError``.
    """

    def __init__(self, metric: str = "lpips", reduction: str = "mean", **options: Any) -> None:
        super().__init__()
        info = get_metric_info(metric)
        if info.higher_is_better:
            raise ValueError(f"{metric} is higher-is-better; a loss needs a distance (lower is better).")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        self.function, self.reduction, self.options = info.function, reduction, options
        self.metric = info.name

    def forward(self, y_pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        values = self.function(y_pred, y, mask=mask, **self.options)
        if torch.is_grad_enabled() and y_pred.requires_grad and not values.requires_grad:
            hint = (
                " (its default input is rank-normalised, which has no gradient; pass a `distance` built with "
                "preprocess=None)"
                if self.metric == "feature_distance"
                else ""
            )
            raise ValueError(f"MetricLoss: {self.metric} is not differentiable with these options{hint}.")
        if self.reduction == "mean":
            return values.mean()
        return values.sum() if self.reduction == "sum" else values


class LPIPSLoss(MetricLoss):
    """LPIPS as a loss; options as in :func:`monai_kcross.perceptual.lpips`."""

    def __init__(self, reduction: str = "mean", **options: Any) -> None:
        super().__init__("lpips", reduction, **options)


class DISTSLoss(MetricLoss):
    """DISTS as a loss; options as in :func:`monai_kcross.perceptual.dists`."""

    def __init__(self, reduction: str = "mean", **options: Any) -> None:
        super().__init__("dists", reduction, **options)
