"""The metric-versus-quality benchmark: every metric of the package against the labels of a NIRPS-style split.

For each synthesized slice of the split, every full-reference metric is computed against its reference (whole
slice, intensity policy ``"reference"``; MS-SSIM with as many scales as the slice allows), K-CROSS with its
branch ablations and the healthy-mode variant, and the agreement statistics of
:mod:`monai_kcross.analysis.agreement` are tabulated per generator, per contrast pair and overall, with bootstrap
intervals and the lead of the best metric over the runner-up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..metrics.kcross import kcross
from ..networks.checkpoints import load_kcross
from ..progress import tqdm
from ..registry import default_options, get_metric_info
from .agreement import compare

__all__ = ["BASELINES", "KCROSS_VARIANTS", "format_table", "run_benchmark"]

BASELINES = ("mae", "psnr", "ssim", "ms_ssim", "nlpd", "gmsd", "haarpsi", "deepiqa", "lpips", "dists")
KCROSS_VARIANTS = {
    "kcross": ("complex", "structure", "tumour"),
    "kcross[complex]": ("complex",),
    "kcross[structure]": ("structure",),
    "kcross[tumour]": ("tumour",),
    "kcross[healthy]": ("complex", "structure"),
}


def _scores(
    split: dict[str, Any], metrics: Sequence[str], network: Any, batch_size: int, progress: bool
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Metric values per slice; metrics whose weights are missing are skipped (reason returned)."""
    values: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    n = len(split["q"])
    shape = tuple(split["reference"].shape[-2:])
    for name in tqdm(metrics, desc="metrics", disable=not progress):
        info = get_metric_info(name)
        options = default_options(name, shape)
        try:
            chunks = [
                info.score(
                    split["synthesized"][i : i + batch_size],
                    split["reference"][i : i + batch_size],
                    inputs={"source": split["source"][i : i + batch_size]},
                    models={"network": network},
                    **options,
                )[:, 0]
                for i in range(0, n, batch_size)
            ]
        except FileNotFoundError as error:
            skipped[name] = str(error).split(";")[0]
            continue
        values[name] = torch.cat(chunks).double().tolist()
    if network is not None:
        for start in tqdm(range(0, n, batch_size), desc="K-CROSS", disable=not progress):
            part = slice(start, start + batch_size)
            result = kcross(
                split["synthesized"][part],
                split["reference"][part],
                split["source"][part],
                network=network,
                return_branches=True,
                data_range="reference",
            )
            healthy = kcross(
                split["synthesized"][part],
                split["reference"][part],
                split["source"][part],
                network=network,
                branches=KCROSS_VARIANTS["kcross[healthy]"],
                data_range="reference",
            )
            for key, branch in (
                ("kcross", "kcross"),
                ("kcross[complex]", "complex"),
                ("kcross[structure]", "structure"),
                ("kcross[tumour]", "tumour"),
            ):
                values.setdefault(key, []).extend(result[branch][:, 0].double().tolist())
            values.setdefault("kcross[healthy]", []).extend(healthy[:, 0].double().tolist())
    return {k: np.asarray(v) for k, v in values.items()}, skipped


def _direction(name: str) -> bool:
    """Whether higher is better for a registry name or a K-CROSS branch variant (``kcross[complex]``)."""
    return get_metric_info(name.partition("[")[0]).higher_is_better


