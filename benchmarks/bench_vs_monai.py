"""Time this package's SSIM / MS-SSIM / PSNR against MONAI's on the same inputs, and compare peak memory.

Usage (from the repository root, inside the project's environment)::

    python benchmarks/bench_vs_monai.py            # all cases, CPU
    python benchmarks/bench_vs_monai.py --quick    # smaller volumes, for a smoke run
    python benchmarks/bench_vs_monai.py --device cuda

Each case is run in a fresh subprocess per implementation so that peak resident memory (CPU) or peak CUDA
memory can be attributed; times are the best of several repeats after one warm-up call. Targets (2 CPU cores):
3-D SSIM on 2x1x128^3 float32 at least 20x faster than ``monai.metrics.SSIMMetric(spatial_dims=3)``, 3-D
MS-SSIM on 176^3 (the smallest volume MONAI accepts with 5 scales) at least 10x faster than MONAI's
``MultiScaleSSIMMetric``, equal values to 1e-5, peak memory not above MONAI's.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "ssim3d": {"shape": (2, 1, 128, 128, 128), "quick": (2, 1, 64, 64, 64), "target": 20.0},
    "ms_ssim3d": {"shape": (1, 1, 176, 176, 176), "quick": (1, 1, 176, 176, 176), "target": 10.0},
    "ssim2d": {"shape": (16, 1, 256, 256), "quick": (4, 1, 256, 256), "target": None},
    "ms_ssim2d": {"shape": (16, 1, 256, 256), "quick": (4, 1, 256, 256), "target": None},
    "psnr3d": {"shape": (2, 1, 128, 128, 128), "quick": (2, 1, 64, 64, 64), "target": None},
}


def _build(case: str, impl: str):
    import monai.metrics as mm

    from monai_kcross import functional as kf

    dims = 3 if case.endswith("3d") else 2
    if case.startswith("ssim"):
        if impl == "monai":
            return lambda p, r: mm.SSIMMetric(spatial_dims=dims, data_range=1.0, reduction="none")(p, r).flatten()
        return lambda p, r: kf.ssim(p, r, data_range=1.0).mean(1)
    if case.startswith("ms_ssim"):
        if impl == "monai":
            return lambda p, r: mm.MultiScaleSSIMMetric(spatial_dims=dims, data_range=1.0, reduction="none")(
                p, r
            ).flatten()
        return lambda p, r: kf.ms_ssim(p, r, data_range=1.0).mean(1)
    if impl == "monai":
        return lambda p, r: mm.PSNRMetric(max_val=1.0, reduction="none")(p, r).flatten()
    return lambda p, r: kf.psnr(p, r, data_range=1.0).mean(1)


def _child(case: str, impl: str, shape: tuple[int, ...], device: str, repeats: int) -> dict:
    """Run one implementation on one case in this (fresh) process; print a JSON line."""
    import torch

    generator = torch.Generator().manual_seed(0)
    ref = torch.rand(shape, generator=generator)
    ref = (
        torch.nn.functional.avg_pool3d(ref, 3, 1, 1)
        if len(shape) == 5
        else torch.nn.functional.avg_pool2d(ref, 3, 1, 1)
    )
    pred = (ref + 0.05 * torch.randn(shape, generator=generator)).clamp(0, 1)
    ref, pred = ref.to(device), pred.to(device)
    fn = _build(case, impl)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    values = fn(pred, ref)  # warm-up, and the peak-memory run
    sync()
    peak = (
        torch.cuda.max_memory_allocated() - base
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    )
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(pred, ref)
        sync()
        times.append(time.perf_counter() - start)
    return {
        "best_s": min(times),
        "median_s": sorted(times)[len(times) // 2],
        "peak_bytes": int(peak),
        "values": values.double().cpu().tolist(),
    }


def _run(case: str, impl: str, shape, device: str, repeats: int) -> dict:
    command = [sys.executable, __file__, "--child", case, impl, json.dumps(list(shape)), device, str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{case}/{impl} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, impl, shape, device, repeats = sys.argv[2:7]
        print(json.dumps(_child(case, impl, tuple(json.loads(shape)), device, int(repeats))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_vs_monai.json")
    args = parser.parse_args()

    import torch

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"device {args.device}"
    )
    header = (
        f"{'case':<10} {'shape':<22} {'ours (s)':>9} {'MONAI (s)':>10} {'speed-up':>9} {'target':>7} "
        f"{'max |diff|':>11} {'mem ours':>9} {'mem MONAI':>10}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    failed = False
    for case in args.cases:
        spec = CASES[case]
        shape = spec["quick"] if args.quick else spec["shape"]
        ours = _run(case, "ours", shape, args.device, repeats=5)
        monai = _run(case, "monai", shape, args.device, repeats=3)
        speedup = monai["best_s"] / ours["best_s"]
        diff = max(abs(a - b) for a, b in zip(ours["values"], monai["values"]))
        target = spec["target"]
        ok = (
            (target is None or speedup >= target) and diff <= 1e-5 and ours["peak_bytes"] <= max(monai["peak_bytes"], 1)
        )
        failed |= not ok and not args.quick
        print(
            f"{case:<10} {'x'.join(map(str, shape)):<22} {ours['best_s']:9.3f} {monai['best_s']:10.3f} "
            f"{speedup:8.1f}x {'' if target is None else f'{target:.0f}x':>7} {diff:11.1e} "
            f"{ours['peak_bytes'] / 2**20:8.0f}M {monai['peak_bytes'] / 2**20:9.0f}M {'' if ok else '  <-- MISSED'}"
        )
        results[case] = {"shape": shape, "ours": ours, "monai": monai, "speedup": speedup, "max_abs_diff": diff}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
