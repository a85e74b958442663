"""Foreground of MR slices without a brain mask: what K-CROSS and its segmenter treat as the head or brain."""

from __future__ import annotations

import torch

__all__ = ["enclosed_foreground"]


def enclosed_foreground(image: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Foreground of unit-range slices ``(B, 1, H, W)``: voxels above ``threshold`` and every voxel enclosed
    by them along both its row and its column (fills ventricles and other dark regions inside the head).

    Vectorised with cumulative maxima, so it runs on any device without a round trip to the CPU.

    Returns:
        bool tensor of ``image``'s shape.
    """
    above = image > threshold

    def between(mask: torch.Tensor, dim: int) -> torch.Tensor:
        forward = mask.to(torch.uint8).cummax(dim).values.bool()
        backward = mask.flip(dim).to(torch.uint8).cummax(dim).values.bool().flip(dim)
        return forward & backward

    return above | (between(above, -1) & between(above, -2))