def run_benchmark(
    datalist: str | Path,
    split: str = "held_out",
    metrics: Sequence[str] = BASELINES,
    network: Any = "default",
    batch_size: int = 32,
    n_boot: int = 1000,
    limit: int | None = None,
    min_group: int = 10,
    by_subject: bool = True,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a split with every metric and tabulate agreement with its quality labels.

    Args:
        datalist: NIRPS-style datalist.
        split: which split: ``"held_out"`` (default: unseen subjects, with the unseen architecture's outputs on
            them; see :func:`~monai_kcross.training.kcross.split_entries`), or a datalist split such as ``"test"``.
        metrics: baseline registry names (missing weights are reported as skipped, not failed).
        network: K-CROSS network, path, ``"default"`` (the shipped bundle) or ``None`` (baselines only).
        batch_size: slices per call.
        n_boot: bootstrap resamples for the intervals.
        limit: use the first ``limit`` entries (quick runs).
        min_group: smallest generator / contrast-pair group that gets its own table.
        by_subject: bootstrap over subjects (the datalist's ``case``), not images -- the images of one subject
            (epochs, generators, contrast pairs) are correlated, and resampling them one by one gives intervals
            that are too narrow.
        out: optional folder for ``scores.csv`` (one row per slice and metric) and ``benchmark.json``.
        progress: show progress bars.

    Returns:
        ``{"overall": compare(...), "by_generator": {model: ...}, "by_pair": {pair: ...}, "skipped": {...}}``,
        with ``by_subject`` (each subject alone, images resampled) and ``within_subject`` (see
        :func:`within_subject`) when ``by_subject``.
    """
    from ..training.kcross import load_split

    data = load_split(datalist, split, limit)
    entries = data["entries"]
    if isinstance(network, (str, Path)):
        network = load_kcross(None if network == "default" else network)
    values, skipped = _scores(data, metrics, network, batch_size, progress)
    labels = data["q"].numpy().astype(np.float64)
    table = {name: (v, _direction(name)) for name, v in values.items()}
    baselines = [name for name in table if name not in KCROSS_VARIANTS]
    versus: dict[str, Any] = {"contender": "kcross", "rivals": baselines} if "kcross" in table and baselines else {}
    cases = np.asarray([entry["case"] for entry in entries]) if by_subject else None
    report: dict[str, Any] = {
        "split": split,
        "n": len(labels),
        "skipped": skipped,
        "overall": compare(table, labels, n_boot=n_boot, groups=cases, **versus),
    }
    splits = [("by_generator", "model"), ("by_pair", None)] + ([("by_subject", "case")] if by_subject else [])
    for key, field in splits:
        groups: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            group = entry[field] if field else f"{entry['source_contrast']}->{entry['target_contrast']}"
            groups.setdefault(group, []).append(index)
        report[key] = {
            group: compare(
                {n: (v[idx], h) for n, (v, h) in table.items()},
                labels[idx],
                n_boot=n_boot,
                groups=None if cases is None or key == "by_subject" else cases[idx],
                **versus,
            )
            for group, idx in groups.items()
            if len(idx) >= min_group
        }
    if report.get("by_subject"):
        report["within_subject"] = within_subject(report["by_subject"])
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        rows = ["path,metric,value,label"]
        for name, v in values.items():
            rows += [f"{e['synthesized']},{name},{x:.6g},{y:.4f}" for e, x, y in zip(entries, v, labels)]
        (folder / "scores.csv").write_text("\n".join(rows) + "\n")
        (folder / "benchmark.json").write_text(json.dumps(jsonable(report), indent=1))
    return report


def within_subject(by_subject: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Mean over subjects of each metric's per-subject agreement, and on how many subjects it was best.

    The pooled statistics mix two abilities: ranking the images of one subject (which synthesis is better on
    the same anatomy, what a model comparison needs) and ranking subjects against each other (which cases are
    hard). This separates the first.

    Returns:
        ``{metric: {"<statistic>": mean over subjects, "<statistic>_wins": subjects where it led}}``.
    """
    summary: dict[str, dict[str, float]] = {}
    for comparison in by_subject.values():
        for name, result in comparison["results"].items():
            row = summary.setdefault(name, {})
            for statistic, value in result.estimates.items():
                row[statistic] = row.get(statistic, 0.0) + value / len(by_subject)
                wins = f"{statistic}_wins"
                row[wins] = row.get(wins, 0) + int(comparison["leader"].get(statistic) == name)
    return summary


def jsonable(report: dict[str, Any]) -> Any:
    """A benchmark or comparison report with its :class:`AgreementResult` objects as plain dicts (for JSON)."""
    if isinstance(report, dict):
        return {k: jsonable(v) for k, v in report.items()}
    if hasattr(report, "estimates"):
        return {"n": report.n, "estimates": report.estimates, "intervals": report.intervals}
    if isinstance(report, (list, tuple)):
        return [jsonable(v) for v in report]
    return report


def _verdict(low: float) -> str:
    return "real" if low > 0 else "not significant"


def format_table(comparison: dict[str, Any], statistics: Sequence[str] = ("inconsistency", "srcc")) -> str:
    """A text table: one row per metric, the statistics with their intervals, the leader marked with *."""
    results = comparison["results"]
    header = f"{'metric':<18}" + "".join(f"{s + ' [95% CI]':>30}" for s in statistics)
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        cells = []
        for statistic in statistics:
            mark = "*" if comparison["leader"].get(statistic) == name else " "
            cells.append(f"{result.row(statistic)}{mark}".rjust(30))
        lines.append(f"{name:<18}" + "".join(cells))
    for statistic in statistics:
        if statistic in comparison["lead"]:
            difference, low, high = comparison["lead"][statistic]
            lines.append(
                f"lead of {comparison['leader'][statistic]} over the runner-up on {statistic}: "
                f"{difference:+.3f} [{low:+.3f}, {high:+.3f}] ({_verdict(low)})"
            )
        if statistic in comparison.get("contender", {}):
            rival, difference, low, high = comparison["contender"][statistic]
            lines.append(
                f"kcross vs the best baseline ({rival}) on {statistic}: {difference:+.3f} [{low:+.3f}, {high:+.3f}]"
                f" ({_verdict(low) if difference > 0 else 'behind'})"
            )
    lines.append(f"intervals: percentile bootstrap over {comparison.get('resampled', 'images')}")
    return "\n".join(lines)
