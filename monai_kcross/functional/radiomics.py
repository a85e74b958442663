"""Radiomic features of images inside masks, batched in torch, with PyRadiomics' (IBSI-based) definitions.

:func:`radiomic_features` computes, for every image of a batch ``(B, 1, H, W[, D])`` and its region of interest,

* the 18 **first-order** features of PyRadiomics' default set (energy, total energy, entropy, minimum, 10th/90th
  percentiles, maximum, mean, median, interquartile range, range, mean and robust mean absolute deviation, root
  mean square, skewness, kurtosis, variance, uniformity), and
* 22 **GLCM** texture features (those of FRD's configuration: autocorrelation, joint average, cluster
  prominence/shade/tendency, contrast, correlation, difference average/entropy/variance, joint energy/entropy,
  IMC1, IMC2, IDM, IDMN, ID, IDN, inverse variance, maximum probability, sum entropy, sum of squares), and
* the 16 **GLRLM** run-length features (short/long run emphasis, grey-level and run-length non-uniformity and
  their normalised forms, run percentage, grey-level and run variance, run entropy, and the six low/high
  grey-level run emphases),

with PyRadiomics' conventions, so that the numbers equal PyRadiomics' to floating-point precision (checked in the
tests against golden values from PyRadiomics 3.1): fixed-bin-width discretisation ``floor(x / w) - floor(min / w)
+ 1`` over the ROI (or a fixed bin count), a symmetric GLCM at distance 1 per direction (4 in-plane directions in
2-D, 13 in 3-D) with only pairs of ROI voxels, maximal runs of ROI voxels per direction for the GLRLM, features
per direction averaged over the directions with any pair or run,
``log2`` entropies with ``eps = 2.2e-16``. Images are not resampled, normalised or filtered here (PyRadiomics'
``resampledPixelSpacing``, ``normalize``, LoG and wavelet image types are not reproduced).

Everything is vectorised over the batch (no loops over voxels) and runs on the images' device; features are
computed in float64. These features feed :func:`monai_kcross.functional.set_level.frd` (Fréchet radiomic distance)
through :class:`monai_kcross.features.RadiomicsFeatures`.
"""

from __future__ import annotations

import itertools
import math

import torch

from .validation import all_finite, as_plain_tensor

__all__ = [
    "FIRST_ORDER",
    "GLCM",
    "GLRLM",
    "RADIOMIC_FEATURES",
    "discretise",
    "glcm_matrices",
    "glrlm_matrices",
    "radiomic_features",
]

FIRST_ORDER = (
    "Energy",
    "TotalEnergy",
    "Entropy",
    "Minimum",
    "10Percentile",
    "90Percentile",
    "Maximum",
    "Mean",
    "Median",
    "InterquartileRange",
    "Range",
    "MeanAbsoluteDeviation",
    "RobustMeanAbsoluteDeviation",
    "RootMeanSquared",
    "Skewness",
    "Kurtosis",
    "Variance",
    "Uniformity",
)
GLCM = (
    "Autocorrelation",
    "JointAverage",
    "ClusterProminence",
    "ClusterShade",
    "ClusterTendency",
    "Contrast",
    "Correlation",
    "DifferenceAverage",
    "DifferenceEntropy",
    "DifferenceVariance",
    "JointEnergy",
    "JointEntropy",
    "Imc1",
    "Imc2",
    "Idm",
    "Idmn",
    "Id",
    "Idn",
    "InverseVariance",
    "MaximumProbability",
    "SumEntropy",
    "SumSquares",
)
GLRLM = (
    "ShortRunEmphasis",
    "LongRunEmphasis",
    "GrayLevelNonUniformity",
    "GrayLevelNonUniformityNormalized",
    "RunLengthNonUniformity",
    "RunLengthNonUniformityNormalized",
    "RunPercentage",
    "GrayLevelVariance",
    "RunVariance",
    "RunEntropy",
    "LowGrayLevelRunEmphasis",
    "HighGrayLevelRunEmphasis",
    "ShortRunLowGrayLevelEmphasis",
    "ShortRunHighGrayLevelEmphasis",
    "LongRunLowGrayLevelEmphasis",
    "LongRunHighGrayLevelEmphasis",
)
_CLASSES = {"firstorder": FIRST_ORDER, "glcm": GLCM, "glrlm": GLRLM}
RADIOMIC_FEATURES = tuple(f"{c}_{n}" for c, names in _CLASSES.items() for n in names)
_EPS = 2.220446049250313e-16  # numpy.spacing(1), PyRadiomics' eps


