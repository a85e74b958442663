"""No-reference metrics as MONAI ``CumulativeIterationMetric`` classes.

Thin wrappers around :func:`monai_kcross.functional.niqe`, :func:`monai_kcross.functional.brisque` and the
artefact scores of :mod:`monai_kcross.functional.artefacts` (CPBD, blur effect, variance of the Laplacian,
MLC/MSLC, AES, mean TV); the arguments are documented there. They take only ``y_pred`` (the image to assess)
of shape ``(B, C, H, W[, D])`` or a list of channel-first tensors (and, for the artefact scores, an optional
``mask``), buffer ``(B, C)`` scores and reduce them in ``aggregate()``.

Example::

    metric = NIQEMetric(model="mri", spatial_dims=3)
    for batch in loader:
        metric(batch["pred"])
    print(metric.aggregate().item())

They are listed by :func:`monai_kcross.registry.list_no_reference_metrics` (:func:`monai_kcross.list_metrics`
lists the full-reference metrics called as ``f(y_pred, y)``); :func:`monai_kcross.create_metric` builds both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.utils import MetricReduction

from ..functional import artefacts
from ..functional.intensity import DataRange
from ..functional.no_reference import brisque, get_brisque_model, get_niqe_model, niqe
from .base import PerImageMetric, TensorOrList, _per_item

__all__ = [
    "AverageEdgeStrengthMetric",
    "BRISQUEMetric",
    "BlurEffectMetric",
    "CPBDMetric",
    "LaplacianVarianceMetric",
    "MeanLineCorrelationMetric",
    "NIQEMetric",
    "NoReferenceMetric",
    "TotalVariationMetric",
]

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

    def __call__(  # type: ignore[override]
        self, y_pred: TensorOrList, y: TensorOrList | None = None, mask: TensorOrList | None = None
    ) -> torch.Tensor:
        """Score a batch ``(B, C, H, W[, D])`` or a list of ``(C, H, W[, D])`` (and buffer it); returns ``(B, C)``.

        ``mask`` (metrics whose function takes one): a batch-first tensor, one tensor shared by every item, or
        a list matching a list ``y_pred``.
        """
        if y is not None:
            raise ValueError(f"{type(self).__name__} is a no-reference metric: call it with y_pred only.")
        if mask is not None and "mask" not in inspect.signature(self.metric_fn).parameters:
            raise ValueError(f"{type(self).__name__} takes no mask.")
        return super().__call__(y_pred, None, **({} if mask is None else {"mask": mask}))

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.metric_fn(y_pred, **({} if mask is None else {"mask": mask}), **self.metric_kwargs)

    def _compute_list(  # type: ignore[override]
        self, y_pred: TensorOrList, y: TensorOrList | None = None, mask: TensorOrList | None = None
    ) -> torch.Tensor:
        masks = _per_item(mask, y_pred, "mask")
        return torch.cat([self._compute_tensor(p.detach()[None], mask=m) for p, m in zip(y_pred, masks)], dim=0)


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


class _ArtefactMetric(NoReferenceMetric):
    """An artefact score of :mod:`monai_kcross.functional.artefacts` as a metric; options are the function's."""

    function: Callable[..., torch.Tensor]

    def __init__(self, reduction: Reduction = MetricReduction.MEAN, get_not_nans: bool = False, **options: Any) -> None:
        super().__init__(type(self).function, reduction, get_not_nans, **options)  # the base checks the options


def _options(function: Callable[..., torch.Tensor]) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(function).parameters.items() if k not in ("y_pred", "mask")}


def _artefact_metric(name: str, function: Callable[..., torch.Tensor]) -> type[_ArtefactMetric]:
    """A metric class whose signature and docstring list ``function``'s options (declared once, there)."""
    cls = type(name, (_ArtefactMetric,), {"function": staticmethod(function), "__module__": __name__})
    base = inspect.signature(_ArtefactMetric.__init__).parameters
    keyword = inspect.Parameter.KEYWORD_ONLY
    options = [p.replace(kind=keyword) for p in _options(function).values()]
    extras = [base["reduction"].replace(kind=keyword), base["get_not_nans"].replace(kind=keyword)]
    cls.__signature__ = inspect.Signature([*options, *extras], return_annotation=None)
    summary = (inspect.getdoc(function) or "").split("\n\n", 1)[0]
    cls.__doc__ = (
        f"{summary}\n\nMONAI metric of :func:`monai_kcross.functional.{function.__name__}`: call as "
        f"``metric(y_pred)`` or ``metric(y_pred, mask=mask)``; ``aggregate()`` reduces the buffered ``(B, C)`` "
        f"scores (NaN skipped).\n\nArgs:\n    "
        + ", ".join(p.name for p in options)
        + f": as in :func:`~monai_kcross.functional.{function.__name__}`.\n    reduction, get_not_nans: "
        "as in :class:`NoReferenceMetric`."
    )
    return cls


CPBDMetric = _artefact_metric("CPBDMetric", artefacts.cpbd)
BlurEffectMetric = _artefact_metric("BlurEffectMetric", artefacts.blur_effect)
LaplacianVarianceMetric = _artefact_metric("LaplacianVarianceMetric", artefacts.laplacian_variance)
MeanLineCorrelationMetric = _artefact_metric("MeanLineCorrelationMetric", artefacts.mean_line_correlation)
AverageEdgeStrengthMetric = _artefact_metric("AverageEdgeStrengthMetric", artefacts.average_edge_strength)
TotalVariationMetric = _artefact_metric("TotalVariationMetric", artefacts.total_variation)
