"""Score folders (or a datalist) of synthesized images against their references with a panel of metrics.

The engine behind ``monai-kcross score``: cases are paired by file name, read with MONAI's ``LoadImage``, checked
for matching geometry, scored with every metric of the panel (the package's baselines and K-CROSS from the
shipped bundle by default), and written as they finish:

* ``scores.csv`` -- one row per case and metric (``case, metric, value``), rewritten atomically after each case,
  so an interrupted run loses nothing and ``resume=True`` continues it;
* ``summary.json`` -- per metric: mean, std, median, bootstrap 95 % interval of the mean over cases, direction;
  plus the cases that could not be scored (with the reason) and the metrics that were skipped;
* ``report.html`` -- see :func:`monai_kcross.analysis.report.write_report`.

Under ``torch.distributed`` (e.g. ``torchrun`` or ``monai-kcross score --nproc N``) every rank scores every
``world_size``-th case and rank 0 merges the per-rank files into the same ``scores.csv`` a single process writes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..registry import default_options, get_metric_info
from .benchmark import BASELINES

__all__ = [
    "DEFAULT_PANEL",
    "IMAGE_SUFFIXES",
    "CaseError",
    "ScoreRun",
    "case_name",
    "find_cases",
    "load_case",
    "score_case",
    "score_cases",
    "summarise",
]

DEFAULT_PANEL = (*BASELINES, "kcross")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")
IMAGE_KEYS = ("reference", "synthesized", "source", "mask", "lesion")
SCORES_HEADER = ("case", "metric", "value")
THIN_VOLUME = 16  # volumes with fewer voxels along an axis are scored slice by slice by default


class CaseError(ValueError):
    """A case that cannot be scored (unreadable file, geometry mismatch); the message names the case."""


def case_name(path: str | Path) -> str:
    """The name a file is paired by: its name without the image suffix (``sub-01_T2w.nii.gz`` -> ``sub-01_T2w``)."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _image_files(folder: Path, role: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{role} folder {folder} not found.")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        dicom_series = path.is_dir() and any(p.suffix.lower() == ".dcm" for p in path.iterdir())
        if not (dicom_series or (path.is_file() and case_name(path) != path.name)):
            continue
        name = case_name(path)
        if name in files:
            raise ValueError(f"{role} folder {folder}: two images named {name!r} ({files[name].name}, {path.name}).")
        files[name] = path
    if not files:
        raise ValueError(f"{role} folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)} or DICOM series).")
    return files


