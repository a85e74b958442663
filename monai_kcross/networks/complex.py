"""Complex-valued layers for k-space networks (Trabelsi et al. 2018 style) on *stacked* real tensors.

A complex feature map with ``C`` channels is stored as one real tensor ``(B, 2C, *spatial)``: channels ``[0, C)``
hold the real parts, ``[C, 2C)`` the imaginary parts (:func:`to_stacked` / :func:`to_complex` convert). Keeping
both parts as contiguous channel blocks lets every layer be a single real operation at full speed: a complex
convolution with weights ``W = A + iB`` is one real convolution with the block weight ``[[A, -B], [B, A]]``,
i.e. ``W z = (A x - B y) + i (B x + A y)`` for ``z = x + iy`` (the original K-CROSS prototype added
``conv_im(y)`` twice; this is the correct form). Normalisation, activations and upsampling act on the real and
imaginary parts separately, as in the K-CROSS paper (eqs. 6-10), which on the stacked layout is the plain real
operation. ``spatial_dims`` is 2 or 3.
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
    "to_complex",
    "to_stacked",
]


def to_stacked(z: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, C, ...)`` -> real ``(B, 2C, ...)`` with the real parts first."""
    if not z.is_complex():
        raise ValueError(f"to_stacked expects a complex tensor, got {z.dtype}.")
    return torch.cat([z.real, z.imag], 1)


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """Stacked real ``(B, 2C, ...)`` -> complex ``(B, C, ...)``."""
    if x.is_complex() or x.shape[1] % 2:
        raise ValueError(
            f"to_complex expects a real tensor with an even channel count, got {tuple(x.shape)} {x.dtype}."
        )
    real, imag = x.chunk(2, 1)
    return torch.complex(real.contiguous(), imag.contiguous())


def complex_cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate stacked complex tensors along the channel axis (real blocks first, then imaginary blocks)."""
    parts = [t.chunk(2, 1) for t in tensors]
    return torch.cat([p[0] for p in parts] + [p[1] for p in parts], 1)


def _block(a: torch.Tensor, b: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """Real block weight of the complex weight ``a + ib`` (dims 0/1 = out/in, or in/out when ``transposed``)."""
    if transposed:
        return torch.cat([torch.cat([a, b], 1), torch.cat([-b, a], 1)], 0)
    return torch.cat([torch.cat([a, -b], 1), torch.cat([b, a], 1)], 0)


class _ComplexAffine(nn.Module):
    """Complex weights ``A + iB`` (``self.weight_real``, ``self.weight_imag``) and an optional complex bias."""

    def _init(self, shape: tuple[int, ...], out_channels: int, bias: bool, fan_in: int) -> None:
        bound = 1.0 / (2 * fan_in) ** 0.5  # Glorot-like scale for the doubled real fan-in
        self.weight_real = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.weight_imag = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias_real = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.bias_imag = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def block_bias(self) -> torch.Tensor | None:
        """The stacked real bias ``(2 * out,)`` (real parts first), or ``None``."""
        return None if self.bias_real is None else torch.cat([self.bias_real, self.bias_imag])

    @property
    def weight(self) -> torch.Tensor:
        """The complex weight ``A + iB``."""
        return torch.complex(self.weight_real, self.weight_imag)


class ComplexConv(_ComplexAffine):
    """Complex convolution on stacked tensors; arguments as ``nn.Conv2d``/``nn.Conv3d`` (``padding`` defaults to
    'same' for odd kernels)."""

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
        self.conv = F.conv2d if spatial_dims == 2 else F.conv3d
        self.stride, self.padding = stride, kernel_size // 2 if padding is None else padding
        shape = (out_channels, in_channels, *[kernel_size] * spatial_dims)
        self._init(shape, out_channels, bias, in_channels * kernel_size**spatial_dims)

    def block_weight(self) -> torch.Tensor:
        """The real block weight ``[[A, -B], [B, A]]`` ``(2 * out, 2 * in, k, ...)`` of the stacked layout."""
        return _block(self.weight_real, self.weight_imag)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, self.block_weight(), self.block_bias(), self.stride, self.padding)


class ComplexConvTranspose(_ComplexAffine):
    """Complex transposed convolution on stacked tensors; arguments as ``nn.ConvTranspose2d``/``3d``."""

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
        self.conv = F.conv_transpose2d if spatial_dims == 2 else F.conv_transpose3d
        self.stride = stride
        shape = (in_channels, out_channels, *[kernel_size] * spatial_dims)
        self._init(shape, out_channels, bias, in_channels * kernel_size**spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _block(self.weight_real, self.weight_imag, transposed=True)
        return self.conv(x, weight, self.block_bias(), self.stride)


class ComplexLinear(_ComplexAffine):
    """Complex fully connected layer on stacked ``(B, 2 * in_features)`` inputs."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self._init((out_features, in_features), out_features, bias, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, _block(self.weight_real, self.weight_imag), self.block_bias())


class ComplexBatchNorm(nn.BatchNorm2d):
    """Batch normalisation of the real and imaginary parts separately (the paper's eq. 9): a real batch norm over
    the ``2C`` stacked channels."""

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__(2 * channels)
        self.spatial_dims = spatial_dims

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() != self.spatial_dims + 2:
            raise ValueError(f"expected a {self.spatial_dims + 2}-D stacked tensor, got {input.dim()}-D.")


class ComplexReLU(nn.ReLU):
    """``ReLU(Re z) + i ReLU(Im z)`` (part-wise: a plain ReLU on the stacked layout)."""


class ComplexLeakyReLU(nn.LeakyReLU):
    """``LeakyReLU(Re z) + i LeakyReLU(Im z)``."""


class ComplexTanh(nn.Tanh):
    """``tanh(Re z) + i tanh(Im z)``."""


class ComplexUpsample(nn.Upsample):
    """Nearest or (bi/tri)linear upsampling of the real and imaginary parts."""

    def __init__(self, scale_factor: float = 2.0, mode: str = "nearest") -> None:
        super().__init__(scale_factor=scale_factor, mode=mode)
