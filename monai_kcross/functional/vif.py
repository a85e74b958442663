"""VIFp, visual information fidelity in the pixel domain (Sheikh & Bovik 2006), slice-wise on volumes.

Follows the authors' MATLAB code ``vifp_mscale.m`` (LIVE): intensities on the 0-255 scale; 4 scales; at scale
``s = 1..4`` a Gaussian window of ``N = 2^(5 - s) + 1`` taps (17, 9, 5, 3) with ``sigma = N / 5``; for ``s > 1``
the images are first filtered with that window ('valid') and decimated by 2 (``x(1:2:end, 1:2:end)``); local
means and (co)variances come from 'valid' filtering, negative variances are set to 0, the gain
``g = sigma_xy / sigma_ref^2`` and the distortion variance ``sigma_v^2 = sigma_dist^2 - g sigma_xy`` are
corrected as in the reference code (threshold ``1e-10``), and with the visual noise ``sigma_n^2 = 2``

``VIF = sum log10(1 + g^2 sigma_ref^2 / (sigma_v^2 + sigma_n^2)) / sum log10(1 + sigma_ref^2 / sigma_n^2)``

over all scales and window positions. VIF is not symmetric: ``y`` is the reference. Values above 1 mean a
contrast enhancement; a reference slice without any local variance (no information) scores 1. Grey images
only (every channel is scored on its own). Masks weight both sums (carried onto each scale's 'valid' grid).
``scales`` below 4 drop the coarsest scales (for small images: 4 scales need 41 pixels per side, 3 scales 33).
"""

from __future__ import annotations

import torch

from .filtering import filter_axis, gaussian_kernel1d
from .intensity import DataRange
from .masking import crop_weights
from .planar import planar_metric

__all__ = ["vif_p"]

_EPS = 1e-10


def _valid_gaussian(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    return filter_axis(filter_axis(x, -2, taps), -1, taps)


def vif_min_size(scales: int) -> int:
    """Smallest image side that holds ``scales`` VIFp scales (41 for 4 scales, as the reference code needs)."""
    size = 2 ** (5 - scales) + 1  # the coarsest scale needs one window
    for s in range(scales, 1, -1):
        window = 2 ** (5 - s) + 1
        size = 2 * max(size, window) - 1 + window - 1  # undo decimation by 2 and the 'valid' filtering
    return max(size, 17)


def _vif_core(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, scales: int, sigma_n_sq: float):
    dist, ref = 255.0 * x, 255.0 * y
    numerator = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    denominator = torch.zeros_like(numerator)
    weight_total = torch.zeros_like(numerator)
    for scale in range(1, scales + 1):
        size = 2 ** (5 - scale) + 1
        taps = gaussian_kernel1d(size, size / 5).tolist()
        if scale > 1:
            ref = _valid_gaussian(ref, taps)[..., ::2, ::2]
            dist = _valid_gaussian(dist, taps)[..., ::2, ::2]
            if weights is not None:
                weights = crop_weights(weights, (size, size))[..., ::2, ::2]
        mu_r, mu_d = _valid_gaussian(ref, taps), _valid_gaussian(dist, taps)
        var_r = torch.relu(_valid_gaussian(ref * ref, taps) - mu_r * mu_r)
        var_d = torch.relu(_valid_gaussian(dist * dist, taps) - mu_d * mu_d)
        cov = _valid_gaussian(ref * dist, taps) - mu_r * mu_d
        gain = cov / (var_r + _EPS)
        var_v = var_d - gain * cov
        flat_ref = var_r < _EPS
        gain = torch.where(flat_ref, torch.zeros_like(gain), gain)
        var_v = torch.where(flat_ref, var_d, var_v)
        var_r = torch.where(flat_ref, torch.zeros_like(var_r), var_r)
        flat_dist = var_d < _EPS
        gain = torch.where(flat_dist, torch.zeros_like(gain), gain)
        var_v = torch.where(flat_dist, torch.zeros_like(var_v), var_v)
        var_v = torch.where(gain < 0, var_d, var_v)
        gain = torch.relu(gain)
        var_v = var_v.clamp_min(_EPS)
        num_map = torch.log10(1 + gain.square() * var_r / (var_v + sigma_n_sq))
        den_map = torch.log10(1 + var_r / sigma_n_sq)
        if weights is not None:
            w = crop_weights(weights, (size, size))
            num_map, den_map = num_map * w, den_map * w
            weight_total = weight_total + w.sum(dim=(-2, -1))
        numerator = numerator + num_map.sum(dim=(-2, -1))
        denominator = denominator + den_map.sum(dim=(-2, -1))
    score = torch.where(denominator > 0, numerator / denominator.clamp_min(torch.finfo(x.dtype).tiny), 1.0)
    if weights is not None:  # no mask weight on any scale's 'valid' grid: nothing to score (NaN)
        score = torch.where(weight_total > 0, score, torch.nan)
    return score


def vif_p(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    scales: int = 4,
    sigma_n_sq: float = 2.0,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Pixel-domain visual information fidelity (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized (distorted) image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; scaled to 0-255, the scale of
            ``sigma_n_sq``.
        mask: optional region; weights both information sums.
        scales: number of scales (1-4, default 4 as the reference code).
        sigma_n_sq: variance of the visual noise (0-255 scale).
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, inf)`` (usually ``[0, 1]``).
    """
    if scales not in (1, 2, 3, 4):
        raise ValueError(f"vif_p: scales must be 1, 2, 3 or 4, got {scales!r}.")
    if not sigma_n_sq > 0:
        raise ValueError(f"vif_p: sigma_n_sq must be > 0, got {sigma_n_sq!r}.")

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return _vif_core(x, y_, weights, scales, sigma_n_sq)

    return planar_metric(
        core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "vif_p", vif_min_size(scales)
    )
