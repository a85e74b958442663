"""K-CROSS: complex layers, losses, the network, two-stage training, the metric and its handler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine

from monai_kcross.data import synthesize_brain
from monai_kcross.data.nirps import build_nirps_dataset
from monai_kcross.handlers import KCrossHandler
from monai_kcross.losses import frequency_loss, laplacian_loss, mmd_loss, stage1_losses, tumour_loss
from monai_kcross.metrics import KCrossMetric, kcross, load_kcross
from monai_kcross.networks.complex import (
    ComplexBatchNorm,
    ComplexConv,
    ComplexConvTranspose,
    ComplexLeakyReLU,
    ComplexLinear,
    ComplexReLU,
    ComplexTanh,
    ComplexUpsample,
    complex_cat,
    to_complex,
    to_stacked,
)
from monai_kcross.networks.kcross import KCross, KCrossConfig, MonotoneHead, complex_deviation
from monai_kcross.training import train_kcross

# ---------------------------------------------------------------------------------------------- complex layers


def _randomise_bias(layer):
    torch.nn.init.normal_(layer.bias_real)
    torch.nn.init.normal_(layer.bias_imag)
    return layer


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_complex_convolutions_follow_complex_arithmetic(spatial_dims):
    torch.manual_seed(0)
    shape = (2, 3, *([6] * spatial_dims))
    z = torch.randn(shape, dtype=torch.complex64)
    conv = _randomise_bias(ComplexConv(spatial_dims, 3, 4, 3))
    bias = torch.complex(conv.bias_real, conv.bias_imag).view(1, -1, *[1] * spatial_dims)
    reference = (F.conv2d if spatial_dims == 2 else F.conv3d)(z, conv.weight, padding=1) + bias
    torch.testing.assert_close(to_complex(conv(to_stacked(z))), reference, atol=1e-5, rtol=1e-5)
    up = _randomise_bias(ComplexConvTranspose(spatial_dims, 3, 2))
    bias = torch.complex(up.bias_real, up.bias_imag).view(1, -1, *[1] * spatial_dims)
    transposed = (F.conv_transpose2d if spatial_dims == 2 else F.conv_transpose3d)(z, up.weight, stride=2) + bias
    torch.testing.assert_close(to_complex(up(to_stacked(z))), transposed, atol=1e-5, rtol=1e-5)


def test_complex_linear_and_partwise_layers():
    torch.manual_seed(1)
    z = torch.randn(5, 4, dtype=torch.complex64)
    linear = _randomise_bias(ComplexLinear(4, 3))
    expected = z @ linear.weight.T + torch.complex(linear.bias_real, linear.bias_imag)
    torch.testing.assert_close(to_complex(linear(to_stacked(z))), expected)
    maps = torch.randn(2, 3, 4, 4, dtype=torch.complex64)
    stacked = to_stacked(maps)
    torch.testing.assert_close(to_complex(ComplexReLU()(stacked)), torch.complex(maps.real.relu(), maps.imag.relu()))
    leaky = torch.complex(F.leaky_relu(maps.real, 0.2), F.leaky_relu(maps.imag, 0.2))
    torch.testing.assert_close(to_complex(ComplexLeakyReLU(0.2)(stacked)), leaky)
    torch.testing.assert_close(to_complex(ComplexTanh()(stacked)), torch.complex(maps.real.tanh(), maps.imag.tanh()))
    assert ComplexUpsample(2)(stacked).shape == (2, 6, 8, 8)
    normed = to_complex(ComplexBatchNorm(2, 3).train()(stacked))
    torch.testing.assert_close(normed.real.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(normed.imag.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    a, b = to_stacked(maps[:, :1]), to_stacked(maps[:, 1:])
    torch.testing.assert_close(to_complex(complex_cat([a, b])), maps)
    with pytest.raises(ValueError, match="complex tensor"):
        to_stacked(maps.real)
    with pytest.raises(ValueError, match="even channel count"):
        to_complex(stacked[:, :5])


# ---------------------------------------------------------------------------------------------- losses


def test_frequency_loss_zero_at_identity_positive_otherwise():
    a = torch.randn(2, 3, 8, 8, dtype=torch.complex64, requires_grad=True)
    b = a.detach() * torch.polar(torch.ones(1), torch.tensor([0.3]))  # a phase shift only
    assert float(frequency_loss(a.detach(), a.detach())) == 0
    loss = frequency_loss([a, a], [b, b])
    assert float(loss.detach()) > 0
    loss.backward()
    assert a.grad is not None and float(a.grad.abs().sum()) > 0
    plain = frequency_loss(a.detach(), b, alpha=0.0)
    assert float(plain) == pytest.approx(float((a.detach() - b).abs().square().mean()), rel=1e-6)


def test_mmd_matches_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 4)), rng.normal(1.0, 1.0, size=(5, 4))
    bandwidths, weights = [0.5, 1.0, 2.0], [0.2, 0.3, 0.5]

    def kernel(a, b):
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(w * np.exp(-d / (2 * s**2)) for s, w in zip(bandwidths, weights))

    expected = kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()
    ours = mmd_loss(torch.from_numpy(x), torch.from_numpy(y), bandwidths, weights)
    assert float(ours) == pytest.approx(expected, rel=1e-10)
    assert float(mmd_loss(torch.from_numpy(x), torch.from_numpy(x))) == pytest.approx(0.0, abs=1e-12)
    assert float(mmd_loss(torch.from_numpy(x), torch.from_numpy(y))) > 0


def test_laplacian_and_tumour_losses():
    image = torch.rand(2, 1, 32, 32)
    assert float(laplacian_loss(image, image)) == 0
    assert float(laplacian_loss(image, image + 0.1 * torch.rand_like(image))) > 0
    assert float(laplacian_loss(image, image + 0.5)) == pytest.approx(0.0, abs=1e-6)  # offsets: no high frequency
    moved = image.clone().requires_grad_(True)
    loss = tumour_loss(moved * 0.8, image)
    loss.backward()
    assert float(loss) > 0 and moved.grad is not None
    assert float(tumour_loss(image, image)) == pytest.approx(0.0, abs=1e-6)


def test_complex_deviation_is_zero_only_at_identity_and_sees_phase():
    a = torch.randn(2, 4, 6, 6, dtype=torch.complex64)
    same = complex_deviation(to_stacked(a), to_stacked(a))
    assert torch.equal(same, torch.zeros_like(same))  # exactly, not approximately
    shifted = to_complex(
        complex_deviation(to_stacked(a * torch.polar(torch.ones(1), torch.tensor([0.5]))), to_stacked(a))[
            ..., None, None
        ]
    )[..., 0, 0]
    # 1 - symmetric coherence: a pure phase shift phi gives 1 - e^{i phi}
    expected = 1 - torch.polar(torch.ones(1), torch.tensor([0.5]))
    torch.testing.assert_close(shifted, expected.expand(2, 4), atol=1e-5, rtol=0)


def test_monotone_head_is_anchored_and_non_decreasing():
    torch.manual_seed(0)
    head = MonotoneHead(6, 8)
    torch.nn.init.normal_(head.bias1)
    zero = torch.zeros(3, 6)
    assert torch.equal(head(zero), torch.zeros(3))
    d = torch.rand(50, 6)
    bigger = d + torch.rand(50, 6) * (torch.rand(50, 6) > 0.5)
    assert torch.all(head(d) >= 0) and torch.all(head(bigger) >= head(d) - 1e-7)


# ---------------------------------------------------------------------------------------------- network


def _slices(n: int = 4, seed: int = 3):
    cases = [synthesize_brain(seed=seed + i, contrasts=("t1", "t2")) for i in range(n)]

    def unit(x):
        x = x.as_tensor()
        return (x - x.amin()) / (x.amax() - x.amin())

    return (
        torch.stack([unit(c["t1"]) for c in cases]),
        torch.stack([unit(c["t2"]) for c in cases]),
        torch.stack([(c["label"].as_tensor() > 0).float() for c in cases]),
    )


def test_stage1_losses_decrease_in_a_few_iterations():
    torch.manual_seed(0)
    source, target, lesion = _slices()
    network = KCross(KCrossConfig.small())
    optimiser = torch.optim.Adam([p for m in network.encoders() for p in m.parameters()], lr=2e-3)
    history = []
    for _ in range(8):
        losses = stage1_losses(network, source, target, lesion)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
        history.append({k: float(v) for k, v in losses.items()})
    assert history[-1]["total"] < history[0]["total"]
    assert history[-1]["structure"] < history[0]["structure"]
    assert all(np.isfinite(list(h.values())).all() for h in history)


def _network_with_random_heads(seed: int = 0, **config) -> KCross:
    torch.manual_seed(seed)
    network = KCross(KCrossConfig.small(**config)).eval()
    for parameter in network.score_parameters():  # heads away from their initial weights
        torch.nn.init.normal_(parameter, -2.0, 1.0)
    return network


def test_network_scores_and_ablations():
    source, target, lesion = _slices(2)
    network = _network_with_random_heads()
    changed = target + 0.05 * torch.rand_like(target)
    with torch.no_grad():
        full = network(changed, target, source, lesion)
        assert full["score"].shape == (2,) and torch.all((full["score"] > 0) & (full["score"] < 1))
        for branches in (("complex",), ("structure",), ("tumour",), ("complex", "tumour")):
            assert network(changed, target, source, lesion, branches)["score"].shape == (2,)
        descriptors = network.descriptors(changed, target, source, torch.zeros_like(lesion))
        assert torch.all(descriptors["tumour"][:, : 2 * network.config.tumour_channels[-1]] == 0)  # healthy mode
        assert all(torch.all(v >= 0) for k, v in descriptors.items() if k != "complex")
        no_source = network(changed, target, None, lesion)  # the structure branch without a source
        assert torch.all(no_source["score"] < 1)
    with pytest.raises(ValueError, match="branches must be"):
        network(target, target, source, lesion, ("kspace",))


@pytest.mark.parametrize("branches", [("complex",), ("structure",), ("tumour",), ("complex", "structure", "tumour")])
def test_identity_scores_exactly_one(branches):
    source, target, lesion = _slices(2, seed=11)
    network = _network_with_random_heads(1)
    for src in (source, None):
        for mask in (lesion, None):
            out = network(target, target, src, mask, branches)
            assert torch.equal(out["score"], torch.ones(2)), (branches, src is None, mask is None)
            descriptors = network.descriptors(target, target, src, mask, branches)
            assert all(torch.equal(v, torch.zeros_like(v)) for v in descriptors.values())


def test_image_level_structure_terms_vanish_at_identity_and_grow_with_damage():
    from monai_kcross.networks.kcross import _pixel_structure_deviations

    source, target, lesion = _slices(2, seed=13)
    network = _network_with_random_heads(3, pixel_levels=3)
    assert network.config.structure_dim == KCrossConfig.small().structure_dim + 9
    for mask in (lesion, None):
        assert torch.equal(network(target, target, source, mask)["score"], torch.ones(2))
    head = network.harmonise(target, target)[1]
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    terms = [
        torch.cat(_pixel_structure_deviations((target + level * noise).clamp(0, 1), target, head, 3, 0.05), 1)
        for level in (0.0, 0.02, 0.08)
    ]
    assert terms[0].shape == (2, 9) and torch.equal(terms[0], torch.zeros_like(terms[0]))
    assert torch.all(terms[1] > 0) and torch.all(terms[2] > terms[1])
    with torch.no_grad():  # the image-level terms enter the score: more damage, larger penalty
        penalty = [
            network((target + level * noise).clamp(0, 1), target, None, None)["penalty"] for level in (0.02, 0.08)
        ]
    assert torch.all(penalty[1] > penalty[0])


def test_monotone_intensity_maps_are_harmonised_away():
    source, target, lesion = _slices(2, seed=12)
    network = _network_with_random_heads(2)
    head = network.harmonise(target, target)[1]
    for mapped in (target * 1.15, target + 0.05, target.pow(0.85), torch.exp(2 * target)):
        harmonised, _ = network.harmonise(mapped, target)
        # exact up to values that float32 rounding merges (the map stops being injective there)
        torch.testing.assert_close(harmonised[head], target[head], atol=1e-6, rtol=0)

    def size(descriptors):
        return sum(v.abs().sum(1) for v in descriptors.values())

    with torch.no_grad():
        noisy = size(network.descriptors(target + 0.03 * torch.randn_like(target), target, source, lesion))
        mapped = size(network.descriptors(target.pow(0.85) * 1.15, target, source, lesion))
    assert torch.all(mapped < 0.1 * noisy)  # only the background outside the head is not harmonised


def test_offset_of_the_whole_slice_scores_one_at_any_size():
    """Regression: slices are padded to a multiple of 16 after harmonisation, not before (matching the zero padding
    mapped it off zero when the synthesized background was lifted, and an offset cost 0.09 on 1.2 mm slices)."""
    network = _network_with_random_heads(3)
    _, target, _ = _slices(1, seed=13)
    target = target[..., 3:, 5:]  # a size that needs padding
    assert target.shape[-1] % 16 and target.shape[-2] % 16
    lifted = target + 0.05 * target.max()  # the background too
    with torch.no_grad():
        descriptors = network.descriptors(lifted, target, None, None)
    assert max(float(v.abs().max()) for v in descriptors.values()) < 1e-5


# ---------------------------------------------------------------------------------------------- training + metric


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny NIRPS-style set and a K-CROSS trained on it for a few epochs (minutes on CPU -> seconds here)."""
    root = tmp_path_factory.mktemp("kcross")
    datalist = build_nirps_dataset(
        root / "nirps",
        pairs=(("t1", "t2"),),
        architectures=("unet",),
        held_out=(),
        n_train_subjects=3,
        train_slices=1,
        n_eval_subjects=5,
        epochs=3,
        shape=(64, 80),
        progress=False,
    )
    summary = train_kcross(
        datalist, root / "run", stage1_epochs=3, stage2_epochs=40, batch_size=4, patience=100, progress=False
    )
    return datalist, root / "run", summary


