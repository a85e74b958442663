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

**Normalisation policies** (:class:`IntensityPolicy`) derive the window from image statistics, optionally
inside the metric's mask (``mask=``): a percentile window (BraSyn: 0.5-99.5 %, clipped), z-score
(``low = mean``, ``span = std``), median/IQR, min-max of the masked region, and fastMRI's volume maximum
(``low = 0``, ``span = max`` of the whole reference). They are passed as ``data_range`` -- one argument that
every full-reference metric already takes, so no metric signature changes and a policy can never be combined
with a contradicting range -- either as objects or by their canonical names (``"percentile"``, ``"zscore"``,
``"median_iqr"``, ``"minmax"``, ``"volume_max"``; :func:`parse_data_range` reads every name that
:func:`intensity_policy_name` writes). By default both images are mapped with the reference's statistics,
like ``"reference"``; ``each=True`` maps the prediction with its own statistics (Dohmen et al. 2025, BraSyn
normalise every image on its own), which removes global intensity errors from the score. For z-score and
median/IQR the "unit range" is one standard deviation (one IQR): the metric constants then refer to it.
Record :func:`intensity_policy_name` with every score, so that numbers from different policies are never
compared by accident.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .safe_math import safe_sqrt

__all__ = [
    "INTENSITY_POLICIES",
    "DataRange",
    "Harmonized",
    "IntensityPolicy",
    "harmonize",
    "intensity_policy_name",
    "intensity_window",
    "parse_data_range",
    "to_unit_range",
    "unit_range_dtype",
]

INTENSITY_POLICIES = ("percentile", "zscore", "median_iqr", "minmax", "volume_max")

# float32 maps x -> (x - low) / span exactly enough, without overflow or underflow, inside these bounds
_FLOAT32_SPAN_BOUNDS = (2.0**-100, 2.0**100)


