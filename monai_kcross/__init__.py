"""monai-kcross: trustworthy image-quality assessment for synthesized medical images, for MONAI.

Sub-packages:

* :mod:`monai_kcross.functional` -- every metric as a differentiable function of ``(B, C, H, W[, D])`` tensors;
* :mod:`monai_kcross.metrics` -- MONAI ``CumulativeIterationMetric`` classes;
* :mod:`monai_kcross.handlers` -- ignite handlers for MONAI workflows;
* :func:`create_metric` / :func:`list_metrics` / :func:`list_no_reference_metrics` -- the metric registry
  (direction, range, 3-D behaviour).

Sub-packages and the registry's functions are imported on first use (``monai_kcross.functional.ssim`` works after
``import monai_kcross``), so that the command line starts without importing torch.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "MetricInfo",
    "__version__",
    "create_handler",
    "create_metric",
    "get_metric_info",
    "get_set_level_metric_info",
    "list_metrics",
    "list_no_reference_metrics",
    "list_set_level_metrics",
]

_REGISTRY_NAMES = (
    "MetricInfo",
    "create_handler",
    "create_metric",
    "get_metric_info",
    "list_metrics",
    "list_no_reference_metrics",
    "list_set_level_metrics",
    "get_set_level_metric_info",
)
_SUBPACKAGES = (
    "analysis",
    "bundles",
    "cli",
    "data",
    "features",
    "functional",
    "handlers",
    "losses",
    "metrics",
    "networks",
    "perceptual",
    "registry",
    "training",
    "transforms",
)


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        return getattr(importlib.import_module(".registry", __name__), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_REGISTRY_NAMES, *_SUBPACKAGES])
