"""ImageNet backbones defined without torchvision, with torchvision's parameter names.

``features.<index>.weight`` keys of torchvision's ``vgg16``, ``alexnet`` and ``squeezenet1_1`` state dicts load
unchanged (``load_state_dict(..., strict=True)`` on the ``features`` part). Each backbone also states the
layer indices after which the perceptual metrics tap features (LPIPS "slices", DISTS "stages").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BACKBONES", "Backbone", "Fire", "alexnet_features", "squeezenet1_1_features", "vgg16_features"]


class Fire(nn.Module):
    """SqueezeNet's fire module (torchvision attribute names)."""

    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


def vgg16_features() -> nn.Sequential:
    """torchvision ``vgg16().features`` (13 convolutions, 5 max-pools)."""
    layers: list[nn.Module] = []
    channels = 3
    for value in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(value), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(value)
    return nn.Sequential(*layers)


def alexnet_features() -> nn.Sequential:
    """torchvision ``alexnet().features``."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def squeezenet1_1_features() -> nn.Sequential:
    """torchvision ``squeezenet1_1().features``."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 16, 64, 64),
        Fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(128, 32, 128, 128),
        Fire(256, 32, 128, 128),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(256, 48, 192, 192),
        Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256),
        Fire(512, 64, 256, 256),
    )


class Backbone(nn.Module):
    """A feature extractor returning the activations after each tap.

    Args:
        features: the torchvision-layout ``features`` sequential.
        taps: exclusive end indices of consecutive slices of ``features`` (LPIPS' ``slice1 .. sliceN``).
        channels: channels of each tapped activation.
    """

    def __init__(self, features: nn.Sequential, taps: Sequence[int], channels: Sequence[int]) -> None:
        super().__init__()
        self.features = features
        self.taps = tuple(taps)
        self.channels = tuple(channels)
        for module in self.features.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = False  # activations are returned, in-place ReLUs would overwrite them

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        start = 0
        for end in self.taps:
            for index in range(start, end):
                x = self.features[index](x)
            outputs.append(x)
            start = end
        return outputs


# name -> (constructor, LPIPS taps, channels)
BACKBONES = {
    "vgg": (vgg16_features, (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
    "alex": (alexnet_features, (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "squeeze": (squeezenet1_1_features, (2, 5, 8, 10, 11, 12, 13), (64, 128, 256, 384, 384, 512, 512)),
}


def build_backbone(name: str) -> Backbone:
    """``"vgg"`` (VGG16), ``"alex"`` (AlexNet) or ``"squeeze"`` (SqueezeNet 1.1) with LPIPS taps."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}.")
    constructor, taps, channels = BACKBONES[name]
    return Backbone(constructor(), taps, channels)
