"""Set-level metrics of generated image sets as MONAI metrics: FID, KID, MMD, PRDC, diversity, memorisation, and
any of them per plane of volumes (:class:`ThreePlaneMetric`, "2.5-D" as MONAI's MAISI FID).

Call ``metric(y_pred=generated, y=real)`` batch by batch (either may be omitted in a call; lists of
channel-first images are stacked); features are extracted at once by the metric's
:class:`~monai_kcross.features.FeatureExtractor` (``extractor=None``: the inputs already are features
``(N, F)``) and kept in MONAI ``Cumulative`` buffers, which gather across processes under ``torch.distributed``.
``aggregate()`` returns a :class:`SetLevelResult` holding the values *and the extractor's identity*, so results
from different extractors are never mixed up silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from monai.metrics import Cumulative
from monai.metrics.metric import Metric

from ..features import PLANES, FeatureExtractor, KCrossFeatures, RadiomicsFeatures, SliceFeatures, extract_features
from ..functional.set_level import concordance, fid, frd, kid, memorisation, mmd, pairwise_diversity, prdc
from ..functional.validation import as_plain_tensor

__all__ = [
    "DiversityMetric",
    "FIDMetric",
    "FRDMetric",
    "KIDMetric",
    "MMDMetric",
    "MemorisationMetric",
    "PRDCMetric",
    "RadiomicAgreementMetric",
    "SetLevelMetric",
    "SetLevelResult",
    "ThreePlaneMetric",
]


@dataclass
class SetLevelResult:
    """Values of a set-level metric with what they were computed from.

    Attributes:
        values: ``{name: value}`` (e.g. ``{"fid": 12.3}``; PRDC has four entries).
        extractor: identity of the feature extractor (``"features"`` when features were given directly).
        n_generated, n_real: set sizes.
        details: extra per-sample outputs (e.g. memorisation ratios).
    """

    values: dict[str, float]
    extractor: str
    n_generated: int
    n_real: int
    details: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    @property
    def value(self) -> float:
        """The first (primary) value."""
        return next(iter(self.values.values()))

    def comparable_with(self, other: SetLevelResult) -> bool:
        """Whether two results come from the same feature extractor."""
        return self.extractor == other.extractor


def _stack(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(images, (list, tuple)):
        return torch.stack([as_plain_tensor(i) for i in images])
    return as_plain_tensor(images)


class SetLevelMetric(Metric):
    """Base class: feature buffers for generated (``y_pred``) and real (``y``) images and ``aggregate()``.

    Args:
        extractor: a :class:`~monai_kcross.features.FeatureExtractor`; ``"kcross"`` (default) builds
            :class:`~monai_kcross.features.KCrossFeatures` from the shipped bundle on first use; ``None`` means
            the inputs are already features ``(N, F)``.
        batch_size: images per extractor call.
    """

    def __init__(self, extractor: FeatureExtractor | str | None = "kcross", batch_size: int = 32) -> None:
        super().__init__()
        if isinstance(extractor, str) and extractor != "kcross":
            raise ValueError(f"extractor must be a FeatureExtractor, 'kcross' or None, got {extractor!r}.")
        self._extractor = extractor
        self.batch_size = batch_size
        self._buffers: dict[str, Cumulative] = {}
        self.reset()

    @property
    def extractor(self) -> FeatureExtractor | None:
        if self._extractor == "kcross":
            self._extractor = KCrossFeatures()
        return self._extractor  # type: ignore[return-value]

    @property
    def identity(self) -> str:
        return "features" if self.extractor is None else self.extractor.identity

    def reset(self) -> None:
        self._buffers = {"generated": Cumulative(), "real": Cumulative()}

    def _features(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        x = _stack(images)
        if self.extractor is None:
            if x.ndim != 2:
                raise ValueError(
                    f"{type(self).__name__}: without an extractor inputs must be features (N, F), got {tuple(x.shape)}."
                )
            return x
        if x.ndim == 2:
            raise ValueError(
                f"{type(self).__name__}: got features of shape {tuple(x.shape)}, but this metric extracts its own "
                f"features from images ({self.identity}). Pass extractor=None to give features directly; unlike "
                "MONAI's class of the same name it accumulates batches, and aggregate() gives the value."
            )
        return extract_features(self.extractor, x, self.batch_size)

    def _add(self, key: str, images: torch.Tensor | Sequence[torch.Tensor] | None) -> None:
        if images is not None:
            self._buffers[key].extend(self._features(images).detach())

    def __call__(self, y_pred: Any = None, y: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Add generated (``y_pred``) and/or real (``y``) images of one iteration."""
        self._add("generated", y_pred)
        self._add("real", y)

    def get_features(self, key: str) -> torch.Tensor:
        """All features of ``"generated"`` or ``"real"`` images so far (gathered across processes)."""
        buffer = self._buffers[key].get_buffer()
        if buffer is None or (isinstance(buffer, list) and not buffer):
            raise ValueError(f"{type(self).__name__}: no {key} images were added before aggregate().")
        return buffer

    def _compute(self, generated: torch.Tensor, real: torch.Tensor) -> tuple[dict[str, float], dict[str, Any]]:
        raise NotImplementedError

    def aggregate(self) -> SetLevelResult:  # type: ignore[override]
        generated, real = self.get_features("generated"), self.get_features("real")
        values, details = self._compute(generated, real)
        return SetLevelResult(values, self.identity, len(generated), len(real), details)


