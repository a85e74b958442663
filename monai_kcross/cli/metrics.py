"""The ``metrics`` sub-command: the registry (direction, range, ideal value, 3-D handling, reference)."""

from __future__ import annotations

import argparse
from typing import Any

from ..registry import list_metrics, list_no_reference_metrics, list_set_level_metrics
from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``metrics`` parser to the sub-commands."""
    parser = command(commands, "metrics", "list the available metrics")
    parser.set_defaults(run_command=run)


def print_metrics() -> int:
    """Print the registry: full-reference, no-reference and set-level metrics."""
    sections = (
        ("full-reference: f(y_pred, y)", list_metrics()),
        ("no-reference: f(y_pred)", list_no_reference_metrics()),
        ("set-level: a generated image set against a real one", list_set_level_metrics()),
    )
    for number, (title, infos) in enumerate(sections):
        print(("\n" if number else "") + f"{title}")
        print(f"{'name':<19} {'direction':<17} {'range':<16} {'ideal':>6}  {'3-D / values':<22} reference")
        for info in infos:
            low, high = info.value_range
            ideal = getattr(info, "ideal", None)
            values = getattr(info, "values", ())
            shape = getattr(info, "volumes", None) or values[0] + (f" (+{len(values) - 1})" if len(values) > 1 else "")
            print(
                f"{info.name:<19} {info.direction:<17} [{low:g}, {high:g}]".ljust(55)
                + f"{'-' if ideal is None else f'{ideal:g}':>6}  {shape:<22} {info.reference}"
                + (f" [needs {info.needs_weights}]" if getattr(info, "needs_weights", "") else "")
            )
    return 0


def run(args: argparse.Namespace) -> int:
    return print_metrics()
