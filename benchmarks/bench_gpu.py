"""GPU figures in one run, for the day a CUDA device is at hand (the CPU suite never needs one).

    python benchmarks/bench_gpu.py --out OUT [--sections kcross,monai,sync,score] [--device cuda]

Sections, each independent (a failure is printed and the next section runs); results go to ``OUT/gpu.json``:

* ``kcross``: the shipped bundle's slices per second at 240x240 (BraTS in-plane size) with the segmenter
  predicting the lesions and with the lesion mask given, for several slices per network call (``"auto"``
  included), peak GPU memory per setting, seconds per 240x240x155 volume (slice-wise, empty slices skipped), and
  the largest difference between the GPU and the CPU score on the same slices (cuDNN's TF32 default on, then off).
* ``monai``: 3-D SSIM on 2x1x160^3 and MS-SSIM on 1x1x176^3 against MONAI's ``SSIMMetric`` /
  ``MultiScaleSSIMMetric`` on the same card: best of 5 synchronised runs, values, peak memory.
* ``sync``: host-device synchronisations per call of every registered metric and of K-CROSS
  (``torch.cuda.set_sync_debug_mode``), at two batch sizes and, for volumes, two depths: a count that grows
  with the input is a hot-path ``.item()`` / ``.cpu()`` in a loop.
* ``profile``: ``torch.profiler`` tables (CPU and CUDA time per operator, kernel launches per call) of the small
  2-D cells where the package trails its peers on a GPU (SSIM, MS-SSIM, GMSD, MAE, PSNR on 8x1x256^2) and of
  K-CROSS on 72 slices 240x240, written to ``OUT/profile_<case>.txt``.
* ``score``: ``monai-kcross score --device cuda`` on 20 simulated volumes (``monai-kcross simulate
  --spatial-dims 3``) against noisy, blurred syntheses; wall time and the metrics run.

Timings synchronise the device before reading the clock. Inputs are float32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS: dict = {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_of(call: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Seconds of the fastest of ``repeats`` synchronised calls, after one warm-up call."""
    call()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _peak_mb(call: Callable[[], object], device: torch.device) -> float | None:
    """Peak GPU memory of one call above what was allocated before it (``None`` on the CPU)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    call()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _brain_slices(size: int = 240) -> dict[str, torch.Tensor]:
    """The sample pair's axial slices with head in them, resized to ``size x size`` (reference, synthesized, lesion)."""
    from monai_kcross.data import load_sample_pair

    pair = load_sample_pair()

    def axial(volume: torch.Tensor, mode: str) -> torch.Tensor:
        slices = volume.float()[0, 0].permute(2, 0, 1).unsqueeze(1)  # (D, 1, H, W)
        return F.interpolate(slices, size=(size, size), mode=mode)

    reference = axial(pair["reference"], "bilinear")
    keep = (reference > 0).float().mean((1, 2, 3)) > 0.05  # slices with head in them, as a volume scorer keeps
    return {
        "reference": reference[keep],
        "synthesized": axial(pair["synthesized"], "bilinear")[keep],
        "lesion": (axial(pair["lesion_mask"], "nearest") > 0.5).float()[keep],
    }


