"""Set-level scores of generated image sets, on feature vectors ``(N, F)`` from a feature extractor.

Every function takes the features of real images and of generated images (any feature extractor of
:mod:`monai_kcross.features`; the numbers are only comparable for the same extractor) and is computed in
float64 on the features' device.

* :func:`fid` -- Fréchet distance between Gaussians fitted to both sets (unbiased covariances; the trace of the
  matrix square root through a symmetric eigen-decomposition, exact for positive semi-definite covariances).
* :func:`kid` -- kernel inception distance: unbiased MMD² with the polynomial kernel
  ``(x·y / F + 1)^3`` averaged over random subsets; mean and standard deviation over subsets.
* :func:`mmd` -- unbiased (or biased) MMD² with a Gaussian kernel (bandwidth: median heuristic) or the
  polynomial kernel, on whole sets.
* :func:`prdc` -- precision, recall, density and coverage (Naeem et al. 2020) with k-nearest-neighbour radii
  per sample.
* :func:`memorisation` -- for each generated sample, its nearest-neighbour distance to the *training* set divided
  by the typical real-to-training nearest-neighbour distance; near-copies fall below a threshold calibrated on
  real samples (held-out reals, or training samples leave-one-out).
* :func:`pairwise_diversity` -- mean pairwise distance (or similarity) within one set.
* :func:`frd` -- Fréchet radiomic distance (Konz et al. 2026): the Fréchet distance of radiomic features z-scored
  with the real set's statistics, log-transformed as ``frd-score`` does.
* :func:`concordance` -- Lin's concordance correlation of paired features (radiomic-feature agreement).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "MemorisationResult",
    "concordance",
    "fid",
    "frd",
    "kid",
    "memorisation",
    "mmd",
    "nearest_neighbour_distances",
    "pairwise_diversity",
    "prdc",
]


def _features(x: torch.Tensor, name: str, minimum: int = 2) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"{name}: features must be (N, F), got shape {tuple(x.shape)}.")
    if x.shape[0] < minimum:
        raise ValueError(f"{name}: needs at least {minimum} samples, got {x.shape[0]}.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or Inf.")
    return x.double()


def _pair(
    real: torch.Tensor, generated: torch.Tensor, name: str, minimum: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    real, generated = _features(real, f"{name} (real)", minimum), _features(generated, f"{name} (generated)", minimum)
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"{name}: feature sizes differ, real {real.shape[1]} vs generated {generated.shape[1]}.")
    return real, generated.to(real.device)


def _covariance(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / (x.shape[0] - 1)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def fid(real: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """Fréchet distance ``|mu_r - mu_g|² + tr(S_r + S_g - 2 (S_r^½ S_g S_r^½)^½)`` (scalar, lower is better).

    Args:
        real, generated: features ``(N, F)`` and ``(M, F)``, ``N, M >= 2``.
    """
    real, generated = _pair(real, generated, "fid")
    s_r, s_g = _covariance(real), _covariance(generated)
    root = _psd_sqrt(s_r)
    cross = torch.linalg.eigvalsh(root @ s_g @ root).clamp_min(0).sqrt().sum()
    return (real.mean(0) - generated.mean(0)).square().sum() + torch.trace(s_r) + torch.trace(s_g) - 2 * cross


def frd(real: torch.Tensor, generated: torch.Tensor, normalise: str = "real", log: bool = True) -> torch.Tensor:
    """Fréchet radiomic distance (Konz, Osuala et al., Medical Image Analysis 2026), lower is better.

    As ``frd-score`` 1.0's v1 pipeline on given features: each feature is z-scored with the mean and (population)
    standard deviation of the *real* set (``normalise="real"``; ``"none"`` skips it), features constant in the
    real set are dropped (their z-scores would be infinite), then :func:`fid` and, with ``log``, the natural
    logarithm of that squared Fréchet distance (``-inf`` for identical sets).

    Args:
        real, generated: radiomic features ``(N, F)``, ``(M, F)`` (e.g. from
            :class:`~monai_kcross.features.RadiomicsFeatures`).
    """
    real, generated = _pair(real, generated, "frd")
    if normalise == "real":
        mean, std = real.mean(0), real.std(0, unbiased=False)
        keep = std > 0
        if not bool(keep.any()):
            raise ValueError("frd: every feature is constant in the real set.")
        real, generated = ((x[:, keep] - mean[keep]) / std[keep] for x in (real, generated))
    elif normalise != "none":
        raise ValueError(f"frd: normalise must be 'real' or 'none', got {normalise!r}.")
    distance = fid(real, generated)
    return distance.clamp_min(0).log() if log else distance


def concordance(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient of each feature over paired samples, ``(F,)`` in ``[-1, 1]``.

    ``2 cov(p, r) / (var(p) + var(r) + (mean(p) - mean(r))²)`` with population moments; 1 means identical
    features, and radiomics reproducibility studies usually call a feature reproducible from 0.85 or 0.9.

    Args:
        predicted, reference: features ``(N, F)`` of paired samples (row ``i`` of both from the same case).
    """
    predicted, reference = _pair(predicted, reference, "concordance")
    if predicted.shape[0] != reference.shape[0]:
        raise ValueError(f"concordance: needs paired samples, got {predicted.shape[0]} and {reference.shape[0]}.")
    mp, mr = predicted.mean(0), reference.mean(0)
    covariance = ((predicted - mp) * (reference - mr)).mean(0)
    denominator = predicted.var(0, unbiased=False) + reference.var(0, unbiased=False) + (mp - mr).square()
    return torch.where(denominator > 0, 2 * covariance / denominator.clamp_min(1e-300), torch.ones_like(mp))


