"""Score synthesized images against their references with a panel of metrics (the runner; reading a case is
:mod:`~monai_kcross.analysis.case_io`, the run folder :mod:`~monai_kcross.analysis.run_folder`, the summary
:mod:`~monai_kcross.analysis.summary`).

The engine behind ``monai-kcross score``: cases are found and paired by :mod:`~monai_kcross.analysis.cases`
(folders, datalists, and the ``simulate``/``nirps``/BraTS/IXI layouts), read with MONAI's ``LoadImage``,
checked for matching geometry, scored with every metric of the panel (the package's baselines and K-CROSS from
the shipped bundle by default), and written as they finish:

* ``scores.csv`` -- one row per case and metric (``case, metric, value, note, data_range``: the canonical name of
  the intensity policy, ``reference`` for K-CROSS and in tables of earlier versions), rewritten atomically after each
  case, so an interrupted run loses nothing and ``resume=True`` continues it. A value a metric cannot give for
  one case (an image too small for its windows, no slice with enough foreground, ...) is ``nan`` with the
  reason in ``note``; an exact copy of the reference is noted too;
* ``run.json`` -- the options that define the run (inputs, layout, ``spatial_dims``, network, intensity
  policy, segmenter of the ``seg_*`` metrics with its digest, panel): a resume with other options is refused;
* ``summary.json`` -- per metric: mean, std, median, bootstrap 95 % interval of the mean over cases, direction,
  counts of infinite and NaN values; the cases that could not be scored, the (case, metric) values that are
  NaN with their reasons, the unpaired files, the exact copies and the skipped metrics;
* ``report.html`` -- see :func:`monai_kcross.analysis.report.write_report`.

``summary.json`` and ``report.html`` are removed before ``scores.csv`` changes and written again when the run
ends, so they never describe another table than the ``scores.csv`` beside them.

Under ``torch.distributed`` (e.g. ``torchrun`` or ``monai-kcross score --nproc N``) every rank scores every
``world_size``-th case and rank 0 merges the per-rank files into the same ``scores.csv`` a single process writes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..functional.intensity import DataRange, intensity_policy_name, parse_data_range, to_unit_range
from ..functional.segmentation import as_segmenter
from ..functional.validation import as_plain_tensor
from ..progress import tqdm
from ..registry import MetricInfo, default_options, get_metric_info
from .benchmark import BASELINES
from .case_io import IMAGE_KEYS, CaseError, _first_line, load_case
from .cases import IMAGE_SUFFIXES, CaseList, case_name, find_cases
from .run_folder import (
    _check_same_policy,
    _check_same_run,
    _csv_text,
    _read_rows,
    _start,
    check_output,
    write_atomically,
)
from .summary import IDENTICAL, incomplete, summarise

__all__ = [
    "DEFAULT_PANEL",
    "IDENTICAL",
    "IMAGE_SUFFIXES",
    "CaseError",
    "CaseList",
    "ScoreRun",
    "case_name",
    "check_metrics",
    "check_output",
    "find_cases",
    "incomplete",
    "load_case",
    "score_case",
    "score_cases",
    "summarise",
]

DEFAULT_PANEL = (*BASELINES, "kcross")


THIN_VOLUME = 16  # volumes with fewer voxels along an axis are scored slice by slice by default


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
    reasons: dict[str, str] | None = None,
    data_range: DataRange = "reference",
    segmenter: Any = None,
) -> dict[str, float]:
    """Every metric of the panel on one case: ``{metric: value}`` (mean over channels, and over slices in 2-D mode).

    Args:
        images: ``load_case`` output: ``reference``, ``synthesized`` ``(C, *spatial)``, optionally ``source``,
            ``mask`` (evaluation region for the baselines) and ``lesion`` (K-CROSS's lesion mask).
        metrics: registry names (``"kcross"`` included).
        spatial_dims: ``3`` scores volumes natively (slice-wise metrics average axial slices), ``2`` scores each
            axial slice holding at least ``min_foreground`` reference foreground (and any mask voxel) in 2-D
            with the volume's intensity window and averages them; ``None``: 2 for 2-D images and for volumes
            thinner than 16 voxels along an axis (slice stacks, too thin for 3-D windows), else 3.
        device: where to compute.
        network: K-CROSS network (``None``: the shipped bundle).
        min_foreground: smallest foreground fraction of a scored slice (2-D mode on volumes).
        data_range: the intensity policy of every baseline metric (:mod:`~monai_kcross.functional.intensity`: its
            statistics inside ``mask``); in 2-D mode on volumes it is applied to the whole volume and its slices
            are scored in the resulting unit range. K-CROSS keeps its own front end (the reference's window).
        segmenter: the downstream segmenter of the ``seg_*`` metrics (``None``: the package's; see
            :func:`~monai_kcross.functional.segmentation.as_segmenter`).
        reasons: if given, a metric unfit for this case (its ``ValueError`` or ``RuntimeError``, e.g. an image
            smaller than its windows) or giving NaN scores ``nan`` and ``reasons[metric]`` says why; the other
            metrics are kept. Without it such errors propagate.

    Raises:
        CaseError: 2-D mode on a volume without a slice holding enough foreground.
        ValueError: bad ``spatial_dims``; without ``reasons``, a metric unfit for the case.
    """
    device = torch.device(device)
    tensors = {key: as_plain_tensor(value).float() for key, value in images.items()}
    if tensors["reference"].ndim == 4 and tensors["reference"].shape[-1] == 1:  # 2-D image stored as H x W x 1
        tensors = {key: value[..., 0] for key, value in tensors.items()}
    planar = tensors["reference"].ndim == 3
    spatial_dims = spatial_dims or (2 if planar or min(tensors["reference"].shape[1:]) < THIN_VOLUME else 3)
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if planar and spatial_dims == 3:
        raise ValueError("spatial_dims=3 needs volumes; these images are 2-D.")
    reference = tensors["reference"]
    data_range = parse_data_range(data_range)
    reference_window: Any = "reference"
    metric_range, mapping_error = data_range, None
    if planar or spatial_dims == 3:
        batch = {key: value[None] for key, value in tensors.items()}
        metric_batch = batch
    else:
        foreground = (_slices(reference) > 0.01 * reference.max()).flatten(1).float().mean(1) >= min_foreground
        if "mask" in tensors:
            foreground &= _slices(tensors["mask"]).flatten(1).any(1)
        if not bool(foreground.any()):
            raise CaseError("no axial slice holds enough foreground (or mask) to score in 2-D.")
        reference_window = (float(reference.min()), float(reference.max()))  # the volume's window for every slice
        metric_batch = batch = {key: _slices(value)[foreground] for key, value in tensors.items()}
        if data_range == "reference":
            metric_range = reference_window
        else:  # the policy's statistics come from the whole volume (inside its mask), then slices in unit range
            metric_range = 1.0
            try:
                mapped = _volume_in_unit_range(tensors, data_range, device)
                metric_batch = {**batch, **{key: _slices(value)[foreground] for key, value in mapped.items()}}
            except ValueError as error:  # e.g. a reference constant inside the mask: every baseline is NaN
                mapping_error = error
    batch = {key: value.to(device) for key, value in batch.items()}
    metric_batch = {key: value.to(device) for key, value in metric_batch.items()}
    mask = batch["mask"][:, :1] > 0 if "mask" in batch else None
    models = {"network": network, "segmenter": segmenter}
    scores: dict[str, float] = {}
    for name in metrics:
        info = get_metric_info(name)
        try:
            if info.own_front_end:  # raw images in the reference's window, whatever the panel's policy
                values = _metric_values(info, batch, mask, models, reference_window)
            elif mapping_error is not None:
                raise mapping_error
            else:
                values = _metric_values(info, metric_batch, mask, models, metric_range)
        except (ValueError, RuntimeError) as error:
            if reasons is None or isinstance(error, torch.cuda.OutOfMemoryError):
                raise
            scores[name] = float("nan")
            reasons[name] = _first_line(error)
            continue
        scores[name] = float(torch.nanmean(values.double()).cpu())
        if reasons is not None and np.isnan(scores[name]):
            reasons[name] = f"{name} gave NaN ({info.nan_means})"
    return scores


def _volume_in_unit_range(
    tensors: Mapping[str, torch.Tensor], data_range: DataRange, device: torch.device
) -> dict[str, torch.Tensor]:
    """The synthesized image and reference ``(C, H, W, D)`` mapped onto the unit range by the volume's policy."""
    mask = tensors["mask"][None, :1].to(device) > 0 if "mask" in tensors else None
    x, y = (tensors[key][None].to(device) for key in ("synthesized", "reference"))
    x_u, y_u = to_unit_range(x, y, data_range, "--data-range", torch.float32, mask=mask)
    return {"synthesized": x_u[0], "reference": y_u[0]}


def _metric_values(
    info: MetricInfo, batch: Mapping[str, torch.Tensor], mask, models: Mapping[str, Any], data_range
) -> torch.Tensor:
    """One registered metric on a batch of case images (a lesion mask as its first channel, binarised)."""
    options = default_options(info.name, tuple(batch["reference"].shape[2:]), data_range=data_range)
    inputs = {key: batch[key][:, :1] > 0 if key == "lesion" else batch[key] for key in info.inputs if key in batch}
    return info.score(batch["synthesized"], batch["reference"], mask=mask, inputs=inputs, models=models, **options)


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
    unpaired: dict[str, list[str]] = field(default_factory=dict)


def check_metrics(metrics: Sequence[str]) -> list[str]:
    """Registry names of ``metrics``; an unknown name raises a ``ValueError`` listing all."""
    from ..registry import list_metrics

    names = []
    for name in metrics:
        try:
            names.append(get_metric_info(name).name)
        except ValueError:
            valid = ", ".join(info.name for info in list_metrics())
            raise ValueError(f"unknown metric {name!r}; valid metrics: {valid}.") from None
    if len(set(names)) != len(names):
        raise ValueError(f"metrics listed twice: {names}.")
    return names


def _probe(
    metrics: list[str], first: Mapping[str, torch.Tensor], spatial_dims, device, network
) -> tuple[list, dict[str, str]]:
    """Drop metrics whose weights are missing or unreadable (deep baselines), with the reason."""
    kept, skipped = [], {}
    for name in metrics:
        if not get_metric_info(name).needs_weights:
            kept.append(name)
            continue
        try:
            score_case(first, [name], 2, device, network)
            kept.append(name)
        except FileNotFoundError as error:
            skipped[name] = str(error).split(";")[0]
        except ValueError as error:  # an unreadable weight file (WeightFileError) or weights of another network
            skipped[name] = _first_line(error)
        except Exception:  # any other problem shows up, with its reason, when the cases are scored
            kept.append(name)
    return kept, skipped


def _load_network(network: Any, device: torch.device) -> torch.nn.Module:
    """The K-CROSS network; a file that is not a K-CROSS checkpoint raises one ``ValueError`` naming it."""
    import pickle

    from ..networks.checkpoints import load_kcross

    if isinstance(network, torch.nn.Module):
        return network
    try:
        return load_kcross(network, device)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch.load and the checkpoint layout raise many types
        reason = (
            "its pickle asks for objects other than tensors, which torch.load(weights_only=True) refuses"
            if isinstance(error, pickle.UnpicklingError)
            else _first_line(error)
        )
        raise ValueError(
            f"K-CROSS network {network or 'shipped bundle'} cannot be loaded ({reason}); pass a bundle, a training "
            "run folder or a model.pt written by `monai-kcross kcross train` or `kcross export`."
        ) from error


def _weights_digest(network: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in network.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def _chooses(metrics: Sequence[str], model_option: str) -> bool:
    """Whether a metric of the panel runs a model chosen through ``model_option`` (``"network"``: K-CROSS;
    ``"segmenter"``: the downstream-segmentation scores)."""
    return any(get_metric_info(name).model_option == model_option for name in metrics)


def _run_settings(
    cases: Sequence[Mapping[str, str]], metrics: Sequence[str], spatial_dims, network, policy: str, segmenter: Any
) -> dict:
    """What defines a run (compared on resume) and, for the record, the package version and panel."""
    from .. import __version__

    return {
        "inputs": dict(getattr(cases, "inputs", {}) or {}),
        "images": sorted({key for case in cases for key in IMAGE_KEYS if key in case}),
        "spatial_dims": spatial_dims,
        "data_range": policy,
        "network": _weights_digest(network) if _chooses(metrics, "network") else None,
        "network_source": str(network) if not isinstance(network, torch.nn.Module) else None,
        "segmenter": _segmenter_record(segmenter) if _chooses(metrics, "segmenter") else None,
        "monai_kcross": __version__,
    }


def _segmenter_record(segmenter: Any) -> dict[str, Any]:
    """``{"path", "digest"}`` of a segmenter file or bundle folder (``path`` ``None``: the package's own, its
    shipped weights' digest), or the object's description for a segmenter given in Python (no digest)."""
    from ..networks.segmenter import SEGMENTER_WEIGHTS

    if segmenter is not None and not isinstance(segmenter, (str, Path)):
        return {"path": None, "digest": None, "object": getattr(segmenter, "name", type(segmenter).__name__)}
    path = Path(segmenter).resolve() if segmenter is not None else SEGMENTER_WEIGHTS
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path] if path.is_file() else []
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        digest.update(file.read_bytes())
    return {"path": str(path) if segmenter is not None else None, "digest": "sha256:" + digest.hexdigest()[:16]}


def _policy_name(data_range: DataRange, cases: Sequence[Mapping[str, str]]) -> str:
    """The canonical name of the run's intensity policy (``@mask``: statistics inside the cases' masks)."""
    return intensity_policy_name(data_range, masked=any("mask" in case for case in cases))


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
    data_range: DataRange = "reference",
    segmenter: Any = None,
) -> ScoreRun:
    """Score every case with every metric and write ``scores.csv``, ``run.json``, ``summary.json`` and
    ``report.html`` to ``out``.

    Args:
        cases: :func:`find_cases` output (its ``unpaired`` files and ``inputs`` are recorded), or a list of
            ``{"case", "reference", "synthesized"[, ...]}`` dicts.
        out: output folder (created).
        metrics: the panel: registry names (default: :data:`DEFAULT_PANEL`). Deep baselines
            whose weights are missing or unreadable are skipped with the reason in ``summary.json``.
        spatial_dims: see :func:`score_case`.
        device: ``"cpu"``, ``"cuda"`` (each rank uses its local GPU under ``torch.distributed``).
        network: K-CROSS network or checkpoint/bundle path (``None``: the shipped bundle).
        resume: keep every row already in ``out`` and score only the (case, metric) pairs missing from it
            (metrics may be added; rows of metrics left out, or whose weights are gone, are kept). A run
            recorded in ``run.json`` with other inputs, ``spatial_dims``, intensity policy, K-CROSS weights or
            segmenter is refused.
        overwrite: start again even if ``out`` holds a run (its summary and report are removed first).
        progress: show a progress bar (rank 0).
        report: write ``report.html`` with plots.
        worst: number of worst cases shown with error and k-space maps in the report.
        data_range: intensity policy of the baseline metrics (see :func:`score_case`), or its text
            (``"percentile(0.5,99.5,clip)"``, ``"window(0,4095)"``, ...). Its canonical name is recorded in
            ``run.json``, ``summary.json`` and the ``data_range`` column of ``scores.csv`` (K-CROSS rows say
            ``reference``: K-CROSS keeps its own front end).
        segmenter: segmenter of the ``seg_*`` metrics: ``None`` (the package's), a checkpoint, a MONAI bundle
            folder or a TorchScript file (recorded with its digest in ``run.json``), or a loaded one.

    Raises:
        FileExistsError: ``out`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        FileNotFoundError: the K-CROSS weights are missing.
        ValueError: an ``out`` that is a file or cannot be written, a resume with other options, an unloadable
            K-CROSS network, unknown metrics, no case or duplicate case names.
    """
    out = Path(out)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(device)
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    metrics = check_metrics(metrics)
    if not cases:
        raise ValueError("no case to score.")
    names = [case["case"] for case in cases]
    if len(set(names)) != len(names):
        raise ValueError("case names must be unique.")
    existing = check_output(out, resume, overwrite)
    data_range = parse_data_range(data_range)
    policy = _policy_name(data_range, cases)  # validates the policy's form
    if _chooses(metrics, "network"):
        network = _load_network(network, device)
    settings = _run_settings(cases, metrics, spatial_dims, network, policy, segmenter)
    if _chooses(metrics, "segmenter"):
        segmenter = as_segmenter(segmenter)  # a missing or unloadable segmenter fails here, before any case
    if resume and existing:
        _check_same_run(out, settings)
    scores_path, parts = out / "scores.csv", out / "parts"
    if distributed:
        dist.barrier()  # every rank sees the previous run's files before any rank writes
    previous = []
    if resume:
        previous = _read_rows(scores_path) + [r for p in sorted(parts.glob("rank*.csv")) for r in _read_rows(p)]
        _check_same_policy(out, previous, policy)
    # the panel is decided once, on a synthetic image, so all ranks agree
    scorable, skipped = _panel(cases, metrics, spatial_dims, device, network)
    run_metrics = list(dict.fromkeys([*(r["metric"] for r in previous), *scorable]))
    for name in skipped:
        if name in run_metrics:
            skipped[name] += " (its earlier rows are kept; cases without them are not scored)"
    if rank == 0:
        _start(out, {**settings, "metrics": run_metrics}, keep=resume)
        if world > 1:
            parts.mkdir(exist_ok=True)
    if distributed:
        dist.barrier()

    kept = {(r["case"], r["metric"]): r for r in previous}  # every earlier row, whatever the panel is now
    todo = {name: [m for m in scorable if (name, m) not in kept] for name in names}
    earlier = {r["case"] for r in previous}
    resumed = [name for name in names if name in earlier and not todo[name]]
    mine = [case for index, case in enumerate(cases) if index % world == rank and todo[case["case"]]]
    my_rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    target = scores_path if world == 1 else parts / f"rank{rank}.csv"
    for case in tqdm(mine, desc="scoring", unit="case", disable=not progress or rank != 0):
        name, reasons = case["case"], {}
        try:
            images = load_case(case)
            values = score_case(
                images,
                todo[name],
                spatial_dims,
                device,
                network,
                reasons=reasons,
                data_range=data_range,
                segmenter=segmenter,
            )
        except (CaseError, ValueError) as error:  # unreadable, mismatched, nothing to score in 2-D
            failed[name] = str(error) if str(error).startswith("case ") else f"case {name}: {error}"
            continue
        copy = (
            IDENTICAL
            if torch.equal(as_plain_tensor(images["reference"]), as_plain_tensor(images["synthesized"]))
            else ""
        )
        for metric in todo[name]:
            note = "; ".join(text for text in (reasons.get(metric, ""), copy) if text)
            row_policy = "reference" if get_metric_info(metric).own_front_end else _policy_name(data_range, [case])
            my_rows.append(
                {"case": name, "metric": metric, "value": values[metric], "note": note, "data_range": row_policy}
            )
        carried = kept if rank == 0 else {}  # rank 0's file carries the previous rows, so nothing is lost
        written = list({**carried, **{(r["case"], r["metric"]): r for r in my_rows}}.values())
        write_atomically(target, _csv_text(_ordered(written, names, run_metrics)))
    if distributed:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (my_rows, failed))
        my_rows = [row for rows, _ in gathered for row in rows]
        failed = {k: v for _, f in gathered for k, v in f.items()}
    rows = _ordered(list({**kept, **{(r["case"], r["metric"]): r for r in my_rows}}.values()), names, run_metrics)
    unpaired = dict(getattr(cases, "unpaired", {}) or {})
    scored = [name for name in names if todo[name] and name not in failed]
    run = ScoreRun(out, rows, run_metrics, scored, resumed, failed, skipped, unpaired=unpaired)
    run.summary = summarise(
        rows, run_metrics, failed, skipped, resumed=len(resumed), unpaired=unpaired, data_range=policy
    )
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
