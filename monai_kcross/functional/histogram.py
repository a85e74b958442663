"""Rank-based intensity operations: quantile normalisation and exact histogram matching.

Both are computed per row of a batch (a slice or a volume) inside a mask, with a sort and two binary searches --
no Python loop over images, any device:

* :func:`rank_normalize` replaces every masked voxel by its intensity quantile in ``(0, 1]`` (ties share their
  mean rank). It is invariant to every strictly increasing intensity map.
* :func:`match_histogram` maps a ``source`` image onto the intensities of a ``reference`` at the same quantile.
  For ``source = g(reference)`` with ``g`` strictly increasing (scale, offset, gamma, a window without
  clipping) it returns the reference **exactly** (up to values that floating-point rounding of the map merges
  into ties); a voxel of a tied group takes the reference value at the group's middle rank. This is the monotone
  intensity harmonisation of K-CROSS's front end.
"""

from __future__ import annotations

import torch

__all__ = ["match_histogram", "rank_normalize"]


def _rows(image: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, L)`` float rows and bool masks of ``(N, ...)`` inputs."""
    rows = image.reshape(image.shape[0], -1)
    rows = rows if rows.is_floating_point() else rows.float()
    if mask is None:
        return rows, torch.ones_like(rows, dtype=torch.bool)
    mask = mask.reshape(mask.shape[0], -1).bool()
    if mask.shape[0] == 1 and rows.shape[0] > 1:
        mask = mask.expand_as(rows)
    if mask.shape != rows.shape:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit images of shape {tuple(image.shape)}.")
    return rows, mask


def _sorted_inside(rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row's masked values sorted ascending, padded with ``+inf`` after the masked count."""
    return torch.where(mask, rows, torch.full_like(rows, float("inf"))).sort(1).values


def _tie_bounds(sorted_rows: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index range ``[lower, upper)`` of each value's tie group in its sorted row."""
    sorted_rows, values = sorted_rows.contiguous(), values.contiguous()  # searchsorted copies (and warns) otherwise
    lower = torch.searchsorted(sorted_rows, values, right=False)
    upper = torch.searchsorted(sorted_rows, values, right=True)
    return lower, upper


def rank_normalize(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Replace masked voxels by their intensity quantile in ``(0, 1]`` (ties share the mean rank); 0 outside.

    Args:
        image: ``(B, ...)`` any intensity scale (each batch item ranked on its own).
        mask: ``(B, ...)`` or ``(1, ...)`` bool/0-1 of the same spatial size; ``None`` ranks every voxel.

    Returns:
        float tensor of ``image``'s shape (float32 for integer inputs); invariant to strictly increasing maps.
    """
    rows, inside = _rows(image, mask)
    sorted_rows = _sorted_inside(rows, inside)
    lower, upper = _tie_bounds(sorted_rows, rows)
    count = inside.sum(1, keepdim=True).clamp_min(1)
    quantile = (lower + upper + 1).to(rows.dtype) / (2 * count)
    return torch.where(inside, quantile, torch.zeros_like(quantile)).reshape(image.shape)


def match_histogram(source: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Map ``source`` onto ``reference``'s intensities at equal quantiles inside ``mask`` (exact rank matching).

    Every voxel of ``source`` -- inside or outside the mask -- is located among the sorted masked source values;
    a voxel that equals masked values takes the reference value at the middle rank of its tie group, any other
    value is interpolated linearly between the neighbouring matched values (beyond the extremes it is shifted
    with them). The map is monotone, so the result keeps ``source``'s ordering; it is the identity when
    ``source`` equals ``reference``, and returns ``reference`` exactly inside the mask when ``source`` is a
    strictly increasing function of it.

    Args:
        source: ``(B, ...)`` images to harmonise.
        reference: ``(B, ...)`` images of the same shape whose intensities are taken.
        mask: ``(B|1, ...)`` region whose histograms are matched; ``None`` uses every voxel.

    Returns:
        ``source`` mapped onto ``reference``'s intensity scale, ``reference``'s dtype.
    """
    if source.shape != reference.shape:
        raise ValueError(
            f"match_histogram: source {tuple(source.shape)} and reference {tuple(reference.shape)} differ in shape."
        )
    src_rows, inside = _rows(source, mask)
    ref_rows = reference.reshape(reference.shape[0], -1).to(src_rows.dtype)
    src_sorted, ref_sorted = _sorted_inside(src_rows, inside), _sorted_inside(ref_rows, inside)
    count = inside.sum(1, keepdim=True)
    last = (count - 1).clamp_min(0)
    lower, upper = _tie_bounds(src_sorted, src_rows)
    # voxels present among the masked values: the reference at the middle rank of the tie group
    middle = torch.minimum((lower + upper - 1).clamp_min(0) // 2, last)
    tied = ref_sorted.gather(1, middle)
    # other values (outside the mask): linear between the neighbouring quantiles, shifted beyond the ends
    last_f = last.to(src_rows.dtype)
    below, above = (lower - 1).clamp(min=0).minimum(last), lower.minimum(last)
    s_lo, s_hi = src_sorted.gather(1, below), src_sorted.gather(1, above)
    r_lo, r_hi = ref_sorted.gather(1, below), ref_sorted.gather(1, above)
    weight = ((src_rows - s_lo) / (s_hi - s_lo).clamp_min(torch.finfo(src_rows.dtype).tiny)).clamp(0, 1)
    between = torch.lerp(r_lo, r_hi, weight)
    between = torch.where(lower == 0, src_rows + (r_hi - s_hi), between)
    between = torch.where(lower.to(src_rows.dtype) > last_f, src_rows + (r_lo - s_lo), between)
    matched = torch.where(upper > lower, tied, between)
    # nothing to match against, or nothing to change (bit-identical rows): unchanged
    unchanged = (count == 0) | (src_rows == ref_rows).all(1, keepdim=True)
    matched = torch.where(unchanged, src_rows, matched)
    return matched.reshape(source.shape).to(reference.dtype)
