"""The ``metrics`` sub-command: the registry (direction, range, ideal value, 3-D handling, reference)."""

from __future__ import annotations

import argparse
from typing import Any

from ..registry import list_metrics
from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``metrics`` parser to the sub-commands."""
    parser = command(commands, "metrics", "list the available metrics")
    parser.set_defaults(run_command=run)


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


def run(args: argparse.Namespace) -> int:
    return print_metrics()
