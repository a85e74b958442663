"""A registry of every metric of the package, with its direction, value range and 3-D behaviour.

Full-reference metrics (``f(y_pred, y)``) are listed by :func:`list_metrics`, no-reference ones (``f(y_pred)``:
NIQE, BRISQUE and the MR artefact scores) by :func:`list_no_reference_metrics`; :func:`create_metric` and
:func:`create_handler` build either.

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
    from .handlers.no_reference import NoReferenceHandler
    from .metrics.base import PerImageMetric

__all__ = [
    "MetricInfo",
    "NoReferenceMetricInfo",
    "create_handler",
    "create_metric",
    "default_options",
    "get_metric_info",
    "get_no_reference_metric_info",
    "list_metrics",
    "list_no_reference_metrics",
]


class _Lazy:
    """``F.ssim`` is the reference ``"monai_kcross.functional:ssim"``, imported when a metric entry uses it."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __getattr__(self, name: str) -> str:
        return f"{self.module}:{name}"


F = _Lazy("monai_kcross.functional")
P = _Lazy("monai_kcross.perceptual")
A = _Lazy("monai_kcross.functional.artefacts")
S = _Lazy("monai_kcross.functional.segmentation")
M = _Lazy("monai_kcross.metrics.full_reference")
NM = _Lazy("monai_kcross.metrics.no_reference")
H = _Lazy("monai_kcross.handlers.metric_handlers")
NH = _Lazy("monai_kcross.handlers.no_reference")
feature_distance = _Lazy("monai_kcross.perceptual.feature_distance").feature_distance


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


class _LazyEntry:
    """``function``, ``metric_class`` and ``handler_class`` are stored as ``"module:name"`` references
    (``*_ref``) and imported on first use, so that reading the registry needs neither torch nor MONAI."""

    function_ref: str
    metric_class_ref: str
    handler_class_ref: str

    @property
    def function(self) -> Callable[..., torch.Tensor]:
        return _load(self.function_ref)

    @property
    def metric_class(self) -> type[PerImageMetric]:
        return _load(self.metric_class_ref)

    @property
    def handler_class(self) -> type[FullReferenceHandler | NoReferenceHandler]:
        return _load(self.handler_class_ref)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MetricInfo(_LazyEntry):
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
        checked_against: the independent reference the implementation is tested against, and the tolerance.

    ``function``, ``metric_class`` and ``handler_class`` are imported on first use (stored as ``*_ref``).
        options: fixed options of the function that define this entry (e.g. ``classes=("lesion",)``); part of
            :func:`default_options` and of the metric classes built by :func:`create_metric`.
        uses_segmenter: the metric runs a segmentation network (the downstream-segmentation scores): callers pass
            ``segmenter=`` (a checkpoint, a MONAI bundle folder or a callable, see
            :func:`~monai_kcross.functional.segmentation.as_segmenter`) to use another than the package's own.
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
    checked_against: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    uses_segmenter: bool = False


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
            "vsi",
            F.vsi,
            M.VSIMetric,
            H.VSIHandler,
            True,
            (0.0, 1.0),
            1.0,
            "slice-wise",
            "Zhang, Shen & Li 2014 (grey form)",
            checked_against="piq 0.8.0 (RGB, 1e-6; grey form: piq with the colour prior off, 1e-6); "
            "authors' MATLAB on TID2013 I01 (1e-4)",
        ),
        MetricInfo(
            "fsim",
            F.fsim,
            M.FSIMMetric,
            H.FSIMHandler,
            True,
            (0.0, 1.0),
            1.0,
            "slice-wise",
            "Zhang et al. 2011 (grey FSIM)",
            checked_against="piq 0.8.0 (1e-4, median convention); authors' MATLAB on goldhill (1e-4)",
        ),
        MetricInfo(
            "vif_p",
            F.vif_p,
            M.VIFMetric,
            H.VIFHandler,
            True,
            (0.0, _INF),
            1.0,
            "slice-wise",
            "Sheikh & Bovik 2006 (pixel domain)",
            symmetric=False,
            checked_against="piq 0.8.0 (1e-6); authors' MATLAB on goldhill (1e-4)",
        ),
        MetricInfo(
            "iw_ssim",
            F.iw_ssim,
            M.IWSSIMMetric,
            H.IWSSIMHandler,
            True,
            (0.0, 1.0),
            1.0,
            "slice-wise",
            "Wang & Li 2011",
            symmetric=False,  # the information weights come from the reference
            checked_against="piq 0.8.0 on MRI (1e-9); authors' MATLAB on goldhill (1e-9)",
        ),
        MetricInfo(
            "mdsi",
            F.mdsi,
            M.MDSIMetric,
            H.MDSIHandler,
            False,
            (0.0, 1.0),
            0.0,
            "slice-wise",
            "Nafchi et al. 2016",
            symmetric=False,  # the fused-image terms treat prediction and reference differently
            checked_against="piq 0.8.0 (1e-6); authors' MATLAB on goldhill (1e-5)",
        ),
        MetricInfo(
            "cw_ssim",
            F.cw_ssim,
            M.CWSSIMMetric,
            H.CWSSIMHandler,
            True,
            (0.0, 1.0),
            1.0,
            "slice-wise",
            "Sampat et al. 2009",
            checked_against="pyrtools' steerable pyramid (port of buildSCFpyr) with cwssim_index.m pooling (1e-9)",
        ),
        MetricInfo(
            "nmi",
            F.nmi,
            M.NMIMetric,
            H.NMIHandler,
            True,
            (1.0, 2.0),
            2.0,
            "native",
            "Studholme et al. 1999",
            checked_against="scikit-image normalized_mutual_information (1e-9)",
        ),
        MetricInfo(
            "pcc",
            F.pcc,
            M.PCCMetric,
            H.PCCHandler,
            True,
            (-1.0, 1.0),
            1.0,
            "native",
            "Pearson correlation (NCC)",
            checked_against="numpy corrcoef, scipy pearsonr (1e-9)",
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
        *(
            MetricInfo(
                f"seg_{kind}{suffix}",
                function,
                metric_class,
                handler_class,
                kind == "dice",
                (0.0, 1.0) if kind == "dice" else (0.0, _INF),
                1.0 if kind == "dice" else 0.0,
                "slice-wise",  # the default segmenter is 2-D; a 3-D segmenter (bundle) runs natively
                f"downstream segmentation {label} (MONAI compute_{'dice' if kind == 'dice' else 'hausdorff_distance'})",
                symmetric=False,  # the reference's window and foreground feed the segmenter
                options=options,
                uses_segmenter=True,
            )
            for kind, function, metric_class, handler_class in (
                ("dice", S.segmentation_dice, M.SegmentationDiceMetric, H.SegmentationDiceHandler),
                ("hd95", S.segmentation_hd95, M.SegmentationHD95Metric, H.SegmentationHD95Handler),
            )
            for suffix, label, options in (
                ("", "mean over the foreground classes", ()),
                ("_lesion", "of the lesion class", (("classes", ("lesion",)),)),
            )
        ),
    )
}


