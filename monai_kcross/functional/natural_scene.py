"""Natural-scene statistics shared by BRISQUE and NIQE (:mod:`monai_kcross.functional.no_reference`).

MSCN coefficients, moment-matching fits of generalised Gaussians (GGD) and asymmetric ones (AGGD) on the
authors' shape grid, MATLAB's ``imresize(I, 0.5)``, the per-scale feature sets of both scores, and the input
handling (intensity window, 2-D checks, slice-wise scoring of volumes) their public functions share.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F

from .filtering import gaussian_kernel1d, pad2d
from .intensity import DataRange
from .planar import planar_metric
from .validation import check_image_pair

__all__ = ["aggd_parameters", "ggd_parameters", "imresize_half", "mscn_coefficients"]

_GRID_START, _GRID_STEP, _GRID_SIZE = 0.2, 0.001, 9801  # MATLAB 0.2:0.001:10


def mscn_coefficients(
    x: torch.Tensor, padding: str = "zeros", stability: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-subtracted contrast-normalised coefficients and the local deviation.

    Args:
        x: images ``(..., H, W)`` on the 0-255 grey-level scale.
        padding: border handling of the 7x7 Gaussian window: ``"zeros"`` (MATLAB ``filter2``, BRISQUE) or
            ``"replicate"`` (``imfilter(..., 'replicate')``, NIQE).
        stability: the constant added to the deviation (1 on the 0-255 scale in both papers).

    Returns:
        ``(mscn, sigma)``, both shaped like ``x``: ``(x - mu) / (sigma + stability)`` and
        ``sigma = sqrt(|E[x^2] - mu^2|)``.
    """
    window = gaussian_kernel1d(7, 7.0 / 6.0).to(dtype=x.dtype, device=x.device)
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:])
    both = torch.cat([flat, flat * flat], dim=1)  # filter x and x^2 in one pass
    both = pad2d(both, (3, 3, 3, 3), padding)
    both = F.conv2d(both, window.view(1, 1, 7, 1).expand(2, 1, 7, 1), groups=2)
    both = F.conv2d(both, window.view(1, 1, 1, 7).expand(2, 1, 1, 7), groups=2)
    mu, second = both[:, :1].reshape(shape), both[:, 1:].reshape(shape)
    variance = (second - mu * mu).abs()
    # exactly 0 where the image is flat, with a finite (zero) gradient there
    sigma = torch.where(variance > 0, variance.clamp_min(torch.finfo(x.dtype).tiny).sqrt(), 0.0)
    return (x - mu) / (sigma + stability), sigma


@functools.lru_cache(maxsize=2)
def _moment_ratio_table(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape grid and its moment ratio, increasing along the grid (float64, CPU).

    ``"aggd"``: ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))``; ``"ggd"``: minus its inverse, so that both are
    searched the same way.
    """
    grid = _GRID_START + _GRID_STEP * torch.arange(_GRID_SIZE, dtype=torch.float64)
    log_ratio = 2 * torch.lgamma(2 / grid) - torch.lgamma(1 / grid) - torch.lgamma(3 / grid)
    table = log_ratio.exp() if kind == "aggd" else -(-log_ratio).exp()
    return grid, table


def _nearest_shape(ratio: torch.Tensor, kind: str) -> torch.Tensor:
    """Grid shape whose moment ratio is nearest to ``ratio`` (first grid point on ties); NaN stays NaN."""
    grid, table = _moment_ratio_table(kind)
    grid, table = grid.to(ratio.device), table.to(ratio.device)
    value = ratio.detach().to(torch.float64)
    value = value if kind == "aggd" else -value
    upper = torch.searchsorted(table, value.contiguous()).clamp(max=_GRID_SIZE - 1)
    lower = (upper - 1).clamp(min=0)
    take_lower = (value - table[lower]).abs() <= (table[upper] - value).abs()
    index = torch.where(take_lower, lower, upper)
    shape = grid[index].to(ratio.dtype)
    return torch.where(torch.isnan(ratio), torch.full_like(shape, math.nan), shape)


def _ggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GGD moment fit ``(shape, sigma, defined)`` with finite placeholders where undefined.

    Undefined fits get placeholder values instead of NaN so that no NaN enters the autograd graph; callers mask
    them with ``defined``.
    """
    second = (x * x).mean(-1)
    first = x.abs().mean(-1)
    defined = first > 0
    one = torch.ones((), dtype=x.dtype, device=x.device)
    ratio = second / torch.where(defined, first * first, one)
    shape = _nearest_shape(torch.where(defined, ratio, one), "ggd")
    return shape, torch.where(defined, second, one).sqrt(), defined


