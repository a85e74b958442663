"""Memorisation: replace a generated image by (a blend towards) a training image.

A generative model that memorises its training set produces near-copies of training images. Set-level metrics
(FID, precision/recall, ...) tend to reward that; this perturbation lets users test whether a metric notices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .base import ImageTransform, Perturbation

__all__ = ["Memorise"]


class Memorise(Perturbation):
    """Blend the image towards a training image: ``x + s * (t - x)``; ``s = 1`` returns an exact copy of ``t``.

    Args:
        training_images: the training set, a tensor ``(N, C, *spatial)`` or a sequence of channel-first images
            of the same shape as the inputs.
        severity: blend weight (physical parameter: the fraction of the training image in the output).
        mode: ``"random"`` picks a training image at random (the realisation ``seed``), ``"nearest"`` the one
            closest in MSE. The chosen index is recorded as ``index`` (and kept in ``last_index``).
        seed: the realisation of the random pick.
    """

    def __init__(
        self, training_images: Sequence | torch.Tensor, severity: float = 1.0, mode: str = "random", seed: int = 0
    ) -> None:
        super().__init__(severity, seed=seed)
        if mode not in ("random", "nearest"):
            raise ValueError(f"mode must be 'random' or 'nearest', got {mode!r}.")
        if isinstance(training_images, torch.Tensor):
            bank = ImageTransform.unwrap(training_images)
        else:
            bank = torch.stack([ImageTransform.unwrap(torch.as_tensor(np.asarray(i))) for i in training_images])
        if bank.ndim not in (4, 5) or bank.shape[0] == 0:
            raise ValueError(f"training_images must be (N, C, H, W[, D]) with N >= 1, got shape {tuple(bank.shape)}.")
        self.training_images = bank.float() if not bank.is_floating_point() else bank
        self.mode = mode
        self.last_index: int | None = None

    def apply(self, x, severity, region):
        if tuple(self.training_images.shape[1:]) != tuple(x.shape):
            raise ValueError(
                f"Memorise: training images have shape {tuple(self.training_images.shape[1:])}, "
                f"the input has {tuple(x.shape)}."
            )
        bank = self.training_images.to(device=x.device, dtype=x.dtype)
        if self.mode == "nearest":
            index = int(((bank - x) ** 2).flatten(1).mean(1).argmin())
        else:
            index = int(torch.randint(len(bank), (1,), generator=self.generator()).item())
        self.last_index = index
        self.applied.update(index=index)
        return torch.lerp(x, bank[index], severity)  # exactly the training image at severity 1