def test_two_stage_training_learns(trained):
    _, run, summary = trained
    stage1, stage2 = summary["stage1"], summary["stage2"]
    assert len(stage1["loss"]) == 3 and stage1["loss"][-1] < stage1["loss"][0]
    assert stage2["loss"][-1] < stage2["loss"][0]
    assert (run / "model.pt").is_file() and (run / "training_summary.json").is_file()
    assert json.loads((run / "training_summary.json").read_text())["seed"] == 0
    assert list((run / "stage1").glob("stage1_checkpoint_epoch=*.pt"))


def test_training_is_deterministic(trained, tmp_path):
    datalist, _, summary = trained
    again = train_kcross(
        datalist, tmp_path / "again", stage1_epochs=1, stage2_epochs=2, batch_size=4, patience=100, progress=False
    )
    # same seed, same first stage-1 epoch (stage-2 determinism: see the fine-tuning test)
    assert again["stage1"]["loss"][0] == pytest.approx(summary["stage1"]["loss"][0], rel=1e-5)


def test_metric_on_slices_and_volumes(trained):
    _, run, _ = trained
    network = load_kcross(run)
    source, target, lesion = _slices(2, seed=40)
    # a non-monotone change (monotone intensity maps are harmonised away and score exactly 1)
    degraded = (target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    score = kcross(degraded, target, source, lesion, network=network)
    assert score.shape == (2, 1) and torch.all((score > 0) & (score < 1))
    assert torch.equal(kcross(target, target, source, network=network), torch.ones(2, 1))
    again = kcross(degraded, target, source, lesion, network=network)
    torch.testing.assert_close(score, again)
    parts = kcross(degraded, target, source, lesion, network=network, return_branches=True)
    assert set(parts) == {"kcross", "complex", "structure", "tumour"}
    torch.testing.assert_close(parts["kcross"], score)
    no_structure = kcross(target, target, None, lesion, network=network, branches=("complex", "tumour"))
    assert no_structure.shape == (2, 1)
    volume = synthesize_brain(seed=41, spatial_dims=3, shape=(64, 80, 24), contrasts=("t1", "t2"))
    t2, t1 = volume["t2"][None], volume["t1"][None]
    noisy = (t2 + 0.1 * torch.randn(t2.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    value = kcross(noisy, t2, t1, network=network, batch_size=8)
    assert value.shape == (1, 1) and 0 < float(value) < 1
    assert float(kcross(t2, t2, t1, network=network)) == 1.0
    metric = KCrossMetric(network=network)
    metric(degraded, target, source=source, lesion=lesion)
    with pytest.raises(ValueError, match="lesion="):
        metric(degraded, target, source=source, mask=lesion)  # K-CROSS has no region mask: a clear error
    metric([target[0]], [target[0]], source=[source[0]])
    assert metric.aggregate().shape == (1,) and metric.get_buffer().shape == (3, 1)


def test_metric_rejects_bad_input(trained):
    _, run, _ = trained
    network = load_kcross(run)
    source, target, lesion = _slices(1, seed=50)
    assert float(kcross(target, target, network=network)) == 1.0  # no source: structure branch on the pair
    with pytest.raises(ValueError, match="shape mismatch"):
        kcross(target, target, source[..., :-1], network=network)
    broken = target.clone()
    broken[0, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="contains NaN"):
        kcross(broken, target, source, network=network)
    with pytest.raises(ValueError, match="lesion mask of shape"):
        kcross(target, target, source, lesion[..., :-2], network=network)
    with pytest.raises(FileNotFoundError, match=r"K-CROSS weights .* not found"):
        load_kcross(run / "missing")
    nan_mask = lesion.clone()
    nan_mask[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="lesion mask contains NaN"):
        kcross(target, target, source, nan_mask, network=network)
    with pytest.raises(ValueError, match="at least 32 x 32 px"):
        kcross(target[..., :16, :16], target[..., :16, :16], network=network)
    with pytest.raises(RuntimeError, match="not differentiable"):
        kcross(target.clone().requires_grad_(True), target, source, network=network)


def test_handler_reads_source_from_the_batch(trained):
    _, run, _ = trained
    source, target, _ = _slices(2, seed=60)
    items = [{"image": s, "label": t, "source": s} for s, t in zip(source, target)]
    loader = DataLoader(Dataset(items), batch_size=2)
    handler = KCrossHandler(output_transform=from_engine(["pred", "label"]), network=load_kcross(run))

    class Halve(torch.nn.Module):
        def forward(self, x):
            return 0.5 * x

    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=loader, network=Halve(), key_val_metric={"kcross": handler}
    )
    evaluator.run()
    expected = kcross(0.5 * source, target, source, network=load_kcross(run)).mean()
    assert evaluator.state.metrics["kcross"] == pytest.approx(float(expected), abs=1e-5)


def test_benchmark_tabulates_baselines_and_kcross(trained, tmp_path):
    from monai_kcross.analysis import format_table, run_benchmark

    datalist, run, _ = trained
    report = run_benchmark(
        datalist,
        split="test",
        metrics=("psnr", "ssim"),
        network=run,
        n_boot=20,
        min_group=3,
        out=tmp_path,
        progress=False,
    )
    overall = report["overall"]
    names = set(overall["results"])
    assert names == {
        "psnr",
        "ssim",
        "kcross",
        "kcross[complex]",
        "kcross[structure]",
        "kcross[tumour]",
        "kcross[healthy]",
    }
    assert report["n"] == overall["n"] >= 3 and "unet" in report["by_generator"]
    for result in overall["results"].values():
        assert -1 <= result.estimates["srcc"] <= 1 and 0 <= result.estimates["inconsistency"] <= 1
    # scores.csv holds one row per (slice, metric); the PSNR column matches the functional metric
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert len(rows) == 1 + report["n"] * len(names)
    from monai_kcross.functional import psnr
    from monai_kcross.training.kcross import load_split

    first = load_split(datalist, "test", limit=1)
    expected = float(psnr(first["synthesized"], first["reference"], data_range="reference"))
    logged = next(float(r.split(",")[2]) for r in rows if r.split(",")[1] == "psnr")
    assert logged == pytest.approx(expected, rel=1e-4)
    assert json.loads((tmp_path / "benchmark.json").read_text())["split"] == "test"
    table = format_table(overall)
    assert "kcross[healthy]" in table and "*" in table and "lead of" in table
    assert overall["contender"]["srcc"][0] in ("psnr", "ssim") and "best baseline" in table
    # within-subject agreement: the mean of the per-subject tables, and every subject has one leader
    subjects = report["by_subject"]
    assert subjects and set(report["within_subject"]) == names
    mean_srcc = np.mean([c["results"]["psnr"].estimates["srcc"] for c in subjects.values()])
    assert report["within_subject"]["psnr"]["srcc"] == pytest.approx(mean_srcc)
    assert sum(row["srcc_wins"] for row in report["within_subject"].values()) == len(subjects)


def test_fine_tuning_from_a_trained_run_refits_the_heads(trained, tmp_path):
    datalist, run, _ = trained
    options = {
        "init_from": str(run),
        "stage1_epochs": 0,
        "stage2_epochs": 5,
        "batch_size": 4,
        "device": "cpu",
        "within_subject_weight": 1.0,
        "progress": False,
    }
    summary = train_kcross(datalist, tmp_path / "fine", **options)
    assert summary["stage1"] == {"skipped": True} and summary["init_from"] == str(run)
    assert summary["within_subject_weight"] == 1.0 and -1 <= summary["stage2"]["validation_within_subject_srcc"] <= 1
    repeated = train_kcross(datalist, tmp_path / "fine_again", **options)
    assert repeated["stage2"]["loss"] == pytest.approx(summary["stage2"]["loss"], rel=1e-5)
    assert len(summary["stage2"]["loss"]) == 5
    start, tuned = load_kcross(run), load_kcross(tmp_path / "fine")
    # stage 1 skipped: the encoders are the trained ones; the score heads were refitted
    torch.testing.assert_close(tuned.complex_net.state_dict(), start.complex_net.state_dict())
    assert not torch.equal(tuned.natural_head.weight1, start.natural_head.weight1)


def test_within_group_loss_ignores_subject_offsets():
    from monai_kcross.losses import within_group_loss

    generator = torch.Generator().manual_seed(3)
    label = torch.rand(12, generator=generator)
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 5])  # groups 3 and 5 hold one image: left out
    offsets = torch.tensor([0.3, -0.2, 0.1, 0.0, 0.5, 0.0])[groups]
    # a score that gets the subjects wrong but every within-subject ranking right costs nothing ...
    assert float(within_group_loss(label + offsets, label, groups)) == pytest.approx(0.0, abs=1e-12)
    # ... and otherwise the loss is the MSE of the group-centred values (brute force)
    score = torch.rand(12, generator=generator)
    centred = []
    for g in (0, 1, 2):
        s, q = score[groups == g], label[groups == g]
        centred.append(((s - s.mean()) - (q - q.mean())) ** 2)
    assert float(within_group_loss(score, label, groups)) == pytest.approx(float(torch.cat(centred).mean()))
    assert float(within_group_loss(score[:1], label[:1], groups[:1])) == 0.0


