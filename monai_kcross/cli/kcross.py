"""The ``kcross train|export|benchmark`` sub-command: train K-CROSS, export a run into the bundle, or print the
metric-versus-quality tables on a held-out split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_device, command


def add_parser(commands: Any) -> None:
    """Add the ``kcross`` parser to the sub-commands."""
    kcross = command(commands, "kcross", "train K-CROSS, export a run into the bundle, or benchmark it")
    actions = kcross.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = command(actions, "train", "train K-CROSS in two stages on a NIRPS-style datalist (or fine-tune it)")
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
    add_device(train)
    train.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    export = command(actions, "export", "export a training run into a bundle (weights, version, changelog)")
    export.add_argument("--run", required=True, help="training run folder or model.pt to export")
    export.add_argument("--bundle", help="bundle folder (default: the one shipped with the package)")
    export.add_argument("--bundle-version", help="new bundle version (default: patch number + 1)")
    export.add_argument("--changelog", default="retrained K-CROSS weights", help="changelog line of the version")
    export.add_argument("--eval-metrics", help="JSON file of figures to record in the bundle metadata")
    bench = command(actions, "benchmark", "metric-versus-quality tables of K-CROSS and the baselines")
    bench.add_argument("--datalist", required=True, help="NIRPS-style datalist")
    bench.add_argument("--split", default="held_out", help="datalist split to evaluate")
    bench.add_argument("--metrics", nargs="+", help="baseline metrics (default: all full-reference baselines)")
    bench.add_argument("--bundle", help="K-CROSS bundle or run (default: the shipped bundle)")
    bench.add_argument("--statistics", nargs="+", default=["inconsistency", "srcc"], help="columns shown")
    bench.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    bench.add_argument("--out", help="report folder (scores.csv, benchmark.json)")
    kcross.set_defaults(run_command=run)


def run_kcross(args: argparse.Namespace) -> int:
    """The ``kcross`` sub-command: train K-CROSS, export a run into the bundle, or benchmark it."""
    if args.action == "train":
        from ..networks.kcross import KCrossConfig
        from ..training import train_kcross

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
        from ..bundles import KCROSS_BUNDLE, export_bundle

        eval_metrics = json.loads(Path(args.eval_metrics).read_text()) if args.eval_metrics else None
        written = export_bundle(
            args.run, args.bundle or KCROSS_BUNDLE, args.bundle_version, args.changelog, eval_metrics
        )
        print(f"wrote {written}")
        return 0
    from ..analysis.benchmark import BASELINES, format_table, run_benchmark

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


run = run_kcross
