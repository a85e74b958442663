"""Functional core: every metric as a plain, differentiable function of batch-first tensors.

All functions take ``y_pred`` and ``y`` of shape ``(B, C, H, W)`` or ``(B, C, H, W, D)`` and return a
``(B, C)`` tensor (one value per image and channel). See :mod:`monai_kcross.functional.intensity` for the
``data_range`` policy and :mod:`monai_kcross.functional.masking` for masks.
"""

from .gmsd import MS_GMSD_WEIGHTS, gmsd, ms_gmsd
from .haarpsi import haarpsi
from .intensity import DataRange, intensity_window, to_unit_range
from .nlpd import nlpd
from .pixelwise import mae, mse, psnr, rmse
from .ssim import MS_SSIM_WEIGHTS, SSIM_PRESETS, ms_ssim, ms_ssim_weights_for, ssim

__all__ = [
    "MS_GMSD_WEIGHTS",
    "MS_SSIM_WEIGHTS",
    "SSIM_PRESETS",
    "DataRange",
    "gmsd",
    "haarpsi",
    "intensity_window",
    "mae",
    "ms_gmsd",
    "ms_ssim",
    "ms_ssim_weights_for",
    "mse",
    "nlpd",
    "psnr",
    "rmse",
    "ssim",
    "to_unit_range",
]
