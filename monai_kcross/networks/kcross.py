"""The K-CROSS network: complex k-space branch, shared structure branch, tumour branch and score heads.

Design (paper: "K-Space-Aware Cross-Modality Score for Synthesized Neuroimage Quality Assessment"; where the
paper is silent the choices below are ours and documented):

* **Complex branch** -- a complex U-Net (complex convolutions, batch norm and leaky ReLU in the encoder,
  complex transposed convolutions and ReLU in the decoder, no output tanh) on the centred orthonormal k-space
  of the target-modality image, trained to reconstruct it (frequency loss). For scoring, every encoder level
  of the reference and the synthesized image are compared channel by channel with the complex coherence
  ``sum(F_ref conj(F_syn)) / sqrt(sum|F_ref|^2 sum|F_syn|^2)`` (1 for identical features; its phase carries
  k-space shifts), giving a complex descriptor (512 values with the paper-size encoder).
* **Structure branch** -- one real encoder/decoder shared by source and target modality, trained to reconstruct
  both (L1) while an MMD loss pulls their encodings together. For scoring, the features of the synthesized
  image are compared with those of the source and of the reference (per-channel structure term
  ``(2 cov + c) / (var + var + c)``) at the ``structure_levels`` deepest encoder levels (the paper: the deepest
  only; the shipped small configuration: all four, which keeps fine anatomy in the descriptor).
* **Tumour branch** -- a lesion mask (given, or predicted by a pluggable segmenter: by default the package's
  MRI segmenter on the reference and on the synthesized slice, union) selects the lesion; an encoder/decoder
  for the target modality, trained to reconstruct lesion regions (Laplacian + perceptual loss), encodes the
  masked reference and synthesized slices; per-channel luminance and structure terms inside the mask form its
  descriptor. Without a lesion the descriptor is neutral (healthy mode).
* **Score heads** -- a complex MLP (descriptor -> 256 -> 1, real part taken) and a natural MLP on the
  structure and tumour descriptors (512 -> 256 -> 1); ``score = sigmoid(bias + sum of the enabled heads)``.
  Disabled branches (ablations, healthy mode) contribute neutral descriptors; the heads are trained with
  random branch dropout so every subset of branches is calibrated. Score in ``[0, 1]``, higher is better.

Inputs of :meth:`KCross.forward` are 2-D slices ``(B, 1, H, W)`` already mapped to the unit range (the
reference onto ``[0, 1]``, the synthesized image with the same map, the source onto its own ``[0, 1]``); the
metric front end (:mod:`monai_kcross.metrics.kcross`) does this and handles volumes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..transforms.kspace import to_kspace
from .complex import (
    ComplexBatchNorm,
    ComplexConv,
    ComplexConvTranspose,
    ComplexLeakyReLU,
    ComplexLinear,
    ComplexReLU,
    complex_cat,
)

__all__ = ["BRANCHES", "KCross", "KCrossConfig", "default_lesion_segmenter", "pad_to_multiple"]

BRANCHES = ("complex", "structure", "tumour")


@dataclass
class KCrossConfig:
    """Sizes of the K-CROSS networks. The defaults follow the paper (512-d descriptors, 512-256-1 heads);
    :meth:`small` is the CPU-friendly configuration used for the shipped bundle and tests."""

    complex_channels: tuple[int, ...] = (64, 64, 128, 256)
    structure_channels: tuple[int, ...] = (32, 64, 128, 128)
    tumour_channels: tuple[int, ...] = (32, 64, 128, 128)
    hidden: int = 256
    structure_levels: int = 1
    min_lesion: int = 10
    source_contrast: str = "t1"
    target_contrast: str = "t2"
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
        fields = dict(data)  # checkpoints written before a field existed get its default
        for key in ("complex_channels", "structure_channels", "tumour_channels"):
            fields[key] = tuple(fields[key])
        return cls(**fields)


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
            x = layer(x)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = self.encode(x)
        h = features[-1]
        for index in range(len(self.up) - 1, -1, -1):
            h = self.decoder[index](torch.cat([self.up[index](h), features[index]], 1))
        return self.head(h), features


class _ComplexUNet(nn.Module):
    """Complex U-Net on k-space: complex conv/BN/LeakyReLU encoder, transposed-conv/BN/ReLU decoder."""

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
            k = layer(k)
            features.append(k)
        return features

    def forward(self, k: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = self.encode(k)
        h = features[-1]
        for index in range(len(self.up) - 1, -1, -1):
            h = self.decoder[index](complex_cat([self.up[index](h), features[index]]))
        return self.head(h), features


def _weighted_stats(
    a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None, c: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel luminance and structure similarity of feature maps ``(B, C, h, w)`` (inside ``weights``)."""
    if weights is None:
        weights = torch.ones_like(a[:, :1])
    else:
        weights = F.interpolate(weights, size=a.shape[-2:], mode="area")
    total = weights.sum((2, 3)).clamp_min(1e-12)

    def mean(v: torch.Tensor) -> torch.Tensor:
        return (v * weights).sum((2, 3)) / total

    ma, mb = mean(a), mean(b)
    va = mean((a - ma[..., None, None]).square())
    vb = mean((b - mb[..., None, None]).square())
    cov = mean(a * b) - ma * mb
    luminance = (2 * ma * mb + c) / (ma.square() + mb.square() + c)
    structure = (2 * cov + c) / (va + vb + c)
    return luminance, structure


