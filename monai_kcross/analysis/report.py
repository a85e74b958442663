"""A self-contained HTML report of a scoring run: summary table, per-metric distributions, worst cases.

For the worst cases -- ranked by the first metric of the panel that has an ideal value and a bounded range
(SSIM, MS-SSIM, HaarPSI, GMSD, ...; K-CROSS only when nothing else was scored), exact copies of the reference
left out and listed apart -- the report shows the axial slice with the largest error inside the evaluation mask
(the reference's foreground without one): reference, synthesized, absolute difference, and the difference of
k-space log-amplitudes ``|log(1 + |F(synthesized)|) - log(1 + |F(reference)|)|`` (centred 2-D FFT of the slice),
which makes aliasing, ringing and lost high frequencies visible.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["kspace_log_amplitude", "write_report"]


def kspace_log_amplitude(image: torch.Tensor) -> torch.Tensor:
    """``log(1 + |F(x)|)`` of a 2-D image ``(H, W)`` with the zero frequency centred (orthonormal FFT)."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(image.double(), norm="ortho"), dim=(-2, -1))
    return torch.log1p(spectrum.abs())


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _distributions(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str:
    from matplotlib.figure import Figure

    columns = min(4, len(metrics))
    lines = -(-len(metrics) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * lines))
    for index, name in enumerate(metrics):
        axis = figure.add_subplot(lines, columns, index + 1)
        values = np.asarray([r["value"] for r in rows if r["metric"] == name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            axis.hist(values, bins=min(30, max(5, values.size // 2)), color="#4c72b0")
        axis.set_title(f"{name} (n={values.size})", fontsize=9)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    return _png(figure)


def _worst_slice(
    reference: torch.Tensor, synthesized: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The 2-D slice (first channel) with the largest absolute error inside ``mask`` (else the reference's
    foreground: above 1 % of its range), and its description."""
    reference, synthesized = reference[0].double(), synthesized[0].double()
    region = mask[0] > 0 if mask is not None else None
    if reference.ndim == 3 and reference.shape[-1] == 1:
        reference, synthesized = reference[..., 0], synthesized[..., 0]
        region = region[..., 0] if region is not None else None
    if reference.ndim == 2:
        return reference, synthesized, "2-D image"
    if region is None or not bool(region.any()):
        low, high = reference.min(), reference.max()
        region = reference > low + 0.01 * (high - low)
    error = ((synthesized - reference).abs() * region).sum(dim=(0, 1))
    if not bool(error.any()):  # no error inside the region: the largest error anywhere
        error = (synthesized - reference).abs().sum(dim=(0, 1))
    index = int(error.argmax())
    inside = " inside the mask" if mask is not None else ""
    return reference[..., index], synthesized[..., index], f"axial slice {index} of {reference.shape[-1]}{inside}"


def _case_figure(images: Mapping[str, torch.Tensor]) -> tuple[str, str]:
    from matplotlib.figure import Figure

    reference, synthesized, where = _worst_slice(images["reference"], images["synthesized"], images.get("mask"))
    low, high = float(reference.min()), float(reference.max())
    scale = max(high - low, 1e-12)
    kspace = (kspace_log_amplitude((synthesized - low) / scale) - kspace_log_amplitude((reference - low) / scale)).abs()
    panels = (
        ("reference", reference, "gray", (low, high)),
        ("synthesized", synthesized, "gray", (low, high)),
        ("|synthesized - reference|", (synthesized - reference).abs(), "magma", (0, scale * 0.5)),
        ("k-space |Δ log-amplitude|", kspace, "viridis", (0, float(kspace.max()) or 1.0)),
    )
    figure = Figure(figsize=(12, 3.3))
    for index, (title, image, colours, (vmin, vmax)) in enumerate(panels):
        axis = figure.add_subplot(1, 4, index + 1)
        axis.imshow(image.T.numpy(), cmap=colours, vmin=vmin, vmax=vmax, origin="lower")
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    return _png(figure), where


def _ranking_metric(summary: Mapping[str, Any]) -> tuple[str, bool] | None:
    """The metric the worst cases are ranked by: the first scored formula (``kind="full-reference"``: its worst
    slice shows the largest pixel error) with an ideal value and a bounded range (identical images reach it), else
    the first scored one with an ideal value and a bounded range (learned ones such as K-CROSS included), else the
    first with an ideal value, else the first scored."""
    from ..registry import get_metric_info

    scored = [name for name, entry in summary["metrics"].items() if entry["n"]]
    infos = {name: get_metric_info(name) for name in scored}
    for usable in (
        lambda info: info.kind == "full-reference" and info.ideal is not None and all(np.isfinite(info.value_range)),
        lambda info: info.ideal is not None and all(np.isfinite(info.value_range)),
        lambda info: info.ideal is not None,
    ):
        for name, info in infos.items():
            if usable(info):
                return name, info.higher_is_better
    if scored:
        return scored[0], summary["metrics"][scored[0]]["direction"] == "higher is better"
    return None


def _problems(parts: list[str], summary: Mapping[str, Any]) -> None:
    """Lists of what was not scored: failed cases, NaN values with reasons, unpaired files, exact copies."""
    sections = [
        ("Cases that could not be scored", list(summary["failed"].values())),
        (
            "Values that could not be computed (NaN)",
            [
                f"{case}: {m}: {why}"
                for case, reasons in summary.get("not_scored", {}).items()
                for m, why in reasons.items()
            ],
        ),
        ("References without a synthesized image", summary.get("unpaired", {}).get("reference", [])),
        ("Synthesized images without a reference", summary.get("unpaired", {}).get("synthesized", [])),
        ("Exact copies of the reference (left out of the worst cases)", summary.get("identical", [])),
    ]
    for title, items in sections:
        if items:
            parts.append(f"<h3>{title} ({len(items)})</h3><ul>")
            parts += [f"<li>{html.escape(str(item))}</li>" for item in items]
            parts.append("</ul>")


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}"


def write_report(
    out: str | Path,
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    cases: Sequence[Mapping[str, str]],
    worst: int = 3,
) -> Path:
    """Write ``out/report.html`` (images embedded; replaced atomically) and return its path.

    Args:
        out: output folder of the run.
        rows: ``scores.csv`` rows (``case``, ``metric``, ``value``).
        summary: :func:`~monai_kcross.analysis.scoring.summarise` output.
        cases: the run's cases (file paths, re-read for the worst-case figures).
        worst: how many worst cases to show.
    """
    from .case_io import CaseError, load_case
    from .run_folder import write_atomically

    out = Path(out)
    metrics = list(summary["metrics"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>monai-kcross report</title>",
        "<style>body{font-family:sans-serif;max-width:1250px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}</style></head><body>",
        f"<h1>monai-kcross scoring report</h1><p>{summary['n_cases']} cases scored with monai-kcross "
        f"{html.escape(str(summary.get('monai_kcross', '')))}; {len(summary['failed'])} could not be scored, "
        f"{sum(map(len, summary.get('not_scored', {}).values()))} value(s) are NaN, "
        f"{sum(map(len, summary.get('unpaired', {}).values()))} file(s) unpaired.</p>",
        "<h2>Summary</h2><table><tr><th>metric</th><th>direction</th><th>n</th><th>mean</th><th>std</th>"
        "<th>median</th><th>95 % CI of the mean</th></tr>",
    ]
    for name, entry in summary["metrics"].items():
        low, high = entry.get("ci95", [None, None])
        parts.append(
            f"<tr><td>{html.escape(name)}</td><td>{entry['direction']}</td><td>{entry['n']}</td>"
            f"<td>{_number(entry.get('mean'))}</td><td>{_number(entry.get('std'))}</td>"
            f"<td>{_number(entry.get('median'))}</td><td>[{_number(low)}, {_number(high)}]</td></tr>"
        )
    parts.append("</table>")
    if summary["skipped_metrics"]:
        parts.append("<h3>Skipped metrics</h3><ul>")
        parts += [f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in summary["skipped_metrics"].items()]
        parts.append("</ul>")
    _problems(parts, summary)
    if rows:
        parts.append(f"<h2>Distributions</h2><img src='data:image/png;base64,{_distributions(rows, metrics)}'>")
    ranking = _ranking_metric(summary)
    copies = set(summary.get("identical", []))
    if ranking is not None and worst > 0:
        name, higher_is_better = ranking
        values = {
            r["case"]: r["value"]
            for r in rows
            if r["metric"] == name and np.isfinite(r["value"]) and r["case"] not in copies
        }
        chosen = sorted(values, key=values.get, reverse=higher_is_better)[-worst:][::-1]
        by_name = {case["case"]: case for case in cases}
        parts.append(f"<h2>Worst {len(chosen)} cases by {html.escape(name)}</h2>")
        for case in chosen:
            scores = ", ".join(f"{r['metric']} {r['value']:.4g}" for r in rows if r["case"] == case)
            try:
                picture, where = _case_figure(load_case(by_name[case]))
            except (CaseError, KeyError) as error:
                parts.append(f"<h3>{html.escape(case)}</h3><p>figure unavailable: {html.escape(str(error))}</p>")
                continue
            parts.append(
                f"<h3>{html.escape(case)} ({where})</h3><p>{html.escape(scores)}</p>"
                f"<img src='data:image/png;base64,{picture}'>"
            )
    parts.append("</body></html>\n")
    path = out / "report.html"
    write_atomically(path, "\n".join(parts))
    return path