@dataclass(frozen=True)
class IntensityPolicy:
    """An intensity normalisation computed from image statistics (see the module docstring).

    Attributes:
        kind: ``"percentile"`` (window ``[P_lower, P_upper]``), ``"zscore"`` (``mean``, ``std``), ``"median_iqr"``
            (``median``, ``P75 - P25``), ``"minmax"`` (``min``, ``max - min``) or ``"volume_max"`` (``0``,
            ``max``; fastMRI, always over the whole reference, mask or not).
        lower: lower percentile of ``"percentile"`` (0-100).
        upper: upper percentile of ``"percentile"`` (0-100).
        each: map the prediction with its own statistics instead of the reference's.
        clip: clip both images to the window after mapping (the default of ``"percentile"``).
    """

    kind: str
    lower: float = 0.5
    upper: float = 99.5
    each: bool = False
    clip: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in INTENSITY_POLICIES:
            raise ValueError(f"data_range: unknown intensity policy {self.kind!r}; choose one of {INTENSITY_POLICIES}.")
        if not 0 <= self.lower < self.upper <= 100:
            raise ValueError(f"data_range: percentiles need 0 <= lower < upper <= 100, got {self.lower}, {self.upper}.")
        if self.clip is None:
            object.__setattr__(self, "clip", self.kind == "percentile")

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``percentile(0.5,99.5,clip)`` or ``zscore(each)``; read by :func:`parse_data_range`."""
        options = [f"{self.lower:g}", f"{self.upper:g}"] if self.kind == "percentile" else []
        if self.clip != (self.kind == "percentile"):
            options.append("clip" if self.clip else "noclip")
        elif self.clip:
            options.append("clip")
        if self.each:
            options.append("each")
        return f"{self.kind}({','.join(options)})" if options else self.kind


DataRange = float | int | str | Sequence[float] | IntensityPolicy

_NAME = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def parse_data_range(text: str | float | int | Sequence[float] | IntensityPolicy) -> DataRange:
    """Read a ``data_range`` from text (a CLI option, a ``scores.csv`` column); other values pass unchanged.

    Accepts ``"reference"``, a number (``"255"``), ``"window(low,high)"`` and every policy name written by
    :func:`intensity_policy_name` (e.g. ``"percentile(0.5,99.5,clip)"``, ``"zscore(each)"``; a trailing
    ``"@mask"`` is ignored: whether statistics are taken inside a mask depends on the mask passed).
    """
    if not isinstance(text, str):
        return text
    body = text.strip().removesuffix("@mask")
    if body == "reference":
        return body
    try:
        return float(body)
    except ValueError:
        pass
    match = _NAME.match(body)
    if match is None:
        raise ValueError(f"data_range: cannot read {text!r}.")
    kind, arguments = match.group(1), [a.strip() for a in (match.group(2) or "").split(",") if a.strip()]
    if kind == "window":
        if len(arguments) != 2:
            raise ValueError(f"data_range: a window needs two numbers, got {text!r}.")
        return (float(arguments[0]), float(arguments[1]))
    if kind not in INTENSITY_POLICIES:
        raise ValueError(
            f"data_range must be 'reference', a number > 0, a (low, high) pair or an intensity policy "
            f"{INTENSITY_POLICIES}, got {text!r}."
        )
    flags = {a for a in arguments if not _is_number(a)}
    numbers = [float(a) for a in arguments if _is_number(a)]
    unknown = flags - {"clip", "noclip", "each"}
    if unknown or (numbers and (kind != "percentile" or len(numbers) != 2)):
        raise ValueError(f"data_range: cannot read the options of {text!r}.")
    clip = True if "clip" in flags else False if "noclip" in flags else None
    return IntensityPolicy(kind, *(numbers or (0.5, 99.5)), each="each" in flags, clip=clip)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def intensity_policy_name(data_range: DataRange, masked: bool = False) -> str:
    """Canonical name of an intensity policy, for ``scores.csv``/``summary.json`` beside every score.

    ``"reference"``, ``"window(0,255)"`` (a number ``L`` is the window ``(0, L)``), ``"window(-1000,1000)"``, or
    the policy's :attr:`IntensityPolicy.name`, with ``"@mask"`` appended when ``masked`` and the policy's
    statistics are taken inside the mask (every policy but ``"reference"``, fixed windows and ``volume_max``).
    """
    policy = _as_policy(parse_data_range(data_range), "intensity_policy_name")
    if isinstance(policy, IntensityPolicy):
        return policy.name + ("@mask" if masked and policy.kind != "volume_max" else "")
    if policy == "reference":
        return "reference"
    low, high = (0.0, float(policy)) if isinstance(policy, (int, float)) else (float(v) for v in policy)
    return f"window({low:g},{high:g})"


def _as_policy(data_range: DataRange, name: str) -> DataRange:
    """Resolve policy names given as strings; validate the other forms lightly."""
    if isinstance(data_range, str) and data_range != "reference":
        for kind in INTENSITY_POLICIES:
            if data_range == kind or data_range.startswith(kind + "("):
                return parse_data_range(data_range)
        raise ValueError(
            f"{name}: data_range must be 'reference', a number > 0, a (low, high) pair or an intensity policy "
            f"{INTENSITY_POLICIES}, got {data_range!r}."
        )
    return data_range


def intensity_window(
    y: torch.Tensor,
    data_range: DataRange,
    name: str = "metric",
    dtype: torch.dtype | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``(low, span)`` of the intensity window for each image and channel.

    Args:
        y: reference image, shape ``(B, C, *spatial)``.
        data_range: ``"reference"``, a number ``L > 0`` or a pair ``(low, high)``; see the module docstring.
        name: metric name for error messages.
        dtype: dtype of the returned tensors (defaults to ``y``'s floating dtype).
        mask: optional weights ``(B|1, C|1, *spatial)`` (from ``prepare_mask``); an :class:`IntensityPolicy` takes
            its statistics over the voxels with weight > 0 (the other policies ignore it).

    Returns:
        ``low`` and ``span``, each of shape ``(B, C, 1, ..., 1)``, broadcastable against ``y``. Both are
        computed in float64 (a policy's statistics included) and then cast, so a window wider than float32's
        range (``(-3e38, 3e38)``) is exact with ``dtype=torch.float64``. The window is a constant for autograd.
        A policy's window is NaN for images whose mask is empty (allowed by ``empty_mask="nan"``).

    Raises:
        ValueError: for an unknown policy, ``data_range <= 0``, ``high <= low`` or a constant reference when
            ``data_range="reference"``.
    """
    dtype = dtype or (y.dtype if y.is_floating_point() else torch.float32)
    bshape = (*y.shape[:2], *([1] * (y.ndim - 2)))
    data_range = _as_policy(data_range, name)
    if isinstance(data_range, IntensityPolicy):
        low, span = _policy_window(y.detach(), data_range, mask, name)
        return low.to(dtype).reshape(bshape), span.to(dtype).reshape(bshape)
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


