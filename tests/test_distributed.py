"""Metric buffers gather across processes: 2 gloo ranks give the single-process result."""

from __future__ import annotations

import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_kcross.metrics import HaarPSIMetric, SSIMMetric

from .conftest import perturbed_pair


def _data():
    pred, ref = perturbed_pair((6, 1, 36, 36), seed=60)
    mask = torch.ones_like(ref, dtype=torch.bool)
    mask[:, :, :10] = False
    return pred, ref, mask


def _worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        pred, ref, mask = _data()
        shard = slice(rank * 3, rank * 3 + 3)
        ssim_metric = SSIMMetric(data_range=1.0)
        haar_metric = HaarPSIMetric(data_range=1.0, reduction="none")
        ssim_metric(pred[shard], ref[shard], mask=mask[shard])
        haar_metric(pred[shard], ref[shard])
        result = {"ssim": ssim_metric.aggregate(), "haarpsi": haar_metric.aggregate()}
        if rank == 0:
            torch.save(result, out_file)
    finally:
        dist.destroy_process_group()


def test_two_process_aggregate_equals_single_process():
    with tempfile.TemporaryDirectory() as tmp:
        init_file, out_file = os.path.join(tmp, "init"), os.path.join(tmp, "out.pt")
        mp.spawn(_worker, args=(2, init_file, out_file), nprocs=2, join=True)
        gathered = torch.load(out_file, weights_only=True)
    pred, ref, mask = _data()
    single = SSIMMetric(data_range=1.0)
    single(pred, ref, mask=mask)
    torch.testing.assert_close(gathered["ssim"], single.aggregate())
    per_image = HaarPSIMetric(data_range=1.0, reduction="none")
    per_image(pred, ref)
    torch.testing.assert_close(gathered["haarpsi"], per_image.aggregate())
