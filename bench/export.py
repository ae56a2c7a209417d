"""A run's scores in other tools' layouts: NASLib's zero-cost file (NAS-Bench-Suite-Zero) and a
wide CSV table, one row per architecture.

NASLib's layout is `{dataset: {arch: {proxy: {"score": s, "time": seconds}, "val_accuracy": acc}}}`,
exactly what spaces/importers/nb201.py reads: on NAS-Bench-201 the data set is NASLib's name of
the run's target (cifar10, cifar100, ImageNet16-120), the architecture its op-index tuple
"(0, 2, 3, 2, 3, 1)" and each proxy NASLib's name where NASLib has the same one (jacov, nwot, ...).
On any other space the architecture key is the canonical JSON of the architecture (the `arch`
column of scores.csv), which no NASLib search space reads but which names the network exactly,
the data set is the target's column name, and a run without ground truth is filed under its
space's name with no `val_accuracy`. A failed score is left out (NASLib's loaders skip a proxy an
architecture lacks; NaN is not JSON).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.compare import load_run
from spaces.errors import BenchError, unknown_name
from spaces.importers.nb201 import DATASETS, SAME_PROXY
from spaces.nb201 import to_naslib_indices

FORMATS = ("naslib", "csv")
DEFAULT_NAMES = {"naslib": "naslib_zc.json", "csv": "scores_wide.csv"}
NB201_SPACE = "nb201"
# This project's proxy name -> NASLib's, for the proxies both compute.
NASLIB_NAME = {ours: theirs for theirs, ours in SAME_PROXY.items()}
# NB201 target column -> NASLib's data set key.
NASLIB_DATASET = {f"{prefix}_val_acc": key for key, (prefix, *_) in DATASETS.items()}


def load_scores(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    """A run directory's config.json and scores.csv, or a BenchError naming what is missing."""
    info, _ = load_run(run_dir)
    path = run_dir / "scores.csv"
    if not path.is_file():
        raise BenchError(f"{run_dir} has no scores.csv; it is not a complete run directory")
    return info, pd.read_csv(path)


def wide_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture in the run's order: arch_id, arch, target, one column per proxy."""
    archs = scores.drop_duplicates("arch").set_index("arch")
    wide = scores.pivot(index="arch", columns="proxy", values="score")
    proxies = list(dict.fromkeys(scores["proxy"]))
    table = pd.DataFrame({"arch_id": archs["arch_id"],
                          "target": archs["target"] if "target" in archs else math.nan})
    table = table.join(wide[proxies]).reset_index()
    return table[["arch_id", "arch", "target", *proxies]]


def naslib_layout(info: dict, scores: pd.DataFrame) -> dict:
    """The run in NASLib's zero-cost layout (see the module docstring for the keys)."""
    space = info["resolved"]["space"]
    target = info.get("target")
    dataset = NASLIB_DATASET.get(target, target) if space == NB201_SPACE else target
    entries: dict[str, dict] = {}
    for row in scores.itertuples(index=False):
        key = arch_key(space, row.arch)
        if key not in entries:
            entries[key] = {"val_accuracy": float(row.target)} if target else {}
        if not pd.isna(row.score):
            entries[key][NASLIB_NAME.get(row.proxy, row.proxy)] = {"score": float(row.score),
                                                                  "time": float(row.seconds)}
    return {dataset or space: entries}


def arch_key(space: str, arch_json: str) -> str:
    """NASLib's op-index string on NAS-Bench-201, the canonical JSON elsewhere."""
    if space == NB201_SPACE:
        return str(to_naslib_indices(json.loads(arch_json)))
    return arch_json


def export_run(run_dir: str | Path, format: str, out: str | Path | None = None) -> Path:
    """Write the run's scores in `format` (naslib or csv) to `out`, by default beside them in
    the run directory; return the path written."""
    if format not in FORMATS:
        raise unknown_name("export format", format, FORMATS)
    run_dir = Path(run_dir)
    info, scores = load_scores(run_dir)
    path = Path(out) if out else run_dir / DEFAULT_NAMES[format]
    try:
        if format == "naslib":
            path.write_text(json.dumps(naslib_layout(info, scores), indent=1) + "\n")
        else:
            wide_scores(scores).to_csv(path, index=False)
    except OSError as err:
        raise BenchError(f"cannot write {path}: {err.strerror or err}") from None
    return path
