"""Downstream-segmentation score: how well a segmentation of the synthesized image agrees with that of the reference.

The gold standard of "Metrics that matter", BraSyn and SynthRAD: a segmentation network runs on the synthesized
image and on the reference (or the synthesized segmentation is compared with ground-truth ``labels``), and the
per-class Dice and 95th-percentile Hausdorff distance (HD95) between the two class maps say whether the synthesis
is good enough *for the task*. HD95 is MONAI's (:func:`monai.metrics.compute_hausdorff_distance`,
``percentile=95``, symmetric, Euclidean); Dice equals :func:`monai.metrics.compute_dice` (tested) but is computed
in one vectorised step on the images' device. This module adds the segmentation front end, the empty-class
conventions and the masks.

* The segmenter (:class:`Segmenter`, built by :func:`as_segmenter` from ``None`` -- the package's tissue-and-lesion
  segmenter --, a checkpoint file, a MONAI bundle folder, a TorchScript file, a network or any callable) sees
  both images mapped with the *reference's* intensity window (``data_range``), so both get the same mapping.
* ``foreground``: the region handed to the segmenter (the package's segmenter needs a brain mask); by default
  the reference's voxels above 1 % of its window, the same region for both images. Pass a brain mask for
  images with skull or bright background.
* ``mask``: the evaluation region; both class maps are set to background outside it (an all-ones mask gives the
  unmasked score; an empty mask raises, or gives NaN with ``empty_mask="nan"``).
* A 2-D segmenter runs slice-wise on volumes (along ``slice_axis``); its slices are stacked back into a 3-D class
  map and Dice and HD95 are computed on the volume (HD95 in voxels, or in ``spacing`` units).
* A class absent from both maps (inside the mask) is NaN for that image and left out of the class mean; a class
  present in only one map has Dice 0 and HD95 equal to the diagonal of the image (``spacing`` units), the
  "maximal error" convention of the BraTS evaluation, instead of MONAI's ``inf``.

Multi-channel images are segmented channel by channel as grey images; the results are ``(B, C)`` like every
other metric of the package, or ``(B, C, K)`` per class from :func:`segmentation_scores`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .intensity import DataRange, to_unit_range
from .masking import prepare_mask
from .model_cache import cached_model, file_version
from .planar import to_slices
from .validation import as_plain_tensor, check_image_pair, compute_dtype

__all__ = [
    "SegmentationScores",
    "Segmenter",
    "as_segmenter",
    "load_bundle_segmenter",
    "segment_images",
    "segmentation_dice",
    "segmentation_hd95",
    "segmentation_scores",
]

SegmenterLike = Any  # None | str | Path | nn.Module | Callable | Segmenter


class Segmenter:
    """A segmentation model as the downstream task: unit-range images ``(N, 1, *spatial)`` -> class maps.

    Args:
        model: an ``nn.Module`` or callable taking ``(N, 1, *spatial)`` and returning logits/probabilities
            ``(N, K, *spatial)`` (arg-maxed) or a class map ``(N, *spatial)``/``(N, 1, *spatial)`` (integers).
        spatial_dims: 2 (applied slice-wise to volumes) or 3.
        classes: class names by index (default ``"class<k>"``); index 0 is the background.
        pad_multiple: inputs are zero-padded to a multiple of this size for the model and cropped back.
        batch_size: images (slices) per model call.
        takes_foreground: the model is called as ``model(images, foreground)`` (the package's segmenter).
        name: shown in results.
    """

    def __init__(
        self,
        model: Callable[..., torch.Tensor],
        spatial_dims: int = 2,
        classes: Sequence[str] | None = None,
        pad_multiple: int = 16,
        batch_size: int = 32,
        takes_foreground: bool = False,
        name: str | None = None,
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"Segmenter: spatial_dims must be 2 or 3, got {spatial_dims}.")
        if not callable(model):
            raise ValueError(f"Segmenter: model must be callable, got {type(model).__name__}.")
        self.model, self.spatial_dims, self.pad_multiple = model, spatial_dims, max(1, int(pad_multiple))
        self.classes = tuple(classes) if classes is not None else None
        self.batch_size, self.takes_foreground = batch_size, takes_foreground
        self.name = name or type(model).__name__

    def class_index(self, name: str | int) -> int:
        """Index of a class given by name or index."""
        if isinstance(name, int) and not isinstance(name, bool):
            return name
        if self.classes is None or name not in self.classes:
            raise ValueError(f"segmenter {self.name} has no class {name!r}; classes: {self.classes}.")
        return self.classes.index(name)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, foreground: torch.Tensor | None = None) -> torch.Tensor:
        """Class maps ``(N, *spatial)`` (int64) of ``images`` ``(N, 1, *spatial)``; 0 outside ``foreground``."""
        if images.ndim != self.spatial_dims + 2 or images.shape[1] != 1:
            raise ValueError(
                f"segmenter {self.name}: expects (N, 1, {self.spatial_dims} spatial axes), got {tuple(images.shape)}."
            )
        if isinstance(self.model, torch.nn.Module):
            self.model.to(images.device)  # networks follow the images (a no-op when already there)
        spatial = images.shape[2:]
        pad: list[int] = []
        for size in reversed(spatial):
            pad += [0, (-size) % self.pad_multiple]
        maps = []
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start : start + self.batch_size]
            if self.takes_foreground:
                region = (
                    torch.ones_like(chunk, dtype=torch.bool)
                    if foreground is None
                    else foreground[start : start + len(chunk)]
                )
                output = self._run(chunk, region)
            else:
                output = self._run(F.pad(chunk, pad))
            maps.append(self._labels(torch.as_tensor(output), len(chunk), spatial))
        labels = torch.cat(maps).to(images.device)
        if foreground is not None:
            labels = torch.where(foreground[:, 0].bool(), labels, torch.zeros_like(labels))
        return labels

    def _run(self, *inputs: torch.Tensor) -> torch.Tensor:
        try:
            return self.model(*inputs)
        except torch.jit.Error as error:  # not a RuntimeError: say what the TorchScript network raised, in one line
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise RuntimeError(f"segmenter {self.name} failed: {lines[-1] if lines else 'TorchScript error'}") from None

    def _labels(self, output: torch.Tensor, n: int, spatial: torch.Size) -> torch.Tensor:
        output = as_plain_tensor(output)
        if output.ndim == len(spatial) + 2 and output.shape[1] > 1:
            output = output.argmax(1)
        elif output.ndim == len(spatial) + 2:
            output = output[:, 0]
        if output.ndim != len(spatial) + 1 or output.shape[0] != n:
            raise ValueError(f"segmenter {self.name}: unexpected output shape {tuple(output.shape)}.")
        crop = (slice(None), *(slice(0, s) for s in spatial))
        return output[crop].round().long()


def _package_segmenter(path: str | Path | None = None) -> Segmenter:
    from ..networks import segmenter as package

    network = package.load_segmenter(path) if path is not None else None

    def run(images: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
        net = network.to(images.device) if network is not None else None
        return package.segment(images, foreground, net)

    name = f"monai_kcross segmenter ({Path(path).name if path is not None else 'shipped weights'})"
    return Segmenter(run, 2, package.CLASSES, 1, 64, takes_foreground=True, name=name)


def load_bundle_segmenter(
    bundle: str | Path, config: str = "inference", network_key: str = "network_def", device: str = "cpu"
) -> Segmenter:
    """A segmentation network from a MONAI bundle folder (``configs/<config>.json|yaml``, ``models/model.pt``).

    The network is ``network_def`` of the config, parsed with :class:`monai.bundle.ConfigParser`, its weights
    ``models/model.pt`` (``torch.load(weights_only=True)``; or ``models/model.ts``, TorchScript). Class names come
    from ``metadata.json`` (``network_data_format.outputs.pred.channel_def``) and the spatial dimensions from the
    input's ``spatial_shape`` there (else from the first convolution). The bundle's pre- and post-processing
    transforms are *not* run: the network sees the images mapped onto ``[0, 1]`` with the reference's window.

    Raises:
        FileNotFoundError: naming the missing config or weights.
    """
    from monai.bundle import ConfigParser

    root = Path(bundle)
    configs = [root / "configs" / f"{config}.{ext}" for ext in ("json", "yaml", "yml")]
    config_file = next((c for c in configs if c.is_file()), None)
    metadata_file = root / "configs" / "metadata.json"
    metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    weights, scripted = root / "models" / "model.pt", root / "models" / "model.ts"
    if scripted.is_file() and not weights.is_file():
        network = torch.jit.load(str(scripted), map_location=device)
    else:
        if config_file is None:
            raise FileNotFoundError(f"bundle {root}: no configs/{config}.json or .yaml.")
        if not weights.is_file():
            raise FileNotFoundError(f"bundle {root}: weights models/model.pt (or model.ts) not found.")
        parser = ConfigParser()
        parser.read_config(str(config_file))
        parser["bundle_root"] = str(root)
        network = parser.get_parsed_content(network_key)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        for wrapper in ("state_dict", "model", "network"):
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
        network.load_state_dict(state)
    network = network.to(device).eval()
    formats = metadata.get("network_data_format", {})
    channel_def = formats.get("outputs", {}).get("pred", {}).get("channel_def", {})
    classes = [str(channel_def[k]) for k in sorted(channel_def, key=int)] if channel_def else None
    shape = formats.get("inputs", {}).get("image", {}).get("spatial_shape")
    spatial_dims = len(shape) if shape else (3 if any(isinstance(m, torch.nn.Conv3d) for m in network.modules()) else 2)
    return Segmenter(network, spatial_dims, classes, name=f"bundle:{root.name}")


def as_segmenter(segmenter: SegmenterLike = None, spatial_dims: int = 2) -> Segmenter:
    """A :class:`Segmenter` from what a user passes (the ``--segmenter`` option of a command line).

    * ``None`` -- the package's tissue-and-lesion segmenter (:mod:`monai_kcross.networks.segmenter`, 2-D,
      classes background, csf, gm, wm, lesion), shipped weights;
    * a folder -- a MONAI bundle (:func:`load_bundle_segmenter`);
    * a file -- a TorchScript network (with ``spatial_dims``), else a checkpoint of the package's segmenter
      (``load_segmenter(path)``);
    * an ``nn.Module`` or callable -- used as :class:`Segmenter` ``model`` with ``spatial_dims``;
    * a :class:`Segmenter` -- returned as is.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a file that is neither a segmenter checkpoint nor TorchScript.
    """
    if isinstance(segmenter, Segmenter):
        return segmenter
    if segmenter is None:
        return cached_model("downstream segmenter", _package_segmenter)
    if isinstance(segmenter, (str, Path)):
        path = Path(segmenter).resolve()
        if not path.exists():
            raise FileNotFoundError(f"segmenter {path} not found (a checkpoint file or a MONAI bundle folder).")
        key = ("downstream segmenter", file_version(path), spatial_dims)  # loaded once per file version
        return cached_model(key, lambda: _load_segmenter_path(path, spatial_dims))
    if callable(segmenter):
        return Segmenter(segmenter, spatial_dims)
    raise ValueError(f"segmenter must be None, a path, a network or a callable, got {type(segmenter).__name__}.")


def _load_segmenter_path(path: Path, spatial_dims: int) -> Segmenter:
    if path.is_dir():
        return load_bundle_segmenter(path)
    try:
        network = torch.jit.load(str(path), map_location="cpu").eval()
        return Segmenter(network, spatial_dims, name=f"torchscript:{path.name}")
    except (RuntimeError, ValueError):
        pass  # not TorchScript: a checkpoint of the package's segmenter?
    try:
        return _package_segmenter(path)
    except Exception as error:  # any unpickling or state-dict problem: say what was tried
        raise ValueError(
            f"segmenter {path} is neither TorchScript nor a checkpoint of the package's segmenter ({error}); "
            "pass a MONAI bundle folder or a loaded network instead."
        ) from None


def _fingerprint(x: torch.Tensor | None) -> tuple:
    if x is None:
        return (None,)
    data = x.detach().contiguous().cpu()
    return (
        tuple(x.shape),
        str(x.dtype),
        str(x.device),
        hashlib.blake2b(data.numpy().tobytes(), digest_size=16).digest(),
    )


_SEGMENTATIONS: OrderedDict[tuple, tuple[Segmenter, torch.Tensor]] = OrderedDict()


def segment_images(
    images: torch.Tensor, segmenter: Segmenter, foreground: torch.Tensor | None, slice_axis: int = -1
) -> torch.Tensor:
    """Class maps ``(N, *spatial)`` of single-channel images ``(N, 1, *spatial)``; 2-D segmenters slice volumes.

    The last few results are kept (keyed by the segmenter and the *content* of the images and foreground), so
    that scoring one case with Dice and HD95, or in several regions, segments it once.
    """
    key = (id(segmenter), slice_axis, *_fingerprint(images), *_fingerprint(foreground))
    if key in _SEGMENTATIONS:
        _SEGMENTATIONS.move_to_end(key)
        return _SEGMENTATIONS[key][1].clone()
    labels = _segment(images, segmenter, foreground, slice_axis)
    _SEGMENTATIONS[key] = (segmenter, labels.clone())  # the segmenter is kept alive: its id stays unique
    while len(_SEGMENTATIONS) > 8:
        _SEGMENTATIONS.popitem(last=False)
    return labels


def _segment(
    images: torch.Tensor, segmenter: Segmenter, foreground: torch.Tensor | None, slice_axis: int
) -> torch.Tensor:
    spatial_dims = images.ndim - 2
    if segmenter.spatial_dims == spatial_dims:
        return segmenter(images, foreground)
    if segmenter.spatial_dims == 3:
        raise ValueError(f"segmenter {segmenter.name} is 3-D, the images are 2-D.")
    axis = slice_axis % 3
    slices = to_slices(images, axis)
    regions = None if foreground is None else to_slices(foreground, axis)
    labels = segmenter(slices, regions)  # (N * S, P, Q)
    n, s = images.shape[0], images.shape[2 + axis]
    return labels.view(n, s, *labels.shape[1:]).movedim(1, 1 + axis)


@dataclass
class SegmentationScores:
    """Per-class agreement of two segmentations.

    Attributes:
        dice: ``(B, C, K)`` Dice per image, channel and selected class (NaN: class absent from both maps).
        hd95: ``(B, C, K)`` HD95 likewise (voxels or ``spacing`` units).
        classes: names (or ``"class<k>"``) of the ``K`` selected classes.
        predicted, reference: class maps ``(B, C, *spatial)`` of the synthesized image and of the reference (or
            the ground-truth labels).
    """

    dice: torch.Tensor
    hd95: torch.Tensor
    classes: tuple[str, ...]
    predicted: torch.Tensor
    reference: torch.Tensor


def _class_indices(segmenter: Segmenter, classes: Sequence[str | int] | str | int | None, found: int) -> list[int]:
    if classes is None:
        count = len(segmenter.classes) if segmenter.classes is not None else found
        return list(range(1, max(count, 2)))
    if isinstance(classes, (str, int)):
        classes = [classes]
    return [segmenter.class_index(c) for c in classes]


def _per_class_scores(
    predicted: torch.Tensor, reference: torch.Tensor, indices: list[int], spacing: Any, percentile: float, hd: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and MONAI's HD95 of class maps ``(N, *spatial)`` for the classes ``indices``: two ``(N, K)``.

    Dice is computed in one vectorised step (MONAI's ``compute_dice`` gives the same values but tests each image
    and class on the host, a GPU synchronisation per pair); HD95 runs MONAI's distance transforms on the CPU.
    """
    from monai.metrics import compute_hausdorff_distance

    index = torch.as_tensor(indices, device=predicted.device).view(1, -1, *([1] * (predicted.ndim - 1)))
    p, r = predicted[:, None] == index, reference[:, None] == index  # (N, K, *spatial) one-hot of the classes
    overlap = (p & r).flatten(2).sum(2, dtype=torch.float64)
    size_p, size_r = p.flatten(2).sum(2, dtype=torch.float64), r.flatten(2).sum(2, dtype=torch.float64)
    present_p, present_r = size_p > 0, size_r > 0
    dice = torch.where(present_p | present_r, 2 * overlap / (size_p + size_r).clamp_min(1), math.nan)
    if not hd:
        return dice, torch.full_like(dice, math.nan)
    both = present_p & present_r
    hd95 = torch.full_like(dice, math.nan)
    if bool(both.any()):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty classes are handled below, MONAI's warnings are noise here
            values = compute_hausdorff_distance(
                p.cpu(), r.cpu(), include_background=True, percentile=percentile, spacing=spacing
            ).double()
        hd95 = torch.where(both, values.to(hd95.device), hd95)
    steps = torch.as_tensor([1.0] * (predicted.ndim - 1) if spacing is None else spacing, dtype=torch.float64).expand(
        predicted.ndim - 1
    )
    diagonal = float(((torch.as_tensor(predicted.shape[1:], dtype=torch.float64) - 1) * steps).norm())
    return dice, torch.where(present_p ^ present_r, torch.full_like(hd95, diagonal), hd95)


