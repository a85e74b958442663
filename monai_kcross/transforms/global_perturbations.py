"""Global perturbations, mostly clinically benign: they change how an image looks, not what it shows.

Amplitudes are stated relative to the image's intensity span ``L = max(x) - min(x)`` (over all channels), so
the same severity means the same thing for a 0-1 image and a 0-4000 scanner volume.

The one-to-one intensity maps (:class:`IntensityScaleShift`, :class:`Gamma`, :class:`BiasField`,
:class:`HistogramShift`) are invertible: their records hold what ``inverse`` needs.
"""

from __future__ import annotations

import math

import torch

from ..functional.filtering import gaussian_blur
from .base import InvertiblePerturbation, Perturbation

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


class IntensityScaleShift(InvertiblePerturbation):
    """Global intensity calibration change ``x * (1 + s * max_scale) + s * max_offset * L``.

    Physical parameter: gain ``1 + s * max_scale`` and offset ``s * max_offset`` of the intensity span
    (recorded as ``gain`` and ``offset``, in intensity units).
    """

    def __init__(self, severity: float = 1.0, max_scale: float = 0.3, max_offset: float = 0.1) -> None:
        super().__init__(severity)
        if not max_scale > -1:
            raise ValueError(
                f"max_scale must be > -1 (the gain 1 + severity * max_scale stays positive), got {max_scale}."
            )
        self.max_scale, self.max_offset = max_scale, max_offset

    def apply(self, x, severity, region):
        gain = 1 + severity * self.max_scale
        offset = severity * self.max_offset * _span(x)[1]
        self.applied.update(gain=gain, offset=float(offset))
        return x * gain + offset

    def apply_inverse(self, y, record):
        return (y - record["offset"]) / record["gain"]


class Gamma(InvertiblePerturbation):
    """Gamma change of the contrast curve: ``low + L * u ** gamma`` with ``u = (x - low) / L``.

    Physical parameter: ``gamma = 1 + s * (max_gamma - 1)`` (default up to 2, darkening mid-tones); recorded
    with ``low`` and ``span`` ``L``.
    """

    def __init__(self, severity: float = 1.0, max_gamma: float = 2.0) -> None:
        super().__init__(severity)
        if not max_gamma > 0:
            raise ValueError(f"max_gamma must be > 0, got {max_gamma}.")
        self.max_gamma = max_gamma

    def apply(self, x, severity, region):
        low, span = _span(x)
        gamma = 1 + severity * (self.max_gamma - 1)
        self.applied.update(gamma=gamma, low=float(low), span=float(span))
        return low + span * ((x - low) / span).clamp(0, 1) ** gamma

    def apply_inverse(self, y, record):
        low, span = record["low"], record["span"]
        return low + span * ((y - low) / span).clamp(0, 1) ** (1 / record["gamma"])


class BiasField(InvertiblePerturbation):
    """Smooth multiplicative intensity inhomogeneity ``x * exp(a * P(r))``.

    ``P`` is a random polynomial (realisation ``seed``) of degree ``order`` in the normalised coordinates,
    scaled to ``max|P| = 1``; physical parameter: the peak gain ``exp(a)`` with ``a = s * log(1 + max_change)``
    (default up to +-40 %; recorded as ``peak_gain``).
    """

    def __init__(self, severity: float = 1.0, max_change: float = 0.4, order: int = 3, seed: int = 0) -> None:
        super().__init__(severity, seed=seed)
        if not max_change > -1:
            raise ValueError(
                f"max_change must be > -1 (the peak gain 1 + max_change stays positive), got {max_change}."
            )
        self.max_change, self.order = max_change, order

    def log_field(self, x: torch.Tensor, severity: float) -> torch.Tensor:
        """``a * P(r)`` on ``x``'s spatial grid, from the current realisation."""
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
        return severity * math.log1p(self.max_change) * field

    def apply(self, x, severity, region):
        self.applied.update(peak_gain=math.exp(severity * math.log1p(self.max_change)))
        return x * torch.exp(self.log_field(x, severity))

    def apply_inverse(self, y, record):
        self.select(record["seed"])
        return y * torch.exp(-self.log_field(y, record["severity"]))


