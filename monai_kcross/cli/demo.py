"""The ``demo`` sub-command: the sample pair scored with every metric (whole volume, brain, lesion), then a
small simulated set scored with the full panel into a report."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..registry import MetricInfo, list_metrics
from .common import add_device, command


def add_parser(commands: Any) -> None:
    """Add the ``demo`` parser to the sub-commands."""
    demo = command(commands, "demo", "score the sample pair and a small simulated set; write a report")
    add_device(demo)
    demo.add_argument("--out", default="monai-kcross-demo", help="folder for the set, scores and report")
    demo.add_argument("--subjects", type=int, default=3, help="simulated subjects (6 cases each)")
    demo.set_defaults(run_command=run)


def _format(value: float) -> str:
    return f"{value:10.4f}" if abs(value) < 1e4 else f"{value:10.3g}"


def run_sample_table(device: str = "cpu") -> int:
    """Score the sample pair with every registered metric and print the table; returns an exit code."""
    from ..data import load_sample_pair, sample_data_dir

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
    inputs = {"lesion": regions["lesion"]}  # further images a metric may take (K-CROSS: its lesion mask)
    notes = []
    for info in list_metrics():
        options = _demo_options(info, shape)
        if "weights" in options:
            notes.append(f"ms_ssim uses {len(options['weights'])} scales: the volume is too small for 5.")
        if not info.masks:
            notes.append(f"{info.name} scores whole slices (no evaluation region); here with the lesion mask given.")
        start = time.perf_counter()
        try:
            values = [
                info.score(synthesized, reference, mask=mask, inputs=inputs, **options).mean().item()
                for mask in (regions.values() if info.masks else [None])
            ]
        except FileNotFoundError:
            print(f"{info.name:<17} {info.direction:<17}" + f"{'n/a':>14}" * len(regions) + "   (weights)")
            notes.append(f"{info.name} needs {info.needs_weights}: see `monai-kcross weights list`.")
            continue
        elapsed = time.perf_counter() - start
        cells = [f"{_format(v):>14}" for v in values] + [f"{'-':>14}"] * (len(regions) - len(values))
        print(f"{info.name:<17} {info.direction:<17}" + "".join(cells) + f"{elapsed:8.2f}s")
    print("\n" + "\n".join(notes) if notes else "")
    slice_wise = ", ".join(i.name for i in list_metrics() if i.volumes == "slice-wise")
    print(
        "Global scores look acceptable while the lesion region is badly wrong: score the regions that matter.\n"
        f"3-D handling: {slice_wise} are averaged over axial slices; the others are native 3-D."
    )
    return 0


def run_demo(device: str = "cpu", out: str | Path = "monai-kcross-demo", subjects: int = 3) -> int:
    """The demo: the sample-pair table, then a small simulated set scored with the full panel and a report."""
    from ..analysis.scoring import find_cases, score_cases
    from ..data.demo import DEMO_DEFECTS, write_demo_set

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
    from ..functional.ssim import MS_SSIM_WEIGHTS
    from ..registry import default_options

    options = default_options(info.name, shape)
    if len(options.get("weights", MS_SSIM_WEIGHTS)) == len(MS_SSIM_WEIGHTS):
        options.pop("weights", None)
    return options


def run(args: argparse.Namespace) -> int:
    return run_demo(args.device, args.out, args.subjects)
