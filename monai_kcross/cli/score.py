"""The ``score`` sub-command: synthesized images against references (folders, datalists, BraTS/IXI layouts)
into ``scores.csv``, ``summary.json`` and a report, in one process, under ``torchrun`` or over ``--nproc``
processes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..analysis.cases import LAYOUTS
from .common import ONE_LINE_ERRORS, add_device, command


def add_parser(commands: Any) -> None:
    """Add the ``score`` parser to the sub-commands."""
    score = command(commands, "score", "score synthesized images against references; CSV, summary, report")
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
    add_device(score)
    score.add_argument("--nproc", type=int, default=1, help="processes (one per GPU with --device cuda)")
    score.add_argument("--out", required=True, help="output folder: scores.csv, run.json, summary.json, report.html")
    score.add_argument("--resume", action="store_true", help="continue the run in --out (only missing scores)")
    score.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a run")
    score.add_argument("--worst", type=int, default=3, help="worst cases shown with figures in the report")
    score.add_argument("--no-report", action="store_true", help="do not write report.html")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")
    score.set_defaults(run_command=run)


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

    from ..functional.intensity import intensity_policy_name, intensity_window, parse_data_range

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
    from ..analysis.scoring import find_cases

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

    from ..analysis.scoring import score_cases
    from ..analysis.summary import incomplete

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

    from ..analysis.case_io import _first_line
    from ..analysis.run_folder import check_output
    from ..analysis.scoring import check_metrics

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
    except ONE_LINE_ERRORS as error:  # one line per failing process instead of a traceback
        print(f"monai-kcross: error (process {local_rank}): {error}", file=sys.stderr)
        sys.exit(1)


def _exit_code(out: str) -> int:
    from ..analysis.summary import incomplete

    summary = Path(out) / "summary.json"
    if not summary.is_file():
        return 1
    return 3 if incomplete(json.loads(summary.read_text())) else 0


def run(args: argparse.Namespace) -> int:
    from ..analysis.scoring import DEFAULT_PANEL

    args.metrics = args.metrics or list(DEFAULT_PANEL)
    try:
        args.data_range = check_data_range(args.data_range)
    except ValueError as error:  # a bad argument: exit code 2, one line with the valid forms
        print(f"monai-kcross: error: {error}", file=sys.stderr)
        return 2
    return run_score(args)
