"""monai-kcross: trustworthy image-quality assessment for synthesized medical images, for MONAI.

Sub-packages:

* :mod:`monai_kcross.functional` -- every metric as a differentiable function of ``(B, C, H, W[, D])`` tensors;
* :mod:`monai_kcross.metrics` -- MONAI ``CumulativeIterationMetric`` classes;
* :mod:`monai_kcross.handlers` -- ignite handlers for MONAI workflows;
* :func:`create_metric` / :func:`list_metrics` / :func:`list_no_reference_metrics` -- the metric registry
  (direction, range, 3-D behaviour).
"""

__version__ = "0.1.0"

from .registry import (
    MetricInfo,
    create_handler,
    create_metric,
    get_metric_info,
    list_metrics,
    list_no_reference_metrics,
)

__all__ = [
    "MetricInfo",
    "__version__",
    "create_handler",
    "create_metric",
    "get_metric_info",
    "list_metrics",
    "list_no_reference_metrics",
]
