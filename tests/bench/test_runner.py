"""The runner: caching and resume, failures recorded, reproducibility, ensembles."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.runner import RunConfig, architecture_seed, run, run_benchmark
from spaces.errors import BenchError


def config(tmp_path, **changes):
    base = dict(proxies=("test_width",), space="toy-mlp", n=12, seed=3, batch_size=4,
                inputs="gaussian", device="cpu", out=str(tmp_path / "run"),
                cache=str(tmp_path / "cache.sqlite"))
    return RunConfig(**{**base, **changes})


def run_written(cfg: RunConfig):
    """The run computed and written to its --out, as `run(..., out=...)` does."""
    return run(**cfg.to_dict())


def test_rerun_reuses_every_cached_score(tmp_path, calls):
    first = run_benchmark(config(tmp_path))
    n_first = len(calls)
    second = run_benchmark(config(tmp_path, out=str(tmp_path / "again")))
    assert n_first > 0 and len(calls) == n_first
    assert first.scores["score"].equals(second.scores["score"])


def test_interrupted_run_resumes_without_recomputing(tmp_path, calls, interrupt_after):
    interrupt_after[:] = [5]
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config(tmp_path))
    done_before = list(calls)
    calls.clear()
    interrupt_after.clear()
    calls_needed = run_benchmark(config(tmp_path, out=str(tmp_path / "b"))).scores
    # 5 scores were cached before the interruption; the 6th call was interrupted.
    assert len(done_before) == 6
    assert len(calls) == len(calls_needed) - 5 - count_unbuildable(calls_needed)


def count_unbuildable(scores):
    return int(scores["error"].fillna("").str.startswith("model does not build").sum())


def test_failures_are_recorded_with_their_reason_and_the_run_goes_on(tmp_path, calls):
    archs = [{"width": w} for w in (7, 13, 20, 21, 22)]
    scores = run_with_archs(tmp_path, archs)
    by_width = {json.loads(a)["width"]: row for a, row in zip(scores["arch"], scores.to_dict("records"))}
    assert "seven is not allowed" in by_width[7]["error"] and np.isnan(by_width[7]["score"])
    assert by_width[13]["error"].startswith("model does not build: ValueError: thirteen")
    assert [by_width[w]["score"] for w in (20, 21, 22)] == [20.0, 21.0, 22.0]


def test_a_proxys_note_is_recorded_beside_its_score_and_survives_the_cache(tmp_path, calls):
    first = run_written(config(tmp_path)).scores
    again = run_benchmark(config(tmp_path, out=str(tmp_path / "again"))).scores
    for scores in (first, again):
        ok = scores[scores["error"].isna()]
        assert (ok["note"] == "odd width").tolist() == (ok["score"] % 2 == 1).tolist()
    assert set((tmp_path / "run" / "scores.csv").read_text().splitlines()[0].split(",")) >= {"note"}


def test_proxies_are_checked_against_the_published_scores_of_the_same_proxies(tmp_path, calls):
    from spaces.benchmarks import Benchmark, make_table, save_benchmark

    widths = [3, 5, 8, 11, 17, 20, 26]
    columns = {"acc": [50.0 + w for w in widths], "ref_width": [w * 2.0 for w in widths],
               "ref_width_reversed": [-w for w in widths], "ref_other_data": widths}
    meanings = {"acc": {"meaning": "accuracy"},
                "ref_width": {"meaning": "w", "proxy": "test_width", "target": "acc"},
                "ref_width_reversed": {"meaning": "-w", "proxy": "test_width_again",
                                       "target": "acc"},
                "ref_other_data": {"meaning": "w", "proxy": "test_width", "target": "other"}}
    provenance = {"name": "toy", "space": "toy-mlp", "source": "test", "url": None, "commit": None,
                  "licence": None, "sha256": None, "imported_at": "now", "columns": meanings,
                  "default_target": "acc"}
    table = make_table([{"width": w} for w in widths], columns, "toy")
    path = save_benchmark(Benchmark("toy", "toy-mlp", table, provenance), tmp_path / "data")
    result = run_written(config(tmp_path, space=None, benchmark=str(path), n=None,
                                proxies=("test_width", "test_width_again")))
    agreement = result.agreement.set_index("proxy")
    assert agreement.loc["test_width", "reference"] == "ref_width"  # not the other data set's
    assert agreement.loc["test_width", "kendall"] == pytest.approx(1.0)
    assert agreement.loc["test_width_again", "kendall"] == pytest.approx(-1.0)
    assert "published scores" in (tmp_path / "run" / "summary.md").read_text()
    assert len(pd.read_csv(tmp_path / "run" / "agreement.csv")) == 2


def run_with_archs(tmp_path, archs):
    from bench import runner

    original = runner.load_candidates

    def fixed(cfg):
        found = original(cfg)
        return runner.Candidates(found.space, {}, archs, None, None, {})

    runner.load_candidates = fixed
    try:
        return run_benchmark(config(tmp_path, proxies=("test_width", "test_width_again"))).scores
    finally:
        runner.load_candidates = original


def test_same_configuration_gives_the_same_scores_with_a_fresh_cache(tmp_path):
    a = run_benchmark(config(tmp_path, proxies=("params", "grad_norm")))
    b = run_benchmark(config(tmp_path, proxies=("params", "grad_norm"),
                             cache=str(tmp_path / "other.sqlite"), out=str(tmp_path / "b")))
    assert np.array_equal(a.scores["score"].to_numpy(), b.scores["score"].to_numpy())


def test_architecture_seed_depends_on_run_seed_and_architecture_only():
    assert architecture_seed(0, {"width": 3}) == architecture_seed(0, {"width": 3})
    assert architecture_seed(0, {"width": 3}) != architecture_seed(1, {"width": 3})
    assert architecture_seed(0, {"width": 3}) != architecture_seed(0, {"width": 4})


def test_ensemble_ranks_members_and_costs_their_sum(tmp_path, calls):
    result = run_benchmark(config(tmp_path, proxies=("ensemble:test_width+test_width_again",)))
    ens = result.scores[result.scores["proxy"] == "ensemble:test_width+test_width_again"]
    width = result.scores[result.scores["proxy"] == "test_width"]
    ok = ens["score"].notna().to_numpy()
    # Two identical members: the ensemble orders architectures exactly as one member does.
    order_ens = np.argsort(ens["score"].to_numpy()[ok])
    order_width = np.argsort(width["score"].to_numpy()[ok])
    assert np.array_equal(order_ens, order_width)
    assert np.isclose(ens["score"].max(), 0.0)


@pytest.mark.parametrize("changes, message", [
    (dict(proxies=()), "no proxies"),
    (dict(n=0), "--n must be a positive integer"),
    (dict(benchmark="x", space="toy-mlp"), "not both"),
    (dict(target="acc"), "give --benchmark"),
])
def test_bad_configurations_are_refused_clearly(tmp_path, changes, message):
    with pytest.raises(BenchError, match=message):
        config(tmp_path, **changes)


def test_unknown_proxy_is_refused_before_any_work(tmp_path, calls):
    with pytest.raises(BenchError, match="unknown proxy 'nope'"):
        run_benchmark(config(tmp_path, proxies=("test_width", "nope")))
    assert calls == []


def test_all_expands_to_every_registered_proxy_once(tmp_path):
    from proxies.base import all_proxy_names

    cfg = config(tmp_path, proxies=("params", "all", "ensemble:ntk+params"))
    assert cfg.proxies[0] == "params" and cfg.proxies[-1] == "ensemble:ntk+params"
    assert sorted(cfg.proxies[:-1]) == all_proxy_names()


def test_a_minus_name_leaves_that_proxy_out_wherever_it_stands(tmp_path):
    from proxies.base import all_proxy_names

    cfg = config(tmp_path, proxies=("-grasp", "all", "-vintk_s4"))
    assert sorted(cfg.proxies) == sorted(set(all_proxy_names()) - {"grasp", "vintk_s4"})
    assert config(tmp_path, proxies=("ntk", "params", "-ntk")).proxies == ("params",)


def test_leaving_out_a_proxy_the_list_does_not_hold_suggests_the_close_ones(tmp_path):
    with pytest.raises(BenchError, match="unknown proxy to leave out 'grsap'; did you mean grasp"):
        config(tmp_path, proxies=("all", "-grsap"))
    with pytest.raises(BenchError, match="no proxies given"):
        config(tmp_path, proxies=("ntk", "-ntk"))
    with pytest.raises(BenchError, match="-ntk leaves a proxy out, but the list names none"):
        config(tmp_path, proxies=("-ntk",))
