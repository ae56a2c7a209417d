"""`bench compare`: runs side by side, each number read from its run's correlations."""

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.compare import compare_runs
from bench.runner import run
from spaces.errors import BenchError


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs on the embedded benchmark (different seeds) and one without ground truth."""
    root = tmp_path_factory.mktemp("runs")
    common = dict(proxies=("params", "grad_norm"), n=12, batch_size=8,
                  cache=str(root / "cache.sqlite"))
    dirs = [root / "a", root / "b", root / "toy"]
    run(seed=0, out=str(dirs[0]), **common)
    run(seed=1, out=str(dirs[1]), **common)
    run(proxies=("test_width",), space="toy-mlp", n=6, seed=0, batch_size=4, out=str(dirs[2]),
        cache=str(root / "cache.sqlite"))
    return dirs


def test_each_cell_is_its_runs_kendall_and_runs_without_ground_truth_are_left_out(runs):
    table = compare_runs(runs, ["grad_norm", "params"])
    assert len(table) == 2
    for row, run_dir in zip(table.to_dict("records"), runs):
        correlations = pd.read_csv(run_dir / "correlations.csv").set_index("proxy")
        for proxy in ("grad_norm", "params"):
            assert row[proxy] == correlations.loc[proxy, "kendall"]
            assert row[proxy + "_lo"] == correlations.loc[proxy, "kendall_lo"]
        best = correlations["kendall"].idxmax()
        assert row["best"].startswith(best)
        assert 0.5 < row["noise_ceiling"] < 1  # the embedded benchmark's, from its provenance


def test_markdown_has_one_row_per_run_with_ground_truth(runs, tmp_path):
    out = tmp_path / "table.md"
    result = CliRunner().invoke(main, ["compare", *map(str, runs), "--proxies", "params",
                                       "--markdown", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| ground truth | params |") and len(lines) == 2 + 2


def test_a_proxy_in_no_run_and_a_directory_that_is_no_run_are_refused(runs, tmp_path):
    with pytest.raises(BenchError, match="'ntk' is in none of the runs"):
        compare_runs(runs, ["ntk"])
    result = CliRunner().invoke(main, ["compare", str(tmp_path)])
    assert result.exit_code == 2 and "is not a run directory" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_difference_is_the_difference_of_the_runs_kendall_taus_with_an_interval_around_it(runs):
    table = compare_runs(runs, ["params"], [("grad_norm", "params"), ("params", "grad_norm")])
    for row, run_dir in zip(table.to_dict("records"), runs):
        kendall = pd.read_csv(run_dir / "correlations.csv").set_index("proxy")["kendall"]
        delta = row["grad_norm-params"]
        assert delta == pytest.approx(kendall["grad_norm"] - kendall["params"])
        assert row["grad_norm-params_lo"] <= delta <= row["grad_norm-params_hi"]
        assert row["params-grad_norm"] == pytest.approx(-delta)


@pytest.mark.parametrize("text, message", [("vintk", "two proxy names joined by '-'"),
                                           ("a-b-c", "two proxy names joined by '-'")])
def test_a_malformed_difference_is_refused(runs, text, message):
    result = CliRunner().invoke(main, ["compare", str(runs[0]), "--proxies", "params",
                                       "--difference", text])
    assert result.exit_code == 2 and message in result.output


def test_a_difference_naming_a_proxy_in_no_run_is_refused(runs):
    with pytest.raises(BenchError, match="'ntk' is in none of the runs"):
        compare_runs(runs, ["params"], [("ntk", "params")])
