"""Per-training rows to a per-architecture benchmark, and its quality figures on a hand-made table."""

import json
import math

import pandas as pd
import pytest

from bench.groundtruth import COLUMNS
from bench.trained_benchmark import (
    aggregate_trainings,
    benchmark_quality,
    export_benchmark,
    read_trainings,
)
from spaces.base import arch_id, canonical_json, get_space
from spaces.benchmarks import load_benchmark
from spaces.errors import BenchError

# (architecture index, seed, accuracy, params, flops); architecture 3 has one seed only
ROWS = [(0, 0, 80.0, 3, 10), (0, 1, 82.0, 3, 10), (1, 0, 70.0, 2, 30), (1, 1, 71.0, 2, 30),
        (2, 0, 90.0, 4, 20), (2, 1, 86.0, 4, 20), (3, 0, 60.0, 1, 40)]


def training_rows() -> pd.DataFrame:
    archs = get_space("micro").sample_many(4, seed=0)
    return pd.DataFrame([
        {"arch_id": arch_id(archs[i]), "arch": canonical_json(archs[i]), "seed": seed,
         "accuracy": acc, "seconds": 1.0, "params": params, "flops": flops, "threads": 1}
        for i, seed, acc, params, flops in ROWS
    ], columns=COLUMNS)


def test_aggregate_has_one_row_per_architecture_with_each_seed():
    table = aggregate_trainings(training_rows())
    assert table["accuracy"].tolist() == [81.0, 70.5, 88.0, 60.0]
    assert table["acc_seed1"].tolist()[:3] == [82.0, 71.0, 86.0]
    assert math.isnan(table["acc_seed1"].iloc[3])
    assert table["n_seeds"].tolist() == [2, 2, 2, 1]
    assert list(table.columns) == ["arch_id", "arch", "accuracy", "acc_seed0", "acc_seed1",
                                   "n_seeds", "params", "flops"]


def test_quality_figures_match_a_hand_computation():
    figures = benchmark_quality(training_rows())
    means = [81.0, 70.5, 88.0, 60.0]
    mean = sum(means) / 4
    spread = math.sqrt(sum((m - mean) ** 2 for m in means) / 3)
    seed_std = (2 + 1 + 4) / math.sqrt(2) / 3  # |a - b| / sqrt(2) for two seeds
    assert figures["spread (std across architectures)"] == pytest.approx(spread)
    assert figures["seed std (mean per architecture)"] == pytest.approx(seed_std)
    assert figures["spread / seed std"] == pytest.approx(spread / seed_std)
    assert figures["noise ceiling tau(seed 0, seed 1)"] == pytest.approx(1.0)
    assert figures["tau(params, accuracy)"] == pytest.approx(1.0)
    # accuracy order D < B < A < C has FLOPs 40, 30, 10, 20: one concordant pair of six
    assert figures["tau(flops, accuracy)"] == pytest.approx((1 - 5) / 6)
    assert (figures["architectures"], figures["repeated architectures"]) == (4, 3)


def test_exported_benchmark_passes_the_benchmark_checks(tmp_path):
    trainings = tmp_path / "trainings.csv"
    training_rows().to_csv(trainings, index=False)
    trainings.with_suffix(".json").write_text(json.dumps({
        "space": "micro", "dataset": "Fashion-MNIST", "dataset_licence": "MIT",
        "recipe": {"epochs": 4}}))
    export_benchmark(trainings, tmp_path / "micro-test.csv")
    bench = load_benchmark(tmp_path / "micro-test.csv", builds=2)
    assert bench.name == "micro-test" and bench.provenance["default_target"] == "accuracy"
    assert bench.provenance["columns"]["acc_seed1"]["recipe"] == {"epochs": 4}
    assert bench.table["accuracy"].tolist() == [81.0, 70.5, 88.0, 60.0]


def test_a_pair_trained_twice_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    rows = training_rows()
    pd.concat([rows, rows.head(1)]).to_csv(path, index=False)
    with pytest.raises(BenchError, match="appears twice"):
        read_trainings(path)


def test_quality_command_prints_the_figures(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    path = tmp_path / "t.csv"
    training_rows().to_csv(path, index=False)
    result = CliRunner().invoke(main, ["groundtruth", "quality", "--table", str(path)])
    assert result.exit_code == 0, result.output
    assert "noise ceiling tau(seed 0, seed 1)" in result.output and "-0.667" in result.output
    missing = CliRunner().invoke(main, ["groundtruth", "quality", "--table", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "no training table" in missing.output
