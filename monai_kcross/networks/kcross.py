"""The K-CROSS network (1.0): complex k-space branch, shared structure branch, tumour branch and score heads.

Paper: "K-Space-Aware Cross-Modality Score for Synthesized Neuroimage Quality Assessment". Where the paper is
silent the choices below are ours and documented. Version 1.0 keeps the paper's architecture -- a complex U-Net
on k-space, a structure encoder shared by source and target contrast (MMD similarity loss), a segmentation
network and a tumour encoder for lesions, and score networks on top -- and makes three properties hold **by
construction**:

1. **Identity is ideal.** Every descriptor is a *deviation* that is exactly 0 when the synthesized image equals
   the reference (it is computed from the difference of the two images' features, never from a ratio that is
   only approximately 1), and the score heads map the all-zero descriptor to a penalty of exactly 0:
   ``score = exp(-penalty)`` is exactly 1 for ``kcross(x, x)``, for every branch subset, with or without a
   source or lesion mask.
2. **Global monotone intensity maps are free.** Before any comparison the synthesized slice is mapped onto the
   reference's intensities by exact histogram matching inside the head
   (:func:`~monai_kcross.functional.histogram.match_histogram`): scale, offset, gamma and any other strictly
   increasing map of the synthesized image give the reference back inside the head.
3. **Heads are monotone.** Each head is non-decreasing in every deviation (non-negative weights, increasing
   activations) and anchored at 0, so a larger deviation can never raise the score.

Branches and their deviations (all ``>= 0``, 0 at identity):

* **complex** -- the complex U-Net encoder on the centred orthonormal k-space of the reference and of the
  harmonised synthesized slice; per encoder channel the complex deviation
  ``(sum|a - b|^2 - 2i Im sum a conj(b)) / (sum|a|^2 + sum|b|^2)`` (``1 - `` the symmetric coherence; its
  imaginary part carries k-space phase shifts). The complex score network applies a bias-free complex linear
  layer to these deviations and feeds the moduli to a monotone MLP.
* **structure** -- the shared encoder on the harmonised synthesized slice, the reference and (when given) the
  source; per channel of the deepest ``structure_levels`` levels: the structure deviation
  ``var(a - b) / (var a + var b + c)`` over the slice, the mean of its local (7x7-window) map, the mean of the
  map's worst 5 % inside the head (local damage is not averaged away), and, with a source, the change of the
  cross-contrast structure term ``|s(syn, src) - s(ref, src)|`` (the paper's shared-structure comparison, made
  relative to the reference so that it vanishes at identity). With ``config.pixel_levels = n > 0`` (1.2) the
  same three structure deviations (over the head, mean and worst 5 % of the local map) are also taken of the
  harmonised images themselves at ``n`` scales (full resolution and ``n - 1`` halvings): the encoder's features
  are trained for anatomy and lesions and leave out fine fidelity that the image pyramid still carries.
* **tumour** -- the segmenter (:mod:`~monai_kcross.networks.segmenter`, contrast-agnostic) on the reference and
  the harmonised synthesized slice gives class probabilities; a lesion mask (given, or the union of the two
  predicted lesions, dilated by 2 px) selects the lesion, which the tumour encoder encodes in both images; the
  deviations are the luminance and structure deviations of its deepest features inside the mask, the soft-Dice
  deviations of the CSF, grey-matter, white-matter and lesion probability maps, and the change of lesion area
  ``|log((A_syn + 1) / (A_ref + 1))|``. Without a lesion the lesion terms are 0 (healthy mode).

``score = exp(-(bias-free complex head + natural head))`` in ``(0, 1]``, higher is better. Disabled branches
(ablations) contribute zero deviations. Inputs of :meth:`KCross.forward` are 2-D slices ``(B, 1, H, W)`` mapped
to the unit range (the reference onto ``[0, 1]``, the synthesized slice with the same map, the source onto its
own ``[0, 1]``); :mod:`monai_kcross.metrics.kcross` does this and handles volumes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..functional.foreground import enclosed_foreground
from ..functional.fourier import to_kspace
from ..functional.histogram import match_histogram
from ..functional.masking import weighted_mean
from .complex import (
    ComplexBatchNorm,
    ComplexConv,
    ComplexConvTranspose,
    ComplexLeakyReLU,
    ComplexLinear,
    ComplexReLU,
    complex_cat,
    to_stacked,
)

__all__ = [
    "BRANCHES",
    "KCross",
    "KCrossConfig",
    "MonotoneHead",
    "complex_deviation",
    "default_lesion_segmenter",
    "pad_to_multiple",
]

BRANCHES = ("complex", "structure", "tumour")
SEGMENTATION_CLASSES = ("csf", "gm", "wm", "lesion")
_C = 1e-4  # stabiliser of the variance ratios (features are O(1))


@dataclass
class KCrossConfig:
    """Sizes of the K-CROSS networks. The defaults follow the paper (512-d descriptors, 512-256-1 heads);
    :meth:`small` is the CPU-friendly configuration used for the shipped bundle and tests."""

    complex_channels: tuple[int, ...] = (64, 64, 128, 256)
    structure_channels: tuple[int, ...] = (32, 64, 128, 128)
    tumour_channels: tuple[int, ...] = (32, 64, 128, 128)
    hidden: int = 256
    structure_levels: int = 1
    pixel_levels: int = 0
    min_lesion: int = 10
    worst_fraction: float = 0.05
    bias_fraction: float = 0.0
    source_contrast: str = "any"
    target_contrast: str = "any"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def small(cls, **kwargs: Any) -> KCrossConfig:
        sizes: dict[str, Any] = {
            "complex_channels": (16, 16, 32, 64),
            "structure_channels": (16, 32, 64, 64),
            "tumour_channels": (16, 32, 64, 64),
            "hidden": 128,
            "structure_levels": 4,
        }
        return cls(**{**sizes, **kwargs})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KCrossConfig:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("complex_channels", "structure_channels", "tumour_channels"):
            fields[key] = tuple(fields[key])
        return cls(**fields)

    @property
    def complex_dim(self) -> int:
        return sum(self.complex_channels)

    @property
    def structure_dim(self) -> int:
        return 4 * sum(self.structure_channels[-self.structure_levels :]) + 3 * self.pixel_levels

    @property
    def tumour_dim(self) -> int:
        return 2 * self.tumour_channels[-1] + len(SEGMENTATION_CLASSES) + 1


def _gaussian_matrix(size: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` matrix of Gaussian smoothing along an axis of ``n`` samples: a window truncated at ``4 sigma``
    (as ``scipy.ndimage.gaussian_filter``) with symmetric boundaries, the same values as
    :func:`~monai_kcross.functional.filtering.gaussian_blur`.

    ``size`` is a ``(n,)`` tensor of ones: the matrix is built from tensor operations only, so that a traced graph
    (the bundle's TorchScript export) follows the slice size instead of freezing the traced one.
    """
    position = torch.cumsum(size, 0) - 1  # 0 .. n-1
    n = position[-1] + 1
    radius = torch.floor(4 * sigma + 0.5)

    def window(offset: torch.Tensor) -> torch.Tensor:
        return torch.where(offset.abs() <= radius, torch.exp(-0.5 * (offset / sigma) ** 2), torch.zeros_like(offset))

    total = 2 * window(position).sum() - 1  # the window's sum over -radius .. radius (radius < n)
    i, j = position[:, None], position[None, :]
    # direct taps, and taps reflected at the start (index -j-1) and at the end (index 2n-1-j)
    return (window(j - i) + window(i + j + 1) + window(2 * n - 1 - i - j)) / total


