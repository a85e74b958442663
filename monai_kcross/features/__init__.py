"""Feature extractors for the set-level scores (FID, KID, MMD, PRDC, diversity, memorisation).

Every extractor is an ``nn.Module`` mapping images ``(B, C, H, W[, D])`` to feature vectors ``(B, F)`` and
carries an :attr:`~FeatureExtractor.identity` string -- kind, layer, pooling and a digest of the weights -- that
the set-level metrics record with their results: numbers from different extractors are not comparable, and the
identity makes an accidental comparison visible.

* :class:`KCrossFeatures` -- the K-CROSS encoders (default: the shipped bundle's structure encoder), an MRI-
  trained extractor that needs no download;
* :class:`NetworkFeatures` -- any layer of any network (e.g. a MONAI ``ResNet`` in 2-D or 3-D, loaded from your
  own weights), pooled over space;
* :class:`TorchScriptFeatures` -- a user TorchScript file whose output is (or is pooled to) ``(B, F)``;
* :class:`SliceFeatures` -- a 2-D extractor applied to the slices of volumes, averaged per volume (or every
  slice kept as a sample).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..functional.planar import to_slices
from ..functional.validation import as_plain_tensor

__all__ = [
    "FeatureExtractor",
    "KCrossFeatures",
    "NetworkFeatures",
    "SliceFeatures",
    "TorchScriptFeatures",
    "extract_features",
    "weights_digest",
]


def weights_digest(module: nn.Module) -> str:
    """First 12 hex digits of a SHA-256 over the module's parameters and buffers (names, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def _pool(features: torch.Tensor, pool: str) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, C)`` (``"avg"``, ``"max"``) or ``(B, 2C)`` (``"avg+std"``)."""
    if features.ndim == 2:
        return features
    flat = features.flatten(2)
    if pool == "avg":
        return flat.mean(-1)
    if pool == "max":
        return flat.amax(-1)
    if pool == "avg+std":
        return torch.cat([flat.mean(-1), flat.std(-1, unbiased=False)], 1)
    raise ValueError(f"pool must be 'avg', 'max' or 'avg+std', got {pool!r}.")


def _unit_range(x: torch.Tensor) -> torch.Tensor:
    """Each image (over channels and space) min-max mapped onto ``[0, 1]`` (constant images -> 0)."""
    flat = x.flatten(1)
    low, high = flat.amin(1), flat.amax(1)
    scale = torch.where(high > low, high - low, torch.ones_like(high))
    return ((flat - low[:, None]) / scale[:, None]).view_as(x)


class FeatureExtractor(nn.Module):
    """Base class: ``forward(images (B, C, *spatial)) -> (B, F)`` in ``eval()`` mode, no gradients.

    Subclasses implement :meth:`features` and set :attr:`spatial_dims` (2 or 3) and :attr:`in_channels`.
    """

    spatial_dims: int = 2
    in_channels: int = 1

    @property
    def identity(self) -> str:
        raise NotImplementedError

    def features(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Extractors never train: they stay in ``eval()`` (batch norm statistics frozen)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = as_plain_tensor(images)
        if images.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"{type(self).__name__}: expects {self.spatial_dims}-D images (B, C, ...) with "
                f"{self.spatial_dims + 2} dimensions, got shape {tuple(images.shape)}."
            )
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expects {self.in_channels} channel(s), got {images.shape[1]} "
                f"(shape {tuple(images.shape)})."
            )
        if not torch.isfinite(images).all():
            raise ValueError(f"{type(self).__name__}: images contain NaN or Inf.")
        return self.features(images).float()