def find_cases(
    reference: str | Path,
    synthesized: str | Path | None = None,
    source: str | Path | None = None,
    mask: str | Path | None = None,
    lesion: str | Path | None = None,
    datalist_key: str = "test",
) -> list[dict[str, str]]:
    """Cases to score: ``[{"case", "reference", "synthesized"[, "source", "mask", "lesion"]}]`` of file paths.

    Args:
        reference: folder of reference images, or a JSON datalist whose ``datalist_key`` entries hold
            ``synthesized``/``reference`` (and optionally ``source``, ``mask`` = evaluation region, ``label`` =
            lesion mask) paths; see :func:`~monai_kcross.data.read_pair_datalist`.
        synthesized: folder of synthesized images paired with the references by :func:`case_name`; required with
            a reference folder; with a datalist it replaces the listed ``synthesized`` paths (paired by the
            references' names).
        source: folder of source-contrast images (K-CROSS's structure branch), paired by name.
        mask: folder of evaluation-region masks (brain masks): the baselines are computed inside them.
        lesion: folder of lesion masks for K-CROSS (otherwise its segmenter predicts them).
        datalist_key: list of the datalist to read.

    Raises:
        FileNotFoundError: a folder or a listed file is missing.
        ValueError: no images, synthesized images without a reference, or a case missing from ``source``,
            ``mask`` or ``lesion`` (the first names are given).
    """
    reference = Path(reference)
    if reference.is_file() and reference.suffix.lower() == ".json":
        from ..data.readers import read_pair_datalist

        entries = read_pair_datalist(reference, datalist_key, required=("reference",))
        cases = []
        for entry in entries:
            case = {"case": case_name(entry["reference"]), "reference": entry["reference"]}
            for key, target in (("synthesized", "synthesized"), ("source", "source"), ("mask", "mask")):
                if key in entry:
                    case[target] = entry[key]
            if "label" in entry:
                case["lesion"] = entry["label"]
            cases.append(case)
        names = [c["case"] for c in cases]
        if len(set(names)) != len(names):  # same file name in different folders: name cases by entry number
            for number, case in enumerate(cases):
                case["case"] = f"{number:05d}_{case['case']}"
        if synthesized is None and any("synthesized" not in c for c in cases):
            raise ValueError(f"datalist {reference}: entries without 'synthesized'; pass a synthesized folder.")
        folders = {"synthesized": synthesized, "source": source, "mask": mask, "lesion": lesion}
    else:
        if synthesized is None:
            raise ValueError("a synthesized folder is needed with a reference folder.")
        references = _image_files(reference, "reference")
        cases = [{"case": name, "reference": str(path)} for name, path in references.items()]
        folders = {"synthesized": synthesized, "source": source, "mask": mask, "lesion": lesion}
    for key, folder in folders.items():
        if folder is None:
            continue
        files = _image_files(Path(folder), key)
        by_reference = {case_name(c["reference"]): c for c in cases}
        missing = [name for name in by_reference if name not in files]
        if key == "synthesized":
            orphans = [name for name in files if name not in by_reference]
            if orphans:
                raise ValueError(
                    f"synthesized images without a reference in {reference}: {', '.join(orphans[:5])}"
                    + (f" and {len(orphans) - 5} more" if len(orphans) > 5 else "")
                    + "; images are paired by file name."
                )
            cases = [c for c in cases if case_name(c["reference"]) in files]
        elif missing:
            raise ValueError(f"{key} folder {folder} has no image for case(s) {', '.join(missing[:5])}.")
        for case in cases:
            name = case_name(case["reference"])
            if name in files:
                case[key] = str(files[name])
    if not cases:
        raise ValueError(f"no case to score: no synthesized image matches a reference in {reference}.")
    return cases


def _read(path: str, loader: Any, key: str, case: str) -> Any:
    try:
        return loader(path)
    except Exception as error:  # readers raise many types; the message must name the file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = " (MHA/NRRD/DICOM need ITK: pip install itk)" if not path.lower().endswith((".nii", ".nii.gz")) else ""
        raise CaseError(f"case {case}: cannot read {key} {path}: {reason}{hint}") from error


def _spacing(affine: torch.Tensor) -> np.ndarray:
    matrix = np.asarray(affine, dtype=np.float64)[:-1, :-1]
    return np.linalg.norm(matrix, axis=0)


def load_case(case: Mapping[str, str], tolerance: float = 1e-3) -> dict[str, torch.Tensor]:
    """Read a case's images (channel first, float32) and check that their geometry matches the reference.

    Returns:
        ``{key: (C, *spatial) MetaTensor}`` for each image key of the case.

    Raises:
        CaseError: an unreadable file, or an image whose shape, spacing or affine differs from the reference
            (``tolerance`` in mm); the message names the case, the image and the difference.
    """
    from monai.transforms import LoadImage

    loader = LoadImage(image_only=True, ensure_channel_first=True, dtype=np.float32)
    name = case["case"]
    images = {key: _read(case[key], loader, key, name) for key in IMAGE_KEYS if key in case}
    reference = images["reference"]
    for key, image in images.items():
        if key == "reference":
            continue
        if tuple(image.shape[1:]) != tuple(reference.shape[1:]):
            raise CaseError(
                f"case {name}: {key} shape {tuple(image.shape[1:])} differs from the reference's "
                f"{tuple(reference.shape[1:])}."
            )
        if key in ("synthesized", "source") and image.shape[0] != reference.shape[0]:
            raise CaseError(f"case {name}: {key} has {image.shape[0]} channels, the reference {reference.shape[0]}.")
        mine, theirs = _spacing(image.affine), _spacing(reference.affine)
        if not np.allclose(mine, theirs, atol=tolerance):
            raise CaseError(
                f"case {name}: {key} voxel spacing {np.round(mine, 4).tolist()} differs from the reference's "
                f"{np.round(theirs, 4).tolist()}."
            )
        offset = float(np.abs(np.asarray(image.affine) - np.asarray(reference.affine)).max())
        if offset > tolerance:
            raise CaseError(
                f"case {name}: {key} affine (orientation/origin) differs from the reference's by up to {offset:.4g} mm."
            )
    for key, image in images.items():
        if not torch.isfinite(image).all():
            raise CaseError(f"case {name}: {key} {case[key]} contains NaN or Inf.")
    return images


