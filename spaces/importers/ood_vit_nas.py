"""OoD-ViT-NAS (Ho, Vo et al., NeurIPS 2024; GitHub vovantuan1999a/OoD-ViT-NAS,
architecture_infors/1k_Vit_Architecture_from_AutoFM_{tiny,small,base}.json): 1,000 AutoFormer
subnets per file, evaluated with weights inherited from the AutoFormer supernets; and
ViT-Info-Bench (Info-NAS, GitHub Shallow-W/Info-NAS, data/our/ViT-Info-Bench_{tiny,small}.json),
AutoFormer subnets in the same layout with accuracies on four small data sets.

The file is a JSON object keyed by id; each value is
`{"net_setting": {"layer_num": L, "mlp_ratio": [L], "num_heads": [L], "embed_dim": [L, all equal]},
"performance": {"Imagenet": {"clean": top-1, ...}}, "params": millions, "flops": millions}`.
ViT-Info-Bench's records keep `net_setting` and `params` (counted with the 1000-class ImageNet
head, like OoD-ViT-NAS's) and have `performance` = {"cifar-10": top-1, "cifar-100": ...,
"miniimagenet": ..., "tiny-imagenet": ...} (or some of them), `flops` in G and
`proxy` = nine published zero-cost scores; `performance` tells the two layouts apart.
The space (autoformer-t/-s/-b) is the one whose widths contain the file's embed_dim. The importer
counts every architecture's parameters with the space (in closed form, so the whole file takes a
fraction of a second) and refuses the file unless each count equals the file's `params`: that is
what shows the space builds the networks the accuracies belong to.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from spaces.base import Arch, SearchSpace, get_space
from spaces.benchmarks import Benchmark, make_table
from spaces.errors import BenchError
from spaces.importers.sources import OOD_VIT_NAS, VIT_INFO_BENCH, provenance

SPACES = ("autoformer-t", "autoformer-s", "autoformer-b")
INHERITED = ("weights inherited from the AutoFormer supernet of the space (Chen et al. ICCV "
             "2021), evaluated without retraining, as reported by OoD-ViT-NAS")


def read_records(path: Path) -> dict[str, dict]:
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"{path.name}: not valid JSON ({err})") from None
    if not isinstance(records, dict) or not records:
        raise BenchError(f"{path.name}: expected a non-empty JSON object keyed by architecture id")
    for key, record in records.items():
        for field in ("net_setting", "performance", "params"):
            if not isinstance(record, dict) or field not in record:
                raise BenchError(f"{path.name}: architecture {key} has no {field!r}")
    return records


def to_arch(key: str, setting: dict, where: str) -> Arch:
    """An AutoFormer architecture from OoD-ViT-NAS's `net_setting`."""
    widths = setting.get("embed_dim")
    depth = setting.get("layer_num")
    if not isinstance(widths, list) or not widths or len(set(widths)) != 1:
        raise BenchError(f"{where}: architecture {key}: embed_dim must be one width repeated per "
                         f"layer, got {widths!r}")
    for field in ("mlp_ratio", "num_heads"):
        if not isinstance(setting.get(field), list) or len(setting[field]) != depth:
            raise BenchError(f"{where}: architecture {key}: {field} must list layer_num = {depth} "
                             f"values, got {setting.get(field)!r}")
    return {"embed_dim": widths[0], "depth": depth, "mlp_ratio": setting["mlp_ratio"],
            "num_heads": setting["num_heads"]}


def space_for(embed_dim, where: str) -> SearchSpace:
    for name in SPACES:
        space = get_space(name)
        if embed_dim in space.embed_dims:
            return space
    raise BenchError(f"{where}: embed_dim {embed_dim!r} is in none of the spaces {list(SPACES)}")


def performance_columns(performance: dict) -> dict[tuple[str, ...], float]:
    """Every number in a `performance` tree, keyed by its path."""
    leaves = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, str(key)))
        else:
            leaves[path] = node

    walk(performance, ())
    return leaves


def column_name(path: tuple[str, ...]) -> str:
    if path == ("Imagenet", "clean"):
        return "imagenet_top1"
    return re.sub(r"[^a-z0-9]+", "_", "_".join(path).lower()).strip("_")


def check_params(space: SearchSpace, archs: list[Arch], keys: list[str], millions: list,
                 where: str) -> None:
    """Refuse the file unless the space counts each architecture's parameters as the file does."""
    for key, arch, stated in zip(keys, archs, millions):
        if isinstance(stated, bool) or not isinstance(stated, (int, float)):
            raise BenchError(f"{where}: architecture {key}: params {stated!r} is not a number")
        counted = space.count_params(arch)
        if not math.isclose(counted, stated * 1e6, rel_tol=0, abs_tol=0.5):
            raise BenchError(
                f"refusing {where}: architecture {key} has {stated}M parameters in the file but "
                f"{counted / 1e6:.6f}M in {space.name}, so the space does not build the networks "
                "these accuracies belong to")


