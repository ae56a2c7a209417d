"""Partial Kendall τ given params or FLOPs: the formula against hand-computed and brute-force cases,
its bootstrap, its columns in a run's tables, and `bench compare --partial`."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench import metrics
from bench.cli import main
from bench.compare import compare_runs
from bench.metrics import (
    bootstrap_counts,
    partial_kendall,
    partial_tau_from_taus,
    rank_metrics,
    resampled_kendall_pairs,
)
from bench.runner import CORRELATION_COLUMNS, run
from spaces.errors import BenchError


def naive_kendall(x, y) -> float:
    """τ-b by counting every pair: (concordant − discordant) / sqrt(untied in x · untied in y)."""
    numerator = untied_x = untied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        numerator += sx * sy
        untied_x += sx != 0
        untied_y += sy != 0
    return numerator / math.sqrt(untied_x * untied_y)


def naive_partial(x, y, z) -> float:
    """Kendall's formula on the three pair-counted τ."""
    xy, xz, yz = naive_kendall(x, y), naive_kendall(x, z), naive_kendall(y, z)
    return (xy - xz * yz) / math.sqrt((1 - xz**2) * (1 - yz**2))


def test_hand_computed_partial_tau():
    z = np.array([1.0, 2, 3, 4])
    y = np.array([1.0, 3, 2, 4])  # against z: only pair (2,3) discordant -> τ_yz = (5-1)/6 = 2/3
    x = np.array([2.0, 1, 4, 3])  # against z: pairs (1,2), (3,4) discordant -> τ_xz = (4-2)/6 = 1/3
    # x against y: (1,2), (2,3), (3,4) discordant, the other 3 concordant -> τ_xy = 0.
    # Partial: (0 - 1/3 * 2/3) / sqrt((1 - 1/9)(1 - 4/9)) = (-2/9) / (sqrt(40)/9) = -1/sqrt(10).
    estimate, lo, hi = partial_kendall(x, y, z, n_boot=200)
    assert estimate == pytest.approx(-1 / math.sqrt(10))
    assert lo <= estimate <= hi


def test_partial_tau_equals_brute_force_on_data_with_ties():
    rng = np.random.default_rng(3)
    z = rng.integers(0, 8, 40).astype(float)          # params with many ties
    y = z + rng.normal(size=40) * 3
    x = np.round(y + z + rng.normal(size=40) * 4)     # a proxy with ties of its own
    assert partial_kendall(x, y, z, n_boot=10)[0] == pytest.approx(naive_partial(x, y, z))


def test_every_resampled_tau_equals_brute_force_on_that_resample(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 25).astype(float), rng.normal(size=25)
    counts = bootstrap_counts(25, 20, 7)
    draws = [np.repeat(np.arange(25), row) for row in counts]
    expected = [naive_kendall(x[d], y[d]) for d in draws]
    assert resampled_kendall_pairs([x, y], 20, 7)[0, 1] == pytest.approx(expected, abs=1e-12)
    monkeypatch.setattr(metrics, "PAIR_MATRIX_LIMIT", 10)  # the resample-by-resample path
    assert resampled_kendall_pairs([x, y], 20, 7)[0, 1] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("transform", [np.log, lambda p: -(p**2)], ids=["log", "decreasing"])
def test_a_proxy_that_is_a_monotone_function_of_params_has_partial_tau_zero(transform):
    rng = np.random.default_rng(1)
    params = rng.integers(1, 6, 30).astype(float) * 1e6  # 30 architectures, 5 sizes: ties
    accuracy = np.log(params) + rng.normal(size=30)
    estimate, lo, hi = partial_kendall(transform(params), accuracy, params, n_boot=300)
    assert (estimate, lo, hi) == (0.0, 0.0, 0.0)
    assert abs(naive_kendall(transform(params), accuracy)) > 0.2  # while its plain τ is not 0


def test_a_ground_truth_that_is_a_monotone_function_of_params_leaves_nothing_to_explain():
    params = np.array([1.0, 2, 3, 4, 5, 6])
    assert partial_kendall([3, 1, 2, 6, 5, 4], params**2, params)[0] == 0.0
    assert math.isnan(partial_kendall([3, 1, 2, 6, 5, 4], params, np.ones(6))[0])  # constant z


def test_partial_tau_is_tau_when_proxy_and_target_are_both_unrelated_to_params():
    # Each (x, y) appears once with z = 0 and once with z = 1: every cross-group pair (i, j) is
    # matched by (j, i) with the opposite sign, so τ_xz = τ_yz = 0, and τ_xy is the base τ.
    rng = np.random.default_rng(2)
    base_x, base_y = rng.normal(size=15), rng.normal(size=15)
    x, y = np.tile(base_x, 2), np.tile(base_y, 2)
    z = np.repeat([0.0, 1.0], 15)
    assert naive_kendall(x, z) == 0 and naive_kendall(y, z) == 0
    estimate, lo, hi = partial_kendall(x, y, z, n_boot=300)
    assert estimate == pytest.approx(naive_kendall(base_x, base_y))
    assert lo <= estimate <= hi < 1


