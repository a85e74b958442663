"""The K-CROSS training losses (paper section III-C), as plain functions of tensors.

* :func:`frequency_loss` -- focal-frequency style distance between complex maps: each complex value is a point
  ``A e^{i phi}`` in the plane (amplitude, phase), the distance is ``|z_1 - z_2|^2``, weighted per map by
  ``(|z_1 - z_2| / max)^alpha`` (detached, as Jiang et al. 2021) and averaged; lists of maps (the complex
  encoder's layers) are averaged.
* :func:`mmd_loss` -- squared maximum mean discrepancy, biased estimator, with a sum of RBF kernels.
* :func:`laplacian_loss` -- L1 distance of the Laplacian-filtered images (high frequencies of the lesion).
* :func:`tumour_loss` -- Laplacian loss plus a perceptual distance (the package's LPIPS when its ImageNet
  weights are installed, otherwise the in-domain feature distance).
* :func:`structure_loss` -- L1 reconstruction; :func:`inconsistency_loss` -- MSE to quality labels;
  :func:`rating_loss` (:class:`RatingLoss`) -- that MSE plus the same error on the penalty scale
  (``score = exp(-penalty)``), so that very poor syntheses keep a gradient;
  :func:`within_group_loss` -- MSE after removing each subject's mean;
* :func:`ranking_loss` and :func:`severity_order_loss` -- hinge losses that order the penalties of a reference's
  variants: benign below harmful, and non-decreasing with the severity of one kind of change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..functional.fourier import to_kspace
from ..networks.complex import to_complex, to_stacked
from ..networks.kcross import KCross, pad_to_multiple

__all__ = [
    "RatingLoss",
    "frequency_loss",
    "inconsistency_loss",
    "laplacian_loss",
    "mmd_loss",
    "ranking_loss",
    "rating_loss",
    "severity_order_loss",
    "stage1_losses",
    "structure_loss",
    "tumour_loss",
    "within_group_loss",
]


def frequency_loss(
    prediction: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor | Sequence[torch.Tensor], alpha: float = 1.0
) -> torch.Tensor:
    """Focal frequency distance between complex tensors (or lists of them, averaged); 0 iff equal.

    Args:
        prediction, target: complex tensors ``(B, C, *spatial)`` of equal shapes (or equal-length lists).
        alpha: focusing exponent of the per-element weights (0 gives the plain mean squared distance).
    """
    predictions = [prediction] if isinstance(prediction, torch.Tensor) else list(prediction)
    targets = [target] if isinstance(target, torch.Tensor) else list(target)
    if len(predictions) != len(targets) or not predictions:
        raise ValueError(f"frequency_loss needs equally many maps, got {len(predictions)} and {len(targets)}.")
    total = 0
    for a, b in zip(predictions, targets):
        if a.shape != b.shape or not (a.is_complex() and b.is_complex()):
            raise ValueError(f"frequency_loss compares complex maps of one shape, got {a.shape}, {b.shape}.")
        distance = (a - b).abs().square()
        if alpha:
            weight = distance.detach().sqrt() ** alpha
            weight = weight / weight.flatten(1).amax(1).clamp_min(1e-12).view(-1, *[1] * (weight.ndim - 1))
            distance = weight * distance
        total = total + distance.mean()
    return total / len(predictions)


def _rbf_sum(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float], weights: Sequence[float]) -> torch.Tensor:
    squared = torch.cdist(a, b).square()
    return sum(w * torch.exp(-squared / (2 * s**2)) for s, w in zip(bandwidths, weights))


def mmd_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    bandwidths: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Squared MMD between samples ``x`` ``(N, ...)`` and ``y`` ``(M, ...)`` (biased: diagonals included).

    ``k(a, b) = sum_j w_j exp(-|a - b|^2 / (2 s_j^2))``. Default bandwidths are ``s * (0.25, 0.5, 1, 2, 4)`` with
    ``s`` the median pairwise distance of the pooled samples (detached), weights equal (1/5 each).
    """
    x, y = x.flatten(1), y.flatten(1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"mmd_loss needs features of one size, got {x.shape[1]} and {y.shape[1]}.")
    if bandwidths is None:
        pooled = torch.cat([x, y]).detach()
        distances = torch.cdist(pooled, pooled)
        median = distances[distances > 0].median() if bool((distances > 0).any()) else torch.tensor(1.0)
        bandwidths = [float(median) * f for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    weights = weights if weights is not None else [1.0 / len(bandwidths)] * len(bandwidths)
    return (
        _rbf_sum(x, x, bandwidths, weights).mean()
        + _rbf_sum(y, y, bandwidths, weights).mean()
        - 2 * _rbf_sum(x, y, bandwidths, weights).mean()
    )


def laplacian_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the 3x3 Laplacians of images ``(B, C, H, W)``."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=prediction.dtype)
    kernel = kernel.to(prediction.device).view(1, 1, 3, 3).repeat(prediction.shape[1], 1, 1, 1)

    def laplacian(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])

    return (laplacian(prediction) - laplacian(target)).abs().mean()


