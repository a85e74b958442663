"""BRISQUE and NIQE, two classic no-reference ("blind") image-quality scores, on 2-D images and volumes.

Both describe an image by the statistics of its *mean-subtracted contrast-normalised* (MSCN) coefficients
``(I - mu) / (sigma + 1)`` (``mu``, ``sigma``: local mean and deviation under a 7x7 Gaussian window with
``sigma = 7/6``, intensities on the 0-255 grey-level scale of the originals), at the full and at half
resolution (MATLAB ``imresize(I, 0.5)``: bicubic, antialiased, symmetric borders):

* a generalised Gaussian (GGD) fit of the coefficients and asymmetric generalised Gaussian (AGGD) fits of the
  products of horizontally, vertically and diagonally neighbouring coefficients, each by moment matching
  against the authors' shape grid ``0.2:0.001:10`` (here a nearest-neighbour search on the monotone moment
  ratio, equivalent to the originals' exhaustive ``min``);
* **BRISQUE** (Mittal, Moorthy & Bovik, IEEE TIP 2012) computes 18 features per scale on the whole image
  (zero-padded filtering, circular shifts, exactly the authors' ``brisque_feature.m``) and maps the 36
  features to a score with an RBF regressor ``sum_i c_i exp(-gamma ||s(f) - v_i||^2) - rho`` on features
  scaled to ``[-1, 1]`` (libsvm's ``svm-scale``);
* **NIQE** (Mittal, Soundararajan & Bovik, IEEE SPL 2013) computes 18 AGGD features per scale on every
  ``P x P`` patch (replicate-padded filtering, shifts inside the patch, the authors' ``computefeature.m``),
  fits a multivariate Gaussian to the patches of the test image and reports its distance to a *pristine*
  model, ``sqrt((mu_p - mu_t)^T pinv((S_p + S_t) / 2) (mu_p - mu_t))``. The pristine model is fitted with
  :func:`fit_niqe_model` on the sharpest patches (local deviation above ``0.75`` of the image's maximum) of
  pristine images.

Both scores are *lower is better*. They are only meaningful against models fitted on the same kind of image,
so the model is an explicit argument (see ``nr_models/README.md`` for the recipes of the shipped ones):

* ``"mri"`` (default): fitted by ``scripts/fit_no_reference_models.py`` on healthy low-noise brain slices of
  the package's MR simulator (:func:`monai_kcross.data.synthesize_brain`; T1w, T2w, PDw, FLAIR). NIQE uses
  32x32 patches so that 112x128 slices hold 12 of them. BRISQUE's regressor predicts ``100 (1 - SSIM)``
  of blurred, noisy, ringing and ghosted versions of those slices.
* ``"natural"``: the same recipes on the photographs bundled with scikit-image (96x96 NIQE patches as in the
  paper; BRISQUE trained on blur, white noise and JPEG).
* a ``dict`` or a file path: e.g. the authors' own parameters, read by :func:`load_niqe_model` (NIQE's
  ``modelparameters.mat``) or :func:`load_brisque_model` (the LIVE ``allmodel``/``allrange`` libsvm files or
  piq's ``brisque_svm_weights.pt``). The shipped BRISQUE models are *not* the LIVE model: LIVE's DMOS are not
  available offline, the shipped regressors predict an SSIM-based degradation on a 0-100 scale instead.

Intensities follow the package's policy (:mod:`monai_kcross.functional.intensity`): ``data_range="image"``
(default) maps each image's own min-max onto the 0-255 scale (for volumes: the whole volume's, before slicing),
a number ``L`` or a window ``(low, high)`` fixes it. Volumes are scored slice-wise along ``slice_axis`` with
the package's slice mechanism (:mod:`monai_kcross.functional.planar`), averaging over the slices that are not
constant (empty background slices are skipped). Images whose statistics are undefined (e.g. one with no
negative neighbour products, or no NIQE patch with defined features) score NaN, and so does a volume with such a
slice. Scores are differentiable in the image (the fitted shapes are piecewise constant and pass no gradient);
undefined statistics are masked out of the graph, so gradients stay finite on zero-background MR images.
``data_range="reference"`` is accepted as an alias of ``"image"``.

Deviations from the authors' MATLAB code, all outside the cases the golden tests cover: NIQE drops patches
whose features are undefined (constant patches) from both the mean and the covariance of the test image
(MATLAB's ``nanmean`` keeps their arbitrary shape value 0.2); with a single usable patch the test covariance is
taken as zero (MATLAB's ``nancov`` returns a scalar for one row); the half-resolution image has
``ceil(n / 2)`` pixels as in MATLAB (piq uses ``floor``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .filtering import gaussian_kernel1d, pad2d
from .intensity import DataRange, intensity_window
from .planar import planar_metric
from .validation import check_image_pair, compute_dtype

__all__ = [
    "BRISQUE_MODELS",
    "NIQE_MODELS",
    "NR_MODEL_DIR",
    "aggd_parameters",
    "brisque",
    "brisque_features",
    "fit_brisque_model",
    "fit_niqe_model",
    "get_brisque_model",
    "get_niqe_model",
    "ggd_parameters",
    "imresize_half",
    "load_brisque_model",
    "load_niqe_model",
    "mscn_coefficients",
    "niqe",
    "niqe_distance",
    "niqe_patch_features",
    "save_brisque_model",
    "save_niqe_model",
]

NR_MODEL_DIR = Path(__file__).resolve().parent / "nr_models"
NIQE_MODELS = {"mri": "niqe_mri.npz", "natural": "niqe_natural.npz"}
BRISQUE_MODELS = {"mri": "brisque_mri.npz", "natural": "brisque_natural.npz"}
NUM_FEATURES = 36
_GRID_START, _GRID_STEP, _GRID_SIZE = 0.2, 0.001, 9801  # MATLAB 0.2:0.001:10
_BRISQUE_MIN_SIZE = 16

NIQEModel = Mapping[str, Any]
BRISQUEModel = Mapping[str, Any]


# --------------------------------------------------------------------------------------------------------------
# natural-scene statistics
# --------------------------------------------------------------------------------------------------------------


def mscn_coefficients(
    x: torch.Tensor, padding: str = "zeros", stability: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-subtracted contrast-normalised coefficients and the local deviation.

    Args:
        x: images ``(..., H, W)`` on the 0-255 grey-level scale.
        padding: border handling of the 7x7 Gaussian window: ``"zeros"`` (MATLAB ``filter2``, BRISQUE) or
            ``"replicate"`` (``imfilter(..., 'replicate')``, NIQE).
        stability: the constant added to the deviation (1 on the 0-255 scale in both papers).

    Returns:
        ``(mscn, sigma)``, both shaped like ``x``: ``(x - mu) / (sigma + stability)`` and
        ``sigma = sqrt(|E[x^2] - mu^2|)``.
    """
    window = gaussian_kernel1d(7, 7.0 / 6.0).to(dtype=x.dtype, device=x.device)
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:])
    both = torch.cat([flat, flat * flat], dim=1)  # filter x and x^2 in one pass
    both = pad2d(both, (3, 3, 3, 3), padding)
    both = F.conv2d(both, window.view(1, 1, 7, 1).expand(2, 1, 7, 1), groups=2)
    both = F.conv2d(both, window.view(1, 1, 1, 7).expand(2, 1, 1, 7), groups=2)
    mu, second = both[:, :1].reshape(shape), both[:, 1:].reshape(shape)
    variance = (second - mu * mu).abs()
    # exactly 0 where the image is flat, with a finite (zero) gradient there
    sigma = torch.where(variance > 0, variance.clamp_min(torch.finfo(x.dtype).tiny).sqrt(), 0.0)
    return (x - mu) / (sigma + stability), sigma


