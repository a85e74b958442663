"""Point-wise error metrics: MAE, MSE, RMSE and PSNR, per image and channel, with masks."""

from __future__ import annotations

import torch

from .intensity import DataRange, IntensityPolicy, harmonize
from .masking import finalize_weighted, prepare_mask
from .safe_math import safe_sqrt
from .validation import check_finite, check_image_pair, compute_dtype

__all__ = ["mae", "mse", "psnr", "rmse"]

# float32 sums of squares below this may have lost terms to underflow (each term < 2^-126 is flushed)
_FLOAT32_TINY = 2.0**-100
# voxels per block of the unmasked error sums on the CPU (1 MB of float32): measured best of 64k-1M on 2 cores,
# for 2-D batches and 128^3 volumes alike. Not on CUDA: there each block is a kernel launch, and one pass over
# the whole batch is 10x faster (H100: 0.09 against 1.0 ms on 2x1x128^3)
_BLOCK = 262_144


def _error_sums(
    y_pred: torch.Tensor, y: torch.Tensor, power: int, weights: torch.Tensor | None, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor | float]:
    """Per image and channel ``sum(w |y_pred - y|**power)`` and ``sum(w)`` (or the voxel count), in float64.

    The elementwise work runs in ``dtype``; the ``(B, C)`` sums are returned in float64. The reductions are
    PyTorch's blocked (cascade) sums, accurate to a few float32 roundings of the result, where a norm
    (``torch.linalg.vector_norm``) accumulates sequentially and loses about 1e-4 on a 256x256 image.
    """
    grad = torch.is_grad_enabled() and (y_pred.requires_grad or y.requires_grad)
    if weights is None and not grad and y.device.type == "cpu" and y_pred.numel() > _BLOCK:
        return _blocked_error_sums(y_pred, y, power, dtype), float(y_pred[0, 0].numel())
    difference = y_pred.to(dtype) - y.to(dtype)
    if difference.requires_grad:  # in-place ops would discard what autograd needs
        values = difference.abs() if power == 1 else difference.square()
    else:
        values = difference.abs_() if power == 1 else difference.square_()
    shape = values.shape[:2]
    if weights is None:
        return values.reshape(*shape, -1).sum(-1).double(), float(values[0, 0].numel())
    weights = weights.to(dtype)
    numerator = (values * weights).reshape(*shape, -1).sum(-1)
    denominator = weights.reshape(*weights.shape[:2], -1).sum(-1).expand(shape)
    return numerator.double(), denominator.double()


def _blocked_error_sums(y_pred: torch.Tensor, y: torch.Tensor, power: int, dtype: torch.dtype) -> torch.Tensor:
    """``_error_sums`` without a mask or gradients, in blocks of about :data:`_BLOCK` voxels: one small buffer is
    reused, so no image-sized temporary is allocated (whose fresh pages cost more than the arithmetic once other
    work has run between calls) and the differences stay in cache. Partial sums are accumulated in float64."""
    rows = y_pred.shape[0] * y_pred.shape[1]
    pred, ref = y_pred.reshape(rows, -1), y.reshape(rows, -1)
    length = pred.shape[1]
    step = max(4096, _BLOCK // rows)
    buffer = torch.empty(rows, min(step, length), dtype=dtype, device=y.device)
    total = torch.zeros(rows, dtype=torch.float64, device=y.device)
    for start in range(0, length, step):
        block = buffer[:, : min(step, length - start)]
        torch.sub(pred[:, start : start + step].to(dtype), ref[:, start : start + step].to(dtype), out=block)
        total += (block.abs_() if power == 1 else block.square_()).sum(-1)
    return total.reshape(y_pred.shape[:2])


def _mean_error(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    power: int,
    spatial_dims: int | None,
    data_range: DataRange | None,
    mask: torch.Tensor | None,
    empty_mask: str,
    name: str,
) -> torch.Tensor:
    """Mean of ``|y_pred - y|**power`` over space (inside ``mask``), in raw or range-relative units; float64.

    Precision: float32 images are differenced and reduced in float32 with blocked sums (relative error of a
    few 1e-7), then everything else (the division by the count, the range, PSNR's logarithm) is done in
    float64. Where float32 cannot hold the result (a sum that overflows, e.g. intensities beyond ~1e19, or a
    sum of squares that underflows, e.g. intensities of ~1e-30) the sums are recomputed in float64, which
    holds every such value of float32 images. The inputs are checked for NaN/Inf through the result: any
    non-finite voxel makes a sum non-finite, and only then are the images examined (normalisation policies,
    whose clipping could remove such voxels, check them first). A policy's window and statistics are float64;
    images it maps (``each``, ``clip``) are differenced in the dtype they were mapped in.
    """
    y_pred, y, _ = check_image_pair(y_pred, y, spatial_dims, name, finite=False)
    dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, name, empty_mask, dtype)
    raw_pred, raw_y = y_pred, y
    span: torch.Tensor | float | None = None
    if isinstance(data_range, (int, float)) and not isinstance(data_range, bool) and 0 < data_range < float("inf"):
        span = float(data_range)  # a plain range: no window tensors needed
    elif data_range is not None:
        if isinstance(data_range, (str, IntensityPolicy)) and data_range != "reference":
            check_finite(y_pred, y, name)  # a policy's clipping could hide NaN/Inf voxels from the sums
        # the window (float64, statistics inside the mask) and a policy's per-image mapping and clipping
        y_pred, y, _, span, work = harmonize(y_pred, y, data_range, name, dtype, mask=weights)
        if y_pred is not raw_pred:  # mapped images: difference them in the dtype they were mapped in
            dtype = work
    numerator, denominator = _error_sums(y_pred, y, power, weights, dtype)
    if bool(_suspicious(numerator, denominator, float32_squares=dtype != torch.float64 and power == 2)):
        if dtype != torch.float64:
            numerator, denominator = _error_sums(y_pred, y, power, weights, torch.float64)
        if not bool(torch.isfinite(numerator).all()):
            check_finite(raw_pred, raw_y, name)  # raises on NaN/Inf input; otherwise the error overflows float64
    if weights is None:
        error = numerator / denominator
    else:
        error = finalize_weighted(numerator, denominator, name, "the mask", empty_mask)
    if isinstance(span, float):
        error = error / span**power
    elif span is not None:
        error = error / span.reshape(error.shape) ** power
    return error


