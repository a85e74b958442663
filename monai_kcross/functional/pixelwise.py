"""Point-wise error metrics: MAE, MSE, RMSE and PSNR, per image and channel, with masks."""

from __future__ import annotations

import torch

from .intensity import DataRange, harmonize, intensity_window
from .masking import prepare_mask, weighted_mean
from .validation import check_image_pair, compute_dtype

__all__ = ["mae", "mse", "psnr", "rmse"]


def _mean_error(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    power: int,
    spatial_dims: int | None,
    data_range: DataRange | None,
    mask: torch.Tensor | None,
    empty_mask: str,
    name: str,
) -> torch.Tensor:
    """Mean of ``|y_pred - y|**power`` over space (inside ``mask``), in raw or range-relative units."""
    y_pred, y, _ = check_image_pair(y_pred, y, spatial_dims, name)
    dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, name, empty_mask, dtype)
    span = None if data_range is None else intensity_window(y, data_range, name, dtype, mask=weights)[1]
    if data_range is not None:  # per-image statistics and clipping of a normalisation policy
        y_pred, y = harmonize(y_pred, y, data_range, name, dtype, mask=weights)
    difference = y_pred.to(dtype) - y.to(dtype)
    if weights is None:  # a norm reduces without materialising |d| or d^2
        flat = difference.reshape(*difference.shape[:2], -1)
        error = torch.linalg.vector_norm(flat, ord=power, dim=-1).pow(power) / flat.shape[-1]
    else:
        error = weighted_mean(
            difference.abs() if power == 1 else difference.square(), weights, name, "the mask", empty_mask
        )
    if span is not None:
        error = error / span.reshape(error.shape) ** power
    return error


def mae(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange | None = None,
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean absolute error (lower is better, 0 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: ``None`` reports the error in the images' own units; otherwise the error is divided by the
            window span of the intensity policy (``"reference"``, a number, or ``(low, high)``), giving a
            fraction of the dynamic range comparable across volumes.
        mask: optional region ``(B|1, C|1, *spatial)``; the error is averaged inside it.
        empty_mask: ``"raise"`` or ``"nan"`` for images whose region is empty.

    Returns:
        ``(B, C)`` tensor, values in ``[0, inf)``.
    """
    return _mean_error(y_pred, y, 1, spatial_dims, data_range, mask, empty_mask, "mae")


def mse(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange | None = None,
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean squared error (lower is better); arguments as in :func:`mae`. Returns ``(B, C)`` in ``[0, inf)``."""
    return _mean_error(y_pred, y, 2, spatial_dims, data_range, mask, empty_mask, "mse")


def rmse(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange | None = None,
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Root mean squared error (lower is better); arguments as in :func:`mae`. Returns ``(B, C)``."""
    return _mean_error(y_pred, y, 2, spatial_dims, data_range, mask, empty_mask, "rmse").sqrt()


def psnr(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` in dB (higher is better, ``inf`` if identical).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy giving ``L`` (``"reference"``: ``max(y) - min(y)`` per image and channel;
            a number; or ``(low, high)``), see :mod:`monai_kcross.functional.intensity`.
        mask: optional region; the MSE is averaged inside it.
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor in dB.
    """
    relative_mse = _mean_error(y_pred, y, 2, spatial_dims, data_range, mask, empty_mask, "psnr")
    return -10.0 * torch.log10(relative_mse)