def _directions(spatial_dims: int) -> list[tuple[int, ...]]:
    """One of each pair of opposite unit offsets: 4 in 2-D, 13 in 3-D."""
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=spatial_dims) if any(o)]
    return [o for o in offsets if o > tuple(-v for v in o)]


def _check(image: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    image = as_plain_tensor(image)
    if image.ndim not in (4, 5) or image.shape[1] != 1:
        raise ValueError(f"radiomics: images must be (B, 1, H, W[, D]), got shape {tuple(image.shape)}.")
    if image.is_complex() or not all_finite(image):
        raise ValueError("radiomics: images must be real and finite (no NaN or Inf).")
    if mask is None:
        roi = torch.ones_like(image, dtype=torch.bool)
    else:
        mask = as_plain_tensor(torch.as_tensor(mask, device=image.device))
        if mask.ndim == image.ndim - 2:
            mask = mask[None, None]
        if mask.ndim != image.ndim or mask.shape[2:] != image.shape[2:] or mask.shape[0] not in (1, image.shape[0]):
            raise ValueError(f"radiomics: mask of shape {tuple(mask.shape)} does not fit images {tuple(image.shape)}.")
        roi = (mask[:, :1] > 0).expand(image.shape[0], 1, *image.shape[2:])
    counts = roi.flatten(1).sum(1)
    if bool((counts < 2).any()):
        raise ValueError(f"radiomics: every region needs at least 2 voxels, got {counts.tolist()}.")
    return image.double(), roi


def discretise(
    image: torch.Tensor, roi: torch.Tensor, bin_width: float | None = 25.0, bin_count: int | None = None
) -> torch.Tensor:
    """Grey levels ``1..Ng`` inside the ROI (0 outside), PyRadiomics' discretisation.

    Fixed bin width ``w``: ``floor(x / w) - floor(min / w) + 1`` (bins equally spaced from 0); fixed bin count
    ``n``: ``floor(n (x - min) / (max - min)) + 1``, the maximum in bin ``n``.
    """
    flat, inside = image.flatten(1), roi.flatten(1)
    low = torch.where(inside, flat, torch.full_like(flat, math.inf)).amin(1, keepdim=True)
    high = torch.where(inside, flat, torch.full_like(flat, -math.inf)).amax(1, keepdim=True)
    if bin_count is not None:
        if bin_count < 1:
            raise ValueError(f"radiomics: bin_count must be >= 1, got {bin_count}.")
        span = torch.where(high > low, high - low, torch.ones_like(high))
        levels = torch.floor(bin_count * (flat - low) / span) + 1
        levels = torch.where(flat >= high, torch.full_like(levels, bin_count), levels)
    else:
        if bin_width is None or not bin_width > 0:
            raise ValueError(f"radiomics: bin_width must be > 0, got {bin_width}.")
        levels = torch.floor(flat / bin_width) - torch.floor(low / bin_width) + 1
    return torch.where(inside, levels, torch.zeros_like(levels)).long().view(roi.shape)


def _first_order(
    image: torch.Tensor, roi: torch.Tensor, levels: torch.Tensor, shift: float, voxel_volume: float
) -> dict[str, torch.Tensor]:
    b = image.shape[0]
    x = torch.where(roi, image, torch.full_like(image, math.nan)).flatten(1)  # (B, N), NaN outside the ROI
    n = roi.flatten(1).sum(1).double()
    inside = roi.flatten(1)
    zero = torch.zeros_like(x)
    mean = torch.where(inside, x, zero).sum(1) / n
    centred = torch.where(inside, x - mean[:, None], zero)
    m2, m3, m4 = ((centred**k).sum(1) / n for k in (2, 3, 4))
    q = torch.nanquantile(x, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=x.dtype, device=x.device), dim=1)
    p10, p25, median, p75, p90 = q
    within = inside & (x >= p10[:, None]) & (x <= p90[:, None])
    robust_n = within.sum(1).double()
    robust_mean = torch.where(within, x, zero).sum(1) / robust_n
    robust_mad = torch.where(within, (x - robust_mean[:, None]).abs(), zero).sum(1) / robust_n
    shifted = torch.where(inside, x + shift, zero)
    energy = shifted.square().sum(1)
    g = int(levels.max())
    histogram = torch.zeros(b, g + 1, dtype=torch.float64, device=image.device)
    histogram.scatter_add_(1, levels.flatten(1), torch.ones_like(x))
    p = histogram[:, 1:] / n[:, None]
    minimum = torch.where(inside, x, torch.full_like(x, math.inf)).amin(1)
    maximum = torch.where(inside, x, torch.full_like(x, -math.inf)).amax(1)
    flat_region = m2 == 0
    return {
        "Energy": energy,
        "TotalEnergy": energy * voxel_volume,
        "Entropy": -(p * torch.log2(p + _EPS)).sum(1),
        "Minimum": minimum,
        "10Percentile": p10,
        "90Percentile": p90,
        "Maximum": maximum,
        "Mean": mean,
        "Median": median,
        "InterquartileRange": p75 - p25,
        "Range": maximum - minimum,
        "MeanAbsoluteDeviation": centred.abs().sum(1) / n,
        "RobustMeanAbsoluteDeviation": robust_mad,
        "RootMeanSquared": (energy / n).sqrt(),
        "Skewness": torch.where(flat_region, torch.zeros_like(m3), m3 / m2.clamp_min(_EPS) ** 1.5),
        "Kurtosis": torch.where(flat_region, torch.zeros_like(m4), m4 / m2.clamp_min(_EPS) ** 2),
        "Variance": m2,
        "Uniformity": p.square().sum(1),
    }