def test_load_kcross_sees_a_checkpoint_rewritten_in_place(tmp_path):
    path = tmp_path / "model.pt"
    for seed in (0, 1):
        torch.manual_seed(seed)
        network = KCross(KCrossConfig.small())
        torch.save({"config": network.config.to_dict(), "state_dict": network.state_dict()}, path)
        loaded = load_kcross(path)
        torch.testing.assert_close(loaded.state_dict(), network.state_dict())  # never the cached old weights


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_shipped_kcross_on_cuda_matches_cpu():
    """The shipped bundle scores slices and a volume on the GPU as on the CPU (cuDNN in full float32)."""
    source, target, lesion = _slices(3, seed=21)
    pred = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    volume = torch.stack([pred, target, source], -1).permute(1, 0, 2, 3, 4)  # (1, 3 slices as channels, H, W, 3)
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        for args in ((pred, target, source, lesion), (pred, target, None, None), (volume, volume.flip(-1))):
            cpu = kcross(*args)
            gpu = kcross(*[None if a is None else a.cuda() for a in args])
            assert gpu.device.type == "cuda"
            torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-4, rtol=0)
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def test_auto_batch_size_balances_the_calls():
    from monai_kcross.metrics.kcross import PIXEL_BUDGET, auto_batch_size

    cpu = torch.device("cpu")
    largest = auto_batch_size(112, 128, cpu)
    assert largest == PIXEL_BUDGET["cpu"] // (112 * 128)  # 128 and 112 are multiples of 16: no padding
    assert auto_batch_size(100, 120, cpu) == PIXEL_BUDGET["cpu"] // (112 * 128)  # padded to 112 x 128
    assert auto_batch_size(112, 128, cpu, count=largest + 1) == -(-(largest + 1) // 2)  # 2 even calls, no tail
    assert auto_batch_size(112, 128, cpu, count=2) == 2
    assert auto_batch_size(1024, 1024, cpu) == 1


def test_bias_field_front_end_is_exact_at_identity_and_removes_a_smooth_field():
    from monai_kcross.networks.kcross import smooth_field

    source, target, lesion = _slices(2, seed=14)
    network = _network_with_random_heads(4)
    network.config.bias_fraction = 0.125
    head = network.harmonise(target, target)[1]
    assert torch.equal(smooth_field(target, target, head, 0.125), torch.ones_like(target))
    for mapped in (target, target * 1.15, target.pow(0.85)):  # matched to the reference first: field exactly 1
        harmonised, _ = network.harmonise(mapped, target)
        torch.testing.assert_close(harmonised[head], target[head], atol=1e-6, rtol=0)
    with torch.no_grad():
        assert torch.equal(network(target, target, source, None)["score"], torch.ones(2))
    # a smooth +-10 % field: estimated to 1.5 % inside the head (away from its rim) and mostly removed
    rows = torch.linspace(-1, 1, target.shape[-2]).view(-1, 1)
    columns = torch.linspace(-1, 1, target.shape[-1]).view(1, -1)
    field = 1 + 0.1 * torch.sin(1.5 * rows + 0.5) * torch.cos(columns)
    biased = target * field
    estimate = smooth_field(biased, target, head, 0.125)
    interior = -F.max_pool2d(-head.float(), 21, 1, 10) > 0.5
    assert float((estimate / field - 1)[interior].abs().median()) < 0.015

    def size(descriptors):
        return sum(v.abs().sum(1) for v in descriptors.values())

    with torch.no_grad():
        corrected = size(network.descriptors(biased, target, source, lesion))
        network.config.bias_fraction = 0.0
        uncorrected = size(network.descriptors(biased, target, source, lesion))
    assert torch.all(corrected < 0.5 * uncorrected)


def test_evaluation_fast_path_equals_the_modules():
    """Folded batch norms, in-place activations, channels-last features and the separable 7x7 window give the
    values of the plain module calls (training mode keeps the modules themselves)."""
    from monai_kcross.networks.kcross import _box_mean

    torch.manual_seed(3)
    network = KCross(KCrossConfig.small())
    for module in network.modules():  # non-trivial running statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    network.eval()
    image = torch.rand(3, 1, 48, 64)
    kspace = to_stacked(torch.fft.fft2(image.to(torch.complex64), norm="ortho"))
    with torch.no_grad():
        for net, x in ((network.structure_net, image), (network.complex_net, kspace)):
            plain = x
            for layer, fast in zip(net.encoder, net.encode(x), strict=True):
                plain = layer(plain)
                torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    values = torch.randn(2, 5, 30, 41)
    torch.testing.assert_close(
        _box_mean(values, 7), F.avg_pool2d(values, 7, 1, 3, count_include_pad=False), rtol=1e-5, atol=1e-6
    )


def test_missing_segmenter_weights_name_the_file_and_the_fix(monkeypatch, tmp_path):
    import monai_kcross.networks.segmenter as segmenter

    missing = tmp_path / "segmenter.pt"
    monkeypatch.setattr(segmenter, "SEGMENTER_WEIGHTS", missing)
    with pytest.raises(FileNotFoundError, match=r"segmenter weights .*segmenter\.pt are missing; build them"):
        segmenter.segment_probabilities(torch.rand(1, 1, 48, 48))
