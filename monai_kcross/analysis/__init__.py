"""Analyses built on the metrics: sensitivity to controlled perturbations, agreement with quality ratings and the
metric-versus-quality benchmark (imported on first use: :mod:`monai_kcross.analysis.cases` loads without torch)."""

import importlib
from typing import Any

# NumPy only; imported at once because the function `agreement` shares its name with the module
from .agreement import AgreementResult, agreement, compare, inconsistency, logistic_fit

__all__ = [
    "BASELINES",
    "DEFAULT_METRICS",
    "KCROSS_VARIANTS",
    "AgreementResult",
    "SensitivityResult",
    "agreement",
    "compare",
    "format_table",
    "inconsistency",
    "load_cases",
    "logistic_fit",
    "run_benchmark",
    "run_sensitivity",
]

_HOMES = {
    "benchmark": ("BASELINES", "KCROSS_VARIANTS", "format_table", "run_benchmark"),
    "sensitivity": ("DEFAULT_METRICS", "SensitivityResult", "load_cases", "run_sensitivity"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