def test_interval_contains_the_estimate_and_failures_are_left_out():
    rng = np.random.default_rng(4)
    z = rng.normal(size=60)
    y = z + rng.normal(size=60)
    x = y + rng.normal(size=60)
    x_failed = np.where(np.arange(60) % 10 == 0, np.nan, x)
    estimate, lo, hi = partial_kendall(x_failed, y, z, n_boot=500, seed=3)
    assert lo < estimate < hi
    kept = np.isfinite(x_failed)
    assert estimate == pytest.approx(naive_partial(x[kept], y[kept], z[kept]))


def test_formula_is_kendalls_and_its_degenerate_case_is_zero():
    assert partial_tau_from_taus(0.5, 0.0, 0.0) == 0.5
    assert partial_tau_from_taus(0.2, 0.6, 0.5) == pytest.approx(
        (0.2 - 0.3) / math.sqrt(0.64 * 0.75))
    assert partial_tau_from_taus(0.7, 1.0, 0.7) == 0.0
    assert math.isnan(partial_tau_from_taus(np.nan, 1.0, 0.7))


def test_rank_metrics_gives_the_partial_columns_of_each_size_measure():
    rng = np.random.default_rng(5)
    params, flops = rng.normal(size=30), rng.normal(size=30)
    target = params + rng.normal(size=30)
    m = rank_metrics(params * 2, target, n_boot=50, given={"params": params, "flops": flops})
    assert m["partial_params"] == 0.0
    assert m["partial_flops"] == pytest.approx(naive_partial(params, target, flops))
    assert m["partial_flops_lo"] <= m["partial_flops"] <= m["partial_flops_hi"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs on the embedded benchmark: with the params and flops proxies, and without them (sizes
    then counted by the space), and one written before partial τ existed."""
    root = tmp_path_factory.mktemp("partial")
    common = dict(n=10, batch_size=8, seed=0, cache=str(root / "cache.sqlite"))
    run(proxies=("params", "flops", "grad_norm"), out=str(root / "with"), **common)
    run(proxies=("grad_norm",), out=str(root / "without"), **common)
    old = root / "old"
    run(proxies=("params", "grad_norm"), out=str(old), **common)
    correlations = pd.read_csv(old / "correlations.csv")
    correlations.drop(columns=[c for c in correlations if c.startswith("partial")]).to_csv(
        old / "correlations.csv", index=False)
    return root


def test_sizes_counted_by_the_space_equal_the_params_and_flops_proxies(runs):
    with_proxies = pd.read_csv(runs / "with" / "correlations.csv").set_index("proxy")
    counted = pd.read_csv(runs / "without" / "correlations.csv").set_index("proxy")
    columns = [c for c in CORRELATION_COLUMNS if c.startswith("partial")]
    assert np.isfinite(counted.loc["grad_norm", columns].astype(float)).all()
    assert (counted.loc["grad_norm", columns] == with_proxies.loc["grad_norm", columns]).all()
    assert with_proxies.loc["params", "partial_params"] == 0.0


def test_closed_form_param_count_equals_the_params_proxy():
    from bench.inputs import make_batch
    from proxies.base import get_proxy
    from spaces.base import get_space

    for name, img_size in (("micro", 28), ("autoformer-t", 32), ("pit-t", 64)):
        space = get_space(name)
        batch = make_batch("gaussian", 2, img_size, space.in_chans, space.num_classes, 0)
        for arch in space.sample_many(3, 1):
            model = space.build(arch, img_size=img_size)
            assert get_proxy("params")(model, batch) == space.count_params(arch, img_size)


def test_correlations_csv_and_summary_carry_the_partial_tau(runs):
    header = (runs / "with" / "correlations.csv").read_text().splitlines()[0].split(",")
    assert header == CORRELATION_COLUMNS
    assert header[header.index("top1_relative") + 1:header.index("seconds_per_arch")] == [
        "partial_params", "partial_params_lo", "partial_params_hi", "partial_flops",
        "partial_flops_lo", "partial_flops_hi"]
    lines = (runs / "with" / "summary.md").read_text().splitlines()
    labels = next(line for line in lines if line.startswith("| proxy |")).split(" | ")
    params_row = next(line for line in lines if line.startswith("| params |")).split(" | ")
    assert len(labels) == len(params_row) and params_row[labels.index("τ \\| params")] == "0.000"


def test_compare_shows_partial_tau_and_refuses_a_run_without_it(runs):
    table = compare_runs([runs / "with", runs / "without"], ["grad_norm"], partial="flops")
    for row, name in zip(table.to_dict("records"), ("with", "without")):
        correlations = pd.read_csv(runs / name / "correlations.csv").set_index("proxy")
        assert row["grad_norm"] == correlations.loc["grad_norm", "partial_flops"]
        assert row["grad_norm_hi"] == correlations.loc["grad_norm", "partial_flops_hi"]
    result = CliRunner().invoke(main, ["compare", str(runs / "with"), "--proxies", "grad_norm",
                                       "--partial", "params"])
    assert result.exit_code == 0 and "Partial Kendall τ given params" in result.output
    with pytest.raises(BenchError, match="has no partial τ"):
        compare_runs([runs / "old"], ["grad_norm"], partial="params")
    result = CliRunner().invoke(main, ["compare", str(runs / "with"), "--partial", "depth"])
    assert result.exit_code == 2 and "depth" in result.output