def segmentation_scores(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    *,
    segmenter: SegmenterLike = None,
    labels: torch.Tensor | None = None,
    classes: Sequence[str | int] | str | int | None = None,
    foreground: torch.Tensor | str | None = "reference",
    spacing: float | Sequence[float] | None = None,
    percentile: float = 95.0,
    slice_axis: int = -1,
    empty_mask: str = "raise",
    hd95: bool = True,
) -> SegmentationScores:
    """Segment the synthesized image (and the reference, unless ``labels`` are given) and compare per class.

    Args:
        y_pred, y: synthesized and reference images ``(B, C, H, W[, D])``, any intensity scale.
        spatial_dims, data_range, empty_mask: as for every metric of the package (the intensity window maps both
            images for the segmenter; the package's default segmenter is blind to it by design).
        mask: evaluation region ``(B|1, 1|C, *spatial)``: class maps are background outside it.
        segmenter: see :func:`as_segmenter` (default: the package's tissue-and-lesion segmenter).
        labels: ground-truth class maps ``(B, 1|C, *spatial)`` (integers); then only ``y_pred`` is segmented.
        classes: class names or indices to score (default: every class but the background, index 0).
        foreground: region handed to the segmenter: ``"reference"`` (voxels of ``y`` above 1 % of its window),
            a mask ``(B|1, 1|C, *spatial)`` (e.g. the brain), or ``None`` (the whole image).
        spacing: voxel size for HD95 (one number or one per spatial axis); default 1.
        percentile: Hausdorff percentile (95: HD95; 100: the Hausdorff distance).
        slice_axis: axis along which a 2-D segmenter slices volumes.
        hd95: compute the Hausdorff distances (skip them when only Dice is needed; then ``hd95`` is NaN).

    Returns:
        :class:`SegmentationScores` with ``(B, C, K)`` Dice and HD95.
    """
    y_pred, y, spatial_dims = check_image_pair(y_pred, y, spatial_dims, "segmentation")
    if not 0 < percentile <= 100:
        raise ValueError(f"segmentation: percentile must be in (0, 100], got {percentile}.")
    model = as_segmenter(segmenter)
    dtype = compute_dtype(y)
    weights = prepare_mask(mask, y, "segmentation", empty_mask, dtype)
    x_u, y_u = to_unit_range(y_pred, y, data_range, "segmentation", dtype)
    b, c = y.shape[:2]
    spatial = tuple(y.shape[2:])
    if isinstance(foreground, str):
        if foreground != "reference":
            raise ValueError(f"segmentation: foreground must be 'reference', a mask or None, got {foreground!r}.")
        region = y_u > 0.01
    elif foreground is None:
        region = None
    else:
        region = prepare_mask(foreground, y, "segmentation (foreground)", "nan", dtype).expand(b, c, *spatial) > 0
    flat = lambda t: t.reshape(b * c, 1, *spatial)  # noqa: E731  every channel is a grey image
    region_flat = None if region is None else flat(region)
    predicted = segment_images(flat(x_u).float(), model, region_flat, slice_axis)
    if labels is None:
        reference = segment_images(flat(y_u).float(), model, region_flat, slice_axis)
    else:
        labels = torch.as_tensor(labels, device=y.device)
        if (
            labels.ndim != y.ndim
            or labels.shape[0] != b
            or labels.shape[2:] != y.shape[2:]
            or labels.shape[1] not in (1, c)
        ):
            raise ValueError(f"segmentation: labels must be (B, 1|C, *spatial) like y, got {tuple(labels.shape)}.")
        if labels.is_floating_point() and not bool((labels == labels.round()).all()):
            raise ValueError("segmentation: labels must be integer class indices.")
        reference = labels.expand(b, c, *spatial).reshape(b * c, *spatial).long()
    if weights is not None:
        inside = weights.expand(b, c, *spatial).reshape(b * c, *spatial) > 0
        predicted = torch.where(inside, predicted, torch.zeros_like(predicted))
        reference = torch.where(inside, reference, torch.zeros_like(reference))
    found = int(max(int(predicted.max()), int(reference.max()))) + 1
    indices = _class_indices(model, classes, found)
    dice, hd = _per_class_scores(predicted, reference, indices, spacing, percentile, hd95)
    if weights is not None:  # an image without any mask voxel scores NaN (empty_mask="nan")
        empty = ~(weights.expand(b, c, *spatial).reshape(b * c, -1) > 0).any(1, keepdim=True)
        dice, hd = (torch.where(empty, torch.full_like(v, math.nan), v) for v in (dice, hd))
    names = tuple(model.classes[i] if model.classes and i < len(model.classes) else f"class{i}" for i in indices)
    return SegmentationScores(
        dice.view(b, c, -1),
        hd.view(b, c, -1),
        names,
        predicted.view(b, c, *spatial),
        reference.view(b, c, *spatial),
    )


