"""No-reference metrics (NIQE, BRISQUE) as MONAI ``CumulativeIterationMetric`` classes.

Thin wrappers around :func:`monai_kcross.functional.niqe` and :func:`monai_kcross.functional.brisque`; the
arguments are documented there. They take only ``y_pred`` (the image to assess) of shape ``(B, C, H, W[, D])``
or a list of channel-first tensors, buffer ``(B, C)`` scores and reduce them in ``aggregate()``.

Example::

    metric = NIQEMetric(model="mri", spatial_dims=3)
    for batch in loader:
        metric(batch["pred"])
    print(metric.aggregate().item())

These metrics are not in the package registry (:func:`monai_kcross.list_metrics`), which lists full-reference
metrics called as ``f(y_pred, y)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.utils import MetricReduction

from ..functional.intensity import DataRange
from ..functional.no_reference import brisque, get_brisque_model, get_niqe_model, niqe
from .base import PerImageMetric, TensorOrList

__all__ = ["BRISQUEMetric", "NIQEMetric", "NoReferenceMetric"]

Reduction = MetricReduction | str
Model = str | Path | Mapping[str, Any]


class NoReferenceMetric(PerImageMetric):
    """A no-reference functional metric of this package as a MONAI ``CumulativeIterationMetric``.

    Each call scores a batch and appends the ``(B, C)`` results to the buffer; ``aggregate()`` reduces everything
    seen since the last ``reset()`` (across processes under ``torch.distributed``). NaN scores (undefined
    statistics) are skipped by the reduction and counted by ``get_not_nans``.

    Args:
        metric_fn: ``metric_fn(y_pred, **metric_kwargs) -> (B, C)``.
        reduction: MONAI reduction applied by ``aggregate``.
        get_not_nans: whether ``aggregate`` also returns the count of non-NaN values.
        metric_kwargs: fixed keyword arguments of ``metric_fn`` (``model``, ``data_range``, ...).
    """

    def __call__(self, y_pred: TensorOrList, y: TensorOrList | None = None) -> torch.Tensor:  # type: ignore[override]
        """Score a batch ``(B, C, H, W[, D])`` or a list of ``(C, H, W[, D])`` (and buffer it); returns ``(B, C)``."""
        if y is not None:
            raise ValueError(f"{type(self).__name__} is a no-reference metric: call it with y_pred only.")
        return super().__call__(y_pred)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return self.metric_fn(y_pred, **self.metric_kwargs)


class _ModelBasedMetric(NoReferenceMetric):
    """A no-reference score that needs a fitted natural-scene-statistics model (NIQE, BRISQUE).

    Args:
        model: ``"mri"`` (default), ``"natural"``, a model dict or a model file path; resolved once, so bad
            names or paths fail when the metric is built.
        spatial_dims, data_range, slice_axis: as in the functional form.
        reduction, get_not_nans: as in :class:`NoReferenceMetric`.
    """

    function: Callable[..., torch.Tensor]
    load_model: Callable[[Any], Any]

    def __init__(
        self,
        model: Model = "mri",
        spatial_dims: int | None = None,
        data_range: DataRange = "image",
        slice_axis: int = -1,
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            type(self).function,
            reduction,
            get_not_nans,
            model=type(self).load_model(model),
            spatial_dims=spatial_dims,
            data_range=data_range,
            slice_axis=slice_axis,
        )


class NIQEMetric(_ModelBasedMetric):
    """NIQE (lower is better); see :func:`monai_kcross.functional.niqe` and :class:`_ModelBasedMetric` for the
    arguments (``model``, ``spatial_dims``, ``data_range``, ``slice_axis``, ``reduction``, ``get_not_nans``)."""

    function = staticmethod(niqe)
    load_model = staticmethod(get_niqe_model)


class BRISQUEMetric(_ModelBasedMetric):
    """BRISQUE (lower is better); see :func:`monai_kcross.functional.brisque` and :class:`_ModelBasedMetric` for
    the arguments (``model``, ``spatial_dims``, ``data_range``, ``slice_axis``, ``reduction``, ``get_not_nans``)."""

    function = staticmethod(brisque)
    load_model = staticmethod(get_brisque_model)
