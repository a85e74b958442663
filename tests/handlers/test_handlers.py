"""ignite handlers inside a MONAI SupervisedEvaluator, with and without masks."""

from __future__ import annotations

import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine

import monai_kcross
from monai_kcross.functional import haarpsi, ssim
from monai_kcross.handlers import FullReferenceHandler, HaarPSIHandler, PSNRHandler, SSIMHandler
from monai_kcross.metrics import MAEMetric

from ..conftest import perturbed_pair


class Distort(torch.nn.Module):
    """A stand-in 'synthesis network': a fixed, voxel-wise intensity distortion of its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.9 * x + 0.05 * torch.sin(20 * x)


def make_evaluator(handlers: dict, with_mask: bool = False):
    _, refs = perturbed_pair((4, 1, 40, 40), seed=50, dtype=torch.float32)
    items = []
    for r in refs:
        mask = torch.zeros_like(r, dtype=torch.bool)
        mask[:, 8:32, 8:32] = True
        items.append({"image": r, "label": r, "mask": mask})
    loader = DataLoader(Dataset(items), batch_size=2)
    first, *others = handlers.items()
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=Distort(),
        key_val_metric=dict([first]),
        additional_metrics=dict(others),
        postprocessing=None,
    ), items


def test_handlers_in_supervised_evaluator():
    transform = from_engine(["pred", "label"])
    evaluator, items = make_evaluator(
        {
            "ssim": SSIMHandler(spatial_dims=2, data_range=1.0, output_transform=transform),
            "psnr": PSNRHandler(data_range=1.0, output_transform=transform),
            "haarpsi": HaarPSIHandler(data_range=1.0, output_transform=transform),
        }
    )
    evaluator.run()
    metrics = evaluator.state.metrics
    preds = torch.stack([Distort()(item["image"][None])[0] for item in items])
    labels = torch.stack([item["label"] for item in items])
    assert metrics["ssim"] == pytest.approx(ssim(preds, labels, data_range=1.0).mean().item(), abs=1e-6)
    assert metrics["haarpsi"] == pytest.approx(haarpsi(preds, labels, data_range=1.0).mean().item(), abs=1e-6)
    assert evaluator.state.metric_details["psnr"].shape == (4, 1)


def test_handler_with_mask_output():
    evaluator, items = make_evaluator(
        {"masked_ssim": SSIMHandler(data_range=1.0, output_transform=from_engine(["pred", "label"]), mask_key="mask")}
    )
    evaluator.run()
    preds = torch.stack([Distort()(item["image"][None])[0] for item in items])
    labels = torch.stack([item["label"] for item in items])
    masks = torch.stack([item["mask"] for item in items])
    expected = ssim(preds, labels, data_range=1.0, mask=masks).mean().item()
    assert evaluator.state.metrics["masked_ssim"] == pytest.approx(expected, abs=1e-6)
    assert expected != pytest.approx(ssim(preds, labels, data_range=1.0).mean().item(), abs=1e-4)


def test_missing_mask_key_is_named():
    evaluator, _ = make_evaluator(
        {"ssim": SSIMHandler(output_transform=from_engine(["pred", "label"]), mask_key="roi")}
    )
    with pytest.raises(ValueError, match="batch key 'roi' is not in the engine's batch"):
        evaluator.run()


def test_handler_from_registry_and_prebuilt_metric():
    assert isinstance(monai_kcross.create_handler("gmsd"), FullReferenceHandler)
    handler = FullReferenceHandler(metric=MAEMetric())
    handler.update((torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)))
    handler._engine, handler._name = None, None
    handler.save_details = False
    assert handler.compute() == 1.0
    with pytest.raises(ValueError, match="not both"):
        FullReferenceHandler(metric=MAEMetric(), data_range=1.0)
    with pytest.raises(ValueError, match=r"\(y_pred, y\) or \(y_pred, y, mask\)"):
        handler.update((torch.ones(1, 1, 4, 4),))