def glcm_matrices(levels: torch.Tensor, roi: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
    """Grey-level co-occurrence counts ``(B, A, G, G)`` at distance 1 for the ``A`` directions (4 in 2-D, 13 in
    3-D), counting only pairs of ROI voxels; ``G`` is the largest grey level of the batch.

    Args:
        levels: grey levels ``(B, 1, *spatial)`` in ``1..G`` inside the ROI (see :func:`discretise`).
        roi: boolean ROI of the same shape.
        symmetric: add the transposed matrix (both orders of each pair), PyRadiomics' default.
    """
    b = levels.shape[0]
    spatial = levels.shape[2:]
    g = int(levels.max())
    directions = _directions(len(spatial))
    counts = torch.zeros(b * len(directions) * g * g, dtype=torch.float64, device=levels.device)
    lv = torch.where(roi, levels, torch.zeros_like(levels))[:, 0]
    for a, offset in enumerate(directions):
        source = tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(offset, spatial))
        target = tuple(slice(max(0, o), s - max(0, -o)) for o, s in zip(offset, spatial))
        i, j = lv[(slice(None), *source)], lv[(slice(None), *target)]
        valid = (i > 0) & (j > 0)
        batch = torch.arange(b, device=levels.device).view(-1, *([1] * len(spatial))).expand_as(i)
        index = ((batch * len(directions) + a) * g + (i - 1).clamp_min(0)) * g + (j - 1).clamp_min(0)
        counts.index_add_(0, index[valid], torch.ones_like(index[valid], dtype=torch.float64))
    matrices = counts.view(b, len(directions), g, g)
    return matrices + matrices.transpose(-1, -2) if symmetric else matrices


