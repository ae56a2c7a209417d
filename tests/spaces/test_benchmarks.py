"""The benchmark format: save/load round trips, where benchmarks are found, and one clear
BenchError for each kind of defect."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from spaces import benchmarks
from spaces.base import SPACES, arch_id, canonical_json
from spaces.benchmarks import (
    Benchmark,
    benchmarks_dir,
    check_benchmark,
    import_benchmark,
    list_benchmarks,
    load_benchmark,
    make_table,
    save_benchmark,
    sha256_of,
    verify_sha256,
)
from spaces.errors import BenchError
from spaces.nb201 import NB201Space

ARCHS = [{"ops": ["nor_conv_3x3"] * 6}, {"ops": ["skip_connect", "none"] * 3},
         {"ops": ["avg_pool_3x3", "nor_conv_1x1", "none", "skip_connect", "nor_conv_3x3",
                  "none"]}]


def tiny_benchmark(name: str = "tiny") -> Benchmark:
    """Three nb201 cells with one accuracy (one missing) and one reference score."""
    table = make_table(ARCHS, {"acc": [91.5, None, 70.25], "ref_synflow": [3.0, -np.inf, 1.5]},
                       "test")
    provenance = {
        "name": name, "space": "nb201", "space_kwargs": {"num_classes": 10},
        "source": "made in the test", "url": None, "commit": None, "licence": None,
        "sha256": None, "imported_at": "2026-01-01T00:00:00+00:00",
        "columns": {"acc": {"meaning": "a made-up accuracy"},
                    "ref_synflow": {"meaning": "a made-up score"}},
        "default_target": "acc",
    }
    return Benchmark(name, "nb201", table, provenance)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """A user data directory and an (empty) embedded directory of the test's own."""
    monkeypatch.setenv(benchmarks.DATA_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setattr(benchmarks, "EMBEDDED_DIR", tmp_path / "embedded")
    return tmp_path


def test_save_then_load_gives_the_same_table_and_provenance():
    bench = tiny_benchmark()
    path = save_benchmark(bench)
    loaded = load_benchmark("tiny")
    pd.testing.assert_frame_equal(loaded.table, bench.table)
    assert loaded.provenance == bench.provenance
    assert path == benchmarks_dir() / "tiny.csv"
    assert loaded.architectures() == ARCHS
    assert loaded.targets() == ["acc"] and loaded.references() == ["ref_synflow"]


def test_the_files_are_plain_csv_and_json():
    save_benchmark(tiny_benchmark())
    table = pd.read_csv(benchmarks_dir() / "tiny.csv")
    assert list(table.columns) == ["arch_id", "arch", "acc", "ref_synflow"]
    assert json.loads(table["arch"][0]) == ARCHS[0]
    assert table["arch_id"][0] == arch_id(ARCHS[0])
    assert np.isnan(table["acc"][1]) and table["ref_synflow"][1] == -np.inf
    assert json.loads((benchmarks_dir() / "tiny.json").read_text())["default_target"] == "acc"


def test_data_dir_comes_from_the_argument_then_the_environment(tmp_path):
    save_benchmark(tiny_benchmark(), data_dir=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "benchmarks" / "tiny.csv").is_file()
    assert not (benchmarks_dir() / "tiny.csv").exists()
    assert load_benchmark("tiny", data_dir=tmp_path / "elsewhere").name == "tiny"
    with pytest.raises(BenchError, match="unknown benchmark 'tiny'"):
        load_benchmark("tiny")


def test_embedded_benchmarks_are_found_by_name_and_their_names_are_reserved(isolated_dirs):
    save_benchmark(tiny_benchmark("shipped"), data_dir=isolated_dirs / "pkg")
    (isolated_dirs / "pkg" / "benchmarks").rename(isolated_dirs / "embedded")
    assert load_benchmark("shipped").name == "shipped"
    assert [(e["name"], e["location"]) for e in list_benchmarks()] == [("shipped", "embedded")]
    with pytest.raises(BenchError, match="shipped benchmark"):
        save_benchmark(tiny_benchmark("shipped"))


def test_load_by_path_accepts_either_file(tmp_path):
    path = save_benchmark(tiny_benchmark())
    assert load_benchmark(path).name == "tiny"
    assert load_benchmark(str(path.with_suffix(".json"))).name == "tiny"


def test_save_refuses_to_replace_unless_asked():
    save_benchmark(tiny_benchmark())
    with pytest.raises(BenchError, match="already exists"):
        save_benchmark(tiny_benchmark())
    save_benchmark(tiny_benchmark(), overwrite=True)


def test_native_import_copies_and_renames(tmp_path):
    source = save_benchmark(tiny_benchmark(), data_dir=tmp_path / "source")
    bench = import_benchmark(source, name="renamed")
    assert bench.provenance["name"] == "renamed"
    assert load_benchmark("renamed").table["acc"].tolist()[::2] == [91.5, 70.25]


def test_sha256_is_checked(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert sha256_of(path) == expected
    verify_sha256(path, expected)
    with pytest.raises(BenchError, match="sha256 mismatch"):
        verify_sha256(path, "0" * 64)


def edit_table(bench: Benchmark, change) -> Benchmark:
    table = bench.table.copy()
    change(table)
    return Benchmark(bench.name, bench.space, table, bench.provenance)


def edit_provenance(bench: Benchmark, change) -> Benchmark:
    provenance = json.loads(json.dumps(bench.provenance))
    change(provenance)
    return Benchmark(bench.name, provenance.get("space", bench.space), bench.table, provenance)


def set_cell(column, row, value):
    def change(table):
        table[column] = table[column].astype(object)
        table.loc[row, column] = value
    return change


def copy_row(source, target):
    def change(table):
        table.loc[target, ["arch_id", "arch"]] = table.loc[source, ["arch_id", "arch"]]
    return change


DEFECTS = {
    "missing arch column": (lambda b: edit_table(b, lambda t: t.pop("arch")),
                            "no 'arch' column"),
    "no ground truth": (lambda b: edit_provenance(
        edit_table(b, lambda t: t.pop("acc")),
        lambda p: p["columns"].pop("acc")), "no ground-truth column"),
    "undescribed column": (lambda b: edit_table(b, lambda t: t.insert(2, "top5", 1.0)),
                           "undescribed \\['top5'\\]"),
    "provenance missing": (lambda b: edit_provenance(b, lambda p: p.pop("licence")),
                           "provenance is missing licence"),
    "provenance without source": (lambda b: edit_provenance(b, lambda p: p.update(source="")),
                                  "no value for source"),
    "column without meaning": (lambda b: edit_provenance(
        b, lambda p: p["columns"].update(acc={"dataset": "x"})), "at least a 'meaning'"),
    "default target not a target": (lambda b: edit_provenance(
        b, lambda p: p.update(default_target="ref_synflow")), "default_target 'ref_synflow'"),
    "unknown space": (lambda b: edit_provenance(b, lambda p: p.update(space="nb301")),
                      "unknown space 'nb301'"),
    "bad space kwargs": (lambda b: edit_provenance(
        b, lambda p: p.update(space_kwargs={"depth": 3})), "does not take space_kwargs"),
    "arch that does not validate": (lambda b: edit_table(b, set_cell(
        "arch", 1, canonical_json({"ops": ["conv_7x7"] * 6}))), "row 1: not an architecture"),
    "arch that is not JSON": (lambda b: edit_table(b, set_cell("arch", 0, "{ops:")), "not JSON"),
    "arch not canonical": (lambda b: edit_table(b, set_cell("arch", 0, json.dumps(ARCHS[0]))),
                           "canonical form"),
    "arch_id that does not match": (lambda b: edit_table(b, set_cell("arch_id", 2, "0" * 12)),
                                    "does not match"),
    "duplicate arch": (lambda b: edit_table(b, copy_row(0, 2)),
                       "rows 0 and 2 hold the same architecture"),
    "non-numeric target": (lambda b: edit_table(b, set_cell("acc", 1, "n/a")),
                           "'n/a' in row 1 is not a number"),
    "infinite target": (lambda b: edit_table(b, set_cell("acc", 0, np.inf)), "infinite value"),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_is_a_clear_bench_error(defect):
    damage, message = DEFECTS[defect]
    with pytest.raises(BenchError, match=message):
        check_benchmark(damage(tiny_benchmark()))


def test_a_defect_in_the_files_is_found_on_load():
    path = save_benchmark(tiny_benchmark())
    path.write_text(path.read_text().replace("91.5", "ninety"))
    with pytest.raises(BenchError, match="'ninety' in row 0 is not a number"):
        load_benchmark("tiny")


def test_a_lone_csv_is_refused():
    path = save_benchmark(tiny_benchmark())
    path.with_suffix(".json").unlink()
    with pytest.raises(BenchError, match="tiny.json not found"):
        load_benchmark(path)


class WrongHead(nn.Module):
    def forward(self, x):
        return torch.zeros(len(x), 3)


class MisbuildingSpace(NB201Space):
    """nb201's architectures, but every model gives 3 logits instead of num_classes."""

    name = "nb201-misbuilt"

    def build(self, arch, img_size=None):
        self.validate(arch)
        return WrongHead()


def test_the_build_check_finds_models_that_do_not_give_num_classes_logits(monkeypatch):
    monkeypatch.setitem(SPACES, MisbuildingSpace.name, MisbuildingSpace)
    bench = edit_provenance(tiny_benchmark(), lambda p: p.update(space=MisbuildingSpace.name))
    check_benchmark(bench, builds=0)
    with pytest.raises(BenchError, match=r"row 0: the model gives logits of shape \(1, 3\)"):
        check_benchmark(bench, builds=1)


def test_the_build_check_builds_every_architecture_when_asked(monkeypatch):
    built = []
    original = NB201Space.build

    def spy(self, arch, img_size=None):
        built.append((arch, img_size))
        return original(self, arch, img_size)

    monkeypatch.setattr(NB201Space, "build", spy)
    check_benchmark(tiny_benchmark(), builds=None)
    assert built == [(arch, benchmarks.CHECK_IMG_SIZE) for arch in ARCHS]


# Malformed files: always one BenchError, never another exception --------------------------------

def write_files(folder, table: pd.DataFrame | None, provenance, csv_bytes: bytes | None = None):
    """A benchmark's two files in `folder`: the table through pandas (so every cell is quoted as
    a CSV needs) or raw bytes, and the provenance as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "tiny.csv"
    if csv_bytes is None:
        table.to_csv(csv_path, index=False)
    else:
        csv_path.write_bytes(csv_bytes)
    (folder / "tiny.json").write_text(json.dumps(provenance))
    return csv_path


def damaged_tables(draw) -> tuple[pd.DataFrame | None, bytes | None]:
    """The tiny benchmark's table with one defect a user could make, drawn by hypothesis."""
    table = tiny_benchmark().table.astype(object)
    row = draw(st.integers(0, len(table) - 1))
    defect = draw(st.sampled_from(["arch", "arch_id", "drop column", "target", "duplicate",
                                   "empty", "bytes"]))
    if defect == "arch":
        table.loc[row, "arch"] = draw(st.text().filter(lambda t: t != table.loc[row, "arch"]))
    elif defect == "arch_id":
        table.loc[row, "arch_id"] = draw(st.text().filter(lambda t: t != table.loc[row, "arch_id"]))
    elif defect == "drop column":
        table = table.drop(columns=draw(st.sampled_from(list(table.columns))))
    elif defect == "target":
        table.loc[row, "acc"] = "x" + draw(st.text())  # a letter first: never a number
    elif defect == "duplicate":
        other = draw(st.integers(0, len(table) - 1).filter(lambda r: r != row))
        table.loc[other] = table.loc[row]
    elif defect == "empty":
        return None, b""
    else:
        return None, draw(st.binary(max_size=200))
    return table, None


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_malformed_table_is_one_bench_error(tmp_path, data):
    table, raw = damaged_tables(data.draw)
    path = write_files(tmp_path / "damaged", table, tiny_benchmark().provenance, raw)
    with pytest.raises(BenchError) as err:
        load_benchmark(path)
    assert str(err.value) and "\n" not in str(err.value)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([*benchmarks.PROVENANCE_KEYS, "space_kwargs"]),
       value=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                          lambda c: st.lists(c, max_size=3)
                          | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6))
def test_a_provenance_field_of_any_value_loads_or_is_one_bench_error(tmp_path, key, value):
    provenance = {**tiny_benchmark().provenance, key: value}
    path = write_files(tmp_path / "damaged", tiny_benchmark().table, provenance)
    try:
        load_benchmark(path)
    except BenchError as err:
        assert str(err) and "\n" not in str(err)


@pytest.mark.parametrize("text", [b"\xff\xfe\x00garbage", b"[1, 2]", b"[" * 100_000])
def test_a_provenance_that_is_not_a_json_object_is_a_bench_error_and_is_still_listed(text):
    path = save_benchmark(tiny_benchmark())
    path.with_suffix(".json").write_bytes(text)
    with pytest.raises(BenchError, match="tiny.json"):
        load_benchmark("tiny")
    assert [(entry["name"], entry["provenance"]) for entry in list_benchmarks()] == [("tiny", {})]


# Names: a typo gets the close names; a public benchmark not fetched yet says how -----------------

def test_a_misspelled_benchmark_name_suggests_the_close_ones():
    save_benchmark(tiny_benchmark("cifar-tiny"))
    with pytest.raises(BenchError, match=r"unknown benchmark 'cifar-tin'; did you mean cifar-tiny\?"):
        load_benchmark("cifar-tin")
    with pytest.raises(BenchError, match="known: .*cifar-tiny.*nb201-naslib"):
        load_benchmark("zzz")


def test_a_public_benchmark_not_fetched_yet_names_the_fetch_command():
    with pytest.raises(BenchError, match="run `bench data fetch autoprox-pit`"):
        load_benchmark("autoprox-pit")


# Storing: where it goes is checked before any work, and a failure writes nothing ----------------

def test_a_data_dir_that_is_a_file_is_refused_before_the_check(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(benchmarks, "check_benchmark", lambda *a, **k: pytest.fail("checked"))
    with pytest.raises(BenchError, match="is not a directory"):
        benchmarks.store_benchmark(tiny_benchmark(), data_dir=tmp_path / "file" / "data")


@pytest.mark.parametrize("name", ["../escape", "a/b", ""])
def test_a_benchmark_name_that_is_not_a_file_name_is_refused(tmp_path, name):
    bench = Benchmark(name, "nb201", tiny_benchmark().table, tiny_benchmark().provenance)
    with pytest.raises(BenchError, match="must be letters, digits"):
        save_benchmark(bench)
    assert not list(tmp_path.rglob("*.csv"))


def test_an_import_that_fails_its_check_writes_nothing(tmp_path):
    source = save_benchmark(tiny_benchmark(), data_dir=tmp_path / "source")
    source.write_text(source.read_text().replace("91.5", "ninety"))
    with pytest.raises(BenchError, match="not a number"):
        import_benchmark(source, name="copy", data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_a_failed_write_leaves_neither_file_nor_a_partial_one(monkeypatch):
    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(BenchError, match="cannot write benchmark 'tiny'.*No space left"):
        save_benchmark(tiny_benchmark())
    assert list(benchmarks_dir().iterdir()) == []
