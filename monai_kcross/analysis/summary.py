"""The summary of a scoring run (``summary.json``): per metric mean, std, median, a bootstrap 95 % interval of
the mean over cases, direction and counts of infinite and NaN values, plus everything that was not scored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..registry import get_metric_info

IDENTICAL = "synthesized image equals the reference"  # the note of an exact copy


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def summarise(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    failed: Mapping[str, str] | None = None,
    skipped: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    unpaired: Mapping[str, Sequence[str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Per-metric mean, std, median and a percentile-bootstrap 95 % interval of the mean over cases.

    Non-finite values (e.g. PSNR of identical images) are counted in ``n_infinite`` and ``n_nan`` and left out
    of the statistics; JSON gets ``null`` where a statistic is undefined. Also: ``failed`` cases,
    ``not_scored`` (``{case: {metric: reason}}`` of the NaN values, reasons from the rows' ``note``),
    ``unpaired`` files, ``identical`` cases (exact copies of the reference) and ``skipped_metrics``.
    """
    from .. import __version__

    rng = np.random.default_rng(seed)
    summary: dict[str, Any] = {"monai_kcross": __version__, "metrics": {}, **extra}
    for name in metrics:
        values = np.asarray([r["value"] for r in rows if r["metric"] == name], dtype=np.float64)
        finite = values[np.isfinite(values)]
        entry: dict[str, Any] = {
            "n": int(finite.size),
            "n_infinite": int(np.isinf(values).sum()),
            "n_nan": int(np.isnan(values).sum()),
        }
        entry["direction"] = get_metric_info(name).direction
        if finite.size:
            means = rng.choice(finite, size=(n_boot, finite.size)).mean(1)
            low, high = np.percentile(means, [2.5, 97.5])
            entry |= {
                "mean": _finite_or_none(finite.mean()),
                "std": _finite_or_none(finite.std(ddof=1)) if finite.size > 1 else None,
                "median": _finite_or_none(np.median(finite)),
                "ci95": [_finite_or_none(low), _finite_or_none(high)],
            }
        summary["metrics"][name] = entry
    not_scored: dict[str, dict[str, str]] = {}
    identical: list[str] = []
    for row in rows:
        notes = [text for text in str(row.get("note", "")).split("; ") if text]
        if IDENTICAL in notes and row["case"] not in identical:
            identical.append(row["case"])
        if np.isnan(row["value"]):
            reason = "; ".join(text for text in notes if text != IDENTICAL) or "NaN (no reason recorded)"
            not_scored.setdefault(row["case"], {})[row["metric"]] = reason
    summary["n_cases"] = len({r["case"] for r in rows})
    summary["failed"] = dict(failed or {})
    summary["not_scored"] = not_scored
    summary["unpaired"] = {
        "reference": list((unpaired or {}).get("reference", [])),
        "synthesized": list((unpaired or {}).get("synthesized", [])),
    }
    summary["identical"] = identical
    summary["skipped_metrics"] = dict(skipped or {})
    return summary


def incomplete(summary: Mapping[str, Any]) -> bool:
    """Whether a run left something unscored: failed cases, NaN values, or unpaired files (exit code 3)."""
    unpaired = summary.get("unpaired") or {}
    return bool(summary.get("failed") or summary.get("not_scored") or any(unpaired.values()))
