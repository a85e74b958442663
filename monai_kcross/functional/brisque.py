"""BRISQUE (Mittal, Moorthy & Bovik, IEEE TIP 2012): 36 natural-scene features and an RBF regressor; lower is
better. The method and the package's models are described in :mod:`monai_kcross.functional.no_reference`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .intensity import DataRange, intensity_window
from .natural_scene import _brisque_features_255, _check_images_2d, _resolve_range, _slice_wise
from .nr_model_files import NUM_FEATURES, BRISQUEModel, get_brisque_model
from .validation import compute_dtype

__all__ = ["brisque", "brisque_features", "fit_brisque_model"]

_BRISQUE_MIN_SIZE = 16


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
