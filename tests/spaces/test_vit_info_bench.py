"""ViT-Info-Bench through the OoD-ViT-NAS importer, on small synthetic files in its layout (the
upstream files state no licence, so none of their data is kept here): columns and their meanings,
the parameter check, one-line errors, `fetch` from the known entry, and a run's agreement.csv."""

import dataclasses
import json
import random

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.runner import run
from proxies.base import all_proxy_names
from spaces import benchmarks
from spaces.base import get_space
from spaces.errors import BenchError
from spaces.importers import detect_format, import_file
from spaces.importers import fetch as fetch_module
from spaces.importers.fetch import fetch_benchmark
from spaces.importers.ood_vit_nas import INFO_BENCH_PROXIES
from spaces.importers.sources import known_benchmark

DATASETS = ["cifar-10", "cifar-100", "miniimagenet", "tiny-imagenet"]
SCORES = ["dss", "AutoProxA", "croze", "jacobian", "meco", "snip", "grasp", "te_nas", "synflow"]
TARGETS = {"cifar10_top1": 10, "cifar100_top1": 100, "miniimagenet_top1": 100,
           "tiny_imagenet_top1": 200}


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv(benchmarks.DATA_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setattr(benchmarks, "EMBEDDED_DIR", tmp_path / "embedded")


def info_bench_records(space_name: str, n: int, datasets=DATASETS, seed: int = 0) -> dict:
    """Made-up records in ViT-Info-Bench's layout, params counted by the 1000-class space."""
    space, rng = get_space(space_name), random.Random(seed)
    records = {}
    for i, arch in enumerate(space.sample_many(n, seed), start=1):
        records[str(i)] = {
            "net_setting": {"layer_num": arch["depth"], "mlp_ratio": arch["mlp_ratio"],
                            "num_heads": arch["num_heads"],
                            "embed_dim": [arch["embed_dim"]] * arch["depth"]},
            "params": space.count_params(arch) / 1e6,
            "performance": {d: round(rng.uniform(60, 95), 3) for d in datasets},
            "flops": round(rng.uniform(1, 3), 4),
            "proxy": {name: rng.uniform(-1e3, 1e5) for name in SCORES},
        }
    return records


def write(tmp_path, records, name="ViT-Info-Bench_tiny.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records, indent=4))
    return path


def test_one_target_column_per_data_set_with_its_class_count(tmp_path):
    records = info_bench_records("autoformer-t", 3)
    bench = import_file(write(tmp_path, records))
    assert (bench.name, bench.space, bench.provenance["default_target"]) == \
        ("vit-info-bench-tiny", "autoformer-t", "cifar100_top1")
    assert bench.targets() == list(TARGETS)
    columns = bench.provenance["columns"]
    for (column, classes), dataset in zip(TARGETS.items(), DATASETS):
        assert bench.table[column].tolist() == [r["performance"][dataset] for r in records.values()]
        assert columns[column]["num_classes"] == classes
    assert bench.table["ref_flops"].tolist() == [r["flops"] for r in records.values()]


def test_published_scores_are_ref_columns_mapped_only_where_the_formula_is_the_same(tmp_path):
    records = info_bench_records("autoformer-t", 3)
    bench = import_file(write(tmp_path, records), builds=0)
    assert bench.references() == [f"ref_{n.lower()}" for n in SCORES] + ["ref_flops"]
    assert bench.table["ref_te_nas"].tolist() == [r["proxy"]["te_nas"] for r in records.values()]
    columns = bench.provenance["columns"]
    mapped = {c: m["proxy"] for c, m in columns.items() if "proxy" in m}
    assert mapped == {"ref_dss": "dss", "ref_snip": "snip", "ref_grasp": "grasp",
                      "ref_synflow": "synflow"}
    assert set(mapped.values()) <= set(all_proxy_names())
    assert {columns[c]["target"] for c in mapped} == {"cifar100_top1"}
    # Every score a file may hold has a description that says what it is.
    assert set(INFO_BENCH_PROXIES) == set(SCORES)


def test_the_small_file_keeps_the_data_sets_it_has(tmp_path):
    records = info_bench_records("autoformer-s", 2, datasets=["cifar-10", "cifar-100"])
    bench = import_file(write(tmp_path, records, "ViT-Info-Bench_small.json"), builds=0)
    assert (bench.name, bench.space) == ("vit-info-bench-small", "autoformer-s")
    assert bench.targets() == ["cifar10_top1", "cifar100_top1"]


def test_a_data_set_missing_for_one_network_is_a_missing_value(tmp_path):
    records = info_bench_records("autoformer-t", 2)
    del records["2"]["performance"]["miniimagenet"]
    bench = import_file(write(tmp_path, records), builds=0)
    assert bench.table["miniimagenet_top1"].isna().tolist() == [False, True]


def test_the_layout_is_detected_as_ood_vit_nas_and_told_apart_by_performance(tmp_path):
    path = write(tmp_path, info_bench_records("autoformer-t", 2))
    assert detect_format(path) == "ood-vit-nas"
    assert import_file(path, "ood-vit-nas", builds=0).name == "vit-info-bench-tiny"


def damaged(change, key="2"):
    records = info_bench_records("autoformer-t", 3)
    change(records[key])
    return records


DEFECTS = {
    "params off by one": (damaged(lambda r: r.update(params=r["params"] + 1e-6)),
                          "refusing .*architecture 2 has .*M parameters in the file"),
    # The count a 100-class head gives (900 fewer classes of embed_dim weights and a bias each).
    "params of a 100-class head": (damaged(lambda r: r.update(
        params=r["params"] - 900 * (r["net_setting"]["embed_dim"][0] + 1) / 1e6)),
        "refusing .*architecture 2"),
    "unknown data set": (damaged(lambda r: r["performance"].update(imagenet21k=50.0)),
                         "performance must map data sets among"),
    "proxy not an object": (damaged(lambda r: r.update(proxy=[1, 2])), "proxy must map"),
    "non-numeric score": (damaged(lambda r: r["proxy"].update(snip="big")), "'big' is not a number"),
    "no cifar-100": ({k: {**r, "performance": {"cifar-10": 90.0}} for k, r in
                      info_bench_records("autoformer-t", 2).items()}, "no architecture has a cifar-100"),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_defects_are_refused_in_one_line(tmp_path, defect):
    records, message = DEFECTS[defect]
    with pytest.raises(BenchError, match=message) as err:
        import_file(write(tmp_path, records), builds=0)
    assert "\n" not in str(err.value)


def test_a_bad_file_on_the_command_line_is_one_line_and_exit_code_2(tmp_path):
    path = tmp_path / "ViT-Info-Bench_tiny.json"
    path.write_text('{"1": {"net_setting": ')
    result = CliRunner().invoke(main, ["data", "import", str(path), "--format", "ood-vit-nas"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "not valid JSON" in result.output


def test_fetch_imports_the_known_entry_and_reports_the_hash_it_could_not_check(tmp_path,
                                                                               monkeypatch):
    entry = known_benchmark("vit-info-bench-tiny")
    assert entry.format == "ood-vit-nas" and entry.commit in entry.url
    assert entry.url.endswith("/data/our/ViT-Info-Bench_tiny.json")
    path = write(tmp_path, info_bench_records("autoformer-t", 2))
    local = dataclasses.replace(entry.files[0], url=path.as_uri())
    monkeypatch.setattr(fetch_module, "known_benchmark",
                        lambda name: dataclasses.replace(entry, files=(local,)))
    bench, notes = fetch_benchmark("vit-info-bench-tiny")
    assert bench.name == "vit-info-bench-tiny" and bench.provenance["commit"] == entry.commit
    assert benchmarks.sha256_of(path) in notes[0]


def test_a_run_against_the_default_target_writes_the_agreement_with_the_published_score(tmp_path):
    records = info_bench_records("autoformer-t", 3)
    import_file(write(tmp_path, records), builds=0)
    result = run(proxies=["snip", "params"], benchmark="vit-info-bench-tiny", img_size=32,
                 batch_size=4, cache=str(tmp_path / "cache.sqlite"), out=str(tmp_path / "run"))
    assert result.agreement[["proxy", "reference", "n"]].values.tolist() == [["snip", "ref_snip", 3]]
    assert (tmp_path / "run" / "agreement.csv").is_file()