def _slices(image: torch.Tensor) -> torch.Tensor:
    """``(C, H, W, D)`` -> ``(D, C, H, W)``: axial slices as a batch."""
    return image.movedim(-1, 0)


def score_case(
    images: Mapping[str, torch.Tensor],
    metrics: Sequence[str],
    spatial_dims: int | None = None,
    device: str | torch.device = "cpu",
    network: Any = None,
    min_foreground: float = 0.05,
) -> dict[str, float]:
    """Every metric of the panel on one case: ``{metric: value}`` (mean over channels, and over slices in 2-D mode).

    Args:
        images: ``load_case`` output: ``reference``, ``synthesized`` ``(C, *spatial)``, optionally ``source``,
            ``mask`` (evaluation region for the baselines) and ``lesion`` (K-CROSS's lesion mask).
        metrics: registry names and/or ``"kcross"``.
        spatial_dims: ``3`` scores volumes natively (slice-wise metrics average axial slices), ``2`` scores each
            axial slice holding at least ``min_foreground`` reference foreground (and any mask voxel) in 2-D
            with the volume's intensity window and averages them; ``None``: 2 for 2-D images and for volumes
            thinner than 16 voxels along an axis (slice stacks, too thin for 3-D windows), else 3.
        device: where to compute.
        network: K-CROSS network (``None``: the shipped bundle).
        min_foreground: smallest foreground fraction of a scored slice (2-D mode on volumes).
    """
    device = torch.device(device)
    tensors = {key: torch.as_tensor(value).as_subclass(torch.Tensor).float() for key, value in images.items()}
    if tensors["reference"].ndim == 4 and tensors["reference"].shape[-1] == 1:  # 2-D image stored as H x W x 1
        tensors = {key: value[..., 0] for key, value in tensors.items()}
    planar = tensors["reference"].ndim == 3
    spatial_dims = spatial_dims or (2 if planar or min(tensors["reference"].shape[1:]) < THIN_VOLUME else 3)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if planar and spatial_dims == 3:
        raise ValueError("spatial_dims=3 needs volumes; these images are 2-D.")
    reference = tensors["reference"]
    options_range: Any = "reference"
    if planar or spatial_dims == 3:
        batch = {key: value[None] for key, value in tensors.items()}
    else:
        batch = {key: _slices(value) for key, value in tensors.items()}
        foreground = (batch["reference"] > 0.01 * reference.max()).flatten(1).float().mean(1) >= min_foreground
        if "mask" in batch:
            foreground &= batch["mask"].flatten(1).any(1)
        if not bool(foreground.any()):
            raise CaseError("no axial slice holds enough foreground (or mask) to score in 2-D.")
        batch = {key: value[foreground] for key, value in batch.items()}
        options_range = (float(reference.min()), float(reference.max()))  # the volume's window for every slice
    batch = {key: value.to(device) for key, value in batch.items()}
    mask = batch["mask"][:, :1] > 0 if "mask" in batch else None
    scores: dict[str, float] = {}
    for name in metrics:
        if name == "kcross":
            from ..metrics.kcross import kcross

            branches = ("complex", "structure", "tumour") if "source" in batch else ("complex", "tumour")
            lesion = batch["lesion"][:, :1] > 0 if "lesion" in batch else None
            values = kcross(
                batch["synthesized"],
                batch["reference"],
                batch.get("source"),
                lesion,
                network=network,
                branches=branches,
                spatial_dims=2 if batch["reference"].ndim == 4 else 3,
                data_range=options_range,
            )
        else:
            options = default_options(name, tuple(batch["reference"].shape[2:]), data_range=options_range)
            values = get_metric_info(name).function(batch["synthesized"], batch["reference"], mask=mask, **options)
        scores[name] = float(torch.nanmean(values.double()).cpu())
    return scores


