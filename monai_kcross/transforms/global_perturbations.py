"""Global perturbations, mostly clinically benign: they change how an image looks, not what it shows.

Amplitudes are stated relative to the image's intensity span ``L = max(x) - min(x)`` (over all channels), so
the same severity means the same thing for a 0-1 image and a 0-4000 scanner volume.
"""

from __future__ import annotations

import math

import torch

from ..functional.filtering import gaussian_blur
from .base import Perturbation

__all__ = [
    "BiasField",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "HistogramShift",
    "IntensityScaleShift",
    "RicianNoise",
]


def _span(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    low = x.amin()
    span = x.amax() - low
    return low, torch.where(span > 0, span, torch.ones_like(span))


def _unit_grid(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    axes = [
        torch.linspace(-1, 1, n, device=device, dtype=dtype) if n > 1 else torch.zeros(1, device=device, dtype=dtype)
        for n in shape
    ]
    return list(torch.meshgrid(*axes, indexing="ij"))


class IntensityScaleShift(Perturbation):
    """Global intensity calibration change ``x * (1 + s * max_scale) + s * max_offset * L``.

    Physical parameter: gain ``1 + s * max_scale`` and offset ``s * max_offset`` of the intensity span.
    """

    def __init__(self, severity: float = 1.0, max_scale: float = 0.3, max_offset: float = 0.1) -> None:
        super().__init__(severity)
        self.max_scale, self.max_offset = max_scale, max_offset

    def apply(self, x, severity, region):
        _, span = _span(x)
        return x * (1 + severity * self.max_scale) + severity * self.max_offset * span


class Gamma(Perturbation):
    """Gamma change of the contrast curve: ``low + L * u ** gamma`` with ``u = (x - low) / L``.

    Physical parameter: ``gamma = 1 + s * (max_gamma - 1)`` (default up to 2, darkening mid-tones).
    """

    def __init__(self, severity: float = 1.0, max_gamma: float = 2.0) -> None:
        super().__init__(severity)
        if not max_gamma > 0:
            raise ValueError(f"max_gamma must be > 0, got {max_gamma}.")
        self.max_gamma = max_gamma

    def apply(self, x, severity, region):
        low, span = _span(x)
        gamma = 1 + severity * (self.max_gamma - 1)
        return low + span * ((x - low) / span).clamp(0, 1) ** gamma


class BiasField(Perturbation):
    """Smooth multiplicative intensity inhomogeneity ``x * exp(a * P(r))``.

    ``P`` is a random polynomial of degree ``order`` in the normalised coordinates, scaled to ``max|P| = 1``;
    physical parameter: the peak gain ``exp(a)`` with ``a = s * log(1 + max_change)`` (default up to +-40 %).
    """

    def __init__(self, severity: float = 1.0, max_change: float = 0.4, order: int = 3) -> None:
        super().__init__(severity)
        self.max_change, self.order = max_change, order

    def apply(self, x, severity, region):
        grid = _unit_grid(tuple(x.shape[1:]), x.device, x.dtype)
        generator = self.generator()
        field = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
        exponents = [e for e in _monomials(len(grid), self.order) if sum(e) > 0]
        coefficients = torch.rand(len(exponents), generator=generator, dtype=torch.float64) * 2 - 1
        for c, e in zip(coefficients.tolist(), exponents):
            term = torch.ones_like(field)
            for axis, power in enumerate(e):
                term = term * grid[axis] ** power
            field = field + c * term
        field = field / field.abs().amax().clamp_min(1e-12)
        return x * torch.exp(severity * math.log1p(self.max_change) * field)


def _monomials(dims: int, order: int) -> list[tuple[int, ...]]:
    if dims == 0:
        return [()]
    return [(p, *rest) for p in range(order + 1) for rest in _monomials(dims - 1, order - p)]


class GaussianNoise(Perturbation):
    """Additive white Gaussian noise with ``sigma = s * max_sigma * L`` (default up to 10 % of the span)."""

    def __init__(self, severity: float = 1.0, max_sigma: float = 0.1) -> None:
        super().__init__(severity)
        self.max_sigma = max_sigma

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of ``x``'s shape, drawn in float32 (the same draw whatever ``x``'s dtype)."""
        return torch.randn(x.shape, generator=self.generator()).to(x.device, x.dtype)

    def apply(self, x, severity, region):
        return x + severity * self.max_sigma * _span(x)[1] * self.noise(x)


class RicianNoise(GaussianNoise):
    """Rician noise: Gaussian noise on the real and imaginary channels, magnitude taken.

    ``sqrt((x + n_re)^2 + n_im^2)`` with ``sigma = s * max_sigma * L``: the noise of magnitude MR images
    (Rayleigh-distributed in the background, near-Gaussian where ``x >> sigma``).
    """

    def apply(self, x, severity, region):
        sigma = severity * self.max_sigma * _span(x)[1]
        generator = self.generator()
        real = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        imag = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        return torch.hypot(x + sigma * real, sigma * imag)


class GaussianBlur(Perturbation):
    """Gaussian blur with ``sigma = s * max_sigma`` voxels along every spatial axis (default up to 2)."""

    def __init__(self, severity: float = 1.0, max_sigma: float = 2.0) -> None:
        super().__init__(severity)
        self.max_sigma = max_sigma

    def apply(self, x, severity, region):
        return gaussian_blur(x, severity * self.max_sigma, tuple(range(1, x.ndim)))


class HistogramShift(Perturbation):
    """Monotone non-linear remapping of intensities (a distribution shift with fixed min and max).

    ``low + L * h(u)``, ``h(u) = u + a * sin(2 pi k u) / (2 pi k)``, ``u = (x - low) / L``: mid-tones move up
    and down while the order of intensities is kept. Physical parameter: the slope modulation
    ``a = s * max_slope_change`` (default up to 0.8, i.e. local contrast between 0.2x and 1.8x); ``k = cycles``.
    """

    def __init__(self, severity: float = 1.0, max_slope_change: float = 0.8, cycles: int = 1) -> None:
        super().__init__(severity)
        if not 0 < max_slope_change <= 1:
            raise ValueError(
                f"max_slope_change must be in (0, 1] to keep the mapping monotone, got {max_slope_change}."
            )
        self.max_slope_change, self.cycles = max_slope_change, cycles

    def apply(self, x, severity, region):
        low, span = _span(x)
        u = (x - low) / span
        k = 2 * math.pi * self.cycles
        return low + span * (u + severity * self.max_slope_change * torch.sin(k * u) / k)
