"""`bench stability` and the separate weight and input seeds it rests on."""

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.runner import RunConfig, architecture_seed, build_model, prepare, run_benchmark


def toy_config(tmp_path, **changes):
    base = dict(proxies=("test_width",), space="toy-mlp", n=6, seed=3, batch_size=4,
                inputs="gaussian", device="cpu", cache=str(tmp_path / "cache.sqlite"))
    return RunConfig(**{**base, **changes})


def test_key_of_a_run_without_separate_seeds_has_the_fields_of_every_cached_row(tmp_path):
    default = prepare(toy_config(tmp_path))
    same = prepare(toy_config(tmp_path, weight_seed=3, input_seed=3))
    for prepared in (default, same):
        prepared.cache.close()
    assert default.key_setting == same.key_setting
    assert set(default.key_setting) == {"space", "space_kwargs", "inputs", "batch_size",
                                        "img_size", "seed", "device", "batch", "versions"}
    assert (default.setting["weight_seed"], default.setting["input_seed"]) == (3, 3)


def test_a_weight_seed_equal_to_the_run_seed_recomputes_nothing(tmp_path, calls):
    first = run_benchmark(toy_config(tmp_path))
    done = len(calls)
    again = run_benchmark(toy_config(tmp_path, weight_seed=3, input_seed=3))
    assert done > 0 and len(calls) == done
    assert first.scores["score"].equals(again.scores["score"])
    run_benchmark(toy_config(tmp_path, weight_seed=4))
    assert len(calls) > done  # another weight seed is another key


def test_a_weight_seed_changes_the_weights_and_not_the_inputs_and_an_input_seed_the_reverse(
        tmp_path):
    base, weights, inputs = (prepare(toy_config(tmp_path, **changes)) for changes in
                             ({}, {"weight_seed": 9}, {"input_seed": 9}))
    for prepared in (base, weights, inputs):
        prepared.cache.close()
    arch = base.candidates.archs[0]

    def first_layer(prepared):
        seed = architecture_seed(prepared.setting["weight_seed"], arch)
        return build_model(prepared.candidates.space, arch, 4, seed, "cpu")[1].weight

    assert torch.equal(base.batch.x, weights.batch.x)
    assert not torch.equal(first_layer(base), first_layer(weights))
    assert not torch.equal(base.batch.x, inputs.batch.x)
    assert torch.equal(first_layer(base), first_layer(inputs))
    assert base.candidates.archs == weights.candidates.archs == inputs.candidates.archs


def test_run_records_its_resolved_seeds_in_config_json(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--proxies", "test_width", "--space", "toy-mlp",
                                       "--n", "4", "--seed", "2", "--weight-seed", "7",
                                       "--batch-size", "4", "--inputs", "gaussian", "--out",
                                       str(out), "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 0, result.output
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    assert (resolved["seed"], resolved["weight_seed"], resolved["input_seed"]) == (2, 7, 2)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """`bench stability` of params and grad_norm on 8 architectures of the embedded benchmark."""
    root = tmp_path_factory.mktemp("stability")
    result = CliRunner().invoke(main, ["stability", "--proxies", "params,grad_norm", "--n", "8",
                                       "--repeats", "3", "--seed", "1", "--batch-size", "8",
                                       "--cache", str(root / "cache.sqlite"),
                                       "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    return root / "out", result.output


def test_a_proxy_that_ignores_the_weights_and_inputs_agrees_with_itself_exactly(study):
    table = pd.read_csv(study[0] / "stability.csv").set_index(["proxy", "kind"])
    for kind in ("weights", "inputs"):
        row = table.loc[("params", kind)]
        assert row["kendall_min"] == pytest.approx(1.0) and row["pairs"] == 3


def test_a_proxy_of_random_weights_ranks_differently_under_another_weight_seed(study):
    table = pd.read_csv(study[0] / "stability.csv").set_index(["proxy", "kind"])
    row = table.loc[("grad_norm", "weights")]
    assert row["kendall_min"] <= row["kendall_mean"] <= row["kendall_max"]
    assert row["kendall_mean"] < 1


def test_stability_records_its_seeds_and_the_tau_with_accuracy_of_the_base_run(study):
    out, printed = study
    record = json.loads((out / "stability.json").read_text())
    assert record["kind"] == "stability"
    assert record["seeds"] == {"sampling": 1, "weights": [1, 2, 3], "inputs": [1, 2, 3]}
    assert record["config"]["repeats"] == 3 and record["config"]["seed"] == 1
    rows = pd.DataFrame(record["rows"])
    assert list(rows.columns) == ["proxy", "kind", "repeats", "pairs", "kendall_mean",
                                  "kendall_min", "kendall_max", "accuracy_kendall"]
    base = run_benchmark(RunConfig(proxies=("params", "grad_norm"), n=8, seed=1, batch_size=8,
                                   cache=record["config"]["cache"]))
    accuracy = base.correlations.set_index("proxy")["kendall"]
    for row in rows.to_dict("records"):
        assert row["accuracy_kendall"] == pytest.approx(accuracy[row["proxy"]])
    assert "τ with accuracy" in printed


@pytest.mark.parametrize("args, message", [
    (["--proxies", "params", "--repeats", "1"], "--repeats must be at least 2"),
    (["--proxies", "nope", "--space", "toy-mlp"], "unknown proxy 'nope'"),
    (["--proxies", "params", "--space", "toy-mlp", "--benchmark", "micro-fmnist"], "not both"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["stability", *args, "--out", str(out),
                                       "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