def _aggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """AGGD moment fit ``(shape, left_std, right_std, defined)``, placeholders where undefined (see ``_ggd_fit``)."""
    square = x * x
    negative, positive = x < 0, x > 0
    n_left, n_right = negative.sum(-1), positive.sum(-1)
    defined = (n_left > 0) & (n_right > 0)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    left = torch.where(negative, square, zero).sum(-1) / n_left.clamp(min=1)
    right = torch.where(positive, square, zero).sum(-1) / n_right.clamp(min=1)
    left = torch.where(n_left > 0, left, one).sqrt()
    right = torch.where(n_right > 0, right, one).sqrt()
    ratio = left / right
    r_hat = x.abs().mean(-1).square() / torch.where(defined, square.mean(-1), one)
    r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1).square()
    return _nearest_shape(torch.where(defined, r_norm, one), "aggd"), left, right, defined


def ggd_parameters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-mean generalised Gaussian fit by moment matching (BRISQUE's ``estimateggdparam``).

    Args:
        x: samples along the last axis, ``(..., n)``.

    Returns:
        ``(shape, sigma)``, each ``(...)``: the grid shape ``alpha`` in ``[0.2, 10]`` whose ratio
        ``Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2`` is nearest to ``E[x^2] / E[|x|]^2``, and ``sqrt(E[x^2])``.
        NaN where all samples are zero.
    """
    shape, sigma, defined = _ggd_fit(x)
    return shape.where(defined, math.nan), sigma.where(defined, math.nan)


def aggd_parameters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-mode asymmetric generalised Gaussian fit by moment matching (``estimateaggdparam``).

    Args:
        x: samples along the last axis, ``(..., n)``.

    Returns:
        ``(shape, left_std, right_std)``, each ``(...)``: the grid shape whose ratio
        ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is nearest to the normalised ``E[|x|]^2 / E[x^2]``, and the
        root mean squares of the negative and of the positive samples. NaN where either side has no sample.
    """
    shape, left, right, defined = _aggd_fit(x)
    return tuple(v.where(defined, math.nan) for v in (shape, left, right))  # type: ignore[return-value]


def _gamma_ratio(numerator: float, denominator: float, alpha: torch.Tensor) -> torch.Tensor:
    """``Gamma(numerator / alpha) / Gamma(denominator / alpha)``."""
    return (torch.lgamma(numerator / alpha) - torch.lgamma(denominator / alpha)).exp()


def imresize_half(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``imresize(x, 0.5)`` (bicubic, antialiased, symmetric borders) on the last two axes.

    At scale 1/2 the antialiased cubic kernel (``a = -0.5``) has 8 taps at distances ``0.5, ..., 3.5`` input
    pixels from each output centre (input coordinate ``2 i + 0.5``); they sum to one, so MATLAB's weight
    normalisation is a no-op. Output sides are ``ceil(n / 2)``.

    Args:
        x: images ``(..., H, W)``.

    Returns:
        ``(..., ceil(H / 2), ceil(W / 2))``.
    """

    def cubic(t: float) -> float:
        t = abs(t)
        return 1.5 * t**3 - 2.5 * t**2 + 1 if t <= 1 else -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2

    taps = [0.5 * cubic(0.5 * (3.5 - k)) for k in range(8)]
    kernel = torch.tensor(taps, dtype=x.dtype, device=x.device)
    shape = x.shape
    h, w = shape[-2:]
    flat = pad2d(x.reshape(-1, 1, h, w), (3, 3 + w % 2, 3, 3 + h % 2), "symmetric")
    flat = F.conv2d(flat, kernel.view(1, 1, 8, 1), stride=(2, 1))
    flat = F.conv2d(flat, kernel.view(1, 1, 1, 8), stride=(1, 2))
    return flat.reshape(*shape[:-2], *flat.shape[-2:])


_BRISQUE_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
_NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _brisque_scale_features(mscn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """18 BRISQUE features of MSCN images ``(..., H, W)`` -> ``(..., 18)`` and whether all fits are defined."""
    alpha, sigma, defined = _ggd_fit(mscn.flatten(-2))
    features = [alpha, sigma.square()]
    for shift in _BRISQUE_SHIFTS:
        pair = mscn * torch.roll(mscn, shifts=shift, dims=(-2, -1))
        alpha, left, right, pair_defined = _aggd_fit(pair.flatten(-2))
        mean = (right - left) * _gamma_ratio(2, 1, alpha) * _gamma_ratio(1, 3, alpha).sqrt()
        features += [alpha, mean, left.square(), right.square()]
        defined = defined & pair_defined
    return torch.stack(features, dim=-1), defined


def _brisque_features_255(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BRISQUE features of images ``(..., H, W)`` on the 0-255 scale -> ``(..., 36)`` and ``defined`` ``(...)``."""
    per_scale, defined = [], None
    for scale in range(2):
        if scale:
            x = imresize_half(x)
        features, scale_defined = _brisque_scale_features(mscn_coefficients(x, "zeros")[0])
        per_scale.append(features)
        defined = scale_defined if defined is None else defined & scale_defined
    return torch.cat(per_scale, dim=-1), defined


def _to_patches(x: torch.Tensor, size: int) -> torch.Tensor:
    """Non-overlapping ``size x size`` patches of ``(..., H, W)`` (trimmed to multiples) -> ``(..., P, size, size)``.

    Patches are ordered row by row.
    """
    rows, cols = x.shape[-2] // size, x.shape[-1] // size
    x = x[..., : rows * size, : cols * size]
    x = x.reshape(*x.shape[:-2], rows, size, cols, size).transpose(-3, -2)
    return x.reshape(*x.shape[:-4], rows * cols, size, size)


def _niqe_patch_stats(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """18 NIQE features of MSCN patches ``(..., p, p)`` -> ``(..., 18)`` and whether all fits are defined."""
    alpha, left, right, defined = _aggd_fit(patches.flatten(-2))
    scale = _gamma_ratio(1, 3, alpha).sqrt()
    features = [alpha, (left + right) * scale / 2]
    for shift in _NIQE_SHIFTS:
        pair = patches * torch.roll(patches, shifts=shift, dims=(-2, -1))
        alpha, left, right, pair_defined = _aggd_fit(pair.flatten(-2))
        scale = _gamma_ratio(1, 3, alpha).sqrt()
        beta_left, beta_right = left * scale, right * scale
        features += [alpha, (beta_right - beta_left) * _gamma_ratio(2, 1, alpha), beta_left, beta_right]
        defined = defined & pair_defined
    return torch.stack(features, dim=-1), defined


def _niqe_features_255(x: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NIQE patch features ``(..., P, 36)``, sharpness and ``defined`` ``(..., P)`` of images on the 0-255 scale."""
    rows, cols = x.shape[-2] // patch_size, x.shape[-1] // patch_size
    x = x[..., : rows * patch_size, : cols * patch_size]
    mscn, sigma = mscn_coefficients(x, "replicate")
    sharpness = _to_patches(sigma, patch_size).mean(dim=(-2, -1))
    coarse = mscn_coefficients(imresize_half(x), "replicate")[0]
    fine_features, fine_defined = _niqe_patch_stats(_to_patches(mscn, patch_size))
    coarse_features, coarse_defined = _niqe_patch_stats(_to_patches(coarse, patch_size // 2))
    return torch.cat([fine_features, coarse_features], dim=-1), sharpness, fine_defined & coarse_defined


# --------------------------------------------------------------------------------------------------------------
# input handling shared by the public functions
# --------------------------------------------------------------------------------------------------------------


def _resolve_range(data_range: DataRange, name: str) -> DataRange:
    if isinstance(data_range, str):
        if data_range not in ("image", "reference"):
            raise ValueError(
                f"{name}: data_range must be 'image' (the image's own min-max), a number > 0 or a (low, high) "
                f"pair, got {data_range!r}."
            )
        return "reference"  # the package policy's keyword for "the range of the image the window is taken from"
    return data_range


def _check_images_2d(x: torch.Tensor, name: str, min_size: int, what: str) -> torch.Tensor:
    """Validate a batch of 2-D images ``(B, C, H, W)`` (finite, not constant, large enough)."""
    x, _, _ = check_image_pair(x, x, 2, name)
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"{name}: images of size {tuple(x.shape[-2:])} are too small; each side needs at least {min_size} "
            f"pixels ({what})."
        )
    constant = ~_nonconstant(x.detach(), (-2, -1))
    if bool(constant.any()):
        raise ValueError(
            f"{name}: the image is constant for (batch, channel) {constant.nonzero().tolist()}; natural-scene "
            "statistics are undefined for constant images."
        )
    return x


def _nonconstant(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return x.amax(dim=dims) > x.amin(dim=dims)


def _slice_wise(
    core: Any,
    y_pred: torch.Tensor,
    spatial_dims: int | None,
    data_range: DataRange,
    slice_axis: int,
    name: str,
    min_size: int,
    what: str,
) -> torch.Tensor:
    """Validate, check for constant images and score with a 2-D ``core`` (slice-wise for volumes).

    ``core(x)`` maps unit-range images ``(N, C, H, W)`` to ``(N, C)`` scores. For volumes, the non-constant
    slices are passed to :func:`~monai_kcross.functional.planar.planar_metric` as a slice mask, so that the
    package's slice averaging skips empty slices.
    """
    y_pred, _, spatial_dims = check_image_pair(y_pred, y_pred, spatial_dims, name)
    data_range = _resolve_range(data_range, name)
    if spatial_dims == 3 and (isinstance(slice_axis, bool) or not isinstance(slice_axis, int)):
        raise ValueError(f"{name}: slice_axis must be one spatial axis (0, 1, 2 or -1, -2, -3), got {slice_axis!r}.")
    if spatial_dims == 3 and not -3 <= slice_axis <= 2:
        raise ValueError(f"{name}: slice_axis must index spatial axes (0, 1, 2 or -1, -2, -3), got {slice_axis}.")
    planes = tuple(s for i, s in enumerate(y_pred.shape[2:]) if spatial_dims == 2 or i != slice_axis % 3)
    if min(planes) < min_size:
        kind = "images" if spatial_dims == 2 else "slices"
        raise ValueError(
            f"{name}: {kind} of size {planes} are too small; each side needs at least {min_size} pixels ({what})."
        )
    flat = y_pred.detach().reshape(*y_pred.shape[:2], -1)
    constant = ~(flat.amax(-1) > flat.amin(-1))
    if bool(constant.any()):
        kind = "image" if spatial_dims == 2 else "volume"
        raise ValueError(
            f"{name}: the {kind} is constant for (batch, channel) {constant.nonzero().tolist()}; natural-scene "
            "statistics are undefined for constant images."
        )
    mask = None
    if spatial_dims == 3:
        axis = 2 + slice_axis % 3
        others = tuple(d for d in (2, 3, 4) if d != axis)
        used = _nonconstant(y_pred.detach(), others)  # (B, C, S)
        if not bool(used.any(-1).all()):
            where = (~used.any(-1)).nonzero().tolist()
            raise ValueError(
                f"{name}: every slice along slice_axis={slice_axis} is constant for (batch, channel) {where}; "
                "natural-scene statistics are undefined for constant images."
            )
        view = [*used.shape[:2], 1, 1, 1]
        view[axis] = used.shape[-1]
        mask = used.reshape(view).expand(y_pred.shape)

    def planar_core(x: torch.Tensor, _y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        if weights is None:
            return core(x)
        used_slices = weights.flatten(-2).amax(-1) > 0  # (N, C)
        scores = torch.full(x.shape[:2], math.nan, dtype=x.dtype, device=x.device)
        index = used_slices.nonzero(as_tuple=True)
        if index[0].numel():
            scores = scores.index_put(index, core(x[index].unsqueeze(1))[:, 0])
        return scores

    return planar_metric(planar_core, y_pred, y_pred, spatial_dims, data_range, mask, slice_axis, "raise", name, 1)


def _check_patch_size(patch_size: int, name: str) -> None:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 8 or patch_size % 2:
        raise ValueError(f"{name}: patch_size must be an even integer >= 8, got {patch_size!r}.")
