"""Agreement between metric values and quality ratings: SRCC, KRCC, PLCC/RMSE after a logistic fit, and the
K-CROSS paper's inconsistency, with bootstrap confidence intervals and metric directions handled.

* ``srcc`` / ``krcc`` -- Spearman / Kendall rank correlation between the *oriented* metric (lower-is-better
  metrics negated, so that a perfect metric always gives +1) and the ratings.
* ``plcc`` / ``rmse`` -- Pearson correlation and RMSE after mapping the oriented metric onto the ratings with the
  VQEG logistic (4 parameters: ``b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))``; or the 5-parameter form
  ``b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5``), fitted by least squares.
* ``inconsistency`` -- exactly the original K-CROSS code's regression mode (``tools/utilize.py``,
  ``calculate_metric_consistency``): min-max normalise the metric over the evaluated samples, take ``1 - x``
  for lower-is-better metrics, and average ``|normalised metric - label|``; lower is better. It depends on the
  label scale (the original used levels 0.0-0.9), on outliers and on the sample set, so it is reported for
  comparability with the paper; the correlations are the measures to trust.

Confidence intervals: percentile bootstrap (``n_boot`` resamples, seeded) over images, or -- with ``groups``
(e.g. the subject of each image) -- over whole groups, the honest choice when images of one subject are
correlated (slices, epochs of one generator); :func:`compare` also
bootstraps the *difference* between the best metric and the runner-up on the same resamples, which says
whether a lead is real.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AgreementResult", "agreement", "compare", "inconsistency", "logistic_fit"]

STATISTICS = ("srcc", "krcc", "plcc", "rmse", "inconsistency")
_HIGHER_BETTER = {"srcc": True, "krcc": True, "plcc": True, "rmse": False, "inconsistency": False}


def _logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    return b2 + (b1 - b2) / (1 + np.exp(-(x - b3) / (abs(b4) + 1e-12)))


def _logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    return b1 * (0.5 - 1 / (1 + np.exp(np.clip(b2 * (x - b3), -500, 500)))) + b4 * x + b5


def logistic_fit(x: np.ndarray, y: np.ndarray, parameters: int = 4) -> np.ndarray:
    """Ratings predicted from metric values ``x`` by the fitted VQEG logistic (4 or 5 parameters).

    Falls back to the least-squares line where the logistic fit fails or fits worse.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if parameters not in (4, 5):
        raise ValueError(f"parameters must be 4 or 5, got {parameters}.")
    from scipy import optimize  # imported here: the command line loads this module and must start at once

    slope, intercept = np.polyfit(x, y, 1)
    linear = slope * x + intercept
    if len(x) <= parameters:
        return linear
    # fit on standardised values: exact-zero starting points keep the finite-difference Jacobian well scaled
    z = (x - x.mean()) / (float(np.std(x)) or 1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if parameters == 4:
                beta, _ = optimize.curve_fit(_logistic4, z, y, p0=[y.max(), y.min(), 0.0, 1.0], maxfev=20000)
                fitted = _logistic4(z, *beta)
            else:
                p0 = [float(np.ptp(y)) or 1.0, 1.0, 0.0, 0.0, float(np.mean(y))]
                beta, _ = optimize.curve_fit(_logistic5, z, y, p0=p0, maxfev=20000)
                fitted = _logistic5(z, *beta)
    except (RuntimeError, optimize.OptimizeWarning, ValueError):
        return linear
    # a fit stuck in a poor local minimum is no better than the straight line it generalises
    return fitted if np.sum((fitted - y) ** 2) <= np.sum((linear - y) ** 2) else linear


def inconsistency(values: np.ndarray, labels: np.ndarray, higher_is_better: bool) -> float:
    """The original K-CROSS inconsistency: mean ``|minmax(metric) - label|`` with lower-is-better metrics flipped."""
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    span = values.max() - values.min()
    normalised = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    if not higher_is_better:
        normalised = 1 - normalised
    return float(np.mean(np.abs(normalised - labels)))


def _statistics(values: np.ndarray, labels: np.ndarray, higher_is_better: bool, parameters: int) -> dict[str, float]:
    from scipy import stats

    oriented = values if higher_is_better else -values
    predicted = logistic_fit(oriented, labels, parameters)
    plcc = float(stats.pearsonr(predicted, labels).statistic) if np.std(predicted) > 0 else math.nan
    return {
        "srcc": float(stats.spearmanr(oriented, labels).statistic),
        "krcc": float(stats.kendalltau(oriented, labels).statistic),
        "plcc": plcc,
        "rmse": float(np.sqrt(np.mean((predicted - labels) ** 2))),
        "inconsistency": inconsistency(values, labels, higher_is_better),
    }


@dataclass
class AgreementResult:
    """Point estimates and percentile-bootstrap confidence intervals of the agreement statistics."""

    n: int
    estimates: dict[str, float]
    intervals: dict[str, tuple[float, float]]

    def row(self, statistic: str, digits: int = 3) -> str:
        low, high = self.intervals[statistic]
        return f"{self.estimates[statistic]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _group_ids(groups: Sequence[Any] | None, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    if len(groups) != n:
        raise ValueError(f"groups must give one group per image ({n}), got {len(groups)}.")
    return np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)[1]


