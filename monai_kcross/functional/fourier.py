"""Centred orthonormal Fourier transforms: image <-> k-space (as MONAI's ``fftn_centered``/``ifftn_centered``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["from_kspace", "to_kspace"]


def to_kspace(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """Centred orthonormal FFT of ``x`` over ``axes`` (complex output)."""
    axes = tuple(axes)
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x, dim=axes), dim=axes, norm="ortho"), dim=axes)


def from_kspace(k: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`to_kspace` (complex output)."""
    axes = tuple(axes)
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(k, dim=axes), dim=axes, norm="ortho"), dim=axes)
