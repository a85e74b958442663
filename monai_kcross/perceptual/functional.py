"""LPIPS, DISTS and DeepIQA (WaDIQaM-FR) for medical images: intensity policy, grey input, volumes, masks.

The networks were trained on RGB photographs. For medical images every channel is scored as a grey image:
its intensities are mapped to the unit range by the package's intensity policy (``data_range``, see
:mod:`monai_kcross.functional.intensity`; ``"reference"`` maps the reference onto ``[0, 1]``), repeated to
three channels (the LPIPS authors' advice for grey images), and given to the network in its own range
(LPIPS ``[-1, 1]``, DISTS and WaDIQaM ``[0, 1]``). ``channels="rgb"`` instead treats a 3-channel input as one
colour image. Volumes are scored 2.5-D: slices along ``slice_axis`` (one axis, or several whose results are
averaged), batched. A ``mask`` weights each network's spatial statistics (LPIPS: the per-layer distance maps;
DISTS: the feature means, variances and covariances; WaDIQaM: the patch weights by patch coverage), the mask
being area-resampled to every layer's resolution, so an all-ones mask equals no mask.

Networks are built once per configuration and device and cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..functional.intensity import DataRange
from ..functional.model_cache import cached_model
from ..functional.planar import planar_metric
from .networks import DISTS, LPIPS, WaDIQaMFR

__all__ = ["deepiqa", "dists", "get_network", "lpips"]

_MIN_SIZE = 32


_BUILDERS = {"lpips": LPIPS, "dists": DISTS, "deepiqa": WaDIQaMFR}


def get_network(kind: str, device: str | torch.device = "cpu", **options: str | Path | None) -> torch.nn.Module:
    """The (cached) network of ``kind`` (``"lpips"``, ``"dists"``, ``"deepiqa"``) built with ``options``."""
    frozen = tuple(sorted((k, str(v) if isinstance(v, Path) else v) for k, v in options.items()))
    return cached_model((kind, frozen, str(device)), lambda: _BUILDERS[kind](**dict(frozen)).to(device))


def _scorer(
    network: Callable[[], torch.nn.Module], to_input: Callable[[torch.Tensor], torch.Tensor], rgb: bool, batch: int
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """A planar core: unit-range ``(N, C, H, W)`` pairs -> ``(N, C)`` (or ``(N, 1)`` for RGB) network scores."""

    def core(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = x.shape
        net = network()
        dtype = next(net.parameters()).dtype
        if rgb:
            if c != 3:
                raise ValueError(f"channels='rgb' needs 3-channel images, got {c} channels.")
            xs, ys = x.to(dtype), y.to(dtype)
            ws = None if weights is None else weights.to(dtype)[:, :1]
            groups = 1
        else:  # every channel as a grey image, repeated to RGB
            xs = x.reshape(n * c, 1, h, w).to(dtype).expand(-1, 3, -1, -1)
            ys = y.reshape(n * c, 1, h, w).to(dtype).expand(-1, 3, -1, -1)
            ws = None if weights is None else weights.to(dtype).expand(n, c, h, w).reshape(n * c, 1, h, w)
            groups = c
        scores = []
        for start in range(0, xs.shape[0], batch):
            part = slice(start, start + batch)
            scores.append(net(to_input(xs[part]), to_input(ys[part]), None if ws is None else ws[part]))
        return torch.cat(scores).reshape(n, groups).to(x.dtype)

    return core


def lpips(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    net: str = "vgg",
    backbone_weights: str | Path | None = None,
    head_weights: str | Path | None = None,
    channels: str = "grey",
    slice_axis: int | Sequence[int] = -1,
    batch_size: int = 32,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """LPIPS v0.1 distance (lower is better, 0 for identical images).

    Args:
        y_pred: synthesized image ``(B, C, H, W[, D])``; images (slices) need at least 32 pixels per side.
        y: reference image, same shape.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy.
        mask: optional region; each layer's distance map is averaged inside it.
        net: ``"vgg"`` (default), ``"alex"`` or ``"squeeze"``.
        backbone_weights: ImageNet backbone file (``None``: search the weight folders, see
            :mod:`monai_kcross.perceptual.weights`; ``"random:<seed>"`` for architecture checks only).
        head_weights: LPIPS linear heads (``None``: the v0.1 heads shipped with the package).
        channels: ``"grey"`` (each channel separately, default) or ``"rgb"`` (3 channels as one colour image).
        slice_axis: axis (or axes, averaged) cut into slices for volumes.
        batch_size: slices per network call.
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` distances (``(B, 1)`` with ``channels="rgb"``).
    """
    device = y.device

    def network() -> torch.nn.Module:
        return get_network("lpips", device, net=net, backbone_weights=backbone_weights, head_weights=head_weights)

    core = _scorer(network, lambda u: 2 * u - 1, _rgb(channels), batch_size)
    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "lpips", _MIN_SIZE)


def dists(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    backbone_weights: str | Path | None = None,
    alpha_beta: str | Path | None = None,
    channels: str = "grey",
    slice_axis: int | Sequence[int] = -1,
    batch_size: int = 32,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """DISTS (lower is better, 0 for identical images); arguments as in :func:`lpips`.

    ``alpha_beta``: the DISTS weights (``None``: the ones shipped with the package). Images are not resized
    (the original optionally resizes the shorter side to 256 for photographs).
    """
    device = y.device

    def network() -> torch.nn.Module:
        return get_network("dists", device, backbone_weights=backbone_weights, alpha_beta=alpha_beta)

    core = _scorer(network, lambda u: u, _rgb(channels), batch_size)
    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "dists", _MIN_SIZE)


def deepiqa(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    weights: str | Path | None = None,
    channels: str = "grey",
    slice_axis: int | Sequence[int] = -1,
    batch_size: int = 32,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """DeepIQA / WaDIQaM-FR predicted quality (direction and scale follow the checkpoint's training labels).

    Args:
        weights: a WaDIQaM-FR checkpoint (pyiqa or Dingquan Li's layout, or the package's); none ships with
            the package or installs offline, so this must be given (or placed as ``wadiqam_fr.safetensors``).
        others: as in :func:`lpips`. Only whole 32x32 patches are scored; a mask weights patches by coverage.
    """
    device = y.device

    def network() -> torch.nn.Module:
        return get_network("deepiqa", device, weights=weights)

    core = _scorer(network, lambda u: u, _rgb(channels), batch_size)
    return planar_metric(core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "deepiqa", _MIN_SIZE)


def _rgb(channels: str) -> bool:
    if channels not in ("grey", "rgb"):
        raise ValueError(f"channels must be 'grey' or 'rgb', got {channels!r}.")
    return channels == "rgb"
