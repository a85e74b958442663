"""The perceptual networks: LPIPS (v0.1), DISTS and WaDIQaM-FR (DeepIQA), as differentiable modules.

Each module takes 3-channel image batches ``(B, 3, H, W)`` in the range its original expects (LPIPS
``[-1, 1]``; DISTS and WaDIQaM ``[0, 1]``) plus an optional weight map ``(B, 1, H, W)`` and returns one distance
(or quality) per image ``(B,)``. The medical front end (intensity policy, grey to RGB, volumes, masks) is in
:mod:`monai_kcross.perceptual.functional`. Modules are usable as losses (gradients flow to the inputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..functional.masking import weighted_mean
from ..functional.safe_math import safe_sqrt
from .backbones import BACKBONES, build_backbone, vgg16_features
from .weights import features_state_dict, find_weights, load_weight_file, lpips_heads, random_state_dict

__all__ = ["DISTS", "LPIPS", "WaDIQaMFR", "load_backbone_weights"]


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """:func:`~monai_kcross.functional.masking.weighted_mean` of ``(B, C, h, w)`` with ``weights`` resized to
    ``(h, w)`` by area; images whose weights are all zero get a constant NaN."""
    if weights is not None and weights.shape[2:] != values.shape[2:]:
        weights = F.interpolate(weights, size=values.shape[2:], mode="area")
    return weighted_mean(values, weights, empty_mask="nan")


def unit_normalise(features: torch.Tensor) -> torch.Tensor:
    """Scale the feature vector (axis 1) at every position to unit length (LPIPS); all-zero vectors stay zero,
    with a finite gradient."""
    return features / (safe_sqrt(features.square().sum(1, keepdim=True)) + 1e-10)


def load_backbone_weights(module: nn.Module, key: str, source: str | Path | None) -> None:
    """Fill ``module`` (a :class:`~monai_kcross.perceptual.backbones.Backbone`) with weights.

    ``source`` is a file path, ``None`` (search, see :func:`~monai_kcross.perceptual.weights.find_weights`) or
    ``"random:<seed>"`` (deterministic random weights, for architecture checks only).
    """
    if isinstance(source, str) and source.startswith("random:"):
        module.load_state_dict(random_state_dict(module, int(source.split(":", 1)[1])))
        return
    tensors = features_state_dict(load_weight_file(find_weights(key, source)))
    missing = module.load_state_dict(tensors, strict=False)
    if missing.missing_keys:
        raise ValueError(f"{key} weights lack {missing.missing_keys[:4]} (got {len(tensors)} backbone tensors).")


class LPIPS(nn.Module):
    """Learned perceptual image patch similarity, v0.1 (Zhang et al. 2018), identical to the ``lpips`` package.

    Args:
        net: backbone, ``"vgg"``, ``"alex"`` or ``"squeeze"``.
        backbone_weights: backbone weight file, ``None`` to search, or ``"random:<seed>"``.
        head_weights: linear-head weight file (``lin<k>.model.1.weight``), ``None`` for the shipped v0.1 heads,
            or ``"random:<seed>"``.
    """

    def __init__(
        self, net: str = "vgg", backbone_weights: str | Path | None = None, head_weights: str | Path | None = None
    ) -> None:
        super().__init__()
        self.net = build_backbone(net)
        load_backbone_weights(self.net, net, backbone_weights)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in self.net.channels)
        if isinstance(head_weights, str) and head_weights.startswith("random:"):
            rng = np.random.default_rng(int(head_weights.split(":", 1)[1]))
            heads = [
                torch.from_numpy(np.abs(rng.standard_normal((1, c, 1, 1))).astype(np.float32))
                for c in self.net.channels
            ]
        else:
            heads = lpips_heads(load_weight_file(find_weights(f"lpips_{net}", head_weights)))
        if [h.shape[1] for h in heads] != list(self.net.channels):
            raise ValueError(
                f"LPIPS heads have channels {[h.shape[1] for h in heads]}, {net} needs {self.net.channels}."
            )
        for lin, head in zip(self.lins, heads):
            lin.weight.data.copy_(head.reshape(lin.weight.shape))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def layer_maps(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer distance maps ``(B, 1, h_k, w_k)`` of inputs in ``[-1, 1]``."""
        fx = self.net((x - self.shift) / self.scale)
        fy = self.net((y - self.shift) / self.scale)
        maps = []
        for a, b, lin in zip(fx, fy, self.lins):
            maps.append(lin((unit_normalise(a) - unit_normalise(b)).square()))
        return maps

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """LPIPS ``(B,)``: per layer, the head-weighted map averaged over space (inside ``weights``), summed."""
        return sum(_weighted_mean(m, weights)[:, 0] for m in self.layer_maps(x, y))


