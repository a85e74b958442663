"""The MONAI metric wrappers shared by the package's per-image metrics (full-reference and no-reference)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.utils import MetricReduction, look_up_option

__all__ = ["FullReferenceMetric", "PerImageMetric", "reduce_scores"]

TensorOrList = torch.Tensor | Sequence[torch.Tensor]


class PerImageMetric(CumulativeIterationMetric):
    """The package's functional metrics as MONAI ``CumulativeIterationMetric``: each call scores a batch and
    appends the ``(B, C)`` results to the buffer; ``aggregate()`` reduces everything seen since the last
    ``reset()`` (across processes under ``torch.distributed``). NaN results are skipped by the reduction and
    counted by ``get_not_nans``; a reduced value with no non-NaN score behind it is NaN (see
    :func:`reduce_scores`).

    Args:
        metric_fn: the functional metric returning ``(B, C)``.
        reduction: MONAI reduction applied by ``aggregate`` (``"mean"``, ``"sum"``, ``"mean_batch"``,
            ``"mean_channel"``, ``"none"``, ...).
        get_not_nans: whether ``aggregate`` also returns the count of non-NaN values.
        metric_kwargs: fixed keyword arguments of ``metric_fn``.
    """

    def __init__(
        self,
        metric_fn: Callable[..., torch.Tensor],
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        **metric_kwargs: Any,
    ) -> None:
        super().__init__()
        _check_options(type(self).__name__, metric_fn, metric_kwargs)
        self.metric_fn = metric_fn
        self.reduction = reduction
        self.get_not_nans = get_not_nans
        self.metric_kwargs = metric_kwargs

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce the buffered ``(N, C)`` scores; returns the result (and the not-NaN count if requested)."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"{type(self).__name__}: nothing to aggregate, call the metric on some data first.")
        result, not_nans = reduce_scores(data, reduction or self.reduction)
        return (result, not_nans) if self.get_not_nans else result


_PER_CALL = ("y_pred", "y", "mask")  # inputs of every call, not options fixed when the metric is built


def _check_options(owner: str, function: Callable[..., Any], options: dict[str, Any]) -> None:
    """Reject options the metric's function does not take when the metric is built, not at its first call."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a callable without an inspectable signature: checked when called
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = [name for name in parameters if name not in _PER_CALL]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"{owner} got unknown argument(s) {unknown}; it accepts "
            f"{', '.join([*allowed, 'reduction', 'get_not_nans'])}."
        )