def _quantiles(values: torch.Tensor, inside: torch.Tensor | None, qs: Sequence[float]) -> list[torch.Tensor]:
    """Percentiles (0-100, NumPy's linear interpolation) of each row of ``(N, V)`` over the voxels ``inside``
    (all of them for ``None``), in float64. The voxels are sorted in their own dtype (the order is exact) and
    only the interpolation is done in float64."""
    if inside is None:
        ordered = values.sort(dim=-1).values
        count = torch.full((values.shape[0], 1), values.shape[-1], dtype=torch.long, device=values.device)
    else:
        ordered = torch.where(inside, values, torch.full_like(values, math.inf)).sort(dim=-1).values
        count = inside.sum(dim=-1, keepdim=True).clamp_min(1)
    result = []
    for q in qs:
        position = (count - 1).to(torch.float64) * (q / 100.0)
        below = position.floor().long()
        above = torch.minimum(below + 1, count - 1)
        fraction = position - below.to(torch.float64)
        low_v = ordered.gather(-1, below).to(torch.float64)
        high_v = ordered.gather(-1, above).to(torch.float64)
        result.append((low_v + fraction * (high_v - low_v)).squeeze(-1))
    return result


def _policy_window(
    y: torch.Tensor, policy: IntensityPolicy, mask: torch.Tensor | None, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(low, span)`` of a statistics policy for each image and channel, ``(B, C)`` each, in float64.

    Differentiable in ``y`` (callers detach the reference); NaN for images whose mask is empty (with a finite
    gradient for the others); a constant region raises. Sums and moments are taken in float64, so intensities
    anywhere in float32's range give finite statistics.
    """
    batch, channels = y.shape[:2]
    flat = y.reshape(batch * channels, -1)
    if not flat.is_floating_point():
        flat = flat.to(torch.float64)
    weights = inside = empty = None
    if mask is not None and policy.kind != "volume_max":
        weights = mask.detach().expand(batch, channels, *y.shape[2:]).reshape(batch * channels, -1)
        weights = weights.to(torch.float64)
        inside = weights > 0
        empty = ~inside.any(dim=-1)
    if policy.kind == "volume_max":
        low = torch.zeros(batch * channels, dtype=torch.float64, device=y.device)
        span = flat.amax(dim=-1).to(torch.float64)
    elif policy.kind == "minmax":
        if inside is None:
            smallest, largest = flat.amin(dim=-1), flat.amax(dim=-1)
        else:
            smallest = torch.where(inside, flat, torch.full_like(flat, math.inf)).amin(dim=-1)
            largest = torch.where(inside, flat, torch.full_like(flat, -math.inf)).amax(dim=-1)
        low = smallest.to(torch.float64)
        span = largest.to(torch.float64) - low
    elif policy.kind == "zscore":
        values = flat.to(torch.float64)
        if weights is None:
            variance, low = torch.var_mean(values, dim=-1, correction=0)
        else:
            total = weights.sum(dim=-1).clamp_min(torch.finfo(torch.float64).tiny)
            low = (weights * values).sum(dim=-1) / total
            variance = (weights * (values - low[:, None]).square()).sum(dim=-1) / total
        span = safe_sqrt(variance)
    elif policy.kind == "median_iqr":
        low, q25, q75 = _quantiles(flat, inside, (50.0, 25.0, 75.0))
        span = q75 - q25
    else:  # percentile
        low, high = _quantiles(flat, inside, (policy.lower, policy.upper))
        span = high - low
    if empty is not None and bool(empty.any()):
        low = low.masked_fill(empty, math.nan)
        span = span.masked_fill(empty, math.nan)
    if bool((span <= 0).any()):
        bad = [tuple(i) for i in (span <= 0).view(batch, channels).nonzero().tolist()]
        raise ValueError(
            f"{name}: data_range={policy.name!r} needs a non-constant reference, but the reference is "
            f"constant (inside the mask) for (batch, channel) {bad}."
        )
    return low.view(batch, channels), span.view(batch, channels)


class Harmonized(NamedTuple):
    """Images prepared by :func:`harmonize`, with the reference's window and the dtype to map them in."""

    y_pred: torch.Tensor
    y: torch.Tensor
    low: torch.Tensor
    span: torch.Tensor
    dtype: torch.dtype


def harmonize(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    data_range: DataRange,
    name: str = "metric",
    dtype: torch.dtype | None = None,
    mask: torch.Tensor | None = None,
) -> Harmonized:
    """Resolve the reference's window and apply the image-dependent parts of a policy, in the reference's units.

    For an :class:`IntensityPolicy` with ``each=True`` the prediction is mapped with its own statistics (their
    dependence on ``y_pred`` is part of the gradient) and back with the reference's, so that the reference's
    window applies to both; with ``clip`` both images are clipped to the reference's window. Every other
    policy returns the images unchanged (not copied). Callers apply the returned window (of the *original*
    reference: clipping moves percentiles) to both returned images (SSIM, the point-wise errors, the unit-range
    map of :func:`to_unit_range`), which honours every policy.

    Args:
        y_pred, y: images ``(B, C, *spatial)``.
        data_range, name, mask: as for :func:`intensity_window`.
        dtype: the compute dtype (defaults to ``y``'s floating dtype).

    Returns:
        ``(y_pred', y', low, span, dtype')``: the images (in ``dtype'``, or unchanged), the reference's window
        ``(B, C, 1, ..., 1)`` in float64, and ``dtype'``, the dtype to map in: ``dtype``, or float64 where a window
        is beyond float32's safe range (:func:`unit_range_dtype`). Images whose mask is empty (allowed by
        ``empty_mask="nan"``; their scores are NaN) get the neutral window ``(0, 1)``, which keeps NaN out of
        the others' gradients.
    """
    dtype = dtype or (y.dtype if y.is_floating_point() else torch.float32)
    data_range = _as_policy(data_range, name)
    low, span = intensity_window(y, data_range, name, torch.float64, mask)
    empty = None
    if isinstance(data_range, IntensityPolicy) and data_range.kind != "volume_max" and mask is not None:
        empty = (mask.detach().reshape(*mask.shape[:2], -1) <= 0).all(dim=-1)
        empty = empty.reshape(*empty.shape, *([1] * (y.ndim - 2)))
        low, span = low.masked_fill(empty, 0.0), span.masked_fill(empty, 1.0)
    work = unit_range_dtype(low, span, dtype)
    if not isinstance(data_range, IntensityPolicy) or not (data_range.each or data_range.clip):
        return Harmonized(y_pred, y, low, span, work)
    if data_range.each:
        low_p, span_p = _policy_window(y_pred, data_range, mask, f"{name} (prediction)")
        low_p, span_p = low_p.view(low.shape), span_p.view(span.shape)
        if empty is not None:
            low_p, span_p = low_p.masked_fill(empty, 0.0), span_p.masked_fill(empty, 1.0)
        work = torch.promote_types(work, unit_range_dtype(low_p, span_p, dtype))
        # y_pred * scale + offset: exactly y_pred when its statistics equal the reference's (no rounding at the
        # optimum, where the gradient of MAE/RMSE/PSNR must be 0)
        scale = span / span_p
        y_pred = y_pred.to(work) * scale.to(work) + (low - low_p * scale).to(work)
    if data_range.clip:
        smallest, largest = low.to(work), (low + span).to(work)
        y_pred = torch.minimum(torch.maximum(y_pred.to(work), smallest), largest)
        y = torch.minimum(torch.maximum(y.to(work), smallest), largest)
    return Harmonized(y_pred.to(work), y.to(work), low, span, work)


def to_unit_range(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    data_range: DataRange,
    name: str = "metric",
    dtype: torch.dtype | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map both images with the reference's intensity window so that the window becomes ``[0, 1]``.

    Args:
        y_pred: synthesized image ``(B, C, *spatial)``.
        y: reference image of the same shape.
        data_range: intensity policy, see the module docstring.
        name: metric name for error messages.
        dtype: compute dtype of the result.
        mask: optional weights; statistics policies take their statistics inside it.

    Returns:
        ``(y_pred', y')`` in ``dtype``; ``y'`` lies in ``[0, 1]`` for ``data_range="reference"``. With
        ``data_range=1`` these are the inputs themselves when they already have ``dtype`` (no copy). The map is
        computed in float64 where float32 would overflow or underflow (:func:`unit_range_dtype`).
    """
    dtype = dtype or (y.dtype if y.is_floating_point() else torch.float32)
    plain = isinstance(data_range, (int, float)) and not isinstance(data_range, bool)
    if plain and _FLOAT32_SPAN_BOUNDS[0] <= data_range <= _FLOAT32_SPAN_BOUNDS[1]:
        # a plain range L (the window starts at 0): one division, or none for L = 1 (the images are returned)
        if data_range == 1:
            return y_pred.to(dtype), y.to(dtype)
        return y_pred.to(dtype) / float(data_range), y.to(dtype) / float(data_range)
    prepared = harmonize(y_pred, y, data_range, name, dtype, mask)
    work = prepared.dtype
    low, span = prepared.low.to(work), prepared.span.to(work)
    return ((prepared.y_pred.to(work) - low) / span).to(dtype), ((prepared.y.to(work) - low) / span).to(dtype)


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