@dataclass(frozen=True)
class NoReferenceMetricInfo(_LazyEntry):
    """What a user needs to know to read a no-reference score's numbers.

    Attributes:
        name: registry key (also accepted: upper case, ``-`` for ``_``).
        function: functional form, ``f(y_pred, spatial_dims=None, data_range="image", ...)``.
        metric_class: MONAI ``CumulativeIterationMetric`` class (call as ``metric(y_pred)``).
        handler_class: ignite handler class.
        higher_is_better: direction of the score (for the blur scores: higher is sharper).
        value_range: ``(low, high)`` of possible values.
        volumes: how 3-D input is handled: ``"native"`` or ``"slice-wise"``.
        reference: the defining publication (and the implementation the numbers were checked against).
        masks: whether ``mask=`` is supported.
        options: fixed options of the function that define this entry (e.g. ``shift="half"`` for MSLC).
    """

    name: str
    function_ref: str
    metric_class_ref: str
    handler_class_ref: str
    higher_is_better: bool
    value_range: tuple[float, float]
    volumes: str
    reference: str
    masks: bool = True
    options: tuple[tuple[str, Any], ...] = ()


_NO_REFERENCE: dict[str, NoReferenceMetricInfo] = {
    info.name: info
    for info in (
        NoReferenceMetricInfo(
            "niqe", F.niqe, NM.NIQEMetric, NH.NIQEHandler, False, (0.0, _INF), "slice-wise", "Mittal et al. 2013", False
        ),
        NoReferenceMetricInfo(
            "brisque",
            F.brisque,
            NM.BRISQUEMetric,
            NH.BRISQUEHandler,
            False,
            (-_INF, _INF),
            "slice-wise",
            "Mittal et al. 2012",
            False,
        ),
        NoReferenceMetricInfo(
            "cpbd",
            A.cpbd,
            NM.CPBDMetric,
            NH.CPBDHandler,
            True,
            (0.0, 1.0),
            "slice-wise",
            "Narvekar & Karam 2011, doi:10.1109/TIP.2011.2131660 (checked against the cpbd package)",
        ),
        NoReferenceMetricInfo(
            "blur_effect",
            A.blur_effect,
            NM.BlurEffectMetric,
            NH.BlurEffectHandler,
            False,
            (0.0, 1.0),
            "native",
            "Crete-Roffet et al. 2007 (checked against skimage.measure.blur_effect)",
        ),
        NoReferenceMetricInfo(
            "laplacian_variance",
            A.laplacian_variance,
            NM.LaplacianVarianceMetric,
            NH.LaplacianVarianceHandler,
            True,
            (0.0, _INF),
            "native",
            "Pech-Pacheco et al. 2000, doi:10.1109/ICPR.2000.903548",
        ),
        NoReferenceMetricInfo(
            "mlc",
            A.mean_line_correlation,
            NM.MeanLineCorrelationMetric,
            NH.MeanLineCorrelationHandler,
            True,
            (-1.0, 1.0),
            "slice-wise",
            "Schuppert et al. 2022 (checked against medimetrics MLC)",
        ),
        NoReferenceMetricInfo(
            "mslc",
            A.mean_line_correlation,
            NM.MeanLineCorrelationMetric,
            NH.MeanLineCorrelationHandler,
            False,
            (-1.0, 1.0),
            "slice-wise",
            "Schuppert et al. 2022 (checked against medimetrics MSLC)",
            options=(("shift", "half"),),
        ),
        NoReferenceMetricInfo(
            "aes",
            A.average_edge_strength,
            NM.AverageEdgeStrengthMetric,
            NH.AverageEdgeStrengthHandler,
            True,
            (0.0, _INF),
            "slice-wise",
            "Pannetier et al.; Marchetto et al. 2025, doi:10.1007/s10334-025-01266-y",
        ),
        NoReferenceMetricInfo(
            "total_variation",
            A.total_variation,
            NM.TotalVariationMetric,
            NH.TotalVariationHandler,
            False,
            (0.0, _INF),
            "native",
            "Rudin, Osher & Fatemi 1992 (mean TV as medimetrics)",
        ),
    )
}

