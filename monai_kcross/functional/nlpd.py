"""NLPD, the normalised Laplacian pyramid distance (Laparra, Balle, Berardino & Simoncelli 2016).

Follows the authors' MATLAB reference (``NLP_dist.m``): a 6-level Laplacian pyramid with the 5x5 binomial
filter ``[.05 .25 .4 .25 .05]`` (symmetric padding when reducing; 1-voxel replicate padding, zero-insertion
with gain 4 and zero-padded filtering when expanding), divisive normalisation of every level by
``sigma_l + |L_l| * P_l`` (``conv2`` 'same' with the learned 5x5 filters ``P_l`` and constants ``sigma_l``,
fitted by the authors on grey images in ``[0, 1]``), and the score ``mean_l RMS(N_l(x) - N_l(y))``.
Images are mapped to the unit range by the intensity policy first; volumes are scored slice-wise.
"""

from __future__ import annotations

import functools

import torch

from .filtering import filter2d_same, pad2d, shift_filter_axis
from .intensity import DataRange
from .masking import pool_weights, weighted_mean
from .planar import planar_metric
from .safe_math import safe_sqrt

__all__ = ["NLPD_LEVELS", "nlpd"]

NLPD_LEVELS = 6
_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
# centre 3x3 of the authors' 5x5 divisive-normalisation filters (the outer ring is zero at every level)
_DN_CENTRES = (
    ((0.0, 0.1011, 0.0), (0.1493, 0.0, 0.1460), (0.0, 0.1015, 0.0)),
    ((0.0, 0.0757, 0.0), (0.1986, 0.0, 0.1846), (0.0, 0.0837, 0.0)),
    ((0.0, 0.0477, 0.0), (0.2138, 0.0, 0.2243), (0.0, 0.0467, 0.0)),
    ((0.0, 0.0, 0.0), (0.2503, 0.0, 0.2616), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.2598, 0.0, 0.2552), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.2215, 0.0, 0.0717), (0.0, 0.0, 0.0)),
)
# the level-1 filter has one extra tap outside the centre 3x3 (row 3, column 5 in MATLAB indexing)
_LEVEL1_EXTRA = 0.0072


_BINOMIAL_TAPS = (0.05, 0.25, 0.4, 0.25, 0.05)


@functools.lru_cache(maxsize=1)
def _binomial() -> torch.Tensor:
    taps = torch.tensor(_BINOMIAL_TAPS, dtype=torch.float64)
    return torch.outer(taps, taps)


@functools.lru_cache(maxsize=NLPD_LEVELS)
def _dn_filter(level: int) -> torch.Tensor:
    kernel = torch.zeros(5, 5, dtype=torch.float64)
    kernel[1:4, 1:4] = torch.tensor(_DN_CENTRES[level], dtype=torch.float64)
    if level == 0:
        kernel[2, 4] = _LEVEL1_EXTRA
    return kernel


def _reduce(image: torch.Tensor) -> torch.Tensor:
    """Low-pass with symmetric padding and keep every other row and column (MATLAB ``1:2:end``); only the
    kept outputs are computed."""
    return filter2d_same(image, _binomial(), padding="symmetric", stride=2)


def _upsample_axis(padded: torch.Tensor, axis: int, length: int) -> torch.Tensor:
    """One axis of the reference's ``upsample``: zero insertion (gain 2), the 5-tap binomial, 'same' crop.

    Computed polyphase: even outputs use the taps 0, 2, 4 and odd outputs the taps 1, 3 on the replicate-padded
    coarse samples, so no multiplication by an inserted zero is done.
    """
    w = _BINOMIAL_TAPS
    even = shift_filter_axis(padded, axis, (2 * w[0], 2 * w[2], 2 * w[4]))
    odd = shift_filter_axis(padded.narrow(axis, 1, padded.shape[axis] - 1), axis, (2 * w[1], 2 * w[3]))
    odd = odd.narrow(axis, 0, even.shape[axis])
    interleaved = torch.stack((even, odd), dim=axis + 1 if axis >= 0 else axis)
    shape = list(even.shape)
    shape[axis] *= 2
    return interleaved.reshape(shape).narrow(axis, 0, length)


def _expand(coarse: torch.Tensor, fine_shape: tuple[int, int]) -> torch.Tensor:
    """Upsample a coarse level to ``fine_shape`` as the reference's ``upsample`` does (1-voxel replicate
    padding, zero insertion with gain 4, zero-padded 5x5 binomial filtering, crop)."""
    padded = pad2d(coarse, (1, 1, 1, 1), "replicate")
    return _upsample_axis(_upsample_axis(padded, -1, fine_shape[1]), -2, fine_shape[0])


def _normalised_pyramid(image: torch.Tensor) -> list[torch.Tensor]:
    levels = []
    current = image
    for level in range(NLPD_LEVELS):
        if level < NLPD_LEVELS - 1:
            coarse = _reduce(current)
            band = current - _expand(coarse, tuple(current.shape[-2:]))
        else:
            coarse, band = current, current
        amplitude = filter2d_same(band.abs(), _dn_filter(level), convolve=True)
        levels.append(band / (_SIGMAS[level] + amplitude))
        current = coarse
    return levels


def nlpd(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Normalised Laplacian pyramid distance (lower is better, 0 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape; images (slices) need at least 32 pixels per side.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`. The divisive
            normalisation constants were fitted on ``[0, 1]`` images, so the unit mapping matters.
        mask: optional region; each level's RMS is taken inside the mask carried to that level by 2x
            average pooling.
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, inf)`` (typically below 1).
    """

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        total = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        both = _normalised_pyramid(torch.cat((x, y_)))  # one pass of every filter over both images
        for level, (a, b) in enumerate(pyramid.chunk(2) for pyramid in both):
            if level > 0 and weights is not None:
                weights = pool_weights(weights)
            total = total + safe_sqrt(weighted_mean((a - b).square(), weights, empty_mask="nan"))
        return total / NLPD_LEVELS

    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "nlpd", 32)
