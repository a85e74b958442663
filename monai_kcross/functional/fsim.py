"""FSIM, the feature similarity index (Zhang, Zhang, Mou & Zhang 2011), grey-scale form, slice-wise on volumes.

Follows the authors' MATLAB code (``FeatureSIM.m`` with Kovesi's ``phasecong2``) for grey images, which is the
grey form the authors define (FSIM; the colour extension FSIMc adds chromatic terms for RGB photographs only):

* intensities on the 0-255 scale (the unit range of the intensity policy times 255);
* automatic downsampling by ``F = max(1, round(min(H, W) / 256))`` (``F x F`` box average, every ``F``-th pixel,
  see :func:`~monai_kcross.functional.feature_maps.auto_downsample`);
* phase congruency with log-Gabor filters in the frequency domain: 4 scales (wavelengths 6, 12, 24, 48 pixels),
  4 orientations, ``sigma_f = 0.55``, angular spread ``pi / 4 / 1.2``, a Butterworth low-pass (cut-off 0.45,
  order 15), noise compensation from the median of the finest scale's squared amplitude (``k = 2``, divided
  by 1.7) -- the medians are MATLAB's (mean of the two middle values);
* gradient magnitude with the 3x3 Scharr operator ``[3 0 -3; 10 0 -10; 3 0 -3] / 16`` (zero padding);
* ``S = S_PC * S_G`` with ``T1 = 0.85``, ``T2 = 160``, pooled with weights ``PC_m = max(PC_x, PC_y)``:
  ``FSIM = sum(S * PC_m) / sum(PC_m)``.

Masks multiply the pooling weights ``PC_m`` (the mask is carried to the downsampled grid by the same box
average). The phase congruency itself is a global (FFT) computation on the whole slice.
"""

from __future__ import annotations

import math

import torch

from .feature_maps import auto_downsample, downsample_factor, frequency_grid, gradient_magnitude, similarity_map
from .intensity import DataRange
from .masking import finalize_weighted
from .planar import planar_metric
from .safe_math import safe_sqrt

__all__ = ["fsim", "phase_congruency"]

_T1, _T2 = 0.85, 160.0


def _matlab_median(x: torch.Tensor) -> torch.Tensor:
    """Median over the last axis, averaging the two middle values for even counts (MATLAB ``median``)."""
    n = x.shape[-1]
    ordered = x.sort(dim=-1).values
    if n % 2:
        return ordered[..., n // 2]
    return 0.5 * (ordered[..., n // 2 - 1] + ordered[..., n // 2])


def _log_gabor_bank(
    height: int, width: int, scales: int, orientations: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Frequency responses ``(orientations, scales, H, W)`` of the oriented log-Gabor filters (FFT order)."""
    radius, theta = frequency_grid(height, width, torch.float64, torch.device("cpu"))
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    radius = radius.clone()
    radius[0, 0] = 1.0
    radial = []
    for s in range(scales):
        centre = 1.0 / (6.0 * 2.0**s)
        response = torch.exp(-(torch.log(radius / centre) ** 2) / (2 * math.log(0.55) ** 2)) * lowpass
        response[0, 0] = 0.0
        radial.append(response)
    theta_sigma = math.pi / orientations / 1.2
    angular = []
    for o in range(orientations):
        angle = o * math.pi / orientations
        ds = torch.sin(theta) * math.cos(angle) - torch.cos(theta) * math.sin(angle)
        dc = torch.cos(theta) * math.cos(angle) + torch.sin(theta) * math.sin(angle)
        angular.append(torch.exp(-(torch.atan2(ds, dc).abs() ** 2) / (2 * theta_sigma**2)))
    bank = torch.stack(angular)[:, None] * torch.stack(radial)[None]
    return bank.to(dtype=dtype, device=device)


def phase_congruency(x: torch.Tensor, scales: int = 4, orientations: int = 4, k: float = 2.0) -> torch.Tensor:
    """Kovesi's phase congruency (``phasecong2`` of the FSIM code) of grey images ``(N, C, H, W)`` on 0-255.

    Returns:
        ``(N, C, H, W)`` maps in ``[0, 1]``.
    """
    n, c, h, w = x.shape
    eps = torch.finfo(x.dtype).eps
    bank = _log_gabor_bank(h, w, scales, orientations, x.dtype, x.device)  # (O, S, H, W)
    spectrum = torch.fft.fft2(x)[:, :, None]  # (N, C, 1, H, W)
    spatial = torch.fft.ifft2(bank).real * math.sqrt(h * w)  # (O, S, H, W)
    energy_all = torch.zeros_like(x)
    amplitude_all = torch.zeros_like(x)
    for o in range(orientations):
        responses = torch.fft.ifft2(spectrum * bank[o])  # (N, C, S, H, W)
        even, odd = responses.real, responses.imag
        amplitude = responses.abs()
        sum_even, sum_odd = even.sum(dim=2), odd.sum(dim=2)
        norm = safe_sqrt(sum_even.square() + sum_odd.square()) + eps  # safe_sqrt: flat images keep finite gradients
        mean_even, mean_odd = (sum_even / norm)[:, :, None], (sum_odd / norm)[:, :, None]
        energy = (even * mean_even + odd * mean_odd - (even * mean_odd - odd * mean_even).abs()).sum(dim=2)
        # noise threshold from the finest scale (Rayleigh model of the noise amplitude)
        median = _matlab_median(amplitude[:, :, 0].square().reshape(n, c, -1))
        noise_power = (-median / math.log(0.5)) / bank[o, 0].square().sum()
        sum_sq = spatial[o].square().sum()
        sum_cross = sum((spatial[o, i] * spatial[o, j]).sum() for i in range(scales - 1) for j in range(i + 1, scales))
        tau = safe_sqrt((2 * noise_power * sum_sq + 4 * noise_power * sum_cross) / 2)
        threshold = (tau * math.sqrt(math.pi / 2) + k * safe_sqrt((2 - math.pi / 2) * tau.square())) / 1.7
        energy_all = energy_all + torch.relu(energy - threshold[..., None, None])
        amplitude_all = amplitude_all + amplitude.sum(dim=2)
    return (energy_all + eps) / (amplitude_all + eps)


def _fsim_core(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    factor = downsample_factor(*x.shape[-2:])
    x, y = auto_downsample(255.0 * x, factor), auto_downsample(255.0 * y, factor)
    pc_x, pc_y = phase_congruency(x), phase_congruency(y)
    similarity = similarity_map(pc_x, pc_y, _T1) * similarity_map(
        gradient_magnitude(x, "scharr"), gradient_magnitude(y, "scharr"), _T2
    )
    pc_max = torch.maximum(pc_x, pc_y)
    if weights is not None:
        pc_max = pc_max * auto_downsample(weights, factor)
    # NaN (with a finite gradient for the other images) where the weights are empty
    weighted = (similarity * pc_max).sum(dim=(-2, -1))
    return finalize_weighted(weighted, pc_max.sum(dim=(-2, -1)), "fsim", "the mask", "nan")


def fsim(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Feature similarity index, grey-scale FSIM (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``; every channel is scored as a grey image.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise (see
            :mod:`monai_kcross.functional.planar`).
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; the unit range is scaled to
            0-255, the scale of the constants ``T1``, ``T2``.
        mask: optional region; multiplies the pooling weights ``max(PC_x, PC_y)``.
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``(0, 1]``.
    """
    return planar_metric(_fsim_core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "fsim", 8)
