"""Agreement statistics: SRCC/KRCC/PLCC/RMSE against scipy, the original K-CROSS inconsistency, bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monai_kcross.analysis.agreement import agreement, compare, inconsistency, logistic_fit


def _ratings(n: int = 200, noise: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.random(n)
    return labels, labels + noise * rng.standard_normal(n)


def test_rank_correlations_match_scipy_and_respect_direction():
    labels, values = _ratings()
    higher = agreement(values, labels, higher_is_better=True, n_boot=0)
    assert higher.estimates["srcc"] == pytest.approx(stats.spearmanr(values, labels).statistic, abs=1e-12)
    assert higher.estimates["krcc"] == pytest.approx(stats.kendalltau(values, labels).statistic, abs=1e-12)
    # a lower-is-better metric (e.g. an error) is flipped: a perfect error gets +1, not -1
    lower = agreement(-values, labels, higher_is_better=False, n_boot=0)
    for statistic in ("srcc", "krcc", "plcc", "rmse"):
        assert lower.estimates[statistic] == pytest.approx(higher.estimates[statistic], abs=1e-6)
    assert higher.estimates["srcc"] > 0.9


@pytest.mark.parametrize("parameters", [4, 5])
def test_logistic_fit_recovers_a_monotone_nonlinear_map(parameters):
    x = np.linspace(-3, 3, 120)
    y = 0.2 + 0.7 / (1 + np.exp(-(x - 0.3) / 0.6))
    predicted = logistic_fit(x, y, parameters)
    assert np.abs(predicted - y).max() < 1e-3
    result = agreement(x, y, n_boot=0, parameters=parameters)
    assert result.estimates["plcc"] > 0.9999 and result.estimates["rmse"] < 1e-3
    # Pearson on the raw values is clearly lower: the fit is what PLCC is meant to measure
    assert stats.pearsonr(x, y).statistic < 0.99
    with pytest.raises(ValueError, match="4 or 5"):
        logistic_fit(np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 3.0]), parameters=3)


def test_inconsistency_follows_the_original_formula():
    labels = np.array([0.0, 0.3, 0.6, 0.9])
    # a metric that ranks perfectly and is linear in the label: min-max -> [0, 1/3, 2/3, 1]
    values = np.array([10.0, 20.0, 30.0, 40.0])
    expected = np.mean(np.abs(np.array([0, 1 / 3, 2 / 3, 1]) - labels))
    assert inconsistency(values, labels, higher_is_better=True) == pytest.approx(expected)
    # lower-is-better metrics are flipped (1 - normalised)
    assert inconsistency(values[::-1].copy(), labels, higher_is_better=False) == pytest.approx(expected)
    # anti-correlated metric: maximal disagreement
    assert inconsistency(values, labels, higher_is_better=False) > 0.45
    # constant metric: normalised to zeros, no division by zero
    assert inconsistency(np.ones(4), labels, True) == pytest.approx(labels.mean())


def test_bootstrap_intervals_are_seeded_and_shrink_with_more_samples():
    labels, values = _ratings(60, noise=0.3)
    small = agreement(values, labels, n_boot=300, seed=1)
    again = agreement(values, labels, n_boot=300, seed=1)
    assert small.intervals == again.intervals
    for statistic in ("srcc", "plcc", "inconsistency"):
        low, high = small.intervals[statistic]
        assert low <= small.estimates[statistic] <= high
    labels_big, values_big = _ratings(600, noise=0.3)
    big = agreement(values_big, labels_big, n_boot=300, seed=1)
    width = lambda r: r.intervals["srcc"][1] - r.intervals["srcc"][0]  # noqa: E731
    assert width(big) < 0.6 * width(small)
    assert "[" in big.row("srcc")


def test_compare_names_the_leader_and_tests_its_lead():
    labels, good = _ratings(300, noise=0.05, seed=2)
    rng = np.random.default_rng(3)
    poor = labels + 0.5 * rng.standard_normal(300)
    twin = good + 1e-3 * rng.standard_normal(300)
    error = -good  # the good metric expressed as an error
    clear = compare({"good": (good, True), "poor": (poor, True)}, labels, n_boot=200)
    assert clear["leader"]["srcc"] == "good" and clear["leader"]["rmse"] == "good"
    difference, low, high = clear["lead"]["srcc"]
    assert difference > 0 and low > 0  # a real lead: the interval excludes zero
    tie = compare({"good": (good, True), "twin": (twin, True), "error": (error, False)}, labels, n_boot=200)
    _, low, high = tie["lead"]["srcc"]
    assert low <= 0 <= high + 1e-9  # indistinguishable metrics: the lead is not significant
    assert tie["results"]["error"].estimates["srcc"] == pytest.approx(tie["results"]["good"].estimates["srcc"])
    # a contender is tested against the best of its rivals only (its own variants left out)
    versus = compare(
        {"poor": (poor, True), "good": (good, True), "twin": (twin, True)},
        labels,
        n_boot=200,
        contender="poor",
        rivals=["good"],
    )
    rival, difference, low, high = versus["contender"]["srcc"]
    assert rival == "good" and difference < 0 and high < 0
    with pytest.raises(ValueError, match="contender 'nope'"):
        compare({"a": (good, True)}, labels, n_boot=0, contender="nope")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="equal length"):
        agreement([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 3 images"):
        agreement([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one value per label"):
        compare({"a": ([1.0, 2.0], True)}, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 3 images"):
        compare({"a": ([1.0, np.nan], True)}, [1.0, 2.0])
    with pytest.raises(ValueError, match="one group per image"):
        agreement([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], groups=["a", "b"])
    # NaN pairs are dropped, not propagated
    labels, values = _ratings(50)
    values[3] = np.nan
    assert agreement(values, labels, n_boot=0).n == 49


def test_group_bootstrap_widens_intervals_for_correlated_images():
    # 8 subjects, 30 images each; the metric is right about subjects but noisy within a subject
    rng = np.random.default_rng(7)
    subject_quality = rng.random(8)
    groups = np.repeat(np.arange(8), 30)
    labels = subject_quality[groups] + 0.05 * rng.standard_normal(240)
    values = subject_quality[groups] + 0.3 * rng.standard_normal(8)[groups] + 0.05 * rng.standard_normal(240)
    by_image = agreement(values, labels, n_boot=300)
    by_subject = agreement(values, labels, n_boot=300, groups=[f"s{g}" for g in groups])
    width = lambda r: r.intervals["srcc"][1] - r.intervals["srcc"][0]  # noqa: E731
    assert by_subject.estimates == by_image.estimates
    assert width(by_subject) > 2 * width(by_image)
    assert compare({"m": (values, True)}, labels, n_boot=10, groups=groups)["resampled"] == "8 groups"
