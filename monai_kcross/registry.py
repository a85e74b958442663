"""A registry of every metric of the package, with its direction, value range and 3-D behaviour.

>>> import monai_kcross
>>> metric = monai_kcross.create_metric("ssim", spatial_dims=3)
>>> [info.name for info in monai_kcross.list_metrics()]  # doctest: +ELLIPSIS
['mae', 'mse', 'rmse', 'psnr', 'ssim', 'ms_ssim', ...]
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry is declared without importing torch: `monai-kcross metrics` starts at once
    import torch

    from .handlers.metric_handlers import FullReferenceHandler
    from .metrics.base import FullReferenceMetric

__all__ = ["MetricInfo", "create_handler", "create_metric", "default_options", "get_metric_info", "list_metrics"]


class _Lazy:
    """``F.ssim`` is the reference ``"monai_kcross.functional:ssim"``, imported when a :class:`MetricInfo` uses it."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __getattr__(self, name: str) -> str:
        return f"{self.module}:{name}"


F = _Lazy("monai_kcross.functional")
P = _Lazy("monai_kcross.perceptual")
M = _Lazy("monai_kcross.metrics.full_reference")
H = _Lazy("monai_kcross.handlers.metric_handlers")
feature_distance = _Lazy("monai_kcross.perceptual.feature_distance").feature_distance


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class MetricInfo:
    """What a user needs to know to read a metric's numbers.

    Attributes:
        name: registry key (also accepted: upper case, ``-`` for ``_``).
        function: functional form, ``f(y_pred, y, spatial_dims=None, data_range=..., mask=None, **options)``.
        metric_class: MONAI ``CumulativeIterationMetric`` class.
        handler_class: ignite handler class.
        higher_is_better: direction of the score.
        value_range: ``(low, high)`` of possible values.
        ideal: value for identical images (``None`` where the metric has none, e.g. DeepIQA).
        volumes: how 3-D input is handled: ``"native"`` or ``"slice-wise"``.
        reference: the defining publication.
        needs_weights: external weights the metric needs before it can run ("" if none).
        symmetric: whether swapping ``y_pred`` and ``y`` (with a fixed ``data_range``) keeps the value.

    ``function``, ``metric_class`` and ``handler_class`` are stored as ``"module:name"`` references and imported
    on first use, so that reading the registry needs neither torch nor MONAI.
    """

    name: str
    function_ref: str
    metric_class_ref: str
    handler_class_ref: str
    higher_is_better: bool
    value_range: tuple[float, float]
    ideal: float | None
    volumes: str
    reference: str
    needs_weights: str = ""
    symmetric: bool = True

    @property
    def function(self) -> Callable[..., torch.Tensor]:
        return _load(self.function_ref)

    @property
    def metric_class(self) -> type[FullReferenceMetric]:
        return _load(self.metric_class_ref)

    @property
    def handler_class(self) -> type[FullReferenceHandler]:
        return _load(self.handler_class_ref)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


