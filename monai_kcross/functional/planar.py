"""Running metrics that their papers define on 2-D images (GMSD, MS-GMSD, NLPD, HaarPSI) on volumes.

A volume ``(B, C, H, W, D)`` is cut into 2-D slices along one spatial axis (``slice_axis``, default the last),
all slices are scored in one batched call, and the per-slice scores are averaged. Without a mask every
slice counts equally; with a mask each slice is weighted by its number of in-mask voxels and slices without
any are skipped. The intensity window is resolved on the whole volume *before* slicing, so all slices of a
volume share one ``data_range``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .intensity import DataRange, to_unit_range
from .masking import finalize_weighted, prepare_mask
from .validation import check_image_pair, compute_dtype

__all__ = ["PlanarScore", "planar_metric", "to_slices"]

# core(x, y, weights) -> (score (N, C), weight total (N, C)); inputs (N, C, H, W) in the unit range
PlanarScore = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def to_slices(volume: torch.Tensor, slice_axis: int) -> torch.Tensor:
    """Reshape ``(B, C, *3 spatial)`` into a batch of 2-D slices ``(B * S, C, P, Q)`` along ``slice_axis``."""
    axis = 2 + slice_axis % 3
    moved = volume.movedim(axis, 2)  # (B, C, S, P, Q)
    b, c, s, p, q = moved.shape
    return moved.transpose(1, 2).reshape(b * s, c, p, q)


def planar_metric(
    core: PlanarScore,
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None,
    data_range: DataRange,
    mask: torch.Tensor | None,
    slice_axis: int | Sequence[int],
    empty_mask: str,
    name: str,
    min_size: int,
) -> torch.Tensor:
    """Validate, normalise and score a pair with a 2-D ``core``, slice-wise for volumes.

    Args:
        core: maps unit-range images ``(N, C, H, W)`` and optional weights ``(N, 1|C, H, W)`` to per-image
            scores ``(N, C)``; images whose weights are all zero must score NaN.
        y_pred, y: images ``(B, C, H, W[, D])``.
        spatial_dims, data_range, mask, empty_mask: as for every metric of the package.
        slice_axis: spatial axis (0, 1, 2 or negative) cut into slices for 3-D input, or several axes whose
            results are averaged (e.g. ``(0, 1, 2)`` for all three orientations, "2.5-D").
        name: metric name for messages.
        min_size: smallest allowed side of the 2-D images (slices).

    Returns:
        ``(B, C)`` scores.
    """
    y_pred, y, spatial_dims = check_image_pair(y_pred, y, spatial_dims, name)
    axes = tuple(slice_axis) if isinstance(slice_axis, Sequence) else (slice_axis,)
    if spatial_dims == 3 and (not axes or any(not isinstance(a, int) or not -3 <= a <= 2 for a in axes)):
        raise ValueError(f"{name}: slice_axis must index spatial axes (0, 1, 2 or -1, -2, -3), got {slice_axis}.")
    dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, name, empty_mask, dtype)
    for axis in axes if spatial_dims == 3 else (None,):
        planes = tuple(y.shape[2:]) if axis is None else tuple(s for i, s in enumerate(y.shape[2:]) if i != axis % 3)
        if min(planes) < min_size:
            raise ValueError(
                f"{name}: {'slices' if spatial_dims == 3 else 'images'} of size {planes} are too small; "
                f"each side needs at least {min_size} pixels."
            )

    def score(work: torch.dtype) -> torch.Tensor:
        w = None if weights is None else weights.to(work)
        x_u, y_u = to_unit_range(y_pred, y, data_range, name, work, mask=w)
        if spatial_dims == 2:
            # empty masks were rejected by prepare_mask, or score NaN under empty_mask="nan"; a core scores NaN
            # also when the mask has no weight where its (valid-window) map is defined
            return core(x_u, y_u, w)
        return torch.stack([_slice_average(core, x_u, y_u, w, axis, name, empty_mask) for axis in axes]).mean(0)

    result = score(dtype)
    if dtype != torch.float64:
        # float32 overflowed (a prediction ~1e19 times outside the reference range): score again in float64
        bad = ~torch.isfinite(result)
        if weights is not None:
            bad &= (weights.reshape(*weights.shape[:2], -1).sum(-1) > 0).expand_as(bad)
        if bool(bad.any()):
            result = score(torch.float64).to(dtype)
    if spatial_dims == 2 and weights is not None and empty_mask == "raise" and bool(torch.isnan(result).any()):
        where = torch.isnan(result).nonzero().tolist()
        raise ValueError(
            f"{name}: the mask has no voxel in the region the metric can score (away from the image border) "
            f"for (batch, channel) {where}; use a larger region or empty_mask='nan'."
        )
    return result


def _slice_average(
    core: PlanarScore,
    x_u: torch.Tensor,
    y_u: torch.Tensor,
    weights: torch.Tensor | None,
    slice_axis: int,
    name: str,
    empty_mask: str,
) -> torch.Tensor:
    """Score the slices along one axis and average them (mask-weighted)."""
    batch, channels = y_u.shape[:2]
    x_s, y_s = to_slices(x_u, slice_axis), to_slices(y_u, slice_axis)
    w_s = None
    if weights is not None:
        w_s = to_slices(weights.expand(batch, weights.shape[1], *weights.shape[2:]), slice_axis)
    scores = core(x_s, y_s, w_s).view(batch, -1, channels)  # (B, S, C)
    if w_s is None:
        return scores.mean(dim=1)
    slice_weight = w_s.sum(dim=(-2, -1)).view(batch, -1, w_s.shape[1]).expand_as(scores)
    # slices without mask voxels, or whose mask voxels all lie where the metric's map is undefined (NaN), are skipped
    used = (slice_weight > 0) & ~torch.isnan(scores)
    numerator = torch.where(used, scores * slice_weight, torch.zeros_like(scores)).sum(dim=1)
    denominator = torch.where(used, slice_weight, torch.zeros_like(slice_weight)).sum(dim=1)
    return finalize_weighted(numerator, denominator, name, "the mask", empty_mask)