def _monomials(dims: int, order: int) -> list[tuple[int, ...]]:
    if dims == 0:
        return [()]
    return [(p, *rest) for p in range(order + 1) for rest in _monomials(dims - 1, order - p)]


class GaussianNoise(Perturbation):
    """Additive white Gaussian noise with ``sigma = s * max_sigma * L`` (default up to 10 % of the span).

    The noise pattern is the realisation ``seed`` (the same for every call; ``Rand...d`` draws a new one).
    """

    def __init__(self, severity: float = 1.0, max_sigma: float = 0.1, seed: int = 0) -> None:
        super().__init__(severity, seed=seed)
        self.max_sigma = max_sigma

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of ``x``'s shape, drawn in float32 (the same draw whatever ``x``'s dtype)."""
        return torch.randn(x.shape, generator=self.generator()).to(x.device, x.dtype)

    def sigma(self, x: torch.Tensor, severity: float) -> torch.Tensor:
        """The noise standard deviation ``s * max_sigma * L`` (recorded as ``sigma``)."""
        sigma = severity * self.max_sigma * _span(x)[1]
        self.applied.update(sigma=float(sigma))
        return sigma

    def apply(self, x, severity, region):
        return x + self.sigma(x, severity) * self.noise(x)


class RicianNoise(GaussianNoise):
    """Rician noise: Gaussian noise on the real and imaginary channels, magnitude taken.

    ``sqrt((x + n_re)^2 + n_im^2)`` with ``sigma = s * max_sigma * L``: the noise of magnitude MR images
    (Rayleigh-distributed in the background, near-Gaussian where ``x >> sigma``).
    """

    def apply(self, x, severity, region):
        sigma = self.sigma(x, severity)
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
        self.applied.update(sigma=severity * self.max_sigma)
        return gaussian_blur(x, severity * self.max_sigma, tuple(range(1, x.ndim)))


class HistogramShift(InvertiblePerturbation):
    """Monotone non-linear remapping of intensities (a distribution shift with fixed min and max).

    ``low + L * h(u)``, ``h(u) = u + a * sin(2 pi k u) / (2 pi k)``, ``u = (x - low) / L``: mid-tones move up
    and down while the order of intensities is kept. Physical parameter: the slope modulation
    ``a = s * max_slope_change`` (default up to 0.8, i.e. local contrast between 0.2x and 1.8x; recorded as
    ``slope_change`` with ``low`` and ``span``); ``k = cycles``. The inverse solves ``h(u) = v`` by bisection.
    """

    def __init__(self, severity: float = 1.0, max_slope_change: float = 0.8, cycles: int = 1) -> None:
        super().__init__(severity)
        if not 0 < max_slope_change <= 1:
            raise ValueError(
                f"max_slope_change must be in (0, 1] to keep the mapping monotone, got {max_slope_change}."
            )
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f"cycles must be a positive integer (min and max stay fixed), got {cycles!r}.")
        self.max_slope_change, self.cycles = max_slope_change, cycles

    def curve(self, u: torch.Tensor, slope_change: float) -> torch.Tensor:
        k = 2 * math.pi * self.cycles
        return u + slope_change * torch.sin(k * u) / k

    def apply(self, x, severity, region):
        low, span = _span(x)
        slope_change = severity * self.max_slope_change
        self.applied.update(slope_change=slope_change, low=float(low), span=float(span))
        return low + span * self.curve((x - low) / span, slope_change)

    def apply_inverse(self, y, record):
        low, span = record["low"], record["span"]
        target = ((y - low) / span).clamp(0, 1)
        lower, upper = torch.zeros_like(target), torch.ones_like(target)
        for _ in range(60):  # the curve is increasing on [0, 1]: bisection halves the bracket to 2**-60
            middle = (lower + upper) / 2
            below = self.curve(middle, record["slope_change"]) < target
            lower, upper = torch.where(below, middle, lower), torch.where(below, upper, middle)
        return low + span * (lower + upper) / 2
