"""Filtering primitives shared by the metrics.

* 1-D windows (Gaussian, box) and 'valid' separable filtering along one axis (:func:`filter_axis`): on the CPU
  by shifted multiply-adds (:func:`shift_filter_axis`, ``k`` operations per output voxel on any tensor layout,
  no padding, no permutation; applied slab by slab, see ``ssim.py``, several times faster than grouped
  ``conv3d`` with a dense ``k^3`` kernel); on CUDA as one product with a banded matrix
  (:func:`band_filter_axis`): more arithmetic, but one full-precision GEMM instead of ``k`` memory-bound passes.
* 2-D filtering with MATLAB's 'same' alignment and padding modes (:func:`filter2d_same`), and the 2x2
  mean-and-decimate step (:func:`halve2d`) of the GMSD and HaarPSI reference code, so that the 2-D metrics
  reproduce their authors' MATLAB/NumPy implementations exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "band_filter_axis",
    "correlate2d_valid",
    "correlate_axis",
    "filter2d_same",
    "filter_axis",
    "gaussian_blur",
    "gaussian_kernel1d",
    "halve2d",
    "pad2d",
    "shift_filter_axis",
    "uniform_kernel1d",
    "window_1d",
]


def gaussian_kernel1d(size: int, sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised, centred 1-D Gaussian window of ``size`` taps (sums to 1)."""
    if size < 1 or not sigma > 0:
        raise ValueError(f"Gaussian window needs size >= 1 and sigma > 0, got size={size}, sigma={sigma}.")
    return _gaussian_taps(int(size), float(sigma)).to(dtype, copy=True)


@functools.lru_cache(maxsize=64)
def _gaussian_taps(size: int, sigma: float) -> torch.Tensor:
    """The float64 taps, computed once per window (callers get a copy): small inputs are dominated by such setup."""
    positions = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    window = torch.exp(-0.5 * (positions / sigma) ** 2)
    return window / window.sum()


