"""Pearson correlation coefficient (PCC), also called zero-normalised cross-correlation (NCC), with masks.

``PCC = cov(x, y) / (std(x) std(y))`` over all voxels of an image (natively 2-D or 3-D), weighted by the mask
inside a region. It is invariant to affine intensity maps, so the intensity policy only matters through its
clipping (e.g. a clipped percentile window); ``data_range`` is validated like for every metric. By
convention an image without variance inside the region (a constant prediction, say) scores 0: no linear
relation can be detected. This is what Bayer's ``medimetrics`` (``numpy.corrcoef``) and ``scipy.stats.pearsonr``
compute, except that they return NaN for constant input.
"""

from __future__ import annotations

import torch

from .intensity import DataRange, to_unit_range
from .masking import centred, prepare_mask, weighted_mean
from .safe_math import safe_sqrt
from .validation import check_image_pair, compute_dtype

__all__ = ["pcc"]


def pcc(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Pearson correlation coefficient of the voxel intensities (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``; volumes are scored natively (all voxels at once).
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity` (only clipping policies
            change the value).
        mask: optional region ``(B|1, C|1, *spatial)``; voxels are weighted by it.
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[-1, 1]``.
    """
    y_pred, y, _ = check_image_pair(y_pred, y, spatial_dims, "pcc")
    dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, "pcc", empty_mask, dtype)
    x_u, y_u = to_unit_range(y_pred, y, data_range, "pcc", dtype, mask=weights)

    def mean(values: torch.Tensor) -> torch.Tensor:
        return weighted_mean(values, weights, "pcc", "the mask", empty_mask)

    dx = centred(x_u, weights, "pcc", "the mask", empty_mask)
    dy = centred(y_u, weights, "pcc", "the mask", empty_mask)
    covariance = mean(dx * dy)
    var_x, var_y = mean(dx.square()), mean(dy.square())
    # a constant image leaves only rounding noise (relative 1e-16) after removing its mean
    resolution = (16 * torch.finfo(dtype).eps) ** 2
    flat = (var_x <= resolution * mean(x_u.square())) | (var_y <= resolution * mean(y_u.square()))
    scale = safe_sqrt(var_x * var_y)  # no NaN in the gradient where an image is flat
    return torch.where(flat, torch.zeros_like(scale), covariance / scale.clamp_min(torch.finfo(dtype).tiny))
