"""Pin the shipped K-CROSS bundle's scores on its example datalist: ``kcross_bundle_scores.json``.

The scores come from the bundle's own inference workflow -- ``configs/inference.json`` run by MONAI's
``ConfigWorkflow``, weights loaded by its ``CheckpointLoader`` -- on the ``test`` split of
``docs/example_datalist.json``, once with the lesion masks predicted by the segmenter and once with the
datalist's masks given (``use_lesion_masks``). ``tests/bundles/test_bundle_golden.py`` compares the current scores with
them, so that a change of weights, front end or preprocessing cannot pass silently.

Regenerate **only together with a new bundle version** (``version`` and ``changelog`` in
``configs/metadata.json``; ``monai-kcross kcross export`` does both), from the repository root::

    python tests/golden/make_kcross_bundle_golden.py
"""

from __future__ import annotations

import csv
import json
import platform
import sys
import tempfile
from pathlib import Path

import monai
import torch

GOLDEN = Path(__file__).resolve().parent / "kcross_bundle_scores.json"
# the scores are in [0, 1]; this bounds differences between CPUs and thread counts, far below any real change
TOLERANCE = 1e-4
MODES = {"predicted_lesion_masks": False, "given_lesion_masks": True}


def bundle_scores(bundle: Path, work_dir: Path) -> dict[str, dict[str, float]]:
    """``{mode: {synthesized image (relative to the bundle): score}}`` from the bundle's inference workflow."""
    from monai.bundle import ConfigWorkflow

    scores = {}
    for mode, use_masks in MODES.items():
        output = work_dir / mode
        workflow = ConfigWorkflow(
            config_file=str(bundle / "configs" / "inference.json"),
            logging_file=False,
            workflow_type="inference",
            bundle_root=str(bundle),
            output_dir=str(output),
            use_lesion_masks=use_masks,
            device="$torch.device('cpu')",
        )
        workflow.initialize()
        workflow.run()
        workflow.finalize()
        with (output / "kcross_scores.csv").open() as stream:
            scores[mode] = {str(Path(row[0]).relative_to(bundle)): float(row[1]) for row in csv.reader(stream)}
    return scores


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from monai_kcross.bundles import KCROSS_BUNDLE

    metadata = json.loads((KCROSS_BUNDLE / "configs" / "metadata.json").read_text())
    with tempfile.TemporaryDirectory() as work_dir:
        scores = bundle_scores(KCROSS_BUNDLE, Path(work_dir))
    golden = {
        "bundle_version": metadata["version"],
        "datalist": "docs/example_datalist.json, split 'test'",
        "tolerance": TOLERANCE,
        "generated_with": {
            "script": "tests/golden/make_kcross_bundle_golden.py",
            "torch": torch.__version__,
            "monai": monai.__version__,
            "python": platform.python_version(),
        },
        "regenerate": "only together with a new bundle version in configs/metadata.json",
        "scores": scores,
    }
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {GOLDEN} for bundle {metadata['version']}: {json.dumps(scores, indent=1)}")


if __name__ == "__main__":
    main()
