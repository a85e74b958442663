"""The shipped bundle's scores on its example datalist are pinned (``tests/golden/kcross_bundle_scores.json``):
a change of weights, front end or preprocessing cannot pass silently, and the pin moves only with the version.

The pinned scores are checked against a computation that does not use the bundle's code path (no
``KCrossScorer``/``kcross()``, no MONAI workflow): the weights read with ``torch.load``, the unit-range map written
out here in NumPy, the K-CROSS network called directly. The bundle workflow itself is checked against the two
properties that hold whatever the weights: an exact copy scores exactly 1, and so does a strictly increasing
intensity map of the reference (histogram harmonisation inside the head).
"""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from monai_kcross.bundles import KCROSS_BUNDLE
from monai_kcross.networks import KCross, KCrossConfig
from tests.golden.make_kcross_bundle_golden import GOLDEN, bundle_scores

REGENERATE = "python tests/golden/make_kcross_bundle_golden.py"
DATALIST = KCROSS_BUNDLE / "docs" / "example_datalist.json"


def test_bundle_scores_match_the_golden_of_its_version(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    version = json.loads((KCROSS_BUNDLE / "configs" / "metadata.json").read_text())["version"]
    assert golden["bundle_version"] == version, (
        f"the bundle is version {version}, the golden scores pin version {golden['bundle_version']}: "
        f"regenerate them with `{REGENERATE}` (together with the new version's weights and changelog)."
    )
    scores = bundle_scores(KCROSS_BUNDLE, tmp_path)
    assert set(scores) == set(golden["scores"])
    for mode, expected in golden["scores"].items():
        assert set(scores[mode]) == set(expected), mode
        changed = {k: (expected[k], v) for k, v in scores[mode].items() if abs(v - expected[k]) > golden["tolerance"]}
        assert not changed, (
            f"bundle {version} scores ({mode}) changed beyond {golden['tolerance']}: {changed} (golden, now). "
            f"A change of weights or preprocessing needs a new bundle version in configs/metadata.json; "
            f"then regenerate with `{REGENERATE}`."
        )


def _slice(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(nib.load(path).dataobj, dtype=np.float64).squeeze())


def test_golden_scores_equal_a_direct_computation_with_the_lesion_masks():
    golden = json.loads(GOLDEN.read_text())
    checkpoint = torch.load(KCROSS_BUNDLE / "models" / "model.pt", weights_only=True)
    network = KCross(KCrossConfig.from_dict(checkpoint["config"]))
    network.load_state_dict(checkpoint["state_dict"])
    network.eval()
    entries = json.loads(DATALIST.read_text())["test"]
    for entry in entries:
        files = {k: DATALIST.parent / entry[k] for k in ("synthesized", "reference", "source", "label")}
        synthesized, reference, source, lesion = (_slice(files[k]) for k in files)
        low, high = reference.min(), reference.max()  # the reference's window onto [0, 1], the source its own
        unit = [(synthesized - low) / (high - low), (reference - low) / (high - low)]
        unit.append((source - source.min()) / (source.max() - source.min()))
        unit.append((lesion > 0).double())
        with torch.no_grad():
            score = network(*(u.float()[None, None] for u in unit))["score"]
        pinned = golden["scores"]["given_lesion_masks"][f"docs/{entry['synthesized']}"]
        assert float(score) == pytest.approx(pinned, abs=golden["tolerance"]), entry["synthesized"]


def _run_inference(entries: list[dict], folder) -> list[float]:
    (folder / "datalist.json").write_text(json.dumps({"test": entries}))
    workflow = ConfigWorkflow(
        config_file=str(KCROSS_BUNDLE / "configs" / "inference.json"),
        logging_file=False,
        workflow_type="inference",
        bundle_root=str(KCROSS_BUNDLE),
        datalist_file=str(folder / "datalist.json"),
        output_dir=str(folder / "out"),
        device="$torch.device('cpu')",
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    with (folder / "out" / "kcross_scores.csv").open() as stream:
        return [float(row[1]) for row in csv.reader(stream)]


def test_bundle_scores_an_exact_copy_and_increasing_intensity_maps_as_1(tmp_path):
    entries = []
    for entry in json.loads(DATALIST.read_text())["test"][::3]:  # one T2w and one FLAIR reference
        files = {k: str(DATALIST.parent / entry[k]) for k in ("reference", "source")}
        image = nib.load(files["reference"])
        reference = np.asarray(image.dataobj, dtype=np.float64)
        mapped = tmp_path / f"mapped_{len(entries)}.nii.gz"  # gamma 0.7, scale 3, offset 40: strictly increasing
        unit = (reference - reference.min()) / (reference.max() - reference.min())
        nib.save(nib.Nifti1Image((3 * unit**0.7 + 40).astype(np.float32), image.affine), mapped)
        entries += [{"synthesized": files["reference"], **files}, {"synthesized": str(mapped), **files}]
    scores = _run_inference(entries, tmp_path)
    assert scores[0::2] == [1.0, 1.0]  # exactly: kcross(x, x) == 1
    assert scores[1::2] == pytest.approx([1.0, 1.0], abs=1e-4)
