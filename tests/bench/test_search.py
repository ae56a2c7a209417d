"""`bench search`: constraints always hold, evolution repeats itself, a proxy that is the ground
truth finds the best, bad input is refused before any score, search.json has the agreed keys."""

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.search import SearchConfig, gene_distance, genes, parse_constraint, search
from spaces.base import get_space
from spaces.benchmarks import load_benchmark
from spaces.errors import BenchError

TOP_KEYS = {"kind", "proxy", "strategy", "space", "benchmark", "target", "budget", "constraints",
            "seeds", "config", "searches", "baselines", "summary", "best_available", "cost",
            "trained"}
OUTCOME_KEYS = {"ground_truth_mean", "ground_truth_std", "percentile_mean", "percentile_std",
                "regret_mean", "regret_std"}


def options(tmp_path, **changes):
    base = dict(proxy="params", budget=8, seeds=2, device="cpu", batch_size=4,
                cache=str(tmp_path / "cache.sqlite"))
    return {**base, **changes}


def invoke(*args):
    return CliRunner().invoke(main, ["search", *map(str, args)])


def every_candidate(result):
    return [c for s in result["searches"] for c in s["candidates"]]


@pytest.mark.parametrize("strategy", [{"strategy": "random"},
                                      {"strategy": "evolution", "population": 4, "parents": 2}])
def test_no_candidate_and_no_best_violates_the_constraints_in_a_space(tmp_path, strategy):
    space = get_space("micro")
    limits = {"params": 30_000, "flops": 1_000_000}
    # `params` drives the search towards the largest models: against the bounds.
    result = search(**options(tmp_path, space="micro", **strategy,
                              constraints=(f"params<={limits['params']}",
                                           f"flops<={limits['flops']}")))
    assert result["baselines"] is None and result["summary"]["regret_mean"] is None
    for candidate in every_candidate(result):
        assert space.count_params(candidate["arch"], 28) <= limits["params"]
        assert space.count_flops(candidate["arch"], 28) <= limits["flops"]
    for found in result["searches"]:
        assert found["best"]["params"] <= limits["params"]
        assert found["best"]["flops"] <= limits["flops"]
        assert found["best"]["score"] == max(c["score"] for c in found["candidates"])


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_on_a_benchmark_the_best_satisfies_a_lower_and_an_upper_bound(tmp_path, strategy):
    result = search(**options(tmp_path, benchmark="micro-fmnist", strategy=strategy,
                              constraints=("params<=60000", "params>=20000")))
    for candidate in every_candidate(result):
        assert 20_000 <= get_space("micro").count_params(candidate["arch"]) <= 60_000
    table = load_benchmark("micro-fmnist").table
    pool = table[(table["params"] <= 60_000) & (table["params"] >= 20_000)]
    assert result["best_available"] == pytest.approx(pool["accuracy"].max())


def test_evolution_with_a_fixed_seed_gives_the_same_candidates_with_a_fresh_cache(tmp_path):
    runs = [search(**options(tmp_path, strategy="evolution", budget=14, population=4,
                             parents=2, mutation_prob=0.5, cache=str(tmp_path / f"{i}.sqlite")))
            for i in range(2)]
    first, second = ([(c["arch_id"], c["score"]) for c in every_candidate(r)] for r in runs)
    assert first == second and len(first) == 2 * 14
    # Two strategy seeds draw two different searches.
    assert [c["arch_id"] for c in runs[0]["searches"][0]["candidates"]] != \
        [c["arch_id"] for c in runs[0]["searches"][1]["candidates"]]


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_a_proxy_that_is_the_ground_truth_finds_the_best_with_zero_regret(tmp_path, strategy):
    # The benchmark's `params` column is the params proxy's value (28 px is micro's own size);
    # the constraint leaves a pool that a budget of 30 covers.
    limit = np.sort(load_benchmark("micro-fmnist").table["params"].to_numpy())[29]
    result = search(**options(tmp_path, benchmark="micro-fmnist", target="params", budget=30,
                              strategy=strategy, constraints=(f"params<={limit}",)))
    assert result["best_available"] == limit
    for found in result["searches"]:
        assert found["best"]["ground_truth"] == found["best"]["score"] == limit
        assert found["best"]["regret"] == 0
        assert found["best"]["percentile"] == pytest.approx(100 * 30 / 200)
    assert result["summary"]["regret_mean"] == 0
    assert result["baselines"]["params"]["regret_mean"] == 0


