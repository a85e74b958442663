"""Transforms in MONAI pipelines: empty regions, determinism, the ``applied_operations`` trace, inverses and
the dictionary transforms' signatures (issue 15 items 9-10, issue 16)."""

from __future__ import annotations

import inspect

import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, InvertibleTransform
from monai.utils import TraceKeys

import monai_kcross.transforms as T

LOCAL = [name for name, (_, kind) in T.PERTURBATIONS.items() if kind == "local"]
INVERTIBLE = ["intensity_scale_shift", "gamma", "bias_field", "histogram_shift"]


@pytest.fixture(scope="module")
def slice2d(sample):
    """A 2-D slice ``(1, H, W)`` with its lesion label, and the brain mask (placement region of insertions)."""
    z = 53
    return (
        sample["reference"][0][..., z].clone(),
        sample["lesion_mask"][0][..., z].clone(),
        sample["brain_mask"][0][..., z],
    )


def _classes(name):
    cls, _ = T.PERTURBATIONS[name]
    return cls, getattr(T, f"{cls.__name__}d"), getattr(T, f"Rand{cls.__name__}d")


def _last(image) -> dict:
    return image.applied_operations[-1]


# ------------------------------------------------------------------------------------------- empty regions


@pytest.mark.parametrize("name", LOCAL)
def test_empty_region_passes_through_and_is_recorded(slice2d, name):
    x, lesion, _ = slice2d
    _, fixed, rand = _classes(name)
    kwargs = T.PERTURBATION_DEFAULTS.get(name, {})
    healthy = {"image": MetaTensor(x.clone()), "label": torch.zeros_like(lesion)}
    for transform in (
        fixed(keys="image", region_key="label", **kwargs),
        rand(keys="image", region_key="label", prob=1.0, severity=(0.5, 1.0), **kwargs),
    ):
        out = transform(dict(healthy))
        assert torch.equal(out["image"].as_tensor(), x), type(transform).__name__
        info = _last(out["image"])[TraceKeys.EXTRA_INFO]
        assert info["applied"] is False and "region is empty" in info["reason"]
    with pytest.raises(ValueError, match="region is empty"):
        fixed(keys="image", region_key="label", strict=True, **kwargs)(dict(healthy))
    with pytest.raises(ValueError, match="region is empty"):
        T.PERTURBATIONS[name][0](strict=True, **kwargs)(x, region=torch.zeros_like(lesion))


def test_mixed_healthy_and_lesion_subjects_train_in_a_data_loader(slice2d):
    x, lesion, _ = slice2d
    data = [{"image": MetaTensor(x.clone()), "label": lesion if i % 2 else torch.zeros_like(lesion)} for i in range(4)]
    pipeline = Compose(
        [
            T.RandLesionRemovald(keys="image", region_key="label", prob=1.0),
            T.RandLocalContrastChanged(keys="image", region_key="label", prob=1.0),
        ]
    ).set_random_state(0)
    batches = list(DataLoader(Dataset(data, pipeline), batch_size=2, num_workers=0))
    assert len(batches) == 2
    for batch in batches:
        assert torch.equal(batch["image"][0].as_tensor(), x)  # healthy subject unchanged
        assert not torch.equal(batch["image"][1].as_tensor(), x)  # lesion subject perturbed


def test_missing_region_key_is_skipped_only_when_allowed(slice2d):
    x, _, _ = slice2d
    with pytest.raises(ValueError, match="region_key 'label' is not in the data"):
        T.LesionRemovald(keys="image", region_key="label")({"image": x})
    out = T.LesionRemovald(keys="image", region_key="label", allow_missing_keys=True)({"image": MetaTensor(x)})
    assert torch.equal(out["image"].as_tensor(), x)
    assert "'label' is missing" in _last(out["image"])[TraceKeys.EXTRA_INFO]["reason"]


def test_other_data_dependent_failures_skip_unless_strict():
    image = torch.rand(1, 32, 32)
    thin = torch.zeros(1, 32, 32, dtype=torch.bool)
    thin[:, 16, :] = True
    insertion = T.LesionInsertion(radius=4)
    assert torch.equal(insertion(image, region=thin), image) and not insertion.new_region.any()
    assert "too thin" in insertion.applied["reason"]
    full = torch.ones(1, 32, 32, dtype=torch.bool)
    assert torch.equal(T.LesionResize(mode="shrink")(image, region=full), image)
    with pytest.raises(ValueError, match="no healthy tissue"):
        T.LesionResize(mode="shrink", strict=True)(image, region=full)
    with pytest.raises(ValueError, match="not inside the placement region"):  # a setting error always raises
        T.LesionInsertion(center=(2, 2))(image, region=thin)


