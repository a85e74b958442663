"""Metric sensitivity analysis: which metrics notice which perturbations, and how strongly.

The experiment of the seed studies: perturb reference images in controlled ways (global appearance
changes, k-space artefacts, local morphological alterations) at increasing severities, score every
perturbed image against its original with every metric, and compare. Two summaries:

* the **normalised response** of each metric to each perturbation and severity: the metric's degradation
  (oriented so that "worse" is positive whatever the metric's direction), divided by the largest degradation
  that metric shows over the whole experiment;
* the **local-versus-global sensitivity**: for each local alteration (at ``summary_severity``) and each benign
  global change, the global change is re-run at the severity that gives the *same MSE* (found by bisection),
  and the ratio ``degradation(local) / degradation(global at equal MSE)`` is reported. MSE gives exactly 1 by
  construction, and so does PSNR on single-channel images (with several channels of different intensity
  ranges PSNR weights the channels differently from the raw MSE used for matching); a metric that cares about
  anatomy should give ratios well above 1.

Example::

    from monai_kcross.analysis import run_sensitivity
    result = run_sensitivity(cases, metrics=["psnr", "ssim", "haarpsi"], region_key="label", mask_key="brain")
    result.to_csv("sensitivity.csv"); result.local_vs_global_csv("local_vs_global.csv"); result.plot("plots/")
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..functional.ssim import ms_ssim_weights_for
from ..progress import tqdm
from ..registry import get_metric_info
from ..transforms import PERTURBATIONS, LesionInsertion, Perturbation, create_perturbation

__all__ = ["DEFAULT_METRICS", "SensitivityResult", "load_cases", "run_sensitivity"]

DEFAULT_METRICS = ("mae", "psnr", "ssim", "ms_ssim", "gmsd", "nlpd", "haarpsi")
DEFAULT_SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class SensitivityResult:
    """Tidy results of :func:`run_sensitivity`.

    Attributes:
        rows: one dict per case x perturbation x severity x metric with keys ``case``, ``perturbation``,
            ``kind``, ``severity``, ``mse``, ``metric``, ``value`` and ``degradation`` (change towards "worse",
            in the metric's units; for PSNR, whose unperturbed value is infinite, the change of
            ``10 ** (-PSNR / 10)``, the MSE relative to the squared range).
        matched: one dict per case x local perturbation x global perturbation x metric with the equal-MSE
            comparison: ``local``, ``global``, ``mse``, ``global_severity``, ``local_degradation``,
            ``global_degradation``, ``ratio``.
        settings: the run's parameters (metrics and their options, severities, seed, ...).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    matched: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`rows` as CSV and return the path."""
        return _write_csv(path, self.rows)

    def local_vs_global_csv(self, path: str | Path) -> Path:
        """Write :attr:`matched` as CSV and return the path."""
        return _write_csv(path, self.matched)

    def normalised_response(self) -> dict[tuple[str, str, float], float]:
        """Mean over cases of each metric's degradation, divided by that metric's largest mean degradation.

        Returns:
            ``{(metric, perturbation, severity): response}``; 1 marks the perturbation and severity a metric
            reacts to most, 0 no reaction, negative values an improvement.
        """
        means: dict[tuple[str, str, float], list[float]] = {}
        for row in self.rows:
            means.setdefault((row["metric"], row["perturbation"], row["severity"]), []).append(row["degradation"])
        averaged = {key: float(np.mean(values)) for key, values in means.items()}
        scale: dict[str, float] = {}
        for (metric, _, _), value in averaged.items():
            if math.isfinite(value):
                scale[metric] = max(scale.get(metric, 0.0), value)
        return {key: value / scale[key[0]] if scale.get(key[0], 0) > 0 else 0.0 for key, value in averaged.items()}

    def local_vs_global(self) -> dict[tuple[str, str], float]:
        """Median over cases and benign global changes of the equal-MSE ratio, per (metric, local perturbation)."""
        ratios: dict[tuple[str, str], list[float]] = {}
        for row in self.matched:
            if math.isfinite(row["ratio"]):
                ratios.setdefault((row["metric"], row["local"]), []).append(row["ratio"])
        return {key: float(np.median(values)) for key, values in ratios.items()}

    def plot(self, out_dir: str | Path) -> list[Path]:
        """Draw the response curves and the local-versus-global summary as PNG files; returns their paths."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("plotting needs matplotlib: pip install matplotlib") from error
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        response = self.normalised_response()
        metrics = list(dict.fromkeys(key[0] for key in response))
        perturbations = list(dict.fromkeys(key[1] for key in response))
        columns = min(4, len(metrics))
        rows = math.ceil(len(metrics) / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
        colours = plt.get_cmap("tab20")
        for index, metric in enumerate(metrics):
            axis = axes[index // columns][index % columns]
            for p_index, perturbation in enumerate(perturbations):
                points = sorted((s, v) for (m, p, s), v in response.items() if m == metric and p == perturbation)
                style = "-" if PERTURBATIONS.get(perturbation, (None, "local"))[1] == "local" else "--"
                axis.plot(*zip(*points), style, color=colours(p_index % 20), label=perturbation)
            axis.set_title(metric)
            axis.set_xlabel("severity")
            axis.set_ylabel("normalised response")
            axis.grid(alpha=0.3)
        for index in range(len(metrics), rows * columns):
            axes[index // columns][index % columns].axis("off")
        handles, labels = axes[0][0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize="small")
        figure.tight_layout(rect=(0, 0.08, 1, 1))
        paths = [out / "response_vs_severity.png"]
        figure.savefig(paths[0], dpi=110)
        plt.close(figure)

        summary = self.local_vs_global()
        if summary:
            locals_ = list(dict.fromkeys(key[1] for key in summary))
            matrix = np.array([[summary.get((m, loc), np.nan) for loc in locals_] for m in metrics])
            figure, axis = plt.subplots(figsize=(1.3 * len(locals_) + 2, 0.45 * len(metrics) + 1.5))
            image = axis.imshow(np.log2(matrix), cmap="RdBu_r", vmin=-4, vmax=4)
            axis.set_xticks(range(len(locals_)), locals_, rotation=30, ha="right")
            axis.set_yticks(range(len(metrics)), metrics)
            for (i, j), value in np.ndenumerate(matrix):
                axis.text(j, i, "n/a" if np.isnan(value) else f"{value:.2g}", ha="center", va="center", fontsize=8)
            figure.colorbar(image, label="log2 of the ratio")
            axis.set_title("local / benign global degradation\nat equal MSE (>1: local matters more)", fontsize=10)
            figure.tight_layout()
            paths.append(out / "local_vs_global.png")
            figure.savefig(paths[-1], dpi=110)
            plt.close(figure)
        return paths


def _write_csv(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        raise ValueError("nothing to write: the result has no rows.")
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def load_cases(data: Sequence[Mapping[str, Any]] | str | Path, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Cases as dicts of channel-first tensors: from dicts of tensors/arrays, of file paths, or a datalist JSON.

    A datalist is MONAI's format (``{"training": [{"image": "a.nii.gz", ...}, ...]}``, see
    ``monai.data.load_decathlon_datalist``); file paths are read with MONAI's ``LoadImage`` (channel first).
    """
    from monai.transforms import EnsureChannelFirstd, LoadImaged

    if isinstance(data, (str, Path)):
        from monai.data import load_decathlon_datalist

        data = load_decathlon_datalist(str(data), is_segmentation=False, data_list_key="training")
    cases = []
    loader = None
    for index, item in enumerate(data):
        item = dict(item)
        paths = [k for k in keys if k in item and isinstance(item[k], (str, Path))]
        if paths:
            loader = loader or (lambda ks: [LoadImaged(ks, image_only=True), EnsureChannelFirstd(ks)])
            for transform in loader(paths):
                item = transform(item)
        for key in keys:
            if key in item and not isinstance(item[key], torch.Tensor):
                item[key] = torch.as_tensor(np.asarray(item[key]))
        item.setdefault("case", str(index))
        cases.append(item)
    return cases