class FIDMetric(SetLevelMetric):
    """Fréchet distance (:func:`~monai_kcross.functional.set_level.fid`), lower is better."""

    def _compute(self, generated, real):
        return {"fid": float(fid(real, generated))}, {}


class KIDMetric(SetLevelMetric):
    """Kernel inception distance (:func:`~monai_kcross.functional.set_level.kid`): mean and std over subsets."""

    def __init__(
        self,
        extractor: FeatureExtractor | str | None = "kcross",
        subsets: int = 100,
        subset_size: int = 1000,
        degree: int = 3,
        seed: int = 0,
        batch_size: int = 32,
    ) -> None:
        super().__init__(extractor, batch_size)
        self.options = {"subsets": subsets, "subset_size": subset_size, "degree": degree, "seed": seed}

    def _compute(self, generated, real):
        mean, std = kid(real, generated, **self.options)
        return {"kid_mean": float(mean), "kid_std": float(std)}, {}


class MMDMetric(SetLevelMetric):
    """Squared MMD between the sets (:func:`~monai_kcross.functional.set_level.mmd`), lower is better."""

    def __init__(
        self,
        extractor: FeatureExtractor | str | None = "kcross",
        kernel: str = "gaussian",
        bandwidth: float | None = None,
        unbiased: bool = True,
        batch_size: int = 32,
    ) -> None:
        super().__init__(extractor, batch_size)
        self.options = {"kernel": kernel, "bandwidth": bandwidth, "unbiased": unbiased}

    def _compute(self, generated, real):
        return {"mmd": float(mmd(real, generated, **self.options))}, {}


class PRDCMetric(SetLevelMetric):
    """Precision, recall, density, coverage (:func:`~monai_kcross.functional.set_level.prdc`)."""

    def __init__(self, extractor: FeatureExtractor | str | None = "kcross", k: int = 5, batch_size: int = 32) -> None:
        super().__init__(extractor, batch_size)
        self.k = k

    def _compute(self, generated, real):
        return {name: float(value) for name, value in prdc(real, generated, self.k).items()}, {}


class DiversityMetric(SetLevelMetric):
    """Diversity within the generated set (real images, if given, get the same score for comparison).

    Args:
        mode: ``"feature"`` -- mean pairwise feature distance (higher = more diverse); ``"ms_ssim"`` -- mean
            pairwise MS-SSIM of the images themselves (higher = *less* diverse; images are kept in memory).
        max_pairs: random subset of pairs for large sets.
        ms_ssim_options: options of :func:`~monai_kcross.functional.ms_ssim` (e.g. ``weights`` for small images).
    """

    def __init__(
        self,
        extractor: FeatureExtractor | str | None = "kcross",
        mode: str = "feature",
        max_pairs: int | None = 20000,
        batch_size: int = 32,
        **ms_ssim_options: Any,
    ) -> None:
        if mode not in ("feature", "ms_ssim"):
            raise ValueError(f"mode must be 'feature' or 'ms_ssim', got {mode!r}.")
        super().__init__(None if mode == "ms_ssim" else extractor, batch_size)
        self.mode, self.max_pairs = mode, max_pairs
        self.ms_ssim_options = {"data_range": "reference", **ms_ssim_options}

    @property
    def identity(self) -> str:
        return "images:ms_ssim" if self.mode == "ms_ssim" else super().identity

    def _features(self, images):
        return _stack(images).float() if self.mode == "ms_ssim" else super()._features(images)

    def _score(self, samples: torch.Tensor) -> float:
        if self.mode == "feature":
            return float(pairwise_diversity(samples, max_pairs=self.max_pairs))
        from ..functional import ms_ssim

        def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return ms_ssim(a, b, **self.ms_ssim_options).mean(1)

        return float(pairwise_diversity(samples, similarity, max_pairs=self.max_pairs))

    def aggregate(self) -> SetLevelResult:  # type: ignore[override]
        generated = self.get_features("generated")
        key = "diversity" if self.mode == "feature" else "mean_pairwise_ms_ssim"
        values = {key: self._score(generated)}
        real = self._buffers["real"].get_buffer()
        n_real = 0
        if isinstance(real, torch.Tensor) and len(real) >= 2:
            values[f"{key}_real"] = self._score(real)
            n_real = len(real)
        return SetLevelResult(values, self.identity, len(generated), n_real)