# ------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", list(T.PERTURBATIONS))
def test_deterministic_versions_give_the_same_output_every_call(slice2d, name):
    x, lesion, brain = slice2d
    cls, fixed, _ = _classes(name)
    kwargs = T.PERTURBATION_DEFAULTS.get(name, {})
    region = brain if name == "lesion_insertion" else lesion
    array = cls(severity=0.7, **kwargs)
    first = array(x, region=region)
    assert torch.equal(array(x, region=region), first)
    assert torch.equal(cls(severity=0.7, **kwargs)(x, region=region), first)  # a fresh instance too
    transform = fixed(keys="image", region_key="region" if array.needs_region else None, severity=0.7, **kwargs)
    data = {"image": x, "region": region}
    torch.testing.assert_close(transform(data)["image"], first)
    torch.testing.assert_close(transform(data)["image"], first)


@pytest.mark.parametrize("name", ["lesion_removal", "gaussian_noise", "bias_field", "lesion_insertion"])
def test_seed_selects_the_realisation_and_random_versions_vary(slice2d, name):
    x, lesion, brain = slice2d
    cls, _, rand = _classes(name)
    region = brain if name == "lesion_insertion" else lesion
    assert not torch.equal(cls(seed=0)(x, region=region), cls(seed=1)(x, region=region))
    legacy = cls()
    legacy.set_random_state(1)  # the MONAI-style call selects the same realisation as seed=1
    assert torch.equal(legacy(x, region=region), cls(seed=1)(x, region=region))
    transform = rand(keys="image", region_key="region" if cls.needs_region else None, prob=1.0, severity=1.0)
    transform.set_random_state(0)
    data = {"image": x, "region": region}
    assert not torch.equal(transform(data)["image"], transform(data)["image"])


def test_lesion_removald_is_deterministic(slice2d):
    x, lesion, _ = slice2d
    transform = T.LesionRemovald(keys="image", region_key="label")
    assert torch.equal(
        transform({"image": x, "label": lesion})["image"], transform({"image": x, "label": lesion})["image"]
    )


# ------------------------------------------------------------------------------------------- trace


@pytest.mark.parametrize("name", list(T.PERTURBATIONS))
def test_random_perturbations_are_recorded(slice2d, name):
    x, lesion, brain = slice2d
    cls, fixed, rand = _classes(name)
    kwargs = T.PERTURBATION_DEFAULTS.get(name, {})
    region = brain if name == "lesion_insertion" else lesion
    region_key = "region" if cls.needs_region else None
    transform = rand(keys="image", region_key=region_key, prob=1.0, severity=(0.2, 0.4), **kwargs)
    transform.set_random_state(3)
    image = MetaTensor(x.clone())
    out = transform({"image": image, "region": region})["image"]
    assert len(image.applied_operations) == 0  # the input is left alone
    record = _last(out)
    assert record[TraceKeys.CLASS_NAME] == rand.__name__ and record[TraceKeys.DO_TRANSFORM]
    info = record[TraceKeys.EXTRA_INFO]
    assert 0.2 <= info["severity"] <= 0.4 and info["applied"] is True
    assert ("seed" in info) == ("seed" in inspect.signature(cls).parameters)  # recorded where random numbers are drawn
    for parameter, value in kwargs.items():
        assert info[parameter] == value
    seed = {"seed": info["seed"]} if "seed" in info else {}
    array = cls(severity=info["severity"], **seed, **kwargs)  # the record reproduces the output
    torch.testing.assert_close(out.as_tensor(), array(x, region=region))
    skipped = rand(keys="image", region_key=region_key, prob=0.0, **kwargs)({"image": image, "region": region})
    assert _last(skipped["image"])[TraceKeys.DO_TRANSFORM] is False
    fixed_out = fixed(keys="image", region_key=region_key, severity=0.3, **kwargs)({"image": image, "region": region})
    assert _last(fixed_out["image"])[TraceKeys.CLASS_NAME] == cls.__name__


def test_physical_parameters_are_recorded(slice2d):
    x = MetaTensor(slice2d[0])
    span = float(x.max() - x.min())
    noisy = T.GaussianNoise(severity=0.5, max_sigma=0.1)(x)
    assert _last(noisy)[TraceKeys.EXTRA_INFO]["sigma"] == pytest.approx(0.05 * span)
    undersampled, _ = T.KSpaceUndersample(acceleration=4, seed=2)(x)
    info = _last(undersampled)[TraceKeys.EXTRA_INFO]
    assert info["acceleration"] == 4 and info["seed"] == 2 and 0 < info["lines"] < x.shape[1]


# ------------------------------------------------------------------------------------------- inverses


