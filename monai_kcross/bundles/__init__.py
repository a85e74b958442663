"""MONAI bundles shipped with the package and the command that exports a trained K-CROSS run into one.

``kcross_brain_mri/`` is a standard MONAI bundle (``configs/{metadata,inference,evaluate,train}.json``,
``models/model.pt`` -- K-CROSS -- and ``models/segmenter.pt`` -- its lesion segmenter --, ``docs/README.md``);
:data:`KCROSS_BUNDLE` is its path. :func:`export_bundle` (CLI: ``monai-kcross kcross export RUN``) writes a
training run's weights into a bundle and records the version, changelog, library versions, evaluation figures
and training summary in its metadata.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch

__all__ = ["KCROSS_BUNDLE", "export_bundle"]

KCROSS_BUNDLE = Path(__file__).resolve().parent / "kcross_brain_mri"
MAX_BUNDLE_MB = 50.0


def _bump(version: str) -> str:
    major, minor, patch = (int(p) for p in version.split("."))
    return f"{major}.{minor}.{patch + 1}"


def export_bundle(
    run: str | Path,
    bundle: str | Path = KCROSS_BUNDLE,
    version: str | None = None,
    changelog: str = "retrained K-CROSS weights",
    eval_metrics: dict[str, Any] | None = None,
) -> Path:
    """Copy a trained K-CROSS (a run folder or checkpoint) into a bundle and update its metadata.

    The checkpoint is re-saved as plain tensors (``{"config", "state_dict"}``, loadable with
    ``torch.load(weights_only=True)``); the bundle's other files are kept. ``version`` defaults to the
    metadata's version with the patch number increased.

    Args:
        run: training output folder (``model.pt`` and ``training_summary.json``) or a ``model.pt`` file.
        bundle: bundle folder (default: the one shipped inside the package).
        version: new bundle version.
        changelog: changelog line for that version.
        eval_metrics: figures to record in ``metadata.json`` (e.g. held-out SRCC per metric).

    Returns:
        The path of the written ``models/model.pt``.

    Raises:
        FileNotFoundError: no checkpoint in ``run`` or no ``configs/metadata.json`` in ``bundle``.
        ValueError: the bundle would exceed 50 MB.
    """
    from ..metrics.kcross import load_kcross

    run, bundle = Path(run), Path(bundle)
    metadata_file = bundle / "configs" / "metadata.json"
    if not metadata_file.is_file():
        raise FileNotFoundError(f"{metadata_file} not found: {bundle} is not a bundle folder.")
    network = load_kcross(run)
    target = bundle / "models" / "model.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    torch.save({"config": network.config.to_dict(), "state_dict": state}, target)
    summary_file = (run if run.is_dir() else run.parent) / "training_summary.json"
    if summary_file.is_file():
        shutil.copy(summary_file, bundle / "docs" / "training_summary.json")
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 2**20
    if size > MAX_BUNDLE_MB:
        raise ValueError(f"bundle {bundle} is {size:.1f} MB, above the {MAX_BUNDLE_MB:.0f} MB limit.")
    metadata = json.loads(metadata_file.read_text())
    version = version or _bump(metadata["version"])
    metadata["version"] = version
    metadata["changelog"] = {version: f"{changelog} ({date.today().isoformat()})", **metadata.get("changelog", {})}
    metadata["monai_version"] = monai.__version__
    metadata["pytorch_version"] = torch.__version__.split("+")[0]
    metadata["numpy_version"] = np.__version__
    metadata["network_config"] = network.config.to_dict()
    metadata["parameters"] = int(sum(p.numel() for p in network.parameters()))
    if eval_metrics is not None:
        metadata["eval_metrics"] = eval_metrics
    metadata_file.write_text(json.dumps(metadata, indent=4) + "\n")
    return target
