"""Rank-aggregation ensembles."""

import numpy as np
import pandas as pd
import pytest

from bench.ensemble import parse_ensemble, rank_aggregate
from spaces.errors import BenchError


def test_rank_aggregate_is_sum_of_log_relative_ranks():
    wide = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [30.0, 10.0, 20.0]})
    # ranks a: 1,2,3; b: 3,1,2 (of N=3)
    expected = np.log([1 / 3 * 3 / 3, 2 / 3 * 1 / 3, 3 / 3 * 2 / 3])
    assert np.allclose(rank_aggregate(wide).to_numpy(), expected)


def test_rank_aggregate_is_invariant_to_monotone_rescaling_of_a_member():
    wide = pd.DataFrame({"a": [0.1, 5.0, 2.0, 3.0], "b": [4.0, 1.0, 3.0, 2.0]})
    rescaled = wide.assign(a=np.exp(wide["a"]) * 1e6)
    assert np.allclose(rank_aggregate(wide), rank_aggregate(rescaled))


def test_a_failed_member_leaves_that_architecture_without_a_score():
    wide = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, 2.0, 3.0]})
    combined = rank_aggregate(wide)
    assert np.isnan(combined[1]) and np.isfinite(combined[[0, 2]]).all()


def test_parse_ensemble_needs_two_members():
    assert parse_ensemble("ensemble:ntk+dss+params") == ["ntk", "dss", "params"]
    with pytest.raises(BenchError, match="two or more"):
        parse_ensemble("ensemble:ntk")
