"""Normalised mutual information (NMI, Studholme et al. 1999) of the intensity histograms, with masks.

``NMI = (H(X) + H(Y)) / H(X, Y)`` from the joint histogram of the two images with ``bins`` bins per image,
each image's bins spanning its own ``[min, max]`` (inside the region), natural-log entropies -- exactly
scikit-image's ``normalized_mutual_information`` (and Bayer's ``medimetrics``, which calls the same
computation). NMI lies in ``[1, 2]``: 2 for images related by any one-to-one intensity map (e.g. identical),
1 for independent ones. Volumes are scored natively (one 3-D histogram). Because each image is binned over
its own range, NMI is invariant to affine intensity maps; the intensity policy only matters through its
clipping. With a mask, voxels contribute their weight to the histogram.
"""

from __future__ import annotations

import torch

from .intensity import DataRange, to_unit_range
from .masking import finalize_weighted, prepare_mask
from .validation import check_image_pair, compute_dtype

__all__ = ["nmi"]


def _bin_index(values: torch.Tensor, inside: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin of every value of ``(N, V)`` with ``bins`` equal bins over each row's ``[min, max]`` inside the region.

    Edges are ``min + k * (max - min) / bins`` with the last edge exactly ``max`` (NumPy's ``histogramdd``);
    a value on an edge goes to the bin above it, ``max`` to the last bin. Rows with ``max == min`` use the
    NumPy convention ``[min - 0.5, min + 0.5]``.
    """
    big = torch.finfo(values.dtype).max
    low = torch.where(inside, values, torch.full_like(values, big)).amin(dim=-1, keepdim=True)
    high = torch.where(inside, values, torch.full_like(values, -big)).amax(dim=-1, keepdim=True)
    flat = high <= low
    low, high = torch.where(flat, low - 0.5, low), torch.where(flat, high + 0.5, high)
    steps = torch.arange(bins + 1, dtype=values.dtype, device=values.device)
    edges = low + steps * ((high - low) / bins)
    edges[:, -1:] = high
    index = torch.searchsorted(edges.contiguous(), values.contiguous(), right=True) - 1
    return index.clamp(0, bins - 1)


def _entropy(counts: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    p = counts / total.unsqueeze(-1)
    return -torch.where(p > 0, p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny)), torch.zeros_like(p)).sum(-1)


def nmi(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    bins: int = 100,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Normalised mutual information of the intensities (higher is better, 2 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity` (only clipping policies
            change the value).
        mask: optional region; voxels contribute their weight to the joint histogram.
        bins: bins per image (scikit-image's default 100).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[1, 2]``. Histogram counts have no gradient: the result is not part of
        the autograd graph (it cannot serve as a loss).
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise ValueError(f"nmi: bins must be an integer >= 2, got {bins!r}.")
    y_pred, y, _ = check_image_pair(y_pred, y, spatial_dims, "nmi")
    dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, "nmi", empty_mask, dtype)
    x_u, y_u = to_unit_range(y_pred, y, data_range, "nmi", dtype, mask=weights)
    batch, channels = y.shape[:2]
    x_flat, y_flat = x_u.reshape(batch * channels, -1), y_u.reshape(batch * channels, -1)
    if weights is None:
        w = torch.ones_like(x_flat)
    else:
        w = weights.expand(batch, channels, *weights.shape[2:]).reshape(batch * channels, -1).to(x_flat.dtype)
    inside = w > 0
    joint_index = _bin_index(y_flat, inside, bins) * bins + _bin_index(x_flat, inside, bins)
    joint = torch.zeros(batch * channels, bins * bins, dtype=torch.float64, device=y.device)
    joint.scatter_add_(1, joint_index, w.to(torch.float64))
    total = joint.sum(-1)
    joint_2d = joint.view(-1, bins, bins)
    h_y = _entropy(joint_2d.sum(-1), total)
    h_x = _entropy(joint_2d.sum(-2), total)
    h_xy = _entropy(joint, total)
    # both images constant inside the region: a deterministic relation, scored as for identical images
    result = torch.where(h_xy > 0, (h_x + h_y) / h_xy.clamp_min(1e-300), torch.full_like(h_xy, 2.0))
    present = (total > 0).to(result.dtype).view(batch, channels)
    return finalize_weighted(result.view(batch, channels) * present, present, "nmi", "the mask", empty_mask).to(dtype)
