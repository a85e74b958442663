"""An LPIPS-style distance on the features of any MONAI network: a perceptual metric without ImageNet.

The activations of chosen layers are taken for both images (forward hooks), unit-normalised over channels as in
LPIPS, and their squared difference is averaged over channels and space (inside the mask if given), then over
layers. With the default network, the package's pretrained tissue-and-lesion segmenter (trained on brain MRI of
all four contrasts), this is an in-domain perceptual distance that needs no external weights; any 2-D network
(e.g. a MONAI ``UNet`` trained for K-CROSS's lesion branch) can be plugged in.

The default preprocessing is the segmenter's own: both images are rank-normalised inside the reference's
foreground (voxels above 1 % of its range), so the distance is blind to global monotone intensity changes
(scale, offset, gamma) by design and reacts to structure, texture and local contrast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..functional.intensity import DataRange
from ..functional.planar import planar_metric
from .networks import _weighted_mean, unit_normalise

__all__ = ["DEFAULT_LAYERS", "FeatureDistance", "feature_distance"]

DEFAULT_LAYERS = ("conv_0", "down_1", "down_2", "down_3", "down_4")  # the BasicUNet encoder of the segmenter


class FeatureDistance(nn.Module):
    """Distance between the hooked activations of ``network`` for two images.

    Args:
        network: a 2-D network taking ``(B, in_channels, H, W)``; only its forward pass up to the last hooked
            layer matters (it still runs fully).
        layers: names of sub-modules (``network.named_modules()``) whose outputs are compared.
        in_channels: channels the network expects (the grey input is repeated to that many).
        pad_multiple: inputs are zero-padded to a multiple of this size (U-Nets need it), masks likewise.
        preprocess: optional ``(x, y) -> (x', y')`` applied to unit-range inputs before the network.
    """

    def __init__(
        self,
        network: nn.Module,
        layers: Sequence[str],
        in_channels: int = 1,
        pad_multiple: int = 16,
        preprocess: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ):
        super().__init__()
        self.preprocess = preprocess
        modules = dict(network.named_modules())
        unknown = [name for name in layers if name not in modules]
        if unknown or not layers:
            raise ValueError(f"unknown layers {unknown}; available: {[n for n in modules if n][:20]} ...")
        self.network = network.eval().requires_grad_(False)
        self.layers, self.in_channels, self.pad_multiple = tuple(layers), in_channels, pad_multiple
        self._captured: dict[str, torch.Tensor] = {}
        for name in self.layers:
            modules[name].register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            self._captured[name] = output

        return hook

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._captured.clear()
        self.network(x.expand(-1, self.in_channels, -1, -1))
        return [self._captured[name] for name in self.layers]

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Distance ``(B,)`` of single-channel unit-range images ``(B, 1, H, W)``."""
        if self.preprocess is not None:
            x, y = self.preprocess(x, y)
        h, w = x.shape[-2:]
        pad = (0, (-w) % self.pad_multiple, 0, (-h) % self.pad_multiple)
        x, y = nn.functional.pad(x, pad), nn.functional.pad(y, pad)
        if weights is None:
            weights = torch.ones_like(x[:, :1])
            weights[..., h:, :] = 0
            weights[..., :, w:] = 0
        else:
            weights = nn.functional.pad(weights, pad)
        total = 0
        for a, b in zip(self.features(x), self.features(y)):
            difference = (unit_normalise(a) - unit_normalise(b)).square().sum(1, keepdim=True)
            total = total + _weighted_mean(difference, weights)[:, 0]
        return total / len(self.layers)


_DEFAULT: dict[str, FeatureDistance] = {}


def _default_distance(device: str) -> FeatureDistance:
    if device not in _DEFAULT:
        from ..networks.segmenter import load_segmenter

        _DEFAULT[device] = FeatureDistance(
            load_segmenter(device=device), DEFAULT_LAYERS, preprocess=rank_normalise_pair
        ).to(device)
    return _DEFAULT[device]


def rank_normalise_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-normalise both unit-range images inside the reference's foreground (``y > 0.01``)."""
    from ..networks.segmenter import rank_normalize

    foreground = y > 0.01
    return rank_normalize(x, foreground), rank_normalize(y, foreground)


def feature_distance(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    distance: FeatureDistance | None = None,
    slice_axis: int | Sequence[int] = -1,
    batch_size: int = 32,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """In-domain perceptual distance (lower is better, 0 for identical images).

    Args:
        y_pred, y: images ``(B, C, H, W[, D])``; each channel is scored as a grey image; volumes slice-wise.
        spatial_dims, data_range, mask, slice_axis, empty_mask: as for the other metrics.
        distance: a :class:`FeatureDistance`; default: the encoder of the package's pretrained segmenter with
            its rank-normalised input (see the module docstring).
        batch_size: slices per network call.

    Returns:
        ``(B, C)`` distances.
    """

    def core(x: torch.Tensor, y_: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        module = distance or _default_distance(str(x.device))
        n, c, h, w = x.shape
        xs, ys = x.reshape(n * c, 1, h, w).float(), y_.reshape(n * c, 1, h, w).float()
        ws = None if weights is None else weights.float().expand(n, c, h, w).reshape(n * c, 1, h, w)
        parts = [
            module(xs[i : i + batch_size], ys[i : i + batch_size], None if ws is None else ws[i : i + batch_size])
            for i in range(0, n * c, batch_size)
        ]
        return torch.cat(parts).reshape(n, c).to(x.dtype)

    return planar_metric(
        core, y_pred, y, spatial_dims, data_range, mask, slice_axis, empty_mask, "feature_distance", 16
    )