def agreement(
    values: Sequence[float],
    labels: Sequence[float],
    higher_is_better: bool = True,
    n_boot: int = 1000,
    confidence: float = 0.95,
    parameters: int = 4,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
) -> AgreementResult:
    """All agreement statistics of one metric against ratings, with bootstrap confidence intervals.

    Args:
        values: metric values, one per image (NaN pairs are dropped).
        labels: quality ratings on the scale the inconsistency should use (e.g. in ``[0, 1]``).
        higher_is_better: the metric's direction (lower-is-better metrics are flipped).
        n_boot: bootstrap resamples (0 disables the intervals).
        confidence: interval coverage.
        parameters: 4- or 5-parameter logistic for PLCC and RMSE.
        seed: bootstrap seed.
        groups: optional group of each image (e.g. subject id): the bootstrap then resamples whole groups.
    """
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if values.shape != labels.shape or values.ndim != 1:
        raise ValueError(f"values and labels must be 1-D of equal length, got {values.shape} and {labels.shape}.")
    result = compare({"m": (values, higher_is_better)}, labels, n_boot, confidence, parameters, seed, groups=groups)
    return result["results"]["m"]


def _bootstrap(
    metrics: Mapping[str, tuple[np.ndarray, bool]],
    labels: np.ndarray,
    n_boot: int,
    parameters: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = len(labels)
    members = None if groups is None else [np.flatnonzero(groups == g) for g in np.unique(groups)]
    out = {name: {s: np.empty(n_boot) for s in STATISTICS} for name in metrics}
    for b in range(n_boot):
        if members is None:
            index = rng.integers(0, n, n)
        else:
            index = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        for name, (values, higher) in metrics.items():
            if np.ptp(values[index]) == 0 or np.ptp(labels[index]) == 0:
                for s in STATISTICS:
                    out[name][s][b] = math.nan
                continue
            for s, value in _statistics(values[index], labels[index], higher, parameters).items():
                out[name][s][b] = value
    return out


def _intervals(
    samples: dict[str, np.ndarray], confidence: float, estimates: dict[str, float]
) -> dict[str, tuple[float, float]]:
    alpha = (1 - confidence) / 2
    intervals = {}
    for statistic, values in samples.items():
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            intervals[statistic] = (estimates[statistic], estimates[statistic])
        else:
            intervals[statistic] = (float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha)))
    return intervals