def section_kcross(device: torch.device, repeats: int) -> dict:
    from monai_kcross.metrics import kcross, load_kcross

    network = load_kcross(None, device)
    data = {key: value.to(device) for key, value in _brain_slices().items()}
    ref, pred = data["reference"], data["synthesized"]
    source = ref.flip(-1)  # any second contrast: the timing does not depend on it
    out: dict = {"slices": int(ref.shape[0]), "size": list(ref.shape[-2:])}
    for batch in (16, "auto", int(ref.shape[0])):
        for given in (False, True):

            def call(batch=batch, given=given):
                return kcross(pred, ref, source, data["lesion"] if given else None, network=network, batch_size=batch)

            seconds = _best_of(call, repeats, device)
            key = f"batch_{batch}_{'lesion_given' if given else 'lesion_predicted'}"
            out[key] = {"slices_per_s": ref.shape[0] / seconds, "peak_mb": _peak_mb(call, device)}
            print(f"kcross 240x240 {key}: {out[key]['slices_per_s']:.0f} slices/s", flush=True)
    doubled = [torch.cat([x, x]) for x in (pred, ref, source)]  # 2 x the slices: does a larger call pay?
    seconds = _best_of(lambda: kcross(*doubled, network=network), repeats, device)
    out["batch_auto_lesion_predicted_2x_slices"] = {"slices_per_s": 2 * ref.shape[0] / seconds}
    volume = torch.stack([ref[i % ref.shape[0]] for i in range(155)], dim=-1).unsqueeze(0)  # (1, 1, 240, 240, 155)
    volume_pred = torch.stack([pred[i % pred.shape[0]] for i in range(155)], dim=-1).unsqueeze(0)
    out["seconds_per_volume_240x240x155"] = _best_of(
        lambda: kcross(volume_pred, volume, volume.flip(-2), network=network), 3, device
    )
    print(f"kcross volume 240x240x155: {out['seconds_per_volume_240x240x155']:.3f} s", flush=True)
    # GPU against CPU on the same 16 slices
    cpu_network = load_kcross(None, "cpu")
    part = slice(30, 46)
    cpu = kcross(pred[part].cpu(), ref[part].cpu(), source[part].cpu(), network=cpu_network)
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        gpu = kcross(pred[part], ref[part], source[part], network=network).cpu()
        out[f"max_abs_gpu_minus_cpu_tf32_{tf32}"] = float((gpu - cpu).abs().max())
    torch.backends.cudnn.allow_tf32 = True
    out["cpu_scores_range"] = [float(cpu.min()), float(cpu.max())]
    print(json.dumps({k: v for k, v in out.items() if k.startswith("max_abs")}), flush=True)
    return out


def section_monai(device: torch.device, repeats: int) -> dict:
    import monai.metrics as mm

    from monai_kcross import functional as kf

    out: dict = {}
    generator = torch.Generator().manual_seed(0)
    for name, shape in (("ssim3d", (2, 1, 160, 160, 160)), ("ms_ssim3d", (1, 1, 176, 176, 176))):
        ref = F.avg_pool3d(torch.rand(shape, generator=generator), 3, 1, 1, count_include_pad=False)
        ref = ((ref - ref.min()) / (ref.max() - ref.min())).to(device)
        pred = (ref + 0.05 * torch.randn(shape, generator=generator).to(device)).clamp(0, 1)
        if name == "ssim3d":
            ours = lambda p=pred, r=ref: kf.ssim(p, r, data_range=1.0).mean(1)  # noqa: E731
            theirs = lambda p=pred, r=ref: mm.SSIMMetric(spatial_dims=3, data_range=1.0, reduction="none")(  # noqa: E731
                p, r
            ).flatten()
        else:
            ours = lambda p=pred, r=ref: kf.ms_ssim(p, r, data_range=1.0).mean(1)  # noqa: E731
            theirs = lambda p=pred, r=ref: mm.MultiScaleSSIMMetric(  # noqa: E731
                spatial_dims=3, data_range=1.0, reduction="none"
            )(p, r).flatten()
        cell: dict = {"shape": list(shape)}
        for tf32 in (True, False):  # MONAI filters with conv3d, which cuDNN runs in TF32 by default
            torch.backends.cudnn.allow_tf32 = tf32
            with torch.no_grad():
                a, b = ours().double().cpu(), theirs().double().cpu()
                cell[f"tf32_{tf32}"] = {
                    "ours_s": _best_of(ours, repeats, device),
                    "monai_s": _best_of(theirs, repeats, device),
                    "ours_peak_mb": _peak_mb(ours, device),
                    "monai_peak_mb": _peak_mb(theirs, device),
                    "max_abs_difference": float((a - b).abs().max()),
                    "ours": a.tolist(),
                }
            row = cell[f"tf32_{tf32}"]
            row["speedup"] = row["monai_s"] / row["ours_s"]
            print(f"{name} tf32={tf32}: {json.dumps(row)}", flush=True)
        torch.backends.cudnn.allow_tf32 = True
        out[name] = cell
    return out


