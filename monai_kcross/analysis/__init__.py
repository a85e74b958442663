"""Analyses built on the metrics: sensitivity of metrics to controlled perturbations."""

from .sensitivity import DEFAULT_METRICS, SensitivityResult, load_cases, run_sensitivity

__all__ = ["DEFAULT_METRICS", "SensitivityResult", "load_cases", "run_sensitivity"]