def test_a_budget_below_the_pool_still_scores_distinct_pool_architectures(tmp_path):
    result = search(**options(tmp_path, strategy="evolution", budget=20, population=5,
                              parents=2, seeds=1))
    ids = [c["arch_id"] for c in every_candidate(result)]
    pool = set(load_benchmark("micro-fmnist").table["arch_id"])
    assert len(ids) == len(set(ids)) == 20 and set(ids) <= pool


def test_search_json_has_the_agreed_keys(tmp_path):
    out = tmp_path / "search"
    result = invoke("--proxy", "params", "--budget", 5, "--seeds", 3, "--device", "cpu",
                    "--batch-size", 4, "--constraint", "params<=2e5", "--cache",
                    tmp_path / "c.sqlite", "--out", out)
    assert result.exit_code == 0, result.output
    assert "random pick" in result.output and "device-hours" in result.output
    saved = json.loads((out / "search.json").read_text())
    assert set(saved) >= TOP_KEYS and saved["kind"] == "search"
    assert saved["benchmark"] == "micro-fmnist" and saved["target"] == "accuracy"
    assert saved["seeds"] == [0, 1, 2] and saved["constraints"] == ["params<=200000"]
    assert set(saved["summary"]) == OUTCOME_KEYS
    for name in ("random", "params"):
        assert set(saved["baselines"][name]) == OUTCOME_KEYS | {"per_seed"}
        assert len(saved["baselines"][name]["per_seed"]) == 3
    found = saved["searches"][0]
    assert set(found) == {"seed", "best", "candidates"}
    assert set(found["best"]) == {"arch", "arch_id", "score", "params", "flops", "ground_truth",
                                  "percentile", "regret"}
    assert set(found["candidates"][0]) == {"arch_id", "arch", "score", "seconds", "ground_truth"}
    cost = saved["cost"]
    assert cost["candidates_scored"] == 15 and cost["device_kind"] == "cpu"
    assert cost["seconds"] == pytest.approx(sum(c["seconds"] for s in saved["searches"]
                                                for c in s["candidates"]))
    assert cost["device_hours"] == pytest.approx(cost["seconds"] / 3600)
    assert set(cost["published"]) == {"AutoFormer supernet training", "TF-TAS search"}
    assert saved["trained"] is None


def test_percentile_and_regret_agree_with_a_direct_count(tmp_path):
    result = search(**options(tmp_path, budget=6, seeds=1))
    accuracy = load_benchmark("micro-fmnist").table["accuracy"].to_numpy()
    best = result["searches"][0]["best"]
    assert best["percentile"] == pytest.approx(100 * np.mean(accuracy <= best["ground_truth"]))
    assert best["regret"] == pytest.approx(accuracy.max() - best["ground_truth"])