SYNC_SITES: dict[str, dict[str, int]] = {}


def _count_syncs(call: Callable[[], object], label: str = "") -> int:
    """Host-device synchronisations during one call (warnings of ``torch.cuda.set_sync_debug_mode('warn')``);
    the Python lines that caused them are tallied in ``SYNC_SITES[label]``."""
    call()  # warm-up: lazy initialisation, cached windows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            call()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    sites = SYNC_SITES.setdefault(label, {})
    for w in syncs:
        site = f"{Path(w.filename).parent.name}/{Path(w.filename).name}:{w.lineno}"
        sites[site] = sites.get(site, 0) + 1
    return len(syncs)


def section_sync(device: torch.device) -> dict:
    import monai_kcross
    from monai_kcross.metrics import kcross, load_kcross

    out: dict = {}
    generator = torch.Generator().manual_seed(1)
    weights_missing = []
    for info in monai_kcross.list_metrics():
        counts = {}
        try:
            for label, shape in (
                ("2d_b2", (2, 1, 64, 64)),
                ("2d_b8", (8, 1, 64, 64)),
                ("3d_d16", (1, 1, 64, 64, 16)),
                ("3d_d48", (1, 1, 64, 64, 48)),
            ):
                ref = torch.rand(shape, generator=generator).to(device)
                pred = (ref + 0.05 * torch.rand(shape, generator=generator).to(device)).clamp(0, 1)
                options = {"data_range": 1.0}
                if info.name in {"ms_ssim", "iw_ssim"}:
                    options["weights"] = (0.5, 0.5)
                counts[label] = _count_syncs(lambda p=pred, r=ref, o=options, f=info.function: f(p, r, **o), info.name)
        except FileNotFoundError:
            weights_missing.append(info.name)
            continue
        except Exception as error:  # reported, not fatal
            counts["error"] = f"{type(error).__name__}: {str(error)[:120]}"
        out[info.name] = counts
        print(f"sync {info.name}: {counts}", flush=True)
    network = load_kcross(None, device)
    counts = {}
    for label, shape in (("2d_b4", (4, 1, 128, 128)), ("2d_b32", (32, 1, 128, 128)), ("3d_d32", (1, 1, 128, 128, 32))):
        ref = torch.rand(shape, generator=generator).to(device)
        counts[label] = _count_syncs(lambda r=ref: kcross(r.flip(-1), r, network=network), "kcross")
    out["kcross"] = counts
    out["skipped_weights_missing"] = weights_missing
    out["sites"] = SYNC_SITES
    print(f"sync kcross: {counts}", flush=True)
    return out


