"""Functional core: every metric as a plain, differentiable function of batch-first tensors.

All full-reference functions take ``y_pred`` and ``y`` of shape ``(B, C, H, W)`` or ``(B, C, H, W, D)`` and return a
``(B, C)`` tensor (one value per image and channel). See :mod:`monai_kcross.functional.intensity` for the
``data_range`` policy (fixed windows and normalisation policies) and :mod:`monai_kcross.functional.masking`
for masks. The no-reference scores :func:`niqe` and :func:`brisque` take ``y_pred`` only
(:mod:`monai_kcross.functional.no_reference`), as do the MR artefact scores of
:mod:`monai_kcross.functional.artefacts` (CPBD, blur effect, variance of the Laplacian, mean line correlation,
average edge strength, total variation). The downstream-segmentation scores
(:mod:`monai_kcross.functional.segmentation`: Dice and HD95 between segmentations of both images) and the radiomic
features (:mod:`monai_kcross.functional.radiomics`) have their own modules.

>>> import torch
>>> from monai_kcross.functional import mae, psnr, ssim
>>> reference = torch.zeros(1, 1, 32, 32)
>>> reference[..., 8:24, 8:24] = 1.0
>>> synthesized = 0.9 * reference  # (B, C, H, W); a (B, C, H, W, D) volume works the same way
>>> ssim(reference, reference, data_range=1.0)
tensor([[1.]])
>>> psnr(synthesized, reference, data_range=1.0), mae(synthesized, reference)
(tensor([[26.0206]]), tensor([[0.0250]]))
"""

from .artefacts import (
    average_edge_strength,
    blur_effect,
    cpbd,
    laplacian_variance,
    mean_line_correlation,
    total_variation,
)
from .correlation import pcc
from .cw_ssim import cw_ssim
from .fsim import fsim
from .gmsd import MS_GMSD_WEIGHTS, gmsd, ms_gmsd
from .haarpsi import haarpsi
from .intensity import (
    DataRange,
    IntensityPolicy,
    intensity_policy_name,
    intensity_window,
    parse_data_range,
    to_unit_range,
)
from .iw_ssim import iw_ssim
from .mdsi import mdsi
from .mutual_information import nmi
from .nlpd import nlpd
from .no_reference import (
    brisque,
    brisque_features,
    fit_brisque_model,
    fit_niqe_model,
    load_brisque_model,
    load_niqe_model,
    niqe,
    niqe_patch_features,
    save_brisque_model,
    save_niqe_model,
)
from .pixelwise import mae, mse, psnr, rmse
from .segmentation import Segmenter, as_segmenter, segmentation_dice, segmentation_hd95, segmentation_scores
from .ssim import MS_SSIM_WEIGHTS, SSIM_PRESETS, ms_ssim, ms_ssim_weights_for, ssim
from .vif import vif_p
from .vsi import vsi

__all__ = [
    "MS_GMSD_WEIGHTS",
    "MS_SSIM_WEIGHTS",
    "SSIM_PRESETS",
    "DataRange",
    "IntensityPolicy",
    "Segmenter",
    "as_segmenter",
    "average_edge_strength",
    "blur_effect",
    "brisque",
    "brisque_features",
    "cpbd",
    "cw_ssim",
    "fit_brisque_model",
    "fit_niqe_model",
    "fsim",
    "gmsd",
    "haarpsi",
    "intensity_policy_name",
    "intensity_window",
    "iw_ssim",
    "laplacian_variance",
    "load_brisque_model",
    "load_niqe_model",
    "mae",
    "mdsi",
    "mean_line_correlation",
    "ms_gmsd",
    "ms_ssim",
    "ms_ssim_weights_for",
    "mse",
    "niqe",
    "niqe_patch_features",
    "nlpd",
    "nmi",
    "parse_data_range",
    "pcc",
    "psnr",
    "rmse",
    "save_brisque_model",
    "save_niqe_model",
    "segmentation_dice",
    "segmentation_hd95",
    "segmentation_scores",
    "ssim",
    "to_unit_range",
    "total_variation",
    "vif_p",
    "vsi",
]
