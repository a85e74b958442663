"""SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli & Bovik 2003) in 2-D and 3-D, with masks.

Conventions (preset ``"wang"``, the default): Gaussian window of 11 taps with sigma 1.5 per axis, K1 = 0.01,
K2 = 0.03, ``C = (K * L)^2``, population covariance, 'valid' filtering (the map covers the voxels whose window
lies inside the image). This equals MONAI's ``SSIMMetric`` and scikit-image's ``structural_similarity`` with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``. Preset ``"skimage"`` reproduces
scikit-image's defaults (7-tap uniform window, sample covariance).

MS-SSIM follows MONAI and pytorch-msssim: 2x average-pool downsampling (odd remainders dropped),
``relu`` on the contrast-structure terms, SSIM at the coarsest level, default weights
``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``.

Implementation: the four window statistics ``E[x], E[y], E[x^2 + y^2], E[xy]`` are all SSIM needs (it only
uses ``sigma_x^2 + sigma_y^2``). The volume is cut into slabs along the first spatial axis (with a halo of
``win_size - 1`` rows); each slab's statistics are formed, filtered separably along every axis with ``k``
shifted multiply-adds per axis, turned into SSIM and contrast maps and reduced while still in cache. No
full-size map is ever materialised, which is what makes 3-D SSIM fast and lean on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from .filtering import filter_axis, window_1d
from .intensity import DataRange, harmonize
from .masking import crop_weights, finalize_weighted, pool_weights, prepare_mask
from .safe_math import positive_power
from .validation import check_image_pair, compute_dtype

__all__ = ["MS_SSIM_WEIGHTS", "SSIM_PRESETS", "ms_ssim", "ms_ssim_weights_for", "resolve_ssim_options", "ssim"]

SSIM_PRESETS: dict[str, dict[str, Any]] = {
    "wang": {
        "kernel_type": "gaussian",
        "win_size": 11,
        "kernel_sigma": 1.5,
        "k1": 0.01,
        "k2": 0.03,
        "covariance": "population",
    },
    "skimage": {
        "kernel_type": "uniform",
        "win_size": 7,
        "kernel_sigma": 1.5,
        "k1": 0.01,
        "k2": 0.03,
        "covariance": "sample",
    },
}
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# elements of one slab of one statistic map (about 2 MiB in float32 on CPU; whole volumes on CUDA)
_CPU_CHUNK_ELEMENTS = 2**19
_CUDA_CHUNK_ELEMENTS = 2**25


def ms_ssim_weights_for(shape: Sequence[int], win_size: int = 11) -> tuple[float, ...]:
    """The longest prefix of the standard MS-SSIM weights whose coarsest level still holds the window.

    For volumes smaller than ``win_size * 16`` voxels per side (176 for the default window); the number of
    scales used must be reported with the result, since scores with different scales are not comparable.
    """
    levels = len(MS_SSIM_WEIGHTS)
    while levels > 1 and min(shape) // 2 ** (levels - 1) < win_size:
        levels -= 1
    return MS_SSIM_WEIGHTS[:levels]


def resolve_ssim_options(preset: str = "wang", **overrides: Any) -> dict[str, Any]:
    """Merge explicit SSIM options (``None`` = not given) over a named preset and validate them."""
    if preset not in SSIM_PRESETS:
        raise ValueError(f"unknown SSIM preset {preset!r}; choose one of {sorted(SSIM_PRESETS)}.")
    options = dict(SSIM_PRESETS[preset])
    options.update({k: v for k, v in overrides.items() if v is not None})
    if options["covariance"] not in ("population", "sample"):
        raise ValueError(f"covariance must be 'population' or 'sample', got {options['covariance']!r}.")
    for key in ("k1", "k2"):
        if not options[key] > 0:
            raise ValueError(f"{key} must be > 0, got {options[key]!r}.")
    return options


def _per_axis(value: Any, spatial_dims: int, what: str) -> tuple:
    values = tuple(value) if isinstance(value, Sequence) else (value,) * spatial_dims
    if len(values) != spatial_dims:
        raise ValueError(f"{what} needs {spatial_dims} values (one per spatial axis), got {value!r}.")
    return values


def _windows(options: dict[str, Any], spatial_dims: int) -> list[torch.Tensor]:
    sizes = _per_axis(options["win_size"], spatial_dims, "win_size")
    sigmas = _per_axis(options["kernel_sigma"], spatial_dims, "kernel_sigma")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, float)) or int(size) != size or size < 1:
            raise ValueError(f"win_size must be a positive integer, got {options['win_size']!r}.")
        if int(size) % 2 == 0:
            raise ValueError(
                f"win_size must be odd (a window centred on its voxel), got {options['win_size']!r}; use e.g. 7 or 11."
            )
    return [window_1d(options["kernel_type"], int(s), float(g)) for s, g in zip(sizes, sigmas)]


def _slab_plan(images: int, spatial: Sequence[int], window: int, device: torch.device) -> tuple[int, int]:
    """Images per group and output rows per slab so that one slab of statistics stays cache-sized."""
    budget = _CUDA_CHUNK_ELEMENTS if device.type == "cuda" else _CPU_CHUNK_ELEMENTS
    row = max(1, math.prod(spatial[1:]))
    halo = window - 1
    min_rows = max(1, 2 * halo)  # keep the recomputed halo below a third of the slab
    group = max(1, min(images, budget // (row * (min_rows + halo))))
    rows = max(min_rows, budget // (row * group) - halo)
    return group, rows


def _ssim_and_cs(
    x: torch.Tensor,
    y: torch.Tensor,
    low: torch.Tensor,
    span: torch.Tensor,
    weights: torch.Tensor | None,
    windows: list[torch.Tensor],
    c1: float,
    c2: float,
    cov_norm: float,
    name: str,
    empty_mask: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Mean SSIM and mean contrast-structure term of images ``(B, C, *S)``; each ``(B, C)``, and with weights
    the ``(B, C)`` map of images whose weighted region is not empty (elsewhere both means are NaN).

    ``low`` and ``span`` ``(B, C, 1, ...)`` map intensities to the unit range (see ``intensity_window``); the
    constants ``c1``, ``c2`` refer to that range. The volume is processed in slabs along the first spatial
    axis: each slab's statistics are normalised, filtered along every axis, turned into SSIM and contrast
    maps and reduced while they are still in cache.
    """
    batch, channels, *spatial = x.shape
    images = batch * channels
    dtype = low.dtype
    taps = [w.tolist() for w in windows]
    halo = len(taps[0]) - 1
    sizes = [s - len(t) + 1 for s, t in zip(spatial, taps)]
    flat_x = x.reshape(images, *spatial)
    flat_y = y.reshape(images, *spatial)
    flat_low = low.expand(batch, channels, *low.shape[2:]).reshape(images, *low.shape[2:])
    flat_scale = span.reciprocal().expand(batch, channels, *span.shape[2:]).reshape(images, *span.shape[2:])
    if weights is not None:
        valid = crop_weights(weights, tuple(len(t) for t in taps))
        flat_weights = valid.expand(batch, channels, *sizes).reshape(images, *sizes)
    reduce_dims = tuple(range(2, len(spatial) + 1))  # spatial axes after the first, in (image, row, ...)
    ssim_sum = torch.empty(images, sizes[0], dtype=dtype, device=x.device)
    cs_sum = torch.empty_like(ssim_sum)
    weight_sum = torch.empty_like(ssim_sum) if weights is not None else None

    group, rows = _slab_plan(images, spatial, len(taps[0]), x.device)
    for first in range(0, images, group):
        imgs = slice(first, min(images, first + group))
        for start in range(0, sizes[0], rows):
            stop = min(sizes[0], start + rows)
            x_in = flat_x[imgs, start : stop + halo]
            y_in = flat_y[imgs, start : stop + halo]
            u = (x_in.to(dtype) - flat_low[imgs]) * flat_scale[imgs]
            v = (y_in.to(dtype) - flat_low[imgs]) * flat_scale[imgs]
            block = torch.stack((u, v, u * u + v * v, u * v))
            for axis, axis_taps in enumerate(taps):
                block = filter_axis(block, axis + 2, axis_taps)
            mu_x, mu_y, e_sq, e_xy = block
            mu_xy = mu_x * mu_y
            mu_sq = mu_x * mu_x + mu_y * mu_y
            cs_map = (2 * cov_norm * (e_xy - mu_xy) + c2) / (cov_norm * (e_sq - mu_sq) + c2)
            ssim_map = (2 * mu_xy + c1) / (mu_sq + c1) * cs_map
            if weights is None:
                ssim_sum[imgs, start:stop] = ssim_map.sum(dim=reduce_dims)
                cs_sum[imgs, start:stop] = cs_map.sum(dim=reduce_dims)
            else:
                w = flat_weights[imgs, start:stop]
                ssim_sum[imgs, start:stop] = (ssim_map * w).sum(dim=reduce_dims)
                cs_sum[imgs, start:stop] = (cs_map * w).sum(dim=reduce_dims)
                weight_sum[imgs, start:stop] = w.sum(dim=reduce_dims)

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.to(torch.float64).sum(-1).view(batch, channels)

    if weights is None:
        count = float(math.prod(sizes))
        return (per_image(ssim_sum) / count).to(dtype), (per_image(cs_sum) / count).to(dtype), None
    denominator = per_image(weight_sum)
    region = f"the SSIM 'valid' region (voxels at least {halo // 2} from the border)"
    ssim_mean = finalize_weighted(per_image(ssim_sum), denominator, name, region, empty_mask)
    cs_mean = finalize_weighted(per_image(cs_sum), denominator, name, region, empty_mask)
    return ssim_mean.to(dtype), cs_mean.to(dtype), denominator > 0


