"""BRISQUE and NIQE: golden values from the authors' MATLAB code and piq, 3-D, batching, monotonicity, errors.

``golden/no_reference_golden.json`` was produced once by ``golden/make_no_reference_golden.py``: the authors'
MATLAB code (LIVE BRISQUE and NIQE releases, run in GNU Octave 7.3 with the image package) and piq 0.8.0, on
slices of real brain anatomy (the bundled sample) and of the package's MR simulator (test seeds) and on a
photograph, stored in ``golden/no_reference_inputs.npz``. Tolerances (float64):

* BRISQUE features vs ``brisque_feature.m``: 1e-10 absolute (measured 3e-14);
* BRISQUE features vs piq: 1e-5 absolute, shapes within one grid step (0.001). piq's bicubic resize differs
  from MATLAB's by up to 4e-5 grey levels, and in the photograph's flat regions MSCN values of order 1e-16
  change sign between the implementations, moving samples between the AGGD sides (measured: shapes identical,
  other features within 3e-6 of piq while within 3e-14 of MATLAB);
* NIQE vs ``computequality.m``: 1e-9 relative (measured 2e-12); model fit vs ``estimatemodelparam.m``: 1e-10
  absolute (measured 1.5e-14);
* float32 inputs: NIQE within 1e-3 relative, BRISQUE features within 1e-4 and one shape grid step.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.io
import torch
from scipy import ndimage

from monai_kcross.functional import (
    brisque,
    brisque_features,
    fit_brisque_model,
    fit_niqe_model,
    load_brisque_model,
    load_niqe_model,
    niqe,
    niqe_patch_features,
    save_brisque_model,
    save_niqe_model,
)
from monai_kcross.functional.brisque import _brisque_regress
from monai_kcross.functional.no_reference import (
    aggd_parameters,
    get_brisque_model,
    get_niqe_model,
    ggd_parameters,
    imresize_half,
)
from monai_kcross.handlers import BRISQUEHandler, NIQEHandler
from monai_kcross.metrics import BRISQUEMetric, NIQEMetric

from ..conftest import GOLDEN_DIR

SHAPES = [0, 2, 6, 10, 14, 18, 20, 24, 28, 32]  # indices of the GGD/AGGD shape features
OTHERS = [i for i in range(36) if i not in SHAPES]


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads((GOLDEN_DIR / "no_reference_golden.json").read_text())


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / "no_reference_inputs.npz") as data:
        return {k: data[k].astype(np.float64) / (255.0 if data[k].dtype == np.uint8 else 65535.0) for k in data.files}


def batch(array: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(array)[None, None].to(dtype)


def planes(array: np.ndarray) -> list[np.ndarray]:
    return [array] if array.ndim == 2 else [array[..., k] for k in range(array.shape[-1])]


def rbf_score(features: np.ndarray, model: dict) -> float:
    """Independent NumPy evaluation of an RBF regression model on one feature row."""
    low, high = model["feature_low"].numpy(), model["feature_high"].numpy()
    scaled = -1 + 2 * (features - low) / (high - low)
    distance = ((scaled[None] - model["support_vectors"].numpy()) ** 2).sum(1)
    return float(np.exp(-model["gamma"] * distance) @ model["coefficients"].numpy() - model["rho"])


# --- golden values -----------------------------------------------------------------------------------------


def test_brisque_features_match_matlab_and_piq(golden, images):
    for name, entry in golden["cases"].items():
        for k, plane in enumerate(planes(images[name])):
            ours = brisque_features(batch(plane), data_range=1.0)[0, 0].numpy()
            np.testing.assert_allclose(ours, entry["brisque_features_matlab"][k], rtol=0, atol=1e-10, err_msg=name)
            if "brisque_features_piq" in entry:
                piq = np.asarray(entry["brisque_features_piq"][k])
                np.testing.assert_allclose(ours[OTHERS], piq[OTHERS], rtol=0, atol=1e-5, err_msg=name)
                np.testing.assert_allclose(ours[SHAPES], piq[SHAPES], rtol=0, atol=1e-3 + 1e-9, err_msg=name)


def test_niqe_matches_matlab(golden, images):
    for name, entry in golden["cases"].items():
        if "niqe_matlab" in entry:
            ours = niqe(batch(images[name]), model=entry["niqe_model"], data_range=1.0)
            assert ours.shape == (1, 1)
            assert ours.item() == pytest.approx(entry["niqe_matlab"], rel=1e-9, abs=0), name


def test_niqe_fit_matches_matlab(golden, images):
    fit = golden["niqe_fit"]
    model = fit_niqe_model(
        [torch.from_numpy(images[n]) for n in fit["images"]], patch_size=32, sharpness_threshold=0.75, data_range=1.0
    )
    np.testing.assert_allclose(model["mu"].numpy(), fit["mu"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(model["cov"].numpy(), fit["cov"], rtol=0, atol=1e-10)


def test_brisque_score_is_the_model_on_golden_features(golden, images):
    model = get_brisque_model("mri")
    for name in ("t1", "flair", "sample_synthesized", "volume"):
        expected = np.mean([rbf_score(np.asarray(f), model) for f in golden["cases"][name]["brisque_features_matlab"]])
        assert brisque(batch(images[name]), data_range=1.0).item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_float32_close_to_float64(golden, images):
    for name in ("t1", "t1_noise", "photo"):
        entry = golden["cases"][name]
        x32 = batch(images[name], torch.float32)
        assert niqe(x32, model=entry["niqe_model"], data_range=1.0).item() == pytest.approx(
            entry["niqe_matlab"], rel=1e-3
        )
        features = brisque_features(x32, data_range=1.0)[0, 0].double().numpy()
        reference = np.asarray(entry["brisque_features_matlab"][0])
        np.testing.assert_allclose(features[OTHERS], reference[OTHERS], rtol=0, atol=1e-4)
        np.testing.assert_allclose(features[SHAPES], reference[SHAPES], rtol=0, atol=1e-3 + 1e-6)


def test_moment_matching_recovers_known_shapes():
    generator = torch.Generator().manual_seed(0)
    gaussian = torch.randn(4, 200_000, generator=generator, dtype=torch.float64)
    shape, sigma = ggd_parameters(gaussian)
    torch.testing.assert_close(shape, torch.full((4,), 2.0, dtype=torch.float64), atol=0.03, rtol=0)
    torch.testing.assert_close(sigma, torch.ones(4, dtype=torch.float64), atol=0.01, rtol=0)
    # AGGD with shape 1 (asymmetric Laplace): sides chosen with probabilities proportional to the scales 0.5 and 1
    left_side = torch.rand(200_000, generator=generator, dtype=torch.float64) < 1 / 3
    magnitude = -torch.log(torch.rand(200_000, generator=generator, dtype=torch.float64))
    samples = torch.where(left_side, -0.5 * magnitude, magnitude)
    shape, left, right = aggd_parameters(samples)
    assert shape.item() == pytest.approx(1.0, abs=0.03)
    assert (left / right).item() == pytest.approx(0.5, abs=0.01)
    assert math.isnan(ggd_parameters(torch.zeros(10, dtype=torch.float64))[0].item())


def test_imresize_half_sizes_and_constant():
    x = torch.full((2, 3, 13, 20), 7.0, dtype=torch.float64)
    out = imresize_half(x)
    assert out.shape == (2, 3, 7, 10)
    torch.testing.assert_close(out, torch.full_like(out, 7.0))


# --- 3-D, batches, channels --------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [niqe, brisque], ids=["niqe", "brisque"])
def test_volume_is_mean_of_slices(function, images):
    volume = batch(images["volume"])  # (1, 1, 112, 128, 3)
    for axis in (2, -1):
        expected = torch.stack([function(volume[..., k], data_range=1.0) for k in range(3)]).mean(0)
        torch.testing.assert_close(function(volume, data_range=1.0, slice_axis=axis), expected, rtol=1e-12, atol=0)
    transposed = volume.permute(0, 1, 4, 2, 3)  # slices along the first spatial axis
    torch.testing.assert_close(function(transposed, data_range=1.0, slice_axis=0), function(volume, data_range=1.0))
    # constant (empty) slices are skipped; "image" windows the whole volume before slicing
    padded = torch.cat([torch.zeros_like(volume[..., :1]), volume, torch.zeros_like(volume[..., :2])], dim=-1)
    torch.testing.assert_close(function(padded), function(volume))


@pytest.mark.parametrize("function", [niqe, brisque], ids=["niqe", "brisque"])
def test_batch_and_channel_independence(function, images):
    a, b, c = images["t1"], images["flair"], images["t2"]
    stacked = torch.from_numpy(np.stack([np.stack([a, b]), np.stack([c, a])]))  # (2, 2, H, W)
    scores = function(stacked)
    assert scores.shape == (2, 2)
    for i, row in enumerate(([a, b], [c, a])):
        for j, image in enumerate(row):
            assert scores[i, j].item() == pytest.approx(function(batch(image)).item(), rel=1e-9, abs=1e-9)


def test_intensity_policy(images):
    x = batch(images["t2"])
    scaled = 3000.0 * x + 50.0
    torch.testing.assert_close(niqe(scaled), niqe(x))  # "image": own min-max
    torch.testing.assert_close(brisque(scaled, data_range=(50.0, 3050.0)), brisque(x, data_range=1.0))
    torch.testing.assert_close(niqe(x / 2, data_range=0.5), niqe(x, data_range=1.0))


def test_flat_patches_are_dropped_and_gradients_stay_finite(sample):
    x = 0.1 + torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x[..., :64] = 0.0  # zero background: MSCN exactly 0 (first patch column) or never positive (second)
    features, sharpness = niqe_patch_features(x, patch_size=32)
    assert features.shape == (1, 1, 6, 36) and sharpness.shape == (1, 1, 6)
    undefined = torch.tensor([True, True, False, True, True, False])
    assert bool(features[0, 0, undefined].isnan().all()) and bool(features[0, 0, ~undefined].isfinite().all())
    assert sharpness[0, 0, 0].item() == 0.0
    assert math.isfinite(niqe(x).item())
    volume = sample["reference"].double().requires_grad_()  # zero background: flat patches and slices
    for function in (niqe, brisque):
        (gradient,) = torch.autograd.grad(function(volume).sum(), volume)
        assert bool(torch.isfinite(gradient).all()), function.__name__


# --- behaviour on MR degradations ---------------------------------------------------------------------------


def rician(image: np.ndarray, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = level * np.percentile(image, 99)
    return np.hypot(image + sigma * rng.standard_normal(image.shape), sigma * rng.standard_normal(image.shape))


@pytest.mark.parametrize("name", ["t1", "flair"])
def test_scores_grow_with_noise_and_blur(name, images):
    image = images[name]
    noisy = torch.cat([batch(image)] + [batch(rician(image, level, 7)) for level in (0.03, 0.08)])
    blurred = torch.cat([batch(ndimage.gaussian_filter(image, s)) for s in (1.0, 1.8, 2.6)])
    for function in (niqe, brisque):
        for series in (noisy, blurred):
            scores = function(series, model="mri")[:, 0]
            assert bool((scores.diff() > 0).all()), (function.__name__, scores)


# --- models -------------------------------------------------------------------------------------------------


def test_shipped_models():
    for name, patch in (("mri", 32), ("natural", 96)):
        model = get_niqe_model(name)
        assert model["patch_size"] == patch and model["mu"].shape == (36,) and model["cov"].shape == (36, 36)
        assert bool(torch.linalg.eigvalsh(model["cov"]).min() > 0)
        assert get_brisque_model(name)["support_vectors"].shape[1] == 36


def test_niqe_model_round_trip(tmp_path, images):
    x = batch(images["t2"])
    model = get_niqe_model("mri")
    path = save_niqe_model(model, tmp_path / "model.npz")
    loaded = load_niqe_model(path)
    torch.testing.assert_close(loaded["mu"], model["mu"], rtol=0, atol=0)
    torch.testing.assert_close(niqe(x, model=path), niqe(x, model="mri"), rtol=0, atol=0)
    # the authors' MATLAB layout
    scipy.io.savemat(
        tmp_path / "modelparameters.mat",
        {"mu_prisparam": model["mu"][None].numpy(), "cov_prisparam": model["cov"].numpy()},
    )
    from_mat = load_niqe_model(tmp_path / "modelparameters.mat", patch_size=32)
    torch.testing.assert_close(niqe(x, model=from_mat), niqe(x, model="mri"), rtol=0, atol=0)
    assert load_niqe_model(tmp_path / "modelparameters.mat")["patch_size"] == 96  # the authors' default


def test_brisque_model_round_trip(tmp_path, images):
    x = torch.cat([batch(images["t1"]), batch(images["t1_blur"])])
    model = get_brisque_model("natural")
    expected = brisque(x, model="natural")
    torch.testing.assert_close(
        brisque(x, model=load_brisque_model(save_brisque_model(model, tmp_path / "b.npz"))), expected
    )
    # the LIVE release layout: libsvm model file and svm-scale range file
    lines = ["svm_type epsilon_svr", "kernel_type rbf", f"gamma {model['gamma']!r}", "nr_class 2"]
    lines += [f"total_sv {len(model['coefficients'])}", f"rho {model['rho']!r}", "SV"]
    for coefficient, vector in zip(model["coefficients"].tolist(), model["support_vectors"].tolist()):
        lines.append(f"{coefficient!r} " + " ".join(f"{i + 1}:{v!r}" for i, v in enumerate(vector) if v != 0))
    (tmp_path / "allmodel").write_text("\n".join(lines) + "\n")
    ranges = ["x", "-1 1"] + [
        f"{i + 1} {lo!r} {hi!r}"
        for i, (lo, hi) in enumerate(zip(model["feature_low"].tolist(), model["feature_high"].tolist()))
    ]
    (tmp_path / "allrange").write_text("\n".join(ranges) + "\n")
    libsvm = load_brisque_model(tmp_path / "allmodel", tmp_path / "allrange")
    torch.testing.assert_close(brisque(x, model=libsvm), expected, rtol=1e-12, atol=1e-10)
    # piq's weights layout (coefficients, support vectors) with the range file and gamma/rho
    torch.save((model["coefficients"].float(), model["support_vectors"].float()), tmp_path / "svm.pt")
    piq_style = load_brisque_model(tmp_path / "svm.pt", tmp_path / "allrange", gamma=model["gamma"], rho=model["rho"])
    torch.testing.assert_close(brisque(x, model=piq_style), expected, rtol=1e-4, atol=1e-3)


def test_fit_brisque_model_interpolates_training_data():
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(40, 36, generator=generator, dtype=torch.float64)
    targets = 10 * features[:, 0] + features[:, 5]
    model = fit_brisque_model(features, targets, gamma=0.5, ridge=1e-8)
    torch.testing.assert_close(_brisque_regress(features, model), targets, atol=1e-4, rtol=0)


# --- MONAI metric classes and handlers -----------------------------------------------------------------------


def test_metric_classes_buffer_and_reduce(images):
    x = torch.cat([batch(images["t1"]), batch(images["t2"])])
    for metric_class, function in ((NIQEMetric, niqe), (BRISQUEMetric, brisque)):
        metric = metric_class(get_not_nans=True)
        values = torch.cat([metric(x), metric([x[0], x[1]])])
        torch.testing.assert_close(values, torch.cat([function(x), function(x)]))
        mean, not_nans = metric.aggregate()
        assert mean.item() == pytest.approx(values.mean().item()) and not_nans.item() == 4
        with pytest.raises(ValueError, match="no-reference metric"):
            metric(x, x)


def test_handlers_in_an_engine(images):
    from ignite.engine import Engine
    from monai.handlers import from_engine

    x = torch.cat([batch(images["t1"]), batch(images["flair"])])
    engine = Engine(lambda engine, batch: {"pred": batch})
    NIQEHandler(output_transform=from_engine(["pred"])).attach(engine, "niqe")
    BRISQUEHandler(output_transform=from_engine(["pred"]), model="natural").attach(engine, "brisque")
    engine.run([x, x.flip(0)], max_epochs=1)
    assert engine.state.metrics["niqe"] == pytest.approx(niqe(x).mean().item(), rel=1e-6)
    assert engine.state.metrics["brisque"] == pytest.approx(brisque(x, model="natural").mean().item(), rel=1e-6)
    assert engine.state.metric_details["niqe"].shape == (4, 1)


# --- errors -----------------------------------------------------------------------------------------------


def test_errors_name_the_problem(tmp_path):
    good = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    for function in (niqe, brisque):
        bad = good.clone()
        bad[0, 0, 3, 3] = math.nan
        with pytest.raises(ValueError, match="NaN or Inf"):
            function(bad)
        with pytest.raises(ValueError, match="got 3-D input"):
            function(good[0])
        with pytest.raises(ValueError, match="constant"):
            function(torch.ones(1, 1, 64, 64))
        with pytest.raises(ValueError, match="every slice along slice_axis=-1 is constant"):
            function(torch.arange(4.0).expand(1, 1, 64, 64, 4).contiguous())
        with pytest.raises(ValueError, match="data_range must be 'image'"):
            function(good, data_range="volume")
        with pytest.raises(ValueError, match="one spatial axis"):
            function(good[..., None].expand(1, 1, 64, 64, 3), slice_axis=(0, 1))
        with pytest.raises(FileNotFoundError, match=r"missing_model\.npz"):
            function(good, model=tmp_path / "missing_model.npz")
        with pytest.raises(ValueError, match="unknown model 'imagenet'"):
            function(good, model="imagenet")
    with pytest.raises(ValueError, match=r"images of size \(20, 40\) are too small.*patch size 32"):
        niqe(torch.rand(1, 1, 20, 40))
    with pytest.raises(ValueError, match=r"slices of size \(64, 80\) are too small.*patch size 96"):
        niqe(torch.rand(1, 1, 64, 80, 5), model="natural")
    with pytest.raises(ValueError, match=r"images of size \(8, 40\) are too small"):
        brisque(torch.rand(1, 1, 8, 40))
    with pytest.raises(ValueError, match="spatial_dims=2 expects"):
        brisque_features(torch.rand(1, 1, 32, 32, 4))
    with pytest.raises(ValueError, match="patch_size must be an even integer"):
        niqe_patch_features(good, patch_size=33)
    with pytest.raises(ValueError, match=r"lacks \['cov'\]"):
        niqe(good, model={"mu": torch.zeros(36)})
    with pytest.raises(FileNotFoundError, match="allrange"):
        (tmp_path / "allmodel").write_text("svm_type epsilon_svr\n")
        load_brisque_model(tmp_path / "allmodel", tmp_path / "allrange")
    with pytest.raises(ValueError, match="range_path"):
        load_brisque_model(tmp_path / "allmodel")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.mat"):
        load_niqe_model(tmp_path / "nowhere.mat")
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        NIQEMetric(model=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="only 0 usable patch"):
        fit_niqe_model([], patch_size=32)
    with pytest.raises(ValueError, match="constant"):
        fit_niqe_model([torch.ones(64, 64)], patch_size=32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(images):
    x = torch.cat([batch(images["t1"]), batch(images["flair"])])
    for function in (niqe, brisque):
        torch.testing.assert_close(function(x.cuda()).cpu(), function(x), rtol=1e-9, atol=1e-9)
