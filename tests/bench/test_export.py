"""`bench export`: a NAS-Bench-201 run through NASLib's layout and back through the project's own
NASLib importer, a micro run through the wide CSV, the keys off NB201, and one-line errors."""

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.export import export_run
from bench.runner import run
from spaces import benchmarks
from spaces.base import canonical_json
from spaces.errors import BenchError
from spaces.importers import import_file
from spaces.importers.nb201 import import_naslib_nb201
from spaces.nb201 import from_naslib_indices

# Three NAS-Bench-201 cells by NASLib's op indices, with made-up CIFAR-10 accuracies.
NASLIB_FILE = {"cifar10": {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": 86.06},
                           "(4, 0, 4, 1, 2, 0)": {"val_accuracy": 83.62},
                           "(2, 2, 2, 2, 2, 2)": {"val_accuracy": 90.5}}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder for the module's runs, with its own benchmark data directory."""
    path = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(benchmarks.DATA_DIR_ENV, str(path / "user"))
        yield path


def scores_of(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "scores.csv")


@pytest.fixture(scope="module")
def nb201_run(folder):
    """A run of params and naswot (NASLib's `nwot`) on three NB201 cells with ground truth."""
    source = folder / "zc_nasbench201.json"
    source.write_text(json.dumps(NASLIB_FILE))
    import_file(source, builds=0)
    out = folder / "nb201-run"
    run(proxies=["params", "naswot"], benchmark="nb201-naslib", batch_size=4,
        cache=str(folder / "cache.sqlite"), out=str(out))
    return out


def test_a_naslib_export_of_an_nb201_run_reads_back_through_the_naslib_importer(nb201_run,
                                                                                tmp_path):
    path = export_run(nb201_run, "naslib", tmp_path / "zc_nasbench201.json")
    exported = json.loads(path.read_text())
    assert list(exported) == ["cifar10"]
    assert set(exported["cifar10"]) == set(NASLIB_FILE["cifar10"])
    bench = import_naslib_nb201(path)
    scores = scores_of(nb201_run)
    by_arch = bench.table.set_index("arch")
    for row in scores.itertuples():
        column = {"params": "ref_cifar10_params", "naswot": "ref_cifar10_nwot"}[row.proxy]
        assert by_arch.loc[row.arch, column] == row.score
        assert by_arch.loc[row.arch, "cifar10_val_acc"] == row.target
    for key, entry in NASLIB_FILE["cifar10"].items():
        arch = canonical_json(from_naslib_indices(key))
        assert by_arch.loc[arch, "cifar10_val_acc"] == entry["val_accuracy"]


def test_the_naslib_export_keeps_each_scores_time(nb201_run, tmp_path):
    exported = json.loads(export_run(nb201_run, "naslib", tmp_path / "zc.json").read_text())
    scores = scores_of(nb201_run)
    times = sorted(entry[p]["time"] for entry in exported["cifar10"].values()
                   for p in ("params", "nwot"))
    assert times == sorted(scores["seconds"].tolist())


@pytest.fixture(scope="module")
def micro_run(folder):
    """A run of params and l2_norm on four networks of the embedded benchmark."""
    out = folder / "micro-run"
    run(proxies=["params", "l2_norm"], n=4, seed=1, cache=str(folder / "cache.sqlite"),
        out=str(out))
    return out


def test_a_csv_export_of_a_micro_run_rereads_to_the_same_scores(micro_run, tmp_path):
    table = pd.read_csv(export_run(micro_run, "csv", tmp_path / "wide.csv"))
    assert list(table.columns) == ["arch_id", "arch", "target", "params", "l2_norm"]
    scores = scores_of(micro_run)
    assert table["arch"].tolist() == list(dict.fromkeys(scores["arch"]))
    for row in scores.itertuples():
        line = table[table["arch"] == row.arch].iloc[0]
        assert (line[row.proxy], line["target"], line["arch_id"]) == \
            (row.score, row.target, row.arch_id)


def test_off_nb201_the_naslib_keys_are_the_target_and_the_canonical_architecture(micro_run):
    exported = json.loads(export_run(micro_run, "naslib").read_text())
    assert (micro_run / "naslib_zc.json").is_file()  # the default: beside the run's files
    scores = scores_of(micro_run)
    assert list(exported) == ["accuracy"]
    assert set(exported["accuracy"]) == set(scores["arch"])
    for row in scores.itertuples():
        entry = exported["accuracy"][row.arch]
        assert (entry[row.proxy]["score"], entry["val_accuracy"]) == (row.score, row.target)


def test_a_failed_score_is_left_out_of_the_naslib_export(tmp_path):
    """On toy-mlp (tests/bench/conftest.py) width 13 does not build: its scores are NaN."""
    out = tmp_path / "toy-run"
    run(proxies=["test_width"], space="toy-mlp", n=6, seed=0, cache=str(tmp_path / "c.sqlite"),
        out=str(out))
    scores = scores_of(out)
    failed = scores[scores["score"].isna()]
    assert len(failed) == 1
    exported = json.loads(export_run(out, "naslib").read_text())
    assert list(exported) == ["toy-mlp"]
    entries = exported["toy-mlp"]
    assert entries[failed["arch"].iloc[0]] == {}
    assert sum("test_width" in entry for entry in entries.values()) == len(scores) - 1
    wide = pd.read_csv(export_run(out, "csv"))
    assert wide["target"].isna().all() and math.isnan(
        wide.loc[wide["arch"] == failed["arch"].iloc[0], "test_width"].iloc[0])


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_command_writes_the_file_it_names(micro_run, tmp_path):
    result = invoke("export", micro_run, "--format", "csv", "--out", tmp_path / "w.csv")
    assert result.exit_code == 0 and (tmp_path / "w.csv").is_file()


@pytest.mark.parametrize("case", ["no such dir", "not a run", "bad format"])
def test_a_bad_run_dir_or_format_is_one_line_and_exit_code_2(tmp_path, micro_run, case):
    (tmp_path / "empty").mkdir()
    args = {"no such dir": [tmp_path / "missing", "--format", "naslib"],
            "not a run": [tmp_path / "empty", "--format", "csv"],
            "bad format": [micro_run, "--format", "parquet"]}[case]
    result = invoke("export", *args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_the_python_entry_point_names_an_unknown_format():
    with pytest.raises(BenchError, match="unknown export format 'json'"):
        export_run(".", "json")