def _glcm_features(levels: torch.Tensor, roi: torch.Tensor) -> dict[str, torch.Tensor]:
    counts = glcm_matrices(levels, roi)
    total = counts.sum((-1, -2), keepdim=True)
    used = total[..., 0, 0] > 0  # (B, A): directions with at least one pair
    p = counts / torch.where(total > 0, total, torch.ones_like(total))
    g = p.shape[-1]
    grey = torch.arange(1, g + 1, dtype=torch.float64, device=p.device)
    i, j = grey.view(-1, 1), grey.view(1, -1)
    ng = levels.flatten(1).amax(1).double().view(-1, 1)  # PyRadiomics' Ng: the largest grey level in the ROI
    px, py = p.sum(-1, keepdim=True), p.sum(-2, keepdim=True)  # (B, A, G, 1), (B, A, 1, G)
    ux, uy = (p * i).sum((-1, -2), keepdim=True), (p * j).sum((-1, -2), keepdim=True)
    k_sum = (i + j).long().expand(g, g).flatten() - 2  # i + j in 2..2G -> index 0..2G-2
    k_diff = (i - j).abs().long().expand(g, g).flatten()  # |i - j| in 0..G-1
    flat = p.flatten(-2)
    p_sum = torch.zeros(*p.shape[:2], 2 * g - 1, dtype=p.dtype, device=p.device).index_add_(-1, k_sum, flat)
    p_diff = torch.zeros(*p.shape[:2], g, dtype=p.dtype, device=p.device).index_add_(-1, k_diff, flat)
    k = torch.arange(g, dtype=torch.float64, device=p.device)

    def entropy(values: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        return -(values * torch.log2(values + _EPS)).sum(dims)

    hxy = entropy(p, (-1, -2))
    hx, hy = entropy(px, (-1, -2)), entropy(py, (-1, -2))
    hxy1 = -(p * torch.log2(px * py + _EPS)).sum((-1, -2))
    hxy2 = entropy(px * py, (-1, -2))
    centre = (i + j) - ux - uy
    sigx = (p * (i - ux).square()).sum((-1, -2)).sqrt()
    sigy = (p * (j - uy).square()).sum((-1, -2)).sqrt()
    covariance = (p * (i - ux) * (j - uy)).sum((-1, -2))
    div = torch.maximum(hx, hy)
    diff_average = (k * p_diff).sum(-1)
    per_direction = {
        "Autocorrelation": (p * i * j).sum((-1, -2)),
        "JointAverage": ux[..., 0, 0],
        "ClusterProminence": (p * centre**4).sum((-1, -2)),
        "ClusterShade": (p * centre**3).sum((-1, -2)),
        "ClusterTendency": (p * centre**2).sum((-1, -2)),
        "Contrast": (p * (i - j).square()).sum((-1, -2)),
        "Correlation": torch.where(sigx * sigy == 0, torch.ones_like(sigx), covariance / (sigx * sigy + _EPS)),
        "DifferenceAverage": diff_average,
        "DifferenceEntropy": entropy(p_diff, (-1,)),
        "DifferenceVariance": (p_diff * (k - diff_average[..., None]).square()).sum(-1),
        "JointEnergy": p.square().sum((-1, -2)),
        "JointEntropy": hxy,
        "Imc1": torch.where(div != 0, (hxy - hxy1) / torch.where(div != 0, div, torch.ones_like(div)), 0 * div),
        "Imc2": torch.where(hxy2 == hxy, 0 * hxy, (1 - torch.exp(-2 * (hxy2 - hxy))).clamp_min(0).sqrt()),
        "Idm": (p_diff / (1 + k.square())).sum(-1),
        "Idmn": (p_diff / (1 + k.square() / ng.square()[..., None])).sum(-1),
        "Id": (p_diff / (1 + k)).sum(-1),
        "Idn": (p_diff / (1 + k / ng[..., None])).sum(-1),
        "InverseVariance": (p_diff[..., 1:] / k[1:].square()).sum(-1),
        "MaximumProbability": p.flatten(-2).amax(-1),
        "SumEntropy": entropy(p_sum, (-1,)),
        "SumSquares": (p * (i - ux).square()).sum((-1, -2)),
    }
    return _direction_mean(per_direction, used)


def _shift(levels: torch.Tensor, offset: tuple[int, ...]) -> torch.Tensor:
    """``out[v] = levels[v + offset]`` over the spatial axes of ``(B, *spatial)``, 0 outside the image."""
    out = torch.zeros_like(levels)
    spatial = levels.shape[1:]
    source = tuple(slice(max(0, o), s - max(0, -o)) for o, s in zip(offset, spatial))
    target = tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(offset, spatial))
    if all(sl.start < sl.stop for sl in source):
        out[(slice(None), *target)] = levels[(slice(None), *source)]
    return out


