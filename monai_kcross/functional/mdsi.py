"""MDSI, the mean deviation similarity index (Nafchi, Shahkolaei, Hedjam & Cheriet 2016), slice-wise on volumes.

Follows the authors' MATLAB code (``MDSI.m``) as reproduced by piq 0.8.0:

* intensities on the 0-255 scale; automatic downsampling by ``F = max(1, round(min(H, W) / 256))``;
* luminance ``L = .2989R + .5870G + .1140B`` and chromaticity ``H = .30R + .04G - .35B``,
  ``M = .34R - .60G + .17B``;
* gradient similarity with the fused image ``f = (L_x + L_y) / 2``: ``GS = S(g_x, g_y; C1) + S(g_x, g_f; C2)
  - S(g_y, g_f; C2)`` (``x`` the prediction, ``y`` the reference: MDSI is not symmetric; Prewitt gradients,
  ``C1 = 140``, ``C2 = 55``), chromaticity similarity
  ``CS = (2 (H_x H_y + M_x M_y) + C3) / (H_x^2 + H_y^2 + M_x^2 + M_y^2 + C3)`` with ``C3 = 550``;
* combination ``"sum"``: ``0.6 GS + 0.4 CS`` (default) or ``"mult"``: ``GS^0.2 CS^0.1`` (complex powers);
* deviation pooling: ``MDSI = mean(|GCS^q - mean(GCS^q)|)^o`` with ``q = o = 1/4`` (complex powers,
  principal branch), lower is better.

**Grey images:** the MATLAB code reads RGB; a grey image is scored as R = G = B (as piq does, and as the
authors' values for grey test images are produced), so ``L = 0.9999 g``, ``H = -0.01 g``, ``M = -0.09 g``.
Masks weight both means of the deviation pooling (carried to the downsampled grid by the box average).
"""

from __future__ import annotations

import torch

from .feature_maps import auto_downsample, downsample_factor, gradient_magnitude, similarity_map
from .intensity import DataRange
from .masking import centred, weighted_mean
from .planar import planar_metric
from .safe_math import positive_power, safe_sqrt

__all__ = ["mdsi"]

_C1, _C2, _C3 = 140.0, 55.0, 550.0
_GREY_LHM = (0.2989 + 0.5870 + 0.1140, 0.30 + 0.04 - 0.35, 0.34 - 0.60 + 0.17)


def _mdsi_core(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, combination: str, q: float, o: float
) -> torch.Tensor:
    factor = downsample_factor(*x.shape[-2:])
    x, y = auto_downsample(255.0 * x, factor), auto_downsample(255.0 * y, factor)
    lum_x, lum_y = _GREY_LHM[0] * x, _GREY_LHM[0] * y
    g_x, g_y = gradient_magnitude(lum_x, "prewitt"), gradient_magnitude(lum_y, "prewitt")
    g_f = gradient_magnitude(0.5 * (lum_x + lum_y), "prewitt")
    gs = similarity_map(g_x, g_y, _C1) + similarity_map(g_x, g_f, _C2) - similarity_map(g_y, g_f, _C2)
    chroma = _GREY_LHM[1] ** 2 + _GREY_LHM[2] ** 2  # H_x H_y + M_x M_y = chroma * x * y for grey input
    cs = (2 * chroma * x * y + _C3) / (chroma * (x.square() + y.square()) + _C3)
    if combination == "sum":
        gcs = (0.6 * gs + 0.4 * cs).to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    else:
        complex_dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
        gcs = gs.to(complex_dtype) ** 0.2 * cs.to(complex_dtype) ** 0.1
    powered = gcs**q
    if weights is not None:
        weights = auto_downsample(weights, factor).to(x.dtype)
    difference = centred(powered, weights, "mdsi", "the mask", "nan")  # NaN where the weights are all zero
    deviation = safe_sqrt(difference.real.square() + difference.imag.square())  # |d|, gradient 0 at d = 0
    return positive_power(weighted_mean(deviation, weights, "mdsi", "the mask", "nan"), o)


def mdsi(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    combination: str = "sum",
    q: float = 0.25,
    o: float = 0.25,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean deviation similarity index (lower is better, 0 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``; every channel is scored as a grey image.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``; volumes are scored slice-wise.
        data_range: intensity policy, see :mod:`monai_kcross.functional.intensity`; scaled to 0-255.
        mask: optional region; weights the two means of the deviation pooling.
        combination: ``"sum"`` (default) or ``"mult"``.
        q: exponent applied to the similarity map before pooling.
        o: exponent applied to the pooled deviation.
        slice_axis: spatial axis cut into slices for volumes (default: the last).
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` tensor, values in ``[0, 1)`` (typically below 0.6).
    """
    if combination not in ("sum", "mult"):
        raise ValueError(f"mdsi: combination must be 'sum' or 'mult', got {combination!r}.")

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return _mdsi_core(x, y_, weights, combination, q, o)

    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "mdsi", 8)
