"""Throughput of LPIPS-VGG on single-channel 256x256 images, this package against the ``lpips`` package.

    python benchmarks/bench_lpips.py [--batch 32] [--device cpu|cuda] [--reference-python /path/to/python]

``--reference-python`` names an interpreter that has the ``lpips`` package and torchvision (it cannot live in
this environment, see README); the same measurement is run there on inputs of the same shape. Random backbone
weights are used on both sides (speed does not depend on the values). Reports images per second (best of
repeats, after a warm-up).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

REFERENCE_SNIPPET = """
import json, sys, time, torch, lpips
batch, device, repeats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).to(device).eval()
x = torch.rand(batch, 1, 256, 256, device=device).repeat(1, 3, 1, 1) * 2 - 1
y = torch.rand(batch, 1, 256, 256, device=device).repeat(1, 3, 1, 1) * 2 - 1
sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
times = []
with torch.no_grad():
    model(x, y); sync()
    for _ in range(repeats):
        start = time.perf_counter(); model(x, y); sync(); times.append(time.perf_counter() - start)
print(json.dumps({"images_per_s": batch / min(times), "torch": torch.__version__}))
"""


def ours(batch: int, device: str, repeats: int) -> dict:
    import torch

    from monai_kcross.perceptual import lpips

    x = torch.rand(batch, 1, 256, 256, device=device)
    y = torch.rand(batch, 1, 256, 256, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    with torch.no_grad():
        lpips(x, y, data_range=1.0, backbone_weights="random:0", batch_size=batch)
        sync()
        for _ in range(repeats):
            start = time.perf_counter()
            lpips(x, y, data_range=1.0, backbone_weights="random:0", batch_size=batch)
            sync()
            times.append(time.perf_counter() - start)
    return {"images_per_s": batch / min(times), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-python", default=None)
    args = parser.parse_args()
    result = {"monai_kcross": ours(args.batch, args.device, args.repeats)}
    if args.reference_python:
        done = subprocess.run(
            [args.reference_python, "-c", REFERENCE_SNIPPET, str(args.batch), args.device, str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        result["lpips_package"] = json.loads(done.stdout.strip().splitlines()[-1])
        result["ratio"] = result["monai_kcross"]["images_per_s"] / result["lpips_package"]["images_per_s"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
