"""The K-CROSS score as a function and a MONAI metric.

``kcross(y_pred, y, source=..., lesion=None)`` scores synthesized images against their references (and the
source-modality images they were synthesized from) with a trained :class:`~monai_kcross.networks.KCross`.
Score in ``[0, 1]``, **higher is better**, trained to agree with the quality labels it was fitted on (for the
shipped bundle: the task-based labels of :mod:`monai_kcross.data.quality`, not radiologist ratings).

Front end: every channel is scored as a grey image; ``y`` is mapped onto ``[0, 1]`` by the intensity policy
(``data_range``, default per-volume reference range), ``y_pred`` with the same map, ``source`` by its own
range. Volumes ``(B, C, H, W, D)`` are scored slice by slice along ``slice_axis`` and averaged over the slices
whose reference foreground (voxels above 1 % of the range) covers at least ``min_foreground`` of the slice;
slices are zero-padded to a multiple of 16 (no resizing: the networks are fully convolutional and the
descriptors are spatial averages). ``lesion`` is the lesion mask; when absent it is predicted by the
network's segmenter. K-CROSS scores whole slices: unlike the other metrics it takes no evaluation-region ``mask``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.utils import MetricReduction

from ..functional.intensity import DataRange, to_unit_range
from ..functional.planar import to_slices
from ..functional.validation import as_plain_tensor, check_image_pair, compute_dtype
from ..networks.checkpoints import KCROSS_BUNDLE as DEFAULT_BUNDLE
from ..networks.checkpoints import load_kcross
from ..networks.kcross import BRANCHES, KCross
from .base import FullReferenceMetric

__all__ = ["DEFAULT_BUNDLE", "KCrossMetric", "KCrossScorer", "kcross", "load_kcross"]


def _network(network: KCross | str | Path | None, device: torch.device) -> KCross:
    # always eval(): a workflow's train()/eval() switching of a wrapping module must not leak into the scores
    if isinstance(network, KCross):
        return network.to(device).eval()
    return load_kcross(network, device).eval()


def _slices(volume: torch.Tensor, spatial_dims: int, slice_axis: int) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B * C * S, 1, P, Q)`` (``S = 1`` for 2-D), ordered by image, channel, slice."""
    b, c = volume.shape[:2]
    flat = volume.reshape(b * c, 1, *volume.shape[2:])
    return flat if spatial_dims == 2 else to_slices(flat, slice_axis)


#: pixels per network call on the CPU: activations of larger batches outgrow the caches (measured: 112x128 best
#: at 4 slices, 240x240 at 1); on CUDA the most pixels per call, if free memory allows (see :func:`auto_batch_size`)
PIXEL_BUDGET = {"cpu": 60_000, "cuda": 8_000_000}
#: GPU memory one padded pixel takes in a network call with predicted lesions (4.66 GB for 72 slices of 240x240
#: on an H100; benchmarks/bench_gpu.py), with a margin
BYTES_PER_PIXEL_CUDA = 1_400
MIN_SIZE = 32  # the segmenter's deepest level needs at least 2x2 voxels (4 halvings)


