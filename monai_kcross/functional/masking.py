"""Region-of-interest support shared by all metrics.

A mask restricts a metric to a region (a brain mask, a lesion label). Masks are treated as voxel weights in
``[0, 1]`` (binary masks are the common case): point-wise metrics average their error inside the region,
windowed and multi-scale metrics compute their local quality map on the whole image and average (or take
the deviation of) that map inside the region, with the mask carried onto each map's grid. An all-ones mask
therefore always gives exactly the unmasked score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .safe_math import safe_sqrt
from .validation import as_plain_tensor

__all__ = [
    "EMPTY_MASK_POLICIES",
    "centred",
    "crop_weights",
    "finalize_weighted",
    "nan_where_empty",
    "pool_weights",
    "prepare_mask",
    "weighted_mean",
    "weighted_std",
]

EMPTY_MASK_POLICIES = ("raise", "nan")


def prepare_mask(
    mask: torch.Tensor | None,
    image: torch.Tensor,
    name: str = "metric",
    empty_mask: str = "raise",
    dtype: torch.dtype | None = None,
) -> torch.Tensor | None:
    """Validate a mask against an image and return it as float weights.

    Args:
        mask: ``None``, or a bool/0-1 tensor of shape ``(B|1, C|1, *spatial)`` or ``spatial`` (one mask for
            the whole batch). Float masks are read as weights and must lie in ``[0, 1]``.
        image: the image the mask refers to, shape ``(B, C, *spatial)``.
        name: metric name for error messages.
        empty_mask: ``"raise"`` to reject masks with no voxel for some image, ``"nan"`` to let those images
            score NaN (MONAI's reductions then skip them, see ``get_not_nans``).
        dtype: dtype of the returned weights.

    Returns:
        ``None`` or weights of shape ``(B|1, C|1, *spatial)`` on ``image.device``.

    Raises:
        ValueError: wrong shape, NaN/Inf, values outside ``[0, 1]`` or an empty mask (with ``empty_mask="raise"``).
    """
    if empty_mask not in EMPTY_MASK_POLICIES:
        raise ValueError(f"{name}: empty_mask must be one of {EMPTY_MASK_POLICIES}, got {empty_mask!r}.")
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name}: mask must be a torch.Tensor or None, got {type(mask).__name__}.")
    spatial = tuple(image.shape[2:])
    if tuple(mask.shape) == spatial:
        mask = mask.reshape(1, 1, *spatial)
    ok = (
        mask.ndim == image.ndim
        and tuple(mask.shape[2:]) == spatial
        and mask.shape[0] in (1, image.shape[0])
        and mask.shape[1] in (1, image.shape[1])
    )
    if not ok:
        raise ValueError(
            f"{name}: mask of shape {tuple(mask.shape)} does not match image of shape {tuple(image.shape)}; "
            f"expected (B|1, C|1, {', '.join(map(str, spatial))}) or the spatial shape {spatial}."
        )
    if mask.is_complex():
        raise ValueError(f"{name}: mask must be real-valued.")
    weights = as_plain_tensor(mask).to(device=image.device, dtype=dtype or torch.float32)
    if mask.is_floating_point():
        if not bool(torch.isfinite(weights).all()):
            raise ValueError(f"{name}: mask contains NaN or Inf values.")
    if bool(((weights < 0) | (weights > 1)).any()):
        raise ValueError(
            f"{name}: mask values must be 0/1 (or weights in [0, 1]), got values in "
            f"[{weights.min().item():g}, {weights.max().item():g}]; pass a boolean mask, e.g. `label > 0`."
        )
    totals = weights.reshape(weights.shape[0], -1).sum(-1)
    if empty_mask == "raise" and bool((totals <= 0).any()):
        empty = (totals <= 0).nonzero().flatten().tolist()
        raise ValueError(
            f"{name}: mask is empty (no voxel inside the region) for batch element(s) {empty}; "
            "pass empty_mask='nan' to score such images as NaN instead."
        )
    return weights


def crop_weights(weights: torch.Tensor, window_sizes: tuple[int, ...]) -> torch.Tensor:
    """Carry weights onto the grid of a 'valid' filter with the given window sizes.

    Output voxel ``i`` of a ``k``-tap valid filter is centred on input voxel ``i + (k - 1) // 2``.
    """
    index = [slice(None), slice(None)]
    for k, s in zip(window_sizes, weights.shape[2:]):
        start = (k - 1) // 2
        index.append(slice(start, start + s - k + 1))
    return weights[tuple(index)]


def pool_weights(weights: torch.Tensor, pad_end: bool = True) -> torch.Tensor:
    """Carry mask weights to the next coarser level of a dyadic pyramid (2x average pooling).

    Odd-sized axes are padded at the far end by replication (``pad_end=True``, the level then has
    ``ceil(n / 2)`` voxels, matching zero-padded image pooling) or cropped (``pad_end=False``, ``floor(n / 2)``).
    Replication keeps an all-ones mask all ones, so masked and unmasked scores agree.
    """
    spatial = weights.shape[2:]
    if pad_end and any(s % 2 for s in spatial):
        pad: list[int] = []
        for s in reversed(spatial):
            pad += [0, s % 2]
        weights = F.pad(weights, pad, mode="replicate")
    pool = F.avg_pool2d if len(spatial) == 2 else F.avg_pool3d
    return pool(weights, kernel_size=2, stride=2)


def finalize_weighted(
    numerator: torch.Tensor, denominator: torch.Tensor, name: str, region: str, empty_mask: str
) -> torch.Tensor:
    """Divide, turning empty regions into NaN (``empty_mask="nan"``), 0 (``"zero"``: for descriptors where an empty
    region means no deviation) or a ``ValueError`` naming the region (``"raise"``).

    Empty regions get a constant, so no NaN reaches the gradient of the other entries (``0 / 0`` would
    back-propagate NaN even where the caller discards the value).
    """
    empty = denominator <= 0
    if empty_mask == "raise":
        if bool(empty.any()):  # the only host synchronisation, and only where an empty region is an error
            where = empty.nonzero().tolist()
            raise ValueError(
                f"{name}: the mask has no voxel inside {region} for (batch, channel) {where}; "
                "use a larger region, a smaller window, or empty_mask='nan'."
            )
        return numerator / denominator
    ratio = numerator / denominator.masked_fill(empty, 1.0)
    return ratio.masked_fill(empty, 0.0 if empty_mask == "zero" else float("nan"))


def weighted_mean(
    values: torch.Tensor,
    weights: torch.Tensor | None,
    name: str = "metric",
    region: str = "the image",
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean of ``values`` ``(B, C, *spatial)`` (real or complex) over space, weighted by ``weights`` (the same
    shape, or 1 along the batch or channel axis; ``None``: plain mean); returns ``(B, C)``.

    The package's one weighted mean (metrics, K-CROSS descriptors, DISTS statistics, artefact scores). A region
    whose weights sum to 0 raises a ``ValueError`` naming ``name`` and ``region`` (``empty_mask="raise"``) or gives
    a constant NaN (``"nan"``) or 0 (``"zero"``, internal) that passes no NaN into the gradient of the other entries.
    """
    dims = tuple(range(2, values.ndim))
    if weights is None:
        return values.mean(dims)
    if weights.ndim != values.ndim or any(w not in (1, v) for w, v in zip(weights.shape, values.shape)):
        raise ValueError(f"{name}: weights of shape {tuple(weights.shape)} do not fit values {tuple(values.shape)}.")
    w = weights.to(values.real.dtype)
    numerator = (values * w).sum(dims)
    return finalize_weighted(numerator, w.sum(dims).expand(numerator.shape), name, region, empty_mask)


def weighted_std(
    values: torch.Tensor,
    weights: torch.Tensor | None,
    name: str = "metric",
    region: str = "the image",
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Population standard deviation over space, weighted by ``weights``; returns ``(B, C)``.

    Unweighted this is ``sqrt(mean((v - mean(v))^2))``, the deviation pooling of GMSD (Xue et al. 2014, eq. 8).
    Its gradient at zero deviation (a constant map, e.g. identical images in GMSD) is 0.
    """
    deviation = centred(values, weights, name, region, empty_mask).square()
    return safe_sqrt(weighted_mean(deviation, weights, name, region, empty_mask))


def centred(
    values: torch.Tensor,
    weights: torch.Tensor | None,
    name: str = "metric",
    region: str = "the image",
    empty_mask: str = "raise",
) -> torch.Tensor:
    """``values`` ``(B, C, *spatial)`` minus their weighted spatial mean (:func:`weighted_mean`).

    Images whose region is empty (``empty_mask="nan"``; their results are NaN anyway) are returned unchanged,
    which keeps the NaN mean out of the gradient of the other images.
    """
    mean = weighted_mean(values, weights, name, region, empty_mask)
    centre = mean.masked_fill(mean.isnan(), 0.0)
    return values - centre.reshape(*mean.shape, *([1] * (values.ndim - 2)))


def nan_where_empty(score: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Set the ``(N, C)`` scores of 2-D images whose weights ``(N, 1|C, H, W)`` are all zero to NaN.

    Slice-wise metrics use it so that slices without mask voxels are skipped by the slice average.
    """
    if weights is None:
        return score
    region = weights.sum(dim=(-2, -1)).expand_as(score)
    return torch.where(region > 0, score, torch.full_like(score, float("nan")))
