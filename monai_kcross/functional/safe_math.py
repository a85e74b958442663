"""Elementary functions with finite gradients where the metrics reach their ideal value.

``sqrt`` has an infinite derivative at 0, so ``sqrt(mean(d^2))`` (RMSE, the deviation pooling of GMSD, NLPD's
per-level RMS) back-propagates ``inf * 0 = NaN`` when the two images agree. These versions return the same
values and use the one-sided limit of the gradient there: 0, the gradient of the minimum.
"""

from __future__ import annotations

import torch

__all__ = ["positive_power", "safe_sqrt"]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient is 0 (not NaN) where ``x == 0``; NaN stays NaN."""
    positive = x > 0
    root = torch.where(positive, x, torch.ones_like(x)).sqrt()
    return torch.where(positive, root, x.detach().sqrt())


def positive_power(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """``max(x, 0) ** exponent`` (``exponent >= 0``) with gradient 0 (not ``inf * 0 = NaN``) where ``x <= 0``."""
    positive = x > 0
    powered = torch.where(positive, x, torch.ones_like(x)) ** exponent
    return torch.where(positive, powered, torch.relu(x.detach()) ** exponent)