def _lead(
    estimates: dict[str, dict[str, float]],
    samples: dict[str, dict[str, np.ndarray]] | None,
    first: str,
    second: str,
    statistic: str,
    confidence: float,
) -> tuple[float, float, float]:
    """Advantage of ``first`` over ``second`` (positive = better) with its bootstrap interval."""
    sign = 1 if _HIGHER_BETTER[statistic] else -1
    point = sign * (estimates[first][statistic] - estimates[second][statistic])
    if samples is None:
        return point, math.nan, math.nan
    difference = sign * (samples[first][statistic] - samples[second][statistic])
    finite = difference[np.isfinite(difference)]
    if not len(finite):
        return point, math.nan, math.nan
    alpha = (1 - confidence) / 2
    return point, float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))


def compare(
    metrics: Mapping[str, tuple[Sequence[float], bool]],
    labels: Sequence[float],
    n_boot: int = 1000,
    confidence: float = 0.95,
    parameters: int = 4,
    seed: int = 0,
    contender: str | None = None,
    rivals: Sequence[str] | None = None,
    groups: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Agreement of several metrics with the same ratings, bootstrapped on shared resamples.

    Args:
        metrics: ``{name: (values, higher_is_better)}``, all on the same images as ``labels``.
        contender, rivals: also test ``contender`` against the best of ``rivals`` (default: all other metrics)
            per statistic -- e.g. K-CROSS against the best baseline, leaving its own ablations out.
        groups: optional group of each image (e.g. subject id): the bootstrap resamples whole groups.

    Returns:
        ``{"results": {name: AgreementResult}, "leader": {statistic: name}, "lead": {statistic: (difference,
        low, high)}, "n": int}`` -- the best metric per statistic and the bootstrap interval of its advantage over
        the runner-up (an interval excluding 0 means the lead is real at that confidence); with a contender, also
        ``"contender": {statistic: (rival, difference, low, high)}`` (positive = the contender is better).
    """
    y_all = np.asarray(labels, dtype=np.float64)
    keep = np.isfinite(y_all)
    for values, _ in metrics.values():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != y_all.shape:
            raise ValueError(f"every metric needs one value per label ({y_all.shape}), got {values.shape}.")
        keep &= np.isfinite(values)
    if keep.sum() < 3:
        raise ValueError(f"need at least 3 images where every metric and the label are finite, got {int(keep.sum())}.")
    group_ids = _group_ids(groups, len(y_all))
    group_ids = None if group_ids is None else group_ids[keep]
    y = y_all[keep]
    arrays = {name: (np.asarray(values, dtype=np.float64)[keep], higher) for name, (values, higher) in metrics.items()}
    estimates = {name: _statistics(v, y, h, parameters) for name, (v, h) in arrays.items()}
    samples = _bootstrap(arrays, y, n_boot, parameters, seed, group_ids) if n_boot else None
    results = {
        name: AgreementResult(
            len(y),
            estimates[name],
            _intervals(samples[name], confidence, estimates[name])
            if samples
            else {s: (math.nan, math.nan) for s in STATISTICS},
        )
        for name in arrays
    }
    out: dict[str, Any] = {"results": results, "leader": {}, "lead": {}, "n": int(keep.sum())}
    out["resampled"] = "images" if group_ids is None else f"{len(np.unique(group_ids))} groups"
    if contender is not None:
        if contender not in arrays:
            raise ValueError(f"contender {contender!r} is not among the metrics {list(arrays)}.")
        rivals = [r for r in (rivals if rivals is not None else arrays) if r in arrays and r != contender]
        out["contender"] = {}
    for statistic in STATISTICS:
        sign = 1 if _HIGHER_BETTER[statistic] else -1
        ranked = sorted(arrays, key=lambda n: -sign * estimates[n][statistic])
        out["leader"][statistic] = ranked[0]
        if len(ranked) > 1:
            out["lead"][statistic] = _lead(estimates, samples, ranked[0], ranked[1], statistic, confidence)
        if contender is not None and rivals:
            best = max(rivals, key=lambda n: sign * estimates[n][statistic])
            out["contender"][statistic] = (best, *_lead(estimates, samples, contender, best, statistic, confidence))
    return out