@dataclass
class ScoreRun:
    """What :func:`score_cases` did: rows written, cases scored now / resumed, failures and skipped metrics."""

    out: Path
    rows: list[dict[str, Any]]
    metrics: list[str]
    scored: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path`` (never a torn file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORES_HEADER)
    writer.writerows((row["case"], row["metric"], repr(float(row["value"]))) for row in rows)
    return buffer.getvalue()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append({"case": row["case"], "metric": row["metric"], "value": float(row["value"])})
            except (KeyError, TypeError, ValueError):
                continue  # a torn line of an interrupted write
    return rows


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    names = []
    for name in metrics:
        names.append("kcross" if name.strip().lower() == "kcross" else get_metric_info(name).name)
    if len(set(names)) != len(names):
        raise ValueError(f"metrics listed twice: {names}.")
    return names


def _probe(
    metrics: list[str], first: Mapping[str, torch.Tensor], spatial_dims, device, network
) -> tuple[list, dict[str, str]]:
    """Drop metrics whose weights are missing (deep baselines), with the reason; K-CROSS weights must exist."""
    kept, skipped = [], {}
    for name in metrics:
        if name == "kcross":
            kept.append(name)
            continue
        info = get_metric_info(name)
        if not info.needs_weights:
            kept.append(name)
            continue
        try:
            score_case(first, [name], 2, device, network)
            kept.append(name)
        except FileNotFoundError as error:
            skipped[name] = str(error).split(";")[0]
        except Exception:  # any other problem shows up when the case itself is scored
            kept.append(name)
    return kept, skipped