class NetworkFeatures(FeatureExtractor):
    """The output of one layer of ``network`` (a forward hook), pooled over space.

    Args:
        network: any ``nn.Module`` (its own weights: load them before, e.g. a MONAI ``resnet18`` with
            ``load_state_dict``); run up to the end of its forward pass.
        layer: dotted module name (``dict(network.named_modules())``); ``None`` takes the network's output.
        spatial_dims: 2 or 3.
        in_channels: channels the network expects.
        pool: ``"avg"``, ``"max"`` or ``"avg+std"``.
        normalize: map each image onto ``[0, 1]`` first (``"minmax"``) or feed it as is (``None``).
        name: a readable name for :attr:`identity` (default: the network's class name).
    """

    def __init__(
        self,
        network: nn.Module,
        layer: str | None = None,
        spatial_dims: int = 2,
        in_channels: int = 1,
        pool: str = "avg",
        normalize: str | None = "minmax",
        name: str | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if normalize not in (None, "minmax"):
            raise ValueError(f"normalize must be None or 'minmax', got {normalize!r}.")
        _pool(torch.zeros(1, 1, 2), pool)  # validates the name
        modules = dict(network.named_modules())
        if layer is not None and layer not in modules:
            raise ValueError(f"layer {layer!r} not in {type(network).__name__}; e.g. {list(modules)[1:8]}.")
        self.network = network.eval()
        self.layer, self.pool, self.normalize = layer, pool, normalize
        self.spatial_dims, self.in_channels = spatial_dims, in_channels
        self.name = name or type(network).__name__
        self._captured: list[torch.Tensor] = []
        if layer is not None:
            modules[layer].register_forward_hook(lambda _m, _i, output: self._captured.append(output))

    @property
    def identity(self) -> str:
        return (
            f"network:{self.name}[{self.layer or 'output'},{self.pool},{self.normalize}]@{weights_digest(self.network)}"
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = _unit_range(images) if self.normalize == "minmax" else images
        self._captured.clear()
        output = self.network(x)
        captured = self._captured[-1] if self.layer is not None else output
        self._captured.clear()
        if isinstance(captured, (tuple, list)):
            captured = captured[0]
        return _pool(captured, self.pool)


class TorchScriptFeatures(NetworkFeatures):
    """A TorchScript file as extractor (its output, pooled over space if not already ``(B, F)``).

    Raises:
        FileNotFoundError: naming the missing file.
    """

    def __init__(
        self,
        path: str | Path,
        spatial_dims: int = 2,
        in_channels: int = 1,
        pool: str = "avg",
        normalize: str | None = "minmax",
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TorchScript feature extractor {path} not found.")
        network = torch.jit.load(str(path), map_location="cpu")
        super().__init__(network, None, spatial_dims, in_channels, pool, normalize, name=f"torchscript:{path.name}")


class KCrossFeatures(FeatureExtractor):
    """Features of single MRI slices from a trained K-CROSS encoder (each image min-max mapped onto ``[0, 1]``).

    Args:
        network: a :class:`~monai_kcross.networks.KCross`, a checkpoint/bundle path, or ``None`` (the bundle).
        branch: ``"structure"`` (default: the encoder shared by the MRI contrasts), ``"tumour"`` or ``"complex"``
            (k-space encoder; complex features enter as magnitudes).
        level: encoder level (``-1``: deepest).
        pool: ``"avg"``, ``"max"`` or ``"avg+std"``.
    """

    def __init__(self, network=None, branch: str = "structure", level: int = -1, pool: str = "avg+std") -> None:
        super().__init__()
        from ..metrics.kcross import load_kcross
        from ..networks.kcross import KCross

        if branch not in ("structure", "tumour", "complex"):
            raise ValueError(f"branch must be 'structure', 'tumour' or 'complex', got {branch!r}.")
        _pool(torch.zeros(1, 1, 2), pool)
        self.network = network if isinstance(network, KCross) else load_kcross(network)
        self.branch, self.level, self.pool = branch, level, pool

    @property
    def identity(self) -> str:
        return f"kcross:{self.branch}[level {self.level},{self.pool}]@{weights_digest(self.network)}"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        from ..networks.kcross import pad_to_multiple
        from ..transforms.kspace import to_kspace

        self.network.eval()
        x = pad_to_multiple(_unit_range(images))
        if self.branch == "complex":
            maps = self.network.complex_net.encode(to_kspace(x.to(torch.complex64), (-2, -1)))[self.level].abs()
        else:
            encoder = self.network.structure_net if self.branch == "structure" else self.network.tumour_net
            maps = encoder.encode(x)[self.level]
        return _pool(maps, self.pool)


class SliceFeatures(FeatureExtractor):
    """A 2-D extractor applied to every slice of volumes ``(B, C, H, W, D)`` along ``slice_axis``.

    Args:
        extractor: a 2-D :class:`FeatureExtractor`.
        slice_axis: spatial axis cut into slices.
        reduce: ``"mean"`` -> one vector per volume ``(B, F)``; ``"none"`` -> one per slice ``(B * S, F)``.
        min_foreground: skip slices whose fraction of voxels above 1 % of the volume's range is lower
            (``reduce="mean"`` only; all slices are kept if none passes).
    """

    def __init__(
        self, extractor: FeatureExtractor, slice_axis: int = -1, reduce: str = "mean", min_foreground: float = 0.05
    ) -> None:
        super().__init__()
        if extractor.spatial_dims != 2:
            raise ValueError("SliceFeatures wraps a 2-D extractor.")
        if reduce not in ("mean", "none"):
            raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}.")
        self.extractor, self.slice_axis, self.reduce, self.min_foreground = (
            extractor,
            slice_axis,
            reduce,
            min_foreground,
        )
        self.spatial_dims, self.in_channels = 3, extractor.in_channels

    @property
    def identity(self) -> str:
        return f"slices(axis {self.slice_axis},{self.reduce})+{self.extractor.identity}"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        batch = images.shape[0]
        slices = to_slices(images, self.slice_axis)  # (B * S, C, P, Q)
        features = self.extractor.features(slices)
        if self.reduce == "none":
            return features
        per_volume = features.view(batch, -1, features.shape[-1])
        unit = _unit_range(images)
        foreground = (to_slices(unit, self.slice_axis) > 0.01).flatten(1).float().mean(1).view(batch, -1)
        keep = foreground >= self.min_foreground
        keep = torch.where(keep.any(1, keepdim=True), keep, torch.ones_like(keep))
        weights = keep.float() / keep.float().sum(1, keepdim=True)
        return (per_volume * weights[..., None]).sum(1)


def extract_features(
    extractor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 32
) -> torch.Tensor:
    """Features ``(N, F)`` of ``images`` ``(N, C, ...)`` in batches (on the images' device)."""
    return torch.cat([extractor(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)])
