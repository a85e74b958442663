"""Input checks shared by every full-reference metric.

Every public functional metric calls :func:`check_image_pair` first, so that bad input fails with a
``ValueError`` that names the problem instead of producing a silently wrong number.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["all_finite", "as_plain_tensor", "check_finite", "check_image_pair", "check_positive", "compute_dtype"]


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Floating dtype the metrics compute in: float64 stays float64, everything else uses float32.

    Half precision (float16/bfloat16) inputs are promoted because window statistics such as
    ``E[x^2] - E[x]^2`` lose all significant digits in 11-bit mantissas.
    """
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_image_pair(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    name: str = "metric",
    *,
    finite: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate a prediction/reference pair; return them as plain tensors with the number of spatial dims.

    Args:
        y_pred: synthesized image, shape ``(B, C, H, W)`` or ``(B, C, H, W, D)``.
        y: reference image of the same shape.
        spatial_dims: expected number of spatial dimensions (2 or 3); ``None`` infers it from ``y.ndim``.
        name: metric name used in error messages.
        finite: check for NaN/Inf values here; ``False`` for callers that detect them more cheaply (through a
            result that any non-finite voxel makes non-finite) and then call :func:`check_finite`.

    Returns:
        ``(y_pred, y, spatial_dims)``: the inputs as plain ``torch.Tensor`` (a MONAI ``MetaTensor`` is
        unwrapped, so its metadata bookkeeping does not slow down the arithmetic) and 2 or 3.

    Raises:
        ValueError: on non-tensor input, shape or dimensionality mismatch, complex or non-numeric dtype,
            inputs on different devices, empty tensors or NaN/Inf values.
    """
    for arg, value in (("y_pred", y_pred), ("y", y)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name}: `{arg}` must be a torch.Tensor, got {type(value).__name__}.")
        if value.is_complex():
            raise ValueError(f"{name}: `{arg}` is complex; pass magnitude images (use abs() for k-space data).")
    if y_pred.shape != y.shape:
        raise ValueError(
            f"{name}: shape mismatch, y_pred has shape {tuple(y_pred.shape)} but y has shape {tuple(y.shape)}."
        )
    if y_pred.device != y.device:
        raise ValueError(f"{name}: y_pred is on {y_pred.device} but y is on {y.device}.")
    if spatial_dims is None:
        if y.ndim not in (4, 5):
            raise ValueError(
                f"{name}: expected a batch-first (B, C, H, W) or (B, C, H, W, D) tensor, got {y.ndim}-D input "
                f"of shape {tuple(y.shape)}."
            )
        spatial_dims = y.ndim - 2
    if spatial_dims not in (2, 3):
        raise ValueError(f"{name}: spatial_dims must be 2 or 3, got {spatial_dims}.")
    if y.ndim != spatial_dims + 2:
        layout = "(B, C, H, W)" if spatial_dims == 2 else "(B, C, H, W, D)"
        raise ValueError(
            f"{name}: spatial_dims={spatial_dims} expects {layout} input, got {y.ndim}-D input of shape "
            f"{tuple(y.shape)}."
        )
    if y.numel() == 0:
        raise ValueError(f"{name}: empty input of shape {tuple(y.shape)}.")
    if finite:
        check_finite(y_pred, y, name)
    return as_plain_tensor(y_pred), as_plain_tensor(y), spatial_dims


def check_finite(y_pred: torch.Tensor, y: torch.Tensor, name: str = "metric") -> None:
    """Raise a ``ValueError`` naming the argument if ``y_pred`` or ``y`` holds NaN or Inf values.

    One host-device synchronisation in the common case: both sums are tested together, and only a non-finite
    one leads to the per-argument (exact) checks.
    """
    if y_pred.is_floating_point() and y.is_floating_point():
        totals = torch.stack([_float_sum(y_pred), _float_sum(y).to(_float_sum_dtype(y_pred))])
        if bool(torch.isfinite(totals).all()):
            return
    for arg, value in (("y_pred", y_pred), ("y", y)):
        if not all_finite(value):
            raise ValueError(f"{name}: `{arg}` contains NaN or Inf values.")


def as_plain_tensor(x: Any) -> torch.Tensor:
    """Return ``x`` as a plain ``torch.Tensor``: a subclass such as MONAI's ``MetaTensor`` as a view without its
    metadata (no copy), anything else (NumPy arrays, nested lists) through ``torch.as_tensor``. The package's one
    unwrapper: metadata bookkeeping on every operation would slow the arithmetic down."""
    if type(x) is torch.Tensor:
        return x
    tensor = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return tensor if type(tensor) is torch.Tensor else tensor.as_subclass(torch.Tensor)


def all_finite(x: torch.Tensor) -> bool:
    """Whether a tensor holds no NaN/Inf, with one cheap reduction in the common (finite) case.

    Any NaN/Inf makes the sum non-finite; a non-finite sum of finite values (overflow) is told apart by the
    exact elementwise check, so the answer is always exact.
    """
    if not x.is_floating_point():
        return True
    if bool(torch.isfinite(_float_sum(x))):
        return True
    return bool(torch.isfinite(x).all())


def _float_sum_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.element_size() < 4 else x.dtype


def _float_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of a floating tensor (half precision summed in float32): non-finite if any element is."""
    return x.sum(dtype=_float_sum_dtype(x))


def check_positive(value: float, what: str, name: str = "metric") -> None:
    """Raise a ``ValueError`` unless ``value`` is a finite number greater than zero."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value != value:
        raise ValueError(f"{name}: {what} must be a number > 0, got {value!r}.")
    if value == float("inf"):
        raise ValueError(f"{name}: {what} must be finite, got {value!r}.")
