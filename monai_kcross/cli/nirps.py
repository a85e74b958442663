"""The ``nirps`` sub-command: translation models trained on simulated data and the NIRPS-style labelled set."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``nirps`` parser to the sub-commands."""
    nirps = command(commands, "nirps", "build the NIRPS-style synthesized set with quality labels")
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
    nirps.set_defaults(run_command=run)


def run_nirps(args: argparse.Namespace) -> int:
    """The ``nirps`` sub-command."""
    from ..data.nirps import build_nirps_dataset, summarise

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


run = run_nirps