def score_cases(
    cases: Sequence[Mapping[str, str]],
    out: str | Path,
    metrics: Sequence[str] = DEFAULT_PANEL,
    spatial_dims: int | None = None,
    device: str | torch.device = "cpu",
    network: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    report: bool = True,
    worst: int = 3,
) -> ScoreRun:
    """Score every case with every metric and write ``scores.csv``, ``summary.json`` and ``report.html`` to ``out``.

    Args:
        cases: :func:`find_cases` output.
        out: output folder (created).
        metrics: the panel: registry names and ``"kcross"`` (default: :data:`DEFAULT_PANEL`). Deep baselines
            whose weights are missing are skipped with the reason in ``summary.json``.
        spatial_dims: see :func:`score_case`.
        device: ``"cpu"``, ``"cuda"`` (each rank uses its local GPU under ``torch.distributed``).
        network: K-CROSS network or checkpoint/bundle path (``None``: the shipped bundle).
        resume: keep the rows already in ``out`` and score only the cases missing a metric.
        overwrite: start again even if ``out/scores.csv`` exists.
        progress: show a progress bar (rank 0).
        report: write ``report.html`` with plots.
        worst: number of worst cases shown with error and k-space maps in the report.

    Raises:
        FileExistsError: ``out/scores.csv`` exists and neither ``resume`` nor ``overwrite`` is set.
        FileNotFoundError: the K-CROSS weights are missing.
    """
    from ..metrics.kcross import load_kcross

    out = Path(out)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(device)
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    scores_path = out / "scores.csv"
    parts = out / "parts"
    interrupted_parts = parts.is_dir() and any(parts.glob("rank*.csv"))
    if (scores_path.exists() or interrupted_parts) and not (resume or overwrite):
        raise FileExistsError(
            f"{scores_path} exists: continue that run with --resume (resume=True) or start again with --overwrite."
        )
    metrics = _check_metrics(metrics)
    if not cases:
        raise ValueError("no case to score.")
    names = [case["case"] for case in cases]
    if len(set(names)) != len(names):
        raise ValueError("case names must be unique.")
    if "kcross" in metrics and not isinstance(network, torch.nn.Module):
        network = load_kcross(network, device)
    if distributed:
        dist.barrier()  # every rank sees the previous run's files before any rank writes
    previous = []
    if resume:
        previous = _read_rows(scores_path) + [r for p in sorted(parts.glob("rank*.csv")) for r in _read_rows(p)]
    elif rank == 0 and parts.exists():
        for stale in parts.glob("rank*.csv"):
            stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if world > 1:
        parts.mkdir(exist_ok=True)
    if distributed:
        dist.barrier()

    # the panel is decided once, on the first readable case, so all ranks agree
    metrics, skipped = _panel(cases, metrics, spatial_dims, device, network)
    done: dict[str, set[str]] = {}
    for row in previous:
        done.setdefault(row["case"], set()).add(row["metric"])
    complete = {case for case, have in done.items() if set(metrics) <= have}
    # every previous row of a listed metric is carried (also of incomplete cases) until that case is scored again
    kept = {(r["case"], r["metric"]): r for r in previous if r["metric"] in metrics}
    mine = [case for index, case in enumerate(cases) if index % world == rank and case["case"] not in complete]
    my_rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    target = scores_path if world == 1 else parts / f"rank{rank}.csv"
    for case in tqdm(mine, desc="scoring", unit="case", disable=not progress or rank != 0):
        try:
            values = score_case(load_case(case), metrics, spatial_dims, device, network)
        except (CaseError, ValueError) as error:  # unreadable, mismatched, or unfit for a metric (message names it)
            failed[case["case"]] = str(error) if str(error).startswith("case ") else f"case {case['case']}: {error}"
            continue
        my_rows += [{"case": case["case"], "metric": name, "value": values[name]} for name in metrics]
        carried = kept if rank == 0 else {}  # rank 0's file carries the previous rows, so nothing is lost
        written = list({**carried, **{(r["case"], r["metric"]): r for r in my_rows}}.values())
        write_atomically(target, _csv_text(_ordered(written, names, metrics)))
    if distributed:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (my_rows, failed))
        my_rows = [row for rows, _ in gathered for row in rows]
        failed = {k: v for _, f in gathered for k, v in f.items()}
    rows = _ordered(list({**kept, **{(r["case"], r["metric"]): r for r in my_rows}}.values()), names, metrics)
    run = ScoreRun(out, rows, metrics, [r for r in names if r not in complete and r not in failed], sorted(complete))
    run.failed, run.skipped_metrics = failed, skipped
    run.summary = summarise(rows, metrics, failed, skipped, resumed=len(complete))
    if rank == 0:
        write_atomically(scores_path, _csv_text(rows))
        for part in parts.glob("rank*.csv") if parts.exists() else []:
            part.unlink()
        if parts.exists() and not any(parts.iterdir()):
            parts.rmdir()
        write_atomically(out / "summary.json", json.dumps(run.summary, indent=1) + "\n")
        if report:
            from .report import write_report

            write_report(out, rows, run.summary, cases, worst=worst)
    if distributed:
        dist.barrier()
    return run


def _panel(cases, metrics, spatial_dims, device, network) -> tuple[list[str], dict[str, str]]:
    generator = torch.Generator().manual_seed(0)  # a synthetic image: a blank or tiny first case must not decide
    reference = torch.rand(1, 64, 64, generator=generator)
    return _probe(metrics, {"reference": reference, "synthesized": reference.flip(-1)}, spatial_dims, device, network)


def _ordered(rows: Sequence[Mapping[str, Any]], names: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    case_order = {name: i for i, name in enumerate(names)}
    metric_order = {name: i for i, name in enumerate(metrics)}
    return sorted(rows, key=lambda r: (case_order.get(r["case"], len(case_order)), metric_order[r["metric"]]))


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def summarise(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    failed: Mapping[str, str] | None = None,
    skipped: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """Per-metric mean, std, median and a percentile-bootstrap 95 % interval of the mean over cases.

    Non-finite values (e.g. PSNR of identical images) are counted in ``n_infinite`` and left out of the
    statistics; JSON gets ``null`` where a statistic is undefined.
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
        if name == "kcross":
            entry["direction"] = "higher is better"
        else:
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
    summary["n_cases"] = len({r["case"] for r in rows})
    summary["failed"] = dict(failed or {})
    summary["skipped_metrics"] = dict(skipped or {})
    return summary
