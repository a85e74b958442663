"""A contrast-agnostic tissue-and-lesion segmenter for brain MRI slices: the lesion finder of K-CROSS.

Input: 2-D slices ``(B, 1, H, W)`` of any MR contrast, orientation and resolution. Each slice is first
**rank-normalised** inside its foreground (every voxel replaced by its intensity quantile, 0 outside; the
foreground is :func:`~monai_kcross.functional.foreground.enclosed_foreground` of the slice scaled to its maximum, or a
given brain mask), which makes the segmenter blind to any strictly increasing global intensity map. Output:
logits over :data:`CLASSES` (background, CSF, GM, WM, lesion -- any lesion kind, hyper- or hypo-intense).

Training (:mod:`monai_kcross.training.segmenter`) follows SynthSeg's domain randomisation
(:mod:`monai_kcross.data.randomised`): random anatomy from several templates, random contrasts from MR physics
and Gaussian mixtures, random resolution, orientation, bias, blur and noise, and tumours, small white-matter
lesions and infarcts. It serves the K-CROSS tumour branch and the task-based quality labels
(:mod:`monai_kcross.data.quality`). Weights ship inside the K-CROSS bundle (``models/segmenter.pt``:
``{"state_dict", "features", "classes", "summary"}``) and load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNet

from ..functional.foreground import enclosed_foreground
from ..functional.histogram import rank_normalize
from ..functional.model_cache import cached_model, file_version
from .checkpoints import SEGMENTER_WEIGHTS

__all__ = [
    "CLASSES",
    "FEATURES",
    "SEGMENTER_WEIGHTS",
    "build_segmenter",
    "foreground_of",
    "load_segmenter",
    "rank_normalize",
    "segment",
    "segment_probabilities",
]

CLASSES = ("background", "csf", "gm", "wm", "lesion")
FEATURES = (16, 24, 48, 96, 192, 16)


def build_segmenter(features: tuple[int, ...] = FEATURES) -> torch.nn.Module:
    """The segmenter architecture: MONAI ``BasicUNet`` (2-D, 1 input channel, 5 classes)."""
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=len(CLASSES), features=tuple(features))


def load_segmenter(path: str | Path | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The pretrained segmenter (``eval()`` mode) from ``path`` or the weights shipped with the package.

    Raises:
        FileNotFoundError: naming the missing file and how to build it.
    """
    path = Path(path) if path is not None else SEGMENTER_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"segmenter weights {path} are missing; build them with "
            "`python -m monai_kcross.training.segmenter --out <file>` or reinstall monai-kcross."
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint["state_dict"] if "state_dict" in checkpoint else checkpoint
    features = tuple(checkpoint["features"]) if "features" in checkpoint else _features_of(state)
    network = build_segmenter(features)
    network.load_state_dict(state)
    return network.to(device).eval()


def _features_of(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The ``BasicUNet`` feature widths a state dict was saved with (checkpoints without a ``features`` entry)."""
    keys = ("conv_0.conv_0", *(f"down_{i}.convs.conv_0" for i in range(1, 5)), "upcat_1.convs.conv_0")
    try:
        return tuple(int(state[f"{key}.conv.weight"].shape[0]) for key in keys)
    except KeyError as error:
        raise ValueError(f"not a checkpoint of the package's segmenter: no {error.args[0]} in its state dict") from None


def foreground_of(image: torch.Tensor) -> torch.Tensor:
    """The foreground a segmenter uses by default: :func:`enclosed_foreground` of each slice scaled to ``[0, 1]``
    by its maximum. ``image`` ``(B, 1, H, W)`` -> bool of the same shape."""
    scale = image.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return enclosed_foreground(image / scale)


@torch.no_grad()
def segment_probabilities(
    image: torch.Tensor,
    foreground: torch.Tensor | None = None,
    network: torch.nn.Module | None = None,
    batch_size: int = 32,
) -> torch.Tensor:
    """Class probabilities ``(B, 5, H, W)`` of slices ``(B, 1, H, W)``; 1 for background outside the foreground.

    Args:
        image: slices, any intensity scale.
        foreground: bool ``(B, 1, H, W)``; default :func:`foreground_of`.
        network: a segmenter (default: the shipped one, cached per device).
        batch_size: slices per network call.

    Sizes not divisible by 16 are padded for the network and cropped back. Everything stays on ``image``'s
    device.
    """
    if image.ndim != 4 or image.shape[1] != 1:
        raise ValueError(f"segment expects slices (B, 1, H, W), got shape {tuple(image.shape)}.")
    network = network or _default_segmenter(str(image.device))
    foreground = foreground_of(image) if foreground is None else foreground.reshape(image.shape).bool()
    normalised = rank_normalize(image.float(), foreground)
    h, w = image.shape[-2:]
    pad = (0, (-w) % 16, 0, (-h) % 16)
    parts = []
    for start in range(0, image.shape[0], batch_size):
        chunk = F.pad(normalised[start : start + batch_size], pad)
        parts.append(network(chunk).softmax(1)[..., :h, :w])
    probabilities = torch.cat(parts)
    background = F.one_hot(torch.zeros_like(foreground[:, 0], dtype=torch.long), len(CLASSES))
    return torch.where(foreground, probabilities, background.permute(0, 3, 1, 2).to(probabilities.dtype))


def segment(
    image: torch.Tensor,
    foreground: torch.Tensor | None = None,
    network: torch.nn.Module | None = None,
    batch_size: int = 32,
) -> torch.Tensor:
    """Class map ``(B, H, W)`` (indices into :data:`CLASSES`) of slices ``(B, 1, H, W)``; 0 outside the
    foreground (see :func:`segment_probabilities`)."""
    return segment_probabilities(image, foreground, network, batch_size).argmax(1)


def _default_segmenter(device: str) -> torch.nn.Module:
    # a missing file is keyed by its path, so that load_segmenter raises its error naming the file and the fix
    version = file_version(SEGMENTER_WEIGHTS) if SEGMENTER_WEIGHTS.is_file() else str(SEGMENTER_WEIGHTS)
    return cached_model(("segmenter", version, device), lambda: load_segmenter(device=device))


def targets_from_simulation(label: torch.Tensor, tissues: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """Training targets ``(H, W)``: lesion where ``label > 0``, else the dominant tissue inside the brain."""
    mapping = torch.tensor([CLASSES.index("gm"), CLASSES.index("wm"), CLASSES.index("csf")])  # tissue order
    tissue = mapping[tissues.argmax(0)]
    target = torch.where(brain, tissue, torch.zeros_like(tissue))
    return torch.where(label > 0, torch.full_like(target, CLASSES.index("lesion")), target)
