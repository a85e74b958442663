"""Filtering primitives shared by the metrics.

* 1-D windows (Gaussian, box) and 'valid' separable filtering by shifted multiply-adds
  (:func:`shift_filter_axis`): ``k`` operations per output voxel on any tensor layout, no padding, no
  permutation, identical on CPU and CUDA. Applied slab by slab (see ``ssim.py``) it is several times faster
  than grouped ``conv3d`` with a dense ``k^3`` kernel.
* 2-D filtering with MATLAB's 'same' alignment and padding modes (:func:`filter2d_same`), and the 2x2
  mean-and-decimate step (:func:`halve2d`) of the GMSD and HaarPSI reference code, so that the 2-D metrics
  reproduce their authors' MATLAB/NumPy implementations exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "correlate_axis",
    "filter2d_same",
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
    positions = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    window = torch.exp(-0.5 * (positions / sigma) ** 2)
    return (window / window.sum()).to(dtype)


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


def shift_filter_axis(x: torch.Tensor, axis: int, taps: Sequence[float]) -> torch.Tensor:
    """Valid correlation along ``axis`` as a sum of ``len(taps)`` shifted, scaled views of ``x``.

    Costs ``k`` multiply-adds per output instead of the ``n`` of a dense band product; it is the faster choice
    for blocks of data that fit in cache (the chunks of the SSIM pipeline). ``x`` may be non-contiguous.
    """
    axis = axis % x.ndim
    length = x.shape[axis] - len(taps) + 1
    result = x.narrow(axis, 0, length) * taps[0]
    for offset in range(1, len(taps)):
        result.add_(x.narrow(axis, offset, length), alpha=taps[offset])
    return result


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
    x: torch.Tensor, kernels: torch.Tensor, convolve: bool = False, padding: str = "zeros"
) -> torch.Tensor:
    """Filter every channel of ``x`` ``(N, C, H, W)`` with each 2-D kernel, keeping the size ('same').

    Alignment follows MATLAB: output ``(i, j)`` is centred on kernel element ``((kh - 1) // 2, (kw - 1) // 2)``,
    which also fixes where even-sized kernels sit. ``convolve=True`` flips the kernels (``conv2``), otherwise
    they are correlated (``imfilter``).

    Args:
        x: images ``(N, C, H, W)``.
        kernels: ``(K, kh, kw)`` or ``(kh, kw)``.
        convolve: flip the kernels first.
        padding: ``"zeros"``, ``"replicate"`` or ``"symmetric"``.

    Returns:
        ``(N, C, K, H, W)`` (or ``(N, C, H, W)`` for a single 2-D kernel).
    """
    single = kernels.ndim == 2
    kernels = kernels.reshape(-1, *kernels.shape[-2:]).to(dtype=x.dtype, device=x.device)
    if convolve:
        kernels = kernels.flip(-2, -1)
    kh, kw = kernels.shape[-2:]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    n, c, h, w = x.shape
    padded = pad2d(x.reshape(n * c, 1, h, w), (left, kw - 1 - left, top, kh - 1 - top), padding)
    out = F.conv2d(padded, kernels.unsqueeze(1)).view(n, c, -1, h, w)
    return out[:, :, 0] if single else out
