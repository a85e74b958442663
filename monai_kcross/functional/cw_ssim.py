"""CW-SSIM, complex wavelet structural similarity (Sampat, Wang, Gupta, Bovik & Markey 2009), slice-wise.

Follows the authors' MATLAB code (``cwssim_index.m``) on the complex steerable pyramid of Portilla & Simoncelli
(``buildSCFpyr`` of matlabPyrTools, twidth 1), built here in the frequency domain for any image size:

* intensities on the 0-255 scale (the scale of ``k``);
* the pyramid's high-pass is removed, the low-pass is split ``levels`` times (raised-cosine radial masks in
  log2-frequency, each level cropping the spectrum to ``ceil(n / 2)``); the ``orientations`` oriented complex
  bands of the coarsest level (angular masks ``cos^(K-1)`` of one half-plane, lookup tables interpolated as
  ``pointOp`` does) are compared;
* per band, ``c = b_x conj(b_y)`` and ``v = |b_x|^2 + |b_y|^2`` are averaged in a 7x7 window ('valid'), the
  map ``(2 |c| + k) / (v + k)`` is pooled with a Gaussian weight of the map's size and standard deviation
  (band height) / 4, and CW-SSIM is the mean over the orientations.

Defaults ``levels = 4``, ``orientations = 8``, ``k = 0`` are those of the ports in pyiqa and Bayer's
``medimetrics``; the MATLAB demo calls ``cwssim_index(img1, img2, 6, 16, 0, 0)`` for 512x512 images.
With ``k = 0`` a window without any band energy in either image counts as similar (0/0 is taken as 1).
Each side needs ``max(2^(levels + 2), 7 * 2^(levels - 1))`` pixels (64 for 4 levels; the MATLAB code's height
limit). Masks multiply the Gaussian pooling weights (carried to the band grid by 2x averaging).
"""

from __future__ import annotations

import math

import torch

from .filtering import filter_axis, gaussian_kernel1d
from .intensity import DataRange
from .masking import crop_weights, finalize_weighted, nan_where_empty, pool_weights
from .planar import planar_metric
from .safe_math import safe_sqrt

__all__ = ["cw_ssim"]

_WINDOW = 7


def _interp(values: torch.Tensor, table: torch.Tensor, origin: float, step: float) -> torch.Tensor:
    """Linear interpolation in a lookup table sampled at ``origin + i * step``, constant beyond its ends."""
    position = ((values - origin) / step).clamp(0, table.numel() - 1)
    below = position.floor().long().clamp(max=table.numel() - 2)
    fraction = position - below.to(values.dtype)
    return table[below] * (1 - fraction) + table[below + 1] * fraction


def _radial_table() -> tuple[torch.Tensor, float, float]:
    """matlabPyrTools ``rcosFn(1, -1/2, [0 1])``: the raised-cosine transition, as ``(sqrt(Y), X0, dX)``."""
    size = 256
    x = math.pi * torch.arange(-size - 1, 2, dtype=torch.float64) / (2 * size)
    y = torch.cos(x) ** 2
    y[0], y[size + 2] = y[1], y[size + 1]
    x = -0.5 + (2 / math.pi) * (x + math.pi / 4)
    return y.sqrt(), float(x[0]), float(x[1] - x[0])


def _angle_table(orientations: int) -> tuple[torch.Tensor, float, float]:
    """The angular mask ``2 sqrt(c) cos(t)^(K - 1)`` on one half-plane, sampled on ``[-2 pi, pi]``."""
    lut = 1024
    x = math.pi * torch.arange(-(2 * lut + 1), lut + 2, dtype=torch.float64) / lut
    order = orientations - 1
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (orientations * math.factorial(2 * order))
    alpha = torch.remainder(math.pi + x, 2 * math.pi) - math.pi
    y = 2 * math.sqrt(const) * torch.cos(x) ** order * (alpha.abs() < math.pi / 2)
    return y, float(x[0]), float(x[1] - x[0])


