"""What every sub-command shares: the help format, the ``--device`` option and its check, one-line errors."""

from __future__ import annotations

import argparse
from typing import Any

# errors that are the user's to fix (a message naming the file or option), printed as one line with exit code 1;
# OSError covers missing, unreadable and unwritable files
ONE_LINE_ERRORS = (ValueError, OSError, RuntimeError)


def device_problem(device: str) -> str | None:
    """Why ``--device`` cannot be used on this machine (``None`` if it can): no CUDA, or no such CUDA index."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"--device {device} requested but CUDA is not available on this machine."
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        return f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 and up."
    return None


class Deferred:
    """A default taken from a module that imports torch, read only when shown (``--help``) or used."""

    def __init__(self, reference: str) -> None:
        self.reference = reference

    def value(self) -> list:
        from ..registry import _load

        return list(_load(self.reference))

    def __str__(self) -> str:
        return str(self.value())


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with every option's default; options without a default (``None``) or flags say nothing more."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action, argparse._StoreTrueAction):
            return action.help or ""
        return super()._get_help_string(action)


def command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:<n>")
