"""Edge detection for the no-reference artefact scores: Sobel/Prewitt derivatives and the Canny detector.

Everything works on batches of 2-D images ``(..., H, W)`` (derivatives on any number of axes) and follows
``scipy.ndimage``/scikit-image conventions so that the scores built on it reproduce their reference code:

* :func:`derivative` is ``scipy.ndimage.sobel``/``prewitt``: the central difference ``x[i + 1] - x[i - 1]``
  along one axis, smoothed with ``[1, 2, 1]`` (Sobel) or ``[1, 1, 1]`` (Prewitt) along the others, with
  symmetric borders (``scipy.ndimage`` mode 'reflect');
* :func:`canny` is ``skimage.feature.canny`` (Canny 1986): Gaussian smoothing with zero padding, renormalised
  by the smoothed all-ones image, Sobel gradients, non-maximum suppression with bilinear interpolation of the
  magnitude along the gradient, and hysteresis (8-connected chains of pixels above ``low`` that reach
  ``high``). Hysteresis is computed by repeated 3x3 dilation, a loop over chain length, not over pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .filtering import correlate_axis, gaussian_kernel1d

__all__ = ["canny", "derivative"]

_SMOOTHING = {"sobel": (1.0, 2.0, 1.0), "prewitt": (1.0, 1.0, 1.0)}


def derivative(
    x: torch.Tensor, axis: int, axes: Sequence[int], kind: str = "sobel", padding: str = "symmetric"
) -> torch.Tensor:
    """Sobel or Prewitt derivative ``x[i + 1] - x[i - 1]`` along ``axis``, smoothed along the other ``axes``.

    Unnormalised, as ``scipy.ndimage.sobel``/``prewitt`` (multiply by 1/4 or 1/3 per smoothed axis to get
    scikit-image's normalised Sobel).
    """
    out = correlate_axis(x, axis, (-1.0, 0.0, 1.0), padding)
    for other in axes:
        if other % x.ndim != axis % x.ndim:
            out = correlate_axis(out, other, _SMOOTHING[kind], padding)
    return out


def _smooth_constant(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of ``(N, H, W)`` with zero padding, renormalised as scikit-image's ``canny`` does."""
    radius = int(4 * sigma + 0.5)  # scipy.ndimage truncation
    taps = gaussian_kernel1d(2 * radius + 1, sigma).tolist()
    ones = torch.ones_like(x[:1])
    smoothed, weight = x, ones
    for axis in (-2, -1):
        smoothed = correlate_axis(smoothed, axis, taps, "zeros")
        weight = correlate_axis(weight, axis, taps, "zeros")
    return smoothed / (weight + torch.finfo(x.dtype).eps)


def canny(x: torch.Tensor, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> torch.Tensor:
    """Canny edges of 2-D images ``(..., H, W)``, as ``skimage.feature.canny(x, sigma, low, high)``.

    Args:
        x: images in their intensity units (the thresholds are absolute gradient magnitudes of the unnormalised
            Sobel filter applied to the smoothed image, as in scikit-image).
        sigma: standard deviation of the Gaussian smoothing, pixels.
        low, high: hysteresis thresholds.

    Returns:
        Bool edge map of ``x``'s shape; the one-pixel border is never an edge.
    """
    if min(x.shape[-2:]) < 3:
        raise ValueError(f"canny needs images of at least 3x3 pixels, got {tuple(x.shape[-2:])}.")
    shape = x.shape
    image = x.reshape(-1, *shape[-2:])
    smoothed = _smooth_constant(image, sigma)
    gi = derivative(smoothed, -2, (-2, -1))  # along rows (axis 0 of each image)
    gj = derivative(smoothed, -1, (-2, -1))
    magnitude = torch.sqrt(gi * gi + gj * gj)
    # scikit-image passes the low threshold as a C float
    low = float(torch.tensor(low if low > 0 else 1e-14, dtype=torch.float32))
    keep = _nonmaximum(gi, gj, magnitude) & (magnitude >= low)
    keep[:, 0, :] = keep[:, -1, :] = False
    keep[:, :, 0] = keep[:, :, -1] = False
    edges = keep & (magnitude >= high)
    while True:  # hysteresis: grow the strong edges along 8-connected weak ones
        grown = edges
        for _ in range(8):
            grown = F.max_pool2d(grown[:, None].to(magnitude.dtype), 3, 1, 1)[:, 0].bool() & keep
        if torch.equal(grown, edges):
            break
        edges = grown
    return edges.reshape(shape)


def _nonmaximum(gi: torch.Tensor, gj: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Whether each pixel's magnitude is at least that interpolated at +-1 pixel along its gradient."""
    m = F.pad(magnitude, (1, 1, 1, 1))

    def at(di: int, dj: int) -> torch.Tensor:
        return m[:, 1 + di : m.shape[1] - 1 + di, 1 + dj : m.shape[2] - 1 + dj]

    ai, aj = gi.abs(), gj.abs()
    same_sign = (gi > 0) == (gj > 0)  # both positive, or both non-positive
    # the four sectors of the gradient direction: neighbours (n1_1, n1_2) ahead and (n2_1, n2_2) behind
    sectors = (
        (same_sign & (ai > aj), aj / ai, at(1, 0), at(1, 1), at(-1, 0), at(-1, -1)),
        (same_sign & (ai <= aj), ai / aj, at(0, 1), at(1, 1), at(0, -1), at(-1, -1)),
        (~same_sign & (ai < aj), ai / aj, at(0, 1), at(-1, 1), at(0, -1), at(1, -1)),
        (~same_sign & (ai >= aj), aj / ai, at(-1, 0), at(-1, 1), at(1, 0), at(1, -1)),
    )
    result = torch.zeros_like(magnitude, dtype=torch.bool)
    for where, w, n11, n12, n21, n22 in sectors:
        ahead = n12 * w + n11 * (1.0 - w) <= magnitude
        behind = n22 * w + n21 * (1.0 - w) <= magnitude
        result |= where & ahead & behind
    return result
