"""Command line of monai-kcross (``monai-kcross ...`` or ``python -m monai_kcross ...``).

Sub-commands:

* ``demo`` -- score the bundled sample pair with every metric, over the whole volume, inside the brain mask
  and inside the lesion, and print a table;
* ``metrics`` -- list the registered metrics with their direction, value range and 3-D handling.

Exit codes: 0 success, 2 bad arguments, 1 any other error (the message names the problem).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import torch

from . import __version__
from .data import load_sample_pair, sample_data_dir
from .functional.ssim import MS_SSIM_WEIGHTS
from .registry import MetricInfo, list_metrics


def _ms_ssim_weights_that_fit(shape: Sequence[int], win_size: int = 11) -> tuple[float, ...]:
    """The largest prefix of the standard MS-SSIM weights whose coarsest level still holds the window."""
    levels = len(MS_SSIM_WEIGHTS)
    while levels > 1 and min(shape) // 2 ** (levels - 1) < win_size:
        levels -= 1
    return MS_SSIM_WEIGHTS[:levels]


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
    header = f"{'metric':<9} {'direction':<17}" + "".join(f"{name:>14}" for name in regions) + f"{'time':>9}"
    print(header)
    print("-" * len(header))
    notes = []
    for info in list_metrics():
        options = _demo_options(info, shape)
        if "weights" in options:
            notes.append(f"ms_ssim uses {len(options['weights'])} scales: the volume is too small for 5.")
        start = time.perf_counter()
        values = [
            info.function(synthesized, reference, mask=mask, **options).mean().item() for mask in regions.values()
        ]
        elapsed = time.perf_counter() - start
        row = f"{info.name:<9} {info.direction:<17}" + "".join(f"{_format(v):>14}" for v in values)
        print(row + f"{elapsed:8.2f}s")
    print("\n" + "\n".join(notes) if notes else "")
    print(
        "Global scores look acceptable while the lesion region is badly wrong: score the regions that matter.\n"
        "3-D handling: mae..ms_ssim are native 3-D; gmsd, ms_gmsd, nlpd, haarpsi are averaged over axial slices."
    )
    return 0


def _demo_options(info: MetricInfo, shape: Sequence[int]) -> dict:
    options: dict = {"data_range": "reference"}
    if info.name == "ms_ssim":
        weights = _ms_ssim_weights_that_fit(shape)
        if len(weights) < len(MS_SSIM_WEIGHTS):
            options["weights"] = weights
    return options


def print_metrics() -> int:
    """Print the registry."""
    print(f"{'name':<9} {'direction':<17} {'range':<16} {'ideal':>6}  {'3-D':<11} reference")
    for info in list_metrics():
        low, high = info.value_range
        print(
            f"{info.name:<9} {info.direction:<17} [{low:g}, {high:g}]".ljust(45)
            + f"{info.ideal:>6g}  {info.volumes:<11} {info.reference}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monai-kcross", description="Image-quality assessment for synthesized MRI.")
    parser.add_argument("--version", action="version", version=f"monai-kcross {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="score the bundled sample pair with every metric")
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    commands.add_parser("metrics", help="list the available metrics")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.device.startswith("cuda") and not torch.cuda.is_available():
                raise ValueError(f"--device {args.device} requested but CUDA is not available on this machine.")
            return run_demo(args.device)
        return print_metrics()
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"monai-kcross: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")  # silence the flush at interpreter exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
