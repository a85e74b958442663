"""ignite handler for the set-level metrics (FID, KID, MMD, PRDC, diversity, memorisation).

::

    evaluator = SupervisedEvaluator(..., key_val_metric={
        "fid": SetLevelHandler(FIDMetric(), output_transform=from_engine(["pred", "label"]))})

``engine.state.metrics[name]`` receives the metric's primary value (or the one named by ``key``, e.g.
``"coverage"`` of PRDC); the full :class:`~monai_kcross.metrics.set_level.SetLevelResult` -- every value and the
feature extractor's identity -- goes to ``engine.state.metric_details[name]``. Features gather across processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ignite.engine import Engine
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced

from ..metrics.set_level import SetLevelMetric, SetLevelResult

__all__ = ["SetLevelHandler"]


class SetLevelHandler(Metric):
    """Feed a :class:`~monai_kcross.metrics.set_level.SetLevelMetric` from an engine.

    Args:
        metric: the set-level metric.
        output_transform: maps ``engine.state.output`` to ``(generated, real)``; either may be ``None``.
        key: which value of the result goes to ``engine.state.metrics`` (default: the primary one).
        batch_keys: further inputs read from ``engine.state.batch``, ``{input name: batch key}`` (e.g.
            ``{"held_out": "held_out_image"}`` for :class:`~monai_kcross.metrics.MemorisationMetric`).
        save_details: store the whole result in ``engine.state.metric_details[name]``.
    """

    def __init__(
        self,
        metric: SetLevelMetric,
        output_transform: Callable = lambda x: x,
        key: str | None = None,
        batch_keys: Mapping[str, str] | None = None,
        save_details: bool = True,
    ) -> None:
        self.metric, self.key = metric, key
        self.batch_keys = dict(batch_keys or {})
        self.save_details = save_details
        self._engine: Engine | None = None
        self._name = ""
        super().__init__(output_transform=output_transform)

    @reinit__is_reduced
    def reset(self) -> None:
        self.metric.reset()

    @reinit__is_reduced
    def update(self, output) -> None:
        generated, real = output[0], output[1]
        extra = {}
        if self.batch_keys and self._engine is not None:
            batch = self._engine.state.batch
            items = batch if isinstance(batch, (list, tuple)) else [batch]
            for name, batch_key in self.batch_keys.items():
                values = [item[batch_key] for item in items]
                extra[name] = values if isinstance(batch, (list, tuple)) else values[0]
        self.metric(generated, real, **extra)

    def compute(self) -> float:
        result: SetLevelResult = self.metric.aggregate()
        if self.save_details and self._engine is not None:
            if not hasattr(self._engine.state, "metric_details"):
                self._engine.state.metric_details = {}
            self._engine.state.metric_details[self._name] = result
        return result[self.key] if self.key is not None else result.value

    def attach(self, engine: Engine, name: str, _usage=None) -> None:  # type: ignore[override]
        self._engine, self._name = engine, name
        super().attach(engine, name)
