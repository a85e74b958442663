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

Exit codes: 0 success, 2 bad arguments, 1 any other error (one line naming the problem and the fix), 3 for
``score``: finished, but some cases, values or files were not scored (each listed on stderr and in summary.json).

Each sub-command lives in its own module of this package (``demo``, ``score``, ``agreement``, ``bundle``,
``metrics``, ``simulate``, ``nirps``, ``weights``, ``kcross``, ``sensitivity``) with two functions:
``add_parser(commands)`` declares its options and ``run(args)`` runs it; ``common`` holds what they share. Only
light modules are imported at start: torch, MONAI and ignite are imported by the sub-command that needs them, so
that ``monai-kcross --help`` and ``monai-kcross metrics`` start at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import agreement, bundle, demo, kcross, metrics, nirps, score, sensitivity, simulate, weights
from .common import ONE_LINE_ERRORS, HelpFormatter, device_problem
from .score import check_data_range

__all__ = ["build_parser", "check_data_range", "main"]

SUBCOMMANDS = (demo, score, agreement, bundle, metrics, simulate, nirps, weights, kcross, sensitivity)


def build_parser() -> argparse.ArgumentParser:
    """The ``monai-kcross`` parser: every sub-command, each with ``run_command`` set to the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="monai-kcross",
        description="Image-quality assessment for synthesized MRI.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"monai-kcross {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        problem = device_problem(getattr(args, "device", "cpu"))
        if problem:
            raise ValueError(problem)
        return args.run_command(args)
    except BrokenPipeError:  # output piped into `head` and closed early (before OSError, its base class)
        sys.stdout = open(os.devnull, "w")  # silence the flush at interpreter exit
        return 0
    except ONE_LINE_ERRORS as error:
        print(f"monai-kcross: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
