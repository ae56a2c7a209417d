"""Training the ground truth: the training path, the plan, determinism, and kill-and-resume."""

import csv
import json
import math
import shutil
from itertools import pairwise

import pytest
import torch

from bench.fashion_mnist import load_split
from bench.groundtruth import (
    COLUMNS,
    REPEATED,
    Recipe,
    describe_seed_groups,
    learning_rate,
    normalise,
    read_table,
    seed_groups,
    this_machine,
    train_and_evaluate,
    train_benchmark,
    train_network,
    train_subset,
    training_plan,
    training_provenance,
)
from bench.groundtruth_cli import default_paths
from spaces.base import arch_id, get_space
from spaces.errors import BenchError

TINY = [
    {"embed_dim": 8, "depth": 1, "mlp_ratio": [1.0], "num_heads": [1]},
    {"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0, 1.0], "num_heads": [2, 1]},
]
QUICK = Recipe(train_images=80, epochs=20, batch_size=16, lr=1e-2, eval_batch_size=16)


@pytest.fixture
def micro():
    return get_space("micro")


@pytest.fixture
def data(fashion_mnist_dir):
    train, test = load_split("train", fashion_mnist_dir), load_split("test", fashion_mnist_dir)
    return train_subset(train, QUICK), (normalise(test.images), test.labels)


@pytest.mark.parametrize("arch", TINY, ids=["8x1", "16x2"])
def test_training_fits_a_learnable_toy_set(micro, data, arch):
    (x, y), test = data
    torch.manual_seed(0)
    model = micro.build(arch)
    before = torch.nn.functional.cross_entropy(model(x), y).item()
    train_network(model, x, y, QUICK, seed=0)
    model.eval()
    after = torch.nn.functional.cross_entropy(model(x), y).item()
    assert after < 0.6 * before
    assert train_and_evaluate(micro, arch, 0, (x, y), test, QUICK) > 50  # chance is 10


def test_same_seed_gives_the_same_accuracy_and_weights(micro, data):
    train, test = data
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        model = micro.build(TINY[1])
        train_network(model, *train, QUICK, seed, max_steps=6)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    first = train_and_evaluate(micro, TINY[1], 3, train, test, QUICK, max_steps=6)
    assert first == train_and_evaluate(micro, TINY[1], 3, train, test, QUICK, max_steps=6)


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    recipe = Recipe(lr=1.0, warmup_fraction=0.1)
    rates = [learning_rate(step, 100, recipe) for step in range(100)]
    assert rates[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert all(a >= b for a, b in pairwise(rates[9:]))
    assert rates[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert rates[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))


def test_plan_repeats_the_first_architectures_with_every_seed_then_seed_zero(micro):
    plan = training_plan(micro, REPEATED + 5, seeds=3)
    assert len(plan) == 3 * REPEATED + 5
    assert [t.seed for t in plan[:6]] == [0, 1, 2, 0, 1, 2]
    assert plan[0].arch == plan[2].arch != plan[3].arch
    assert {t.seed for t in plan[3 * REPEATED:]} == {0}
    assert len({t.key for t in plan}) == len(plan)
    # a larger plan extends a smaller one: resuming with a larger n keeps what was trained
    small = training_plan(micro, 10, seeds=3)
    assert [t.key for t in small] == [t.key for t in plan[:30]]


def rows_of(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def quick_run(tmp_path, fashion_mnist_dir) -> tuple:
    """The trainings table, the benchmark and the keyword arguments of a 1-step training job."""
    out = tmp_path / "trainings" / "micro-test.csv"
    benchmark = tmp_path / "micro-test.csv"
    return out, benchmark, {"out": out, "benchmark": benchmark, "data_dir": fashion_mnist_dir,
                            "recipe": QUICK, "max_steps": 1, "progress": False}


def test_killed_job_resumes_without_duplicates_or_retraining(micro, fashion_mnist_dir, tmp_path):
    out, benchmark, run = quick_run(tmp_path, fashion_mnist_dir)
    assert train_benchmark(micro, 2, 2, **run) == 4
    first_rows = rows_of(out)
    # the job is killed in the middle of writing its fifth row
    with out.open("a") as handle:
        handle.write('abcdef012345,"{""depth"":1')
    killed = out.read_bytes()
    assert train_benchmark(micro, 2, 2, **run) == 0
    assert out.read_bytes() == killed  # nothing to train: not even the partial row is cut
    assert train_benchmark(micro, 3, 2, **run) == 2
    rows = rows_of(out)
    assert list(rows[0]) == COLUMNS
    assert rows[:4] == first_rows  # nothing retrained, nothing rewritten
    assert len({(r["arch_id"], r["seed"]) for r in rows}) == len(rows) == 6
    assert all(r["arch_id"] == arch_id(json.loads(r["arch"])) for r in rows)
    assert train_benchmark(micro, 3, 2, **run) == 0
    assert rows_of(out) == rows
    aggregated = {r["arch_id"]: r for r in rows_of(benchmark)}
    assert len(aggregated) == 3
    for row in rows:
        assert float(aggregated[row["arch_id"]][f"acc_seed{row['seed']}"]) == float(row["accuracy"])


def test_resume_refuses_a_table_made_with_another_recipe(micro, fashion_mnist_dir, tmp_path):
    out = tmp_path / "t.csv"
    train_benchmark(micro, 1, 1, out, data_dir=fashion_mnist_dir, recipe=QUICK, max_steps=1,
                    progress=False)
    with pytest.raises(BenchError, match="different recipe"):
        train_benchmark(micro, 1, 1, out, data_dir=fashion_mnist_dir, recipe=Recipe(),
                        progress=False)


def test_a_table_with_other_columns_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arch,accuracy\n{},1\n")
    with pytest.raises(BenchError, match="columns"):
        read_table(path)


def test_seeds_are_described_from_the_rows_in_order_of_first_training():
    rows = [{"arch_id": a, "seed": seed} for a, seed in
            [("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 1), ("B", 2), ("C", 0), ("D", 0),
             ("E", 0), ("E", 2), ("A", 3)]]
    assert seed_groups(rows) == [(1, (0, 1, 2, 3)), (1, (0, 1, 2)), (2, (0,)), (1, (0, 2))]
    assert describe_seed_groups(seed_groups(rows)) == (
        "the first 1 architectures with seeds 0..3, the next 1 with seeds 0..2, "
        "the next 2 with seed 0, the others with seeds 0, 2")
    assert describe_seed_groups([(4, (1,))]) == "every architecture with seed 1"


def test_shipped_provenance_is_the_one_computed_from_its_rows(micro):
    trainings, benchmark = default_paths("micro")
    shipped = json.loads(trainings.with_suffix(".json").read_text())
    rows = read_table(trainings)
    recomputed = training_provenance(micro, Recipe(), rows, shipped["machines"])
    assert json.dumps(recomputed, indent=2) + "\n" == trainings.with_suffix(".json").read_text()
    assert recomputed["architectures"] == len({row["arch_id"] for row in rows}) == 200
    assert recomputed["seeds"] == "the first 30 architectures with seeds 0..2, the others with seed 0"
    exported = json.loads(benchmark.with_suffix(".json").read_text())
    assert {key: exported[key] for key in ("architectures", "seeds", "determinism", "machines")} == {
        key: recomputed[key] for key in ("architectures", "seeds", "determinism", "machines")}


def test_training_writes_provenance_that_covers_every_row(micro, fashion_mnist_dir, tmp_path):
    out, benchmark, run = quick_run(tmp_path, fashion_mnist_dir)
    assert train_benchmark(micro, 2, 2, **run) == 4
    # a later, smaller command (one more architecture, one seed) must not shrink the seeds
    assert train_benchmark(micro, 3, 1, **run) == 1
    for path in (out.with_suffix(".json"), benchmark.with_suffix(".json")):
        provenance = json.loads(path.read_text())
        assert provenance["architectures"] == 3
        assert provenance["seeds"] == ("the first 2 architectures with seeds 0..1, "
                                       "the others with seed 0")
        assert provenance["machines"] == [this_machine()]
    assert len(rows_of(out)) == 5


@pytest.mark.parametrize(("n", "seeds"), [(1, 1), (30, 2), (200, 3)])
def test_a_command_with_nothing_to_train_writes_nothing(tmp_path, n, seeds):
    from click.testing import CliRunner

    from bench.cli import main

    trainings, benchmark = default_paths("micro")
    out, bench = tmp_path / "trainings" / trainings.name, tmp_path / benchmark.name
    out.parent.mkdir()
    for source, copy in ((trainings, out), (benchmark, bench)):
        for suffix in (".csv", ".json"):
            shutil.copy2(source.with_suffix(suffix), copy.with_suffix(suffix))
    files = sorted(tmp_path.rglob("*.*"))
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files}
    result = CliRunner().invoke(main, [
        "groundtruth", "train", "--space", "micro", "--n", str(n), "--seeds", str(seeds),
        "--out", str(out), "--benchmark", str(bench), "--data-dir", str(tmp_path / "absent"),
        "--threads", str(torch.get_num_threads())])
    assert result.exit_code == 0, result.output
    assert "nothing to train" in result.output
    assert sorted(tmp_path.rglob("*.*")) == files
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == before