@functools.lru_cache(maxsize=2)
def _moment_ratio_table(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape grid and its moment ratio, increasing along the grid (float64, CPU).

    ``"aggd"``: ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))``; ``"ggd"``: minus its inverse, so that both are
    searched the same way.
    """
    grid = _GRID_START + _GRID_STEP * torch.arange(_GRID_SIZE, dtype=torch.float64)
    log_ratio = 2 * torch.lgamma(2 / grid) - torch.lgamma(1 / grid) - torch.lgamma(3 / grid)
    table = log_ratio.exp() if kind == "aggd" else -(-log_ratio).exp()
    return grid, table


def _nearest_shape(ratio: torch.Tensor, kind: str) -> torch.Tensor:
    """Grid shape whose moment ratio is nearest to ``ratio`` (first grid point on ties); NaN stays NaN."""
    grid, table = _moment_ratio_table(kind)
    grid, table = grid.to(ratio.device), table.to(ratio.device)
    value = ratio.detach().to(torch.float64)
    value = value if kind == "aggd" else -value
    upper = torch.searchsorted(table, value.contiguous()).clamp(max=_GRID_SIZE - 1)
    lower = (upper - 1).clamp(min=0)
    take_lower = (value - table[lower]).abs() <= (table[upper] - value).abs()
    index = torch.where(take_lower, lower, upper)
    shape = grid[index].to(ratio.dtype)
    return torch.where(torch.isnan(ratio), torch.full_like(shape, math.nan), shape)


def _ggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GGD moment fit ``(shape, sigma, defined)`` with finite placeholders where undefined.

    Undefined fits get placeholder values instead of NaN so that no NaN enters the autograd graph; callers mask
    them with ``defined``.
    """
    second = (x * x).mean(-1)
    first = x.abs().mean(-1)
    defined = first > 0
    one = torch.ones((), dtype=x.dtype, device=x.device)
    ratio = second / torch.where(defined, first * first, one)
    shape = _nearest_shape(torch.where(defined, ratio, one), "ggd")
    return shape, torch.where(defined, second, one).sqrt(), defined


def _aggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """AGGD moment fit ``(shape, left_std, right_std, defined)``, placeholders where undefined (see ``_ggd_fit``)."""
    square = x * x
    negative, positive = x < 0, x > 0
    n_left, n_right = negative.sum(-1), positive.sum(-1)
    defined = (n_left > 0) & (n_right > 0)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    left = torch.where(negative, square, zero).sum(-1) / n_left.clamp(min=1)
    right = torch.where(positive, square, zero).sum(-1) / n_right.clamp(min=1)
    left = torch.where(n_left > 0, left, one).sqrt()
    right = torch.where(n_right > 0, right, one).sqrt()
    ratio = left / right
    r_hat = x.abs().mean(-1).square() / torch.where(defined, square.mean(-1), one)
    r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1).square()
    return _nearest_shape(torch.where(defined, r_norm, one), "aggd"), left, right, defined