class MemorisationMetric(SetLevelMetric):
    """Near-copies of training images among generated ones (:func:`~monai_kcross.functional.set_level.memorisation`).

    Call with ``y_pred=generated``, ``y=training images`` and optionally ``held_out=`` real images the generator
    never saw (better calibration). ``aggregate().values``: ``near_copy_fraction``, ``threshold``,
    ``median_ratio``; ``details``: per-sample ``ratio`` and ``near_copy``.
    """

    def __init__(
        self, extractor: FeatureExtractor | str | None = "kcross", quantile: float = 0.01, batch_size: int = 32
    ) -> None:
        super().__init__(extractor, batch_size)
        self.quantile = quantile

    def reset(self) -> None:
        super().reset()
        self._buffers["held_out"] = Cumulative()

    def __call__(self, y_pred: Any = None, y: Any = None, held_out: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        super().__call__(y_pred, y)
        self._add("held_out", held_out)

    def _compute(self, generated, real):
        held_out = self._buffers["held_out"].get_buffer()
        held_out = held_out if isinstance(held_out, torch.Tensor) and len(held_out) else None
        result = memorisation(generated, real, held_out, self.quantile)
        values = {
            "near_copy_fraction": result.fraction,
            "threshold": result.threshold,
            "median_ratio": float(result.ratio.median()),
        }
        details = {"ratio": result.ratio, "near_copy": result.near_copy, "calibration": result.calibration}
        return values, details


class ThreePlaneMetric(SetLevelMetric):
    """A set-level metric of volumes computed on the slices of each plane separately, then averaged ("2.5-D").

    As MONAI's MAISI 2.5-D FID: every non-empty slice of the sagittal, coronal and axial planes (slice axes 0, 1,
    2 of ``(B, C, H, W, D)``, RAS orientation) is one sample of that plane's set, and the metric is computed per
    plane. ``aggregate().values`` holds the mean over planes under the metric's own names (``"fid"``) first, then
    each plane's value (``"fid_sagittal"``, ``"fid_coronal"``, ``"fid_axial"``); ``details["planes"]`` has the
    per-plane :class:`SetLevelResult` (slice counts in ``n_generated``/``n_real``). Works with any 2-D extractor,
    e.g. :class:`~monai_kcross.features.VGG16Features` for a three-plane FID-VGG16.

    Args:
        metric: the set-level metric class (:class:`FIDMetric`, :class:`KIDMetric`, :class:`MMDMetric`,
            :class:`PRDCMetric`).
        extractor: a 2-D :class:`~monai_kcross.features.FeatureExtractor` or ``"kcross"``.
        axes: slice axes to use (default all three).
        min_foreground: a slice is empty (dropped) when fewer of its voxels lie above 1 % of the volume's range.
        batch_size: slices per extractor call.
        options: further keyword arguments of ``metric`` (e.g. ``subsets`` for KID).
    """

    def __init__(
        self,
        metric: type[SetLevelMetric] = FIDMetric,
        extractor: FeatureExtractor | str = "kcross",
        axes: Sequence[int] = (0, 1, 2),
        min_foreground: float = 0.05,
        batch_size: int = 32,
        **options: Any,
    ) -> None:
        if not (isinstance(metric, type) and issubclass(metric, SetLevelMetric)) or metric is ThreePlaneMetric:
            raise ValueError(f"metric must be a SetLevelMetric class such as FIDMetric, got {metric!r}.")
        base = KCrossFeatures() if extractor == "kcross" else extractor
        if not isinstance(base, FeatureExtractor) or base.spatial_dims != 2:
            raise ValueError("ThreePlaneMetric needs a 2-D FeatureExtractor (or 'kcross').")
        self.planes = {
            PLANES[axis % 3]: metric(SliceFeatures(base, axis, "none", min_foreground, drop_empty=True), **options)
            for axis in axes
        }
        for part in self.planes.values():
            part.batch_size = batch_size
        self.base, self.metric_class = base, metric
        super().__init__(None, batch_size)

    @property
    def identity(self) -> str:
        return f"three-plane({','.join(self.planes)})+{self.base.identity}"

    def reset(self) -> None:
        super().reset()
        for part in getattr(self, "planes", {}).values():
            part.reset()

    def __call__(self, y_pred: Any = None, y: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Add generated (``y_pred``) and/or real (``y``) volumes ``(B, C, H, W, D)``."""
        for part in self.planes.values():
            part(y_pred, y, **kwargs)
        for key, images in (("generated", y_pred), ("real", y)):
            if images is not None:  # one row per volume, to count them (gathered like the features)
                self._buffers[key].extend(torch.zeros(len(_stack(images)), 1))

    def aggregate(self) -> SetLevelResult:  # type: ignore[override]
        counts = {key: len(self.get_features(key)) for key in ("generated", "real")}
        per_plane = {plane: part.aggregate() for plane, part in self.planes.items()}
        names = list(next(iter(per_plane.values())).values)
        values = {name: sum(r.values[name] for r in per_plane.values()) / len(per_plane) for name in names}
        values.update({f"{name}_{plane}": r.values[name] for plane, r in per_plane.items() for name in names})
        return SetLevelResult(values, self.identity, counts["generated"], counts["real"], {"planes": per_plane})


class _RadiomicsMetric(SetLevelMetric):
    """Set-level metrics on :class:`~monai_kcross.features.RadiomicsFeatures`, with regions of interest.

    Call as ``metric(y_pred=generated, y=real, mask=None, y_pred_mask=None, y_mask=None)``: ``mask`` is used for
    both sets unless the set's own mask is given (each ``(B|1, 1, *spatial)``, ``spatial`` or a list).
    """

    def __init__(self, extractor: RadiomicsFeatures | None = None, batch_size: int = 32) -> None:
        extractor = RadiomicsFeatures() if extractor is None else extractor
        if not isinstance(extractor, RadiomicsFeatures):
            raise ValueError(
                f"{type(self).__name__} needs a RadiomicsFeatures extractor, got {type(extractor).__name__}."
            )
        super().__init__(extractor, batch_size)

    def _add_masked(self, key: str, images: Any, mask: Any) -> None:
        if images is None:
            return
        x = _stack(images)
        if isinstance(mask, (list, tuple)):
            mask = _stack(mask)
        per_image = isinstance(mask, torch.Tensor) and mask.ndim == x.ndim and mask.shape[0] == x.shape[0] > 1
        parts = [
            self.extractor(x[i : i + self.batch_size], mask[i : i + self.batch_size] if per_image else mask)
            for i in range(0, x.shape[0], self.batch_size)
        ]
        self._buffers[key].extend(torch.cat(parts).detach())

    def __call__(  # type: ignore[override]
        self,
        y_pred: Any = None,
        y: Any = None,
        mask: Any = None,
        y_pred_mask: Any = None,
        y_mask: Any = None,
        **kwargs: Any,
    ) -> None:
        """Add generated (``y_pred``) and/or real (``y``) images with their regions."""
        self._add_masked("generated", y_pred, mask if y_pred_mask is None else y_pred_mask)
        self._add_masked("real", y, mask if y_mask is None else y_mask)


class FRDMetric(_RadiomicsMetric):
    """Fréchet radiomic distance (:func:`~monai_kcross.functional.set_level.frd`), lower is better.

    Args:
        extractor: a :class:`~monai_kcross.features.RadiomicsFeatures` (default: 2-D, first-order and GLCM, bin
            width 25); ``RadiomicsFeatures(spatial_dims=3)`` for volumes.
        normalise, log: as :func:`~monai_kcross.functional.set_level.frd`.
    """

    def __init__(
        self,
        extractor: RadiomicsFeatures | None = None,
        normalise: str = "real",
        log: bool = True,
        batch_size: int = 32,
    ) -> None:
        super().__init__(extractor, batch_size)
        self.normalise, self.log = normalise, log

    def _compute(self, generated, real):
        return {"frd": float(frd(real, generated, self.normalise, self.log))}, {}


class RadiomicAgreementMetric(_RadiomicsMetric):
    """Agreement of the radiomic features of paired synthesized and reference images (same order in both sets).

    ``aggregate().values``: ``median_ccc`` (median over features of Lin's concordance correlation,
    :func:`~monai_kcross.functional.set_level.concordance`) and ``reproducible_fraction`` (features with
    ``CCC >= threshold``); ``details["ccc"]``: ``{feature: CCC}``. Higher is better for both.
    """

    def __init__(
        self, extractor: RadiomicsFeatures | None = None, threshold: float = 0.85, batch_size: int = 32
    ) -> None:
        super().__init__(extractor, batch_size)
        self.threshold = threshold

    def _compute(self, generated, real):
        ccc = concordance(generated, real)
        values = {
            "median_ccc": float(torch.quantile(ccc, 0.5)),  # the mean of the middle two for even counts
            "reproducible_fraction": float((ccc >= self.threshold).double().mean()),
        }
        return values, {"ccc": dict(zip(self.extractor.names, ccc.tolist()))}