def section_profile(device: torch.device, out_dir: Path, calls: int = 20) -> dict:
    from torch.profiler import ProfilerActivity, profile

    import monai_kcross
    from monai_kcross.metrics import kcross, load_kcross

    generator = torch.Generator().manual_seed(2)
    ref = torch.rand(8, 1, 256, 256, generator=generator).to(device)
    pred = (ref + 0.05 * torch.rand(8, 1, 256, 256, generator=generator).to(device)).clamp(0, 1)
    names = ("ssim", "ms_ssim", "gmsd", "mae", "psnr")
    functions = {name: monai_kcross.get_metric_info(name).function for name in names}
    cases: dict[str, Callable[[], object]] = {
        name: (lambda f=function: f(pred, ref, data_range=1.0)) for name, function in functions.items()
    }
    network = load_kcross(None, device)
    slices = {key: value.to(device) for key, value in _brain_slices(240).items()}
    cases["kcross_240"] = lambda: kcross(slices["synthesized"], slices["reference"], network=network)
    out: dict = {}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for name, call in cases.items():
        repeats = 3 if name.startswith("kcross") else calls
        call()
        _sync(device)
        with profile(activities=activities) as prof:
            for _ in range(repeats):
                call()
            _sync(device)
        events = prof.key_averages()
        kernels = sum(e.count for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        table = events.table(sort_by=sort, row_limit=30)
        table += "\n" + events.table(sort_by="self_cpu_time_total", row_limit=30)
        (out_dir / f"profile_{name}.txt").write_text(table)
        out[name] = {"kernels_per_call": kernels / repeats, "calls": repeats}
        print(f"profile {name}: {kernels / repeats:.0f} kernels per call", flush=True)
    return out


def section_score(device: torch.device, work: Path, subjects: int = 20) -> dict:
    import nibabel as nib
    import numpy as np
    from scipy.ndimage import gaussian_filter

    reference = work / "panel"
    synthesized = work / "panel_synth"
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monai_kcross",
            "simulate",
            "--out",
            str(reference),
            "--subjects",
            str(subjects),
            "--spatial-dims",
            "3",
        ],
        check=True,
    )
    rng = np.random.default_rng(0)
    for t2 in sorted(reference.glob("*/*_t2.nii.gz")):
        image = nib.load(t2)
        data = np.asarray(image.dataobj, dtype=np.float32)
        noisy = gaussian_filter(data, 0.7) + rng.normal(0, 0.03 * float(data.max()), data.shape).astype(np.float32)
        synthesized.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(noisy, image.affine), synthesized / t2.name)
    out: dict = {"data_seconds": time.perf_counter() - start}
    for run in ("cuda", "cuda_again"):
        target = work / f"score_{run}"
        command = [sys.executable, "-m", "monai_kcross", "score", "--reference", str(reference)]
        command += ["--synthesized", str(synthesized), "--contrast", "t2", "--source-contrast", "t1"]
        command += ["--datalist-key", "all"]
        command += ["--device", str(device), "--out", str(target), "--no-report", "--no-progress", "--overwrite"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        out[f"{run}_seconds"] = time.perf_counter() - start
        out[f"{run}_returncode"] = done.returncode
        out[f"{run}_stderr_tail"] = done.stderr[-1500:]
        print(f"score {run}: rc {done.returncode}, {out[f'{run}_seconds']:.1f} s", flush=True)
        summary = target / "summary.json"
        if summary.exists():
            out["summary"] = json.loads(summary.read_text())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", default="kcross,monai,sync,score")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=20, help="volumes of the score section")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    RESULTS["environment"] = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cudnn_allow_tf32_default": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32_default": torch.backends.cuda.matmul.allow_tf32,
    }
    print(json.dumps(RESULTS["environment"]), flush=True)
    for name in args.sections.split(","):
        start = time.perf_counter()
        try:
            if name == "kcross":
                RESULTS[name] = section_kcross(device, args.repeats)
            elif name == "monai":
                RESULTS[name] = section_monai(device, args.repeats)
            elif name == "profile":
                RESULTS[name] = section_profile(device, out)
            elif name == "sync":
                RESULTS[name] = section_sync(device)
            elif name == "score":
                RESULTS[name] = section_score(device, Path("/tmp/bench_gpu"), args.subjects)
            else:
                raise ValueError(f"unknown section {name!r}")
        except Exception:
            RESULTS[name] = {"error": traceback.format_exc()[-3000:]}
            print(RESULTS[name]["error"], flush=True)
        RESULTS.setdefault("section_seconds", {})[name] = time.perf_counter() - start
        (out / "gpu.json").write_text(json.dumps(RESULTS, indent=1))
    print(f"wrote {out / 'gpu.json'}")


if __name__ == "__main__":
    main()