def _class_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over the classes present (NaN where none is)."""
    return values.nanmean(-1)


def segmentation_dice(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    **options: Any,
) -> torch.Tensor:
    """Downstream-segmentation Dice ``(B, C)`` in ``[0, 1]`` (higher is better): the mean over the selected classes
    present in either map of the Dice between the segmentations of ``y_pred`` and ``y`` (or ``labels``).

    Options: those of :func:`segmentation_scores` (``segmenter``, ``labels``, ``classes``, ``foreground``,
    ``slice_axis``, ``empty_mask``).
    """
    scores = segmentation_scores(y_pred, y, spatial_dims, data_range, mask, hd95=False, **options)
    return _class_mean(scores.dice).to(compute_dtype(y))


def segmentation_hd95(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    mask: torch.Tensor | None = None,
    **options: Any,
) -> torch.Tensor:
    """Downstream-segmentation HD95 ``(B, C)`` (lower is better, 0 for identical segmentations): the mean over the
    selected classes present in either map of the 95th-percentile symmetric Hausdorff distance.

    Options: those of :func:`segmentation_scores` (``segmenter``, ``labels``, ``classes``, ``foreground``,
    ``spacing``, ``percentile``, ``slice_axis``, ``empty_mask``).
    """
    scores = segmentation_scores(y_pred, y, spatial_dims, data_range, mask, **options)
    return _class_mean(scores.hd95).to(compute_dtype(y))
