"""IW-SSIM, information content weighted SSIM (Wang & Li 2011), grey-scale, slice-wise on volumes.

Follows the authors' MATLAB code (``iwssim.m``) as reproduced by piq 0.8.0:

* intensities on the 0-255 scale (``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``);
* a Laplacian pyramid with the 5-tap binomial filter ``[1 4 6 4 1] / 16 * sqrt(2)`` per axis (reflect padding
  without repeating the edge, decimation by 2, upsampling by zero insertion and the same filter);
* at every band-pass level the SSIM contrast-structure map (Gaussian window 11, sigma 1.5, 'valid') is pooled
  with the information content weights of the Gaussian scale mixture model: 3x3 neighbourhoods of the
  reference band (plus the parent coefficient from the next coarser band, except at the last two levels),
  their covariance with eigenvalues clipped at 0 (keeping their sum), the gain ``g`` and distortion variance
  ``v`` of the local 3x3 statistics, ``sigma_n^2 = 0.4``, and
  ``w = sum_k log2(1 + ((v + (1 + g^2) sigma_n^2) s lambda_k + sigma_n^2 v) / sigma_n^4)``;
* the coarsest level contributes its plain mean SSIM; the levels are combined as
  ``prod_j |IW-CS_j|^beta_j`` with the MS-SSIM weights ``beta``.

Masks multiply the information weights (the mask is carried down the pyramid by 2x averaging). ``weights``
sets the number of levels: each side needs ``10 * 2^(levels - 1) + 1`` pixels (161 for the 5 standard
levels); pass fewer weights for small images, as for MS-SSIM. IW-SSIM is not symmetric: the information
weights come from the reference ``y``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .filtering import filter_axis, gaussian_kernel1d
from .intensity import DataRange
from .masking import crop_weights, nan_where_empty, pool_weights
from .planar import planar_metric
from .ssim import MS_SSIM_WEIGHTS

__all__ = ["iw_ssim"]

_SIGMA_N_SQ = 0.4
_BLOCK = 3


def _binomial_taps() -> list[float]:
    return [v / 16 * math.sqrt(2) for v in (1.0, 4.0, 6.0, 4.0, 1.0)]


def _filter_axis(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Binomial filtering of one of the last two axes with reflect padding (same size)."""
    pads = (2, 2, 0, 0) if axis == -1 else (0, 0, 2, 2)
    return filter_axis(F.pad(x, pads, mode="reflect"), axis, _binomial_taps())