def _suspicious(numerator: torch.Tensor, denominator: torch.Tensor | float, float32_squares: bool) -> torch.Tensor:
    """Whether some sum is non-finite (NaN/Inf input, or overflow) or, for float32 squares, so small that
    terms may have underflowed; one fused test in the common unmasked case."""
    if not float32_squares:
        return ~torch.isfinite(numerator).all()
    if isinstance(denominator, float):  # no mask: every image counts
        return ~((numerator >= _FLOAT32_TINY) & (numerator < float("inf"))).all()
    return (~torch.isfinite(numerator) | ((numerator < _FLOAT32_TINY) & (denominator > 0))).any()


def mae(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange | None = None,
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean absolute error (lower is better, 0 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: ``None`` reports the error in the images' own units; otherwise the error is divided by the
            window span of the intensity policy (``"reference"``, a number, ``(low, high)`` or a normalisation
            policy, whose statistics are taken inside ``mask`` and whose mapping/clipping applies to the images
            first), giving a fraction of the dynamic range comparable across volumes.
        mask: optional region ``(B|1, C|1, *spatial)``; the error is averaged inside it.
        empty_mask: ``"raise"`` or ``"nan"`` for images whose region is empty.

    Returns:
        ``(B, C)`` tensor, values in ``[0, inf)``.
    """
    return _mean_error(y_pred, y, 1, spatial_dims, data_range, mask, empty_mask, "mae").to(compute_dtype(y))


def mse(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange | None = None,
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean squared error (lower is better); arguments as in :func:`mae`. Returns ``(B, C)`` in ``[0, inf)``."""
    return _mean_error(y_pred, y, 2, spatial_dims, data_range, mask, empty_mask, "mse").to(compute_dtype(y))


def rmse(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange | None = None,
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Root mean squared error (lower is better); arguments as in :func:`mae`. Returns ``(B, C)``.

    The gradient at ``y_pred == y`` (where the square root is not differentiable) is taken as 0, the
    gradient of the minimum.
    """
    squared = _mean_error(y_pred, y, 2, spatial_dims, data_range, mask, empty_mask, "rmse")
    return (safe_sqrt(squared) if squared.requires_grad else squared.sqrt()).to(compute_dtype(y))


def psnr(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` in dB (higher is better, ``inf`` if identical).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy giving ``L`` (``"reference"``: ``max(y) - min(y)`` per image and channel;
            a number; or ``(low, high)``), see :mod:`monai_kcross.functional.intensity`.
        mask: optional region; the MSE is averaged inside it.
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor in dB (``inf`` for identical images; computed in float64 from the sums, so intensities
        anywhere in float32's range give the float64 value). The gradient at ``y_pred == y`` is taken as 0.
    """
    relative_mse = _mean_error(y_pred, y, 2, spatial_dims, data_range, mask, empty_mask, "psnr")
    if not relative_mse.requires_grad:
        return (-10.0 * torch.log10(relative_mse)).to(compute_dtype(y))
    positive = relative_mse > 0  # identical images (inf) and empty masks (NaN) get no gradient
    value = -10.0 * torch.log10(torch.where(positive, relative_mse, torch.ones_like(relative_mse)))
    value = torch.where(positive, value, -10.0 * torch.log10(relative_mse.detach()))
    return value.to(compute_dtype(y))