_ALIASES = {"ncc": "pcc", "vif": "vif_p", "vifp": "vif_p"}


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def list_metrics() -> list[MetricInfo]:
    """All registered metrics, in a stable order."""
    return list(_REGISTRY.values())


def get_metric_info(name: str) -> MetricInfo:
    """Look a metric up by name (case-insensitive; ``ms-ssim`` and ``ms_ssim`` are the same; ``ncc`` is ``pcc``,
    ``vif`` is ``vif_p``)."""
    try:
        return _REGISTRY[_key(name)]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(_REGISTRY)}.") from None


def list_no_reference_metrics() -> list[NoReferenceMetricInfo]:
    """All registered no-reference metrics, in a stable order."""
    return list(_NO_REFERENCE.values())


def get_no_reference_metric_info(name: str) -> NoReferenceMetricInfo:
    """Look a no-reference metric up by name (case-insensitive, ``-`` or ``_``)."""
    try:
        return _NO_REFERENCE[_key(name)]
    except KeyError:
        raise ValueError(f"unknown no-reference metric {name!r}; available: {', '.join(_NO_REFERENCE)}.") from None


def _any_info(name: str) -> MetricInfo | NoReferenceMetricInfo:
    key = _key(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key in _NO_REFERENCE:
        return _NO_REFERENCE[key]
    raise ValueError(
        f"unknown metric {name!r}; full-reference: {', '.join(_REGISTRY)}; no-reference: {', '.join(_NO_REFERENCE)}."
    )


def create_metric(name: str, **kwargs: Any) -> PerImageMetric:
    """Build the MONAI metric registered under ``name`` (full- or no-reference) with the given keyword arguments."""
    return _build(name, "metric_class", kwargs)


def create_handler(name: str, **kwargs: Any) -> FullReferenceHandler | NoReferenceHandler:
    """Build the ignite handler registered under ``name`` (``output_transform``, metric keyword arguments)."""
    return _build(name, "handler_class", kwargs)


def _build(name: str, kind: str, kwargs: dict[str, Any]) -> Any:
    info = _any_info(name)
    return getattr(info, kind)(**{**dict(getattr(info, "options", ())), **kwargs})


def default_options(name: str, shape: Sequence[int], **overrides: Any) -> dict[str, Any]:
    """Call options of a registered metric for images of spatial ``shape``: the package's defaults.

    ``data_range="reference"`` (the reference's range, per image and channel) unless given, the entry's fixed
    ``options`` (e.g. the lesion class of ``seg_dice_lesion``), and for MS-SSIM
    the longest standard weight prefix the size allows (see :func:`~monai_kcross.functional.ms_ssim_weights_for`;
    report the number of scales with the result).
    """
    from .functional.ssim import ms_ssim_weights_for

    info = get_metric_info(name)
    options: dict[str, Any] = {"data_range": "reference", **dict(info.options), **overrides}
    if info.name == "ms_ssim" and "weights" not in options:
        options["weights"] = ms_ssim_weights_for(shape, options.get("win_size", 11))
    if info.name == "iw_ssim" and "weights" not in options:
        options["weights"] = ms_ssim_weights_for(shape, 11)  # same window, same level count
    return options
