"""Time every classic metric against each importable peer that computes the same value, in one process.

Usage (repository root, the project's environment)::

    python benchmarks/bench_peers.py                 # 2-D 8x1x256^2 and 3-D 2x1x128^3, 2 threads
    python benchmarks/bench_peers.py --quick         # smaller inputs, fewer repeats (a smoke run)
    python benchmarks/bench_peers.py --only ssim,psnr --repeats 9
    python benchmarks/bench_peers.py --device cuda   # the same cells on a GPU (CPU-only peers left out, no TF32)

Protocol: float32 inputs in ``[0, 1]`` (a smoothed random reference and a noisy prediction), ``data_range=1``
for every implementation, ``torch.set_num_threads(2)``; each cell runs every implementation once to warm up,
checks that their per-image values agree with ours to the cell's stated tolerance, then times
``--repeats`` (>= 5) rounds in which the implementations alternate (interleaved, so a load spike hits all of
them), and keeps each one's minimum. A cell prints our time and, per peer, ``peer time / our time`` (above 1:
we are faster). Peers: MONAI, pytorch-msssim and scikit-image (always installed), piq, torchmetrics and pyiqa
when importable (they need torchvision; otherwise the cell says "not importable").

A second table measures the per-call overhead on small inputs (1x1x32^2): the public function (validation,
intensity policy, masks) against the bare computation it wraps, in calls per second.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from monai_kcross import functional as kf

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MS_SSIM_3D_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363)  # 4 scales: 128^3 holds an 11-tap window at 1/8


@dataclass
class Cell:
    """One metric at one input shape: our function, the peers and the tolerance on per-image values."""

    metric: str
    dims: int
    ours: Fn
    tolerance: float
    relative: bool = False
    peers: dict[str, Fn | str] = field(default_factory=dict)  # a string says why the peer is absent


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except Exception:  # any import failure means "not importable" (a torchvision mismatch, ...)
        return None


def _per_image(values: torch.Tensor | float, batch: int) -> torch.Tensor:
    values = values.detach().cpu() if isinstance(values, torch.Tensor) else values
    return torch.as_tensor(values, dtype=torch.float64).reshape(batch, -1).mean(1)


def _numpy_per_image(function: Callable[[np.ndarray, np.ndarray], float]) -> Fn:
    def run(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        p, r = pred.numpy(), ref.numpy()
        return torch.tensor([function(r[b, 0], p[b, 0]) for b in range(p.shape[0])])

    return run


def build_cells(dims: int, device: str = "cpu") -> list[Cell]:
    import monai.metrics as mm
    import pytorch_msssim
    from skimage import metrics as skm

    piq = _optional("piq")
    tm = _optional("torchmetrics.functional.image")
    pyiqa_nlpd = _optional("pyiqa.archs.nlpd_arch")
    absent = "not importable"
    on_cpu = torch.device(device).type == "cpu"
    batch_dims = tuple(range(1, dims + 2))

    def ours(name: str, **options) -> Fn:
        function = getattr(kf, name)
        return lambda p, r: function(p, r, **options)

    cells = [
        Cell("mae", dims, ours("mae"), 1e-6, True, {"MONAI": lambda p, r: mm.MAEMetric(reduction="none")(p, r)}),
        Cell(
            "mse",
            dims,
            ours("mse"),
            1e-6,
            True,
            {
                "MONAI": lambda p, r: mm.MSEMetric(reduction="none")(p, r),
                "scikit-image": _numpy_per_image(lambda r, p: skm.mean_squared_error(r, p)) if on_cpu else "CPU only",
            },
        ),
        Cell("rmse", dims, ours("rmse"), 1e-6, True, {"MONAI": lambda p, r: mm.RMSEMetric(reduction="none")(p, r)}),
        Cell(
            "psnr",
            dims,
            ours("psnr", data_range=1.0),
            1e-4,
            False,
            {
                "MONAI": lambda p, r: mm.PSNRMetric(max_val=1.0, reduction="none")(p, r),
                "scikit-image": _numpy_per_image(lambda r, p: skm.peak_signal_noise_ratio(r, p, data_range=1.0))
                if on_cpu
                else "CPU only",
                "piq": (lambda p, r: piq.psnr(p, r, data_range=1.0, reduction="none")) if piq else absent,
                "torchmetrics": (
                    lambda p, r: tm.peak_signal_noise_ratio(p, r, data_range=1.0, reduction="none", dim=batch_dims)
                )
                if tm
                else absent,
            },
        ),
        Cell(
            "ssim",
            dims,
            ours("ssim", data_range=1.0),
            1e-5,
            False,
            {
                "MONAI": lambda p, r: mm.SSIMMetric(spatial_dims=dims, data_range=1.0, reduction="none")(p, r),
                "pytorch-msssim": lambda p, r: pytorch_msssim.ssim(p, r, data_range=1.0, size_average=False),
                "scikit-image": _numpy_per_image(
                    lambda r, p: skm.structural_similarity(
                        r, p, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
                    )
                )
                if on_cpu
                else "CPU only",
                "piq": (lambda p, r: piq.ssim(p, r, data_range=1.0, reduction="none", downsample=False))
                if piq and dims == 2
                else ("2-D only" if piq else absent),
                "torchmetrics": (
                    lambda p, r: tm.structural_similarity_index_measure(p, r, data_range=1.0, reduction="none")
                )
                if tm
                else absent,
            },
        ),
    ]
    ms_weights = kf.MS_SSIM_WEIGHTS if dims == 2 else MS_SSIM_3D_WEIGHTS
    ms_peers: dict[str, Fn | str] = {
        "MONAI": lambda p, r: mm.MultiScaleSSIMMetric(
            spatial_dims=dims, data_range=1.0, weights=ms_weights, reduction="none"
        )(p, r),
    }
    if dims == 2:
        ms_peers["pytorch-msssim"] = lambda p, r: pytorch_msssim.ms_ssim(p, r, data_range=1.0, size_average=False)
        ms_peers["piq"] = (lambda p, r: piq.multi_scale_ssim(p, r, data_range=1.0, reduction="none")) if piq else absent
        ms_peers["torchmetrics"] = (
            (lambda p, r: tm.multiscale_structural_similarity_index_measure(p, r, data_range=1.0, reduction="none"))
            if tm
            else absent
        )
    else:
        ms_peers["pytorch-msssim"] = "needs > 160 voxels per side for any number of scales"
    cells.append(Cell("ms_ssim", dims, ours("ms_ssim", data_range=1.0, weights=ms_weights), 1e-5, False, ms_peers))
    if dims == 2:  # 2-D by definition; no peer scores volumes slice-wise
        planar: list[tuple[str, float, str, Fn | None]] = [
            ("gmsd", 1e-6, "piq", piq and (lambda p, r: piq.gmsd(p, r, data_range=1.0, reduction="none"))),
            (
                "ms_gmsd",
                1e-6,
                "piq",
                piq and (lambda p, r: piq.multi_scale_gmsd(p, r, data_range=1.0, reduction="none")),
            ),
            ("haarpsi", 1e-5, "piq", piq and (lambda p, r: piq.haarpsi(p, r, data_range=1.0, reduction="none"))),
            ("nlpd", 1e-5, "pyiqa", pyiqa_nlpd and (lambda p, r: pyiqa_nlpd.NLPD()(p, r))),
        ]
        for metric, tolerance, peer_name, peer in planar:
            peers: dict[str, Fn | str] = {peer_name: peer or absent}
            cells.append(Cell(metric, 2, ours(metric, data_range=1.0), tolerance, False, peers))
    return cells


def make_pair(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ref = torch.rand(shape, generator=generator)
    pool = torch.nn.functional.avg_pool2d if len(shape) == 4 else torch.nn.functional.avg_pool3d
    ref = pool(ref, 3, 1, 1, count_include_pad=False)
    ref = (ref - ref.amin()) / (ref.amax() - ref.amin())
    pred = (ref + 0.05 * torch.randn(shape, generator=generator)).clamp(0, 1)
    return pred, ref


CLOCK = time.perf_counter  # --clock cpu: process CPU time (all threads), robust when other jobs load the cores


def _sync(tensor: torch.Tensor) -> None:
    """Wait for the tensor's device (a no-op on CPU), so that a GPU timing covers the kernels, not their launch."""
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)