def checked_architectures(records: dict[str, dict], where: str) -> tuple[SearchSpace, list[Arch]]:
    """The file's architectures validated in their space, every parameter count checked."""
    keys = list(records)
    archs = [to_arch(key, records[key]["net_setting"], where) for key in keys]
    space = space_for(archs[0]["embed_dim"], where)
    try:
        archs = [space.validate(arch) for arch in archs]
    except BenchError as err:
        raise BenchError(f"{where}: {err}") from None
    check_params(space, archs, keys, [records[key]["params"] for key in keys], where)
    return space, archs


def benchmark_name(prefix: str, space: SearchSpace) -> str:
    """`prefix`-tiny, -small or -base, after the AutoFormer space of the file's networks."""
    size = {"autoformer-t": "tiny", "autoformer-s": "small", "autoformer-b": "base"}[space.name]
    return f"{prefix}-{size}"


def import_ood_vit_nas(path: Path) -> Benchmark:
    """A benchmark from one OoD-ViT-NAS architecture file, named ood-vit-nas-<tiny|small|base>,
    or from one ViT-Info-Bench file (vit-info-bench-<tiny|small>): the same layout."""
    path = Path(path)
    records = read_records(path)
    if is_vit_info_bench(records):
        return import_vit_info_bench(path, records)
    keys = list(records)
    space, archs = checked_architectures(records, path.name)
    leaves = [performance_columns(records[key]["performance"]) for key in keys]
    paths = list(dict.fromkeys(p for leaf in leaves for p in leaf))
    if ("Imagenet", "clean") not in paths:
        raise BenchError(f"{path.name}: no architecture has performance.Imagenet.clean")
    columns = {column_name(p): [leaf.get(p) for leaf in leaves] for p in paths}
    meanings = {column_name(p): {
        "meaning": ("ImageNet-1k top-1 accuracy (%)" if p == ("Imagenet", "clean") else
                    f"top-1 accuracy (%) on OoD-ViT-NAS's {' / '.join(p)} evaluation"),
        "dataset": " / ".join(p), "num_classes": 1000, "metric": "top-1 accuracy (%)",
        "training": "inherited supernet", "recipe": INHERITED,
    } for p in paths}
    columns["ref_flops"] = [records[key].get("flops") for key in keys]
    meanings["ref_flops"] = {"meaning": (
        "FLOPs in millions at 224 px, as stated by the file: each multiply-accumulate counted "
        "once, without the relative-position products; 0.45-0.48x this project's flops")}
    name = benchmark_name("ood-vit-nas", space)
    return Benchmark(name, space.name, make_table(archs, columns, path.name), provenance(
        path, name=name, space=space.name, space_kwargs={}, project=OOD_VIT_NAS[0],
        licence=OOD_VIT_NAS[1], columns=meanings, default_target="imagenet_top1"))


# ViT-Info-Bench ----------------------------------------------------------------------------------

INFO_BENCH_DATASETS = {  # key in `performance`: (column, data set, classes)
    "cifar-10": ("cifar10_top1", "CIFAR-10", 10),
    "cifar-100": ("cifar100_top1", "CIFAR-100", 100),
    "miniimagenet": ("miniimagenet_top1", "mini-ImageNet", 100),
    "tiny-imagenet": ("tiny_imagenet_top1", "Tiny-ImageNet", 200),
}
# In both files; the published scores are one per network, and runs against this target compare
# them with this project's (agreement.csv).
INFO_BENCH_TARGET = "cifar100_top1"
INFO_BENCH_TRAINING = ("not stated upstream: the source publishes neither the training recipe nor "
                       "the weights; the architectures are AutoFormer subnets whose `params` count "
                       "the 1000-class ImageNet head")
# The nine published scores: this project's proxy of the same formula (None where there is none)
# and what the score is. The source publishes no code for them; their names, layout and sums are
# those of OoD-ViT-NAS's script for nine training-free scores (lib/training_free), whose code for
# all but synflow and te_nas is public and read here.
INFO_BENCH_PROXIES = {
    "dss": ("dss", "TF-TAS's DSS: nuclear norms of the attention projections' weights and flow "
                   "gradients plus the |W ⊙ ∂R/∂W| of the other Linear layers, R = Σ f(1) with "
                   "θ → |θ| and LayerNorm active, float32"),
    "snip": ("snip", "SNIP: Σ |W ⊙ ∂L/∂W| over the patch embedding and every Linear weight, L the "
                     "cross-entropy on one labelled batch"),
    "grasp": ("grasp", "GraSP: −Σ W ⊙ (H g) over the patch embedding and every Linear weight"),
    "synflow": ("synflow", "SynFlow: Σ |W ⊙ ∂R/∂W| (the sum itself, not its log: the same "
                           "ranking), of the size SynFlow has with LayerNorm active"),
    "AutoProxA": (None, "Auto-Prox's searched proxy AutoProx-A (gradient L1 norms of the attention "
                        "projections plus mean sigmoid gradients of the MLPs, on the SynFlow flow)"
                        ": no proxy of this project"),
    "croze": (None, "CRoZe: weight, gradient and feature cosine similarities between the network "
                    "and an adversarially perturbed copy on FGSM inputs: no proxy of this project"),
    "jacobian": (None, "the squared Frobenius norm of the input-output Jacobian estimated by a "
                       "random projection (Jacobian regularisation), not jacob_cov's eigenvalue "
                       "score of the Jacobian correlation"),
    "meco": (None, "MeCo-opt: Σ over every module of (N/8) λ_min of the correlation of 8 randomly "
                   "chosen token rows; this project's meco correlates all channels of each layer "
                   "once, meco_tokens all N tokens, neither samples"),
    "te_nas": (None, "TE-NAS's score, which combines the NTK condition number with the number of "
                     "linear regions, not the NTK condition number alone that ntk is"),
}


