"""LPIPS, DISTS, DeepIQA and the in-domain feature distance: equivalence with the originals and medical use.

Architectural equivalence: ``golden/perceptual_golden.json`` holds the outputs of the ORIGINAL
implementations (lpips 0.1.4, DISTS_pytorch 0.1, pyiqa's WaDIQaM) loaded with the deterministic random
weights that this package builds (``golden/make_golden_perceptual.py``); the package must reproduce them to
1e-5 (observed: <= 6e-8). Tests that need the real ImageNet backbones run only where they are installed.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_kcross.losses import LPIPSLoss, MetricLoss
from monai_kcross.metrics import LPIPSMetric
from monai_kcross.perceptual import DISTS, LPIPS, WaDIQaMFR, dists, lpips
from monai_kcross.perceptual.backbones import build_backbone
from monai_kcross.perceptual.feature_distance import FeatureDistance, feature_distance
from monai_kcross.perceptual.networks import _wadiqam_state_dict
from monai_kcross.perceptual.weights import (
    features_state_dict,
    find_weights,
    load_weight_file,
    lpips_heads,
    random_state_dict,
    save_weight_file,
)

GOLDEN = Path(__file__).parents[1] / "golden"


@pytest.fixture(scope="module")
def golden():
    data = np.load(GOLDEN / "perceptual_inputs.npz")
    values = json.loads((GOLDEN / "perceptual_golden.json").read_text())
    return torch.from_numpy(data["unit_x"]), torch.from_numpy(data["unit_y"]), values


@pytest.mark.parametrize("net", ["vgg", "alex", "squeeze"])
def test_lpips_equals_the_lpips_package(golden, net):
    x, y, values = golden
    ours = LPIPS(net, **values["specs"]["lpips"])(2 * x - 1, 2 * y - 1)
    np.testing.assert_allclose(ours.numpy(), values["lpips"][net], atol=1e-5, rtol=1e-5)


def test_dists_equals_dists_pytorch(golden):
    x, y, values = golden
    ours = DISTS(**values["specs"]["dists"])(x, y)
    np.testing.assert_allclose(ours.numpy(), values["dists"], atol=1e-5, rtol=1e-5)


def test_wadiqam_equals_pyiqa(golden):
    x, y, values = golden
    pad = values["wadiqam_padding"]
    xw = torch.nn.functional.pad(x, pad, mode="reflect")
    yw = torch.nn.functional.pad(y, pad, mode="reflect")
    ours = WaDIQaMFR(**values["specs"]["wadiqam"])(xw, yw)
    np.testing.assert_allclose(ours.numpy(), values["wadiqam"], atol=1e-5, rtol=1e-5)


def test_wadiqam_checkpoint_layouts_load_to_the_same_model(tmp_path, golden):
    x, y, _values = golden
    reference = WaDIQaMFR(weights="random:5")
    state = reference.state_dict()
    # pyiqa layout: same names, fusion (f_r, f_d, f_d - f_r)
    pyiqa = dict(state)
    for head in ("q", "w"):
        diff, dist, ref = state[f"fc_{head}.0.weight"].split(512, dim=1)
        pyiqa[f"fc_{head}.0.weight"] = torch.cat([ref, dist, diff], dim=1)
    torch.save({"params": pyiqa}, tmp_path / "pyiqa.pth")
    # Dingquan Li's layout: conv1..conv10, fc1_q, fc2_q, fc1_w, fc2_w, paper fusion order
    li = {}
    for i, index in enumerate([0, 2, 5, 7, 10, 12, 15, 17, 20, 22], start=1):
        li[f"conv{i}.weight"], li[f"conv{i}.bias"] = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
    for head in ("q", "w"):
        for j, index in ((1, 0), (2, 3)):
            li[f"fc{j}_{head}.weight"] = state[f"fc_{head}.{index}.weight"]
            li[f"fc{j}_{head}.bias"] = state[f"fc_{head}.{index}.bias"]
    torch.save(li, tmp_path / "li.pt")
    expected = reference(x[:, :, :64, :64], y[:, :, :64, :64])
    for path in (tmp_path / "pyiqa.pth", tmp_path / "li.pt"):
        torch.testing.assert_close(WaDIQaMFR(weights=path)(x[:, :, :64, :64], y[:, :, :64, :64]), expected)
    with pytest.raises(ValueError, match="unrecognised WaDIQaM-FR checkpoint"):
        _wadiqam_state_dict({"something.weight": torch.zeros(1)}, "auto")


def test_backbones_load_torchvision_and_lpips_layouts(tmp_path):
    backbone = build_backbone("alex")
    torchvision_like = {f"features.{k.split('.', 1)[1]}": v for k, v in random_state_dict(backbone, 3).items()}
    torchvision_like["classifier.1.weight"] = torch.zeros(4096, 9216)  # a full model: the classifier is dropped
    torch.save(torchvision_like, tmp_path / "alexnet.pth")
    loaded = features_state_dict(load_weight_file(tmp_path / "alexnet.pth"))
    assert backbone.load_state_dict(loaded, strict=True)
    lpips_layout = {f"net.slice{1 + (int(k.split('.')[1]) > 1)}.{k.split('.', 1)[1]}": v for k, v in loaded.items()}
    assert set(features_state_dict(lpips_layout)) == set(loaded)
    heads = lpips_heads(load_weight_file(find_weights("lpips_vgg")))
    assert [h.shape[1] for h in heads] == [64, 128, 256, 512, 512]


def test_weight_loading_is_safe_and_errors_name_files(tmp_path, monkeypatch):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"weight": Payload()}, handle)
    with pytest.raises(ValueError, match="refused to run its pickle code"):
        load_weight_file(tmp_path / "evil.pt")
    monkeypatch.setenv("MONAI_KCROSS_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("MONAI_KCROSS_WEIGHTS", "")
    with pytest.raises(FileNotFoundError, match=r"wadiqam_fr\.safetensors not found .*searched"):
        find_weights("wadiqam_fr")
    with pytest.raises(FileNotFoundError, match=r"weight file .*nope\.pt does not exist"):
        LPIPS("vgg", backbone_weights=tmp_path / "nope.pt")
    save_weight_file(
        {"alpha": torch.ones(1, 1475, 1, 1), "beta": torch.ones(1, 1475, 1, 1)}, tmp_path / "d.safetensors"
    )
    monkeypatch.setenv("MONAI_KCROSS_WEIGHTS", str(tmp_path))
    assert load_weight_file(find_weights("dists", tmp_path / "d.safetensors"))["alpha"].shape == (1, 1475, 1, 1)


def test_medical_front_end_grey_volumes_and_masks():
    generator = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 2, 48, 40, 36, generator=generator) * 3000  # scanner units, two channels
    pred = ref + 200 * torch.randn(ref.shape, generator=generator)
    options = {"backbone_weights": "random:1"}
    value = lpips(pred, ref, **options)
    assert value.shape == (2, 2) and torch.all(value > 0)
    # grey channels are scored one by one, exactly as separate single-channel calls
    torch.testing.assert_close(value[:, 1:], lpips(pred[:, 1:], ref[:, 1:], **options))
    # 2.5-D over all three orientations is the mean of the three single-axis results
    axes = [lpips(pred, ref, slice_axis=a, **options) for a in (0, 1, 2)]
    torch.testing.assert_close(lpips(pred, ref, slice_axis=(0, 1, 2), **options), torch.stack(axes).mean(0))
    # masks: all-ones equals none, a region changes the value, DISTS statistics are weighted likewise
    ones = torch.ones(ref.shape[2:], dtype=torch.bool)
    torch.testing.assert_close(lpips(pred, ref, mask=ones, **options), value, atol=1e-6, rtol=0)
    half = ones.clone()
    half[:24] = False
    assert not torch.allclose(lpips(pred, ref, mask=half, **options), value)
    torch.testing.assert_close(dists(pred, ref, mask=ones, **options), dists(pred, ref, **options), atol=1e-6, rtol=0)
    # RGB mode treats three channels as one colour image
    rgb = torch.rand(1, 3, 40, 40, generator=generator)
    assert lpips(rgb * 0.9, rgb, channels="rgb", data_range=1.0, **options).shape == (1, 1)
    with pytest.raises(ValueError, match="channels='rgb' needs 3-channel"):
        lpips(pred, ref, channels="rgb", **options)


def test_losses_propagate_gradients():
    ref = torch.rand(2, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    pred = (ref + 0.1).requires_grad_(True)
    loss = LPIPSLoss(data_range=1.0, backbone_weights="random:1")(pred, ref)
    loss.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    mse = MetricLoss("mse")(pred, ref)
    assert torch.isclose(mse, ((pred - ref) ** 2).mean())
    with pytest.raises(ValueError, match="higher-is-better"):
        MetricLoss("ssim")
    with pytest.raises(ImportError, match="renamed MetricLoss"):  # MONAI's PerceptualLoss is another class
        from monai_kcross.losses import PerceptualLoss  # noqa: F401


def test_metric_class_accumulates():
    metric = LPIPSMetric(backbone_weights="random:1", reduction="mean_batch")
    a, b = torch.rand(3, 1, 40, 40), torch.rand(3, 1, 40, 40)
    metric(a, b)
    assert metric.aggregate().shape == (1,)


def test_feature_distance_with_any_network():
    from monai.networks.nets import BasicUNet

    network = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(8, 8, 16, 16, 32, 8))
    network.load_state_dict(random_state_dict(network, 4))
    distance = FeatureDistance(network, ["conv_0", "down_2"])
    a = torch.rand(2, 1, 40, 44)
    value = feature_distance(a * 0.5 + 0.2, a, distance=distance, data_range=1.0)
    assert value.shape == (2, 1) and torch.all(value > 0)
    assert torch.all(feature_distance(a, a, distance=distance, data_range=1.0) == 0)
    with pytest.raises(ValueError, match="unknown layers"):
        FeatureDistance(network, ["encoder.7"])


def test_default_feature_distance_is_blind_to_calibration_but_not_to_lesions(sample):
    ref, syn = sample["reference"][..., 53], sample["synthesized"][..., 53]
    assert float(feature_distance(ref * 1.7 + 40, ref)) == pytest.approx(0.0, abs=1e-6)
    lesion = sample["lesion_mask"][..., 53]
    assert float(feature_distance(syn, ref, mask=lesion)) > 5 * float(feature_distance(syn, ref))


def _real_backbone(name: str) -> bool:
    try:
        find_weights(name)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _real_backbone("vgg"), reason="ImageNet VGG16 weights not installed (see README)")
def test_real_vgg_weights_behave_as_trained(sample):
    ref = sample["reference"][..., 53]
    noisy = ref + 0.05 * float(ref.max()) * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    assert float(lpips(ref, ref)) == 0
    assert 0.05 < float(lpips(noisy, ref)) < float(lpips(sample["synthesized"][..., 20], ref))
