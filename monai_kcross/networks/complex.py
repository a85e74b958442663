"""Complex-valued layers for k-space networks (Trabelsi et al. 2018 style), on ``torch.complex`` tensors.

Convolutions and linear layers follow the complex multiplication rule with separate real and imaginary
weights ``W = A + iB``: ``W z = (A x - B y) + i (B x + A y)`` for ``z = x + iy`` (the original K-CROSS
prototype added ``conv_im(y)`` twice; this is the correct form). Normalisation, activations and upsampling act
on the real and imaginary parts separately, as in the K-CROSS paper (eqs. 6-10). Every layer takes and returns
complex tensors ``(B, C, *spatial)``; ``spatial_dims`` 2 or 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ComplexBatchNorm",
    "ComplexConv",
    "ComplexConvTranspose",
    "ComplexLeakyReLU",
    "ComplexLinear",
    "ComplexReLU",
    "ComplexTanh",
    "ComplexUpsample",
    "complex_cat",
]


def _split(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not z.is_complex():
        raise ValueError(f"complex layers expect complex tensors, got {z.dtype}.")
    return z.real, z.imag


class _ComplexAffine(nn.Module):
    """Shared rule of complex convolutions and linear layers: ``(A x - B y + b_r) + i (B x + A y + b_i)``.

    ``self.real`` and ``self.imag`` are bias-free real layers holding ``A`` and ``B``; the complex bias
    ``b = b_r + i b_i`` is a separate parameter pair.
    """

    real: nn.Module
    imag: nn.Module

    def _init_bias(self, channels: int, bias: bool, spatial_dims: int) -> None:
        self.bias_shape = (1, channels) + (1,) * spatial_dims
        self.bias_real = nn.Parameter(torch.zeros(channels)) if bias else None
        self.bias_imag = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, y = _split(z)
        real = self.real(x) - self.imag(y)
        imag = self.imag(x) + self.real(y)
        if self.bias_real is not None:
            real = real + self.bias_real.view(self.bias_shape)
            imag = imag + self.bias_imag.view(self.bias_shape)
        return torch.complex(real, imag)


class ComplexConv(_ComplexAffine):
    """Complex convolution; arguments as ``nn.Conv2d``/``nn.Conv3d`` (``padding`` defaults to 'same' for odd
    kernels)."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        padding = kernel_size // 2 if padding is None else padding
        self.real = conv(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.imag = conv(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self._init_bias(out_channels, bias, spatial_dims)


class ComplexConvTranspose(_ComplexAffine):
    """Complex transposed convolution; arguments as ``nn.ConvTranspose2d``/``nn.ConvTranspose3d``."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 2,
        stride: int = 2,
        bias: bool = True,
    ) -> None:
        super().__init__()
        conv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        self.real = conv(in_channels, out_channels, kernel_size, stride, bias=False)
        self.imag = conv(in_channels, out_channels, kernel_size, stride, bias=False)
        self._init_bias(out_channels, bias, spatial_dims)


class ComplexLinear(_ComplexAffine):
    """Complex fully connected layer on ``(B, in_features)`` complex inputs."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.real = nn.Linear(in_features, out_features, bias=False)
        self.imag = nn.Linear(in_features, out_features, bias=False)
        self._init_bias(out_features, bias, 0)


class ComplexBatchNorm(nn.Module):
    """Batch normalisation applied separately to the real and imaginary parts (the paper's eq. 9)."""

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        self.real, self.imag = norm(channels), norm(channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, y = _split(z)
        return torch.complex(self.real(x), self.imag(y))


class _PartWise(nn.Module):
    """Apply a real function to the real and imaginary parts separately."""

    def function(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, y = _split(z)
        return torch.complex(self.function(x), self.function(y))


class ComplexReLU(_PartWise):
    """``ReLU(Re z) + i ReLU(Im z)``."""

    def function(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class ComplexLeakyReLU(_PartWise):
    """``LeakyReLU(Re z) + i LeakyReLU(Im z)``."""

    def __init__(self, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def function(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


class ComplexTanh(_PartWise):
    """``tanh(Re z) + i tanh(Im z)``."""

    def function(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class ComplexUpsample(_PartWise):
    """Nearest or (bi/tri)linear upsampling of the real and imaginary parts."""

    def __init__(self, scale_factor: float = 2.0, mode: str = "nearest") -> None:
        super().__init__()
        self.scale_factor, self.mode = scale_factor, mode

    def function(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode)


def complex_cat(tensors: list[torch.Tensor], dim: int = 1) -> torch.Tensor:
    """Concatenate complex tensors along ``dim`` (channels by default)."""
    return torch.cat(tensors, dim=dim)