def complex_coherence(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-channel complex coherence of complex maps ``(B, C, h, w)`` -> ``(B, C)`` complex, ``|.| <= 1``."""
    numerator = (a * b.conj()).sum((2, 3))
    power = (a.abs().square().sum((2, 3)) * b.abs().square().sum((2, 3))).sqrt()
    return numerator / (power + eps)


def default_lesion_segmenter(device: torch.device | str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """Lesion masks ``(B, 1, H, W)`` of unit-range slices from the package's pretrained segmenter."""
    from .segmenter import CLASSES, load_segmenter, segment

    network = load_segmenter(device=device)
    lesion = CLASSES.index("lesion")

    def predict(image: torch.Tensor) -> torch.Tensor:
        foreground = image > 0.01
        return (segment(image, foreground, network) == lesion)[:, None]

    return predict


class KCross(nn.Module):
    """The K-CROSS model (see the module docstring).

    Args:
        config: network sizes and the contrast pair it is trained for.
        segmenter: callable mapping unit-range slices ``(B, 1, H, W)`` to lesion masks ``(B, 1, H, W)`` -- any
            MONAI network can be wrapped (``lambda x: net(x).argmax(1, keepdim=True) == k``); default: the
            package's pretrained segmenter, loaded on first use.
    """

    def __init__(
        self, config: KCrossConfig | None = None, segmenter: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        super().__init__()
        self.config = config or KCrossConfig()
        cfg = self.config
        self.complex_net = _ComplexUNet(cfg.complex_channels)
        self.structure_net = _RealUNet(cfg.structure_channels)
        self.tumour_net = _RealUNet(cfg.tumour_channels)
        complex_dim = sum(cfg.complex_channels)
        if not 1 <= cfg.structure_levels <= len(cfg.structure_channels):
            raise ValueError(
                f"structure_levels must be in [1, {len(cfg.structure_channels)}], got {cfg.structure_levels}."
            )
        structure_dim = 2 * sum(cfg.structure_channels[-cfg.structure_levels :])
        natural_dim = structure_dim + 2 * cfg.tumour_channels[-1]
        self.complex_head = nn.Sequential(
            ComplexLinear(complex_dim, cfg.hidden), ComplexReLU(), ComplexLinear(cfg.hidden, 1)
        )
        self.natural_head = nn.Sequential(
            nn.Linear(natural_dim, cfg.hidden), nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, 1)
        )
        self.bias = nn.Parameter(torch.zeros(1))
        self._segmenter = segmenter

    # ------------------------------------------------------------------------------------------ stage 1
    def stage1_losses(
        self, source: torch.Tensor, target: torch.Tensor, lesion: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Stage-1 losses on real paired slices ``(B, 1, H, W)`` (unit range) and lesion masks.

        Returns ``{"frequency", "structure", "similarity", "tumour", "total"}`` (all weights 1, paper eq. 19).
        """
        from ..losses.kcross import frequency_loss, mmd_loss, structure_loss, tumour_loss

        source, target, lesion = pad_to_multiple(source), pad_to_multiple(target), pad_to_multiple(lesion.float())
        k = to_kspace(target.to(torch.complex64), (-2, -1))
        reconstruction, _ = self.complex_net(k)
        losses = {"frequency": frequency_loss(reconstruction, k)}
        rec_source, feat_source = self.structure_net(source)
        rec_target, feat_target = self.structure_net(target)
        losses["structure"] = structure_loss(rec_source, source) + structure_loss(rec_target, target)
        losses["similarity"] = mmd_loss(
            F.adaptive_avg_pool2d(feat_source[-1], 4), F.adaptive_avg_pool2d(feat_target[-1], 4)
        )
        masked = target * lesion
        rec_lesion, _ = self.tumour_net(masked)
        has_lesion = lesion.flatten(1).sum(1) >= self.config.min_lesion
        if bool(has_lesion.any()):
            losses["tumour"] = tumour_loss(rec_lesion[has_lesion] * lesion[has_lesion], masked[has_lesion])
        else:
            losses["tumour"] = structure_loss(rec_lesion, masked)
        losses["total"] = sum(losses.values())
        return losses

    # ------------------------------------------------------------------------------------------ scoring
    def lesion_mask(self, synthesized: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Union of the segmenter's lesion masks on the reference and on the synthesized slice."""
        if self._segmenter is None:
            self._segmenter = default_lesion_segmenter(reference.device)
        with torch.no_grad():
            return (self._segmenter(reference).bool() | self._segmenter(synthesized).bool()).float()

    def descriptors(
        self,
        synthesized: torch.Tensor,
        reference: torch.Tensor,
        source: torch.Tensor | None,
        lesion: torch.Tensor | None,
        branches: Sequence[str] = BRANCHES,
    ) -> dict[str, torch.Tensor]:
        """Branch descriptors of unit-range slices ``(B, 1, H, W)``; disabled branches get neutral values."""
        cfg, batch = self.config, synthesized.shape[0]
        synthesized, reference = pad_to_multiple(synthesized), pad_to_multiple(reference)
        device = synthesized.device
        out: dict[str, torch.Tensor] = {}
        if "complex" in branches:
            pair = torch.cat([reference, synthesized]).to(torch.complex64)
            features = self.complex_net.encode(to_kspace(pair, (-2, -1)))
            out["complex"] = torch.cat([complex_coherence(f[:batch], f[batch:]) for f in features], 1)
        else:
            out["complex"] = torch.ones(batch, sum(cfg.complex_channels), dtype=torch.complex64, device=device)
        levels = cfg.structure_levels
        if "structure" in branches:
            if source is None:
                raise ValueError("the structure branch needs the source image (pass source=..., or drop the branch).")
            stack = torch.cat([synthesized, pad_to_multiple(source), reference])
            terms = []
            for features in self.structure_net.encode(stack)[-levels:]:
                syn, src, ref = features.split(batch)
                terms += [_weighted_stats(syn, src, None)[1], _weighted_stats(syn, ref, None)[1]]
            out["structure"] = torch.cat(terms, 1)
        else:
            out["structure"] = torch.ones(batch, 2 * sum(cfg.structure_channels[-levels:]), device=device)
        c_t = cfg.tumour_channels[-1]
        tumour = torch.ones(batch, 2 * c_t, device=device)
        if "tumour" in branches:
            mask = pad_to_multiple(lesion.float()) if lesion is not None else None
            if mask is None:
                mask = self.lesion_mask(synthesized, reference)
            present = mask.flatten(1).sum(1) >= cfg.min_lesion
            if bool(present.any()):
                m = mask[present]
                deepest = self.tumour_net.encode(torch.cat([reference[present] * m, synthesized[present] * m]))[-1]
                ref_t, syn_t = deepest.split(int(present.sum()))
                lum, struct = _weighted_stats(syn_t, ref_t, m)
                tumour[present] = torch.cat([lum, struct], 1)
        out["tumour"] = tumour
        return out

    @staticmethod
    def neutralize(descriptors: dict[str, torch.Tensor], branches: Sequence[str]) -> dict[str, torch.Tensor]:
        """Descriptors with every branch outside ``branches`` replaced by its neutral value (identical images)."""
        return {key: value if key in branches else torch.ones_like(value) for key, value in descriptors.items()}

    def heads(self, descriptors: dict[str, torch.Tensor], branches: Sequence[str]) -> dict[str, torch.Tensor]:
        """Branch logits and the final score ``(B,)`` from descriptors (branches outside ``branches`` neutral)."""
        descriptors = self.neutralize(descriptors, branches)
        complex_logit = self.complex_head(descriptors["complex"])[:, 0].real
        natural = torch.cat([descriptors["structure"], descriptors["tumour"]], 1)
        natural_logit = self.natural_head(natural)[:, 0]
        logit = self.bias.expand_as(complex_logit)
        if "complex" in branches:
            logit = logit + complex_logit
        if "structure" in branches or "tumour" in branches:
            logit = logit + natural_logit
        return {"score": torch.sigmoid(logit), "complex_logit": complex_logit, "natural_logit": natural_logit}

    def forward(
        self,
        synthesized: torch.Tensor,
        reference: torch.Tensor,
        source: torch.Tensor | None = None,
        lesion: torch.Tensor | None = None,
        branches: Sequence[str] = BRANCHES,
    ) -> dict[str, torch.Tensor]:
        """Score unit-range slices ``(B, 1, H, W)``: ``{"score", "complex_logit", "natural_logit"}``."""
        unknown = [b for b in branches if b not in BRANCHES]
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {tuple(branches)}.")
        return self.heads(self.descriptors(synthesized, reference, source, lesion, branches), branches)

    def encoders(self) -> list[nn.Module]:
        return [self.complex_net, self.structure_net, self.tumour_net]

    def score_parameters(self) -> list[nn.Parameter]:
        return [*self.complex_head.parameters(), *self.natural_head.parameters(), self.bias]
