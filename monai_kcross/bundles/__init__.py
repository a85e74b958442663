"""MONAI bundles shipped with the package and the command that exports a trained K-CROSS run into one.

``kcross_brain_mri/`` is a standard MONAI bundle (``configs/{metadata,inference,evaluate,train}.json``,
``models/model.pt`` -- K-CROSS -- and ``models/segmenter.pt`` -- its lesion segmenter --, ``docs/README.md``,
``configs/logging.conf``, ``large_files.yml``); :data:`KCROSS_BUNDLE` is its path. Its ``network_def`` is
:class:`~monai_kcross.bundles.workflow.KCrossBundleNetwork`. :func:`export_bundle` (CLI: ``monai-kcross kcross
export RUN``) writes a training run's weights into a bundle and records the version, changelog, library
versions, evaluation figures, training summary and weight hashes; :func:`verify_bundle` (CLI: ``monai-kcross
bundle verify``) checks a bundle without running anything from it (:mod:`monai_kcross.bundles.verify`).
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

from ..networks.checkpoints import KCROSS_BUNDLE
from .verify import LARGE_FILES, large_files, verify_bundle
from .workflow import KCrossBundleNetwork

__all__ = [
    "BUNDLE_SCHEMA",
    "KCROSS_BUNDLE",
    "KCrossBundleNetwork",
    "bundle_info",
    "export_bundle",
    "required_packages",
    "verify_bundle",
]

MAX_BUNDLE_MB = 50.0
# MONAI's bundle metadata schema (the URL in metadata.json), shipped so that verification works offline
BUNDLE_SCHEMA = Path(__file__).resolve().parent / "schema" / "meta_schema_20240725.json"


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
    ``torch.load(weights_only=True)``) and ``large_files.yml`` lists the new weights' hashes; the bundle's other
    files are kept. ``version`` defaults to the
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
    from ..networks.checkpoints import load_kcross

    run, bundle = Path(run), Path(bundle)
    metadata_file = bundle / "configs" / "metadata.json"
    _metadata(bundle)
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
    metadata["required_packages_version"] = required_packages()
    metadata["network_config"] = network.config.to_dict()
    metadata["parameters"] = int(sum(p.numel() for p in network.parameters()))
    if eval_metrics is not None:
        metadata["eval_metrics"] = eval_metrics
    metadata_file.write_text(json.dumps(metadata, indent=4) + "\n")
    (bundle / LARGE_FILES).write_text(json.dumps(large_files(bundle), indent=4) + "\n")
    return target


def required_packages() -> dict[str, str]:
    """The packages a bundle's configs need beyond MONAI, PyTorch and NumPy, at their installed versions: the
    package whose code builds ``network_def`` (a new K-CROSS architecture needs the monai-kcross that has it), NIfTI
    reading and ignite's metrics."""
    from importlib.metadata import version

    from .. import __version__

    return {"monai-kcross": __version__, "nibabel": version("nibabel"), "pytorch-ignite": version("pytorch-ignite")}


def _metadata(bundle: Path) -> dict[str, Any]:
    metadata_file = bundle / "configs" / "metadata.json"
    if not metadata_file.is_file():
        raise FileNotFoundError(f"{metadata_file} not found: {bundle} is not a bundle folder.")
    return json.loads(metadata_file.read_text())


def bundle_info(bundle: str | Path = KCROSS_BUNDLE) -> str:
    """A readable description of a bundle: name, version, changelog, evaluation figures, files and sizes."""
    bundle = Path(bundle)
    metadata = _metadata(bundle)
    lines = [
        f"{metadata.get('name', bundle.name)} {metadata['version']}  ({bundle})",
        f"task: {metadata.get('task', '')}",
        f"monai {metadata['monai_version']}, pytorch {metadata['pytorch_version']}, "
        f"parameters {metadata.get('parameters', 'n/a')}",
        "changelog:",
        *(f"  {version}: {text}" for version, text in metadata.get("changelog", {}).items()),
        "evaluation:",
        *(f"  {key}: {value}" for key, value in metadata.get("eval_metrics", {}).items()),
        "files:",
    ]
    files = sorted(f for f in bundle.rglob("*") if f.is_file())
    lines += [f"  {f.relative_to(bundle)}  {f.stat().st_size / 2**20:.2f} MB" for f in files]
    lines.append(f"total {sum(f.stat().st_size for f in files) / 2**20:.2f} MB")
    return "\n".join(lines)
