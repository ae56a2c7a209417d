"""The `bench` command line end to end on tiny configurations."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_writes_config_scores_correlations_and_summary(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--proxies", "params,test_width", "--space", "toy-mlp", "--n", 6,
                    "--batch-size", 4, "--device", "cpu", "--inputs", "gaussian",
                    "--out", out, "--cache", tmp_path / "c.sqlite")
    assert result.exit_code == 0, result.output
    assert "NO GROUND TRUTH" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["proxies"] == ["params", "test_width"]
    assert {"torch", "timm"} <= set(config["versions"])
    scores = pd.read_csv(out / "scores.csv")
    assert {"arch_id", "arch", "proxy", "score", "seconds", "error"} <= set(scores.columns)
    assert len(scores) == 12
    corr = pd.read_csv(out / "correlations.csv")
    assert {"proxy", "n", "kendall", "kendall_lo", "kendall_hi", "spearman", "pearson",
            "topk_precision", "seconds_per_arch", "failures"} <= set(corr.columns)
    assert "| test_width | 5 | 1.000 |" in (out / "summary.md").read_text()


def test_run_from_config_repeats_the_run_exactly(tmp_path):
    first = tmp_path / "first"
    invoke("run", "--proxies", "params,grad_norm", "--space", "toy-mlp", "--n", 5, "--seed", 4,
           "--batch-size", 4, "--device", "cpu", "--out", first, "--cache", tmp_path / "a.sqlite")
    again = tmp_path / "again"
    result = invoke("run", "--config", first / "config.json", "--out", again,
                    "--cache", tmp_path / "fresh.sqlite")
    assert result.exit_code == 0, result.output
    a, b = (pd.read_csv(d / "scores.csv") for d in (first, again))
    assert a["score"].equals(b["score"]) and a["arch"].equals(b["arch"])
    assert a["score"].notna().sum() >= 8


@pytest.mark.parametrize("args, message", [
    (["run", "--proxies", "nope", "--space", "toy-mlp"], "unknown proxy 'nope'"),
    (["run", "--space", "nowhere"], "unknown space 'nowhere'"),
    (["run", "--n", "0", "--space", "toy-mlp"], "--n must be a positive integer"),
    (["run", "--config", "missing.json"], "cannot read a run configuration"),
    (["arch", "--space", "toy-mlp", "--arch", "{width: 3}"], "not valid JSON"),
    (["arch", "--space", "toy-mlp", "--arch", '{"width": 99}'], "width must be one of"),
    (["arch", "--space", "toy-mlp"], "exactly one of"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_arch_prints_params_and_flops_as_json():
    result = invoke("arch", "--space", "toy-mlp", "--arch", '{"width": 5}')
    info = json.loads(result.output)
    assert info["params"] == 16 * 5 + 5 + 5 * 3 + 3
    assert info["flops"] == 2 * (16 * 5 + 5 * 3)


def test_arch_sample_prints_distinct_json_lines_reproducibly():
    lines = invoke("arch", "--space", "toy-mlp", "--sample", 4, "--seed", 1).output.splitlines()
    assert len(set(lines)) == 4
    assert lines == invoke("arch", "--space", "toy-mlp", "--sample", 4, "--seed", 1).output.splitlines()


def test_proxies_and_spaces_list_what_is_registered():
    assert "grad_norm" in invoke("proxies").output
    assert "toy-mlp" in invoke("spaces").output


def test_default_run_uses_the_embedded_benchmark_with_its_noise_ceiling(tmp_path):
    out = tmp_path / "default"
    result = invoke("run", "--proxies", "params", "--n", 6, "--out", out,
                    "--cache", tmp_path / "c.sqlite")
    assert result.exit_code == 0, result.output
    summary = (out / "summary.md").read_text()
    assert "benchmark micro-fmnist" in summary and "real images" in summary
    assert "noise ceiling" in summary
    scores = pd.read_csv(out / "scores.csv")
    assert scores["target"].between(10, 100).all() and len(scores) == 6


NANO = '{"embed_dim": 8, "depth": 1, "mlp_ratio": [1.0], "num_heads": [1]}'


@pytest.mark.parametrize("args, message", [
    (["--space", "micro", "--sample", 0], "--sample K must be a positive integer, got 0"),
    (["--space", "micro", "--sample", -3], "--sample K must be a positive integer, got -3"),
    (["--space", "micro", "--arch", NANO, "--img-size", 0], "micro: img_size 0 is not accepted"),
    (["--space", "micro", "--arch", NANO, "--img-size", 5], "at least the patch size 7"),
    (["--space", "nb201", "--arch", '{"ops": ["none"]}', "--img-size", 6], "multiple of 4"),
    (["--space", "autoformer-t", "--arch", "{}", "--img-size", 50], "multiple of the patch"),
    (["--space", "micro", "--arch", '{"embed_dim": 8,'], "not valid JSON"),
    (["--space", "micro", "--arch", "[" * 5000], "not valid JSON"),
    (["--space", "micro", "--arch", '"micro"'], "must be a JSON object"),
    (["--space", "micro", "--arch", NANO.replace('"depth": 1', '"depth": "1"')],
     "depth = '1' is not one of"),
    (["--space", "micro", "--arch", NANO.replace("[1]}", "[1.5]}")], "num_heads[0] = 1.5"),
    (["--space", "micro", "--arch", NANO.replace("[1]}", "[true]}")], "num_heads[0] = True"),
    (["--space", "micro", "--arch", NANO.replace('"depth": 1', '"depth": true')],
     "depth = True is not one of"),
    (["--space", "micro", "--arch", NANO.replace("[1.0]", "[1.0, 1.0]")],
     "mlp_ratio must be a list of 1 values"),
    (["--space", "micro", "--arch", NANO.replace("}", ', "colour": "red"}')],
     "unknown ['colour']"),
    (["--space", "autoformr-t", "--sample", 1], "did you mean autoformer-t"),
])
def test_arch_refuses_bad_input_with_one_line_and_exit_code_2(args, message):
    result = invoke("arch", *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1