def is_vit_info_bench(records: dict[str, dict]) -> bool:
    """ViT-Info-Bench's layout: accuracies keyed by data set, not OoD-ViT-NAS's Imagenet tree."""
    return not any(isinstance(r["performance"], dict) and "Imagenet" in r["performance"]
                   for r in records.values())


def info_bench_accuracies(records: dict[str, dict], where: str) -> dict[str, list]:
    """One column of accuracies per data set that any record has, in INFO_BENCH_DATASETS order."""
    present = set()
    for key, record in records.items():
        performance = record["performance"]
        unknown = sorted(set(performance) - set(INFO_BENCH_DATASETS)) \
            if isinstance(performance, dict) else performance
        if unknown:
            raise BenchError(f"{where}: architecture {key}: performance must map data sets among "
                             f"{list(INFO_BENCH_DATASETS)} to top-1 accuracies, got {unknown!r:.80}")
        present |= set(performance)
    return {column: [r["performance"].get(dataset) for r in records.values()]
            for dataset, (column, _, _) in INFO_BENCH_DATASETS.items() if dataset in present}


def info_bench_scores(records: dict[str, dict], where: str) -> dict[str, list]:
    """The published scores by name, in the order of their first appearance (None = absent)."""
    for key, record in records.items():
        if not isinstance(record.get("proxy", {}), dict):
            raise BenchError(f"{where}: architecture {key}: proxy must map score names to numbers, "
                             f"got {record['proxy']!r:.80}")
    names = list(dict.fromkeys(name for r in records.values() for name in r.get("proxy", {})))
    columns = [reference_column(name) for name in names]
    clash = next((n for n, c in zip(names, columns) if columns.count(c) > 1 or c == "ref_flops"),
                 None)
    if clash is not None:
        raise BenchError(f"{where}: score {clash!r} would share its column "
                         f"{reference_column(clash)} with another")
    return {name: [r.get("proxy", {}).get(name) for r in records.values()] for name in names}


def info_bench_meanings(columns: dict[str, list], scores: dict[str, list]) -> dict[str, dict]:
    """What each ViT-Info-Bench column means; a published score of a formula this project computes
    names that proxy and the target it is compared on."""
    meanings = {}
    for dataset, (column, description, classes) in INFO_BENCH_DATASETS.items():
        if column in columns:
            meanings[column] = {
                "meaning": f"{description} top-1 accuracy (%) of the AutoFormer subnet, as "
                           "published by ViT-Info-Bench", "dataset": description,
                "num_classes": classes, "metric": "top-1 accuracy (%)",
                "training": "not stated upstream", "recipe": INFO_BENCH_TRAINING}
    for name in scores:
        proxy, what = INFO_BENCH_PROXIES.get(name, (None, "a score without a description"))
        meaning = {"meaning": f"{name} as published by ViT-Info-Bench, one value per network: "
                              f"{what}"}
        if proxy:
            meaning.update(proxy=proxy, target=INFO_BENCH_TARGET)
        meanings[reference_column(name)] = meaning
    meanings["ref_flops"] = {"meaning": (
        "FLOPs in G at 224 px, as stated by the file; not this project's count (0.53-0.59x its "
        "flops on the networks checked), so kept as stated and not checked")}
    return meanings


def reference_column(name: str) -> str:
    """The `ref_` column of a published score: its name in lower case, `_` for other signs."""
    return "ref_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def import_vit_info_bench(path: Path, records: dict[str, dict]) -> Benchmark:
    """A benchmark from one ViT-Info-Bench file: a top-1 column per data set, the published
    scores as `ref_` columns, every parameter count checked."""
    space, archs = checked_architectures(records, path.name)
    columns = info_bench_accuracies(records, path.name)
    if INFO_BENCH_TARGET not in columns:
        raise BenchError(f"{path.name}: no architecture has a cifar-100 accuracy")
    scores = info_bench_scores(records, path.name)
    meanings = info_bench_meanings(columns, scores)
    columns.update({reference_column(name): values for name, values in scores.items()})
    columns["ref_flops"] = [record.get("flops") for record in records.values()]
    name = benchmark_name("vit-info-bench", space)
    return Benchmark(name, space.name, make_table(archs, columns, path.name), provenance(
        path, name=name, space=space.name, space_kwargs={}, project=VIT_INFO_BENCH[0],
        licence=VIT_INFO_BENCH[1], columns=meanings, default_target=INFO_BENCH_TARGET))