def _constants(options: dict[str, Any], windows: list[torch.Tensor]) -> tuple[float, float, float]:
    c1 = (options["k1"] * 1.0) ** 2
    c2 = (options["k2"] * 1.0) ** 2
    n = math.prod(w.numel() for w in windows)
    cov_norm = n / (n - 1) if options["covariance"] == "sample" and n > 1 else 1.0
    return c1, c2, cov_norm


class _Setup(NamedTuple):
    y_pred: torch.Tensor
    y: torch.Tensor
    spatial_dims: int
    windows: list[torch.Tensor]
    weights: torch.Tensor | None
    low: torch.Tensor
    span: torch.Tensor
    constants: tuple[float, float, float]
    out_dtype: torch.dtype


def _setup(
    name: str,
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None,
    data_range: DataRange,
    mask: torch.Tensor | None,
    empty_mask: str,
    preset: str,
    levels: int = 1,
    **overrides: Any,
) -> _Setup:
    """Validate the inputs of SSIM/MS-SSIM and resolve windows, mask weights, intensity window, constants."""
    y_pred, y, spatial_dims = check_image_pair(y_pred, y, spatial_dims, name)
    options = resolve_ssim_options(preset, **overrides)
    windows = _windows(options, spatial_dims)
    shape = tuple(y.shape[2:])
    factor = 2 ** (levels - 1)
    sizes = tuple(w.numel() for w in windows)
    if any(s // factor < k for s, k in zip(shape, sizes)):
        if levels == 1:
            raise ValueError(
                f"{name}: image of spatial shape {shape} is smaller than the SSIM window {sizes}; "
                "use a smaller win_size."
            )
        raise ValueError(
            f"{name}: image of spatial shape {shape} is too small for {levels} scales with a {sizes} window: "
            f"each side needs at least {tuple(k * factor for k in sizes)} voxels. "
            "Pass fewer `weights` (scales) or a smaller `win_size`."
        )
    out_dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, name, empty_mask, out_dtype)
    # the reference's window (float64, a policy's statistics inside the mask), a policy's per-image mapping and
    # clipping, and the dtype to work in: float64 where float32 cannot map the window
    y_pred, y, low, span, dtype = harmonize(y_pred, y, data_range, name, out_dtype, mask=weights)
    weights = None if weights is None else weights.to(dtype)
    constants = _constants(options, windows)
    return _Setup(y_pred, y, spatial_dims, windows, weights, low.to(dtype), span.to(dtype), constants, out_dtype)


