"""The ``simulate`` sub-command: simulated paired multi-contrast subjects with tumour labels and a datalist."""

from __future__ import annotations

import argparse
from typing import Any

from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``simulate`` parser to the sub-commands."""
    simulate = command(commands, "simulate", "write simulated paired multi-contrast subjects")
    simulate.add_argument("--out", required=True, help="output folder (NIfTI in BraTS naming and datalist.json)")
    simulate.add_argument("--subjects", type=int, default=20, help="simulated subjects")
    simulate.add_argument("--spatial-dims", type=int, choices=(2, 3), default=2, help="2: axial slices, 3: volumes")
    simulate.add_argument("--slices", type=int, default=1, help="slices per subject (2-D)")
    simulate.add_argument("--lesion-fraction", type=float, default=0.75, help="fraction of subjects with a tumour")
    simulate.add_argument("--seed", type=int, default=0, help="base seed")
    simulate.set_defaults(run_command=run)


def run_simulate(args: argparse.Namespace) -> int:
    """The ``simulate`` sub-command."""
    from ..data import build_paired_dataset

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


run = run_simulate