def smooth_field(
    synthesized: torch.Tensor, reference: torch.Tensor, head: torch.Tensor, fraction: float, limit: float = 0.3
) -> torch.Tensor:
    """The smooth multiplicative field (a bias field) of ``synthesized`` relative to ``reference`` inside ``head``.

    ``exp`` of the Gaussian-weighted mean of the voxel log-ratios over the head, leaving out voxels whose
    log-ratio exceeds ``+-limit``: a bias field changes intensities by a few tens of per cent, a lesion that
    appears, vanishes or moves by much more, so local changes barely enter the estimate. Exactly 1 wherever the
    two slices agree on the whole window (identity: no correction at all).

    Args:
        synthesized, reference: ``(B, 1, H, W)`` in the unit range.
        head: bool ``(B, 1, H, W)``.
        fraction: Gaussian width as a fraction of the slice's shorter side.
        limit: largest absolute log-ratio of a voxel that enters the estimate.

    Returns:
        ``(B, 1, H, W)`` positive field, 1 outside the reach of the head.
    """
    eps = 0.01 * reference.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1, 1)
    ratio = torch.log((synthesized.clamp_min(0) + eps) / (reference.clamp_min(0) + eps))
    weight = (head & (ratio.abs() <= limit)).to(reference.dtype)
    rows, columns = torch.ones_like(reference[0, 0, :, 0]), torch.ones_like(reference[0, 0, 0, :])
    sigma = fraction * torch.minimum(rows.sum(), columns.sum())
    along_rows, along_columns = _gaussian_matrix(rows, sigma), _gaussian_matrix(columns, sigma)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return along_rows @ x @ along_columns.t()

    numerator, denominator = blur(ratio * weight), blur(weight)
    return torch.exp(torch.where(denominator > 1e-3, numerator / denominator.clamp_min(1e-3), 0.0))


