"""Analyses built on the metrics: sensitivity to controlled perturbations, agreement with quality ratings and the
metric-versus-quality benchmark."""

from .agreement import AgreementResult, agreement, compare, inconsistency, logistic_fit
from .benchmark import BASELINES, KCROSS_VARIANTS, format_table, run_benchmark
from .sensitivity import DEFAULT_METRICS, SensitivityResult, load_cases, run_sensitivity

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