def glrlm_matrices(levels: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
    """Grey-level run-length counts ``(B, A, G, R)`` for the ``A`` directions (4 in 2-D, 13 in 3-D): entry
    ``[b, a, i - 1, r - 1]`` is the number of maximal runs of grey level ``i`` and length ``r`` along direction ``a``
    inside the ROI; ``R`` is the longest side of the images.

    Runs are found by shifting the grey-level map along each direction (one shift per run length, no loop over
    voxels).
    """
    lv = torch.where(roi, levels, torch.zeros_like(levels))[:, 0]  # (B, *spatial), 0 outside the ROI
    b, g, r_max = lv.shape[0], int(lv.max()), max(lv.shape[1:])
    directions = _directions(lv.ndim - 1)
    counts = torch.zeros(b * len(directions) * g * r_max, dtype=torch.float64, device=lv.device)
    batch = torch.arange(b, device=lv.device).view(-1, *([1] * (lv.ndim - 1))).expand_as(lv)
    for a, offset in enumerate(directions):
        backward = tuple(-o for o in offset)
        alive = (lv > 0) & (_shift(lv, backward) != lv)  # run starts
        starts, length = alive.clone(), alive.long()
        step = 1
        while bool(alive.any()) and step < r_max:
            alive &= _shift(lv, tuple(step * o for o in offset)) == lv
            length += alive.long()
            step += 1
        index = ((batch * len(directions) + a) * g + (lv - 1).clamp_min(0)) * r_max + (length - 1).clamp_min(0)
        counts.index_add_(0, index[starts], torch.ones_like(index[starts], dtype=torch.float64))
    return counts.view(b, len(directions), g, r_max)


def _glrlm_features(levels: torch.Tensor, roi: torch.Tensor) -> dict[str, torch.Tensor]:
    p = glrlm_matrices(levels, roi)  # (B, A, G, R)
    runs = p.sum((-1, -2))  # (B, A): number of runs
    used = runs > 0
    safe = torch.where(used, runs, torch.ones_like(runs))
    g, r = p.shape[-2:]
    i = torch.arange(1, g + 1, dtype=torch.float64, device=p.device).view(-1, 1)
    j = torch.arange(1, r + 1, dtype=torch.float64, device=p.device).view(1, -1)
    pg, pr = p.sum(-1), p.sum(-2)  # (B, A, G), (B, A, R)
    iv, jv = i[:, 0], j[0]
    pgn, prn = pg / safe[..., None], pr / safe[..., None]
    u_i, u_j = (pgn * iv).sum(-1, keepdim=True), (prn * jv).sum(-1, keepdim=True)
    pn = p / safe[..., None, None]
    per_direction = {
        "ShortRunEmphasis": (pr / jv.square()).sum(-1) / safe,
        "LongRunEmphasis": (pr * jv.square()).sum(-1) / safe,
        "GrayLevelNonUniformity": pg.square().sum(-1) / safe,
        "GrayLevelNonUniformityNormalized": pg.square().sum(-1) / safe.square(),
        "RunLengthNonUniformity": pr.square().sum(-1) / safe,
        "RunLengthNonUniformityNormalized": pr.square().sum(-1) / safe.square(),
        "RunPercentage": runs / (pr * jv).sum(-1).clamp_min(_EPS),
        "GrayLevelVariance": (pgn * (iv - u_i).square()).sum(-1),
        "RunVariance": (prn * (jv - u_j).square()).sum(-1),
        "RunEntropy": -(pn * torch.log2(pn + _EPS)).sum((-1, -2)),
        "LowGrayLevelRunEmphasis": (pg / iv.square()).sum(-1) / safe,
        "HighGrayLevelRunEmphasis": (pg * iv.square()).sum(-1) / safe,
        "ShortRunLowGrayLevelEmphasis": (p / (i.square() * j.square())).sum((-1, -2)) / safe,
        "ShortRunHighGrayLevelEmphasis": (p * i.square() / j.square()).sum((-1, -2)) / safe,
        "LongRunLowGrayLevelEmphasis": (p * j.square() / i.square()).sum((-1, -2)) / safe,
        "LongRunHighGrayLevelEmphasis": (p * i.square() * j.square()).sum((-1, -2)) / safe,
    }
    return _direction_mean(per_direction, used)


def _direction_mean(per_direction: dict[str, torch.Tensor], used: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean over the directions with any pair or run (PyRadiomics drops empty directions)."""
    weight = used.double()
    directions = weight.sum(1).clamp_min(1)
    return {
        name: torch.where(used, value, torch.zeros_like(value)).mul(weight).sum(1) / directions
        for name, value in per_direction.items()
    }


def radiomic_features(
    image: torch.Tensor,
    mask: torch.Tensor | None = None,
    bin_width: float | None = 25.0,
    bin_count: int | None = None,
    voxel_array_shift: float = 0.0,
    spacing: float | tuple[float, ...] = 1.0,
    classes: tuple[str, ...] = ("firstorder", "glcm", "glrlm"),
) -> dict[str, torch.Tensor]:
    """Radiomic features ``{"<class>_<name>": (B,)}`` (float64) of each image in its ROI.

    Args:
        image: ``(B, 1, H, W)`` or ``(B, 1, H, W, D)``, any intensity scale (PyRadiomics works on raw values;
            choose ``bin_width`` for the scale, e.g. 25 for CT in HU, or use ``bin_count``).
        mask: ROI ``(B|1, 1, *spatial)`` or ``spatial`` (non-zero = inside; at least 2 voxels per image);
            ``None``: the whole image.
        bin_width, bin_count: discretisation (fixed bin width, PyRadiomics' default 25; or a fixed bin count).
        voxel_array_shift: added to intensities for energy, total energy and RMS (PyRadiomics'
            ``voxelArrayShift``).
        spacing: voxel size (total energy is energy times the voxel volume).
        classes: feature classes among ``"firstorder"``, ``"glcm"`` and ``"glrlm"``.

    Returns:
        Ordered dict of features as in :data:`RADIOMIC_FEATURES` (restricted to ``classes``).
    """
    unknown = set(classes) - set(_CLASSES)
    if unknown or not classes:
        raise ValueError(f"radiomics: classes must be among {tuple(_CLASSES)}, got {classes}.")
    image, roi = _check(image, mask)
    levels = discretise(image, roi, None if bin_count is not None else bin_width, bin_count)
    steps = (spacing,) * (image.ndim - 2) if isinstance(spacing, (int, float)) else tuple(spacing)
    out: dict[str, torch.Tensor] = {}
    if "firstorder" in classes:
        values = _first_order(image, roi, levels, voxel_array_shift, float(math.prod(steps)))
        out.update({f"firstorder_{k}": values[k] for k in FIRST_ORDER})
    if "glcm" in classes:
        values = _glcm_features(levels, roi)
        out.update({f"glcm_{k}": values[k] for k in GLCM})
    if "glrlm" in classes:
        values = _glrlm_features(levels, roi)
        out.update({f"glrlm_{k}": values[k] for k in GLRLM})
    return out
