"""OoD-ViT-NAS (Ho, Vo et al., NeurIPS 2024; GitHub vovantuan1999a/OoD-ViT-NAS,
architecture_infors/1k_Vit_Architecture_from_AutoFM_{tiny,small,base}.json): 1,000 AutoFormer
subnets per file, evaluated with weights inherited from the AutoFormer supernets.

The file is a JSON object keyed by id; each value is
`{"net_setting": {"layer_num": L, "mlp_ratio": [L], "num_heads": [L], "embed_dim": [L, all equal]},
"performance": {"Imagenet": {"clean": top-1, ...}}, "params": millions, "flops": millions}`.
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
from spaces.importers.sources import OOD_VIT_NAS, provenance

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


def import_ood_vit_nas(path: Path) -> Benchmark:
    """A benchmark from one OoD-ViT-NAS architecture file, named ood-vit-nas-<tiny|small|base>."""
    path = Path(path)
    records = read_records(path)
    keys = list(records)
    archs = [to_arch(key, records[key]["net_setting"], path.name) for key in keys]
    space = space_for(archs[0]["embed_dim"], path.name)
    try:
        archs = [space.validate(arch) for arch in archs]
    except BenchError as err:
        raise BenchError(f"{path.name}: {err}") from None
    check_params(space, archs, keys, [records[key]["params"] for key in keys], path.name)
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
    size = {"autoformer-t": "tiny", "autoformer-s": "small", "autoformer-b": "base"}[space.name]
    name = f"ood-vit-nas-{size}"
    return Benchmark(name, space.name, make_table(archs, columns, path.name), provenance(
        path, name=name, space=space.name, space_kwargs={}, project=OOD_VIT_NAS[0],
        licence=OOD_VIT_NAS[1], columns=meanings, default_target="imagenet_top1"))
