"""The MONAI metric wrappers shared by the package's per-image metrics (full-reference and no-reference)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = ["FullReferenceMetric", "PerImageMetric"]

TensorOrList = torch.Tensor | Sequence[torch.Tensor]


class PerImageMetric(CumulativeIterationMetric):
    """The package's functional metrics as MONAI ``CumulativeIterationMetric``: each call scores a batch and
    appends the ``(B, C)`` results to the buffer; ``aggregate()`` reduces everything seen since the last
    ``reset()`` (across processes under ``torch.distributed``). NaN results are skipped by the reduction and
    counted by ``get_not_nans``.

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
        result, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (result, not_nans) if self.get_not_nans else result


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