def _timed(function: Fn, pred: torch.Tensor, ref: torch.Tensor) -> float:
    _sync(pred)
    start = CLOCK()
    function(pred, ref)
    _sync(pred)
    return CLOCK() - start


def run_cell(cell: Cell, pred: torch.Tensor, ref: torch.Tensor, repeats: int) -> str:
    batch = pred.shape[0]
    with torch.no_grad():
        expected = _per_image(cell.ours(pred, ref), batch)
        live: dict[str, Fn] = {}
        notes: dict[str, str] = {}
        for name, peer in cell.peers.items():
            if isinstance(peer, str):
                notes[name] = peer
                continue
            try:
                values = _per_image(peer(pred, ref), batch)
            except Exception as error:  # a peer that cannot run this case is reported, not fatal
                notes[name] = f"failed: {type(error).__name__}: {str(error)[:60]}"
                continue
            gap = (values - expected).abs()
            if cell.relative:
                gap = gap / expected.abs()
            if float(gap.max()) > cell.tolerance:
                notes[name] = f"values differ by {float(gap.max()):.2g} (> {cell.tolerance:g})"
                continue
            live[name] = peer
        best = {name: float("inf") for name in ["ours", *live]}
        functions = {"ours": cell.ours, **live}
        for _ in range(repeats):
            for name, function in functions.items():
                best[name] = min(best[name], _timed(function, pred, ref))
    kind = "rel." if cell.relative else "abs."
    parts = [f"{cell.metric:8s} {cell.dims}-D  ours {best['ours'] * 1e3:9.2f} ms  (tol {kind} {cell.tolerance:g})"]
    for name in cell.peers:
        if name in live:
            parts.append(f"{name} {best[name] / best['ours']:.2f}x ({best[name] * 1e3:.2f} ms)")
        else:
            parts.append(f"{name}: {notes[name]}")
    return " | ".join(parts)


