"""GMSD (Xue et al. 2014) and MS-GMSD (Zhang et al. 2017), 2-D by definition, slice-wise on volumes.

GMSD: both images are mapped to the unit range (``T = 170 / 255^2`` there, i.e. ``T = 170`` for 8-bit
intensities), 2x2-averaged and decimated (odd sizes zero-padded at the far end, as the authors' MATLAB
``conv2(..., 'same')`` does), their gradient magnitudes are taken with 3x3 Prewitt filters ``[1 0 -1] / 3``
(zero padding), the similarity map ``GMS = (2 m_x m_y + T) / (m_x^2 + m_y^2 + T)`` is formed and GMSD is its
population standard deviation (paper, eq. 8). The authors' MATLAB uses ``std2`` (``N - 1``); the two differ
by a factor ``sqrt(N / (N - 1))``, below 1e-4 relative for images over 64x64.

MS-GMSD: GMS with the masking term ``alpha = 0.5`` (``(2 m_x m_y - a m_x m_y + T) / (m_x^2 + m_y^2 - a m_x m_y
+ T)``) at 4 dyadic scales starting at full resolution, combined as ``sqrt(sum_j w_j GMSD_j^2)`` with
``w = (0.096, 0.596, 0.289, 0.019)``. The chromatic term of the paper is not used (medical images are
grey-scale; every channel is scored on its own).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .feature_maps import gradient_magnitude
from .filtering import halve2d
from .intensity import DataRange
from .masking import pool_weights, weighted_std
from .planar import planar_metric
from .safe_math import safe_sqrt

__all__ = ["MS_GMSD_WEIGHTS", "gmsd", "ms_gmsd"]

MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)
_T_UNIT = 170.0 / 255.0**2


def _deviation(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, t: float, alpha: float) -> torch.Tensor:
    """Weighted population std of the gradient-magnitude similarity map; ``(N, C)``, NaN for empty weights."""
    mx, my = gradient_magnitude(x, "prewitt"), gradient_magnitude(y, "prewitt")
    cross = mx * my
    gms = (2 * cross - alpha * cross + t) / (mx.square() + my.square() - alpha * cross + t)
    return weighted_std(gms, weights, empty_mask="nan")


def gmsd(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    t: float = _T_UNIT,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Gradient magnitude similarity deviation (lower is better, 0 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``. Volumes are scored slice-wise (see
            :mod:`monai_kcross.functional.planar`).
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`.
        mask: optional region; the deviation is the weighted standard deviation of the GMS map inside it
            (the mask is 2x2-averaged onto the decimated grid).
        t: stability constant in the unit range (the paper's ``T = 170`` on 0-255 images).
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, 1)`` (typically below 0.35).
    """

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return _deviation(halve2d(x), halve2d(y_), None if weights is None else pool_weights(weights), t, 0.0)

    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "gmsd", 5)


def ms_gmsd(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    scale_weights: Sequence[float] = MS_GMSD_WEIGHTS,
    alpha: float = 0.5,
    t: float = _T_UNIT,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Multi-scale GMSD (lower is better, 0 for identical images).

    Args:
        y_pred, y, spatial_dims, data_range, mask, t, slice_axis, empty_mask: as in :func:`gmsd`.
        scale_weights: one weight per scale (normalised to sum 1); images need at least
            ``2 ** len(scale_weights) + 1`` pixels per side.
        alpha: masking coefficient of the similarity map.

    Returns:
        ``(B, C)`` tensor, values in ``[0, 1)``.
    """
    weights_t = torch.tensor([float(w) for w in scale_weights], dtype=torch.float64)
    if weights_t.numel() < 1 or bool((weights_t < 0).any()) or not weights_t.sum() > 0:
        raise ValueError(f"ms_gmsd: scale_weights must be non-negative with a positive sum, got {scale_weights!r}.")
    weights_t = weights_t / weights_t.sum()

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        total = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        for scale, weight in enumerate(weights_t.tolist()):
            if scale > 0:
                x, y_ = halve2d(x), halve2d(y_)
                weights = None if weights is None else pool_weights(weights)
            total = total + weight * _deviation(x, y_, weights, t, alpha).square()
        return safe_sqrt(total)

    min_size = 2 ** weights_t.numel() + 1
    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "ms_gmsd", min_size)