def _polynomial(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float | None, coef: float) -> torch.Tensor:
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (gamma * a @ b.T + coef) ** degree


def _mmd2(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor, unbiased: bool) -> torch.Tensor:
    n, m = k_xx.shape[0], k_yy.shape[0]
    if unbiased:
        xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    else:
        xx, yy = k_xx.mean(), k_yy.mean()
    return xx + yy - 2 * k_xy.mean()


def kid(
    real: torch.Tensor,
    generated: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel inception distance: unbiased polynomial-kernel MMD² averaged over random subsets.

    Args:
        real, generated: features ``(N, F)``, ``(M, F)``.
        subsets: number of random subsets (drawn without replacement within a subset).
        subset_size: samples per subset from each set (capped at ``min(N, M)``).
        degree, gamma, coef: kernel ``(gamma x·y + coef)^degree``; ``gamma`` defaults to ``1 / F``.
        seed: subset sampling seed.

    Returns:
        ``(mean, std)`` over subsets (``std`` is 0 for one subset); lower is better, 0 for equal distributions.
    """
    real, generated = _pair(real, generated, "kid")
    size = min(subset_size, real.shape[0], generated.shape[0])
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(real.shape[0], generator=generator)[:size].to(real.device)]
        y = generated[torch.randperm(generated.shape[0], generator=generator)[:size].to(real.device)]
        kernel = lambda a, b: _polynomial(a, b, degree, gamma, coef)  # noqa: E731
        values.append(_mmd2(kernel(x, x), kernel(y, y), kernel(x, y), unbiased=True))
    stacked = torch.stack(values)
    return stacked.mean(), (stacked.std() if len(values) > 1 else torch.zeros((), dtype=stacked.dtype))


def mmd(
    real: torch.Tensor,
    generated: torch.Tensor,
    kernel: str = "gaussian",
    bandwidth: float | None = None,
    unbiased: bool = True,
) -> torch.Tensor:
    """Squared maximum mean discrepancy between the two sets (scalar; lower is better).

    Args:
        kernel: ``"gaussian"`` (``exp(-|x - y|² / (2 bandwidth²))``; ``bandwidth`` defaults to the median
            pairwise distance of the pooled sets) or ``"polynomial"`` (as :func:`kid`).
        unbiased: drop the diagonal terms (the estimate can then be slightly negative).
    """
    real, generated = _pair(real, generated, "mmd")
    if kernel == "polynomial":
        k = lambda a, b: _polynomial(a, b, 3, None, 1.0)  # noqa: E731
    elif kernel == "gaussian":
        if bandwidth is None:
            pooled = torch.cat([real, generated])
            distances = torch.cdist(pooled, pooled)
            upper = distances[torch.triu_indices(len(pooled), len(pooled), 1, device=pooled.device).unbind()]
            half = len(upper) // 2  # the median of the pairwise distances (mean of the middle two when even)
            middle = upper.kthvalue(half + 1).values if len(upper) % 2 else upper.kthvalue(half).values
            if len(upper) % 2 == 0:
                middle = (middle + upper.kthvalue(half + 1).values) / 2
            bandwidth = float(middle) or 1.0
        if bandwidth <= 0:
            raise ValueError(f"mmd: bandwidth must be positive, got {bandwidth}.")
        k = lambda a, b: torch.exp(-torch.cdist(a, b).square() / (2 * bandwidth**2))  # noqa: E731
    else:
        raise ValueError(f"mmd: kernel must be 'gaussian' or 'polynomial', got {kernel!r}.")
    return _mmd2(k(real, real), k(generated, generated), k(real, generated), unbiased)


def _chunked_cdist(a: torch.Tensor, b: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor], chunk: int = 4096):
    """``reduce(cdist(a_chunk, b))`` over row chunks of ``a``, concatenated (bounded memory)."""
    return torch.cat([reduce(torch.cdist(a[i : i + chunk], b)) for i in range(0, a.shape[0], chunk)])


def nearest_neighbour_distances(x: torch.Tensor, k: int, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Distance of each row of ``x`` to its ``k``-th nearest neighbour in ``reference`` (default: in ``x``
    itself, excluding the sample)."""
    if reference is None:
        if k >= x.shape[0]:
            raise ValueError(f"k = {k} needs more than {k} samples, got {x.shape[0]}.")
        return _chunked_cdist(x, x, lambda d: d.kthvalue(k + 1, dim=1).values)
    if k > reference.shape[0]:
        raise ValueError(f"k = {k} exceeds the {reference.shape[0]} reference samples.")
    return _chunked_cdist(x, reference, lambda d: d.kthvalue(k, dim=1).values)


def prdc(real: torch.Tensor, generated: torch.Tensor, k: int = 5) -> dict[str, torch.Tensor]:
    """Precision, recall, density and coverage of a generated set (Naeem et al., ICML 2020).

    With ``r_i`` the distance of real sample ``i`` to its ``k``-th nearest real neighbour and ``g_j`` that of
    generated sample ``j`` among generated samples:

    * precision -- fraction of generated samples inside some real ball ``B(x_i, r_i)``;
    * recall -- fraction of real samples inside some generated ball ``B(y_j, g_j)``;
    * density -- ``(1 / kM) sum_j #{i : y_j in B(x_i, r_i)}`` (can exceed 1);
    * coverage -- fraction of real balls that contain at least one generated sample.

    All are 1-ish for identical distributions and 0 for disjoint ones; higher is better.
    """
    real, generated = _pair(real, generated, "prdc", minimum=k + 1)
    real_radii = nearest_neighbour_distances(real, k)
    generated_radii = nearest_neighbour_distances(generated, k)
    inside_real = []  # (M,) counts of real balls containing each generated sample
    covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    chunk = 4096
    for start in range(0, generated.shape[0], chunk):
        distances = torch.cdist(generated[start : start + chunk], real)  # (m, N)
        within = distances <= real_radii[None]
        inside_real.append(within.sum(1))
        covered |= within.any(0)
        recalled |= (distances <= generated_radii[start : start + chunk, None]).any(0)
    counts = torch.cat(inside_real).double()
    return {
        "precision": (counts > 0).double().mean(),
        "recall": recalled.double().mean(),
        "density": counts.sum() / (k * generated.shape[0]),
        "coverage": covered.double().mean(),
    }


@dataclass
class MemorisationResult:
    """Near-copy analysis of a generated set against the training set.

    Attributes:
        ratio: ``(M,)`` nearest-training-neighbour distance of each generated sample divided by the median
            real-to-training distance (1 = as close as a fresh real image; near 0 = a copy).
        near_copy: ``(M,)`` boolean, ``ratio < threshold``.
        fraction: fraction of near-copies.
        threshold: the calibrated ratio threshold.
        calibration: ``"held-out"`` (real samples not in training) or ``"leave-one-out"`` (training samples
            against the rest of the training set).
    """

    ratio: torch.Tensor
    near_copy: torch.Tensor
    fraction: float
    threshold: float
    calibration: str


def memorisation(
    generated: torch.Tensor,
    training: torch.Tensor,
    held_out: torch.Tensor | None = None,
    quantile: float = 0.01,
) -> MemorisationResult:
    """Which generated samples are near-copies of training samples.

    The real-to-training nearest-neighbour distance ``d_real`` is measured on ``held_out`` real samples (not used
    in training) or, without them, on each training sample against the *rest* of the training set. Each
    generated sample's nearest-training distance is divided by ``median(d_real)``; the threshold is the
    ``quantile`` of the same ratio over the real samples, so about ``quantile`` of fresh real images would be
    flagged -- a calibrated false-positive rate.

    Args:
        generated: features ``(M, F)`` of generated samples.
        training: features ``(N, F)`` of the generator's training images.
        held_out: optional features ``(K, F)`` of real images the generator never saw.
        quantile: false-positive rate used to calibrate the threshold.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"memorisation: quantile must be in (0, 1), got {quantile}.")
    training, generated = _pair(training, generated, "memorisation", minimum=1)
    if held_out is not None:
        held_out = _pair(training, held_out, "memorisation (held-out)", minimum=2)[1]
        d_real, calibration = nearest_neighbour_distances(held_out, 1, training), "held-out"
    else:
        if training.shape[0] < 3:
            raise ValueError("memorisation: leave-one-out calibration needs at least 3 training samples.")
        d_real, calibration = nearest_neighbour_distances(training, 1), "leave-one-out"
    scale = float(d_real.median())
    if scale <= 0 or not math.isfinite(scale):
        raise ValueError("memorisation: the real samples duplicate the training set (median distance 0).")
    ratio = nearest_neighbour_distances(generated, 1, training) / scale
    threshold = float(torch.quantile(d_real / scale, quantile))
    near_copy = ratio < threshold
    return MemorisationResult(ratio, near_copy, float(near_copy.double().mean()), threshold, calibration)


def pairwise_diversity(
    samples: torch.Tensor,
    similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    max_pairs: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Mean over pairs ``i < j`` of a set: Euclidean feature distance (default, ``samples`` ``(N, F)``; higher =
    more diverse) or ``similarity(a, b) -> (P,)`` on image batches (e.g. MS-SSIM; higher = less diverse).

    Args:
        samples: features ``(N, F)`` or images ``(N, C, ...)`` for a ``similarity``.
        max_pairs: evaluate a random subset of pairs (seeded) when the set is large.
    """
    n = samples.shape[0]
    if n < 2:
        raise ValueError(f"pairwise_diversity: needs at least 2 samples, got {n}.")
    if not torch.isfinite(samples).all():
        raise ValueError("pairwise_diversity: samples contain NaN or Inf.")
    i, j = torch.triu_indices(n, n, 1)
    if max_pairs is not None and len(i) > max_pairs:
        keep = torch.randperm(len(i), generator=torch.Generator().manual_seed(seed))[:max_pairs]
        i, j = i[keep], j[keep]
    i, j = i.to(samples.device), j.to(samples.device)
    if similarity is None:
        x = _features(samples, "pairwise_diversity")
        return (x[i] - x[j]).norm(dim=1).mean()
    values = torch.cat(
        [similarity(samples[i[s : s + 64]], samples[j[s : s + 64]]).flatten() for s in range(0, len(i), 64)]
    )
    return values.double().mean()
