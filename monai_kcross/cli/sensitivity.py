"""The ``sensitivity`` sub-command: metrics x perturbations x severities into ``sensitivity.csv``,
``local_vs_global.csv`` and plots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import Deferred, add_device, command


def add_parser(commands: Any) -> None:
    """Add the ``sensitivity`` parser to the sub-commands."""
    sens = command(commands, "sensitivity", "metric sensitivity to controlled perturbations")
    sens.add_argument("--datalist", help="MONAI datalist JSON (default: slices of the bundled sample)")
    sens.add_argument("--image-key", default="image", help="image key of the datalist")
    sens.add_argument("--region-key", default="label", help="lesion label key for local alterations")
    sens.add_argument("--mask-key", default="brain", help="mask where metrics are computed ('' for none)")
    sens.add_argument(
        "--metrics", nargs="+", default=Deferred("monai_kcross.analysis.sensitivity:DEFAULT_METRICS"), help="metrics"
    )
    sens.add_argument("--perturbations", nargs="+", default=None, help="perturbations (default: all registered)")
    sens.add_argument(
        "--severities", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0], help="severities in [0, 1]"
    )
    sens.add_argument("--slices", nargs="+", type=int, default=[51, 53, 55], help="sample slices (default data)")
    add_device(sens)
    sens.add_argument("--seed", type=int, default=0, help="random seed")
    sens.add_argument("--out", default="sensitivity_out", help="output folder")
    sens.set_defaults(run_command=run)


def run_sensitivity_command(args: argparse.Namespace) -> int:
    """The ``sensitivity`` sub-command."""
    from ..analysis import run_sensitivity
    from ..transforms import PERTURBATIONS

    if args.datalist:
        data = args.datalist
    else:
        from ..data import load_sample_pair

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
    if isinstance(args.metrics, Deferred):
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


def run(args: argparse.Namespace) -> int:
    args.mask_key = args.mask_key or None
    return run_sensitivity_command(args)