def uniform_kernel1d(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1-D box window of ``size`` taps."""
    if size < 1:
        raise ValueError(f"uniform window needs size >= 1, got {size}.")
    return torch.full((size,), 1.0 / size, dtype=dtype)


def window_1d(kernel_type: str, size: int, sigma: float) -> torch.Tensor:
    """The 1-D window of an SSIM-style metric: ``"gaussian"`` (with ``sigma``) or ``"uniform"``."""
    if kernel_type == "gaussian":
        return gaussian_kernel1d(size, sigma)
    if kernel_type == "uniform":
        return uniform_kernel1d(size)
    raise ValueError(f"kernel_type must be 'gaussian' or 'uniform', got {kernel_type!r}.")


def shift_filter_axis(x: torch.Tensor, axis: int, taps: Sequence[float], stride: int = 1) -> torch.Tensor:
    """Valid correlation along ``axis`` as a sum of ``len(taps)`` shifted, scaled views of ``x``.

    Costs one multiply-add per non-zero tap and output instead of the ``n`` of a dense band product or the
    im2col copy of a convolution; it is the faster choice for blocks of data that fit in cache (the chunks of
    the SSIM pipeline, 2-D images). ``x`` may be non-contiguous. ``stride`` keeps every ``stride``-th output
    (the first one included) and computes only those.
    """
    axis = axis % x.ndim
    length = x.shape[axis] - len(taps) + 1
    if length < 1:
        raise ValueError(f"a {len(taps)}-tap filter needs at least {len(taps)} samples, got {x.shape[axis]}.")
    count = (length - 1) // stride + 1
    index: list[slice] = [slice(None)] * x.ndim

    def shifted(offset: int) -> torch.Tensor:
        if stride == 1:
            return x.narrow(axis, offset, length)
        index[axis] = slice(offset, offset + (count - 1) * stride + 1, stride)
        return x[tuple(index)]

    nonzero = [(offset, float(tap)) for offset, tap in enumerate(taps) if tap != 0]
    if not nonzero:
        return torch.zeros_like(shifted(0))
    result = shifted(nonzero[0][0]) * nonzero[0][1]
    for offset, tap in nonzero[1:]:
        result.add_(shifted(offset), alpha=tap)
    return result


@functools.lru_cache(maxsize=64)
def _band(size: int, taps: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The ``(size - k + 1, size)`` matrix whose product with a signal of ``size`` samples is its valid
    correlation with the ``k`` taps (row ``j`` holds the taps at columns ``j .. j + k - 1``)."""
    length = size - len(taps) + 1
    band = torch.zeros(length, size, dtype=dtype, device=device)
    rows = torch.arange(length, device=device)
    for offset, tap in enumerate(taps):
        if tap != 0:
            band[rows, rows + offset] = tap
    return band


def band_filter_axis(x: torch.Tensor, axis: int, taps: Sequence[float]) -> torch.Tensor:
    """Valid correlation along ``axis`` (as :func:`shift_filter_axis`, stride 1) as one matrix product with the
    banded matrix of the taps: ``(before, n, after) -> (before, n - k + 1, after)``.

    ``n`` multiply-adds per output instead of ``k``, but in one GEMM, which on a GPU runs near its arithmetic
    peak while ``k`` shifted passes are bound by memory traffic. Products run in ``x``'s dtype; the result
    equals the shifted sum up to summation order (about 1e-7 relative in float32) only while float32 matrix
    products are computed in full precision (see :func:`filter_axis`).
    """
    axis = axis % x.ndim
    size = x.shape[axis]
    if size < len(taps):
        raise ValueError(f"a {len(taps)}-tap filter needs at least {len(taps)} samples, got {size}.")
    band = _band(size, tuple(float(t) for t in taps), x.dtype, x.device)
    before, after = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
    if after == 1:
        out = x.reshape(before, size) @ band.t()
    else:
        out = torch.matmul(band, x.reshape(before, size, after))
    return out.reshape(*x.shape[:axis], band.shape[0], *x.shape[axis + 1 :])


def _prefers_band(x: torch.Tensor, taps: Sequence[float]) -> bool:
    """GEMM filtering on CUDA for windows of 5+ taps, unless float32 products may run in TF32 (which would cost
    three decimal digits: ``torch.set_float32_matmul_precision`` other than ``"highest"``)."""
    if x.device.type != "cuda" or len(taps) < 5 or x.dtype not in (torch.float32, torch.float64):
        return False
    return x.dtype == torch.float64 or (
        torch.get_float32_matmul_precision() == "highest" and not torch.backends.cuda.matmul.allow_tf32
    )


def filter_axis(x: torch.Tensor, axis: int, taps: Sequence[float]) -> torch.Tensor:
    """Valid correlation of ``x`` with ``taps`` along ``axis``: the fastest exact way for the device
    (:func:`band_filter_axis` on CUDA, :func:`shift_filter_axis` elsewhere)."""
    return band_filter_axis(x, axis, taps) if _prefers_band(x, taps) else shift_filter_axis(x, axis, taps)


@functools.lru_cache(maxsize=64)
def _kernel_plan(kernel: tuple[tuple[float, ...], ...]) -> tuple[str, tuple]:
    """How to apply a 2-D kernel by shifted multiply-adds: ``("separable", (column taps, row taps))`` for a
    rank-1 kernel (Gaussian, binomial, box, Prewitt, Haar), else ``("sparse", ((row, column, tap), ...))``."""
    bank = torch.tensor(kernel, dtype=torch.float64)
    taps = [(i, j, w) for i, row in enumerate(kernel) for j, w in enumerate(row) if w != 0]
    i, j = divmod(int(bank.abs().argmax()), bank.shape[1])
    pivot = float(bank[i, j])
    if pivot != 0:
        column, row = bank[:, j], bank[i, :] / pivot
        exact = torch.allclose(torch.outer(column, row), bank, rtol=0, atol=1e-14 * abs(pivot))
        separable_cost = int((column != 0).sum()) + int((row != 0).sum())
        if exact and separable_cost < len(taps):
            return "separable", (tuple(column.tolist()), tuple(row.tolist()))
    return "sparse", tuple(taps)


def correlate2d_valid(x: torch.Tensor, kernel: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """'Valid' 2-D correlation of the last two axes of ``x`` with ``kernel`` ``(kh, kw)``, by shifted
    multiply-adds (separable kernels axis by axis); ``stride`` keeps every ``stride``-th output per axis.

    Output ``(i, j)`` is ``sum_{a, b} kernel[a, b] * x[..., stride * i + a, stride * j + b]``. The kernel's
    values are read once and cached (kernels are small constants).
    """
    plan, data = _kernel_plan(tuple(map(tuple, kernel.detach().to("cpu", torch.float64).tolist())))
    if plan == "separable":
        column, row = data
        return shift_filter_axis(shift_filter_axis(x, -1, row, stride), -2, column, stride)
    kh, kw = kernel.shape[-2:]
    rows = (x.shape[-2] - kh) // stride + 1
    cols = (x.shape[-1] - kw) // stride + 1
    if rows < 1 or cols < 1:
        raise ValueError(f"a {kh}x{kw} kernel needs an image of at least that size, got {tuple(x.shape[-2:])}.")
    result = None
    for a, b, tap in data:
        view = x[..., a : a + (rows - 1) * stride + 1 : stride, b : b + (cols - 1) * stride + 1 : stride]
        result = view * tap if result is None else result.add_(view, alpha=tap)
    return torch.zeros_like(x[..., :rows, :cols]) if result is None else result


def halve2d(x: torch.Tensor) -> torch.Tensor:
    """2x2 average and decimation of the last two axes, odd sizes zero-padded at the far end.

    This is MATLAB's ``conv2(x, ones(2) / 4, 'same')`` followed by ``x(1:2:end, 1:2:end)``, the
    downsampling of the GMSD and HaarPSI reference code.
    """
    return F.avg_pool2d(F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)), kernel_size=2)


