"""Where the shipped K-CROSS bundle lives, and loading a trained K-CROSS network from it or from a checkpoint.

The one definition of the bundle folder: the segmenter's weights (:data:`SEGMENTER_WEIGHTS`), the bundle tools
(:mod:`monai_kcross.bundles`) and the metric (:func:`monai_kcross.metrics.kcross`) take it from here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..functional.model_cache import cached_model, file_version
from .kcross import KCross, KCrossConfig

__all__ = ["KCROSS_BUNDLE", "SEGMENTER_WEIGHTS", "load_kcross"]

KCROSS_BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "kcross_brain_mri"
SEGMENTER_WEIGHTS = KCROSS_BUNDLE / "models" / "segmenter.pt"


def load_kcross(path: str | Path | None = None, device: str | torch.device = "cpu") -> KCross:
    """A trained K-CROSS network (``eval()`` mode) from a checkpoint file or bundle folder.

    ``path`` defaults to the bundle shipped with the package; a folder means ``<folder>/models/model.pt`` (a
    bundle) or ``<folder>/model.pt`` (a training run).
    Checkpoints hold ``{"config": {...}, "state_dict": {...}}`` and load with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: naming the missing file.
    """
    path = Path(path) if path is not None else KCROSS_BUNDLE
    if path.is_dir() or not path.suffix:
        bundle_model, plain_model = path / "models" / "model.pt", path / "model.pt"
        path = plain_model if plain_model.is_file() and not bundle_model.is_file() else bundle_model
    if not path.is_file():
        raise FileNotFoundError(
            f"K-CROSS weights {path} not found; train them with `monai-kcross kcross train` or pass network=..."
        )

    def build() -> KCross:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        network = KCross(KCrossConfig.from_dict(checkpoint["config"]))
        network.load_state_dict(checkpoint["state_dict"])
        return network.to(device).eval()

    # a file rewritten in place (retraining, export) is loaded again
    return cached_model(("kcross", file_version(path), str(device)), build)
