"""Rank metrics against scipy and hand-computed cases."""

import numpy as np
import pytest
from scipy import stats

from bench.metrics import paired_difference, rank_metrics, topk_precision


def test_correlations_equal_scipy_on_random_data():
    rng = np.random.default_rng(1)
    a = rng.normal(size=50)
    b = a + rng.normal(size=50)
    m = rank_metrics(a, b, n_boot=50)
    assert m["kendall"] == pytest.approx(stats.kendalltau(a, b).statistic)
    assert m["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert m["pearson"] == pytest.approx(stats.pearsonr(a, b).statistic)
    assert m["kendall_lo"] < m["kendall"] < m["kendall_hi"]


def test_perfect_and_reversed_rankings():
    x = np.arange(10.0)
    assert rank_metrics(x, x**3, n_boot=20)["kendall"] == pytest.approx(1.0)
    reversed_ = rank_metrics(-x, x, n_boot=20)
    assert reversed_["kendall"] == pytest.approx(-1.0)
    assert reversed_["topk_precision"] == 0.0


def test_hand_computed_kendall_with_one_discordant_pair():
    # Pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> tau = 4/6.
    assert rank_metrics([1, 2, 3, 4], [1, 3, 2, 4], n_boot=10)["kendall"] == pytest.approx(4 / 6)


def test_topk_precision_counts_overlap_of_top_sets():
    scores = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1.0])
    target = np.array([10, 1, 9, 2, 3, 4, 5, 6, 7, 8.0])
    # top 20% = 2 architectures: by score {0, 1}, by target {0, 2}: overlap 1 of 2.
    assert topk_precision(scores, target, 0.2) == 0.5


def test_top1_relative_is_accuracy_of_the_pick_over_the_best():
    m = rank_metrics([3, 2, 1, 0], [80.0, 90.0, 70.0, 60.0], n_boot=10)
    assert m["top1_relative"] == pytest.approx(80 / 90)


def test_non_finite_scores_are_failures_not_silently_dropped():
    m = rank_metrics([1, np.nan, 3, np.inf, 5, 6], [1, 2, 3, 4, 5, 6], n_boot=10)
    assert m["failures"] == 2 and m["n"] == 4
    assert m["kendall"] == pytest.approx(1.0)


def test_ties_are_counted():
    assert rank_metrics([1, 1, 2, 3, 3, 3], [1, 2, 3, 4, 5, 6], n_boot=10)["ties"] == 5


def test_constant_scores_give_nan_not_a_number_that_looks_real():
    m = rank_metrics([2, 2, 2, 2], [1, 2, 3, 4], n_boot=10)
    assert np.isnan(m["kendall"]) and m["ties"] == 4


def test_bootstrap_interval_is_reproducible_and_narrows_with_more_architectures():
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    b = a + rng.normal(size=400)
    small = rank_metrics(a[:40], b[:40], n_boot=200, seed=5)
    large = rank_metrics(a, b, n_boot=200, seed=5)
    assert small == rank_metrics(a[:40], b[:40], n_boot=200, seed=5)
    assert large["kendall_hi"] - large["kendall_lo"] < small["kendall_hi"] - small["kendall_lo"]


def test_paired_difference_of_a_proxy_with_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    scores, target = rng.normal(size=40), rng.normal(size=40)
    assert paired_difference(scores, scores, target, n_boot=200) == (0.0, 0.0, 0.0)


def test_paired_difference_of_perfect_and_reversed_rankings_is_two_on_every_resample():
    target = np.arange(30.0)
    assert paired_difference(target, -target, target, n_boot=200) == pytest.approx((2, 2, 2))


def test_paired_difference_is_the_difference_of_taus_and_its_interval_excludes_zero_when_clear():
    rng = np.random.default_rng(1)
    target = rng.normal(size=200)
    good, poor = target + 0.3 * rng.normal(size=200), target + 3 * rng.normal(size=200)
    delta, lo, hi = paired_difference(good, poor, target, n_boot=300, seed=2)
    expected = stats.kendalltau(good, target).statistic - stats.kendalltau(poor, target).statistic
    assert delta == pytest.approx(expected)
    assert 0 < lo < delta < hi
    assert paired_difference(good, poor, target, n_boot=300, seed=2) == (delta, lo, hi)
