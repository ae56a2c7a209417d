"""`bench report`: report.md and its figures from small runs, searches and stability studies."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from bench.cli import main
from bench.figures import axis_scale, scatter_figure
from bench.metrics import subsample_curve
from bench.report_doc import build_report
from bench.runner import run
from spaces.benchmarks import load_benchmark

PROXIES = ("params", "flops", "synflow", "snip")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two runs on the embedded benchmark (two targets), the second copied without its partial
    τ columns (a run written before they existed), one run without ground truth, and a search
    and a stability directory written in the agreed formats."""
    root = tmp_path_factory.mktemp("sources")
    common = dict(proxies=PROXIES, benchmark="micro-fmnist", n=12, batch_size=8,
                  cache=str(root / "cache.sqlite"))
    run(out=str(root / "accuracy"), **common)
    run(target="acc_seed1", out=str(root / "seed1"), **common)
    old = root / "seed1-old"
    shutil.copytree(root / "seed1", old)
    correlations = pd.read_csv(old / "correlations.csv")
    correlations.drop(columns=[c for c in correlations if c.startswith("partial_")]).to_csv(
        old / "correlations.csv", index=False)
    run(proxies=("test_width",), space="toy-mlp", n=6, batch_size=4, out=str(root / "toy"),
        cache=str(root / "cache.sqlite"))
    write_search(root / "search")
    write_stability(root / "stability")
    return root


def write_search(path):
    table = load_benchmark("micro-fmnist").table
    picks = table.iloc[[3, 7, 11]]
    searches = [{"seed": seed, "best": {"arch": json.loads(row["arch"]), "arch_id": row["arch_id"],
                                        "score": float(row["params"]), "params": int(row["params"]),
                                        "flops": int(row["flops"]),
                                        "ground_truth": float(row["accuracy"]),
                                        "percentile": 50.0, "regret": 1.0},
                 "candidates": [{"arch_id": row["arch_id"], "arch": json.loads(row["arch"]),
                                 "score": 1.0, "seconds": 0.1,
                                 "ground_truth": float(row["accuracy"])}]}
                for seed, (_, row) in enumerate(picks.iterrows())]
    stats_keys = {"ground_truth_mean": 80.0, "ground_truth_std": 1.5, "percentile_mean": 50.0,
                  "percentile_std": 10.0, "regret_mean": 2.0, "regret_std": 1.0}
    search = {"kind": "search", "proxy": "params", "strategy": "random", "space": "micro",
              "benchmark": "micro-fmnist", "target": "accuracy", "budget": 10,
              "constraints": ["params<=6e6"], "seeds": [0, 1, 2], "config": {"budget": 10},
              "searches": searches,
              "baselines": {"random": {**stats_keys, "per_seed": []},
                            "params": {**stats_keys, "ground_truth_mean": 81.0, "per_seed": []}},
              "summary": stats_keys, "best_available": float(table["accuracy"].max()),
              "cost": {"candidates_scored": 30, "seconds": 3.0, "device": "x86_64",
                       "device_kind": "cpu", "device_hours": 3.0 / 3600,
                       "published": {"TF-TAS search": {"device_hours": 12.0, "ratio": 0.0001}}},
              "trained": None}
    path.mkdir()
    (path / "search.json").write_text(json.dumps(search))


def write_stability(path):
    rows = [{"proxy": proxy, "kind": kind, "repeats": 3, "pairs": 3, "kendall_mean": mean,
             "kendall_min": mean - 0.1, "kendall_max": min(1.0, mean + 0.05),
             "accuracy_kendall": accuracy}
            for proxy, accuracy in (("synflow", 0.6), ("snip", 0.5))
            for kind, mean in (("weights", 0.9), ("inputs", 0.8))]
    path.mkdir()
    pd.DataFrame(rows).to_csv(path / "stability.csv", index=False)
    (path / "stability.json").write_text(json.dumps(
        {"kind": "stability", "config": {"benchmark": "micro-fmnist", "repeats": 3},
         "seeds": {"sampling": 0, "weights": [1, 2, 3], "inputs": [4, 5, 6]}, "rows": rows}))