class L2Pooling(nn.Module):
    """DISTS' L2 pooling: Hanning(5)[1:-1] squared-signal blur, stride 2, padding 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.from_numpy(np.hanning(5)[1:-1]).float()
        g = a[:, None] * a[None, :]
        self.register_buffer("filter", (g / g.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x.square(), self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """Deep image structure and texture similarity (Ding et al. 2020), identical to ``DISTS_pytorch``.

    Args:
        backbone_weights: VGG16 weight file, ``None`` to search, or ``"random:<seed>"``.
        alpha_beta: file with ``alpha`` and ``beta`` ``(1, 1475, 1, 1)``, ``None`` for the shipped ones, or
            ``"random:<seed>"``.
    """

    chns = (3, 64, 128, 256, 512, 512)

    def __init__(self, backbone_weights: str | Path | None = None, alpha_beta: str | Path | None = None) -> None:
        super().__init__()
        features = vgg16_features()
        holder = nn.Module()
        holder.features = features
        load_backbone_weights(holder, "vgg", backbone_weights)
        for index in (4, 9, 16, 23):  # max-pools become L2 pooling
            features[index] = L2Pooling(features[index - 2].out_channels)
        for module in features.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = False
        self.features = features[:30]
        self.stages = (4, 9, 16, 23, 30)
        if isinstance(alpha_beta, str) and alpha_beta.startswith("random:"):
            rng = np.random.default_rng(int(alpha_beta.split(":", 1)[1]))
            tensors = {
                k: torch.from_numpy((0.1 + 0.01 * rng.standard_normal((1, 1475, 1, 1))).astype(np.float32))
                for k in ("alpha", "beta")
            }
        else:
            tensors = load_weight_file(find_weights("dists", alpha_beta))
        self.register_buffer("alpha", tensors["alpha"].reshape(1, -1, 1, 1).float())
        self.register_buffer("beta", tensors["beta"].reshape(1, -1, 1, 1).float())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [x]
        h = (x - self.mean) / self.std
        start = 0
        for end in self.stages:
            for index in range(start, end):
                h = self.features[index](h)
            outputs.append(h)
            start = end
        return outputs

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """DISTS ``(B,)`` of inputs in ``[0, 1]``; statistics are weighted by ``weights`` at every stage."""
        c1 = c2 = 1e-6
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, self.chns, dim=1)
        betas = torch.split(self.beta / total, self.chns, dim=1)
        score = 0
        for fx, fy, alpha, beta in zip(self.stage_features(x), self.stage_features(y), alphas, betas):
            mx, my = _weighted_mean(fx, weights), _weighted_mean(fy, weights)
            # centred on NaN-free means, so empty images keep NaN out of the gradient
            vx = _weighted_mean((fx - mx.nan_to_num()[..., None, None]).square(), weights)
            vy = _weighted_mean((fy - my.nan_to_num()[..., None, None]).square(), weights)
            cxy = _weighted_mean(fx * fy, weights) - mx * my
            s1 = (2 * mx * my + c1) / (mx.square() + my.square() + c1)
            s2 = (2 * cxy + c2) / (vx + vy + c2)
            score = score + (alpha[:, :, 0, 0] * s1).sum(1) + (beta[:, :, 0, 0] * s2).sum(1)
        return 1 - score


class WaDIQaMFR(nn.Module):
    """WaDIQaM-FR (Bosse et al. 2018): patch-wise quality with learned weighted-average pooling.

    Non-overlapping 32x32 patches (all that fit), a VGG-like feature extractor per patch, fusion
    ``concat(f_d - f_r, f_d, f_r)``, patch quality ``q`` and weight ``a = relu(.) + eps``, score
    ``sum(q a) / sum(a)``. Checkpoints in pyiqa's layout (fusion ``(f_r, f_d, f_d - f_r)``) and in Dingquan
    Li's (``conv1..conv10``, ``fc1_q``, ...) are converted on load.

    Args:
        weights: checkpoint file, ``None`` to search (``wadiqam_fr.safetensors``), or ``"random:<seed>"``.
    """

    patch = 32
    eps = 1e-8

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for value in (32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M"):
            if value == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(value), 3, padding=1), nn.ReLU()]
                channels = int(value)
        self.features = nn.Sequential(*layers)
        self.fc_q = nn.Sequential(nn.Linear(1536, 512), nn.ReLU(), nn.Dropout(), nn.Linear(512, 1))
        self.fc_w = nn.Sequential(nn.Linear(1536, 512), nn.ReLU(), nn.Dropout(), nn.Linear(512, 1), nn.ReLU())
        if isinstance(weights, str) and weights.startswith("random:"):
            self.load_state_dict(random_state_dict(self, int(weights.split(":", 1)[1])))
        else:
            path = find_weights("wadiqam_fr", weights)
            self.load_state_dict(_wadiqam_state_dict(load_weight_file(path), _layout_of(path)))
        self.eval().requires_grad_(False)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, P, C, 32, 32)`` non-overlapping patches, row-major."""
        b, c, h, w = x.shape
        rows, cols = h // self.patch, w // self.patch
        if rows == 0 or cols == 0:
            raise ValueError(f"WaDIQaM needs images of at least 32x32 pixels, got {h}x{w}.")
        x = x[:, :, : rows * self.patch, : cols * self.patch]
        x = x.reshape(b, c, rows, self.patch, cols, self.patch).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, rows * cols, c, self.patch, self.patch)

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Quality ``(B,)`` of ``x`` (distorted) against ``y`` (reference), inputs in ``[0, 1]``."""
        px, py = self.patches(x), self.patches(y)
        b, p = px.shape[:2]
        fd = self.features(px.flatten(0, 1)).reshape(b, p, 512)
        fr = self.features(py.flatten(0, 1)).reshape(b, p, 512)
        fused = torch.cat([fd - fr, fd, fr], dim=-1)
        q = self.fc_q(fused)[..., 0]
        a = self.fc_w(fused)[..., 0] + self.eps
        if weights is not None:
            coverage = self.patches(weights).mean(dim=(2, 3, 4))
            a = a * coverage
        total = a.sum(1)
        empty = total == 0  # no patch inside the region
        return ((q * a).sum(1) / total.masked_fill(empty, 1.0)).masked_fill(empty, float("nan"))


def _layout_of(path: Path) -> str:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("layout") == "monai_kcross":
                return "package"
    return "auto"


def _wadiqam_state_dict(tensors: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Map a WaDIQaM-FR checkpoint onto :class:`WaDIQaMFR`'s names and fusion order."""
    if "conv1.weight" in tensors:  # Dingquan Li's layout, paper fusion order
        conv_index = [0, 2, 5, 7, 10, 12, 15, 17, 20, 22]
        out = {}
        for i, index in enumerate(conv_index, start=1):
            out[f"features.{index}.weight"] = tensors[f"conv{i}.weight"]
            out[f"features.{index}.bias"] = tensors[f"conv{i}.bias"]
        for head in ("q", "w"):
            for j, index in ((1, 0), (2, 3)):
                out[f"fc_{head}.{index}.weight"] = tensors[f"fc{j}_{head}.weight"]
                out[f"fc_{head}.{index}.bias"] = tensors[f"fc{j}_{head}.bias"]
        return out
    if "fc_q.0.weight" not in tensors:
        raise ValueError("unrecognised WaDIQaM-FR checkpoint: expected pyiqa (fc_q.0.weight) or conv1..conv10 keys.")
    out = dict(tensors)
    if layout != "package":  # pyiqa: fusion (f_r, f_d, f_d - f_r) -> (f_d - f_r, f_d, f_r)
        for head in ("q", "w"):
            weight = out[f"fc_{head}.0.weight"]
            ref, dist, diff = weight.split(512, dim=1)
            out[f"fc_{head}.0.weight"] = torch.cat([diff, dist, ref], dim=1)
    return out


BACKBONE_NAMES = tuple(BACKBONES)
