"""ignite handlers (MONAI ``IgniteMetricHandler``) for the no-reference metrics (NIQE, BRISQUE, artefact scores).

They read only the image to assess (and, for the artefact scores, optionally a mask)::

    evaluator = SupervisedEvaluator(
        device=device, val_data_loader=loader, network=net,
        additional_metrics={"val_niqe": NIQEHandler(output_transform=from_engine(["pred"]))},
    )
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ignite.engine import Engine
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import IgniteMetricHandler

from ..metrics import no_reference as M
from ..metrics.no_reference import BRISQUEMetric, NIQEMetric, NoReferenceMetric

__all__ = [
    "AverageEdgeStrengthHandler",
    "BRISQUEHandler",
    "BlurEffectHandler",
    "CPBDHandler",
    "LaplacianVarianceHandler",
    "MeanLineCorrelationHandler",
    "NIQEHandler",
    "NoReferenceHandler",
    "TotalVariationHandler",
]


class NoReferenceHandler(IgniteMetricHandler):
    """ignite metric handler around a :class:`~monai_kcross.metrics.no_reference.NoReferenceMetric`.

    Subclasses name their metric class in ``metric_class``; their constructor takes that class's keyword
    arguments (``model``, ``spatial_dims``, ``data_range``, ``reduction``, ...) besides the handler's own.

    Args:
        output_transform: maps ``engine.state.output`` to ``y_pred``: a batch-first tensor, a list of
            channel-first tensors, or a 1-tuple of either (what ``from_engine(["pred"])`` returns); for metrics
            that take a mask also ``(y_pred, mask)`` (``from_engine(["pred", "mask"])``).
        save_details: store the per-image scores in ``engine.state.metric_details[name]``.
        metric: an already built metric (instead of ``metric_kwargs``).
        metric_kwargs: keyword arguments of ``metric_class``.
    """

    metric_class: type[NoReferenceMetric] | None = None

    def __init__(
        self,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        metric: NoReferenceMetric | None = None,
        **metric_kwargs: Any,
    ) -> None:
        if metric is None:
            if self.metric_class is None:
                raise ValueError("NoReferenceHandler needs `metric` (or use a subclass such as NIQEHandler).")
            metric = self.metric_class(**metric_kwargs)
        elif metric_kwargs:
            raise ValueError("pass either a built `metric` or its keyword arguments, not both.")
        super().__init__(metric_fn=metric, output_transform=output_transform, save_details=save_details)

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        """Score ``y_pred`` (a batch-first tensor, a list of channel-first tensors, or a 1-tuple of either)."""
        if isinstance(output, tuple) and len(output) == 1:
            output = output[0]
        takes_mask = "mask" in inspect.signature(self.metric_fn.metric_fn).parameters
        if isinstance(output, tuple) and len(output) == 2 and takes_mask:
            self.metric_fn(output[0], mask=output[1])
            return
        if isinstance(output, tuple):
            raise ValueError(
                "output_transform must return only the image to assess (or the image and a mask, for metrics that "
                f"take one), e.g. from_engine(['pred']); got a tuple of {len(output)} items (a no-reference metric "
                "takes no label)."
            )
        self.metric_fn(output)

    def iteration_completed(self, engine: Engine) -> None:
        """Pass the whole iteration's output to :meth:`update` (ignite would split lists into single images)."""
        self.update(self._output_transform(engine.state.output))


class NIQEHandler(NoReferenceHandler):
    """NIQE; keyword arguments of :class:`~monai_kcross.metrics.NIQEMetric`."""

    metric_class = NIQEMetric


class BRISQUEHandler(NoReferenceHandler):
    """BRISQUE; keyword arguments of :class:`~monai_kcross.metrics.BRISQUEMetric`."""

    metric_class = BRISQUEMetric


def _handler(metric_class: type[NoReferenceMetric]) -> type[NoReferenceHandler]:
    name = metric_class.__name__.replace("Metric", "Handler")
    doc = f"ignite handler of :class:`~monai_kcross.metrics.{metric_class.__name__}` (its keyword arguments)."
    return type(name, (NoReferenceHandler,), {"metric_class": metric_class, "__doc__": doc, "__module__": __name__})


CPBDHandler = _handler(M.CPBDMetric)
BlurEffectHandler = _handler(M.BlurEffectMetric)
LaplacianVarianceHandler = _handler(M.LaplacianVarianceMetric)
MeanLineCorrelationHandler = _handler(M.MeanLineCorrelationMetric)
AverageEdgeStrengthHandler = _handler(M.AverageEdgeStrengthMetric)
TotalVariationHandler = _handler(M.TotalVariationMetric)
