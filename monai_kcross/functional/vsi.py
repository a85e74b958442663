"""VSI, the visual saliency-induced index (Zhang, Shen & Li 2014), grey-scale form, slice-wise on volumes.

Follows the authors' MATLAB code (``VSI.m`` with its SDSP saliency) and piq 0.8.0, which reproduces it:

* intensities on the 0-255 scale; the image (RGB) is mapped to the opponent space ``L = .06R + .63G + .27B``,
  ``M = .30R + .04G - .35B``, ``N = .34R - .60G + .17B``;
* saliency (SDSP): the image is resized to 256x256 (bilinear, no antialiasing, as piq) and converted to CIE
  L*a*b* (sRGB primaries, the D50 reference white of the authors' ``RGB2Lab``); the saliency is the product
  of a frequency prior (magnitude of the log-Gabor filtered L*a*b* channels, ``omega_0 = 0.021``,
  ``sigma_f = 1.34``), a location prior (``exp(-d^2 / 145^2)`` around the centre) and a colour prior
  (``1 - exp(-(a'^2 + b'^2) / 0.001^2)`` of the min-max normalised a*, b*); it is resized back (bilinear) and
  min-max normalised;
* automatic downsampling by ``F = max(1, round(min(H, W) / 256))`` (``F x F`` averages on piq's grid, see
  ``_downsample``; ``F = 1`` for images up to 383 pixels), Scharr gradient magnitude of ``L``;
* ``S = S_VS * S_G^0.4 * Re((S_M S_N)^0.02)`` with ``C_VS = 1.27``, ``C_G = 386``, ``C_MN = 130``, pooled with
  weights ``max(VS_x, VS_y)``.

**Grey images** (how this package scores every channel): the original code accepts RGB only; piq copies the
grey channel into R, G and B. For such an image a* and b* are not 0 but fixed functions of the grey level
(the sRGB matrix is not neutral under the D50 white), so the "warm colour" prior becomes an intensity prior
that is an artefact of the colour conversion. The grey form used here is VSI of the replicated RGB image
with the colour prior set to 1 (no colour preference): saliency = frequency prior on L*a*b* times location
prior; the opponent channels of a grey image are ``L = 0.96 g``, ``M = -0.01 g``, ``N = -0.09 g``.
``color=True`` scores 3-channel input as one RGB image with the full colour pipeline (the authors' VSI);
it then returns one value per image, repeated over the three channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .feature_maps import downsample_factor, frequency_grid, gradient_magnitude, similarity_map
from .intensity import DataRange
from .masking import nan_where_empty
from .planar import planar_metric
from .safe_math import positive_power, safe_sqrt

__all__ = ["sdsp", "vsi"]

_C_VS, _C_G, _C_MN, _ALPHA, _BETA = 1.27, 386.0, 130.0, 0.40, 0.02
_RGB_TO_LMN = ((0.06, 0.63, 0.27), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_WHITE_D50 = (0.9642119944211994, 1.0, 0.8251882845188288)


def _mix(rgb: torch.Tensor, matrix: tuple) -> torch.Tensor:
    """Apply a 3x3 colour matrix to ``(N, 3, H, W)``, or to grey ``(N, 1, H, W)`` read as R = G = B."""
    weights = torch.tensor(matrix, dtype=rgb.dtype, device=rgb.device)
    if rgb.shape[1] == 1:  # R = G = B: each output is the grey value times its row sum
        return rgb * weights.sum(dim=1).view(1, 3, 1, 1)
    return torch.einsum("ij,njhw->nihw", weights, rgb)


def _rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB on 0-255 (``(N, 3, H, W)``, or grey ``(N, 1, H, W)`` as R = G = B) to CIE L*a*b* with the D50
    reference white of the authors' SDSP code."""
    unit = rgb / 255.0
    # powers of the clamped bases: the branch torch.where discards must not put NaN into the gradient
    linear = torch.where(unit <= 0.04045, unit / 12.92, positive_power((unit + 0.055) / 1.055, 2.4))
    xyz = _mix(linear, _RGB_TO_XYZ) / torch.tensor(_WHITE_D50, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, positive_power(xyz, 1 / 3), (903.3 * xyz + 16) / 116)
    return torch.stack((116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])), dim=1)