def ggd_parameters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-mean generalised Gaussian fit by moment matching (BRISQUE's ``estimateggdparam``).

    Args:
        x: samples along the last axis, ``(..., n)``.

    Returns:
        ``(shape, sigma)``, each ``(...)``: the grid shape ``alpha`` in ``[0.2, 10]`` whose ratio
        ``Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2`` is nearest to ``E[x^2] / E[|x|]^2``, and ``sqrt(E[x^2])``.
        NaN where all samples are zero.
    """
    shape, sigma, defined = _ggd_fit(x)
    return shape.where(defined, math.nan), sigma.where(defined, math.nan)


def aggd_parameters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-mode asymmetric generalised Gaussian fit by moment matching (``estimateaggdparam``).

    Args:
        x: samples along the last axis, ``(..., n)``.

    Returns:
        ``(shape, left_std, right_std)``, each ``(...)``: the grid shape whose ratio
        ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is nearest to the normalised ``E[|x|]^2 / E[x^2]``, and the
        root mean squares of the negative and of the positive samples. NaN where either side has no sample.
    """
    shape, left, right, defined = _aggd_fit(x)
    return tuple(v.where(defined, math.nan) for v in (shape, left, right))  # type: ignore[return-value]


def _gamma_ratio(numerator: float, denominator: float, alpha: torch.Tensor) -> torch.Tensor:
    """``Gamma(numerator / alpha) / Gamma(denominator / alpha)``."""
    return (torch.lgamma(numerator / alpha) - torch.lgamma(denominator / alpha)).exp()


def imresize_half(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``imresize(x, 0.5)`` (bicubic, antialiased, symmetric borders) on the last two axes.

    At scale 1/2 the antialiased cubic kernel (``a = -0.5``) has 8 taps at distances ``0.5, ..., 3.5`` input
    pixels from each output centre (input coordinate ``2 i + 0.5``); they sum to one, so MATLAB's weight
    normalisation is a no-op. Output sides are ``ceil(n / 2)``.

    Args:
        x: images ``(..., H, W)``.

    Returns:
        ``(..., ceil(H / 2), ceil(W / 2))``.
    """

    def cubic(t: float) -> float:
        t = abs(t)
        return 1.5 * t**3 - 2.5 * t**2 + 1 if t <= 1 else -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2

    taps = [0.5 * cubic(0.5 * (3.5 - k)) for k in range(8)]
    kernel = torch.tensor(taps, dtype=x.dtype, device=x.device)
    shape = x.shape
    h, w = shape[-2:]
    flat = pad2d(x.reshape(-1, 1, h, w), (3, 3 + w % 2, 3, 3 + h % 2), "symmetric")
    flat = F.conv2d(flat, kernel.view(1, 1, 8, 1), stride=(2, 1))
    flat = F.conv2d(flat, kernel.view(1, 1, 1, 8), stride=(1, 2))
    return flat.reshape(*shape[:-2], *flat.shape[-2:])


_BRISQUE_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
_NIQE_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _brisque_scale_features(mscn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """18 BRISQUE features of MSCN images ``(..., H, W)`` -> ``(..., 18)`` and whether all fits are defined."""
    alpha, sigma, defined = _ggd_fit(mscn.flatten(-2))
    features = [alpha, sigma.square()]
    for shift in _BRISQUE_SHIFTS:
        pair = mscn * torch.roll(mscn, shifts=shift, dims=(-2, -1))
        alpha, left, right, pair_defined = _aggd_fit(pair.flatten(-2))
        mean = (right - left) * _gamma_ratio(2, 1, alpha) * _gamma_ratio(1, 3, alpha).sqrt()
        features += [alpha, mean, left.square(), right.square()]
        defined = defined & pair_defined
    return torch.stack(features, dim=-1), defined


def _brisque_features_255(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BRISQUE features of images ``(..., H, W)`` on the 0-255 scale -> ``(..., 36)`` and ``defined`` ``(...)``."""
    per_scale, defined = [], None
    for scale in range(2):
        if scale:
            x = imresize_half(x)
        features, scale_defined = _brisque_scale_features(mscn_coefficients(x, "zeros")[0])
        per_scale.append(features)
        defined = scale_defined if defined is None else defined & scale_defined
    return torch.cat(per_scale, dim=-1), defined


def _to_patches(x: torch.Tensor, size: int) -> torch.Tensor:
    """Non-overlapping ``size x size`` patches of ``(..., H, W)`` (trimmed to multiples) -> ``(..., P, size, size)``.

    Patches are ordered row by row.
    """
    rows, cols = x.shape[-2] // size, x.shape[-1] // size
    x = x[..., : rows * size, : cols * size]
    x = x.reshape(*x.shape[:-2], rows, size, cols, size).transpose(-3, -2)
    return x.reshape(*x.shape[:-4], rows * cols, size, size)


def _niqe_patch_stats(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """18 NIQE features of MSCN patches ``(..., p, p)`` -> ``(..., 18)`` and whether all fits are defined."""
    alpha, left, right, defined = _aggd_fit(patches.flatten(-2))
    scale = _gamma_ratio(1, 3, alpha).sqrt()
    features = [alpha, (left + right) * scale / 2]
    for shift in _NIQE_SHIFTS:
        pair = patches * torch.roll(patches, shifts=shift, dims=(-2, -1))
        alpha, left, right, pair_defined = _aggd_fit(pair.flatten(-2))
        scale = _gamma_ratio(1, 3, alpha).sqrt()
        beta_left, beta_right = left * scale, right * scale
        features += [alpha, (beta_right - beta_left) * _gamma_ratio(2, 1, alpha), beta_left, beta_right]
        defined = defined & pair_defined
    return torch.stack(features, dim=-1), defined


def _niqe_features_255(x: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NIQE patch features ``(..., P, 36)``, sharpness and ``defined`` ``(..., P)`` of images on the 0-255 scale."""
    rows, cols = x.shape[-2] // patch_size, x.shape[-1] // patch_size
    x = x[..., : rows * patch_size, : cols * patch_size]
    mscn, sigma = mscn_coefficients(x, "replicate")
    sharpness = _to_patches(sigma, patch_size).mean(dim=(-2, -1))
    coarse = mscn_coefficients(imresize_half(x), "replicate")[0]
    fine_features, fine_defined = _niqe_patch_stats(_to_patches(mscn, patch_size))
    coarse_features, coarse_defined = _niqe_patch_stats(_to_patches(coarse, patch_size // 2))
    return torch.cat([fine_features, coarse_features], dim=-1), sharpness, fine_defined & coarse_defined


# --------------------------------------------------------------------------------------------------------------
# input handling shared by the public functions
# --------------------------------------------------------------------------------------------------------------


def _resolve_range(data_range: DataRange, name: str) -> DataRange:
    if isinstance(data_range, str):
        if data_range not in ("image", "reference"):
            raise ValueError(
                f"{name}: data_range must be 'image' (the image's own min-max), a number > 0 or a (low, high) "
                f"pair, got {data_range!r}."
            )
        return "reference"  # the package policy's keyword for "the range of the image the window is taken from"
    return data_range


def _check_images_2d(x: torch.Tensor, name: str, min_size: int, what: str) -> torch.Tensor:
    """Validate a batch of 2-D images ``(B, C, H, W)`` (finite, not constant, large enough)."""
    x, _, _ = check_image_pair(x, x, 2, name)
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"{name}: images of size {tuple(x.shape[-2:])} are too small; each side needs at least {min_size} "
            f"pixels ({what})."
        )
    constant = ~_nonconstant(x.detach(), (-2, -1))
    if bool(constant.any()):
        raise ValueError(
            f"{name}: the image is constant for (batch, channel) {constant.nonzero().tolist()}; natural-scene "
            "statistics are undefined for constant images."
        )
    return x


def _nonconstant(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return x.amax(dim=dims) > x.amin(dim=dims)


def _slice_wise(
    core: Any,
    y_pred: torch.Tensor,
    spatial_dims: int | None,
    data_range: DataRange,
    slice_axis: int,
    name: str,
    min_size: int,
    what: str,
) -> torch.Tensor:
    """Validate, check for constant images and score with a 2-D ``core`` (slice-wise for volumes).

    ``core(x)`` maps unit-range images ``(N, C, H, W)`` to ``(N, C)`` scores. For volumes, the non-constant
    slices are passed to :func:`~monai_kcross.functional.planar.planar_metric` as a slice mask, so that the
    package's slice averaging skips empty slices.
    """
    y_pred, _, spatial_dims = check_image_pair(y_pred, y_pred, spatial_dims, name)
    data_range = _resolve_range(data_range, name)
    if spatial_dims == 3 and (isinstance(slice_axis, bool) or not isinstance(slice_axis, int)):
        raise ValueError(f"{name}: slice_axis must be one spatial axis (0, 1, 2 or -1, -2, -3), got {slice_axis!r}.")
    if spatial_dims == 3 and not -3 <= slice_axis <= 2:
        raise ValueError(f"{name}: slice_axis must index spatial axes (0, 1, 2 or -1, -2, -3), got {slice_axis}.")
    planes = tuple(s for i, s in enumerate(y_pred.shape[2:]) if spatial_dims == 2 or i != slice_axis % 3)
    if min(planes) < min_size:
        kind = "images" if spatial_dims == 2 else "slices"
        raise ValueError(
            f"{name}: {kind} of size {planes} are too small; each side needs at least {min_size} pixels ({what})."
        )
    flat = y_pred.detach().reshape(*y_pred.shape[:2], -1)
    constant = ~(flat.amax(-1) > flat.amin(-1))
    if bool(constant.any()):
        kind = "image" if spatial_dims == 2 else "volume"
        raise ValueError(
            f"{name}: the {kind} is constant for (batch, channel) {constant.nonzero().tolist()}; natural-scene "
            "statistics are undefined for constant images."
        )
    mask = None
    if spatial_dims == 3:
        axis = 2 + slice_axis % 3
        others = tuple(d for d in (2, 3, 4) if d != axis)
        used = _nonconstant(y_pred.detach(), others)  # (B, C, S)
        if not bool(used.any(-1).all()):
            where = (~used.any(-1)).nonzero().tolist()
            raise ValueError(
                f"{name}: every slice along slice_axis={slice_axis} is constant for (batch, channel) {where}; "
                "natural-scene statistics are undefined for constant images."
            )
        view = [*used.shape[:2], 1, 1, 1]
        view[axis] = used.shape[-1]
        mask = used.reshape(view).expand(y_pred.shape)

    def planar_core(x: torch.Tensor, _y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        if weights is None:
            return core(x)
        used_slices = weights.flatten(-2).amax(-1) > 0  # (N, C)
        scores = torch.full(x.shape[:2], math.nan, dtype=x.dtype, device=x.device)
        index = used_slices.nonzero(as_tuple=True)
        if index[0].numel():
            scores = scores.index_put(index, core(x[index].unsqueeze(1))[:, 0])
        return scores

    return planar_metric(planar_core, y_pred, y_pred, spatial_dims, data_range, mask, slice_axis, "raise", name, 1)


# --------------------------------------------------------------------------------------------------------------
# BRISQUE
# --------------------------------------------------------------------------------------------------------------


def brisque_features(
    y_pred: torch.Tensor, data_range: DataRange = "image", *, grey_levels: float = 255.0
) -> torch.Tensor:
    """The 36 BRISQUE features (18 per scale) of every image and channel.

    Per scale: GGD shape and variance of the MSCN coefficients, then for the horizontal, vertical and two
    diagonal neighbour products the AGGD shape, mean, left and right variance (``brisque_feature.m``).

    Args:
        y_pred: images ``(B, C, H, W)``, at least 16 pixels per side.
        data_range: intensity policy (``"image"``, a number, or ``(low, high)``); the window is mapped onto
            ``[0, grey_levels]``.
        grey_levels: top of the grey-level scale the statistics are computed on (255 in the paper).

    Returns:
        ``(B, C, 36)`` features in the compute dtype (float64 for float64 input, else float32).
    """
    name = "brisque_features"
    y_pred = _check_images_2d(y_pred, name, _BRISQUE_MIN_SIZE, "BRISQUE's two scales")
    dtype = compute_dtype(y_pred)
    low, span = intensity_window(y_pred, _resolve_range(data_range, name), name, dtype)
    features, defined = _brisque_features_255((y_pred.to(dtype) - low) / span * grey_levels)
    return features.where(defined.unsqueeze(-1), math.nan)


def _brisque_regress(features: torch.Tensor, model: BRISQUEModel) -> torch.Tensor:
    """RBF regression ``sum_i c_i exp(-gamma ||s(f) - v_i||^2) - rho`` of features ``(..., 36)``."""
    kw = {"dtype": features.dtype, "device": features.device}
    low, high = torch.as_tensor(model["feature_low"], **kw), torch.as_tensor(model["feature_high"], **kw)
    span = high - low
    scaled = torch.where(span > 0, -1 + 2 * (features - low) / span.where(span > 0, 1), 0.0)
    vectors = torch.as_tensor(model["support_vectors"], **kw)
    distance = (scaled.unsqueeze(-2) - vectors).square().sum(-1)  # (..., n_sv)
    kernel = torch.exp(-float(model["gamma"]) * distance)
    return kernel @ torch.as_tensor(model["coefficients"], **kw) - float(model["rho"])


def brisque(
    y_pred: torch.Tensor,
    model: str | Path | BRISQUEModel = "mri",
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    *,
    slice_axis: int = -1,
) -> torch.Tensor:
    """BRISQUE no-reference quality score (lower is better).

    Args:
        y_pred: images ``(B, C, H, W)`` or volumes ``(B, C, H, W, D)``; at least 16 pixels per side.
        model: ``"mri"`` (default), ``"natural"``, a model dict (see :func:`load_brisque_model`) or the path of
            a model file. The shipped models predict ``100 (1 - SSIM)`` of degraded versions of pristine images
            (about 0-100); the LIVE model (loaded from its files) predicts DMOS.
        spatial_dims: 2 or 3; inferred when ``None``. Volumes are scored slice-wise.
        data_range: ``"image"`` (each image's or volume's own min-max), a number ``L`` (intensities ``[0, L]``)
            or ``(low, high)``; mapped onto the 0-255 grey levels of the original.
        slice_axis: spatial axis cut into slices for volumes; constant slices are skipped.

    Returns:
        ``(B, C)`` scores, NaN where the statistics are undefined.

    Raises:
        ValueError: bad input (NaN/Inf, wrong dimensionality, too small or constant images, bad model).
        FileNotFoundError: a model path that does not exist.
    """
    params = get_brisque_model(model)

    def core(x: torch.Tensor) -> torch.Tensor:
        features, defined = _brisque_features_255(255.0 * x)
        return _brisque_regress(features, params).where(defined, math.nan)

    return _slice_wise(
        core, y_pred, spatial_dims, data_range, slice_axis, "brisque", _BRISQUE_MIN_SIZE, "BRISQUE's two scales"
    )


def fit_brisque_model(
    features: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    *,
    gamma: float = 0.05,
    ridge: float = 0.1,
    description: str = "",
) -> dict[str, Any]:
    """Fit BRISQUE's regressor as RBF kernel ridge regression (the scoring form of libsvm's RBF SVR).

    Features are scaled to ``[-1, 1]`` with their training minimum and maximum (libsvm ``svm-scale``); every
    training sample becomes a support vector with coefficients ``(K + ridge I)^-1 (t - mean(t))`` and
    ``rho = -mean(t)``.

    Args:
        features: ``(N, 36)`` BRISQUE features (:func:`brisque_features`).
        targets: ``(N,)`` quality targets (lower is better).
        gamma: RBF width.
        ridge: Tikhonov regularisation.
        description: stored with the model.

    Returns:
        A BRISQUE model dict (float64 tensors), usable as ``brisque(x, model=...)``.
    """
    f = torch.as_tensor(features, dtype=torch.float64)
    t = torch.as_tensor(targets, dtype=torch.float64).flatten()
    if f.ndim != 2 or f.shape[1] != NUM_FEATURES or f.shape[0] != t.numel() or f.shape[0] < 2:
        raise ValueError(
            f"fit_brisque_model: expected features (N, {NUM_FEATURES}) and targets (N,) with N >= 2, got "
            f"{tuple(f.shape)} and {tuple(t.shape)}."
        )
    if not bool(torch.isfinite(f).all()) or not bool(torch.isfinite(t).all()):
        raise ValueError("fit_brisque_model: features and targets must be finite; drop undefined samples first.")
    low, high = f.amin(0), f.amax(0)
    model: dict[str, Any] = {
        "support_vectors": torch.zeros(0, NUM_FEATURES, dtype=torch.float64),
        "coefficients": torch.zeros(0, dtype=torch.float64),
        "gamma": float(gamma),
        "rho": 0.0,
        "feature_low": low,
        "feature_high": high,
    }
    span = high - low
    scaled = torch.where(span > 0, -1 + 2 * (f - low) / span.where(span > 0, 1), 0.0)
    kernel = torch.exp(-gamma * torch.cdist(scaled, scaled).square())
    offset = t.mean()
    coefficients = torch.linalg.solve(kernel + ridge * torch.eye(len(t), dtype=torch.float64), t - offset)
    model.update(
        support_vectors=scaled, coefficients=coefficients, rho=-float(offset), description=description or "fitted"
    )
    return model


# --------------------------------------------------------------------------------------------------------------
# NIQE
# --------------------------------------------------------------------------------------------------------------


def niqe_patch_features(
    y_pred: torch.Tensor, patch_size: int = 96, data_range: DataRange = "image", *, grey_levels: float = 255.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """NIQE features of the non-overlapping patches of every image and channel.

    The image is trimmed to a multiple of ``patch_size`` (top-left kept); per patch, 18 features on the MSCN
    coefficients at full resolution (``patch_size`` patches) and 18 at half resolution (``patch_size / 2``
    patches of the half-size image): AGGD shape and mean scale of the coefficients, then for the four
    neighbour products AGGD shape, mean, left and right scale (``computefeature.m``).

    Args:
        y_pred: images ``(B, C, H, W)``, at least ``patch_size`` pixels per side.
        patch_size: even patch side.
        data_range: intensity policy, see :func:`brisque_features`.
        grey_levels: top of the grey-level scale (255 in the paper).

    Returns:
        ``(features, sharpness)``: ``(B, C, P, 36)`` and ``(B, C, P)``, ``P`` patches in row-major order;
        sharpness is the patch mean of the local deviation ``sigma`` at full resolution. Features of constant
        patches are NaN.
    """
    name = "niqe_patch_features"
    _check_patch_size(patch_size, name)
    y_pred = _check_images_2d(y_pred, name, patch_size, "the NIQE patch size")
    dtype = compute_dtype(y_pred)
    low, span = intensity_window(y_pred, _resolve_range(data_range, name), name, dtype)
    features, sharpness, defined = _niqe_features_255((y_pred.to(dtype) - low) / span * grey_levels, patch_size)
    return features.where(defined.unsqueeze(-1), math.nan), sharpness


def niqe_distance(features: torch.Tensor, model: NIQEModel, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Distance between the Gaussian of test patch features and a pristine model.

    ``sqrt((mu_p - mu_t)^T pinv((S_p + S_t) / 2) (mu_p - mu_t))`` with the sample mean and covariance
    (``N - 1``) of the usable test patches (finite features, and ``valid`` where given).

    Args:
        features: ``(..., P, 36)`` patch features.
        model: pristine model with ``mu`` ``(36,)`` and ``cov`` ``(36, 36)``.
        valid: optional ``(..., P)`` bool selection of patches.

    Returns:
        ``(...)`` distances (computed in float64, returned in ``features``' dtype); NaN without usable patches.
    """
    f = features.to(torch.float64)
    usable = torch.isfinite(f.detach()).all(-1)
    if valid is not None:
        usable = usable & valid
    weight = usable.to(torch.float64).unsqueeze(-1)
    f = torch.where(usable.unsqueeze(-1), f, 0.0)
    count = weight.sum(-2)  # (..., 1)
    mean = (f * weight).sum(-2) / count.clamp(min=1)
    centred = (f - mean.unsqueeze(-2)) * weight
    cov = centred.transpose(-1, -2) @ centred / (count.unsqueeze(-1) - 1).clamp(min=1)
    mu_p = torch.as_tensor(model["mu"], dtype=torch.float64, device=f.device)
    cov_p = torch.as_tensor(model["cov"], dtype=torch.float64, device=f.device)
    difference = (mu_p - mean).unsqueeze(-1)
    quadratic = difference.transpose(-1, -2) @ torch.linalg.pinv((cov_p + cov) / 2) @ difference
    distance = quadratic[..., 0, 0].clamp(min=0).sqrt()
    distance = torch.where(count[..., 0] > 0, distance, math.nan)
    return distance.to(features.dtype)


def niqe(
    y_pred: torch.Tensor,
    model: str | Path | NIQEModel = "mri",
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    *,
    slice_axis: int = -1,
) -> torch.Tensor:
    """NIQE no-reference quality score (lower is better, 0 for an image whose patches match the model).

    Args:
        y_pred: images ``(B, C, H, W)`` or volumes ``(B, C, H, W, D)``; images (slices) need at least the
            model's patch size (32 for ``"mri"``, 96 for ``"natural"``) per side.
        model: ``"mri"`` (default), ``"natural"``, a model dict (``mu``, ``cov``, ``patch_size``; see
            :func:`fit_niqe_model`, :func:`load_niqe_model`) or the path of a model file.
        spatial_dims: 2 or 3; inferred when ``None``. Volumes are scored slice-wise.
        data_range: ``"image"`` (each image's or volume's own min-max), a number ``L`` or ``(low, high)``;
            mapped onto the 0-255 grey levels of the original.
        slice_axis: spatial axis cut into slices for volumes; constant slices are skipped.

    Returns:
        ``(B, C)`` scores in ``[0, inf)``; NaN where no patch has defined statistics.

    Raises:
        ValueError: bad input (NaN/Inf, wrong dimensionality, images smaller than a patch, constant images,
            bad model).
        FileNotFoundError: a model path that does not exist.
    """
    params = get_niqe_model(model)
    patch_size = int(params["patch_size"])

    def core(x: torch.Tensor) -> torch.Tensor:
        features, _, defined = _niqe_features_255(255.0 * x, patch_size)
        return niqe_distance(features, params, valid=defined)

    return _slice_wise(
        core, y_pred, spatial_dims, data_range, slice_axis, "niqe", patch_size, f"the model's patch size {patch_size}"
    )


def fit_niqe_model(
    images: torch.Tensor | Iterable[torch.Tensor | np.ndarray],
    patch_size: int = 96,
    sharpness_threshold: float | None = 0.75,
    data_range: DataRange = "image",
    *,
    description: str = "",
) -> dict[str, Any]:
    """Fit NIQE's pristine multivariate Gaussian (the authors' ``estimatemodelparam.m``).

    Every image (and channel) is mapped onto 0-255 by ``data_range`` and cut into patches; the patches whose
    sharpness exceeds ``sharpness_threshold`` times the image's largest patch sharpness are pooled, and the
    mean and covariance (``N - 1``) of their features form the model. Patches with undefined features are
    dropped.

    Args:
        images: a batch ``(N, C, H, W)`` or an iterable of images ``(H, W)`` or ``(C, H, W)`` (sizes may
            differ), each at least ``patch_size`` per side.
        patch_size: even patch side (96 in the paper).
        sharpness_threshold: relative sharpness selection (0.75 in the paper); ``None`` keeps every patch.
        data_range: intensity policy per image, see :func:`brisque_features`.
        description: stored with the model.

    Returns:
        ``{"mu": (36,), "cov": (36, 36), "patch_size", "sharpness_threshold", "n_patches", "n_images",
        "description"}`` (float64 tensors).
    """
    name = "fit_niqe_model"
    _check_patch_size(patch_size, name)
    if sharpness_threshold is not None and not 0 <= sharpness_threshold < 1:
        raise ValueError(f"{name}: sharpness_threshold must be in [0, 1) or None, got {sharpness_threshold!r}.")
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        items: Iterable[Any] = list(images)
    elif isinstance(images, (torch.Tensor, np.ndarray)):
        raise ValueError(f"{name}: a tensor of images must be (N, C, H, W), got shape {tuple(images.shape)}.")
    else:
        items = images
    selected, n_images = [], 0
    for image in items:
        image = torch.as_tensor(image)
        if image.ndim not in (2, 3):
            raise ValueError(f"{name}: each image must be (H, W) or (C, H, W), got shape {tuple(image.shape)}.")
        image = image.reshape(1, -1, *image.shape[-2:]).to(torch.float64)
        features, sharpness = niqe_patch_features(image, patch_size, data_range)
        for f, s in zip(features[0], sharpness[0]):  # per channel: one pristine image
            keep = torch.ones_like(s, dtype=torch.bool)
            if sharpness_threshold is not None:
                keep = s > sharpness_threshold * s.max()
            f = f[keep]
            selected.append(f[torch.isfinite(f).all(-1)])
            n_images += 1
    pooled = torch.cat(selected) if selected else torch.zeros(0, NUM_FEATURES, dtype=torch.float64)
    if pooled.shape[0] < 2:
        raise ValueError(
            f"{name}: only {pooled.shape[0]} usable patch(es) from {n_images} image(s); pass more or larger images."
        )
    mean = pooled.mean(0)
    centred = pooled - mean
    return {
        "mu": mean,
        "cov": centred.T @ centred / (pooled.shape[0] - 1),
        "patch_size": int(patch_size),
        "sharpness_threshold": sharpness_threshold,
        "n_patches": int(pooled.shape[0]),
        "n_images": n_images,
        "description": description or "fitted",
    }


def _check_patch_size(patch_size: int, name: str) -> None:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 8 or patch_size % 2:
        raise ValueError(f"{name}: patch_size must be an even integer >= 8, got {patch_size!r}.")


# --------------------------------------------------------------------------------------------------------------
# models: validation, shipped models, files
# --------------------------------------------------------------------------------------------------------------


def _cpu_float64(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def _as_float64(value: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    tensor = _cpu_float64(value)
    if tensor.numel() == math.prod(shape):
        tensor = tensor.reshape(shape)
    if tuple(tensor.shape) != shape or not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{what} must be a finite array of shape {shape}, got shape {tuple(tensor.shape)}.")
    return tensor


def _check_niqe_model(model: Mapping[str, Any], source: str) -> dict[str, Any]:
    missing = [k for k in ("mu", "cov") if k not in model]
    if missing:
        raise ValueError(f"NIQE model {source} lacks {missing}; expected keys 'mu', 'cov' and 'patch_size'.")
    out = dict(model)
    out["mu"] = _as_float64(model["mu"], (NUM_FEATURES,), f"NIQE model {source}: mu")
    out["cov"] = _as_float64(model["cov"], (NUM_FEATURES, NUM_FEATURES), f"NIQE model {source}: cov")
    patch_size = model.get("patch_size", 96)
    patch_size = int(patch_size.item() if hasattr(patch_size, "item") else patch_size)
    _check_patch_size(patch_size, f"NIQE model {source}")
    out["patch_size"] = patch_size
    return out


def _check_brisque_model(model: Mapping[str, Any], source: str) -> dict[str, Any]:
    keys = ("support_vectors", "coefficients", "gamma", "rho", "feature_low", "feature_high")
    missing = [k for k in keys if k not in model]
    if missing:
        raise ValueError(f"BRISQUE model {source} lacks {missing}; expected keys {list(keys)}.")
    out = dict(model)
    vectors = _cpu_float64(model["support_vectors"])
    if vectors.ndim != 2 or vectors.shape[1] != NUM_FEATURES:
        raise ValueError(
            f"BRISQUE model {source}: support_vectors must be (n, {NUM_FEATURES}), got {tuple(vectors.shape)}."
        )
    out["support_vectors"] = _as_float64(vectors, tuple(vectors.shape), f"BRISQUE model {source}: support_vectors")
    out["coefficients"] = _as_float64(
        model["coefficients"], (vectors.shape[0],), f"BRISQUE model {source}: coefficients"
    )
    for key in ("feature_low", "feature_high"):
        out[key] = _as_float64(model[key], (NUM_FEATURES,), f"BRISQUE model {source}: {key}")
    out["gamma"], out["rho"] = (float(_cpu_float64(model[k]).reshape(-1)[0]) for k in ("gamma", "rho"))
    if not out["gamma"] > 0 or not math.isfinite(out["gamma"]) or not math.isfinite(out["rho"]):
        raise ValueError(f"BRISQUE model {source}: gamma must be > 0 and rho finite, got {out['gamma']}, {out['rho']}.")
    return out


@functools.lru_cache(maxsize=8)
def _shipped(kind: str, name: str) -> dict[str, Any]:
    table = NIQE_MODELS if kind == "niqe" else BRISQUE_MODELS
    path = NR_MODEL_DIR / table[name]
    return load_niqe_model(path) if kind == "niqe" else load_brisque_model(path)


def _resolve(model: Any, kind: str) -> dict[str, Any]:
    table = NIQE_MODELS if kind == "niqe" else BRISQUE_MODELS
    if isinstance(model, Mapping):
        return _check_niqe_model(model, "dict") if kind == "niqe" else _check_brisque_model(model, "dict")
    if isinstance(model, str) and model in table:
        return dict(_shipped(kind, model))  # a copy: callers may edit their dict
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix or path.parent != Path(".") or path.exists():
            return load_niqe_model(path) if kind == "niqe" else load_brisque_model(path)
        raise ValueError(f"{kind}: unknown model {model!r}; use one of {sorted(table)}, a model dict or a file path.")
    raise ValueError(f"{kind}: model must be a name ({sorted(table)}), a dict or a path, got {type(model).__name__}.")


def get_niqe_model(model: str | Path | NIQEModel = "mri") -> dict[str, Any]:
    """Resolve a NIQE model argument: a shipped name (``"mri"``, ``"natural"``), a file path or a dict.

    Returns:
        The validated model dict (``mu`` ``(36,)``, ``cov`` ``(36, 36)`` float64, ``patch_size``, ...).

    Raises:
        ValueError: unknown name or invalid content; FileNotFoundError: a path that does not exist.
    """
    return _resolve(model, "niqe")


def get_brisque_model(model: str | Path | BRISQUEModel = "mri") -> dict[str, Any]:
    """Resolve a BRISQUE model argument: a shipped name (``"mri"``, ``"natural"``), a file path or a dict.

    Returns:
        The validated model dict (``support_vectors``, ``coefficients``, ``gamma``, ``rho``, feature ranges).

    Raises:
        ValueError: unknown name or invalid content; FileNotFoundError: a path that does not exist.
    """
    return _resolve(model, "brisque")


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist or is not a file.")
    return path


def _metadata(data: Mapping[str, Any], key: str, default: Any) -> Any:
    if key not in data:
        return default
    value = np.asarray(data[key])
    return value.item() if value.ndim == 0 else value


def load_niqe_model(path: str | Path, patch_size: int = 96) -> dict[str, Any]:
    """Read a NIQE pristine model.

    Args:
        path: ``.npz`` written by :func:`save_niqe_model` (the shipped models), or the authors'
            ``modelparameters.mat`` (MATLAB, variables ``mu_prisparam`` ``(1, 36)`` and ``cov_prisparam``
            ``(36, 36)``).
        patch_size: patch size of a ``.mat`` model (96 for the authors' model); ``.npz`` files store theirs.

    Returns:
        The model dict (``mu``, ``cov``, ``patch_size``, ...).

    Raises:
        FileNotFoundError: naming the file if it does not exist.
        ValueError: unreadable content or missing variables.
    """
    path = _existing(path, "NIQE model")
    if path.suffix.lower() == ".mat":
        import scipy.io

        try:
            data = scipy.io.loadmat(path)
        except Exception as error:  # scipy raises several types for non-MAT content
            raise ValueError(f"NIQE model {str(path)!r} is not a readable MATLAB file: {error}") from error
        missing = [k for k in ("mu_prisparam", "cov_prisparam") if k not in data]
        if missing:
            raise ValueError(f"NIQE model {str(path)!r} lacks the MATLAB variables {missing}.")
        model = {"mu": data["mu_prisparam"], "cov": data["cov_prisparam"], "patch_size": patch_size}
        model["description"] = f"MATLAB model {path.name}"
        return _check_niqe_model(model, repr(str(path)))
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    except Exception as error:
        raise ValueError(f"NIQE model {str(path)!r} is not a readable .npz file: {error}") from error
    model = {
        "mu": raw.get("mu"),
        "cov": raw.get("cov"),
        "patch_size": _metadata(raw, "patch_size", patch_size),
        "sharpness_threshold": _metadata(raw, "sharpness_threshold", math.nan),
        "description": str(_metadata(raw, "description", path.name)),
    }
    if model["mu"] is None or model["cov"] is None:
        raise ValueError(f"NIQE model {str(path)!r} lacks the arrays 'mu' and 'cov'.")
    return _check_niqe_model(model, repr(str(path)))


def save_niqe_model(model: NIQEModel, path: str | Path) -> Path:
    """Write a NIQE model (``mu``, ``cov``, ``patch_size``, metadata) as ``.npz``; returns the path."""
    checked = _check_niqe_model(model, "to save")
    threshold = checked.get("sharpness_threshold")
    path = Path(path)
    with path.open("wb") as handle:
        np.savez(
            handle,
            mu=checked["mu"].numpy(),
            cov=checked["cov"].numpy(),
            patch_size=np.int64(checked["patch_size"]),
            sharpness_threshold=np.float64(math.nan if threshold is None else threshold),
            n_patches=np.int64(checked.get("n_patches", -1)),
            description=np.str_(checked.get("description", "")),
        )
    return path


def _read_svm_scale_ranges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Feature minima and maxima of a libsvm ``svm-scale`` range file (``x``, ``lower upper``, ``i min max``)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0] != ["x"] or len(lines) < 2 + NUM_FEATURES:
        raise ValueError(f"BRISQUE range file {str(path)!r} is not an svm-scale range file for 36 features.")
    low, high = np.full(NUM_FEATURES, np.nan), np.full(NUM_FEATURES, np.nan)
    for fields in lines[2:]:
        index = int(fields[0]) - 1
        if len(fields) != 3 or not 0 <= index < NUM_FEATURES:
            raise ValueError(f"BRISQUE range file {str(path)!r}: unexpected line {' '.join(fields)!r}.")
        low[index], high[index] = float(fields[1]), float(fields[2])
    lower, upper = (float(v) for v in lines[1])
    if (lower, upper) != (-1.0, 1.0):
        raise ValueError(f"BRISQUE range file {str(path)!r} scales to [{lower}, {upper}]; only [-1, 1] is supported.")
    return low, high


def _read_libsvm_model(path: Path) -> dict[str, Any]:
    """Support vectors, coefficients, gamma and rho of a libsvm RBF regression model file."""
    header: dict[str, str] = {}
    coefficients, vectors = [], []
    with path.open() as handle:
        for line in handle:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "SV":
                break
            header[fields[0]] = " ".join(fields[1:])
        for line in handle:
            fields = line.split()
            if not fields:
                continue
            row = np.zeros(NUM_FEATURES)
            for item in fields[1:]:
                index, value = item.split(":")
                row[int(index) - 1] = float(value)
            coefficients.append(float(fields[0]))
            vectors.append(row)
    if header.get("kernel_type") != "rbf" or "gamma" not in header or "rho" not in header or not vectors:
        raise ValueError(
            f"BRISQUE model {str(path)!r} is not a libsvm RBF model file (needs kernel_type rbf, gamma, rho, SV)."
        )
    return {
        "support_vectors": np.stack(vectors),
        "coefficients": np.asarray(coefficients),
        "gamma": float(header["gamma"]),
        "rho": float(header["rho"].split()[0]),
    }


def load_brisque_model(
    path: str | Path, range_path: str | Path | None = None, *, gamma: float | None = None, rho: float | None = None
) -> dict[str, Any]:
    """Read a BRISQUE regression model.

    Formats:

    * ``.npz`` written by :func:`save_brisque_model` (the shipped models): everything included.
    * a libsvm model file (the LIVE release's ``allmodel``: header with ``kernel_type rbf``, ``gamma``,
      ``rho``, then ``SV`` and one ``coef index:value ...`` line per support vector), with ``range_path``, the
      release's ``svm-scale`` range file ``allrange``.
    * ``.pt``/``.pth``: piq's ``brisque_svm_weights.pt`` (a pair ``(coefficients (n,), support vectors
      (n, 36))``, or a dict with ``sv_coef`` and ``sv``), with ``range_path`` and the model's ``gamma`` and
      ``rho`` (for the LIVE model shipped by piq: 0.05 and -153.591, as its ``allmodel`` header states).

    Raises:
        FileNotFoundError: naming ``path`` or ``range_path`` if it does not exist.
        ValueError: unreadable content, or a missing ``range_path``/``gamma``/``rho``.
    """
    path = _existing(path, "BRISQUE model")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except Exception as error:
            raise ValueError(f"BRISQUE model {str(path)!r} is not a readable .npz file: {error}") from error
        raw["description"] = str(_metadata(raw, "description", path.name))
        return _check_brisque_model(raw, repr(str(path)))
    if range_path is None:
        raise ValueError(
            f"BRISQUE model {str(path)!r}: pass range_path, the svm-scale feature range file (LIVE's 'allrange')."
        )
    low, high = _read_svm_scale_ranges(_existing(range_path, "BRISQUE range"))
    if suffix in (".pt", ".pth"):
        if gamma is None or rho is None:
            raise ValueError(f"BRISQUE model {str(path)!r}: a torch weights file needs gamma= and rho= as well.")
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"BRISQUE model {str(path)!r} is not a readable torch file: {error}") from error
        if isinstance(content, Mapping) and {"sv_coef", "sv"} <= set(content):
            coefficients, vectors = content["sv_coef"], content["sv"]
        elif isinstance(content, (tuple, list)) and len(content) == 2:
            coefficients, vectors = content
        else:
            raise ValueError(f"BRISQUE model {str(path)!r}: expected (sv_coef, sv) or a dict with 'sv_coef', 'sv'.")
        vectors = torch.as_tensor(vectors, dtype=torch.float64)
        if vectors.ndim == 2 and vectors.shape[0] == NUM_FEATURES and vectors.shape[1] != NUM_FEATURES:
            vectors = vectors.T
        raw = {"support_vectors": vectors, "coefficients": torch.as_tensor(coefficients).flatten(), "gamma": gamma}
        raw["rho"] = rho
    else:
        try:
            raw = _read_libsvm_model(path)
        except UnicodeDecodeError as error:
            raise ValueError(f"BRISQUE model {str(path)!r} is not a libsvm text model: {error}") from error
        raw.update({k: v for k, v in (("gamma", gamma), ("rho", rho)) if v is not None})
    raw.update(feature_low=low, feature_high=high, description=f"libsvm model {path.name}")
    return _check_brisque_model(raw, repr(str(path)))


def save_brisque_model(model: BRISQUEModel, path: str | Path) -> Path:
    """Write a BRISQUE model as ``.npz`` (support vectors, coefficients, gamma, rho, feature ranges)."""
    checked = _check_brisque_model(model, "to save")
    path = Path(path)
    with path.open("wb") as handle:
        np.savez(
            handle,
            support_vectors=checked["support_vectors"].numpy(),
            coefficients=checked["coefficients"].numpy(),
            gamma=np.float64(checked["gamma"]),
            rho=np.float64(checked["rho"]),
            feature_low=checked["feature_low"].numpy(),
            feature_high=checked["feature_high"].numpy(),
            description=np.str_(checked.get("description", "")),
        )
    return path
