"""NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013): the distance of an image's patch statistics to a
pristine model; lower is better. The method and the package's models are described in
:mod:`monai_kcross.functional.no_reference`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .intensity import DataRange, intensity_window
from .natural_scene import _check_images_2d, _check_patch_size, _niqe_features_255, _resolve_range, _slice_wise
from .nr_model_files import NUM_FEATURES, NIQEModel, get_niqe_model
from .validation import compute_dtype

__all__ = ["fit_niqe_model", "niqe", "niqe_distance", "niqe_patch_features"]


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
