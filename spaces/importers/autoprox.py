"""Auto-Prox's ground truth (Wei et al., AAAI 2024; GitHub lliai/Auto-Prox-AAAI24, gt_results/):
`gt_autoformer.pth`, `gt_autoformer_2.pth` (AutoFormer-T subnets, space `autoprox-t`) and
`gt_pit.pth` (PiT subnets, space `pit-t`).

Each file is a torch archive holding a list of records `{"arch": {...}, "<column>": accuracy}`,
loaded with `torch.load(weights_only=True)` only, so a file cannot run code. The seven accuracy
columns are different ground truths and stay apart: `*_base_acc` trained from scratch, `*_kd_acc`
trained with distillation, `imagenet_super_acc` with weights inherited from a supernet. A None
accuracy is a missing value; a column that is None for every architecture of a file is not imported
(gt_autoformer_2 has no *_base_acc), and the provenance notes it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from spaces.base import get_space
from spaces.benchmarks import Benchmark, make_table
from spaces.errors import BenchError, first_line
from spaces.importers.sources import AUTOPROX, provenance

SCRATCH = ("trained from scratch: 300 epochs, AdamW, cosine schedule, 224 px, patch 16 "
           "(Auto-Prox's recipe)")
DISTILLED = "the same recipe with knowledge distillation from a teacher network"
DATASETS = {  # column prefix: (data set, classes)
    "c100": ("CIFAR-100", 100),
    "flower": ("Oxford Flowers-102", 102),
    "chaoyang": ("Chaoyang (colon pathology)", 4),
}


def column_meanings() -> dict[str, dict]:
    """What each of Auto-Prox's accuracy columns measures."""
    columns = {}
    for prefix, (dataset, classes) in DATASETS.items():
        for kind, training, how, recipe in (("base", "from scratch", "from scratch", SCRATCH),
                                            ("kd", "distillation", "with distillation", DISTILLED)):
            columns[f"{prefix}_{kind}_acc"] = {
                "meaning": f"{dataset} top-1 accuracy (%) of the network trained {how}",
                "dataset": dataset, "num_classes": classes, "metric": "top-1 accuracy (%)",
                "training": training, "recipe": recipe,
            }
    columns["imagenet_super_acc"] = {
        "meaning": "ImageNet-1k top-1 accuracy (%) of the subnet with weights inherited from an "
                   "AutoFormer-T supernet, without retraining",
        "dataset": "ImageNet-1k", "num_classes": 1000, "metric": "top-1 accuracy (%)",
        "training": "inherited supernet",
        "recipe": "weights inherited from the AutoFormer-T supernet (Chen et al. ICCV 2021)",
    }
    return columns


COLUMNS = column_meanings()
ARCH_KEYS = {
    "autoprox-t": {"hidden_dim", "depth", "mlp_ratio", "num_heads"},
    "pit-t": {"base_dim", "mlp_ratio", "depth", "num_heads"},
}


def load_records(path: Path) -> list[dict]:
    """The file's list of records, read without running any code from it."""
    try:
        records = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # the unpickler fails on foreign bytes in many ways (KeyError, ...)
        raise BenchError(f"{path.name}: not an Auto-Prox ground-truth file readable with "
                         f"torch.load(weights_only=True) ({load_failure(err)})") from None
    if not isinstance(records, list) or not records:
        raise BenchError(f"{path.name}: expected a non-empty list of records, "
                         f"got {type(records).__name__}")
    for row, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("arch"), dict):
            raise BenchError(f"{path.name}: record {row} is not a dict with an 'arch' dict")
        unknown = sorted(set(record) - {"arch"} - set(COLUMNS), key=str)
        if unknown:
            raise BenchError(f"{path.name}: record {row} has unknown fields {unknown}; "
                             f"known: {sorted(COLUMNS)}")
    return records


def load_failure(err: Exception) -> str:
    """Why torch.load failed, in a few words: the unpickler's own reason when it gives one (its
    message opens with a long paragraph on the weights_only default), else the first line."""
    text = str(err).strip()
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    line = first_line(text)
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def space_of(path: Path, record: dict) -> str:
    keys = set(record["arch"])
    for space, expected in ARCH_KEYS.items():
        if keys == expected:
            return space
    raise BenchError(f"{path.name}: architecture keys {sorted(keys, key=str)} are neither Auto-Prox's "
                     f"AutoFormer {sorted(ARCH_KEYS['autoprox-t'])} nor its PiT "
                     f"{sorted(ARCH_KEYS['pit-t'])}")


def to_space_arch(arch: dict) -> dict:
    """Auto-Prox's arch dict in this project's names (its AutoFormer `hidden_dim` is `embed_dim`)."""
    return {("embed_dim" if key == "hidden_dim" else key): value for key, value in arch.items()}


def import_autoprox(path: Path) -> Benchmark:
    """A benchmark from one of Auto-Prox's gt_*.pth files, named autoprox-<file stem>."""
    path = Path(path)
    records = load_records(path)
    space_name = space_of(path, records[0])
    space = get_space(space_name)
    archs = []
    for row, record in enumerate(records):
        if set(record["arch"]) != ARCH_KEYS[space_name]:
            raise BenchError(f"{path.name}: record {row} has architecture keys "
                             f"{sorted(record['arch'], key=str)}, unlike record 0")
        try:
            archs.append(space.validate(to_space_arch(record["arch"])))
        except BenchError as err:
            raise BenchError(f"{path.name}: record {row}: {err}") from None
    present = [c for c in COLUMNS if any(r.get(c) is not None for r in records)]
    absent = [c for c in COLUMNS if c not in present and any(c in r for r in records)]
    if not present:
        raise BenchError(f"{path.name}: no record has an accuracy")
    table = make_table(archs, {c: [r.get(c) for r in records] for c in present}, path.name)
    default = present[0]
    name = "autoprox-" + path.stem.removeprefix("gt_").replace("_", "-")
    notes = (f"columns {absent} are None for every architecture in the source and were not "
             "imported" if absent else None)
    return Benchmark(name, space_name, table, provenance(
        path, name=name, space=space_name,
        space_kwargs={"num_classes": COLUMNS[default]["num_classes"]},
        project=AUTOPROX[0], licence=AUTOPROX[1],
        columns={c: COLUMNS[c] for c in present}, default_target=default, notes=notes))
