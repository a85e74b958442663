"""A registry of every metric of the package, with its direction, value range and 3-D behaviour.

Full-reference metrics (``f(y_pred, y)``) are listed by :func:`list_metrics`, no-reference ones (``f(y_pred)``:
NIQE, BRISQUE and the MR artefact scores) by :func:`list_no_reference_metrics`, set-level ones (a generated image
set against a real one: FID, KID, MMD, PRDC, ...) by :func:`list_set_level_metrics`; :func:`create_metric` and
:func:`create_handler` build any of them.

>>> import monai_kcross
>>> metric = monai_kcross.create_metric("ssim", spatial_dims=3)
>>> [info.name for info in monai_kcross.list_metrics()]  # doctest: +ELLIPSIS
['mae', 'mse', 'rmse', 'psnr', 'ssim', 'ms_ssim', ...]
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
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
    "SetLevelMetricInfo",
    "create_handler",
    "create_metric",
    "default_options",
    "get_metric_info",
    "get_no_reference_metric_info",
    "get_set_level_metric_info",
    "list_metrics",
    "list_no_reference_metrics",
    "list_set_level_metrics",
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
K = _Lazy("monai_kcross.metrics.kcross")
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
        doi: DOI of the defining publication ("" where none is recorded).

    ``function``, ``metric_class`` and ``handler_class`` are imported on first use (stored as ``*_ref``).
        options: fixed options of the function that define this entry (e.g. ``classes=("lesion",)``); part of
            :func:`default_options` and of the metric classes built by :func:`create_metric`.
        kind: ``"full-reference"`` (a formula) or ``"learned"`` (a trained network computes the score).
        masks: whether ``mask=`` restricts the score to an evaluation region (K-CROSS scores whole slices).
        inputs: further images of a case the function takes by keyword, besides ``y_pred`` and ``y`` (K-CROSS:
            ``source``, the source-contrast image, and ``lesion``, its lesion mask); callers pass those they have.
        model_option: the keyword through which callers choose the trained model (``"network"`` for K-CROSS,
            ``"segmenter"`` for the downstream-segmentation scores: a checkpoint, a MONAI bundle folder or a
            callable, see :func:`~monai_kcross.functional.segmentation.as_segmenter`; ``""``: none).
        own_front_end: the metric maps intensities with its own trained front end (the reference's window), so a
            panel passes it the reference window whatever ``data_range`` policy the other metrics use.
        nan_means: why the metric gives NaN for an image, as reports say it.
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
    doi: str = ""
    kind: str = "full-reference"
    masks: bool = True
    inputs: tuple[str, ...] = ()
    model_option: str = ""
    own_front_end: bool = False
    nan_means: str = "e.g. an empty mask"

    @property
    def uses_segmenter(self) -> bool:
        """Whether the metric runs a segmentation network (the downstream-segmentation scores)."""
        return self.model_option == "segmenter"

    def score(
        self,
        y_pred: torch.Tensor,
        y: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        inputs: Mapping[str, torch.Tensor | None] | None = None,
        models: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """The metric on a batch, fed what it declares: one call for every kind of entry (formula or learned).

        Args:
            y_pred: images ``(B, C, H, W[, D])``; ``y``: their references, same shape.
            mask: evaluation region, passed where the metric takes one (:attr:`masks`); a metric without region
                masks (K-CROSS) scores the whole image.
            inputs: further images of the case by name (``source``, ``lesion``, ...); those the metric declares
                in :attr:`inputs` are passed, the others ignored.
            models: trained models by option name (``network``, ``segmenter``); the one named by
                :attr:`model_option` is passed (``None``: the package's own).
            options: the function's options (see :func:`default_options`).

        Returns:
            ``(B, C)`` scores.
        """
        call = dict(options)
        if self.masks:
            call["mask"] = mask
        call.update({key: value for key, value in (inputs or {}).items() if key in self.inputs and value is not None})
        if self.model_option and models and models.get(self.model_option) is not None:
            call[self.model_option] = models[self.model_option]
        return self.function(y_pred, y, **call)


_INF = math.inf
_REGISTRY: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "mae",
            F.mae,
            M.MAEMetric,
            H.MAEHandler,
            False,
            (0.0, _INF),
            0.0,
            "native",
            "mean absolute error",
            checked_against="MONAI 1.6.1 MAEMetric (1e-6); NumPy inside masks (1e-12 relative)",
        ),
        MetricInfo(
            "mse",
            F.mse,
            M.MSEMetric,
            H.MSEHandler,
            False,
            (0.0, _INF),
            0.0,
            "native",
            "mean squared error",
            checked_against="MONAI 1.6.1 MSEMetric (1e-6); NumPy inside masks (1e-12 relative)",
        ),
        MetricInfo(
            "rmse",
            F.rmse,
            M.RMSEMetric,
            H.RMSEHandler,
            False,
            (0.0, _INF),
            0.0,
            "native",
            "root MSE",
            checked_against="MONAI 1.6.1 RMSEMetric (1e-6); root of scikit-image mean_squared_error inside masks "
            "(1e-12 relative)",
        ),
        MetricInfo(
            "psnr",
            F.psnr,
            M.PSNRMetric,
            H.PSNRHandler,
            True,
            (-_INF, _INF),
            _INF,
            "native",
            "PSNR in dB",
            checked_against="MONAI 1.6.1 PSNRMetric (float32, 1e-4 dB); scikit-image peak_signal_noise_ratio "
            "(float64, 1e-6 relative)",
        ),
        MetricInfo(
            "ssim",
            F.ssim,
            M.SSIMMetric,
            H.SSIMHandler,
            True,
            (-1.0, 1.0),
            1.0,
            "native",
            "Wang et al. 2004",
            checked_against="scikit-image structural_similarity, Gaussian window (float64 1e-6, float32 1e-4), "
            "2-D and 3-D; MONAI 1.6.1 SSIMMetric (1e-5); masked: the scikit-image/MONAI map averaged in the mask",
            doi="10.1109/TIP.2003.819861",
        ),
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
            checked_against="MONAI 1.6.1 MultiScaleSSIMMetric (1e-5); pytorch-msssim (1e-4), 2-D and 3-D",
            doi="10.1109/ACSSC.2003.1292216",
        ),
        MetricInfo(
            "gmsd",
            F.gmsd,
            M.GMSDMetric,
            H.GMSDHandler,
            False,
            (0.0, 1.0),
            0.0,
            "slice-wise",
            "Xue et al. 2014",
            checked_against="piq 0.8.0 golden values (1e-9); authors' GMSD.m in GNU Octave, std2 (N-1) correction "
            "applied (1e-9)",
            doi="10.1109/TIP.2013.2293423",
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
            checked_against="piq 0.8.0 golden values (1e-9)",
        ),
        MetricInfo(
            "nlpd",
            F.nlpd,
            M.NLPDMetric,
            H.NLPDHandler,
            False,
            (0.0, _INF),
            0.0,
            "slice-wise",
            "Laparra et al. 2016",
            checked_against="authors' NLP_dist.m in GNU Octave, golden values (1e-9)",
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
            checked_against="authors' haarPsi.py and piq 0.8.0 golden values (1e-9)",
            doi="10.1016/j.image.2017.11.001",
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
            checked_against="piq 0.8.0 golden values (colour 1e-9; grey form: piq with the colour prior off, "
            "5e-5); authors' MATLAB value on TID2013 I01 (1e-5, needs PIQ_ASSETS)",
            doi="10.1109/TIP.2014.2346028",
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
            checked_against="piq 0.8.0 golden values (2e-5, median convention); authors' MATLAB values on "
            "goldhill and TID2013 luma (1e-4, needs PIQ_ASSETS)",
            doi="10.1109/TIP.2011.2109730",
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
            checked_against="piq 0.8.0 golden values (1e-9); authors' MATLAB values on goldhill and TID2013 "
            "luma (1e-4, needs PIQ_ASSETS)",
            doi="10.1109/TIP.2005.859378",
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
            checked_against="piq 0.8.0 golden values (1e-9); authors' MATLAB value on goldhill (1e-9, needs "
            "PIQ_ASSETS)",
            doi="10.1109/TIP.2010.2092435",
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
            checked_against="piq 0.8.0 golden values (1e-12); authors' MATLAB values on goldhill, sum and mult "
            "(1e-9, needs PIQ_ASSETS)",
            doi="10.1109/ACCESS.2016.2604042",
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
            checked_against="pyrtools' steerable pyramid (port of buildSCFpyr) with cwssim_index.m pooling, "
            "golden values (1e-9)",
            doi="10.1109/TIP.2009.2025923",
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
            doi="10.1016/S0031-3203(98)00091-0",
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
            checked_against="NumPy corrcoef (1e-9)",
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
            checked_against="lpips 0.1.4 with the same deterministic random weights, VGG/AlexNet/SqueezeNet, "
            "golden values (1e-5)",
            doi="10.1109/CVPR.2018.00068",
            kind="learned",
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
            checked_against="DISTS_pytorch 0.1 with the same deterministic random weights, golden values (1e-5)",
            doi="10.1109/TPAMI.2020.3045810",
            kind="learned",
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
            checked_against="pyiqa's WaDIQaM-FR network with the same deterministic random weights, golden values "
            "(1e-5)",
            doi="10.1109/TIP.2017.2760518",
            kind="learned",
        ),
        MetricInfo(
            "kcross",
            K.kcross,
            K.KCrossMetric,
            H.KCrossHandler,
            True,
            (0.0, 1.0),
            1.0,
            "slice-wise",
            "K-CROSS (k-space, lesion and cross-contrast structure encoders; the package's bundle 1.1.0)",
            symmetric=False,
            checked_against="the bundle's scores pinned by tests/golden/make_kcross_bundle_golden.py and "
            "recomputed without kcross() (weights read with torch.load, NumPy front end); exactly 1 for identical "
            "images; the paper's axioms and a held-out simulator (docs/kcross.md)",
            kind="learned",
            masks=False,
            inputs=("source", "lesion"),
            model_option="network",
            own_front_end=True,
            nan_means="it found no slice with enough reference foreground to score: it skips nearly empty slices",
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
            kind="learned",
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
                model_option="segmenter",
                checked_against="NumPy Dice (1e-12)" if kind == "dice" else "scipy k-d tree HD95 (1e-6 relative)",
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
        checked_against: the independent reference the implementation is tested against, and the tolerance.
        doi: DOI of the defining publication ("" where none is recorded).
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
    checked_against: str = ""
    doi: str = ""


_NO_REFERENCE: dict[str, NoReferenceMetricInfo] = {
    info.name: info
    for info in (
        NoReferenceMetricInfo(
            "niqe",
            F.niqe,
            NM.NIQEMetric,
            NH.NIQEHandler,
            False,
            (0.0, _INF),
            "slice-wise",
            "Mittal et al. 2013",
            False,
            checked_against="authors' MATLAB code in GNU Octave: scores (1e-9 relative), fitted model (1e-10)",
            doi="10.1109/LSP.2012.2227726",
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
            checked_against="features: authors' MATLAB code in GNU Octave (1e-10), piq 0.8.0 (1e-5; shape "
            "parameters 1e-3); scores: the model on those features (1e-9)",
            doi="10.1109/TIP.2012.2214050",
        ),
        NoReferenceMetricInfo(
            "cpbd",
            A.cpbd,
            NM.CPBDMetric,
            NH.CPBDHandler,
            True,
            (0.0, 1.0),
            "slice-wise",
            "Narvekar & Karam 2011",
            checked_against="cpbd 1.0.7 (the authors' code ported) golden values (2e-3: exact but for one tie of "
            "~600 edges on camera)",
            doi="10.1109/TIP.2011.2131660",
        ),
        NoReferenceMetricInfo(
            "blur_effect",
            A.blur_effect,
            NM.BlurEffectMetric,
            NH.BlurEffectHandler,
            False,
            (0.0, 1.0),
            "native",
            "Crete-Roffet et al. 2007",
            checked_against="skimage.measure.blur_effect, 2-D and 3-D (1e-12)",
        ),
        NoReferenceMetricInfo(
            "laplacian_variance",
            A.laplacian_variance,
            NM.LaplacianVarianceMetric,
            NH.LaplacianVarianceHandler,
            True,
            (0.0, _INF),
            "native",
            "Pech-Pacheco et al. 2000",
            checked_against="np.var(skimage.filters.laplace(x)), 2-D and 3-D (1e-12 relative)",
            doi="10.1109/ICPR.2000.903548",
        ),
        NoReferenceMetricInfo(
            "mlc",
            A.mean_line_correlation,
            NM.MeanLineCorrelationMetric,
            NH.MeanLineCorrelationHandler,
            True,
            (-1.0, 1.0),
            "slice-wise",
            "Schuppert et al. 2022",
            checked_against="medimetrics MLC golden values (1e-12)",
        ),
        NoReferenceMetricInfo(
            "mslc",
            A.mean_line_correlation,
            NM.MeanLineCorrelationMetric,
            NH.MeanLineCorrelationHandler,
            False,
            (-1.0, 1.0),
            "slice-wise",
            "Schuppert et al. 2022",
            options=(("shift", "half"),),
            checked_against="medimetrics MSLC golden values (1e-12)",
        ),
        NoReferenceMetricInfo(
            "aes",
            A.average_edge_strength,
            NM.AverageEdgeStrengthMetric,
            NH.AverageEdgeStrengthHandler,
            True,
            (0.0, _INF),
            "slice-wise",
            "Pannetier et al.; Marchetto et al. 2025",
            checked_against="Marchetto et al.'s aes code, with and without mask, golden values (1e-12 relative)",
            doi="10.1007/s10334-025-01266-y",
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
            checked_against="medimetrics MeanTotalVar and torchmetrics TV golden values, zero-bordered image "
            "(1e-12 relative); the definition by hand, and a 3-D ramp",
        ),
    )
}

SL = _Lazy("monai_kcross.functional.set_level")
SM = _Lazy("monai_kcross.metrics.set_level")
SH = _Lazy("monai_kcross.handlers.set_level")


@dataclass(frozen=True)
class SetLevelMetricInfo(_LazyEntry):
    """What a user needs to know to read a set-level metric (a distance between a generated and a real image set).

    Attributes:
        name: registry key.
        function: functional form on features ``(N, F)`` (see :mod:`monai_kcross.functional.set_level`).
        metric_class: the cumulative metric (``metric(y_pred=generated, y=real)`` batch by batch, images through
            its feature extractor or features with ``extractor=None``; ``aggregate()`` gives a
            :class:`~monai_kcross.metrics.set_level.SetLevelResult`).
        handler_class: :class:`~monai_kcross.handlers.SetLevelHandler`, which takes the built metric.
        higher_is_better: direction of the primary value (the first of ``values``).
        value_range: ``(low, high)`` of the primary value.
        ideal: primary value of two sets with the same distribution (``None`` where none).
        values: the keys of ``aggregate().values``, the primary one first.
        reference: the defining publication.
        checked_against: the independent reference the implementation is tested against.
        doi: DOI of the defining publication ("" where none is recorded).
    """

    name: str
    function_ref: str
    metric_class_ref: str
    handler_class_ref: str
    higher_is_better: bool
    value_range: tuple[float, float]
    ideal: float | None
    values: tuple[str, ...]
    reference: str
    checked_against: str = ""
    doi: str = ""


_SET_LEVEL: dict[str, SetLevelMetricInfo] = {
    info.name: info
    for info in (
        SetLevelMetricInfo(
            "fid",
            SL.fid,
            SM.FIDMetric,
            SH.SetLevelHandler,
            False,
            (0.0, _INF),
            0.0,
            ("fid",),
            "Heusel et al. 2017 (Fréchet distance of feature sets)",
            checked_against="MONAI 1.6.1 get_fid_score and SciPy sqrtm on the same features",
        ),
        SetLevelMetricInfo(
            "kid",
            SL.kid,
            SM.KIDMetric,
            SH.SetLevelHandler,
            False,
            (-_INF, _INF),
            0.0,
            ("kid_mean", "kid_std"),
            "Bińkowski et al. 2018 (unbiased polynomial-kernel MMD over subsets)",
            checked_against="the unbiased MMD estimator written out directly",
        ),
        SetLevelMetricInfo(
            "mmd",
            SL.mmd,
            SM.MMDMetric,
            SH.SetLevelHandler,
            False,
            (-_INF, _INF),
            0.0,
            ("mmd",),
            "Gretton et al. 2012 (squared MMD, Gaussian or polynomial kernel)",
            checked_against="the biased and unbiased estimators written out directly",
        ),
        SetLevelMetricInfo(
            "prdc",
            SL.prdc,
            SM.PRDCMetric,
            SH.SetLevelHandler,
            True,
            (0.0, 1.0),
            1.0,
            ("precision", "recall", "density", "coverage"),
            "Naeem et al. 2020 (precision, recall, density, coverage)",
            checked_against="brute-force nearest neighbours and known cases",
        ),
        SetLevelMetricInfo(
            "diversity",
            SL.pairwise_diversity,
            SM.DiversityMetric,
            SH.SetLevelHandler,
            True,
            (0.0, _INF),
            None,
            ("diversity", "diversity_real"),
            "mean pairwise feature distance within the generated set",
            checked_against="all pairs by hand",
        ),
        SetLevelMetricInfo(
            "memorisation",
            SL.memorisation,
            SM.MemorisationMetric,
            SH.SetLevelHandler,
            False,
            (0.0, 1.0),
            0.0,
            ("near_copy_fraction", "threshold", "median_ratio"),
            "nearest-neighbour distance ratios of generated to training images",
            checked_against="planted copies flagged, fresh samples not",
        ),
        SetLevelMetricInfo(
            "frd",
            SL.frd,
            SM.FRDMetric,
            SH.SetLevelHandler,
            False,
            (-_INF, _INF),
            None,
            ("frd",),
            "Konz, Osuala et al. 2026 (Fréchet radiomic distance)",
            checked_against="frd-score 1.0.1 on PyRadiomics features, golden values",
        ),
        SetLevelMetricInfo(
            "radiomic_agreement",
            SL.concordance,
            SM.RadiomicAgreementMetric,
            SH.SetLevelHandler,
            True,
            (-1.0, 1.0),
            1.0,
            ("median_ccc", "reproducible_fraction"),
            "Lin 1989 (concordance correlation of paired radiomic features)",
            checked_against="Lin's formula written out in NumPy",
        ),
    )
}

_ALIASES = {"ncc": "pcc", "vif": "vif_p", "vifp": "vif_p", "k_cross": "kcross"}


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


def list_set_level_metrics() -> list[SetLevelMetricInfo]:
    """All registered set-level metrics (generated set against real set), in a stable order."""
    return list(_SET_LEVEL.values())


def get_set_level_metric_info(name: str) -> SetLevelMetricInfo:
    """Look a set-level metric up by name (case-insensitive, ``-`` or ``_``)."""
    try:
        return _SET_LEVEL[_key(name)]
    except KeyError:
        raise ValueError(f"unknown set-level metric {name!r}; available: {', '.join(_SET_LEVEL)}.") from None


def _any_info(name: str) -> MetricInfo | NoReferenceMetricInfo | SetLevelMetricInfo:
    key = _key(name)
    for table in (_REGISTRY, _NO_REFERENCE, _SET_LEVEL):
        if key in table:
            return table[key]
    raise ValueError(
        f"unknown metric {name!r}; full-reference: {', '.join(_REGISTRY)}; no-reference: {', '.join(_NO_REFERENCE)}; "
        f"set-level: {', '.join(_SET_LEVEL)}."
    )


def create_metric(name: str, **kwargs: Any) -> Any:
    """Build the MONAI metric registered under ``name`` (full-reference, no-reference or set-level) with the given
    keyword arguments."""
    return _build(name, "metric_class", kwargs)


def create_handler(name: str, **kwargs: Any) -> Any:
    """Build the ignite handler registered under ``name`` (``output_transform``, metric keyword arguments; for a
    set-level metric also ``key``, ``batch_keys``, ``save_details``, the rest building its metric)."""
    return _build(name, "handler_class", kwargs)


_HANDLER_OPTIONS = ("output_transform", "key", "batch_keys", "save_details")


def _build(name: str, kind: str, kwargs: dict[str, Any]) -> Any:
    info = _any_info(name)
    if isinstance(info, SetLevelMetricInfo) and kind == "handler_class":  # the handler takes the built metric
        handler = {key: kwargs.pop(key) for key in _HANDLER_OPTIONS if key in kwargs}
        return info.handler_class(info.metric_class(**kwargs), **handler)
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