def _encoder_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory layout the encoders run fastest in: channels-last on the CPU (oneDNN's convolutions,
    batch norms and the local pooling of the structure maps run 1.3-2.5x faster on it), unchanged elsewhere (the
    GPU figures were measured in the default layout). Values are unaffected."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def _run_block(block: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply a Conv-BN-activation block; in evaluation mode each batch norm is folded into the (real or complex)
    convolution before it (one convolution with rescaled weights instead of a convolution and a normalisation
    pass) and, without gradients, activations run in place. The same function as ``block(x)`` up to float
    rounding; training mode runs ``block(x)`` itself."""
    if block.training:
        return block(x)
    layers, index = list(block), 0
    while index < len(layers):
        layer = layers[index]
        norm = layers[index + 1] if index + 1 < len(layers) else None
        if isinstance(layer, (nn.Conv2d, ComplexConv)) and isinstance(norm, nn.BatchNorm2d):
            if isinstance(layer, ComplexConv):
                weight, bias, stride, padding = layer.block_weight(), layer.block_bias(), layer.stride, layer.padding
            else:
                weight, bias, stride, padding = layer.weight, layer.bias, layer.stride, layer.padding
            weight, bias = fuse_conv_bn_weights(
                weight, bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
            )
            x, index = F.conv2d(x, weight, bias, stride, padding), index + 2
        elif isinstance(layer, nn.LeakyReLU) and not torch.is_grad_enabled():
            x, index = F.leaky_relu_(x, layer.negative_slope), index + 1
        else:
            x, index = layer(x), index + 1
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int = 16) -> torch.Tensor:
    """Zero-pad the last two axes to a multiple of ``multiple`` (bottom/right)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple))


