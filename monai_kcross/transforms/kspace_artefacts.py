"""Acquisition artefacts simulated in k-space (see :mod:`monai_kcross.transforms.kspace` for conventions).

Each artefact transforms the image to k-space over ``spatial_dims`` axes (default: all spatial axes; 2 for
per-slice in-plane k-space of a volume), corrupts it and returns the magnitude of the inverse transform, as a
scanner would (``magnitude=False`` returns the real part, for signed images). The phase-encoding axis is the
first transformed axis unless ``axis`` says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .base import Perturbation
from .kspace import from_kspace, kspace_axes, nested_line_mask, to_kspace

__all__ = ["GibbsRinging", "KSpaceSpike", "MotionGhosting", "PhaseRamp", "UndersamplingAliasing"]


class _KSpaceArtefact(Perturbation):
    """Shared mechanism: image -> k-space -> corrupt -> image."""

    def __init__(
        self,
        severity: float = 1.0,
        spatial_dims: int | None = None,
        axis: int = 0,
        magnitude: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(severity, seed=seed)
        self.spatial_dims, self.axis, self.magnitude = spatial_dims, axis, magnitude

    def axes(self, x: torch.Tensor) -> tuple[int, ...]:
        axes = kspace_axes(x, self.spatial_dims)
        if not -len(axes) <= self.axis < len(axes):
            raise ValueError(f"{type(self).__name__}: axis={self.axis} is not one of the {len(axes)} k-space axes.")
        return axes

    def phase_axis(self, axes: tuple[int, ...]) -> int:
        return axes[self.axis]

    def apply(self, x, severity, region):
        axes = self.axes(x)
        k = to_kspace(x, axes)
        image = from_kspace(self.corrupt(k, axes, severity), axes)
        return (image.abs() if self.magnitude else image.real).to(x.dtype)

    def corrupt(self, k: torch.Tensor, axes: tuple[int, ...], severity: float) -> torch.Tensor:
        raise NotImplementedError


def _line_shape(k: torch.Tensor, axis: int) -> list[int]:
    shape = [1] * k.ndim
    shape[axis] = k.shape[axis]
    return shape


class KSpaceSpike(_KSpaceArtefact):
    """A single corrupted k-space sample (herringbone / corduroy pattern).

    Physical parameter: spike amplitude ``s * max_amplitude * max|k|`` (default up to 0.3 of the DC term),
    at ``position`` (relative offsets from the centre in ``[-0.5, 0.5)`` per k-space axis; if ``None``, drawn
    in ``[-0.4, 0.4)`` from the realisation ``seed``). Recorded: ``amplitude`` (relative to ``max|k|``) and
    ``offsets``.
    """

    def __init__(
        self,
        severity: float = 1.0,
        max_amplitude: float = 0.3,
        position: Sequence[float] | None = None,
        spatial_dims: int | None = None,
        magnitude: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(severity, spatial_dims, 0, magnitude, seed)
        self.max_amplitude, self.position = max_amplitude, position

    def corrupt(self, k, axes, severity):
        if self.position is None:
            offsets = (torch.rand(len(axes), generator=self.generator(), dtype=torch.float64) * 0.8 - 0.4).tolist()
        else:
            offsets = list(self.position)
            if len(offsets) != len(axes):
                raise ValueError(f"KSpaceSpike: position needs {len(axes)} offsets, got {self.position!r}.")
        self.applied.update(amplitude=severity * self.max_amplitude, offsets=[float(o) for o in offsets])
        index: list = [slice(None)] * k.ndim
        for axis, offset in zip(axes, offsets):
            n = k.shape[axis]
            index[axis] = min(n - 1, max(0, n // 2 + round(offset * n)))
        k = k.clone()
        k[tuple(index)] += severity * self.max_amplitude * k.abs().amax()
        return k


class MotionGhosting(_KSpaceArtefact):
    """Periodic phase errors on phase-encoding lines, as from motion between line acquisitions: ghosts.

    Every ``period``-th line along ``axis`` gets a phase error ``phi = s * max_phase`` (default up to pi; ghost
    intensity grows as ``|sin(phi / 2)|``; recorded as ``phase``).
    """

    def __init__(
        self,
        severity: float = 1.0,
        max_phase: float = math.pi,
        period: int = 4,
        axis: int = 0,
        spatial_dims: int | None = None,
        magnitude: bool = True,
    ) -> None:
        super().__init__(severity, spatial_dims, axis, magnitude)
        if period < 2:
            raise ValueError(f"period must be >= 2, got {period}.")
        self.max_phase, self.period = max_phase, period

    def corrupt(self, k, axes, severity):
        axis = self.phase_axis(axes)
        self.applied.update(phase=severity * self.max_phase)
        lines = torch.arange(k.shape[axis], device=k.device) % self.period == 0
        phase = torch.where(lines, severity * self.max_phase, 0.0).to(torch.float64)
        return k * torch.polar(torch.ones_like(phase), phase).to(k.dtype).reshape(_line_shape(k, axis))


class GibbsRinging(_KSpaceArtefact):
    """Truncation of high spatial frequencies (Gibbs ringing at edges, plus blur).

    Physical parameter: the kept central fraction of k-space along every transformed axis,
    ``1 - s * (1 - min_fraction)`` (default down to 25 %; recorded as ``kept_fraction``).
    """

    def __init__(
        self, severity: float = 1.0, min_fraction: float = 0.25, spatial_dims: int | None = None, magnitude: bool = True
    ) -> None:
        super().__init__(severity, spatial_dims, 0, magnitude)
        if not 0 < min_fraction <= 1:
            raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}.")
        self.min_fraction = min_fraction

    def corrupt(self, k, axes, severity):
        fraction = 1 - severity * (1 - self.min_fraction)
        self.applied.update(kept_fraction=fraction)
        for axis in axes:
            n = k.shape[axis]
            keep = torch.abs(torch.arange(n, device=k.device) - n // 2) <= fraction * n / 2
            k = k * keep.reshape(_line_shape(k, axis))
        return k


class UndersamplingAliasing(_KSpaceArtefact):
    """Cartesian undersampling along ``axis`` with zero filling (aliasing / fold-over).

    Physical parameter: acceleration ``R = 1 + s * (max_acceleration - 1)`` (default up to 6), with the central
    ``center_fraction`` of lines always kept. The kept lines are nested across severities (see
    :func:`~monai_kcross.transforms.kspace.nested_line_mask`): ``kind="equispaced"`` (default) ranks them in a
    low-discrepancy order (nearly equispaced, coherent fold-over), ``kind="random"`` in the random order of
    the realisation ``seed`` (incoherent). Recorded: ``acceleration`` and the number of kept ``lines``.
    """

    def __init__(
        self,
        severity: float = 1.0,
        max_acceleration: float = 6.0,
        center_fraction: float = 0.08,
        kind: str = "equispaced",
        axis: int = 0,
        spatial_dims: int | None = None,
        magnitude: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(severity, spatial_dims, axis, magnitude, seed)
        if kind not in ("equispaced", "random"):
            raise ValueError(f"kind must be 'equispaced' or 'random', got {kind!r}.")
        self.max_acceleration, self.center_fraction, self.kind = max_acceleration, center_fraction, kind

    def corrupt(self, k, axes, severity):
        axis = self.phase_axis(axes)
        acceleration = 1 + severity * (self.max_acceleration - 1)
        rng = np.random.RandomState(self._draw)  # the realisation's line order
        order = "low_discrepancy" if self.kind == "equispaced" else "random"
        mask = nested_line_mask(k.shape[axis], acceleration, self.center_fraction, order, rng)
        self.applied.update(acceleration=acceleration, lines=int(mask.sum()))
        return k * mask.to(k.device).reshape(_line_shape(k, axis))


class PhaseRamp(_KSpaceArtefact):
    """A linear k-space phase ramp: a (sub-)voxel shift of the image along ``axis``.

    Physical parameter: the shift ``s * max_shift`` voxels (default up to 2). Mis-registration of this size is
    invisible to a reader but heavily penalised by voxel-wise metrics. Recorded as ``shift``.
    """

    def __init__(
        self,
        severity: float = 1.0,
        max_shift: float = 2.0,
        axis: int = 0,
        spatial_dims: int | None = None,
        magnitude: bool = True,
    ) -> None:
        super().__init__(severity, spatial_dims, axis, magnitude)
        self.max_shift = max_shift

    def corrupt(self, k, axes, severity):
        axis = self.phase_axis(axes)
        n = k.shape[axis]
        self.applied.update(shift=severity * self.max_shift)
        frequencies = (torch.arange(n, device=k.device, dtype=torch.float64) - n // 2) / n
        phase = -2 * math.pi * frequencies * severity * self.max_shift
        return k * torch.polar(torch.ones_like(phase), phase).to(k.dtype).reshape(_line_shape(k, axis))
