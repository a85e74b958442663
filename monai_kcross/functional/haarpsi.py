"""HaarPSI, the Haar wavelet-based perceptual similarity index (Reisenhofer et al. 2018).

Follows the authors' reference implementation for grey-scale images: intensities on the 0-255 scale
(``C = 30``, ``alpha = 4.2``), optional 2x2-mean subsampling, Haar filters of sizes 2, 4 and 8 in the
horizontal and vertical direction (MATLAB ``conv2`` 'same' alignment, zero padding), local similarities
``(2 |a| |b| + C) / (a^2 + b^2 + C)`` averaged over the two finest scales, weights
``max(|a_3|, |b_3|)`` from the coarsest scale, and the score
``(logit(sum sigmoid(S) W / sum W) / alpha)^2``. Every channel is scored as a grey image (the YIQ colour
term of the paper applies to RGB photographs only). Volumes are scored slice-wise.
"""

from __future__ import annotations

import functools

import torch

from .filtering import filter2d_same, halve2d
from .intensity import DataRange
from .masking import nan_where_empty, pool_weights
from .planar import planar_metric

__all__ = ["haarpsi"]

_SCALES = 3


@functools.lru_cache(maxsize=1)
def _haar_filters() -> torch.Tensor:
    """Vertical and horizontal Haar filters per scale: ``(2 * scales, 8, 8)``, zero-embedded top-left."""
    bank = torch.zeros(2 * _SCALES, 2**_SCALES, 2**_SCALES, dtype=torch.float64)
    for scale in range(1, _SCALES + 1):
        size = 2**scale
        block = torch.full((size, size), 2.0**-scale, dtype=torch.float64)
        block[: size // 2] *= -1
        bank[scale - 1, :size, :size] = block
        bank[_SCALES + scale - 1, :size, :size] = block.T
    return bank


def _haar_coefficients(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, 2 * scales, H, W)`` Haar responses with each filter at its own MATLAB 'same' offset."""
    bank = _haar_filters()
    responses = []
    for index in range(2 * _SCALES):
        size = 2 ** (index % _SCALES + 1)
        responses.append(filter2d_same(x, bank[index, :size, :size], convolve=True))
    return torch.stack(responses, dim=2)


def _haarpsi_core(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, subsample: bool, c: float, alpha: float
) -> torch.Tensor:
    x, y = 255.0 * x, 255.0 * y
    if subsample:
        x, y = halve2d(x), halve2d(y)
        weights = None if weights is None else pool_weights(weights)
    coeff_x, coeff_y = _haar_coefficients(torch.cat((x, y))).abs().chunk(2)  # both images in one pass
    orientation_weights = []
    similarities = []
    for orientation in range(2):
        coarse = orientation * _SCALES + _SCALES - 1
        orientation_weights.append(torch.maximum(coeff_x[:, :, coarse], coeff_y[:, :, coarse]))
        fine = slice(orientation * _SCALES, orientation * _SCALES + 2)
        a, b = coeff_x[:, :, fine], coeff_y[:, :, fine]
        similarities.append(((2 * a * b + c) / (a.square() + b.square() + c)).mean(dim=2))
    w = torch.stack(orientation_weights, dim=2)  # (N, C, 2, H, W)
    s = torch.stack(similarities, dim=2)
    if weights is not None:
        w = w * weights.unsqueeze(2)
    total = w.sum(dim=(2, 3, 4))
    # no Haar structure in either image (e.g. two all-zero background slices): nothing differs, the score is
    # 1; the division is kept away from 0 / 0 there so that no NaN enters the gradient
    structured = total > 0
    pooled = (torch.sigmoid(alpha * s) * w).sum(dim=(2, 3, 4)) / torch.where(structured, total, torch.ones_like(total))
    pooled = torch.where(structured, pooled, torch.full_like(pooled, 0.5))
    score = torch.where(structured, (torch.logit(pooled) / alpha).square(), torch.ones_like(pooled))
    return nan_where_empty(score, weights)


def haarpsi(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    subsample: bool = True,
    c: float = 30.0,
    alpha: float = 4.2,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Haar wavelet-based perceptual similarity index (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; the unit range is
            scaled to 0-255, the scale of the constants ``c`` and ``alpha``.
        mask: optional region; the HaarPSI weight maps are multiplied by the mask (carried to the subsampled
            grid by 2x2 averaging).
        subsample: apply the authors' 2x2-mean subsampling (viewing-distance preprocessing).
        c: similarity constant (0-255 scale).
        alpha: steepness of the logistic pooling.
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, 1]``.
    """

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return _haarpsi_core(x, y_, weights, subsample, c, alpha)

    return planar_metric(
        core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "haarpsi", 16 if subsample else 8
    )