def _metric_options(metric: str, shape: Sequence[int], overrides: Mapping[str, Mapping[str, Any]]) -> dict:
    options = dict(overrides.get(metric, {}))
    if metric == "ms_ssim" and "weights" not in options:
        options["weights"] = ms_ssim_weights_for(shape, options.get("win_size", 11))
    return options


def _degradation(value: torch.Tensor, baseline: torch.Tensor, higher_is_better: bool) -> float:
    """Change towards "worse", per channel ``(C,)``, then averaged over channels.

    A metric whose unperturbed value is ``+inf`` (PSNR of identical images) is compared on the scale
    ``10 ** (-value / 10)``, i.e. as a relative MSE, channel by channel, so that changes stay finite and
    equal-MSE comparisons give exactly 1.
    """
    value, baseline = torch.as_tensor(value, dtype=torch.float64), torch.as_tensor(baseline, dtype=torch.float64)
    if higher_is_better and bool((torch.isinf(baseline) & (baseline > 0)).any()):
        change = 10 ** (-value / 10) - 10 ** (-baseline / 10)
    else:
        change = baseline - value if higher_is_better else value - baseline
    return float(change.mean())


def run_sensitivity(
    data: Sequence[Mapping[str, Any]] | str | Path,
    metrics: Sequence[str] = DEFAULT_METRICS,
    perturbations: Sequence[str] | Mapping[str, Perturbation] | None = None,
    severities: Sequence[float] = DEFAULT_SEVERITIES,
    image_key: str = "image",
    region_key: str | None = "label",
    placement_key: str | None = None,
    mask_key: str | None = None,
    data_range: Any = "reference",
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
    benign: Sequence[str] | None = None,
    summary_severity: float = 1.0,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> SensitivityResult:
    """Score metrics x perturbations x severities over a set of cases.

    Args:
        data: cases (dicts with channel-first images ``(C, H, W[, D])``, arrays or file paths) or a MONAI
            datalist JSON.
        metrics: registry names (see ``monai_kcross.list_metrics()``).
        perturbations: registry names (``monai_kcross.transforms.PERTURBATIONS``) or ``{name: instance}``;
            default: all registered perturbations (local ones only for cases that have ``region_key``).
        severities: severities to evaluate (0 is the unperturbed baseline and is always included).
        image_key: key of the reference image.
        region_key: key of the lesion label that local alterations act on.
        placement_key: key of the region where :class:`LesionInsertion` places lesions (default: the
            image's non-zero voxels, i.e. the head/brain).
        mask_key: key of a mask inside which metrics (and the MSE used for matching) are computed, e.g. a
            brain mask; ``None`` = whole image.
        data_range: the metrics' intensity policy.
        metric_options: per-metric keyword arguments, e.g. ``{"ms_ssim": {"weights": (0.5, 0.5)}}``.
        benign: global perturbations used as the equal-MSE reference (default: every "global" one).
        summary_severity: severity of the local alterations in the equal-MSE comparison.
        device: where metrics run.
        seed: random seed of every perturbation (the same noise realisation across severities).
        progress: show a progress bar.

    Returns:
        A :class:`SensitivityResult`.
    """
    metric_options = metric_options or {}
    infos = [get_metric_info(m) for m in metrics]
    keys = [k for k in (image_key, region_key, placement_key, mask_key) if k]
    cases = load_cases(data, keys)
    if not cases:
        raise ValueError("run_sensitivity: no cases given.")
    chosen = _choose_perturbations(perturbations)
    severities = sorted({0.0, *(float(s) for s in severities)})
    benign = list(benign) if benign is not None else [n for n, p in chosen.items() if _kind(n, p) == "global"]
    if not benign and any(_kind(n, p) == "local" for n, p in chosen.items()):
        warnings.warn(
            "no benign global perturbation chosen: the local-versus-global summary stays empty.", stacklevel=2
        )
    result = SensitivityResult(
        settings={
            "metrics": list(metrics),
            "severities": severities,
            "seed": seed,
            "data_range": data_range,
            "perturbations": list(chosen),
            "benign": benign,
            "summary_severity": summary_severity,
            "mask_key": mask_key,
        },
    )
    work = [(case, name) for case in cases for name in chosen]
    for case, name in tqdm(work, desc="sensitivity", disable=not progress):
        perturbation = chosen[name]
        image = case[image_key].float()
        region = _region_for(perturbation, case, image, region_key, placement_key)
        if perturbation.needs_region and (region is None or not bool(torch.as_tensor(region).any())):
            continue  # no lesion (or placement region) in this case: local alterations do not apply
        outputs = [_perturb(perturbation, image, region, s, seed) for s in severities]
        scores = _score(infos, outputs, image, case, mask_key, data_range, metric_options, device)
        score_mask = case[mask_key] if mask_key else None
        for s_index, severity in enumerate(severities):
            mse = _mse(outputs[s_index], image, score_mask)
            for info in infos:
                value, baseline = scores[info.name][s_index], scores[info.name][0]
                result.rows.append(
                    {
                        "case": case["case"],
                        "perturbation": name,
                        "kind": _kind(name, perturbation),
                        "severity": severity,
                        "mse": mse,
                        "metric": info.name,
                        "value": float(value.mean()),
                        "degradation": _degradation(value, baseline, info.higher_is_better),
                    }
                )
        if _kind(name, perturbation) == "local" and benign:
            _match_globals(
                result,
                infos,
                chosen,
                benign,
                case,
                name,
                outputs[severities.index(summary_severity)]
                if summary_severity in severities
                else _perturb(perturbation, image, region, summary_severity, seed),
                image,
                mask_key,
                data_range,
                metric_options,
                device,
                seed,
            )
    return result


def _kind(name: str, perturbation: Perturbation) -> str:
    if name in PERTURBATIONS:
        return PERTURBATIONS[name][1]
    return "local" if perturbation.needs_region else "global"


def _choose_perturbations(perturbations) -> dict[str, Perturbation]:
    if perturbations is None:
        return {name: create_perturbation(name) for name in PERTURBATIONS}
    if isinstance(perturbations, Mapping):
        return dict(perturbations)
    return {name: create_perturbation(name) for name in perturbations}


def _region_for(perturbation, case, image, region_key, placement_key):
    if isinstance(perturbation, LesionInsertion):  # placed in healthy tissue, not in the lesion
        if placement_key and placement_key in case:
            return case[placement_key]
        return (image != 0).any(0, keepdim=True)
    return case.get(region_key) if region_key else None


def _perturb(perturbation: Perturbation, image, region, severity, seed) -> torch.Tensor:
    perturbation.set_random_state(seed)
    return perturbation(image, region=region if perturbation.needs_region else None, severity=severity).float()


def _score(infos, outputs, image, case, mask_key, data_range, metric_options, device) -> dict[str, torch.Tensor]:
    """Every metric on the batch of perturbed images against the repeated reference: ``{metric: (N, C)}``."""
    batch = torch.stack(outputs).to(device)
    reference = image[None].expand_as(batch).to(device)
    mask = None
    if mask_key:
        mask = torch.as_tensor(case[mask_key]).bool().to(device)
        mask = mask[None] if mask.ndim == image.ndim else mask  # channel-first mask -> batch of one
    shape = tuple(image.shape[1:])
    scores = {}
    for info in infos:
        options = _metric_options(info.name, shape, metric_options)
        if info.name not in ("mae", "mse", "rmse") or "data_range" in options:
            options.setdefault("data_range", data_range)
        values = info.score(batch, reference, mask=mask, **options)
        scores[info.name] = values.cpu()
    return scores


def _match_globals(
    result,
    infos,
    chosen,
    benign,
    case,
    local_name,
    local_image,
    image,
    mask_key,
    data_range,
    metric_options,
    device,
    seed,
) -> None:
    """Equal-MSE comparison of one local alteration with every benign global perturbation."""
    score_mask = case[mask_key] if mask_key else None
    target = _mse(local_image, image, score_mask)
    matched, names, severities = [], [], []
    for name in benign:
        perturbation = chosen.get(name) or create_perturbation(name)
        severity = _severity_for_mse(perturbation, image, target, seed, score_mask)
        if severity is None:
            continue
        matched.append(_perturb(perturbation, image, None, severity, seed))
        names.append(name)
        severities.append(severity)
    if not matched:
        return
    scores = _score(infos, [image, local_image, *matched], image, case, mask_key, data_range, metric_options, device)
    for info in infos:
        values = scores[info.name]
        local = _degradation(values[1], values[0], info.higher_is_better)
        for index, name in enumerate(names):
            global_ = _degradation(values[2 + index], values[0], info.higher_is_better)
            ratio = local / global_ if global_ > 0 else math.nan
            result.matched.append(
                {
                    "case": case["case"],
                    "metric": info.name,
                    "local": local_name,
                    "global": name,
                    "mse": target,
                    "global_severity": severities[index],
                    "local_degradation": local,
                    "global_degradation": global_,
                    "ratio": ratio,
                }
            )


def _mse(perturbed: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None) -> float:
    """MSE where the metrics are computed: inside ``mask`` (channel-first or spatial) if given."""
    error = ((perturbed - image) ** 2).mean(dim=0)
    if mask is None:
        return float(error.mean())
    region = torch.as_tensor(mask).bool().reshape(-1, *error.shape).any(0)
    return float(error[region].mean())


def _severity_for_mse(
    perturbation: Perturbation,
    image: torch.Tensor,
    target: float,
    seed: int,
    mask: torch.Tensor | None = None,
    iterations: int = 20,
) -> float | None:
    """Bisection for the severity whose MSE equals ``target`` (``None`` if even severity 1 stays below it)."""

    def mse(s: float) -> float:
        return _mse(_perturb(perturbation, image, None, s, seed), image, mask)

    if target <= 0 or mse(1.0) < target:
        return None
    low, high = 0.0, 1.0
    for _ in range(iterations):
        middle = (low + high) / 2
        if mse(middle) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2
