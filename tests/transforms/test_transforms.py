"""k-space and perturbation transforms on real anatomy (slices and a crop of the bundled MNI sample)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from scipy import ndimage, special

import monai_kcross.transforms as T

NAMES = list(T.PERTURBATIONS)
SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def anatomy(sample):
    """2-D slice and 3-D crop (C, ...) with lesion and brain masks; scanner units."""
    x, lesion, brain = sample["reference"][0], sample["lesion_mask"][0], sample["brain_mask"][0]
    crop = (slice(None), slice(30, 66), slice(30, 70), slice(40, 66))
    return {
        "2d": (x[..., 53].clone(), lesion[..., 53].clone(), brain[..., 53].clone()),
        "3d": (x[crop].clone(), lesion[crop].clone(), brain[crop].clone()),
    }


def make(name: str, seed: int = 0):
    perturbation = T.create_perturbation(name)
    perturbation.set_random_state(seed)
    return perturbation


def region_for(name, lesion, brain):
    return brain if name == "lesion_insertion" else lesion


def run(perturbation, name, x, lesion, brain, severity, seed=0):
    perturbation.set_random_state(seed)
    region = region_for(name, lesion, brain) if perturbation.needs_region else None
    return perturbation(x, region=region, severity=severity)


# ---------------------------------------------------------------------------------------------- k-space


@pytest.mark.parametrize("dims", ["2d", "3d"])
@pytest.mark.parametrize("spatial_dims", [None, 2])
def test_kspace_round_trip_and_parseval(anatomy, dims, spatial_dims):
    x = anatomy[dims][0].double() / 3000
    k = T.ToKSpace(spatial_dims=spatial_dims)(x)
    assert k.is_complex()
    torch.testing.assert_close(T.FromKSpace(spatial_dims=spatial_dims)(k), x, atol=1e-6, rtol=0)
    assert float((k.abs() ** 2).sum()) == pytest.approx(float((x**2).sum()), rel=1e-10)
    two = T.ToKSpace(spatial_dims=spatial_dims, output="real_imag")(x)
    assert two.shape[0] == 2 * x.shape[0] and not two.is_complex()
    torch.testing.assert_close(T.FromKSpace(spatial_dims=spatial_dims)(two), x, atol=1e-6, rtol=0)


def test_kspace_is_centred_and_matches_numpy(anatomy):
    x = anatomy["2d"][0].double()
    k = T.ToKSpace()(x)
    expected = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x[0].numpy()), norm="ortho"))
    np.testing.assert_allclose(k[0].numpy(), expected, atol=1e-8)
    centre = tuple(n // 2 for n in x.shape[1:])
    assert float(k[0][centre].real) == pytest.approx(float(x.sum()) / math.sqrt(x[0].numel()))
    assert k[0].abs().argmax() == np.ravel_multi_index(centre, x.shape[1:])


def test_per_slice_kspace_of_a_volume(anatomy):
    x = anatomy["3d"][0].double()
    k = T.ToKSpace(spatial_dims=2)(x)
    torch.testing.assert_close(k[..., 7], T.ToKSpace()(x[..., 7]))


def test_kspace_components(anatomy):
    x = anatomy["2d"][0].double()
    k = T.ToKSpace()(x)
    comps = T.KSpaceComponents(("amplitude", "log_amplitude", "phase", "real", "imag"))(x)
    assert comps.shape == (5, *x.shape[1:])
    torch.testing.assert_close(comps[0], k[0].abs())
    torch.testing.assert_close(comps[1], torch.log1p(k[0].abs()))
    torch.testing.assert_close(torch.polar(comps[0], comps[2]), k[0])
    torch.testing.assert_close(T.KSpaceComponents(("real",))(k), k.real)  # complex input read as k-space
    with pytest.raises(ValueError, match="unknown k-space components"):
        T.KSpaceComponents(("power",))


@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_undersampling_mask(kind, anatomy):
    x = anatomy["2d"][0].double()
    transform = T.KSpaceUndersample(acceleration=4, center_fraction=0.1, kind=kind)
    transform.set_random_state(3)
    image, mask = transform(x)
    lines = mask[0, :, 0].bool()
    assert torch.all(mask == mask[:, :, :1])  # whole lines along the read-out axis
    n = x.shape[1]
    assert lines[n // 2 - 3 : n // 2 + 4].all()  # the centre is fully sampled
    assert abs(int(lines.sum()) - n / 4) <= (0.15 * n if kind == "random" else 2)
    k = T.ToKSpace()(x) * mask
    torch.testing.assert_close(image, T.FromKSpace(output="magnitude")(k))
    transform.set_random_state(3)
    torch.testing.assert_close(transform(x)[1], mask)  # seeded


def test_undersampled_dict_shares_the_mask(anatomy):
    x = anatomy["2d"][0].double()
    transform = T.KSpaceUndersampled(keys=["a", "b"], acceleration=3, kind="random")
    transform.set_random_state(5)
    out = transform({"a": x, "b": 2 * x})
    torch.testing.assert_close(out["b"], 2 * out["a"])
    assert "a_kspace_mask" in out


# ---------------------------------------------------------------------------------------------- perturbations


@pytest.mark.parametrize("dims", ["2d", "3d"])
@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_identity_and_effect_grows(anatomy, dims, name):
    x, lesion, brain = anatomy[dims]
    perturbation = make(name)
    mse = []
    for severity in SEVERITIES:
        out = run(perturbation, name, x, lesion, brain, severity)
        assert out.shape == x.shape and out.dtype == torch.float32
        if severity == 0:
            assert torch.equal(out, x.float())
        mse.append(float(((out - x) ** 2).mean()))
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(mse)), mse
    assert mse[-1] > 0


@pytest.mark.parametrize("dims", ["2d", "3d"])
@pytest.mark.parametrize("name", [n for n, (_, kind) in T.PERTURBATIONS.items() if kind == "local"])
def test_local_alterations_stay_within_their_margin(anatomy, dims, name):
    x, lesion, brain = anatomy[dims]
    perturbation = make(name, seed=4)
    out = run(perturbation, name, x, lesion, brain, 1.0, seed=4)
    changed = (out != x).any(0).numpy()
    assert changed.any()
    footprint = perturbation.new_region if name == "lesion_insertion" else lesion[0]
    distance = ndimage.distance_transform_edt(~footprint.numpy().astype(bool))
    assert distance[changed].max() <= perturbation.margin + 1e-9


def test_lesion_insertion_lies_inside_the_placement_region(anatomy):
    x, _, brain = anatomy["3d"]
    perturbation = make("lesion_insertion", seed=7)
    perturbation(x, region=brain)
    assert perturbation.new_region.any() and not (perturbation.new_region & ~brain[0]).any()


def test_rician_noise_matches_theory_on_flat_regions():
    sigma_fraction = 0.05
    for level in (0.0, 0.1):  # background (Rayleigh) and a bright region, relative to span 1
        x = torch.zeros(1, 256, 256, dtype=torch.float64)
        x[:, :, 128:] = 1.0
        x[0, 0, 255] = 0.0  # span exactly 1, so sigma = sigma_fraction
        x[:, :, :128] = level
        noise = T.RicianNoise(severity=1.0, max_sigma=sigma_fraction)
        noise.set_random_state(11)
        flat = noise(x)[:, :, :128].flatten()
        a, s = level, sigma_fraction
        half = -(a**2) / (2 * s**2)
        laguerre = math.exp(half / 2) * ((1 - half) * special.i0(-half / 2) - half * special.i1(-half / 2))
        mean = s * math.sqrt(math.pi / 2) * laguerre
        variance = 2 * s**2 + a**2 - mean**2
        assert float(flat.mean()) == pytest.approx(mean, rel=0.01)
        assert float(flat.var()) == pytest.approx(variance, rel=0.03)


def test_gaussian_noise_sigma_and_blur_equal_scipy(anatomy):
    x = anatomy["2d"][0].double()
    span = float(x.max() - x.min())
    noise = T.GaussianNoise(severity=0.5, max_sigma=0.1)
    noise.set_random_state(1)
    assert float((noise(x) - x).std()) == pytest.approx(0.05 * span, rel=0.03)
    blurred = T.GaussianBlur(severity=0.5, max_sigma=2.0)(x)
    expected = ndimage.gaussian_filter(x[0].numpy(), 1.0, mode="reflect", truncate=4.0)
    np.testing.assert_allclose(blurred[0].numpy(), expected, atol=1e-9)


def test_phase_ramp_integer_shift_is_a_roll():
    x = torch.rand(1, 32, 24, dtype=torch.float64)
    shifted = T.PhaseRamp(severity=1.0, max_shift=2.0, magnitude=False)(x)
    torch.testing.assert_close(shifted, torch.roll(x, 2, dims=1), atol=1e-10, rtol=0)


def test_gibbs_keeps_the_central_fraction():
    x = torch.rand(1, 64, 64, dtype=torch.float64)
    out = T.GibbsRinging(severity=1.0, min_fraction=0.25, magnitude=False)(x)
    k = T.ToKSpace()(out)[0]
    assert k[:, :20].abs().max() < 1e-10 and k[:, 24:41].abs().max() > 0


def test_memorisation_copies_a_training_image():
    bank = torch.rand(5, 1, 16, 16)
    memorise = T.Memorise(bank, severity=1.0, mode="nearest")
    assert torch.equal(memorise(bank[3] + 0.01), bank[3])
    random = T.Memorise(bank, severity=1.0)
    random.set_random_state(2)
    out = random(torch.zeros(1, 16, 16))
    assert torch.equal(out, bank[random.last_index])
    with pytest.raises(ValueError, match="training images have shape"):
        memorise(torch.zeros(1, 8, 8))


# ---------------------------------------------------------------------------------------------- MONAI plumbing


@pytest.mark.parametrize("name", NAMES)
def test_dictionary_version_matches_array_version(anatomy, name):
    x, lesion, brain = anatomy["2d"]
    perturbation = make(name, seed=9)
    expected = run(perturbation, name, x, lesion, brain, 0.6, seed=9)
    cls, _ = T.PERTURBATIONS[name]
    dict_cls = getattr(T, f"{cls.__name__}d")
    kwargs = T.PERTURBATION_DEFAULTS.get(name, {})
    region_key = "region" if perturbation.needs_region else None
    transform = dict_cls(keys=["image", "copy"], severity=0.6, region_key=region_key, **kwargs)
    transform.set_random_state(9)
    out = transform({"image": x, "copy": x.clone(), "region": region_for(name, lesion, brain)})
    torch.testing.assert_close(out["image"], expected)
    torch.testing.assert_close(out["copy"], expected)  # one random draw for every key


def test_random_dictionary_version_is_seeded_and_respects_prob(anatomy):
    x = anatomy["2d"][0]
    never = T.RandGaussianNoised(keys="image", prob=0.0)
    assert torch.equal(never({"image": x})["image"], x)
    always = Compose([T.RandRicianNoised(keys="image", prob=1.0, severity=(0.2, 0.8))]).set_random_state(seed=3)
    first = always({"image": x})["image"]
    always.set_random_state(seed=3)
    torch.testing.assert_close(always({"image": x})["image"], first)
    assert not torch.equal(first, x)


def test_metadata_and_affine_preserved(anatomy):
    x = anatomy["3d"][0]
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    meta = MetaTensor(x, affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    for transform in (T.GaussianNoise(0.5), T.GibbsRinging(0.5), T.ToKSpace(), T.KSpaceComponents()):
        out = transform(meta)
        assert isinstance(out, MetaTensor)
        torch.testing.assert_close(out.affine, meta.affine)
        assert out.meta["filename_or_obj"] == "case.nii.gz"
    assert isinstance(T.FromKSpace()(T.ToKSpace()(meta)), MetaTensor)
    numpy_out = T.Gamma(0.5)(x.numpy())
    assert isinstance(numpy_out, np.ndarray)


def test_label_key_receives_the_altered_lesion(anatomy):
    x, lesion, _ = anatomy["2d"]
    transform = T.LesionResized(keys="image", region_key="label", label_key="label", mode="grow", severity=1.0)
    out = transform({"image": x, "label": lesion})
    assert out["label"].shape == lesion.shape and int(out["label"].sum()) > int(lesion.sum())


# ---------------------------------------------------------------------------------------------- errors


def test_bad_input_is_named(anatomy):
    x, lesion, _ = anatomy["2d"]
    with pytest.raises(ValueError, match=r"severity must be in \[0, 1\]"):
        T.GaussianNoise(severity=1.5)
    with pytest.raises(ValueError, match=r"severity must be in \[0, 1\]"):
        T.GaussianNoise()(x, severity=-0.1)
    with pytest.raises(ValueError, match="needs a region"):
        T.LesionRemoval()(x)
    with pytest.raises(ValueError, match="region is empty"):
        T.LesionRemoval(strict=True)(x, region=torch.zeros_like(lesion))
    with pytest.raises(ValueError, match="region of shape"):
        T.LesionRemoval()(x, region=lesion[:, :10])
    with pytest.raises(ValueError, match="channel-first image"):
        T.GaussianBlur()(x[0])
    with pytest.raises(ValueError, match="needs region_key"):
        T.LesionRemovald(keys="image")
    with pytest.raises(ValueError, match="region_key 'label' is not in the data"):
        T.LesionRemovald(keys="image", region_key="label")({"image": x})
    with pytest.raises(ValueError, match="spatial_dims=3 does not fit"):
        T.ToKSpace(spatial_dims=3)(x)
    with pytest.raises(ValueError, match="even number of channels"):
        T.FromKSpace()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="unknown perturbation"):
        T.create_perturbation("zoom")


def test_memorised_dictionary_version():
    bank = torch.rand(4, 1, 12, 12)
    transform = T.Memorised(keys="image", training_images=bank, severity=1.0, mode="nearest")
    out = transform({"image": bank[2] * 0.99})
    assert torch.equal(out["image"], bank[2])
    rand = T.RandMemorised(keys="image", training_images=bank, prob=1.0, severity=1.0)
    rand.set_random_state(0)
    out = rand({"image": torch.zeros(1, 12, 12)})["image"]  # one call: each call draws a new training image
    assert any(torch.equal(out, b) for b in bank)


# ---------------------------------------------------------------------------------------------- regressions


def test_margin_holds_on_bright_random_images():
    x = torch.rand(1, 16, 16, 16, generator=torch.Generator().manual_seed(0)) * 1000
    region = torch.zeros(1, 16, 16, 16, dtype=torch.bool)
    region[:, 6:9, 6:9, 6:9] = True
    for perturbation in (T.LocalContrastChange(), T.LocalElasticDeformation(), T.LesionRemoval()):
        out = perturbation(x, region=region)
        changed = (out != x).any(0).numpy()
        distance = ndimage.distance_transform_edt(~region[0].numpy())
        assert distance[changed].max() <= perturbation.margin + 1e-9, type(perturbation).__name__


def test_random_draws_do_not_depend_on_dtype(anatomy):
    x = anatomy["2d"][0]
    for cls in (T.GaussianNoised, T.RicianNoised):
        transform = cls(keys=["a", "b"], severity=0.5)
        transform.set_random_state(1)
        out = transform({"a": x.float(), "b": x.double()})
        torch.testing.assert_close(out["a"].double(), out["b"], atol=1e-3, rtol=1e-5)


def test_half_precision_and_size_one_axes(anatomy):
    x, lesion, _ = anatomy["2d"]
    for name in ("motion_ghosting", "gibbs_ringing", "lesion_removal", "gaussian_blur"):
        perturbation = make(name)
        out = perturbation(x.half(), region=lesion if perturbation.needs_region else None, severity=0.5)
        assert out.dtype == torch.float16 and torch.isfinite(out.float()).all()
    assert T.BiasField()(torch.rand(1, 1, 8, 8, dtype=torch.float64)).dtype == torch.float64
    k = T.ToKSpace(output="real_imag")(x.half())
    assert T.FromKSpace()(k.half()).dtype == torch.float32


def test_elastic_label_follows_the_deformation(anatomy):
    x, lesion, _ = anatomy["3d"]
    perturbation = T.LocalElasticDeformation(severity=1.0, max_displacement=3.0)
    perturbation.set_random_state(2)
    perturbation(x, region=lesion)
    assert perturbation.new_region.shape == lesion.shape[1:]
    assert not torch.equal(perturbation.new_region, lesion[0].bool())


def test_lesion_insertion_rejects_bad_placement():
    image = torch.rand(1, 32, 32)
    thin = torch.zeros(1, 32, 32, dtype=torch.bool)
    thin[:, 16, :] = True
    with pytest.raises(ValueError, match="too thin"):
        T.LesionInsertion(radius=4, strict=True)(image, region=thin)
    with pytest.raises(ValueError, match="not inside the placement region"):
        T.LesionInsertion(center=(2, 2))(image, region=thin)