@pytest.mark.parametrize("args, message", [
    (["--constraint", "params<6e6"], "--constraint 'params<6e6'"),
    (["--constraint", "size<=3"], "--constraint 'size<=3'"),
    (["--constraint", "params<=lots"], "--constraint 'params<=lots'"),
    (["--constraint", "params<=1"], "no architecture of benchmark micro-fmnist"),
    (["--budget", "0"], "--budget must be an integer of at least 1"),
    (["--seeds", "0"], "--seeds must be"),
    (["--population", "4"], "--population is an option of --strategy evolution"),
    (["--strategy", "evolution", "--population", "1"], "--population must be"),
    (["--strategy", "evolution", "--parents", "11"], "--parents 11 exceeds --population 10"),
    (["--strategy", "evolution", "--mutation-prob", "1.5"], "--mutation-prob must lie in"),
    (["--train"], "--train trains the found architecture"),
    (["--proxy", "ensemble:ntk+params"], "driven by one registered proxy"),
    (["--proxy", "nkt"], "unknown proxy 'nkt'"),
    (["--space", "micro", "--target", "accuracy"], "--target names a column"),
    (["--space", "micro", "--constraint", "params>=1e9"], "no architecture of micro satisfies"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_score(tmp_path, calls, args, message):
    proxy = [] if "--proxy" in args else ["--proxy", "test_width"]
    space = [] if "--space" in args else ["--benchmark", "micro-fmnist"]
    result = invoke(*proxy, *space, *args, "--cache", tmp_path / "c.sqlite", "--out",
                    tmp_path / "out", "--device", "cpu")
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert calls == [] and not (tmp_path / "out").exists()


def test_toy_space_search_counts_failures_and_never_returns_one(tmp_path, calls):
    # test_width raises on width 7 and width 13 does not build: neither can be the best.
    result = search(**options(tmp_path, proxy="test_width", space="toy-mlp", budget=29,
                              seeds=1))
    scores = {c["arch"]["width"]: c["score"] for c in every_candidate(result)}
    assert len(scores) == 29 and scores[7] is None and scores[13] is None
    assert result["searches"][0]["best"]["arch"] == {"width": 29}


def test_train_places_the_found_architecture_among_the_benchmarks_accuracies(
        tmp_path, fashion_mnist_dir):
    result = search(**options(tmp_path, space="micro", budget=2, seeds=1, train=True,
                              train_data_dir=str(fashion_mnist_dir),
                              constraints=("params<=8000",)))
    trained = result["trained"]["architectures"]
    assert [t["arch_id"] for t in trained] == [result["searches"][0]["best"]["arch_id"]]
    accuracy = load_benchmark("micro-fmnist").table["accuracy"].to_numpy()
    assert 0 <= trained[0]["accuracy"] <= 100
    assert trained[0]["percentile"] == pytest.approx(100 * np.mean(accuracy <= trained[0]["accuracy"]))


def test_train_without_the_data_is_refused_before_any_score(tmp_path, calls):
    result = invoke("--proxy", "test_width", "--space", "micro", "--train", "--train-data-dir",
                    tmp_path / "nothing", "--cache", tmp_path / "c.sqlite", "--device", "cpu",
                    "--out", tmp_path / "out")
    assert result.exit_code == 2 and "Fashion-MNIST files missing" in result.output
    assert calls == []


def test_mutation_and_crossover_give_valid_children_made_of_their_parents():
    rng = random.Random(0)
    for name in ("micro", "pit-t", "nb201", "autoformer-t"):
        space = get_space(name)
        a, b = space.sample_many(2, seed=4)
        assert space.mutate(a, rng, prob=0.0) == space.validate(a)
        for _ in range(20):
            assert space.validate(space.mutate(a, rng, prob=0.5))
            child = space.crossover(a, b, rng)
            parents = (genes(a), genes(b))
            assert all(value in (p.get(key) for p in parents)
                       for key, value in genes(space.validate(child)).items())


def test_autoformer_mutation_changes_depth_and_keeps_per_layer_lists_consistent():
    space, rng = get_space("micro"), random.Random(1)
    parent = {"embed_dim": 32, "depth": 3, "mlp_ratio": [1.0, 2.0, 3.0], "num_heads": [1, 2, 4]}
    children = [space.validate(space.mutate(parent, rng, prob=0.5)) for _ in range(50)]
    assert {child["depth"] for child in children} == set(space.depths)
    kept = [c for c in children if c["depth"] > 3 and c["embed_dim"] == 32]
    assert any(c["mlp_ratio"][:3] == parent["mlp_ratio"] for c in kept)  # layers carried over


def test_gene_distance_counts_differing_choices_and_missing_layers():
    a = {"depth": 2, "w": [1, 2]}
    b = {"depth": 3, "w": [1, 5, 6]}
    assert gene_distance(genes(a), genes(a)) == 0
    assert gene_distance(genes(a), genes(b)) == 3  # depth, w[1], and w[2] that a lacks


def test_constraints_parse_and_print_in_one_form():
    assert str(parse_constraint(" params <= 6e6 ")) == "params<=6e+06"
    assert parse_constraint("flops>=100").holds(100.0)
    assert not parse_constraint("flops<=100").holds(float("nan"))
    with pytest.raises(BenchError):
        SearchConfig(proxy="params", constraints=("params=<5",))