@pytest.fixture(scope="module")
def report(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    names = ("accuracy", "seed1", "seed1-old", "toy", "search", "stability")
    path = build_report([sources / name for name in names], out,
                        detail=[sources / name for name in ("accuracy", "seed1-old", "toy")],
                        repeats=20)
    return path


def test_every_figure_in_the_report_exists_as_png_and_pdf(report):
    text = report.read_text()
    figures = re.findall(r"\]\((figures/[^)]+)\)", text)
    stems = {name.rsplit(".", 1)[0] for name in figures}
    kinds = {stem.split("/")[1].split("-")[0] for stem in stems}
    assert kinds == {"forest", "scatter", "heatmap", "frontier", "partial", "subsample", "search",
                     "stability"}
    for stem in stems:
        png, pdf = report.parent / f"{stem}.png", report.parent / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pdf.read_bytes()[:5] == b"%PDF-"
        assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    # Every figure has a numbered caption, and a run's caption says how it was measured.
    assert len(re.findall(r"^\*Figure \d+\.\*", text, flags=re.M)) == len(stems)
    scatter = next(line for line in text.splitlines() if "score (x) against" in line)
    assert "12 architectures of micro" in scatter and "seed 0" in scatter and "px" in scatter


def test_partial_figure_only_for_a_run_with_the_partial_columns(report):
    names = {path.name for path in (report.parent / "figures").iterdir()}
    assert "partial-accuracy.png" in names
    assert "subsample-seed1-old.png" in names and "partial-seed1-old.png" not in names
    # The run without ground truth gets its proxy heatmap and no figure against accuracy.
    assert "heatmap-toy.png" in names and not any(n.startswith("scatter-toy") for n in names)


def test_report_has_the_correlation_tables_and_each_run_not_drawn(report, sources):
    text = report.read_text()
    correlations = pd.read_csv(sources / "accuracy" / "correlations.csv").set_index("proxy")
    assert f"| synflow | 12 | {correlations.loc['synflow', 'kendall']:.3f} |" in text
    assert "## Other runs" in text and "Run seed1\n" in text  # seed1 was not asked in detail


def test_the_same_inputs_give_the_same_files(sources, tmp_path):
    inputs = [sources / "accuracy", sources / "search", sources / "stability"]
    first, again = (build_report(inputs, tmp_path / name, repeats=20) for name in ("a", "b"))
    rebuilt = sorted((again.parent / "figures").iterdir())
    assert len(rebuilt) == 16  # forest, 5 of the run, search, stability: PNG and PDF each
    for path in rebuilt:
        assert (first.parent / "figures" / path.name).read_bytes() == path.read_bytes(), path.name
    assert first.read_text() == again.read_text()


def test_the_run_directory_scatter_is_written(sources):
    assert (sources / "accuracy" / "scatter.png").stat().st_size > 1000


def test_a_score_spanning_orders_of_magnitude_gets_a_log_axis_and_a_squeezed_one_a_rank_axis():
    rng = np.random.default_rng(0)
    n = 40
    target = rng.normal(size=n)
    columns = {"wide": 10 ** rng.uniform(0, 6, n),  # positive, max/min ~ 1e6
               "outlier": np.append(rng.normal(size=n - 1), -1e4),  # one extreme negative value
               "plain": rng.uniform(1, 2, n)}
    scores = pd.concat([pd.DataFrame({"proxy": name, "score": values, "target": target})
                        for name, values in columns.items()])
    correlations = pd.DataFrame({"proxy": list(columns), "kendall": 0.1, "kendall_lo": 0.0,
                                 "kendall_hi": 0.2})
    axes = scatter_figure(scores, correlations, "accuracy").axes
    assert [ax.get_xscale() for ax in axes[:3]] == ["log", "linear", "linear"]
    assert [axis_scale(values) for values in columns.values()] == ["log", "rank", "linear"]
    assert axes[1].get_xlabel().startswith("rank")
    assert axes[0].get_ylabel() == "accuracy"  # a normal ground truth keeps its own axis
    ranks = axes[1].collections[0].get_offsets()[:, 0]
    assert sorted(ranks) == list(range(1, n + 1))  # the rank axis plots ranks, not values
    assert "τ 0.100 [0.00, 0.20]" in axes[0].get_title()


def test_subsample_curve_is_seeded_and_equals_the_full_tau_at_the_full_size():
    rng = np.random.default_rng(2)
    target = rng.normal(size=30)
    scores = target + rng.normal(size=30)
    scores[4] = np.nan  # a failure is left out
    first = subsample_curve(scores, target, [10, 20, 29, 50], repeats=30, seed=3)
    pd.testing.assert_frame_equal(first, subsample_curve(scores, target, [10, 20, 29, 50],
                                                         repeats=30, seed=3))
    other = subsample_curve(scores, target, [10, 20, 29, 50], repeats=30, seed=4)
    assert not first.equals(other)
    assert list(first["n"]) == [10, 20, 29]  # 50 is more than the 29 valid pairs
    valid = np.isfinite(scores)
    full = stats.kendalltau(scores[valid], target[valid]).statistic
    last = first.iloc[-1]
    assert last["kendall_median"] == pytest.approx(full)
    assert last["kendall_lo"] == pytest.approx(full) and last["kendall_hi"] == pytest.approx(full)
    assert (first["kendall_lo"] <= first["kendall_median"]).all()
    assert (first["kendall_median"] <= first["kendall_hi"]).all()
    assert first["kendall_hi"].iloc[0] - first["kendall_lo"].iloc[0] > 0  # n=10 varies


@pytest.mark.parametrize("make, message", [
    (lambda d: d.mkdir(), "is not a run, search or stability directory"),
    (lambda d: None, "is not a run, search or stability directory"),
    (lambda d: (d.mkdir(), (d / "search.json").write_text("{nope")), "cannot read"),
])
def test_a_directory_of_no_known_kind_is_one_line_and_exit_code_2(tmp_path, sources, make,
                                                                 message):
    bad = tmp_path / "bad"
    make(bad)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", str(sources / "accuracy"), str(bad),
                                       "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()  # refused before anything is written


def test_a_main_proxy_in_no_run_is_refused(sources, tmp_path):
    result = CliRunner().invoke(main, ["report", str(sources / "accuracy"), "--proxies", "nope",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "'nope' is in none of the runs" in result.output


def test_files_and_earlier_reports_among_the_paths_are_skipped(sources, report, tmp_path):
    note = tmp_path / "notes.md"
    note.write_text("not a directory")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", str(sources / "toy"), str(note),
                                       str(report.parent), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped 2 path(s)" in result.output
    text = (out / "report.md").read_text()
    assert "toy" in text and "notes.md" not in text