def _polar_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log2 radius and angle of the centred (fftshift-ed) frequency grid, as ``buildSCFpyr`` builds them."""
    rows = (torch.arange(height, dtype=torch.float64) - height // 2) / (height / 2)
    cols = (torch.arange(width, dtype=torch.float64) - width // 2) / (width / 2)
    y, x = torch.meshgrid(rows, cols, indexing="ij")
    radius = torch.sqrt(x.square() + y.square())
    radius[height // 2, width // 2] = radius[height // 2, width // 2 - 1]
    return torch.log2(radius), torch.atan2(y, x)


def steerable_bands(x: torch.Tensor, levels: int, orientations: int) -> torch.Tensor:
    """Complex oriented bands of the coarsest of ``levels`` levels of the steerable pyramid.

    Args:
        x: images ``(N, C, H, W)``.

    Returns:
        ``(N, C, orientations, h, w)`` complex bands, ``h = ceil(H / 2^(levels - 1))`` (likewise ``w``).
    """
    height, width = x.shape[-2:]
    log_rad, angle = _polar_grid(height, width)
    radial, r0, dr = _radial_table()
    lowpass = torch.sqrt(1.0 - radial.square())
    spectrum = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))
    mask = _interp(log_rad, lowpass, r0, dr)
    spectrum = spectrum * mask.to(device=x.device, dtype=x.dtype)
    for _ in range(levels - 1):
        r0 -= 1.0  # one octave down
        h, w = spectrum.shape[-2:]
        low_h, low_w = math.ceil(h / 2), math.ceil(w / 2)
        top, left = h // 2 - low_h // 2, w // 2 - low_w // 2
        log_rad = log_rad[top : top + low_h, left : left + low_w]
        angle = angle[top : top + low_h, left : left + low_w]
        spectrum = spectrum[..., top : top + low_h, left : left + low_w]
        mask = _interp(log_rad, lowpass, r0, dr)
        spectrum = spectrum * mask.to(device=x.device, dtype=x.dtype)
    highpass = _interp(log_rad, radial, r0 - 1.0, dr)
    table, a0, da = _angle_table(orientations)
    masks = torch.stack(
        [_interp(angle, table, a0 + math.pi * b / orientations, da) for b in range(orientations)]
    )  # (orientations, h, w)
    phase = (-1j) ** (orientations - 1)
    oriented = (masks * highpass).to(device=x.device, dtype=x.dtype) * phase
    bands = spectrum.unsqueeze(2) * oriented
    return torch.fft.ifft2(torch.fft.ifftshift(bands, dim=(-2, -1)))


def _cw_ssim_core(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, levels: int, orientations: int, k: float
) -> torch.Tensor:
    band_x = steerable_bands(255.0 * x, levels, orientations)
    band_y = steerable_bands(255.0 * y, levels, orientations)
    corr = band_x * band_y.conj()
    energy = band_x.abs().square() + band_y.abs().square()
    box = [1.0 / _WINDOW] * _WINDOW
    stats = torch.stack((corr.real, corr.imag, energy))
    corr_re, corr_im, energy = filter_axis(filter_axis(stats, -2, box), -1, box)
    numerator = 2 * safe_sqrt(corr_re.square() + corr_im.square()) + k
    denominator = energy + k
    tiny = torch.finfo(x.dtype).tiny
    similarity = torch.where(denominator > tiny, numerator / denominator.clamp_min(tiny), torch.ones_like(energy))
    h, w = similarity.shape[-2:]
    sigma = band_x.shape[-2] / 4
    gauss = torch.outer(gaussian_kernel1d(h, sigma), gaussian_kernel1d(w, sigma)).to(x.device, x.dtype)[None, None]
    if weights is not None:
        for _ in range(levels - 1):
            weights = pool_weights(weights)
        gauss = gauss * crop_weights(weights, (_WINDOW, _WINDOW))
    total = gauss.sum(dim=(-2, -1))  # zero where no mask weight reaches the band's 'valid' grid: NaN
    weighted = (similarity * gauss.unsqueeze(2)).sum(dim=(-2, -1))
    pooled = finalize_weighted(weighted, total.unsqueeze(-1), "cw_ssim", "the mask", "nan")  # finite gradients
    return pooled.mean(dim=-1)


def cw_ssim(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    levels: int = 4,
    orientations: int = 8,
    k: float = 0.0,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Complex wavelet structural similarity (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``; every channel is scored as a grey image.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; scaled to 0-255.
        mask: optional region; multiplies the Gaussian pooling weights.
        levels: pyramid levels; the bands of the coarsest are compared.
        orientations: number of oriented bands.
        k: stabilising constant of the similarity (0-255 scale).
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, 1]``.
    """
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"cw_ssim: levels must be an integer >= 1, got {levels!r}.")
    if not isinstance(orientations, int) or orientations < 1:
        raise ValueError(f"cw_ssim: orientations must be an integer >= 1, got {orientations!r}.")
    if not k >= 0:
        raise ValueError(f"cw_ssim: k must be >= 0, got {k!r}.")

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        if weights is not None:
            weights = weights.expand(x.shape[0], weights.shape[1], *x.shape[-2:])
        return nan_where_empty(_cw_ssim_core(x, y_, weights, levels, orientations, k), weights)

    min_size = max(2 ** (levels + 2), _WINDOW * 2 ** (levels - 1))
    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "cw_ssim", min_size)