def reduce_scores(scores: torch.Tensor, reduction: MetricReduction | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce ``(N, C)`` scores over their non-NaN entries; returns ``(result, not_nans)``.

    The reductions are MONAI's (``do_metric_reduction``): ``"mean"`` averages each item's channels and then
    the items, ``"sum"`` sums everything, ``"*_batch"`` reduces over items per channel, ``"*_channel"`` over
    channels per item, ``"none"`` returns the scores unchanged with a 0/1 not-NaN map. Two differences:
    a value with *no* non-NaN score behind it is NaN (MONAI reports 0.0, which cannot be told apart from a
    perfect MAE or a real SSIM of 0), and the scores' floating dtype is kept (float64 stays float64).
    ``not_nans`` counts the scores (or, for ``"mean"``, the items) that entered each value, as a float tensor.
    Shapes follow MONAI: ``(1,)`` for ``"mean"``, ``()`` for ``"sum"``, ``(C,)`` and ``(N,)`` for the others.
    """
    reduction = look_up_option(reduction, MetricReduction)
    valid = ~torch.isnan(scores)
    if reduction == MetricReduction.NONE:
        return scores, valid.to(torch.float32)
    dtype = scores.dtype if scores.is_floating_point() else torch.float32
    values = torch.where(valid, scores, torch.zeros((), dtype=scores.dtype, device=scores.device)).to(dtype)
    nan = torch.full((), float("nan"), dtype=dtype, device=scores.device)

    def reduce(x: torch.Tensor, ok: torch.Tensor, dims: int | tuple[int, ...], mean: bool) -> tuple[torch.Tensor, ...]:
        count = ok.sum(dim=dims)
        total = x.sum(dim=dims)
        return torch.where(count > 0, total / count if mean else total, nan), count

    if reduction == MetricReduction.MEAN:
        per_item, count = reduce(values, valid, 1, mean=True)
        scored = count > 0
        result, count = reduce(torch.where(scored, per_item, values.new_zeros(())), scored, 0, mean=True)
        result = result.reshape(1)  # MONAI's shape for "mean"
    else:
        dims = {"sum": (0, 1), "mean_batch": 0, "sum_batch": 0, "mean_channel": 1, "sum_channel": 1}[reduction.value]
        result, count = reduce(values, valid, dims, mean=reduction.value.startswith("mean"))
    return result, count.to(torch.float32)


class FullReferenceMetric(PerImageMetric):
    """A functional metric of this package as a MONAI ``CumulativeIterationMetric``.

    Each call scores a batch and appends the ``(B, C)`` results to the metric's buffer; ``aggregate()``
    reduces everything seen since the last ``reset()`` (across processes under ``torch.distributed``, via
    MONAI's buffer gathering). NaN results (for instance images with an empty mask when
    ``empty_mask="nan"``) are skipped by the reduction and counted by ``get_not_nans``.

    Call as ``metric(y_pred, y)`` or ``metric(y_pred, y, mask=mask)`` with batch-first tensors
    ``(B, C, H, W[, D])`` or lists of channel-first tensors ``(C, H, W[, D])`` (then ``mask`` may be a list
    too).

    Args:
        metric_fn: the functional metric, ``metric_fn(y_pred, y, mask=..., **metric_kwargs) -> (B, C)``.
        reduction: MONAI reduction applied by ``aggregate`` (``"mean"``, ``"sum"``, ``"mean_batch"``,
            ``"mean_channel"``, ``"none"``, ...).
        get_not_nans: whether ``aggregate`` also returns the count of non-NaN values.
        metric_kwargs: fixed keyword arguments of ``metric_fn`` (``data_range``, window options, ...).
    """

    def __call__(  # type: ignore[override]
        self,
        y_pred: TensorOrList,
        y: TensorOrList | None = None,
        mask: TensorOrList | None = None,
        **inputs: TensorOrList | None,
    ) -> torch.Tensor:
        """Score a batch (and buffer the result). Returns ``(B, C)``.

        ``inputs`` are further per-image tensors some metrics take (K-CROSS: ``source``); like ``mask`` they
        may be batch-first tensors, lists matching list inputs, or one tensor shared by every item.
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} is a full-reference metric: pass the reference image `y`.")
        return super().__call__(y_pred, y, mask=mask, **inputs)

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, **inputs: torch.Tensor | None
    ) -> torch.Tensor:
        return self.metric_fn(y_pred, y, mask=mask, **inputs, **self.metric_kwargs)

    def _compute_list(  # type: ignore[override]
        self, y_pred: TensorOrList, y: TensorOrList, mask: TensorOrList | None = None, **inputs: TensorOrList | None
    ) -> torch.Tensor:
        if not isinstance(y_pred, (list, tuple)) or not isinstance(y, (list, tuple)) or len(y_pred) != len(y):
            raise ValueError("y_pred and y must both be lists of channel-first tensors of the same length.")
        per_item = {name: _per_item(value, y, name) for name, value in {"mask": mask, **inputs}.items()}
        results = [
            self._compute_tensor(
                p.detach().unsqueeze(0), t.detach().unsqueeze(0), **{k: v[i] for k, v in per_item.items()}
            )
            for i, (p, t) in enumerate(zip(y_pred, y))
        ]
        return torch.cat(results, dim=0)


def _per_item(value: TensorOrList | None, y: Sequence[torch.Tensor], name: str) -> list[torch.Tensor | None]:
    """Split an extra input for list-of-images calls: one batch-first tensor per item (or shared)."""
    if value is None or (isinstance(value, torch.Tensor) and value.ndim < y[0].ndim):
        return [value] * len(y)  # none, or one spatial tensor shared by every item
    if isinstance(value, torch.Tensor) and value.ndim == y[0].ndim:
        return [value[None]] * len(y)  # one channel-first tensor shared by every item
    items = [v[None] for v in value]  # one channel-first tensor per item
    if len(items) != len(y):
        raise ValueError(f"got {len(items)} {name} items for {len(y)} images.")
    return items