_INF = math.inf
_REGISTRY: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("mae", F.mae, M.MAEMetric, H.MAEHandler, False, (0.0, _INF), 0.0, "native", "mean absolute error"),
        MetricInfo("mse", F.mse, M.MSEMetric, H.MSEHandler, False, (0.0, _INF), 0.0, "native", "mean squared error"),
        MetricInfo("rmse", F.rmse, M.RMSEMetric, H.RMSEHandler, False, (0.0, _INF), 0.0, "native", "root MSE"),
        MetricInfo("psnr", F.psnr, M.PSNRMetric, H.PSNRHandler, True, (-_INF, _INF), _INF, "native", "PSNR in dB"),
        MetricInfo("ssim", F.ssim, M.SSIMMetric, H.SSIMHandler, True, (-1.0, 1.0), 1.0, "native", "Wang et al. 2004"),
        MetricInfo(
            "ms_ssim",
            F.ms_ssim,
            M.MultiScaleSSIMMetric,
            H.MultiScaleSSIMHandler,
            True,
            (0.0, 1.0),
            1.0,
            "native",
            "Wang, Simoncelli & Bovik 2003",
        ),
        MetricInfo(
            "gmsd", F.gmsd, M.GMSDMetric, H.GMSDHandler, False, (0.0, 1.0), 0.0, "slice-wise", "Xue et al. 2014"
        ),
        MetricInfo(
            "ms_gmsd",
            F.ms_gmsd,
            M.MultiScaleGMSDMetric,
            H.MultiScaleGMSDHandler,
            False,
            (0.0, 1.0),
            0.0,
            "slice-wise",
            "Zhang et al. 2017",
        ),
        MetricInfo(
            "nlpd", F.nlpd, M.NLPDMetric, H.NLPDHandler, False, (0.0, _INF), 0.0, "slice-wise", "Laparra et al. 2016"
        ),
        MetricInfo(
            "haarpsi",
            F.haarpsi,
            M.HaarPSIMetric,
            H.HaarPSIHandler,
            True,
            (0.0, 1.0),
            1.0,
            "slice-wise",
            "Reisenhofer et al. 2018",
        ),
        MetricInfo(
            "lpips",
            P.lpips,
            M.LPIPSMetric,
            H.LPIPSHandler,
            False,
            (0.0, _INF),
            0.0,
            "slice-wise",
            "Zhang et al. 2018 (v0.1)",
            "ImageNet VGG16/AlexNet/SqueezeNet backbone",
        ),
        MetricInfo(
            "dists",
            P.dists,
            M.DISTSMetric,
            H.DISTSHandler,
            False,
            (0.0, 1.0),
            0.0,
            "slice-wise",
            "Ding et al. 2020",
            "ImageNet VGG16 backbone",
        ),
        MetricInfo(
            "deepiqa",
            P.deepiqa,
            M.DeepIQAMetric,
            H.DeepIQAHandler,
            True,
            (-_INF, _INF),
            None,
            "slice-wise",
            "Bosse et al. 2018 (WaDIQaM-FR)",
            "a WaDIQaM-FR checkpoint",
            symmetric=False,
        ),
        MetricInfo(
            "feature_distance",
            feature_distance,
            M.FeatureDistanceMetric,
            H.FeatureDistanceHandler,
            False,
            (0.0, _INF),
            0.0,
            "slice-wise",
            "LPIPS-style distance on the package's MRI segmenter features",
            symmetric=False,  # the reference defines the foreground used to normalise both images
        ),
    )
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def list_metrics() -> list[MetricInfo]:
    """All registered metrics, in a stable order."""
    return list(_REGISTRY.values())


def get_metric_info(name: str) -> MetricInfo:
    """Look a metric up by name (case-insensitive; ``ms-ssim`` and ``ms_ssim`` are the same)."""
    try:
        return _REGISTRY[_key(name)]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(_REGISTRY)}.") from None


def create_metric(name: str, **kwargs: Any) -> FullReferenceMetric:
    """Build the MONAI metric registered under ``name`` with the given keyword arguments."""
    return get_metric_info(name).metric_class(**kwargs)


def create_handler(name: str, **kwargs: Any) -> FullReferenceHandler:
    """Build the ignite handler registered under ``name`` (``output_transform``, metric keyword arguments)."""
    return get_metric_info(name).handler_class(**kwargs)


def default_options(name: str, shape: Sequence[int], **overrides: Any) -> dict[str, Any]:
    """Call options of a registered metric for images of spatial ``shape``: the package's defaults.

    ``data_range="reference"`` (the reference's range, per image and channel) unless given, and for MS-SSIM
    the longest standard weight prefix the size allows (see :func:`~monai_kcross.functional.ms_ssim_weights_for`;
    report the number of scales with the result).
    """
    from .functional.ssim import ms_ssim_weights_for

    options: dict[str, Any] = {"data_range": "reference", **overrides}
    if get_metric_info(name).name == "ms_ssim" and "weights" not in options:
        options["weights"] = ms_ssim_weights_for(shape, options.get("win_size", 11))
    return options
