"""The shipped bundle's scores on its example datalist are pinned (``tests/golden/kcross_bundle_scores.json``):
a change of weights, front end or preprocessing cannot pass silently, and the pin moves only with the version."""

from __future__ import annotations

import json

from monai_kcross.bundles import KCROSS_BUNDLE
from tests.golden.make_kcross_bundle_golden import GOLDEN, bundle_scores

REGENERATE = "python tests/golden/make_kcross_bundle_golden.py"


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
