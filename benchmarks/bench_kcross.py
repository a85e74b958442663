"""K-CROSS inference speed and model size: the shipped bundle (or any checkpoint) on slices and on a volume.

    python benchmarks/bench_kcross.py [--network BUNDLE_OR_RUN] [--device cpu|cuda] [--batch 16] [--paper-size]

Reports, best of ``--repeats`` after a warm-up: slices per second at 112x128 (the NIRPS-style set) and 240x240
(BraTS in-plane size), with the lesion mask given and with the segmenter predicting it, seconds per simulated
MNI-space volume (121x145x121 at 1.5 mm, scored slice-wise), parameter counts and checkpoint size.
``--paper-size`` times an untrained network with the paper's layer widths instead (speed only).
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import torch

from monai_kcross.bundles import KCROSS_BUNDLE
from monai_kcross.metrics import kcross, load_kcross
from monai_kcross.networks import KCross, KCrossConfig


def _best_of(call, repeats: int, sync) -> float:
    call()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default=str(KCROSS_BUNDLE))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-size", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if args.paper_size:
        network = KCross(KCrossConfig()).to(device).eval()
        checkpoint_mb = None
    else:
        network = load_kcross(args.network, device)
        path = Path(args.network)
        path = path / "models" / "model.pt" if (path / "models").is_dir() else path
        path = path / "model.pt" if path.is_dir() else path
        checkpoint_mb = path.stat().st_size / 2**20
    parts = {
        "complex": network.complex_net,
        "structure": network.structure_net,
        "tumour": network.tumour_net,
        "heads": [network.complex_head, network.natural_head],
    }
    count = lambda m: sum(p.numel() for x in (m if isinstance(m, list) else [m]) for p in x.parameters())  # noqa: E731
    result: dict = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in network.parameters()),
        "parameters_by_part": {k: count(v) for k, v in parts.items()},
        "checkpoint_mb": checkpoint_mb,
    }
    for height, width in ((112, 128), (240, 240)):
        images = [torch.rand(args.batch, 1, height, width, device=device) for _ in range(3)]
        lesion = torch.zeros(args.batch, 1, height, width, device=device)
        lesion[..., height // 3 : height // 2, width // 3 : width // 2] = 1
        score = partial(kcross, *images, network=network, batch_size=args.batch)
        with_mask = _best_of(partial(score, lesion), args.repeats, sync)
        segmented = _best_of(score, args.repeats, sync)
        result[f"slices_per_s_{height}x{width}"] = {
            "lesion_given": args.batch / with_mask,
            "lesion_segmented": args.batch / segmented,
        }
    volume = [torch.rand(1, 1, 121, 145, 121, device=device) for _ in range(3)]
    result["seconds_per_volume_121x145x121"] = _best_of(
        lambda: kcross(*volume, network=network, batch_size=args.batch), 1, sync
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