def _downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``F x F`` averages on the grid that piq uses for VSI (one replicated row/column before the first block).

    This differs from ``conv2(..., 'same')`` followed by ``x(1:F:end, 1:F:end)`` (FSIM, MDSI) by one pixel, and
    is the convention that reproduces the authors' published value on TID2013 (0.96405).
    """
    if factor == 1:
        return x
    pads = (factor // 2, (factor - 1) // 2) * 2
    return F.avg_pool2d(F.pad(x, pads, mode="replicate"), factor)


def _minmax(x: torch.Tensor) -> torch.Tensor:
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    return (x - low) / (high - low + torch.finfo(x.dtype).eps)


def sdsp(rgb: torch.Tensor, color_prior: bool = True) -> torch.Tensor:
    """SDSP saliency of RGB images ``(N, 3, H, W)`` (or grey ``(N, 1, H, W)`` as R = G = B) on 0-255.

    Returns ``(N, 1, H, W)`` maps in ``[0, 1]``.

    ``color_prior=False`` drops the warm-colour prior (the grey form, see the module docstring).
    """
    size = 256
    small = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False)
    lab = _rgb_to_lab(small)
    radius, _ = frequency_grid(size, size, torch.float64, torch.device("cpu"))
    radius = torch.where(radius <= 0.5, radius, torch.zeros_like(radius))
    radius[0, 0] = 1.0
    log_gabor = torch.exp(-(torch.log(radius / 0.021) ** 2) / (2 * 1.34**2))
    log_gabor[0, 0] = 0.0
    log_gabor = log_gabor.to(dtype=rgb.dtype, device=rgb.device)
    filtered = torch.fft.ifft2(torch.fft.fft2(lab) * log_gabor).real
    saliency = safe_sqrt(filtered.square().sum(dim=1, keepdim=True))
    centred = torch.arange(1, size + 1, dtype=rgb.dtype, device=rgb.device) - size / 2
    location = torch.exp(-(centred[:, None].square() + centred[None, :].square()) / 145.0**2)
    saliency = saliency * location
    if color_prior:
        chroma = _minmax(lab[:, 1:]).square().sum(dim=1, keepdim=True)
        saliency = saliency * (1 - torch.exp(-chroma / 0.001**2))
    saliency = F.interpolate(saliency, size=rgb.shape[-2:], mode="bilinear", align_corners=True)
    return _minmax(saliency)


def _vsi_rgb(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, color_prior: bool) -> torch.Tensor:
    """VSI of RGB images ``(N, 3, H, W)`` (or grey ``(N, 1, H, W)`` as R = G = B) on 0-255 with optional weights
    ``(N, 1, H, W)``; returns ``(N,)``."""
    factor = downsample_factor(*x.shape[-2:])
    vs_x = _downsample(sdsp(x, color_prior), factor)
    vs_y = _downsample(sdsp(y, color_prior), factor)
    lmn_x = _downsample(_mix(x, _RGB_TO_LMN), factor)
    lmn_y = _downsample(_mix(y, _RGB_TO_LMN), factor)
    s_g = similarity_map(gradient_magnitude(lmn_x[:, :1], "scharr"), gradient_magnitude(lmn_y[:, :1], "scharr"), _C_G)
    s_c = similarity_map(lmn_x[:, 1:2], lmn_y[:, 1:2], _C_MN) * similarity_map(lmn_x[:, 2:], lmn_y[:, 2:], _C_MN)
    # real part of a possibly negative base to the power beta (principal branch, as MATLAB's real(.^))
    s_c = s_c.abs() ** _BETA * torch.cos(_BETA * torch.atan2(torch.zeros_like(s_c), s_c))
    similarity = similarity_map(vs_x, vs_y, _C_VS) * s_g**_ALPHA * s_c
    vs_max = torch.maximum(vs_x, vs_y)
    if weights is not None:
        vs_max = vs_max * _downsample(weights, factor)
    eps = torch.finfo(x.dtype).eps
    return (((similarity * vs_max).sum(dim=(-3, -2, -1)) + eps) / (vs_max.sum(dim=(-3, -2, -1)) + eps)).to(x.dtype)


def vsi(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    color: bool = False,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Visual saliency-induced index (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; the unit range is scaled to
            0-255, the scale of the constants.
        mask: optional region; multiplies the pooling weights ``max(VS_x, VS_y)``.
        color: score ``C = 3`` input as RGB images (the authors' colour VSI) instead of each channel as grey.
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``(0, 1]`` (with ``color=True`` the RGB score repeated over the channels).
    """
    if color and y.shape[1] != 3:
        raise ValueError(f"vsi: color=True needs RGB input with 3 channels, got {y.shape[1]}.")

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = x.shape
        if weights is not None:
            weights = weights.expand(n, weights.shape[1], h, w)
        if color:
            if weights is not None and weights.shape[1] != 1:
                raise ValueError("vsi: with color=True the mask must have one channel (it applies to all three).")
            score = _vsi_rgb(255.0 * x, 255.0 * y_, weights, True)[:, None].expand(n, c)
            return nan_where_empty(score, weights)
        grey_x = (255.0 * x).reshape(n * c, 1, h, w)
        grey_y = (255.0 * y_).reshape(n * c, 1, h, w)
        w_grey = None if weights is None else weights.expand(n, c, h, w).reshape(n * c, 1, h, w)
        score = _vsi_rgb(grey_x, grey_y, w_grey, False).view(n, c)
        return nan_where_empty(score, weights)

    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "vsi", 8)
