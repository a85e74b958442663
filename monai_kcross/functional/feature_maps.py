"""Building blocks of the feature-similarity metrics (FSIM, VSI, MDSI): the authors' MATLAB conventions.

* :func:`auto_downsample`: the viewing-distance preprocessing of FSIM, VSI and MDSI. With
  ``F = max(1, round(min(H, W) / 256))`` (MATLAB rounds halves away from zero), images are averaged with an
  ``F x F`` box (``conv2(..., 'same')``, zero padding) and every ``F``-th pixel is kept (``x(1:F:end, 1:F:end)``).
  For ``F = 2`` this is :func:`~monai_kcross.functional.filtering.halve2d`.
* :func:`gradient_magnitude`: ``sqrt(Gx^2 + Gy^2)`` with 3x3 Scharr (FSIM, VSI) or Prewitt (MDSI, GMSD)
  operators, MATLAB ``conv2(..., 'same')`` with zero padding.
* :func:`similarity_map`: the ratio ``(2 a b + c) / (a^2 + b^2 + c)`` every one of these metrics uses.
* :func:`frequency_grid`: radius and angle of the centred frequency grid that the MATLAB code builds with
  ``meshgrid`` and ``ifftshift`` for log-Gabor filtering, laid out in FFT order.
"""

from __future__ import annotations

import functools
import math

import torch

from .filtering import filter2d_same
from .safe_math import safe_sqrt

__all__ = ["auto_downsample", "downsample_factor", "frequency_grid", "gradient_magnitude", "similarity_map"]

_OPERATORS = {
    "scharr": ((3.0, 0.0, -3.0), (10.0, 0.0, -10.0), (3.0, 0.0, -3.0)),
    "prewitt": ((1.0, 0.0, -1.0), (1.0, 0.0, -1.0), (1.0, 0.0, -1.0)),
}
_NORMS = {"scharr": 16.0, "prewitt": 3.0}


def downsample_factor(height: int, width: int, target: int = 256) -> int:
    """``max(1, round(min(H, W) / target))`` with MATLAB's rounding (halves away from zero)."""
    return max(1, math.floor(min(height, width) / target + 0.5))


def auto_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Box-average ``(N, C, H, W)`` images with an ``F x F`` window ('same', zero padding) and keep every ``F``-th."""
    if factor == 1:
        return x
    box = torch.full((factor, factor), 1.0 / factor**2, dtype=torch.float64)
    return filter2d_same(x, box, convolve=True, stride=factor)  # only the kept outputs are computed


@functools.lru_cache(maxsize=len(_OPERATORS))
def _operator_bank(operator: str) -> torch.Tensor:
    """The horizontal and vertical kernels ``(2, 3, 3)`` of a normalised 3x3 gradient operator."""
    horizontal = torch.tensor(_OPERATORS[operator], dtype=torch.float64) / _NORMS[operator]
    return torch.stack([horizontal, horizontal.T])


def gradient_magnitude(x: torch.Tensor, operator: str = "scharr") -> torch.Tensor:
    """Gradient magnitude of ``(N, C, H, W)`` images with the normalised 3x3 ``"scharr"`` or ``"prewitt"`` operator.

    Flat regions (zero gradient, e.g. background) get a zero, not a NaN, derivative.
    """
    return safe_sqrt(filter2d_same(x, _operator_bank(operator), convolve=True).square().sum(dim=2))


def similarity_map(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """The similarity ``(2 a b + c) / (a^2 + b^2 + c)``: 1 where ``a == b``, in ``(0, 1]`` for non-negative maps."""
    return (2 * a * b + c) / (a.square() + b.square() + c)


def frequency_grid(
    height: int, width: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Radius and angle of the normalised frequency grid ``(H, W)`` in FFT order (DC at ``[0, 0]``).

    Follows the MATLAB code of FSIM/VSI: along an axis of ``n`` samples the frequencies are
    ``(-(n - 1) / 2 .. (n - 1) / 2) / (n - 1)`` for odd ``n`` and ``(-n / 2 .. n / 2 - 1) / n`` for even ``n``,
    ``ifftshift``-ed; the angle is ``atan2(-v, u)`` (rows ``v`` point down, as in image coordinates).
    """

    def axis(n: int) -> torch.Tensor:
        if n % 2:
            values = torch.arange(-(n - 1) / 2, n / 2, dtype=torch.float64) / max(n - 1, 1)
        else:
            values = torch.arange(-n / 2, n / 2, dtype=torch.float64) / n
        return torch.roll(values, -(n // 2))  # ifftshift

    v, u = torch.meshgrid(axis(height), axis(width), indexing="ij")
    radius = torch.sqrt(u.square() + v.square())
    theta = torch.atan2(-v, u)
    return radius.to(dtype=dtype, device=device), theta.to(dtype=dtype, device=device)
