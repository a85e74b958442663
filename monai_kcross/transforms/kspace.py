"""k-space: the centred orthonormal Fourier transform of MR images, its components and Cartesian sampling.

Conventions (shared by the transforms, the k-space artefacts and the K-CROSS networks):

* images are channel-first ``(C, H, W[, D])`` (transforms) or batch-first ``(B, C, ...)`` (functions take
  any leading axes); the transform acts on the last ``spatial_dims`` axes;
* ``k = fftshift(fftn(ifftshift(x), norm="ortho"))`` over those axes: the DC term sits at index ``n // 2``
  of every axis and ``sum |x|^2 == sum |k|^2`` (Parseval), so the inverse recovers ``x`` to float precision;
* ``spatial_dims=2`` on a volume ``(C, H, W, D)`` transforms the in-plane axes ``(H, W)`` of every slice
  along ``D`` (2-D multi-slice acquisition); ``spatial_dims=3`` (default for volumes) transforms all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, TraceableTransform
from monai.utils import TraceKeys

from ..functional.fourier import from_kspace, to_kspace
from .base import ImageTransform, check_seed, draw_seed, record_inverse_input, settings_of

__all__ = [
    "KSPACE_COMPONENTS",
    "FromKSpace",
    "KSpaceComponents",
    "KSpaceUndersample",
    "ToKSpace",
    "cartesian_mask",
    "from_kspace",
    "join_complex",
    "kspace_axes",
    "kspace_components",
    "nested_line_mask",
    "split_complex",
    "to_kspace",
]

KSPACE_COMPONENTS = ("amplitude", "log_amplitude", "phase", "real", "imag")


def kspace_axes(x: torch.Tensor, spatial_dims: int | None, channel_first: bool = True) -> tuple[int, ...]:
    """The axes transformed for an image with a leading channel axis (and optionally a batch axis).

    Args:
        x: image ``(C, *spatial)`` when ``channel_first`` else any tensor whose last axes are spatial.
        spatial_dims: number of spatial axes to transform (``None``: all spatial axes of a channel-first
            image); for a channel-first image they start at the first spatial axis (in-plane axes of a volume),
            otherwise they are the last ``spatial_dims`` axes.
        channel_first: whether ``x`` is ``(C, *spatial)``.
    """
    n_spatial = x.ndim - 1 if channel_first else x.ndim
    if spatial_dims is None:
        spatial_dims = n_spatial
    if spatial_dims not in (1, 2, 3) or spatial_dims > n_spatial:
        raise ValueError(
            f"spatial_dims={spatial_dims} does not fit an image with {n_spatial} spatial axes (shape {tuple(x.shape)})."
        )
    if not channel_first:
        return tuple(range(x.ndim - spatial_dims, x.ndim))
    first = x.ndim - n_spatial
    return tuple(range(first, first + spatial_dims))


def split_complex(k: torch.Tensor, channel_axis: int = 0) -> torch.Tensor:
    """Complex ``(C, ...)`` to real ``(2C, ...)``: the C real parts followed by the C imaginary parts."""
    return torch.cat([k.real, k.imag], dim=channel_axis)


def join_complex(k: torch.Tensor, channel_axis: int = 0) -> torch.Tensor:
    """Inverse of :func:`split_complex`; a real input needs an even number of channels."""
    if k.is_complex():
        return k
    if k.shape[channel_axis] % 2:
        raise ValueError(
            f"a real/imaginary k-space needs an even number of channels (real parts then imaginary parts), "
            f"got {k.shape[channel_axis]}."
        )
    real, imag = torch.chunk(k, 2, dim=channel_axis)
    dtype = real.dtype if real.dtype in (torch.float32, torch.float64) else torch.float32
    return torch.complex(real.to(dtype), imag.to(dtype))


def kspace_components(k: torch.Tensor, components: Sequence[str], channel_axis: int = 0) -> torch.Tensor:
    """Stack the requested components of a complex k-space along the channel axis.

    ``amplitude`` ``|k|``, ``log_amplitude`` ``log(1 + |k|)``, ``phase`` ``angle(k)`` in ``(-pi, pi]``,
    ``real``, ``imag``. The output has ``C * len(components)`` channels, grouped by component.
    """
    unknown = [c for c in components if c not in KSPACE_COMPONENTS]
    if unknown or not components:
        raise ValueError(f"unknown k-space components {unknown}; choose from {KSPACE_COMPONENTS}.")
    parts = {
        "amplitude": lambda: k.abs(),
        "log_amplitude": lambda: torch.log1p(k.abs()),
        "phase": lambda: torch.angle(k),
        "real": lambda: k.real,
        "imag": lambda: k.imag,
    }
    return torch.cat([parts[c]() for c in components], dim=channel_axis)


def cartesian_mask(
    length: int,
    acceleration: float,
    center_fraction: float,
    kind: str = "random",
    rng: np.random.RandomState | None = None,
) -> torch.Tensor:
    """A 1-D Cartesian sampling pattern over ``length`` phase-encoding lines (bool, centred like k-space).

    Args:
        length: number of lines.
        acceleration: undersampling factor ``R >= 1`` (about ``length / R`` lines are kept).
        center_fraction: fraction of lines around the centre that are always kept (autocalibration region).
        kind: ``"random"`` (the remaining lines drawn uniformly at random so that the total is about
            ``length / R``, as fastMRI's random masks) or ``"equispaced"`` (lines at rounded positions
            ``centre + j * a`` with the spacing ``a`` adjusted so that the total is about ``length / R``).
        rng: random state for ``"random"``.

    Returns:
        Bool tensor ``(length,)``.
    """
    if not acceleration >= 1:
        raise ValueError(f"acceleration must be >= 1, got {acceleration}.")
    if not 0 <= center_fraction <= 1:
        raise ValueError(f"center_fraction must be in [0, 1], got {center_fraction}.")
    mask = np.zeros(length, dtype=bool)
    centre = length // 2
    n_centre = round(length * center_fraction)
    start = centre - n_centre // 2
    mask[max(start, 0) : start + n_centre] = True
    if kind == "random":
        rng = rng or np.random.RandomState()
        wanted = length / acceleration
        remaining = max(length - n_centre, 1)
        probability = np.clip((wanted - n_centre) / remaining, 0.0, 1.0)
        mask |= rng.uniform(size=length) < probability
    elif kind == "equispaced":
        # spacing adjusted so that centre + equispaced lines total about length / R (as fastMRI does)
        spacing = acceleration
        if 0 < n_centre and n_centre * acceleration < length:
            spacing = acceleration * (n_centre - length) / (n_centre * acceleration - length)
        offsets = np.arange(-np.floor(centre / spacing), np.floor((length - centre) / spacing) + 1)
        positions = np.round(centre + offsets * spacing).astype(int)
        mask[positions[(positions >= 0) & (positions < length)]] = True
    else:
        raise ValueError(f"kind must be 'random' or 'equispaced', got {kind!r}.")
    return torch.from_numpy(mask)


def nested_line_mask(
    length: int,
    acceleration: float,
    center_fraction: float,
    order: str = "low_discrepancy",
    rng: np.random.RandomState | None = None,
) -> torch.Tensor:
    """Lines kept at acceleration ``R``, nested across ``R``: a higher ``R`` keeps a subset of the lines.

    The central ``center_fraction`` is always kept; the other lines are ranked once, either by a
    low-discrepancy (van der Corput) order, which keeps them nearly equispaced at every ``R``, or at random
    (``rng``), and the first ``round(length / R) - n_centre`` of that ranking are kept. Nesting makes the
    discarded k-space energy, hence the artefact, grow monotonically with ``R``.
    """
    if not acceleration >= 1:
        raise ValueError(f"acceleration must be >= 1, got {acceleration}.")
    mask = cartesian_mask(length, 1.0, center_fraction, "equispaced")
    mask[:] = False
    n_centre = round(length * center_fraction)
    start = length // 2 - n_centre // 2
    mask[max(start, 0) : start + n_centre] = True
    others = np.flatnonzero(~mask.numpy())
    if order == "low_discrepancy":
        ranks = np.array([_van_der_corput(i) for i in range(len(others))])
    elif order == "random":
        ranks = (rng or np.random.RandomState()).permutation(len(others))
    else:
        raise ValueError(f"order must be 'low_discrepancy' or 'random', got {order!r}.")
    wanted = max(round(length / acceleration) - int(mask.sum()), 0)
    mask[torch.from_numpy(others[np.argsort(ranks, kind="stable")[:wanted]])] = True
    return mask


def _van_der_corput(index: int) -> float:
    value, denominator = 0.0, 1.0
    while index:
        index, remainder = divmod(index, 2)
        denominator *= 2
        value += remainder / denominator
    return value


def _fft_ready(x: torch.Tensor) -> torch.Tensor:
    """Inputs the CPU FFT accepts: float32/float64/complex; half precision and integers become float32."""
    if x.is_complex() or x.dtype in (torch.float32, torch.float64):
        return x
    return x.float()


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name.removeprefix("torch."))


class _KSpaceConversion(InvertibleTransform, ImageTransform):
    """Shared mechanism of the invertible k-space conversions: trace on MetaTensors, inverse from the record."""

    def traced(self, out: Any, x: torch.Tensor, axes: tuple[int, ...], **info: Any) -> Any:
        if not isinstance(out, MetaTensor):
            return out
        record = {"axes": list(axes), "dtype": str(x.dtype), "is_complex": x.is_complex(), **info}
        return self.push_transform(out, extra_info={**settings_of(self), **record})

    def inverse(self, data: Any) -> Any:
        """Convert back a ``MetaTensor`` that this transform returned (its record says how)."""
        record = record_inverse_input(self, data)[TraceKeys.EXTRA_INFO]
        return self.wrap(self.invert(self.unwrap(data), record), data)

    def invert(self, y: torch.Tensor, record: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError


def _restore(value: torch.Tensor, record: dict[str, Any], form: str) -> torch.Tensor:
    """``value`` (complex) in the recorded input form: real image, complex, or real/imaginary channels."""
    if form == "real_imag":
        return split_complex(value).to(_dtype(record["dtype"]))
    if record["is_complex"]:
        return value.to(_dtype(record["dtype"]))
    return value.real.to(_dtype(record["dtype"]))


class ToKSpace(_KSpaceConversion):
    """Image ``(C, *spatial)`` to centred orthonormal k-space (invertible: ``inverse`` returns the image).

    Args:
        spatial_dims: axes transformed (``None``: all spatial axes; 2 on a volume: per slice along the last axis).
        output: ``"complex"`` (complex tensor, ``C`` channels) or ``"real_imag"`` (``2C`` real channels: real
            parts, then imaginary parts).
    """

    def __init__(self, spatial_dims: int | None = None, output: str = "complex") -> None:
        if output not in ("complex", "real_imag"):
            raise ValueError(f"output must be 'complex' or 'real_imag', got {output!r}.")
        self.spatial_dims, self.output = spatial_dims, output

    def __call__(self, img: Any) -> Any:
        x = self.unwrap(img)
        self.check_channel_first(x, "ToKSpace")
        axes = kspace_axes(x, self.spatial_dims)
        k = to_kspace(_fft_ready(x), axes)
        return self.traced(self.wrap(k if self.output == "complex" else split_complex(k), img), x, axes)

    def invert(self, y, record):
        return _restore(from_kspace(join_complex(y), record["axes"]), record, "image")


class FromKSpace(_KSpaceConversion):
    """Centred orthonormal k-space (complex, or ``2C`` real/imaginary channels) back to an image.

    Args:
        spatial_dims: as in :class:`ToKSpace`.
        output: ``"real"`` (exact inverse of :class:`ToKSpace` for real images), ``"magnitude"`` (what a scanner
            shows) or ``"complex"``.

    ``inverse`` returns the k-space in its input form; it is exact for ``"complex"``, exact for ``"real"`` when
    the k-space is that of a real image (Hermitian; otherwise the imaginary part of the image is lost), and
    refused for ``"magnitude"`` (the phase is lost).
    """

    def __init__(self, spatial_dims: int | None = None, output: str = "real") -> None:
        if output not in ("real", "magnitude", "complex"):
            raise ValueError(f"output must be 'real', 'magnitude' or 'complex', got {output!r}.")
        self.spatial_dims, self.output = spatial_dims, output

    def __call__(self, img: Any) -> Any:
        x = self.unwrap(img)
        k = join_complex(x)
        self.check_channel_first(k, "FromKSpace")
        axes = kspace_axes(k, self.spatial_dims)
        image = from_kspace(k, axes)
        out = {"real": image.real, "magnitude": image.abs(), "complex": image}[self.output]
        return self.traced(self.wrap(out, img), x, axes, form="complex" if x.is_complex() else "real_imag")

    def invert(self, y, record):
        if record["output"] == "magnitude":
            raise ValueError("FromKSpace(output='magnitude') discards the phase; it cannot be inverted.")
        return _restore(to_kspace(_fft_ready(y), record["axes"]), record, record["form"])


class KSpaceComponents(_KSpaceConversion):
    """Channels of k-space components: amplitude, log-amplitude, phase, real, imaginary.

    A complex input (or ``source="kspace"`` with real/imaginary channels) is read as k-space; a real image is
    transformed first. Output: ``C * len(components)`` channels, grouped by component.

    ``inverse`` rebuilds the k-space from ``real`` and ``imag``, or from ``phase`` and ``amplitude`` (or
    ``log_amplitude``), and returns the input in its form (image or k-space); other component sets lose
    information and are refused.
    """

    def __init__(
        self,
        components: Sequence[str] = ("log_amplitude", "phase"),
        spatial_dims: int | None = None,
        source: str = "auto",
    ) -> None:
        if source not in ("auto", "image", "kspace"):
            raise ValueError(f"source must be 'auto', 'image' or 'kspace', got {source!r}.")
        kspace_components(torch.zeros(1, 1, dtype=torch.complex64), components)  # validates the names early
        self.components, self.spatial_dims, self.source = tuple(components), spatial_dims, source

    def __call__(self, img: Any) -> Any:
        x = self.unwrap(img)
        self.check_channel_first(x, "KSpaceComponents")
        if self.source == "kspace" or (self.source == "auto" and x.is_complex()):
            k, axes = join_complex(x), kspace_axes(x, self.spatial_dims)
            form = "complex" if x.is_complex() else "real_imag"
        else:
            axes = kspace_axes(x, self.spatial_dims)
            k, form = to_kspace(_fft_ready(x), axes), "image"
        return self.traced(self.wrap(kspace_components(k, self.components), img), x, axes, form=form)

    def invert(self, y, record):
        parts = dict(zip(record["components"], torch.chunk(y, len(record["components"]), dim=0)))
        if "real" in parts and "imag" in parts:
            k = torch.complex(parts["real"], parts["imag"])
        elif "phase" in parts and ("amplitude" in parts or "log_amplitude" in parts):
            amplitude = parts["amplitude"] if "amplitude" in parts else torch.expm1(parts["log_amplitude"])
            k = torch.polar(amplitude, parts["phase"])
        else:
            raise ValueError(
                f"KSpaceComponents{tuple(record['components'])} cannot be inverted: it needs real and imag, or "
                f"phase and amplitude (or log_amplitude)."
            )
        if record["form"] == "image":
            return _restore(from_kspace(k, record["axes"]), record, "image")
        return _restore(k, record, record["form"])


class KSpaceUndersample(TraceableTransform, ImageTransform):
    """Retrospective Cartesian undersampling: zero-filled image and sampling mask.

    Deterministic: ``kind="random"`` lines are the realisation ``seed`` (``set_random_state(seed)`` sets it as
    MONAI's seeding API does); :class:`~monai_kcross.transforms.RandKSpaceUndersampled` draws new lines per
    call. On a ``MetaTensor`` the image records the settings, ``seed`` and the number of kept ``lines``.

    Args:
        acceleration: undersampling factor ``R``.
        center_fraction: fraction of central lines always sampled.
        kind: ``"random"`` or ``"equispaced"`` lines (see :func:`cartesian_mask`).
        axis: which k-space axis is phase-encoded (lines are chosen along it), default the first.
        spatial_dims: as in :class:`ToKSpace`.
        output: image returned, ``"magnitude"`` (default), ``"real"`` or ``"complex"``.
        seed: the realisation of random lines.

    Returns:
        ``(image, mask)``: the zero-filled image ``(C, *spatial)`` and the float 0/1 mask ``(1, *spatial)``.
    """

    def __init__(
        self,
        acceleration: float = 4.0,
        center_fraction: float = 0.08,
        kind: str = "random",
        axis: int = 0,
        spatial_dims: int | None = None,
        output: str = "magnitude",
        seed: int = 0,
    ) -> None:
        cartesian_mask(8, acceleration, center_fraction, kind, np.random.RandomState(0))  # validate early
        if output not in ("real", "magnitude", "complex"):
            raise ValueError(f"output must be 'real', 'magnitude' or 'complex', got {output!r}.")
        self.acceleration, self.center_fraction, self.kind = acceleration, center_fraction, kind
        self.axis, self.spatial_dims, self.output = axis, spatial_dims, output
        self.seed = check_seed(seed)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        """Select the realisation (see :meth:`~monai_kcross.transforms.Perturbation.set_random_state`)."""
        self.seed = check_seed(seed if seed is not None else (state or np.random.RandomState()).randint(0, 2**31 - 1))
        return self

    def __call__(self, img: Any, seed: int | None = None) -> tuple[Any, Any]:
        """Undersample ``img`` ``(C, *spatial)``; ``seed`` overrides the instance's realisation for this call."""
        x = self.unwrap(img)
        self.check_channel_first(x, "KSpaceUndersample")
        axes = kspace_axes(x, self.spatial_dims)
        if not -len(axes) <= self.axis < len(axes):
            raise ValueError(f"KSpaceUndersample: axis={self.axis} is not one of the {len(axes)} k-space axes.")
        seed = self.seed if seed is None else check_seed(seed)
        axis = axes[self.axis]
        state = np.random.RandomState(draw_seed(seed))
        lines = cartesian_mask(x.shape[axis], self.acceleration, self.center_fraction, self.kind, state)
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        mask = lines.to(x.device).reshape(shape)
        k = to_kspace(_fft_ready(x), axes) * mask
        image = from_kspace(k, axes)
        out = {"real": image.real, "magnitude": image.abs(), "complex": image}[self.output]
        full_mask = mask.expand(1, *x.shape[1:]).to(torch.float32)
        self.applied = {**settings_of(self), "seed": seed, "lines": int(lines.sum())}
        out = self.wrap(out, img)
        if isinstance(out, MetaTensor):
            out = self.push_transform(out, extra_info=dict(self.applied))
        return out, self.wrap(full_mask, img)
