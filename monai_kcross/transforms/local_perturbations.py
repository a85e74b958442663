"""Local morphological alterations restricted to a region (a lesion label, a white-matter mask, ...).

These mimic the clinically relevant errors of synthesis models: a lesion that is deformed, shrunk, grown,
removed, added, or loses contrast. Each class states its ``margin``: no voxel farther than ``margin`` voxels
(Euclidean) from the region changes (for :class:`LesionInsertion`, from the inserted lesion). After a call,
``new_region`` holds the lesion footprint after the alteration (used by the dictionary versions'
``label_key``).

An empty region (a healthy subject), or one that cannot hold the alteration (a placement region thinner than
the lesion, a lesion covering the whole image), leaves the image unchanged and records why (``applied``
False, ``reason``); ``strict=True`` raises instead. Settings that can never work (an explicit ``center``
outside the region) always raise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..functional.filtering import gaussian_blur
from .base import NotApplicable, Perturbation

__all__ = ["LesionInsertion", "LesionRemoval", "LesionResize", "LocalContrastChange", "LocalElasticDeformation"]


def _distance_to(region: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of every voxel to ``region`` (0 inside) and the index of the nearest region voxel."""
    distance, indices = ndimage.distance_transform_edt(~region.cpu().numpy(), return_indices=True)
    return distance, indices


def _taper(region: torch.Tensor, margin: float, dtype: torch.dtype) -> torch.Tensor:
    """1 inside the region, falling linearly to 0 at ``margin`` voxels outside it."""
    distance = torch.from_numpy(_distance_to(region)[0]).to(device=region.device, dtype=dtype)
    return (1 - distance / margin).clamp(0, 1) if margin > 0 else region.to(dtype)


def _gather(x: torch.Tensor, indices: np.ndarray, where: np.ndarray) -> torch.Tensor:
    """Copy into the voxels ``where`` the values at ``indices`` (the nearest-voxel maps of ``_distance_to``)."""
    source = tuple(torch.from_numpy(i[where]).to(x.device) for i in indices)
    target = tuple(torch.from_numpy(np.nonzero(where)[k]).to(x.device) for k in range(where.ndim))
    out = x.clone()
    out[(slice(None), *target)] = x[(slice(None), *source)]
    return out


class LocalElasticDeformation(Perturbation):
    """A smooth random deformation confined to the region and a margin around it.

    Physical parameter: peak displacement ``s * max_displacement`` voxels (default up to 3), reached inside the
    region; the random field has a spatial correlation of ``smoothness`` voxels and is faded out linearly over
    ``margin`` voxels; the field is the realisation ``seed``. ``new_region`` is the region carried along by
    the deformation. Recorded: ``displacement`` (the peak, voxels).
    """

    needs_region = True

    def __init__(
        self,
        severity: float = 1.0,
        max_displacement: float = 3.0,
        smoothness: float = 3.0,
        margin: float = 6.0,
        labels: Sequence[int] | None = None,
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        super().__init__(severity, labels, seed, strict)
        self.max_displacement, self.smoothness, self.margin = max_displacement, smoothness, margin

    def apply(self, x, severity, region):
        spatial = tuple(x.shape[1:])
        self.applied.update(displacement=severity * self.max_displacement)
        weight = _taper(region, self.margin, x.dtype)
        noise = torch.randn((len(spatial), *spatial), generator=self.generator()).to(x.device, x.dtype)
        field = gaussian_blur(noise, self.smoothness, tuple(range(1, len(spatial) + 1))) * (weight > 0)
        peak = field.norm(dim=0).amax().clamp_min(1e-12)  # the largest displacement where anything moves
        field = field / peak * severity * self.max_displacement * weight
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) for n in spatial]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij")) + field
        scale = torch.tensor([max(n - 1, 1) for n in spatial], device=x.device, dtype=x.dtype)
        normalised = 2 * coords / scale.reshape(-1, *[1] * len(spatial)) - 1
        grid = normalised.flip(0).movedim(0, -1)[None]  # grid_sample wants (x=last axis, ..., first axis)
        warped = F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
        moved = F.grid_sample(region[None, None].to(x.dtype), grid, mode="nearest", align_corners=True)[0, 0]
        self.new_region = moved > 0.5  # the lesion footprint after the deformation
        return torch.where(weight > 0, warped, x)


