"""ignite handlers for the package's metrics, built on MONAI's ``IgniteMetricHandler``.

Use them in MONAI workflows exactly like MONAI's own metric handlers::

    evaluator = SupervisedEvaluator(
        device=device, val_data_loader=loader, network=net,
        key_val_metric={"val_ssim": SSIMHandler(spatial_dims=3, output_transform=from_engine(["pred", "label"]))},
        additional_metrics={"val_psnr": PSNRHandler(output_transform=from_engine(["pred", "label"]))},
    )

To score inside a region, name the batch key holding the mask (MONAI engines keep only image, label and
prediction in ``engine.state.output``, so the mask is read from ``engine.state.batch``)::

    SSIMHandler(output_transform=from_engine(["pred", "label"]), mask_key="brain_mask")

or let ``output_transform`` return it as a third item in custom workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from ignite.engine import Engine
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import IgniteMetricHandler

from ..metrics import full_reference as M
from ..metrics.base import FullReferenceMetric
from ..metrics.kcross import KCrossMetric

__all__ = [
    "CWSSIMHandler",
    "DISTSHandler",
    "DeepIQAHandler",
    "FSIMHandler",
    "FeatureDistanceHandler",
    "FullReferenceHandler",
    "GMSDHandler",
    "HaarPSIHandler",
    "IWSSIMHandler",
    "KCrossHandler",
    "LPIPSHandler",
    "MAEHandler",
    "MDSIHandler",
    "MSEHandler",
    "MultiScaleGMSDHandler",
    "MultiScaleSSIMHandler",
    "NLPDHandler",
    "NMIHandler",
    "PCCHandler",
    "PSNRHandler",
    "RMSEHandler",
    "SSIMHandler",
    "SegmentationDiceHandler",
    "SegmentationHD95Handler",
    "VIFHandler",
    "VSIHandler",
]


class FullReferenceHandler(IgniteMetricHandler):
    """ignite metric handler around a :class:`~monai_kcross.metrics.FullReferenceMetric`.

    Subclasses name their metric class in ``metric_class``; their constructor takes that class's keyword
    arguments (``spatial_dims``, ``data_range``, ``reduction``, ...) besides the handler's own.

    Args:
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)`` or ``(y_pred, y, mask)``, each a
            batch-first tensor or a list of channel-first tensors (e.g. ``from_engine(["pred", "label"])``).
        save_details: store the per-image scores in ``engine.state.metric_details[name]``.
        mask_key: key of ``engine.state.batch`` holding the region mask (``(B, 1|C, *spatial)``); used when
            ``output_transform`` returns two items.
        batch_keys: further metric inputs read from the batch, ``{input name: batch key}``.
        metric: an already built metric (instead of ``metric_kwargs``).
        metric_kwargs: keyword arguments of ``metric_class``.
    """

    metric_class: type[FullReferenceMetric] | None = None

    def __init__(
        self,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        mask_key: str | None = None,
        metric: FullReferenceMetric | None = None,
        batch_keys: Mapping[str, str] | None = None,
        **metric_kwargs: Any,
    ) -> None:
        self.batch_keys = dict(batch_keys or {})
        if mask_key is not None:
            self.batch_keys["mask"] = mask_key
        if metric is None:
            if self.metric_class is None:
                raise ValueError("FullReferenceHandler needs `metric` (or use a subclass such as SSIMHandler).")
            metric = self.metric_class(**metric_kwargs)
        elif metric_kwargs:
            raise ValueError("pass either a built `metric` or its keyword arguments, not both.")
        super().__init__(metric_fn=metric, output_transform=output_transform, save_details=save_details)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """Score ``(y_pred, y)`` or ``(y_pred, y, mask)``: batch-first tensors or lists of channel-first ones.

        Inputs named in ``batch_keys`` (the mask, K-CROSS's source) are read from ``engine.state.batch``.
        """
        if not isinstance(output, (tuple, list)) or len(output) not in (2, 3):
            raise ValueError(
                "output_transform must return (y_pred, y) or (y_pred, y, mask), e.g. "
                f"from_engine(['pred', 'label']); got {type(output).__name__} of length "
                f"{len(output) if hasattr(output, '__len__') else '?'}."
            )
        inputs = {}
        wanted = {k: v for k, v in self.batch_keys.items() if not (k == "mask" and len(output) == 3)}
        if wanted:
            if self._engine is None:
                raise RuntimeError("batch keys need the handler to be attached to an engine first.")
            stacked = isinstance(output[0], torch.Tensor)
            inputs = {name: self._from_batch(self._engine.state.batch, key, stacked) for name, key in wanted.items()}
        self.metric_fn(*output, **inputs)

    def iteration_completed(self, engine: Engine) -> None:
        """Pass the whole iteration's output to :meth:`update`.

        ignite would split lists of channel-first tensors into single-image updates (and reject a third item),
        which loses the link between images and their masks; the package's metrics take lists directly.
        """
        self.update(self._output_transform(engine.state.output))

    @staticmethod
    def _from_batch(batch: Any, key: str, stacked: bool) -> torch.Tensor | list[torch.Tensor]:
        """Item ``key`` of the current batch: collated (a dict) or decollated (a list of dicts)."""
        items = batch if isinstance(batch, (list, tuple)) else [batch]
        missing = [item for item in items if not isinstance(item, dict) or key not in item]
        if missing:
            keys = sorted(missing[0]) if isinstance(missing[0], dict) else type(missing[0]).__name__
            raise ValueError(f"batch key {key!r} is not in the engine's batch (keys: {keys}).")
        if isinstance(batch, dict):
            return batch[key]
        values = [item[key] for item in items]
        return torch.stack(values) if stacked else values


class MAEHandler(FullReferenceHandler):
    """Mean absolute error; keyword arguments of :class:`~monai_kcross.metrics.MAEMetric`."""

    metric_class = M.MAEMetric


class MSEHandler(FullReferenceHandler):
    """Mean squared error; keyword arguments of :class:`~monai_kcross.metrics.MSEMetric`."""

    metric_class = M.MSEMetric


class RMSEHandler(FullReferenceHandler):
    """Root mean squared error; keyword arguments of :class:`~monai_kcross.metrics.RMSEMetric`."""

    metric_class = M.RMSEMetric


class PSNRHandler(FullReferenceHandler):
    """PSNR; keyword arguments of :class:`~monai_kcross.metrics.PSNRMetric`."""

    metric_class = M.PSNRMetric


class SSIMHandler(FullReferenceHandler):
    """SSIM; keyword arguments of :class:`~monai_kcross.metrics.SSIMMetric`."""

    metric_class = M.SSIMMetric


class MultiScaleSSIMHandler(FullReferenceHandler):
    """MS-SSIM; keyword arguments of :class:`~monai_kcross.metrics.MultiScaleSSIMMetric`."""

    metric_class = M.MultiScaleSSIMMetric


class GMSDHandler(FullReferenceHandler):
    """GMSD; keyword arguments of :class:`~monai_kcross.metrics.GMSDMetric`."""

    metric_class = M.GMSDMetric


class MultiScaleGMSDHandler(FullReferenceHandler):
    """MS-GMSD; keyword arguments of :class:`~monai_kcross.metrics.MultiScaleGMSDMetric`."""

    metric_class = M.MultiScaleGMSDMetric


class NLPDHandler(FullReferenceHandler):
    """NLPD; keyword arguments of :class:`~monai_kcross.metrics.NLPDMetric`."""

    metric_class = M.NLPDMetric


class HaarPSIHandler(FullReferenceHandler):
    """HaarPSI; keyword arguments of :class:`~monai_kcross.metrics.HaarPSIMetric`."""

    metric_class = M.HaarPSIMetric


class LPIPSHandler(FullReferenceHandler):
    """LPIPS; keyword arguments of :class:`~monai_kcross.metrics.LPIPSMetric`."""

    metric_class = M.LPIPSMetric


class DISTSHandler(FullReferenceHandler):
    """DISTS; keyword arguments of :class:`~monai_kcross.metrics.DISTSMetric`."""

    metric_class = M.DISTSMetric


class DeepIQAHandler(FullReferenceHandler):
    """DeepIQA (WaDIQaM-FR); keyword arguments of :class:`~monai_kcross.metrics.DeepIQAMetric`."""

    metric_class = M.DeepIQAMetric


class FeatureDistanceHandler(FullReferenceHandler):
    """In-domain feature distance; keyword arguments of :class:`~monai_kcross.metrics.FeatureDistanceMetric`."""

    metric_class = M.FeatureDistanceMetric


class VSIHandler(FullReferenceHandler):
    """VSI; keyword arguments of :class:`~monai_kcross.metrics.VSIMetric`."""

    metric_class = M.VSIMetric


class FSIMHandler(FullReferenceHandler):
    """FSIM; keyword arguments of :class:`~monai_kcross.metrics.FSIMMetric`."""

    metric_class = M.FSIMMetric


class VIFHandler(FullReferenceHandler):
    """VIFp; keyword arguments of :class:`~monai_kcross.metrics.VIFMetric`."""

    metric_class = M.VIFMetric


class IWSSIMHandler(FullReferenceHandler):
    """IW-SSIM; keyword arguments of :class:`~monai_kcross.metrics.IWSSIMMetric`."""

    metric_class = M.IWSSIMMetric


class CWSSIMHandler(FullReferenceHandler):
    """CW-SSIM; keyword arguments of :class:`~monai_kcross.metrics.CWSSIMMetric`."""

    metric_class = M.CWSSIMMetric


class MDSIHandler(FullReferenceHandler):
    """MDSI; keyword arguments of :class:`~monai_kcross.metrics.MDSIMetric`."""

    metric_class = M.MDSIMetric


class NMIHandler(FullReferenceHandler):
    """Normalised mutual information; keyword arguments of :class:`~monai_kcross.metrics.NMIMetric`."""

    metric_class = M.NMIMetric


class PCCHandler(FullReferenceHandler):
    """Pearson correlation (NCC); keyword arguments of :class:`~monai_kcross.metrics.PCCMetric`."""

    metric_class = M.PCCMetric


class SegmentationDiceHandler(FullReferenceHandler):
    """Downstream-segmentation Dice; keyword arguments of :class:`~monai_kcross.metrics.SegmentationDiceMetric`.
    Ground-truth labels instead of a segmentation of the reference: ``batch_keys={"labels": "<batch key>"}``."""

    metric_class = M.SegmentationDiceMetric


class SegmentationHD95Handler(FullReferenceHandler):
    """Downstream-segmentation HD95; keyword arguments of :class:`~monai_kcross.metrics.SegmentationHD95Metric`."""

    metric_class = M.SegmentationHD95Metric


class KCrossHandler(FullReferenceHandler):
    """K-CROSS in MONAI workflows; the source image (and optionally the lesion mask) come from the batch.

    Args:
        source_key: batch key of the source-modality image (``None`` when the structure branch is off).
        lesion_key: batch key of the lesion mask (``None``: predicted by the network's segmenter).
        others: as :class:`FullReferenceHandler`; metric options as :class:`~monai_kcross.metrics.KCrossMetric`.
    """

    metric_class = KCrossMetric

    def __init__(
        self,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        source_key: str | None = "source",
        lesion_key: str | None = None,
        **metric_kwargs: Any,
    ) -> None:
        if "mask_key" in metric_kwargs:
            raise ValueError("KCrossHandler takes no region mask: name the batch key of the lesion mask `lesion_key`.")
        keys = {"source": source_key, "lesion": lesion_key}
        super().__init__(
            output_transform, save_details, batch_keys={k: v for k, v in keys.items() if v}, **metric_kwargs
        )
