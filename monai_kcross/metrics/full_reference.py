"""Full-reference metrics as MONAI ``CumulativeIterationMetric`` classes.

Each class is a thin wrapper around the function of the same name in :mod:`monai_kcross.functional`; the
arguments are documented there. All take ``y_pred, y`` (and optionally ``mask=``) of shape
``(B, C, H, W[, D])``, buffer ``(B, C)`` scores and reduce them in ``aggregate()``.

Example::

    metric = SSIMMetric(spatial_dims=3, data_range="reference")
    for batch in loader:
        metric(batch["pred"], batch["label"], mask=batch["brain"])
    print(metric.aggregate().item())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from monai.utils import MetricReduction

from .. import functional as F
from .. import perceptual as P
from ..functional.intensity import DataRange
from ..functional.segmentation import segmentation_dice, segmentation_hd95
from ..perceptual.feature_distance import feature_distance
from .base import FullReferenceMetric

__all__ = [
    "CWSSIMMetric",
    "DISTSMetric",
    "DeepIQAMetric",
    "FSIMMetric",
    "FeatureDistanceMetric",
    "GMSDMetric",
    "HaarPSIMetric",
    "IWSSIMMetric",
    "LPIPSMetric",
    "MAEMetric",
    "MDSIMetric",
    "MSEMetric",
    "MultiScaleGMSDMetric",
    "MultiScaleSSIMMetric",
    "NLPDMetric",
    "NMIMetric",
    "PCCMetric",
    "PSNRMetric",
    "RMSEMetric",
    "SSIMMetric",
    "SegmentationDiceMetric",
    "SegmentationHD95Metric",
    "VIFMetric",
    "VSIMetric",
]

Reduction = MetricReduction | str
EmptyMask = Literal["raise", "nan"]
KernelType = Literal["gaussian", "uniform"]
SSIMPreset = Literal["wang", "skimage"]
Covariance = Literal["population", "sample"]


class _ErrorMetric(FullReferenceMetric):
    """Shared constructor of the point-wise error metrics (MAE, MSE, RMSE).

    The positional arguments are MONAI's (``MAEMetric(reduction, get_not_nans)``, same meaning); the package's
    own options are keyword-only. ``data_range=None`` (the default) compares raw intensities, as MONAI does.
    """

    error_function: Callable[..., torch.Tensor]

    def __init__(
        self,
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
        *,
        spatial_dims: int | None = None,
        data_range: DataRange | None = None,
        empty_mask: EmptyMask = "raise",
    ) -> None:
        super().__init__(
            type(self).error_function,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            empty_mask=empty_mask,
        )


class MAEMetric(_ErrorMetric):
    """Mean absolute error (lower is better); see :func:`monai_kcross.functional.mae`."""

    error_function = staticmethod(F.mae)


class MSEMetric(_ErrorMetric):
    """Mean squared error (lower is better); see :func:`monai_kcross.functional.mse`."""

    error_function = staticmethod(F.mse)


class RMSEMetric(_ErrorMetric):
    """Root mean squared error (lower is better); see :func:`monai_kcross.functional.rmse`."""

    error_function = staticmethod(F.rmse)


class PSNRMetric(FullReferenceMetric):
    """Peak signal-to-noise ratio in dB (higher is better); see :func:`monai_kcross.functional.psnr`.

    Args:
        max_val: MONAI's argument, with MONAI's meaning: the peak ``L`` of ``10 log10(L^2 / MSE)`` for raw
            intensities (the same as ``data_range=max_val``). Give ``max_val`` or ``data_range``, not both.
        reduction, get_not_nans: as MONAI's.
        spatial_dims: 2 or 3 (inferred when ``None``).
        data_range: the package's intensity policy (default ``"reference"``: ``L = max(y) - min(y)`` per image,
            see :mod:`monai_kcross.functional.intensity`).
        empty_mask: ``"raise"`` or ``"nan"`` for images whose mask is empty.
    """

    def __init__(
        self,
        max_val: float | None = None,
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
        *,
        spatial_dims: int | None = None,
        data_range: DataRange | None = None,
        empty_mask: EmptyMask = "raise",
    ) -> None:
        if max_val is not None and data_range is not None:
            raise ValueError(f"PSNRMetric: give max_val ({max_val!r}) or data_range ({data_range!r}), not both.")
        if max_val is not None and (isinstance(max_val, bool) or not isinstance(max_val, (int, float))):
            raise TypeError(f"PSNRMetric: max_val must be a number (the peak intensity), got {max_val!r}.")
        data_range = max_val if max_val is not None else "reference" if data_range is None else data_range
        super().__init__(
            F.psnr, reduction, get_not_nans, spatial_dims=spatial_dims, data_range=data_range, empty_mask=empty_mask
        )


class SSIMMetric(FullReferenceMetric):
    """Structural similarity (higher is better); see :func:`monai_kcross.functional.ssim`.

    The positional arguments are MONAI's, in MONAI's order and with its meaning (``data_range=1.0`` is MONAI's
    ``data_range=1.0``); ``None`` window options take the ``preset``'s values. The default ``data_range`` is
    the package's ``"reference"`` policy instead of MONAI's fixed ``1.0`` (see
    :mod:`monai_kcross.functional.intensity`).
    """

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        kernel_type: KernelType | None = None,
        win_size: int | Sequence[int] | None = None,
        kernel_sigma: float | Sequence[float] | None = None,
        k1: float | None = None,
        k2: float | None = None,
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
        *,
        preset: SSIMPreset = "wang",
        covariance: Covariance | None = None,
        empty_mask: EmptyMask = "raise",
    ) -> None:
        super().__init__(
            F.ssim,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            preset=preset,
            kernel_type=kernel_type,
            win_size=win_size,
            kernel_sigma=kernel_sigma,
            k1=k1,
            k2=k2,
            covariance=covariance,
            empty_mask=empty_mask,
        )


class MultiScaleSSIMMetric(FullReferenceMetric):
    """Multi-scale structural similarity (higher is better); see :func:`monai_kcross.functional.ms_ssim`.

    Positional arguments as MONAI's ``MultiScaleSSIMMetric`` (``kernel_size`` is the window size, MONAI's name
    for it here); ``None`` window options take the ``preset``'s values; default ``data_range`` ``"reference"``.
    """

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        kernel_type: KernelType | None = None,
        kernel_size: int | Sequence[int] | None = None,
        kernel_sigma: float | Sequence[float] | None = None,
        k1: float | None = None,
        k2: float | None = None,
        weights: Sequence[float] = F.MS_SSIM_WEIGHTS,
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
        *,
        preset: SSIMPreset = "wang",
        covariance: Covariance | None = None,
        empty_mask: EmptyMask = "raise",
    ) -> None:
        super().__init__(
            F.ms_ssim,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            preset=preset,
            kernel_type=kernel_type,
            win_size=kernel_size,
            kernel_sigma=kernel_sigma,
            k1=k1,
            k2=k2,
            covariance=covariance,
            empty_mask=empty_mask,
            weights=weights,
        )


class GMSDMetric(FullReferenceMetric):
    """Gradient magnitude similarity deviation (lower is better); see :func:`monai_kcross.functional.gmsd`."""

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        t: float = 170.0 / 255.0**2,
        slice_axis: int = -1,
        empty_mask: str = "raise",
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            F.gmsd,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            t=t,
            slice_axis=slice_axis,
            empty_mask=empty_mask,
        )


class MultiScaleGMSDMetric(FullReferenceMetric):
    """Multi-scale GMSD (lower is better); see :func:`monai_kcross.functional.ms_gmsd`."""

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        scale_weights: Sequence[float] = F.MS_GMSD_WEIGHTS,
        alpha: float = 0.5,
        t: float = 170.0 / 255.0**2,
        slice_axis: int = -1,
        empty_mask: str = "raise",
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            F.ms_gmsd,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            scale_weights=scale_weights,
            alpha=alpha,
            t=t,
            slice_axis=slice_axis,
            empty_mask=empty_mask,
        )


class NLPDMetric(FullReferenceMetric):
    """Normalised Laplacian pyramid distance (lower is better); see :func:`monai_kcross.functional.nlpd`."""

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        slice_axis: int = -1,
        empty_mask: str = "raise",
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            F.nlpd,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            slice_axis=slice_axis,
            empty_mask=empty_mask,
        )


class HaarPSIMetric(FullReferenceMetric):
    """Haar wavelet-based perceptual similarity (higher is better); see :func:`monai_kcross.functional.haarpsi`."""

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        subsample: bool = True,
        c: float = 30.0,
        alpha: float = 4.2,
        slice_axis: int = -1,
        empty_mask: str = "raise",
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            F.haarpsi,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            subsample=subsample,
            c=c,
            alpha=alpha,
            slice_axis=slice_axis,
            empty_mask=empty_mask,
        )


class _OptionsMetric(FullReferenceMetric):
    """Shared constructor of metrics whose functional's keyword arguments are stored as given (the options are
    documented with the function)."""

    function: Callable[..., torch.Tensor]

    def __init__(
        self,
        spatial_dims: int | None = None,
        data_range: DataRange = "reference",
        empty_mask: str = "raise",
        reduction: Reduction = MetricReduction.MEAN,
        get_not_nans: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            type(self).function,
            reduction,
            get_not_nans,
            spatial_dims=spatial_dims,
            data_range=data_range,
            empty_mask=empty_mask,
            **options,
        )


class LPIPSMetric(_OptionsMetric):
    """LPIPS v0.1 (lower is better); options (``net``, weights, ``channels``, ``slice_axis``) as in
    :func:`monai_kcross.perceptual.lpips`."""

    function = staticmethod(P.lpips)


class DISTSMetric(_OptionsMetric):
    """DISTS (lower is better); options as in :func:`monai_kcross.perceptual.dists`."""

    function = staticmethod(P.dists)


class DeepIQAMetric(_OptionsMetric):
    """DeepIQA / WaDIQaM-FR predicted quality; options (``weights`` required) as in
    :func:`monai_kcross.perceptual.deepiqa`."""

    function = staticmethod(P.deepiqa)


class FeatureDistanceMetric(_OptionsMetric):
    """In-domain perceptual distance on the pretrained segmenter's features (lower is better); options as in
    :func:`monai_kcross.perceptual.feature_distance.feature_distance`."""

    function = staticmethod(feature_distance)


class VSIMetric(_OptionsMetric):
    """Visual saliency-induced index (higher is better); options (``color``, ``slice_axis``) as in
    :func:`monai_kcross.functional.vsi`."""

    function = staticmethod(F.vsi)


class FSIMMetric(_OptionsMetric):
    """Feature similarity index, grey FSIM (higher is better); options as in :func:`monai_kcross.functional.fsim`."""

    function = staticmethod(F.fsim)


class VIFMetric(_OptionsMetric):
    """Pixel-domain visual information fidelity VIFp (higher is better); options (``scales``, ``sigma_n_sq``,
    ``slice_axis``) as in :func:`monai_kcross.functional.vif_p`."""

    function = staticmethod(F.vif_p)


class IWSSIMMetric(_OptionsMetric):
    """Information content weighted SSIM (higher is better); options (``weights``, ``slice_axis``) as in
    :func:`monai_kcross.functional.iw_ssim`."""

    function = staticmethod(F.iw_ssim)


class CWSSIMMetric(_OptionsMetric):
    """Complex wavelet SSIM (higher is better); options (``levels``, ``orientations``, ``k``, ``slice_axis``) as in
    :func:`monai_kcross.functional.cw_ssim`."""

    function = staticmethod(F.cw_ssim)


class MDSIMetric(_OptionsMetric):
    """Mean deviation similarity index (lower is better); options (``combination``, ``q``, ``o``,
    ``slice_axis``) as in :func:`monai_kcross.functional.mdsi`."""

    function = staticmethod(F.mdsi)


class NMIMetric(_OptionsMetric):
    """Normalised mutual information (higher is better); options (``bins``) as in
    :func:`monai_kcross.functional.nmi`."""

    function = staticmethod(F.nmi)


class PCCMetric(_OptionsMetric):
    """Pearson correlation coefficient / NCC (higher is better); see :func:`monai_kcross.functional.pcc`."""

    function = staticmethod(F.pcc)


class SegmentationDiceMetric(_OptionsMetric):
    """Downstream-segmentation Dice (higher is better): a segmenter runs on both images (or ``labels=`` are given
    at call time); options (``segmenter``, ``classes``, ``foreground``, ``slice_axis``) as in
    :func:`monai_kcross.functional.segmentation.segmentation_scores`."""

    function = staticmethod(segmentation_dice)


class SegmentationHD95Metric(_OptionsMetric):
    """Downstream-segmentation HD95 (lower is better); options as :class:`SegmentationDiceMetric` plus ``spacing``
    and ``percentile``."""

    function = staticmethod(segmentation_hd95)