def auto_batch_size(height: int, width: int, device: torch.device, count: int | None = None) -> int:
    """Slices per network call for ``height x width`` slices, at least 1.

    The device's pixel budget (:data:`PIXEL_BUDGET`; on CUDA also at most 40 % of the free GPU memory) bounds the
    batch; with ``count`` slices to score, the calls are then balanced (72 slices with room for 69 per call run
    as 2 x 36, not 69 + 3: a small last call wastes the GPU).
    """
    padded = (height + (-height) % 16) * (width + (-width) % 16)
    budget = PIXEL_BUDGET.get(device.type, PIXEL_BUDGET["cuda"])
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
        budget = min(budget, int(0.4 * free / BYTES_PER_PIXEL_CUDA))
    largest = max(1, budget // padded)
    if not count:
        return largest
    calls = -(-count // largest)
    return -(-count // calls)


@torch.no_grad()
def _score_slices(
    net: KCross,
    pred_s: torch.Tensor,
    ref_s: torch.Tensor,
    src_s: torch.Tensor | None,
    lesion_s: torch.Tensor | None,
    index: torch.Tensor,
    branches: tuple[str, ...],
    wanted: dict[str, tuple[str, ...]],
    batch_size: int,
) -> dict[str, torch.Tensor]:
    scores = {key: torch.full((ref_s.shape[0],), float("nan"), device=ref_s.device) for key in wanted}
    for start in range(0, len(index), batch_size):
        part = index[start : start + batch_size]
        descriptors = net.descriptors(
            pred_s[part],
            ref_s[part],
            None if src_s is None else src_s[part],
            None if lesion_s is None else lesion_s[part],
            branches,
        )
        for key, subset in wanted.items():
            scores[key][part] = net.heads(descriptors, subset)["score"]
    return scores


def kcross(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    source: torch.Tensor | None = None,
    lesion: torch.Tensor | None = None,
    *,
    network: KCross | str | Path | None = None,
    branches: Sequence[str] | None = None,
    spatial_dims: int | None = None,
    data_range: DataRange = "reference",
    slice_axis: int = -1,
    min_foreground: float = 0.05,
    batch_size: int | str = "auto",
    return_branches: bool = False,
    mask: None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """K-CROSS score ``(B, C)`` in ``(0, 1]`` (higher is better; exactly 1 when ``y_pred`` equals ``y``).

    Args:
        y_pred: synthesized images ``(B, C, H, W[, D])`` (target modality).
        y: reference images of the same modality, same shape.
        source: source-modality images, same shape (optional: without it the structure branch compares the
            synthesized image with the reference only).
        lesion: lesion masks ``(B|1, 1, *spatial)``; predicted by the network's segmenter when ``None``.
        network: a :class:`KCross`, a checkpoint/bundle path, or ``None`` for the shipped bundle.
        branches: subset of ``("complex", "structure", "tumour")`` -- the paper's ablations; ``None``: every
            branch the inputs allow (the cross-contrast structure branch needs ``source``: without it the score
            uses the complex and tumour branches, as ``monai-kcross score`` always has).
        spatial_dims: 2 or 3 (inferred when ``None``).
        data_range: intensity policy for ``y`` and ``y_pred`` (the source always uses its own range).
        slice_axis: axis cut into slices for volumes.
        min_foreground: minimum foreground fraction of a volume's slice to be scored; a volume without such a
            slice gets NaN.
        batch_size: slices per network call, or ``"auto"`` (a pixel budget per device, see
            :func:`auto_batch_size`).
        return_branches: also return the single-branch scores.
        mask: not supported (the registry's evaluation-region argument): K-CROSS scores whole slices; a mask
            raises a ``ValueError`` that points to ``lesion``.

    Returns:
        ``(B, C)`` scores, or ``{"kcross", "complex", "structure", "tumour"}`` of ``(B, C)`` tensors (a disabled
        branch's entry is NaN).

    Raises:
        ValueError: bad shapes, non-finite inputs or lesion mask, unknown branches, slices smaller than 32 px.
        RuntimeError: gradients requested (the score is not differentiable: its intensity harmonisation is
            rank-based and its lesion masks are thresholded).
    """
    name = "kcross"
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (y_pred, y, source)):
        raise RuntimeError(
            f"{name} is not differentiable (rank-based intensity harmonisation, thresholded lesion masks): call it "
            "under torch.no_grad() or on detached tensors; for a training loss use a differentiable metric such as "
            "monai_kcross.losses.MetricLoss."
        )
    if mask is not None:
        raise ValueError(
            f"{name} takes no evaluation-region mask: it scores whole slices. Pass a lesion mask as `lesion=` "
            "(the fourth positional argument)."
        )
    with torch.no_grad():
        y_pred, y, spatial_dims = check_image_pair(y_pred, y, spatial_dims, name)
        out_dtype = compute_dtype(y)  # the networks run in float32; float64 input gets float64 scores back
        if branches is None:
            branches = BRANCHES if source is not None else tuple(b for b in BRANCHES if b != "structure")
        branches = tuple(branches)
        if not branches or any(b not in BRANCHES for b in branches):
            raise ValueError(f"{name}: branches must be a non-empty subset of {BRANCHES}, got {branches}.")
        if source is not None:
            source, _, _ = check_image_pair(as_plain_tensor(source), y, spatial_dims, f"{name} (source)")
        if spatial_dims == 3 and not -3 <= slice_axis <= 2:
            raise ValueError(f"{name}: slice_axis must index a spatial axis, got {slice_axis}.")
        batch, channels = y.shape[:2]
        x_u, y_u = to_unit_range(y_pred, y, data_range, name, torch.float32)
        pred_s, ref_s = _slices(x_u, spatial_dims, slice_axis), _slices(y_u, spatial_dims, slice_axis)
        if min(ref_s.shape[-2:]) < MIN_SIZE:
            raise ValueError(
                f"{name}: slices of {tuple(ref_s.shape[-2:])} px are too small; K-CROSS needs at least "
                f"{MIN_SIZE} x {MIN_SIZE} px per slice."
            )
        src_s = None
        if source is not None:
            s_u = to_unit_range(source, source, "reference", f"{name} (source)", torch.float32)[1]
            src_s = _slices(s_u, spatial_dims, slice_axis)
        lesion_s = None
        if lesion is not None:
            lesion = as_plain_tensor(lesion)
            if (
                tuple(lesion.shape[2:]) != tuple(y.shape[2:])
                or lesion.shape[0] not in (1, batch)
                or lesion.shape[1] != 1
            ):
                raise ValueError(
                    f"{name}: lesion mask of shape {tuple(lesion.shape)} does not fit images {tuple(y.shape)}."
                )
            if lesion.is_floating_point() and not bool(torch.isfinite(lesion).all()):
                raise ValueError(f"{name}: the lesion mask contains NaN or Inf values.")
            lesion_s = _slices((lesion > 0).float().expand(batch, channels, *y.shape[2:]), spatial_dims, slice_axis)
        valid = (ref_s > 0.01).flatten(1).float().mean(1) >= (min_foreground if spatial_dims == 3 else 0.0)
        net = _network(network, y.device)
        wanted = {"kcross": branches, **({b: (b,) for b in branches} if return_branches else {})}
        index = torch.nonzero(valid).flatten()
        if batch_size == "auto":
            batch_size = auto_batch_size(*ref_s.shape[-2:], y.device, len(index))
        scores = _score_slices(net, pred_s, ref_s, src_s, lesion_s, index, branches, wanted, int(batch_size))
        out = {key: value.view(batch, channels, -1).nanmean(-1).to(out_dtype) for key, value in scores.items()}
        if return_branches:
            nan = torch.full_like(out["kcross"], float("nan"))
            out.update({b: nan for b in BRANCHES if b not in out})
            return out
        return out["kcross"]


class KCrossMetric(FullReferenceMetric):
    """K-CROSS as a MONAI ``CumulativeIterationMetric`` (higher is better, ``[0, 1]``).

    Call as ``metric(y_pred=synthesized, y=reference, source=source, lesion=lesion)``; options as in
    :func:`kcross` (``network``, ``branches``, ``slice_axis``, ``data_range``, ...).
    """

    def __init__(
        self,
        network: KCross | str | Path | None = None,
        branches: Sequence[str] | None = None,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        **options: Any,
    ) -> None:
        branches = None if branches is None else tuple(branches)
        super().__init__(kcross, reduction, get_not_nans, network=network, branches=branches, **options)

    @classmethod
    def from_bundle(cls, bundle: str | Path | None = None, **options: Any) -> KCrossMetric:
        """The metric with the network of a bundle folder (default: the one shipped with the package)."""
        return cls(network=load_kcross(bundle), **options)


class KCrossScorer(torch.nn.Module):
    """K-CROSS as a single-input network, the form MONAI bundles and ``SupervisedEvaluator`` expect.

    Input ``(B, 3 | 4, H, W[, D])``: channels synthesized, reference, source[, lesion mask] (e.g. built with
    ``ConcatItemsd``); output the score ``(B, 1)`` in ``[0, 1]`` (higher is better). The front end is
    :func:`kcross`'s (intensity policy, slices of volumes, predicted lesion mask when no fourth channel).

    Args:
        network: a :class:`KCross`, a checkpoint/bundle path, or ``None`` for the shipped bundle.
        options: further :func:`kcross` options (``branches``, ``slice_axis``, ``data_range``, ...).
    """

    def __init__(self, network: KCross | str | Path | None = None, **options: Any) -> None:
        super().__init__()
        self.network = network if isinstance(network, KCross) else load_kcross(network)
        self.options = options
        self.eval()

    def train(self, mode: bool = True) -> KCrossScorer:
        """The score network never trains: it stays in ``eval()`` whatever mode the wrapper is put in."""
        super().train(mode)
        self.network.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_plain_tensor(x).detach()
        if x.ndim not in (4, 5) or x.shape[1] not in (3, 4):
            raise ValueError(
                "KCrossScorer expects (B, 3|4, H, W[, D]) -- synthesized, reference, source[, lesion] channels -- "
                f"got shape {tuple(x.shape)}."
            )
        lesion = x[:, 3:4] if x.shape[1] == 4 else None
        return kcross(x[:, 0:1], x[:, 1:2], x[:, 2:3], lesion, network=self.network, **self.options)