def _symmetric_index(length: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices of MATLAB's 'symmetric' padding (mirror including the edge voxel: ``b a | a b c | c b``)."""
    positions = torch.arange(-before, length + after, device=device)
    period = 2 * length
    positions = positions % period
    return torch.where(positions >= length, period - 1 - positions, positions)


def correlate_axis(x: torch.Tensor, axis: int, taps: Sequence[float], padding: str = "symmetric") -> torch.Tensor:
    """Same-size correlation of ``x`` with the odd-length, centred window ``taps`` along ``axis``.

    Args:
        x: any tensor.
        axis: the axis filtered.
        taps: ``2r + 1`` weights; output ``i`` is ``sum_k taps[k] * x[i + k - r]``.
        padding: ``"symmetric"`` (mirror including the edge voxel, ``b a | a b c | c b``: MATLAB 'symmetric',
            ``scipy.ndimage`` 'reflect'), ``"zeros"`` or ``"replicate"``.
    """
    if len(taps) % 2 != 1:
        raise ValueError(f"correlate_axis needs an odd number of taps, got {len(taps)}.")
    radius = len(taps) // 2
    axis = axis % x.ndim
    if padding == "symmetric":
        padded = x.index_select(axis, _symmetric_index(x.shape[axis], radius, radius, x.device))
    elif padding in ("zeros", "replicate"):
        moved = x.movedim(axis, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 1, shape[-1])
        flat = F.pad(flat, (radius, radius), mode="constant" if padding == "zeros" else "replicate")
        padded = flat.reshape(*shape[:-1], shape[-1] + 2 * radius).movedim(-1, axis)
    else:
        raise ValueError(f"unknown padding mode {padding!r}")
    return shift_filter_axis(padded, axis, list(taps))


def gaussian_blur(x: torch.Tensor, sigma: float | Sequence[float], axes: Sequence[int]) -> torch.Tensor:
    """Gaussian smoothing along ``axes`` with ``sigma`` voxels (per axis), same size, symmetric padding.

    The window is truncated at ``4 * sigma`` (as ``scipy.ndimage.gaussian_filter``); ``sigma = 0`` leaves an
    axis untouched.
    """
    sigmas = tuple(sigma) if isinstance(sigma, Sequence) else (sigma,) * len(axes)
    for axis, s in zip(axes, sigmas):
        if s <= 0:
            continue
        radius = max(1, int(4 * s + 0.5))  # scipy.ndimage truncation
        index = _symmetric_index(x.shape[axis], radius, radius, x.device)
        padded = x.index_select(axis, index)
        x = shift_filter_axis(padded, axis, gaussian_kernel1d(2 * radius + 1, s).tolist())
    return x


def pad2d(x: torch.Tensor, pads: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """Pad the last two axes by ``(left, right, top, bottom)`` with ``"zeros"``, ``"replicate"`` or ``"symmetric"``."""
    if mode == "zeros":
        return F.pad(x, pads)
    if mode == "replicate":
        return F.pad(x, pads, mode="replicate")
    if mode == "symmetric":
        left, right, top, bottom = pads
        x = x.index_select(-1, _symmetric_index(x.shape[-1], left, right, x.device))
        return x.index_select(-2, _symmetric_index(x.shape[-2], top, bottom, x.device))
    raise ValueError(f"unknown padding mode {mode!r}")


def filter2d_same(
    x: torch.Tensor, kernels: torch.Tensor, convolve: bool = False, padding: str = "zeros", stride: int = 1
) -> torch.Tensor:
    """Filter every channel of ``x`` ``(N, C, H, W)`` with each 2-D kernel, keeping the size ('same').

    Alignment follows MATLAB: output ``(i, j)`` is centred on kernel element ``((kh - 1) // 2, (kw - 1) // 2)``,
    which also fixes where even-sized kernels sit. ``convolve=True`` flips the kernels (``conv2``), otherwise
    they are correlated (``imfilter``). The filtering is done by shifted multiply-adds
    (:func:`correlate2d_valid`), many times faster on CPU than single-channel ``conv2d`` for these small
    separable or sparse kernels.

    Args:
        x: images ``(N, C, H, W)``.
        kernels: ``(K, kh, kw)`` or ``(kh, kw)``.
        convolve: flip the kernels first.
        padding: ``"zeros"``, ``"replicate"`` or ``"symmetric"``.
        stride: keep (and compute) only every ``stride``-th row and column, starting with the first
            (MATLAB's ``y(1:stride:end, 1:stride:end)``).

    Returns:
        ``(N, C, K, H', W')`` (or ``(N, C, H', W')`` for a single 2-D kernel), ``H' = ceil(H / stride)``.
    """
    single = kernels.ndim == 2
    bank = kernels.detach().reshape(-1, *kernels.shape[-2:])
    if convolve:
        bank = bank.flip(-2, -1)
    kh, kw = bank.shape[-2:]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = pad2d(x, (left, kw - 1 - left, top, kh - 1 - top), padding)
    outputs = [correlate2d_valid(padded, kernel, stride) for kernel in bank]
    return outputs[0] if single else torch.stack(outputs, dim=2)
