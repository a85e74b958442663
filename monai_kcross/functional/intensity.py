"""The intensity policy: how raw image intensities are mapped before a metric is computed.

MR intensities have no fixed unit: a T1w volume may span 0-4000, a z-scored one -1.5-6, a network output
-1-1. PSNR, SSIM and every metric with a stability constant depend on the *dynamic range* ``L`` they are
told, and mis-stating it is the most common silent error in medical full-reference IQA. This package
therefore makes the range explicit. ``data_range`` is one of

* ``"reference"`` (the default): per image and channel, the reference is mapped onto ``[0, 1]`` by
  ``(x - min(y)) / (max(y) - min(y))`` and the prediction is mapped with the *same* affine map (it is not
  clipped). ``L = max(y) - min(y)`` of the reference only; the prediction never influences the range.
* a number ``L > 0``: images are divided by ``L`` (intensities are assumed to start at 0, the convention of
  scikit-image, MONAI and piq). ``data_range=1.0`` reproduces MONAI's default, ``255`` 8-bit images.
* a pair ``(low, high)``: a fixed intensity window, e.g. ``(-1000, 1000)`` for CT in HU, mapped onto
  ``[0, 1]``.

Differences to other libraries: MONAI's ``SSIMMetric``/``PSNRMetric`` assume ``data_range=1.0`` whatever the
data (for unnormalised MRI this makes the SSIM constants negligible and PSNR meaningless); scikit-image
refuses floating-point images without an explicit ``data_range``; fastMRI uses ``max(y)`` of the volume.
``data_range=(0, y.max())`` reproduces fastMRI for non-negative magnitude images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["DataRange", "intensity_window", "to_unit_range", "unit_range_dtype"]

DataRange = float | int | str | Sequence[float]

# float32 maps x -> (x - low) / span exactly enough, without overflow or underflow, inside these bounds
_FLOAT32_SPAN_BOUNDS = (2.0**-100, 2.0**100)


def intensity_window(
    y: torch.Tensor, data_range: DataRange, name: str = "metric", dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``(low, span)`` of the intensity window for each image and channel.

    Args:
        y: reference image, shape ``(B, C, *spatial)``.
        data_range: ``"reference"``, a number ``L > 0`` or a pair ``(low, high)``; see the module docstring.
        name: metric name for error messages.
        dtype: dtype of the returned tensors (defaults to ``y``'s floating dtype).

    Returns:
        ``low`` and ``span``, each of shape ``(B, C, 1, ..., 1)``, broadcastable against ``y``. Both are
        computed in float64 and then cast, so a window wider than float32's range (``(-3e38, 3e38)``) is
        exact with ``dtype=torch.float64``.

    Raises:
        ValueError: for an unknown policy, ``data_range <= 0``, ``high <= low`` or a constant reference when
            ``data_range="reference"``.
    """
    dtype = dtype or (y.dtype if y.is_floating_point() else torch.float32)
    bshape = (*y.shape[:2], *([1] * (y.ndim - 2)))
    if isinstance(data_range, str):
        if data_range != "reference":
            raise ValueError(
                f"{name}: data_range must be 'reference', a number > 0 or a (low, high) pair, got {data_range!r}."
            )
        flat = y.detach().reshape(*y.shape[:2], -1)
        low = flat.amin(dim=-1).to(torch.float64)
        span = flat.amax(dim=-1).to(torch.float64) - low
        if bool((span <= 0).any()):
            bad = [tuple(i) for i in (span <= 0).nonzero().tolist()]
            raise ValueError(
                f"{name}: data_range='reference' needs a non-constant reference, but the reference is constant "
                f"for (batch, channel) {bad}; pass a numeric data_range or (low, high) instead."
            )
        return low.to(dtype).reshape(bshape), span.to(dtype).reshape(bshape)
    if isinstance(data_range, Sequence):
        if len(data_range) != 2:
            raise ValueError(f"{name}: a data_range window must be (low, high), got {data_range!r}.")
        low_v, high_v = (float(v) for v in data_range)
        if not high_v > low_v:
            raise ValueError(f"{name}: data_range window needs high > low, got {data_range!r}.")
        low_t, span_t = low_v, high_v - low_v
    elif isinstance(data_range, (int, float)) and not isinstance(data_range, bool):
        if not (data_range > 0 and data_range != float("inf")):
            raise ValueError(f"{name}: data_range must be > 0 and finite, got {data_range!r}.")
        low_t, span_t = 0.0, float(data_range)
    else:
        raise ValueError(
            f"{name}: data_range must be 'reference', a number > 0 or a (low, high) pair, got {data_range!r}."
        )
    low = torch.full(bshape, low_t, dtype=dtype, device=y.device)
    span = torch.full(bshape, span_t, dtype=dtype, device=y.device)
    return low, span


def to_unit_range(
    y_pred: torch.Tensor, y: torch.Tensor, data_range: DataRange, name: str = "metric", dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map both images with the reference's intensity window so that the window becomes ``[0, 1]``.

    Args:
        y_pred: synthesized image ``(B, C, *spatial)``.
        y: reference image of the same shape.
        data_range: intensity policy, see the module docstring.
        name: metric name for error messages.
        dtype: compute dtype of the result.

    Returns:
        ``(y_pred', y')`` in ``dtype``; ``y'`` lies in ``[0, 1]`` for ``data_range="reference"``. With
        ``data_range=1`` these are the inputs themselves when they already have ``dtype`` (no copy).
    """
    dtype = dtype or (y.dtype if y.is_floating_point() else torch.float32)
    low, span = intensity_window(y, data_range, name=name, dtype=torch.float64)
    if isinstance(data_range, (int, float)) and _FLOAT32_SPAN_BOUNDS[0] <= data_range <= _FLOAT32_SPAN_BOUNDS[1]:
        # a plain range L (the window starts at 0): one division, or none for L = 1 (the images are returned)
        if data_range == 1:
            return y_pred.to(dtype), y.to(dtype)
        return y_pred.to(dtype) / float(data_range), y.to(dtype) / float(data_range)
    work = unit_range_dtype(low, span, dtype)
    low, span = low.to(work), span.to(work)
    return ((y_pred.to(work) - low) / span).to(dtype), ((y.to(work) - low) / span).to(dtype)


def unit_range_dtype(low: torch.Tensor, span: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
    """The dtype in which to map intensities onto the window ``(low, low + span)``: ``dtype``, or float64 where
    float32 would overflow or underflow (windows narrower than ~1e-30 or wider than ~1e30, e.g. a reference
    spanning ``(-3e38, 3e38)`` or ``(0, 1e-40)``). ``low`` and ``span`` should be float64.
    """
    if dtype == torch.float64:
        return dtype
    small, large = _FLOAT32_SPAN_BOUNDS
    safe = (span >= small) & (span <= large) & (low.abs() <= large)
    return dtype if bool(safe.all()) else torch.float64
