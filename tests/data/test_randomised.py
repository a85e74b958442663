"""Domain-randomised training data, rank-based harmonisation, the head foreground and the ranking losses."""

from __future__ import annotations

import pytest
import torch

from monai_kcross.data.pairs import BENIGN, HARMFUL, variants_of
from monai_kcross.data.randomised import COMPARTMENTS, LESION_KINDS, RandomisedBrains, random_subject
from monai_kcross.functional.foreground import enclosed_foreground
from monai_kcross.functional.histogram import match_histogram, rank_normalize
from monai_kcross.losses import ranking_loss, severity_order_loss


@pytest.fixture(scope="module")
def brains():
    return RandomisedBrains(pool_size=2, shape=(64, 64), seed=3, lesion_kinds=("tumour", "wm_lesions"))


# ---------------------------------------------------------------------------------------------- harmonisation
def test_rank_normalize_matches_a_sorting_reference_with_ties():
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 6, (3, 1, 7, 9), generator=generator).float()
    mask = torch.rand(3, 1, 7, 9, generator=generator) > 0.3
    out = rank_normalize(image, mask)
    for b in range(3):
        values = image[b][mask[b]]
        expected = torch.tensor([((values < v).sum() + ((values == v).sum() + 1) / 2).item() for v in values])
        torch.testing.assert_close(out[b][mask[b]], expected / len(values))
        assert torch.all(out[b][~mask[b]] == 0)
    torch.testing.assert_close(rank_normalize(torch.exp(image), mask), out)  # increasing maps change nothing


def test_match_histogram_inverts_increasing_maps_exactly_and_keeps_order():
    generator = torch.Generator().manual_seed(1)
    reference = torch.rand(2, 1, 20, 24, generator=generator)
    mask = reference > 0.1
    for mapped in (2 * reference + 1, reference.pow(0.6), torch.exp(5 * reference)):
        out = match_histogram(mapped, reference, mask)
        assert torch.equal(out[mask], reference[mask])
    assert torch.equal(match_histogram(reference, reference, mask), reference)
    noisy = reference + 0.05 * torch.randn(reference.shape, generator=generator)
    out = match_histogram(noisy, reference, mask)
    for b in range(2):
        inside = mask[b]
        order = noisy[b][inside].argsort()
        assert torch.all(out[b][inside][order].diff() >= 0)  # monotone: the ordering is kept
        assert torch.equal(out[b][inside].sort().values, reference[b][inside].sort().values)  # the histogram
    with pytest.raises(ValueError, match="differ in shape"):
        match_histogram(noisy[..., :-1], reference, mask)


def test_enclosed_foreground_fills_dark_holes_but_not_the_background():
    image = torch.zeros(1, 1, 20, 20)
    image[..., 4:16, 4:16] = 1.0
    image[..., 8:12, 8:12] = 0.0  # a dark ventricle inside the head
    head = enclosed_foreground(image)
    assert bool(head[..., 8:12, 8:12].all()) and not bool(head[..., :3, :].any())
    assert int(head.sum()) == 144


# ---------------------------------------------------------------------------------------------- generator
def test_random_subject_is_deterministic_and_draws_every_lesion_kind():
    first = random_subject(seed=5, lesion="wm_lesions")
    again = random_subject(seed=5, lesion="wm_lesions")
    assert torch.equal(first["fractions"], again["fractions"])
    assert first["fractions"].shape[0] == len(COMPARTMENTS)
    lesion = first["fractions"][3:].sum(0)
    assert float(lesion.max()) > 0.5 and float(first["fractions"].sum(0).max()) <= 1.0 + 1e-4
    healthy = random_subject(seed=5, lesion="healthy")
    assert float(healthy["fractions"][3:].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="lesion must be one of"):
        random_subject(seed=5, lesion="cyst")
    assert set(LESION_KINDS) == {"healthy", "tumour", "wm_lesions", "infarct"}


def test_sample_gives_paired_contrasts_with_visible_lesions(brains):
    batch = brains.sample(6, contrasts=2)
    images, target = batch["images"], batch["target"]
    assert images.shape == (6, 2, 64, 64) and target.shape == (6, 64, 64)
    assert float(images.min()) >= 0 and float(images.max()) <= 1 + 1e-6
    assert not torch.equal(images[:, 0], images[:, 1])  # two different contrasts of one anatomy
    with_lesion = [i for i in range(6) if int(batch["lesion"][i].sum()) > 20]
    assert with_lesion, "no slice through a lesion"
    for i in with_lesion:  # the lesion differs from the white matter around it (min_contrast)
        core = batch["lesion"][i]
        wm = target[i] == 3
        gap = (images[i, 0][core].median() - images[i, 0][wm].median()).abs()
        assert float(gap) > 0.02


def test_scene_rerenders_exact_counterfactuals(brains):
    batch = brains.sample(2, contrasts=1, return_scenes=True)
    scene = batch["scenes"][0]
    assert torch.equal(scene.render(0), batch["images"][0, 0])
    generator = torch.Generator().manual_seed(0)
    variants = variants_of(scene, 0, generator)
    kinds = {v["kind"] for v in variants}
    assert {"reacquired", "noise", "blur", "bias", "gamma"} <= kinds
    assert kinds <= set(BENIGN) | set(HARMFUL)
    assert all(v["harmful"] == (v["kind"] in HARMFUL) for v in variants)
    assert all(v["image"].shape == scene.render(0).shape for v in variants)