def ssim(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    preset: str = "wang",
    kernel_type: str | None = None,
    win_size: int | Sequence[int] | None = None,
    kernel_sigma: float | Sequence[float] | None = None,
    k1: float | None = None,
    k2: float | None = None,
    covariance: str | None = None,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Structural similarity index (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``, any real dtype, CPU or CUDA.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred from ``y.ndim`` when ``None``.
        data_range: intensity policy (``"reference"``, a number or ``(low, high)``),
            see :mod:`monai_kcross.functional.intensity`.
        mask: optional region ``(B|1, C|1, H, W[, D])`` (bool or 0-1 weights); the SSIM map is averaged
            inside the region (the window statistics still use all voxels).
        preset: ``"wang"`` (default) or ``"skimage"``; explicit options below override the preset.
        kernel_type: ``"gaussian"`` or ``"uniform"``.
        win_size: window taps per axis (int or one per axis).
        kernel_sigma: Gaussian sigma per axis.
        k1: luminance constant, ``C1 = (k1 * L)^2``.
        k2: contrast constant, ``C2 = (k2 * L)^2``.
        covariance: ``"population"`` (Wang 2004) or ``"sample"`` (scikit-image default, ``N/(N-1)``).
        empty_mask: ``"raise"`` or ``"nan"`` for images whose region is empty.

    Returns:
        Tensor ``(B, C)`` of SSIM values, in ``[-1, 1]``; float64 for float64 input, else float32.
    """
    run = _setup(
        "ssim",
        y_pred,
        y,
        spatial_dims,
        data_range,
        mask,
        empty_mask,
        preset,
        kernel_type=kernel_type,
        win_size=win_size,
        kernel_sigma=kernel_sigma,
        k1=k1,
        k2=k2,
        covariance=covariance,
    )

    def compute(setup: _Setup) -> tuple[torch.Tensor, torch.Tensor | None]:
        ssim_mean, _, scored = _ssim_and_cs(
            setup.y_pred,
            setup.y,
            setup.low,
            setup.span,
            setup.weights,
            setup.windows,
            *setup.constants,
            "ssim",
            empty_mask,
        )
        return ssim_mean, scored

    return _with_float64_fallback(run, compute)


def ms_ssim(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    preset: str = "wang",
    kernel_type: str | None = None,
    win_size: int | Sequence[int] | None = None,
    kernel_sigma: float | Sequence[float] | None = None,
    k1: float | None = None,
    k2: float | None = None,
    covariance: str | None = None,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Multi-scale SSIM (higher is better, 1 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`.
        mask: optional region; at each scale it is carried by 2x average pooling and used as weights.
        weights: one exponent per scale (the number of scales is ``len(weights)``). Each side needs at
            least ``win_size * 2**(len(weights) - 1)`` voxels (176 for 5 scales and an 11-tap window); for
            smaller volumes pass fewer weights or a smaller ``win_size``.
        preset, kernel_type, win_size, kernel_sigma, k1, k2, covariance, empty_mask: as in :func:`ssim`.

    Returns:
        Tensor ``(B, C)`` of MS-SSIM values in ``[0, 1]``.
    """
    scale_weights = [float(w) for w in weights]
    if len(scale_weights) < 1 or any(w < 0 for w in scale_weights):
        raise ValueError(f"ms_ssim: weights must be a non-empty sequence of non-negative numbers, got {weights!r}.")
    levels = len(scale_weights)
    run = _setup(
        "ms_ssim",
        y_pred,
        y,
        spatial_dims,
        data_range,
        mask,
        empty_mask,
        preset,
        levels,
        kernel_type=kernel_type,
        win_size=win_size,
        kernel_sigma=kernel_sigma,
        k1=k1,
        k2=k2,
        covariance=covariance,
    )

    def compute(setup: _Setup) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = setup.low.dtype
        x_level, y_level, mask_weights = setup.y_pred, setup.y, setup.weights
        pool = F.avg_pool2d if setup.spatial_dims == 2 else F.avg_pool3d
        result = torch.ones(setup.y.shape[:2], dtype=dtype, device=setup.y.device)
        scored = None
        for level, exponent in enumerate(scale_weights):
            ssim_mean, cs_mean, level_scored = _ssim_and_cs(
                x_level,
                y_level,
                setup.low,
                setup.span,
                mask_weights,
                setup.windows,
                *setup.constants,
                "ms_ssim",
                empty_mask,
            )
            if level_scored is not None:
                scored = level_scored if scored is None else scored & level_scored
            term = ssim_mean if level == levels - 1 else cs_mean
            result = result * positive_power(term, exponent)
            if level < levels - 1:
                # pooling commutes with the affine intensity map, so raw images are pooled (in compute dtype)
                x_level = pool(x_level.to(dtype), kernel_size=2)
                y_level = pool(y_level.to(dtype), kernel_size=2)
                if mask_weights is not None:
                    mask_weights = pool_weights(mask_weights, pad_end=False)
        return result, scored

    return _with_float64_fallback(run, compute)


def _with_float64_fallback(
    run: _Setup, compute: Callable[[_Setup], tuple[torch.Tensor, torch.Tensor | None]]
) -> torch.Tensor:
    """Run ``compute``; if float32 overflowed (a non-finite score of an image with a non-empty region, from
    finite inputs: a prediction ~1e19 times outside the reference range), run it again in float64.
    Returns the scores in the inputs' compute dtype."""
    result, scored = compute(run)
    if run.low.dtype != torch.float64:
        bad = ~torch.isfinite(result)
        if scored is not None:
            bad &= scored
        if bool(bad.any()):
            weights = None if run.weights is None else run.weights.double()
            run = run._replace(low=run.low.double(), span=run.span.double(), weights=weights)
            result = compute(run)[0]
    return result.to(run.out_dtype)
