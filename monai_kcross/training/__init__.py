"""Training workflows: the two-stage K-CROSS trainer."""

from .kcross import load_split, train_kcross

__all__ = ["load_split", "train_kcross"]