def _pyramid_step(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Laplacian pyramid step: ``(low-pass at half size, band-pass at full size)``."""
    low = x
    for axis in (-1, -2):
        if low.shape[axis] > 1:
            low = _filter_axis(low, axis).narrow(axis, 0, low.shape[axis]).unfold(axis, 1, 2).squeeze(-1)
    up = low
    for axis, size in ((-1, x.shape[-1]), (-2, x.shape[-2])):
        if size > 1:
            shape = list(up.shape)
            shape[axis] = 2 * up.shape[axis]
            sparse = torch.zeros(shape, dtype=up.dtype, device=up.device)
            index = [slice(None)] * up.ndim
            index[axis] = slice(0, None, 2)
            sparse[tuple(index)] = up
            up = _filter_axis(sparse, axis).narrow(axis, 0, size)
    return low, x - up


def _enlarge(x: torch.Tensor) -> torch.Tensor:
    """The reference code's parent upsampling: bilinear to ``4n - 3``, linear extrapolation, every 2nd sample."""
    h, w = x.shape[-2:]
    inner = F.interpolate(x, size=(4 * h - 3, 4 * w - 3), mode="bilinear", align_corners=False)
    big = F.pad(inner, (1, 1, 1, 1))
    big[..., 0, :] = 2 * big[..., 1, :] - big[..., 2, :]
    big[..., -1, :] = 2 * big[..., -2, :] - big[..., -3, :]
    big[..., :, 0] = 2 * big[..., :, 1] - big[..., :, 2]
    big[..., :, -1] = 2 * big[..., :, -2] - big[..., :, -3]
    return big[..., ::2, ::2]


def _box3(x: torch.Tensor) -> torch.Tensor:
    taps = [1.0 / _BLOCK] * _BLOCK
    return filter_axis(filter_axis(x, -2, taps), -1, taps)


def _information_weights(x: torch.Tensor, y: torch.Tensor, parent: torch.Tensor | None) -> torch.Tensor:
    """Information content map on the 'valid' 3x3 grid of band-pass images ``(N, C, H, W)``; ``y`` is the reference."""
    eps = torch.finfo(x.dtype).eps
    mu_x, mu_y = _box3(x), _box3(y)
    var_x = torch.relu(_box3(x * x) - mu_x * mu_x)
    var_y = torch.relu(_box3(y * y) - mu_y * mu_y)
    cov = _box3(x * y) - mu_x * mu_y
    gain = cov / (var_y + eps)
    var_v = var_x - gain * cov
    gain = torch.where(var_y < eps, torch.zeros_like(gain), gain)
    var_v = torch.where(var_y < eps, var_x, var_v)
    gain = torch.where(var_x < eps, torch.zeros_like(gain), gain)
    var_v = torch.where(var_x < eps, torch.zeros_like(var_v), var_v)
    n, c, h, w = y.shape
    rows, cols = h - _BLOCK + 1, w - _BLOCK + 1
    neighbours = [y[..., i : i + rows, j : j + cols] for i in range(_BLOCK) for j in range(_BLOCK)]
    if parent is not None:
        neighbours.append(_enlarge(parent)[..., :h, :w][..., 1 : 1 + rows, 1 : 1 + cols])
    vectors = torch.stack([v.reshape(n, c, -1) for v in neighbours], dim=-1)  # (N, C, P, K)
    k = vectors.shape[-1]
    covariance = vectors.transpose(-2, -1) @ vectors / vectors.shape[-2]
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    positive = eigenvalues.clamp_min(0)
    total, kept = eigenvalues.sum(-1, keepdim=True), positive.sum(-1, keepdim=True)
    scaled = positive * total / (kept + (kept == 0).to(kept.dtype))
    # inverse of V diag(scaled) V^T; a band without any content (all-zero background) has no inverse, and its
    # pseudo-inverse (1 / 0 -> 0) gives it zero information instead of failing
    tiny = torch.finfo(scaled.dtype).tiny
    reciprocal = torch.where(scaled > 0, 1.0 / scaled.clamp_min(tiny), torch.zeros_like(scaled))
    inverse = eigenvectors @ torch.diag_embed(reciprocal) @ eigenvectors.transpose(-2, -1)
    s = ((vectors @ inverse) * vectors).sum(-1).view(n, c, rows, cols) / k
    terms = (var_v + (1 + gain.square()) * _SIGMA_N_SQ)[..., None] * s[..., None] * scaled[:, :, None, None, :]
    weights = torch.log2(1 + (terms + _SIGMA_N_SQ * var_v[..., None]) / _SIGMA_N_SQ**2).sum(-1)
    return torch.where(weights < eps, torch.zeros_like(weights), weights)


def _iw_ssim_core(
    x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, scale_weights: torch.Tensor
) -> torch.Tensor:
    x, y = 255.0 * x, 255.0 * y
    taps = gaussian_kernel1d(11, 1.5).tolist()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    levels = scale_weights.numel()
    low_x, band_x = _pyramid_step(x)
    low_y, band_y = _pyramid_step(y)
    pooled = []
    for level in range(levels):
        if level < levels - 2:
            low_x, next_x = _pyramid_step(low_x)
            low_y, next_y = _pyramid_step(low_y)
        else:
            next_x, next_y = low_x, low_y
        stats = torch.stack((band_x, band_y, band_x * band_x, band_y * band_y, band_x * band_y))
        mu_x, mu_y, e_xx, e_yy, e_xy = filter_axis(filter_axis(stats, -2, taps), -1, taps)
        var_x, var_y = torch.relu(e_xx - mu_x * mu_x), torch.relu(e_yy - mu_y * mu_y)
        cs = (2 * (e_xy - mu_x * mu_y) + c2) / (var_x + var_y + c2)
        if level == levels - 1:
            values = (2 * mu_x * mu_y + c1) / (mu_x.square() + mu_y.square() + c1) * cs
            info = torch.ones_like(values)
        else:
            parent = next_y if level < levels - 2 else None
            crop = (11 - _BLOCK) // 2
            info = _information_weights(band_x, band_y, parent)[..., crop:-crop, crop:-crop]
            values = cs
        mask_level = mask
        if mask is not None:
            info = info * crop_weights(mask, (11, 11))
            mask = pool_weights(mask)
        total = info.sum(dim=(-2, -1))
        # no information (a flat slice) means nothing to lose; no mask weight on this level's grid: NaN
        level_score = torch.where(total > 0, (values * info).sum(dim=(-2, -1)) / total.clamp_min(1e-300), 1.0)
        if mask is not None:
            level_score = torch.where(crop_weights(mask_level, (11, 11)).sum(dim=(-2, -1)) > 0, level_score, torch.nan)
        pooled.append(level_score)
        band_x, band_y = next_x, next_y
    score = torch.stack(pooled).abs().pow(scale_weights.to(x.device, x.dtype).view(-1, 1, 1)).prod(0)
    return score


def iw_ssim(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Information content weighted SSIM (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``; every channel is scored as a grey image.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; scaled to 0-255.
        mask: optional region; multiplies the information weights at every level.
        weights: one exponent per pyramid level (normalised to sum 1); default the 5 MS-SSIM weights.
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, 1]``.
    """
    scale_weights = torch.tensor([float(w) for w in weights], dtype=torch.float64)
    if scale_weights.numel() < 1 or bool((scale_weights < 0).any()) or not scale_weights.sum() > 0:
        raise ValueError(f"iw_ssim: weights must be non-negative with a positive sum, got {weights!r}.")
    scale_weights = scale_weights / scale_weights.sum()

    def core(x: torch.Tensor, y_: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        if w is not None:
            w = w.expand(x.shape[0], w.shape[1], *x.shape[-2:])
        return nan_where_empty(_iw_ssim_core(x, y_, w, scale_weights), w)

    min_size = 10 * 2 ** (scale_weights.numel() - 1) + 1
    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "iw_ssim", min_size)