class LesionResize(Perturbation):
    """Grow or shrink a lesion by up to ``max_radius`` voxels with plausible intensities.

    Physical parameter: the change of radius ``s * max_radius`` (voxels, Euclidean). Growing gives the new
    voxels the intensity of the nearest lesion voxel (lightly smoothed); shrinking fills the removed rim from
    the nearest healthy voxel. ``margin`` is ``max_radius`` when growing and 0 when shrinking. Voxels change
    in whole steps: severities below ``1 / max_radius`` move no voxel. Recorded: ``radius`` (the change).
    """

    needs_region = True

    def __init__(
        self,
        severity: float = 1.0,
        mode: str = "shrink",
        max_radius: float = 3.0,
        labels: Sequence[int] | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(severity, labels, strict=strict)
        if mode not in ("grow", "shrink"):
            raise ValueError(f"mode must be 'grow' or 'shrink', got {mode!r}.")
        self.mode, self.max_radius = mode, max_radius
        self.margin = max_radius if mode == "grow" else 0.0

    def apply(self, x, severity, region):
        radius = severity * self.max_radius
        self.applied.update(radius=radius)
        if self.mode == "grow":
            distance, nearest = _distance_to(region)
            changed = (distance > 0) & (distance <= radius)
            self.new_region = region | torch.from_numpy(changed).to(region.device)
        else:
            if bool(region.all()):
                raise NotApplicable("LesionResize: the region covers the whole image; there is no healthy tissue.")
            distance, nearest = _distance_to(~region)  # inside the lesion: distance to healthy tissue
            changed = (distance > 0) & (distance <= radius)
            self.new_region = region & ~torch.from_numpy(changed).to(region.device)
        if not changed.any():
            return x.clone()
        filled = _gather(x, nearest, changed)
        smooth = gaussian_blur(filled, 0.7, tuple(range(1, x.ndim)))
        mask = torch.from_numpy(changed).to(x.device)
        return torch.where(mask, smooth, x)


class LesionRemoval(Perturbation):
    """Replace a lesion (dilated by one voxel) with surrounding healthy tissue.

    The hole is filled by diffusion from its border (harmonic inpainting) plus noise matching the texture of a
    3-voxel shell around it (the realisation ``seed``). Physical parameter: the fraction ``s`` of the
    lesion's deviation from healthy tissue that is removed (``x + s * (filled - x)``). ``margin`` is 1 voxel.
    """

    needs_region = True
    margin = 1.0

    def __init__(
        self,
        severity: float = 1.0,
        iterations: int = 200,
        labels: Sequence[int] | None = None,
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        super().__init__(severity, labels, seed, strict)
        self.iterations = iterations

    def apply(self, x, severity, region):
        spatial_axes = tuple(range(1, x.ndim))
        hole = torch.from_numpy(ndimage.binary_dilation(region.cpu().numpy())).to(x.device)
        distance, nearest = _distance_to(~hole)
        shell = torch.from_numpy((distance == 0) & (_distance_to(hole)[0] <= 3)).to(x.device)
        filled = _gather(x, nearest, hole.cpu().numpy())
        # Jacobi iterations of the Laplace equation inside the hole, on its bounding box (+2 voxels)
        box = tuple(slice(max(int(i.min()) - 2, 0), int(i.max()) + 3) for i in torch.nonzero(hole, as_tuple=True))
        inner, hole_box, fixed = filled[(slice(None), *box)], hole[box], x[(slice(None), *box)]
        pool = F.avg_pool2d if x.ndim == 3 else F.avg_pool3d
        for _ in range(self.iterations):
            smoothed = pool(inner[None], 3, stride=1, padding=1, count_include_pad=False)[0]
            inner = torch.where(hole_box, smoothed, fixed)
        filled = filled.clone()
        filled[(slice(None), *box)] = inner
        residual = x - gaussian_blur(x, 1.0, spatial_axes)
        texture_std = residual[:, shell].std(dim=1) if bool(shell.any()) else torch.zeros(x.shape[0], device=x.device)
        noise = torch.randn(x.shape, generator=self.generator()).to(x.device, x.dtype)
        noise = gaussian_blur(noise, 0.5, spatial_axes)
        noise = noise / noise.std().clamp_min(1e-12) * texture_std.reshape(-1, *[1] * len(spatial_axes))
        filled = torch.where(hole, filled + noise, x)
        self.new_region = torch.zeros_like(region)
        return x + severity * (filled - x)


class LesionInsertion(Perturbation):
    """Insert a synthetic lesion inside the region (e.g. white matter), at ``center`` or at random.

    The lesion is a smooth ellipsoid of radius ``radius`` voxels (random axis ratios 0.8-1.2), centred at a
    voxel at least ``radius`` deep inside the region when there is one (the region must be at least
    ``radius`` voxels thick; an explicit ``center`` must lie in the region; otherwise centre and axis ratios
    are the realisation ``seed``); its profile
    ``clip(1.5 - d / r, 0, 1)`` multiplies the image by ``1 -/+ s * max_contrast`` at its core
    (``hyperintense`` selects the sign). Physical parameter: the lesion contrast ``s * max_contrast``
    (default up to 60 %). No voxel farther than ``1.5 * 1.2 * radius`` from the centre changes; measured from
    the voxels of the inserted lesion (``new_region``, where ``d <= 1``) the margin is ``0.6 * radius + 1``.
    Recorded: ``contrast`` and the chosen ``center``.
    """

    needs_region = True

    def __init__(
        self,
        severity: float = 1.0,
        max_contrast: float = 0.6,
        radius: float = 4.0,
        center: Sequence[int] | None = None,
        hyperintense: bool = False,
        labels: Sequence[int] | None = None,
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        super().__init__(severity, labels, seed, strict)
        self.max_contrast, self.radius, self.center, self.hyperintense = max_contrast, radius, center, hyperintense
        self.margin = 0.5 * 1.2 * radius + 1.0  # profile support beyond d = 1, plus one voxel of discretisation

    def unchanged_footprint(self, region: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(region)  # no lesion inserted (the region is where it would go)

    def choose_center(self, region: torch.Tensor) -> list[int]:
        if self.center is not None:
            center = [int(c) for c in self.center]
            if len(center) != region.ndim:
                raise ValueError(f"LesionInsertion: center needs {region.ndim} coordinates, got {self.center!r}.")
            if any(not 0 <= c < n for c, n in zip(center, region.shape)) or not bool(region[tuple(center)]):
                raise ValueError(f"LesionInsertion: center {center} is not inside the placement region.")
            return center
        depth = ndimage.distance_transform_edt(region.cpu().numpy())
        if depth.max() < 0.5 * self.radius:
            raise NotApplicable(
                f"LesionInsertion: the placement region is at most {2 * depth.max():.0f} voxels thick, too thin for "
                f"a lesion of radius {self.radius}; pass a smaller radius or a larger region."
            )
        candidates = np.argwhere(depth >= min(self.radius, depth.max()))
        pick = int(torch.randint(len(candidates), (1,), generator=self.generator()).item())
        return candidates[pick].tolist()

    def apply(self, x, severity, region):
        center = self.choose_center(region)
        self.applied.update(contrast=severity * self.max_contrast, center=center)
        ratios = 0.8 + 0.4 * torch.rand(region.ndim, generator=self.generator(), dtype=torch.float64)
        axes = [torch.arange(n, device=x.device, dtype=x.dtype) for n in region.shape]
        grid = torch.meshgrid(*axes, indexing="ij")
        distance = torch.sqrt(sum(((g - c) / (self.radius * float(r))) ** 2 for g, c, r in zip(grid, center, ratios)))
        profile = (1.5 - distance).clamp(0, 1)
        self.new_region = distance <= 1.0
        sign = 1.0 if self.hyperintense else -1.0
        return x * (1 + sign * severity * self.max_contrast * profile)


class LocalContrastChange(Perturbation):
    """Fade (or boost) a region's contrast against its surroundings.

    ``mu + (x - mu) * (1 - s * max_change * w)``, where ``mu`` is the mean of a shell of ``margin`` voxels
    around the region and ``w`` is 1 inside the region, tapering to 0 over ``margin`` voxels. Physical
    parameter: the relative loss of lesion-to-background contrast ``s * max_change`` (default up to 80 %;
    negative ``max_change`` boosts contrast; recorded as ``contrast_change``).
    """

    needs_region = True

    def __init__(
        self,
        severity: float = 1.0,
        max_change: float = 0.8,
        margin: float = 3.0,
        labels: Sequence[int] | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(severity, labels, strict=strict)
        self.max_change, self.margin = max_change, margin

    def apply(self, x, severity, region):
        self.applied.update(contrast_change=severity * self.max_change)
        weight = _taper(region, self.margin, x.dtype)
        shell = (weight > 0) & ~region
        reference = x[:, shell].mean(dim=1) if bool(shell.any()) else x[:, region].mean(dim=1)
        mu = reference.reshape(-1, *[1] * region.ndim)
        self.new_region = region
        changed = x - severity * self.max_change * weight * (x - mu)
        return torch.where(weight > 0, changed, x)
