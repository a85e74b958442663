"""Metric buffers gather across processes: 2 gloo ranks give the single-process result (per-image and set-level)."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_kcross.metrics import FIDMetric, HaarPSIMetric, PRDCMetric, SSIMMetric

from ..conftest import perturbed_pair


def _data():
    pred, ref = perturbed_pair((6, 1, 36, 36), seed=60)
    mask = torch.ones_like(ref, dtype=torch.bool)
    mask[:, :, :10] = False
    return pred, ref, mask


def _run(rank: int, world: int, init_file: str, out_file: str, compute) -> None:
    """One gloo rank: ``compute(rank, world)`` -> results, saved by rank 0."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = compute(rank, world)
        if rank == 0:
            torch.save(result, out_file)
    finally:
        dist.destroy_process_group()


def _on_two_processes(compute) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        init_file, out_file = os.path.join(tmp, "init"), os.path.join(tmp, "out.pt")
        mp.spawn(_run, args=(2, init_file, out_file, compute), nprocs=2, join=True)
        return torch.load(out_file, weights_only=True)


def _per_image_metrics(rank: int, world: int) -> dict:
    pred, ref, mask = _data()
    shard = slice(rank * 3, rank * 3 + 3)
    ssim_metric = SSIMMetric(data_range=1.0)
    haar_metric = HaarPSIMetric(data_range=1.0, reduction="none")
    ssim_metric(pred[shard], ref[shard], mask=mask[shard])
    haar_metric(pred[shard], ref[shard])
    return {"ssim": ssim_metric.aggregate(), "haarpsi": haar_metric.aggregate()}


def test_two_process_aggregate_equals_single_process():
    gathered = _on_two_processes(_per_image_metrics)
    pred, ref, mask = _data()
    single = SSIMMetric(data_range=1.0)
    single(pred, ref, mask=mask)
    torch.testing.assert_close(gathered["ssim"], single.aggregate())
    per_image = HaarPSIMetric(data_range=1.0, reduction="none")
    per_image(pred, ref)
    torch.testing.assert_close(gathered["haarpsi"], per_image.aggregate())


def _set_features():
    generator = torch.Generator().manual_seed(61)
    real = torch.randn(40, 6, generator=generator, dtype=torch.float64)
    generated = 0.8 * torch.randn(36, 6, generator=generator, dtype=torch.float64) + 0.3
    return real, generated


def _set_metrics() -> dict:
    return {"fid": FIDMetric(extractor=None), "prdc": PRDCMetric(extractor=None, k=3)}


def _set_level_metrics(rank: int, world: int) -> dict:
    real, generated = _set_features()
    metrics = _set_metrics()
    for metric in metrics.values():  # uneven shards, several calls per rank
        metric(y=real[rank::world])
        metric(y_pred=generated[rank::world][:5])
        metric(y_pred=generated[rank::world][5:])
    return {name: metric.aggregate().values for name, metric in metrics.items()}


def test_set_level_metrics_gather_features_across_processes():
    gathered = _on_two_processes(_set_level_metrics)
    real, generated = _set_features()
    # FID and PRDC do not depend on the order of samples, so the gathered sets give the single-process values
    for name, metric in _set_metrics().items():
        metric(y_pred=generated, y=real)
        expected = metric.aggregate().values
        assert gathered[name].keys() == expected.keys()
        for key, value in expected.items():
            assert gathered[name][key] == pytest.approx(value, rel=1e-9, abs=1e-12)
