"""The ``bundle info|verify`` sub-command: describe the K-CROSS bundle or check it offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``bundle`` parser to the sub-commands."""
    bundle = command(commands, "bundle", "describe or verify the K-CROSS bundle")
    bundle.add_argument("action", choices=("info", "verify"), help="info: describe it; verify: check it offline")
    bundle.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    bundle.add_argument(
        "--trust",
        action="store_true",
        help="verify: also run MONAI's verify_net_in_out, which evaluates the bundle's config expressions -- only "
        "for bundles you trust (default: off; verify then runs nothing from the bundle)",
    )
    bundle.set_defaults(run_command=run)


def run_bundle(args: argparse.Namespace) -> int:
    """The ``bundle info|verify`` sub-command."""
    from ..bundles import KCROSS_BUNDLE, bundle_info, verify_bundle

    bundle = Path(args.bundle) if args.bundle else KCROSS_BUNDLE
    if args.action == "info":
        print(bundle_info(bundle))
        return 0
    for check in verify_bundle(bundle, trust=args.trust):
        print(f"ok: {check}")
    return 0


run = run_bundle