# ---------------------------------------------------------------------------------------------- losses
def test_ranking_and_severity_losses():
    penalty = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.0, 0.3], requires_grad=True)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    harmful = torch.tensor([False, True, True, True, False, False])
    # group 0: benign 0.1 vs harmful 0.5 (gap 0.4) and 0.2 (gap 0.1); group 1: harmful 0.9 vs 0.0 and 0.3
    expected = torch.relu(0.2 - torch.tensor([0.4, 0.1, 0.9, 0.6])).mean()
    loss = ranking_loss(penalty, groups, harmful, margin=0.2)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert penalty.grad is not None
    series = torch.tensor([-1, 0, 0, -1, -1, -1])
    level = torch.tensor([0.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    # series 0 of group 0: level 0.5 has penalty 0.2 <= 0.5 at level 1.0: in order
    assert float(severity_order_loss(penalty.detach(), groups, series, level)) == 0.0
    swapped = severity_order_loss(penalty.detach(), groups, series, torch.tensor([0.0, 0.5, 1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(swapped, torch.tensor(0.3))
    assert float(ranking_loss(penalty, groups, torch.zeros(6, dtype=torch.bool))) == 0.0


# ---------------------------------------------------------------------------------------------- training
def test_segmenter_training_runs_and_saves_a_loadable_checkpoint(tmp_path):
    from monai_kcross.networks.segmenter import load_segmenter, segment
    from monai_kcross.training.segmenter import train_segmenter

    log = tmp_path / "log.jsonl"
    best = train_segmenter(
        tmp_path / "seg.pt",
        steps=2,
        batch_size=2,
        pool_size=2,
        validate_every=2,
        shape=(48, 48),
        progress=False,
        log=log,
    )
    assert best["step"] == 2 and 0 <= best["dice_lesion"] <= 1 and log.read_text().count("\n") == 1
    network = load_segmenter(tmp_path / "seg.pt")
    classes = segment(torch.rand(1, 1, 40, 36), network=network)
    assert classes.shape == (1, 40, 36) and int(classes.max()) <= 4


def test_kcross_randomised_training_end_to_end(tmp_path):
    from monai_kcross.metrics import kcross, load_kcross
    from monai_kcross.training.domain_randomised import train_kcross_randomised

    summary = train_kcross_randomised(
        tmp_path / "run",
        stage1_steps=3,
        stage1_batch=2,
        stage1_shape=(48, 48),
        pairs=2,
        val_pairs=2,
        pairs_shape=(48, 64),
        stage2_epochs=2,
        progress=False,
    )
    assert summary["stage1"]["loss"] and summary["pairs"]["train_variants"] > 10
    assert len(summary["stage2"]["validation_loss"]) == 2
    network = load_kcross(tmp_path / "run")
    image = torch.rand(1, 1, 48, 64)
    assert float(kcross(image, image, network=network)) == 1.0


def test_head_refit_with_image_level_terms_reuses_encoders_and_cached_pairs(tmp_path, monkeypatch):
    from monai_kcross.metrics import kcross, load_kcross
    from monai_kcross.training import domain_randomised
    from monai_kcross.training.domain_randomised import train_kcross_randomised

    common = {"pairs": 2, "val_pairs": 1, "pairs_shape": (48, 64), "stage2_epochs": 1, "progress": False}
    train_kcross_randomised(tmp_path / "base", stage1_steps=2, stage1_batch=2, stage1_shape=(48, 48), **common)
    base = load_kcross(tmp_path / "base")
    cache = tmp_path / "cache"
    first = train_kcross_randomised(
        tmp_path / "refit", stage1_steps=0, init_from=tmp_path / "base", pixel_levels=2, pairs_cache=cache, **common
    )
    assert len(list(cache.glob("pairs_*.pt"))) == 2  # training and validation sets

    def no_build(*args, **kwargs):
        raise AssertionError("the cached pairs were built again")

    monkeypatch.setattr(domain_randomised, "build_pairs", no_build)
    again = train_kcross_randomised(
        tmp_path / "again", stage1_steps=0, init_from=tmp_path / "base", pixel_levels=2, pairs_cache=cache, **common
    )
    assert again["pairs"]["train_variants"] == first["pairs"]["train_variants"]
    refit = load_kcross(tmp_path / "refit")
    assert refit.config.pixel_levels == 2
    assert refit.config.structure_dim == base.config.structure_dim + 6
    for name, value in base.structure_net.state_dict().items():  # encoders kept, heads refitted
        torch.testing.assert_close(refit.structure_net.state_dict()[name], value)
    image = torch.rand(1, 1, 48, 64)
    assert float(kcross(image, image, network=refit)) == 1.0
    assert float(kcross((image + 0.2 * torch.rand_like(image)).clamp(0, 1), image, network=refit)) < 1.0