def overhead_table(repeats: int, device: str = "cpu") -> list[str]:
    """Calls per second on 1x1x32^2 for the public function and for the bare computation it wraps."""
    from monai_kcross.functional.filtering import halve2d, window_1d

    gmsd_module = importlib.import_module("monai_kcross.functional.gmsd")
    haarpsi_module = importlib.import_module("monai_kcross.functional.haarpsi")
    ssim_module = importlib.import_module("monai_kcross.functional.ssim")

    pred, ref = (x.to(device) for x in make_pair((1, 1, 32, 32), seed=1))
    windows = [window_1d("gaussian", 11, 1.5)] * 2
    low, span = torch.zeros(1, 1, 1, 1, device=device), torch.ones(1, 1, 1, 1, device=device)
    bare: dict[str, tuple[Fn, Fn]] = {
        "mae": (lambda p, r: kf.mae(p, r), lambda p, r: (p - r).abs().mean((2, 3))),
        "psnr": (
            lambda p, r: kf.psnr(p, r, data_range=1.0),
            lambda p, r: -10 * torch.log10((p - r).square().mean((2, 3))),
        ),
        "ssim": (
            lambda p, r: kf.ssim(p, r, data_range=1.0),
            lambda p, r: ssim_module._ssim_and_cs(p, r, low, span, None, windows, 1e-4, 9e-4, 1.0, "ssim", "raise")[0],
        ),
        "gmsd": (
            lambda p, r: kf.gmsd(p, r, data_range=1.0),
            lambda p, r: gmsd_module._deviation(halve2d(p), halve2d(r), None, 170 / 255**2, 0.0),
        ),
        "haarpsi": (
            lambda p, r: kf.haarpsi(p, r, data_range=1.0),
            lambda p, r: haarpsi_module._haarpsi_core(p, r, None, True, 30.0, 4.2),
        ),
    }
    lines = ["overhead on 1x1x32^2 (calls/s, higher is better): public function vs bare computation"]
    with torch.no_grad():
        for name, (public, core) in bare.items():
            torch.testing.assert_close(public(pred, ref).double(), core(pred, ref).double(), atol=1e-5, rtol=0)
            best = {"public": float("inf"), "bare": float("inf")}
            for _ in range(repeats):
                for key, function in (("public", public), ("bare", core)):
                    _sync(pred)
                    start = CLOCK()
                    for _ in range(50):
                        function(pred, ref)
                    _sync(pred)
                    best[key] = min(best[key], (CLOCK() - start) / 50)
            extra = (best["public"] - best["bare"]) * 1e6
            lines.append(
                f"{name:8s} public {1 / best['public']:9.0f}/s  bare {1 / best['bare']:9.0f}/s  "
                f"overhead {extra:6.1f} us/call"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per cell (>= 5)")
    parser.add_argument("--quick", action="store_true", help="2-D 2x1x256^2, 3-D 1x1x64^3, 5 repeats")
    parser.add_argument("--only", default="", help="comma-separated metric names")
    parser.add_argument("--no-3d", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where every implementation runs")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU time, for a loaded machine"
    )
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):  # every implementation in full float32 (cuDNN convolutions default to TF32)
        torch.backends.cudnn.allow_tf32 = False
    repeats = 5 if args.quick else max(5, args.repeats)
    shapes = {2: (2, 1, 256, 256) if args.quick else (8, 1, 256, 256)}
    if not args.no_3d:
        shapes[3] = (1, 1, 64, 64, 64) if args.quick else (2, 1, 128, 128, 128)
    wanted = {name for name in args.only.split(",") if name}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, min of {repeats} interleaved runs, "
        f"{args.clock} clock, device {args.device}"
        + (f" ({torch.cuda.get_device_name(args.device)})" if args.device.startswith("cuda") else "")
    )
    for dims, shape in shapes.items():
        pred, ref = (x.to(args.device) for x in make_pair(shape))
        print(f"\n{dims}-D {'x'.join(map(str, shape))}: ratio = peer time / our time (> 1: monai-kcross is faster)")
        for cell in build_cells(dims, args.device):
            if not wanted or cell.metric in wanted:
                print(run_cell(cell, pred, ref, repeats), flush=True)
    print()
    print("\n".join(overhead_table(repeats, args.device)))


if __name__ == "__main__":
    main()