class _RealUNet(nn.Module):
    """Encoder/decoder with skips (Conv-BN-LeakyReLU blocks); ``forward`` returns (output, encoder features)."""

    def __init__(self, channels: Sequence[int], in_channels: int = 1, out_channels: int = 1) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride, 1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
                nn.Conv2d(c_out, c_out, 3, 1, 1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            )

        self.encoder = nn.ModuleList(
            [block(in_channels, channels[0])] + [block(a, b, 2) for a, b in itertools.pairwise(channels)]
        )
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, 2) for a, b in itertools.pairwise(channels))
        self.decoder = nn.ModuleList(block(2 * a, a) for a in channels[:-1])
        self.head = nn.Conv2d(channels[0], out_channels, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.encoder:
            x = _encoder_layout(_run_block(layer, x))
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = self.encode(x)
        h = features[-1]
        for index in range(len(self.up) - 1, -1, -1):
            h = self.decoder[index](torch.cat([self.up[index](h), features[index]], 1))
        return self.head(h), features


class _ComplexUNet(nn.Module):
    """Complex U-Net on stacked k-space ``(B, 2, H, W)``: complex conv/BN/LeakyReLU encoder, transposed-conv/BN/
    ReLU decoder; features and output are stacked complex tensors (see :mod:`~monai_kcross.networks.complex`)."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                ComplexConv(2, c_in, c_out, 3, stride),
                ComplexBatchNorm(2, c_out),
                ComplexLeakyReLU(0.2),
                ComplexConv(2, c_out, c_out, 3),
                ComplexBatchNorm(2, c_out),
                ComplexLeakyReLU(0.2),
            )

        self.encoder = nn.ModuleList(
            [block(1, channels[0])] + [block(a, b, 2) for a, b in itertools.pairwise(channels)]
        )
        self.up = nn.ModuleList(
            nn.Sequential(ComplexConvTranspose(2, b, a), ComplexBatchNorm(2, a), ComplexReLU())
            for a, b in itertools.pairwise(channels)
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(ComplexConv(2, 2 * a, a, 3), ComplexBatchNorm(2, a), ComplexReLU()) for a in channels[:-1]
        )
        self.head = ComplexConv(2, channels[0], 1, 1)

    def encode(self, k: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.encoder:
            k = _encoder_layout(_run_block(layer, k))
            features.append(k)
        return features

    def forward(self, k: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = self.encode(k)
        h = features[-1]
        for index in range(len(self.up) - 1, -1, -1):
            h = self.decoder[index](complex_cat([self.up[index](h), features[index]]))
        return self.head(h), features


class MonotoneHead(nn.Module):
    """Penalty ``h(d) - h(0) >= 0`` of deviations ``d >= 0`` ``(B, n)``: a two-layer MLP with non-negative weights
    (softplus of free parameters) and softplus activations, hence non-decreasing in every input and exactly 0 at
    ``d = 0``."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.weight1 = nn.Parameter(torch.randn(hidden, in_features) * 0.5 - 3.0)
        self.bias1 = nn.Parameter(torch.zeros(hidden))
        self.weight2 = nn.Parameter(torch.randn(hidden) * 0.5 - 3.0)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        hidden = F.softplus(F.linear(d, F.softplus(self.weight1), self.bias1)) - F.softplus(self.bias1)
        return hidden @ F.softplus(self.weight2)


class _ComplexHead(nn.Module):
    """The complex score network: a bias-free complex linear layer on the complex deviations, moduli, then a
    monotone MLP. Zero deviations give a zero penalty."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.linear = ComplexLinear(in_features, hidden, bias=False)
        self.head = MonotoneHead(2 * hidden, hidden)

    def forward(self, deviation: torch.Tensor) -> torch.Tensor:
        real, imag = self.linear(deviation).chunk(2, 1)
        return self.head(torch.cat([real.abs(), imag.abs()], 1))


# ------------------------------------------------------------------------------------------ deviations
def _masked_mean(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """:func:`~monai_kcross.functional.masking.weighted_mean` of ``(B, C, h, w)`` by ``(B, 1, h, w)`` weights,
    0 where the weights are all zero (a deviation over an empty region is no deviation)."""
    return weighted_mean(x, weights, empty_mask="zero")


def _variance_ratio(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Structure deviation ``var(a - b) / (var a + var b + c)`` per channel ``(B, C)``; exactly 0 when a == b."""
    centred = lambda v: v - _masked_mean(v, weights)[..., None, None]  # noqa: E731
    difference = _masked_mean(centred(a - b).square(), weights)
    return difference / (_masked_mean(centred(a).square(), weights) + _masked_mean(centred(b).square(), weights) + _C)


def _luminance_deviation(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``(mu_a - mu_b)^2 / (mu_a^2 + mu_b^2 + c)`` per channel; exactly 0 when a == b."""
    ma, mb = _masked_mean(a, weights), _masked_mean(b, weights)
    return (ma - mb).square() / (ma.square() + mb.square() + _C)


def _box_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of ``(B, C, h, w)`` over ``window`` x ``window`` neighbourhoods, windows cut at the border (the
    average of the samples inside; ``avg_pool2d`` with ``count_include_pad=False``), one axis at a time."""
    half = window // 2
    x = F.avg_pool2d(x, (window, 1), 1, (half, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, window), 1, (0, half), count_include_pad=False)


def _local_variance_ratio(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Map ``(B, C, h, w)`` of the structure deviation in ``window`` x ``window`` neighbourhoods."""
    pool = lambda v: _box_mean(v, window)  # noqa: E731
    d = a - b
    var_d = (pool(d.square()) - pool(d).square()).clamp_min(0)
    var_a = (pool(a.square()) - pool(a).square()).clamp_min(0)
    var_b = (pool(b.square()) - pool(b).square()).clamp_min(0)
    return var_d / (var_a + var_b + _C)


def _worst_mean(values: torch.Tensor, inside: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of the largest ``fraction`` of ``values`` ``(B, C, h, w)`` inside ``inside`` ``(B, 1, h, w)``."""
    flat = torch.where(inside, values, torch.zeros_like(values)).flatten(2)
    count = inside.flatten(1).sum(1).clamp_min(1)
    k_rows = (count.to(values.dtype) * fraction).clamp(min=1)
    if torch.jit.is_tracing():
        # a traced graph must follow the slice size: k is computed from the traced size, and a full sort replaces
        # the top-k (same values in the same order; the ranks beyond k are masked below)
        size = torch.ones_like(flat[0, 0]).sum()
        k_rows = torch.minimum(k_rows, torch.round(fraction * size).clamp_min(1))
        top = flat.sort(dim=-1, descending=True).values
    else:
        k = max(1, round(fraction * flat.shape[-1]))
        k_rows = k_rows.clamp(max=k)
        top = flat.topk(min(k, flat.shape[-1]), dim=-1).values  # zeros outside never exceed the deviations (>= 0)
    ranks = torch.arange(top.shape[-1], device=values.device)
    keep = ranks[None, None, :] < k_rows[:, None, None]
    return (top * keep).sum(-1) / k_rows[:, None]


def _structure_terms(
    a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None, local_weights: torch.Tensor, fraction: float
) -> list[torch.Tensor]:
    """The three structure deviations ``(B, C)`` each of maps ``(B, C, h, w)``: the variance ratio over
    ``weights`` (``None``: everywhere), the ``local_weights``-weighted mean of the local (7x7) variance-ratio map,
    and the mean of that map's worst ``fraction`` where ``local_weights > 0.5``."""
    local = _local_variance_ratio(a, b)
    return [
        _variance_ratio(a, b, weights),
        _masked_mean(local, local_weights),
        _worst_mean(local, local_weights > 0.5, fraction),
    ]


def _pixel_structure_deviations(
    syn: torch.Tensor, ref: torch.Tensor, head: torch.Tensor, levels: int, fraction: float
) -> list[torch.Tensor]:
    """:func:`_structure_terms` of the harmonised images themselves at ``levels`` scales (``(B, 1)`` each, weighted
    by the head); a scale halves the previous one by 2x2 averaging. Exactly 0 when ``syn == ref``.

    Args:
        syn, ref: ``(B, 1, H, W)`` harmonised synthesized slice and reference (sides a multiple of ``2 ** (levels
            - 1)``).
        head: bool ``(B, 1, H, W)``.
    """
    terms: list[torch.Tensor] = []
    weights = head.to(ref.dtype)
    for level in range(levels):
        if level:
            syn, ref, weights = F.avg_pool2d(syn, 2), F.avg_pool2d(ref, 2), F.avg_pool2d(weights, 2)
        terms += _structure_terms(syn, ref, weights, weights, fraction)
    return terms


def complex_deviation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-channel complex deviation of stacked complex maps ``(B, 2C, h, w)`` -> stacked ``(B, 2C)``.

    ``(sum|a - b|^2 - 2i Im sum a conj(b)) / (sum|a|^2 + sum|b|^2)``: ``1 -`` the symmetric complex coherence
    ``2 sum a conj(b) / (sum|a|^2 + sum|b|^2)``; exactly 0 when ``a == b``.
    """
    ar, ai = a.chunk(2, 1)
    br, bi = b.chunk(2, 1)
    power = (ar.square() + ai.square() + br.square() + bi.square()).sum((2, 3)) + eps
    distance = ((ar - br).square() + (ai - bi).square()).sum((2, 3))
    cross_imag = (ai * br - ar * bi).sum((2, 3))  # Im sum a conj(b)
    return torch.cat([distance / power, -2 * cross_imag / power], 1)


def default_lesion_segmenter(device: torch.device | str = "cpu") -> Callable[..., torch.Tensor]:
    """Class probabilities ``(B, 5, H, W)`` of unit-range slices from the package's pretrained segmenter."""
    from .segmenter import load_segmenter, segment_probabilities

    network = load_segmenter(device=device)

    def predict(image: torch.Tensor, foreground: torch.Tensor | None = None) -> torch.Tensor:
        return segment_probabilities(image, foreground, network)

    return predict


class KCross(nn.Module):
    """The K-CROSS model (see the module docstring).

    Args:
        config: network sizes.
        segmenter: callable mapping unit-range slices ``(B, 1, H, W)`` (and a foreground ``(B, 1, H, W)``) to
            class probabilities ``(B, 5, H, W)`` over background, CSF, GM, WM, lesion -- any MONAI network can be
            wrapped; default: the package's pretrained segmenter, loaded on first use.
    """

    def __init__(
        self, config: KCrossConfig | None = None, segmenter: Callable[..., torch.Tensor] | None = None
    ) -> None:
        super().__init__()
        self.config = config or KCrossConfig()
        cfg = self.config
        if not 1 <= cfg.structure_levels <= len(cfg.structure_channels):
            raise ValueError(
                f"structure_levels must be in [1, {len(cfg.structure_channels)}], got {cfg.structure_levels}."
            )
        self.complex_net = _ComplexUNet(cfg.complex_channels)
        self.structure_net = _RealUNet(cfg.structure_channels)
        self.tumour_net = _RealUNet(cfg.tumour_channels)
        self.complex_head = _ComplexHead(cfg.complex_dim, cfg.hidden)
        self.natural_head = MonotoneHead(cfg.structure_dim + cfg.tumour_dim, cfg.hidden)
        self._segmenter = segmenter

    # ------------------------------------------------------------------------------------------ scoring
    def segment(self, image: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 5, H, W)`` of unit-range slices (the configured segmenter)."""
        if self._segmenter is None:
            self._segmenter = default_lesion_segmenter(image.device)
        with torch.no_grad():
            return self._segmenter(image, foreground)

    def harmonise(self, synthesized: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The synthesized slices histogram-matched to the references inside the head, and that head mask
        (the union of both slices' :func:`~monai_kcross.functional.foreground.enclosed_foreground`).

        With ``config.bias_fraction > 0`` the matched slices are also divided by their smooth multiplicative
        field relative to the reference (:func:`smooth_field`) and matched again.
        """
        head = enclosed_foreground(reference) | enclosed_foreground(synthesized)
        matched = match_histogram(synthesized, reference, head)
        if self.config.bias_fraction > 0:
            field = smooth_field(matched, reference, head, self.config.bias_fraction)
            matched = match_histogram(torch.where(head, matched / field, matched), reference, head)
        return matched, head

    def _tumour_deviations(
        self, syn: torch.Tensor, ref: torch.Tensor, head: torch.Tensor, lesion: torch.Tensor | None
    ) -> torch.Tensor:
        cfg, batch = self.config, syn.shape[0]
        p_syn, p_ref = self.segment(torch.cat([syn, ref]), torch.cat([head, head])).split(batch)
        soft = []
        for name in SEGMENTATION_CLASSES:
            index = 1 + SEGMENTATION_CLASSES.index(name)
            a, b = p_syn[:, index], p_ref[:, index]
            soft.append((a - b).square().sum((1, 2)) / (a.square().sum((1, 2)) + b.square().sum((1, 2)) + 1.0))
        lesion_syn, lesion_ref = p_syn[:, 4].sum((1, 2)), p_ref[:, 4].sum((1, 2))
        area = (torch.log1p(lesion_syn) - torch.log1p(lesion_ref)).abs()
        if lesion is None:
            lesion = ((p_syn[:, 4:5] > 0.5) | (p_ref[:, 4:5] > 0.5)).float()
        mask = F.max_pool2d(lesion.float(), 5, 1, 2)  # 2-px context around the lesion
        encoded = torch.zeros(batch, 2 * cfg.tumour_channels[-1], device=syn.device)
        present = lesion.flatten(1).sum(1) >= cfg.min_lesion
        if bool(present.any()):
            m = mask[present]
            deepest = self.tumour_net.encode(torch.cat([ref[present] * m, syn[present] * m]))[-1]
            ref_t, syn_t = deepest.split(int(present.sum()))
            weights = F.interpolate(m, size=deepest.shape[-2:], mode="area")
            deviations = [_luminance_deviation(syn_t, ref_t, weights), _variance_ratio(syn_t, ref_t, weights)]
            encoded[present] = torch.cat(deviations, 1)
        return torch.cat([encoded, torch.stack(soft, 1), area[:, None]], 1)

    def _structure_deviations(
        self, syn: torch.Tensor, ref: torch.Tensor, source: torch.Tensor | None, head: torch.Tensor
    ) -> torch.Tensor:
        cfg, batch = self.config, syn.shape[0]
        stack = torch.cat([syn, ref] if source is None else [syn, ref, pad_to_multiple(source)])
        terms = []
        for features in self.structure_net.encode(stack)[-cfg.structure_levels :]:
            parts = features.split(batch)
            f_syn, f_ref = parts[0], parts[1]
            inside = (F.interpolate(head.float(), size=features.shape[-2:], mode="area") > 0.5).float()
            terms += _structure_terms(f_syn, f_ref, None, inside, cfg.worst_fraction)
            if source is None:
                terms.append(torch.zeros_like(terms[-1]))
            else:
                f_src = parts[2]
                cross = (_variance_ratio(f_syn, f_src, None) - _variance_ratio(f_ref, f_src, None)).abs()
                terms.append(cross)
        return torch.cat(terms + _pixel_structure_deviations(syn, ref, head, cfg.pixel_levels, cfg.worst_fraction), 1)

    def descriptors(
        self,
        synthesized: torch.Tensor,
        reference: torch.Tensor,
        source: torch.Tensor | None,
        lesion: torch.Tensor | None,
        branches: Sequence[str] = BRANCHES,
    ) -> dict[str, torch.Tensor]:
        """Branch deviations of unit-range slices ``(B, 1, H, W)``: ``{"complex": (B, 2 * complex_dim)``
        (stacked complex), ``"structure": (B, structure_dim)``, ``"tumour": (B, tumour_dim)}``, all exactly 0
        where the synthesized slice equals the reference; disabled branches are all-zero."""
        cfg, batch = self.config, synthesized.shape[0]
        # harmonise the image itself, then pad: the zero padding is not image content, and matching it would map
        # it off zero (by the extrapolation below the head's range) wherever the synthesized background is not 0
        harmonised, head = self.harmonise(synthesized, reference)
        synthesized, reference = pad_to_multiple(synthesized), pad_to_multiple(reference)
        harmonised, head = pad_to_multiple(harmonised), pad_to_multiple(head)
        device = synthesized.device
        out = {
            "complex": torch.zeros(batch, 2 * cfg.complex_dim, device=device),
            "structure": torch.zeros(batch, cfg.structure_dim, device=device),
            "tumour": torch.zeros(batch, cfg.tumour_dim, device=device),
        }
        if "complex" in branches:
            features = self.encode_kspace(torch.cat([reference, harmonised]))
            deviations = [complex_deviation(f[batch:], f[:batch]) for f in features]
            real = torch.cat([d.chunk(2, 1)[0] for d in deviations], 1)
            imag = torch.cat([d.chunk(2, 1)[1] for d in deviations], 1)
            out["complex"] = torch.cat([real, imag], 1)
        if "structure" in branches:
            out["structure"] = self._structure_deviations(harmonised, reference, source, head)
        if "tumour" in branches:
            mask = pad_to_multiple(lesion.float()) if lesion is not None else None
            out["tumour"] = self._tumour_deviations(harmonised, reference, head, mask)
        # identical inputs: every deviation is 0 by construction; this guards against kernels that are not
        # bit-reproducible across batch positions
        same = (synthesized == reference).flatten(1).all(1)
        if bool(same.any()):
            out = {key: torch.where(same[:, None], torch.zeros_like(value), value) for key, value in out.items()}
        return out

    @staticmethod
    def neutralize(descriptors: dict[str, torch.Tensor], branches: Sequence[str]) -> dict[str, torch.Tensor]:
        """Descriptors with every branch outside ``branches`` replaced by zeros (as for identical images)."""
        return {key: value if key in branches else torch.zeros_like(value) for key, value in descriptors.items()}

    def heads(self, descriptors: dict[str, torch.Tensor], branches: Sequence[str]) -> dict[str, torch.Tensor]:
        """Branch penalties and the final score ``(B,)`` from deviations (branches outside ``branches`` zero)."""
        descriptors = self.neutralize(descriptors, branches)
        complex_penalty = self.complex_head(descriptors["complex"])
        natural_penalty = self.natural_head(torch.cat([descriptors["structure"], descriptors["tumour"]], 1))
        penalty = complex_penalty + natural_penalty
        return {
            "score": torch.exp(-penalty),
            "penalty": penalty,
            "complex_penalty": complex_penalty,
            "natural_penalty": natural_penalty,
        }

    def forward(
        self,
        synthesized: torch.Tensor,
        reference: torch.Tensor,
        source: torch.Tensor | None = None,
        lesion: torch.Tensor | None = None,
        branches: Sequence[str] = BRANCHES,
    ) -> dict[str, torch.Tensor]:
        """Score unit-range slices ``(B, 1, H, W)``: ``{"score", "penalty", "complex_penalty", "natural_penalty"}``."""
        unknown = [b for b in branches if b not in BRANCHES]
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {tuple(branches)}.")
        return self.heads(self.descriptors(synthesized, reference, source, lesion, branches), branches)

    def encode_kspace(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Complex-encoder features (stacked real layout ``(B, 2C_l, h_l, w_l)`` per level) of the centred
        orthonormal k-space of unit-range slices ``(B, 1, H, W)`` (sides a multiple of 16)."""
        return self.complex_net.encode(to_stacked(to_kspace(images.to(torch.complex64), (-2, -1))))

    def encoders(self) -> list[nn.Module]:
        return [self.complex_net, self.structure_net, self.tumour_net]

    def score_parameters(self) -> list[nn.Parameter]:
        return [*self.complex_head.parameters(), *self.natural_head.parameters()]
