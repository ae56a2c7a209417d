"""Training the ground truth: the training path, the plan, determinism, and kill-and-resume."""

import csv
import json
import math
from itertools import pairwise

import pytest
import torch

from bench.fashion_mnist import load_split
from bench.groundtruth import (
    COLUMNS,
    REPEATED,
    Recipe,
    learning_rate,
    normalise,
    read_table,
    train_and_evaluate,
    train_benchmark,
    train_network,
    train_subset,
    training_plan,
)
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


def test_killed_job_resumes_without_duplicates_or_retraining(micro, fashion_mnist_dir, tmp_path):
    out = tmp_path / "trainings" / "micro-test.csv"
    benchmark = tmp_path / "micro-test.csv"
    run = {"out": out, "benchmark": benchmark, "data_dir": fashion_mnist_dir, "recipe": QUICK,
           "max_steps": 1, "progress": False}
    assert train_benchmark(micro, 2, 2, **run) == 4
    first_rows = rows_of(out)
    # the job is killed in the middle of writing its fifth row
    with out.open("a") as handle:
        handle.write('abcdef012345,"{""depth"":1')
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