def _image(slice2d, dims):
    x = slice2d[0].double()
    return MetaTensor(x if dims == 2 else torch.stack([x, 0.5 * x, x.flip(1)], dim=-1))


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("name", INVERTIBLE)
def test_intensity_maps_invert(slice2d, name, dims):
    x = _image(slice2d, dims)
    cls, fixed, rand = _classes(name)
    assert issubclass(cls, InvertibleTransform) and issubclass(rand, InvertibleTransform)
    tolerance = {"atol": 1e-6 * float(x.max()), "rtol": 0}
    array = cls(severity=0.8)
    out = array(x)
    assert not torch.allclose(out.as_tensor(), x.as_tensor())
    back = array.inverse(out)
    torch.testing.assert_close(back.as_tensor(), x.as_tensor(), **tolerance)
    assert len(back.applied_operations) == 0
    pipeline = Compose([fixed(keys="image", severity=0.6), rand(keys="image", prob=1.0, severity=(0.3, 1.0))])
    pipeline.set_random_state(1)
    data = pipeline({"image": x})
    assert [op[TraceKeys.CLASS_NAME] for op in data["image"].applied_operations] == [cls.__name__, rand.__name__]
    restored = pipeline.inverse(data)["image"]
    torch.testing.assert_close(restored.as_tensor(), x.as_tensor(), **tolerance)
    assert len(restored.applied_operations) == 0
    plain = cls(severity=0.8)
    out = plain(x.as_tensor())  # a plain tensor carries no trace: invert it with the last call's record
    torch.testing.assert_close(plain.invert(out, plain.applied), x.as_tensor(), **tolerance)
    with pytest.raises(ValueError, match="MetaTensor"):
        plain.inverse(out)


def test_non_invertible_perturbations_are_not_invertible_transforms():
    for name, (cls, _) in T.PERTURBATIONS.items():
        assert issubclass(cls, InvertibleTransform) == (name in INVERTIBLE), name


@pytest.mark.parametrize("dims", [2, 3])
def test_kspace_conversions_invert(slice2d, dims):
    x = _image(slice2d, dims)
    tolerance = {"atol": 1e-9 * float(x.max()), "rtol": 0}
    for transform in (
        T.ToKSpace(),
        T.ToKSpace(output="real_imag", spatial_dims=2),
        T.KSpaceComponents(),
        T.KSpaceComponents(("real", "imag"), spatial_dims=2),
    ):
        out = transform(x)
        back = transform.inverse(out)
        torch.testing.assert_close(back.as_tensor(), x.as_tensor(), **tolerance)
        assert len(back.applied_operations) == 0
    k = T.ToKSpace()(x)
    for output in ("complex", "real"):  # the k-space of a real image is Hermitian: "real" loses nothing
        from_k = T.FromKSpace(output=output)
        torch.testing.assert_close(from_k.inverse(from_k(k)).as_tensor(), k.as_tensor(), **tolerance)
    with pytest.raises(ValueError, match="discards the phase"):
        magnitude = T.FromKSpace(output="magnitude")
        magnitude.inverse(magnitude(k))
    with pytest.raises(ValueError, match="cannot be inverted"):
        components = T.KSpaceComponents(("amplitude",))
        components.inverse(components(x))
    pipeline = Compose([T.ToKSpaced(keys="image"), T.KSpaceComponentsd(keys="image", components=("real", "imag"))])
    restored = pipeline.inverse(pipeline({"image": x}))["image"]
    torch.testing.assert_close(restored.as_tensor(), x.as_tensor(), **tolerance)


# ------------------------------------------------------------------------------------------- signatures


def test_dictionary_transforms_have_real_signatures_and_docstrings():
    for name in T.dictionary.__all__:
        cls = getattr(T, name)
        parameters = inspect.signature(cls).parameters
        assert "kwargs" not in parameters and "keys" in parameters, name
        assert cls.__doc__ and "Args:" in cls.__doc__, name
        for parameter in parameters:
            assert f"{parameter}" in cls.__doc__, (name, parameter)
    signature = inspect.signature(T.RandGaussianNoised)
    assert signature.parameters["max_sigma"].default == 0.1 and "seed" not in signature.parameters
    assert inspect.signature(T.GaussianNoised).parameters["seed"].default == 0
    assert inspect.signature(T.LesionRemovald).parameters["strict"].default is False


def test_unknown_keywords_are_named():
    with pytest.raises(TypeError, match=r"GaussianNoised got unknown argument\(s\) \['sigma'\].*max_sigma"):
        T.GaussianNoised(keys="image", sigma=0.1)
    with pytest.raises(TypeError, match=r"not monai\.transforms\.RandRicianNoised"):
        T.RandRicianNoised(keys="image", std=0.1)
    with pytest.raises(TypeError, match="unknown argument"):
        T.ToKSpaced(keys="image", norm="ortho")
    with pytest.raises(ValueError, match="acts on the whole image"):
        T.GaussianNoised(keys="image", region_key="label")


def test_monai_namesakes_document_the_difference():
    import monai.transforms as M

    for name in T.dictionary.__all__:
        if hasattr(M, name):
            assert f"Unlike MONAI's ``{name}``" in getattr(T, name).__doc__, name