_FEATURES: dict[str, torch.nn.Module] = {}


def _perceptual(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS-VGG when ImageNet weights are installed, else the segmenter-feature distance (both differentiable;
    the latter without the rank normalisation of the metric, which has no gradient)."""
    from ..perceptual import lpips
    from ..perceptual.feature_distance import DEFAULT_LAYERS, FeatureDistance
    from ..perceptual.weights import find_weights

    try:
        find_weights("vgg")
    except FileNotFoundError:
        device = str(prediction.device)
        if device not in _FEATURES:
            from ..networks.segmenter import load_segmenter

            _FEATURES[device] = FeatureDistance(load_segmenter(device=device), DEFAULT_LAYERS)
        return _FEATURES[device](prediction.float(), target.float()).mean()
    return lpips(prediction, target, data_range=1.0).mean()


def tumour_loss(prediction: torch.Tensor, target: torch.Tensor, perceptual_weight: float = 1.0) -> torch.Tensor:
    """Laplacian loss plus a perceptual distance between (masked) lesion images ``(B, 1, H, W)`` in [0, 1]."""
    loss = laplacian_loss(prediction, target)
    if perceptual_weight:
        loss = loss + perceptual_weight * _perceptual(prediction, target)
    return loss


def structure_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 reconstruction loss."""
    return (prediction - target).abs().mean()


def inconsistency_loss(score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """MSE between predicted scores and quality labels (both in [0, 1])."""
    return F.mse_loss(score.reshape(-1), label.reshape(-1).to(score.dtype))


def rating_loss(
    score: torch.Tensor, label: torch.Tensor, penalty: torch.Tensor | None = None, penalty_weight: float = 0.1
) -> torch.Tensor:
    """MSE between K-CROSS scores and quality labels plus ``penalty_weight`` x the MSE between the penalties and
    ``-log(label)`` (labels clamped to ``[1e-3, 1]``).

    With ``score = exp(-penalty)`` the score's gradient ``-score`` vanishes for poor syntheses (large penalties);
    the penalty term keeps their gradient. ``penalty`` defaults to ``-log(score)`` (exact while ``score`` is above
    float underflow, i.e. penalties below about 87 in float32).

    Args:
        score: ``(N,)`` or ``(N, 1)`` scores in ``(0, 1]``.
        label: quality labels in ``[0, 1]``, ``N`` elements.
        penalty: ``(N,)`` penalties (``KCross.heads(...)["penalty"]``), optional.
        penalty_weight: weight of the penalty term.
    """
    score = score.reshape(-1)
    label = label.reshape(-1).to(score.dtype)
    if penalty is None:
        penalty = -torch.log(score.clamp_min(torch.finfo(score.dtype).tiny))
    target = -torch.log(label.clamp(1e-3, 1.0))
    return F.mse_loss(score, label) + penalty_weight * F.mse_loss(penalty.reshape(-1), target)


class RatingLoss(nn.Module):
    """:func:`rating_loss` as a loss module ``loss(score, label)`` (the fine-tuning loss of the K-CROSS bundle's
    ``configs/train.json``; the penalty is recovered from the score)."""

    def __init__(self, penalty_weight: float = 0.1) -> None:
        super().__init__()
        self.penalty_weight = penalty_weight

    def forward(self, score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return rating_loss(score, label, penalty_weight=self.penalty_weight)


def within_group_loss(score: torch.Tensor, label: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """MSE between scores and labels after subtracting each group's mean from both (e.g. per subject).

    The pooled MSE is lowered as much by learning which subjects are hard as by ranking the images of one
    subject; this term only rewards the latter -- what comparing synthesis models on the same test cases needs.
    Groups with a single image in the batch do not contribute (zero when none has two).

    Args:
        score, label: ``(N,)`` (any shape with ``N`` elements).
        groups: ``(N,)`` integer group id of each image.
    """
    score, label = score.reshape(-1), label.reshape(-1).to(score.dtype)
    _, inverse, counts = torch.unique(groups.reshape(-1).to(score.device), return_inverse=True, return_counts=True)
    sizes = counts.to(score.dtype)

    def centred(x: torch.Tensor) -> torch.Tensor:
        means = torch.zeros(len(counts), dtype=x.dtype, device=x.device).index_add(0, inverse, x) / sizes
        return x - means[inverse]

    keep = counts[inverse] > 1
    if not bool(keep.any()):
        return score.sum() * 0.0
    return F.mse_loss(centred(score)[keep], centred(label)[keep])


def ranking_loss(
    penalty: torch.Tensor, groups: torch.Tensor, harmful: torch.Tensor, margin: float = 0.1
) -> torch.Tensor:
    """Hinge loss asking every benign variant of a reference to be penalised less than every harmful one.

    ``mean(relu(margin - (p_harmful - p_benign)))`` over all (benign, harmful) pairs that share a group (a
    reference); 0 when no group has both kinds.

    Args:
        penalty: ``(N,)`` penalties (``score = exp(-penalty)``).
        groups: ``(N,)`` integer reference id of each variant.
        harmful: ``(N,)`` bool, whether each variant is a harmful change.
        margin: required gap in penalty units.
    """
    penalty, groups, harmful = penalty.reshape(-1), groups.reshape(-1), harmful.reshape(-1).bool()
    same = groups[:, None] == groups[None, :]
    pairs = same & ~harmful[:, None] & harmful[None, :]  # rows benign, columns harmful
    if not bool(pairs.any()):
        return penalty.sum() * 0.0
    gaps = penalty[None, :] - penalty[:, None]
    return F.relu(margin - gaps)[pairs].mean()


def severity_order_loss(
    penalty: torch.Tensor, groups: torch.Tensor, series: torch.Tensor, level: torch.Tensor
) -> torch.Tensor:
    """Hinge loss asking penalties not to fall as the severity of one kind of change grows on one reference.

    ``mean(relu(p_low - p_high))`` over pairs with the same group and series and a lower level; 0 without pairs.

    Args:
        penalty, groups: as in :func:`ranking_loss`.
        series: ``(N,)`` integer id of the graded kind of change (negative: not graded).
        level: ``(N,)`` severity of each variant.
    """
    penalty, groups, series, level = (t.reshape(-1) for t in (penalty, groups, series, level))
    pairs = (groups[:, None] == groups[None, :]) & (series[:, None] == series[None, :]) & (series[:, None] >= 0)
    pairs &= level[:, None] < level[None, :]
    if not bool(pairs.any()):
        return penalty.sum() * 0.0
    return F.relu(penalty[:, None] - penalty[None, :])[pairs].mean()


def stage1_losses(
    network: KCross, source: torch.Tensor, target: torch.Tensor, lesion: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Stage-1 losses of the K-CROSS encoders on paired slices ``(B, 1, H, W)`` (unit range) and lesion masks.

    Returns ``{"frequency", "structure", "similarity", "tumour", "total"}`` (all weights 1, paper eq. 19).
    """
    source, target, lesion = pad_to_multiple(source), pad_to_multiple(target), pad_to_multiple(lesion.float())
    k = to_kspace(target.to(torch.complex64), (-2, -1))
    reconstruction, _ = network.complex_net(to_stacked(k))
    losses = {"frequency": frequency_loss(to_complex(reconstruction), k)}
    rec_source, feat_source = network.structure_net(source)
    rec_target, feat_target = network.structure_net(target)
    losses["structure"] = structure_loss(rec_source, source) + structure_loss(rec_target, target)
    losses["similarity"] = mmd_loss(
        F.adaptive_avg_pool2d(feat_source[-1], 4), F.adaptive_avg_pool2d(feat_target[-1], 4)
    )
    masked = target * lesion
    rec_lesion, _ = network.tumour_net(masked)
    has_lesion = lesion.flatten(1).sum(1) >= network.config.min_lesion
    if bool(has_lesion.any()):
        losses["tumour"] = tumour_loss(rec_lesion[has_lesion] * lesion[has_lesion], masked[has_lesion])
    else:
        losses["tumour"] = structure_loss(rec_lesion, masked)
    losses["total"] = sum(losses.values())
    return losses
