"""From the per-training table of bench/groundtruth.py to a benchmark: one row per architecture
in the project's benchmark format (spaces/benchmarks.py), and the figures that say how good it is.

The quality figures follow the issue that defines the embedded benchmark: the spread of accuracy
across architectures, the seed noise, their ratio (at least 3 for a useful benchmark), the noise
ceiling (Kendall tau between two seeds' accuracies on the repeated architectures: no proxy can be
expected to rank better), and the Kendall tau of parameters and FLOPs, the baselines to beat.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import pandas as pd
from scipy import stats

from spaces.benchmarks import Benchmark, check_benchmark, sha256_of
from spaces.errors import BenchError

SEED_COLUMN = "acc_seed{}"


def read_trainings(path: Path | str) -> pd.DataFrame:
    """The per-training table (one row per architecture and seed) as a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"no training table at {path} (bench groundtruth train writes it)")
    rows = pd.read_csv(path, dtype={"arch_id": str, "arch": str})
    if rows.duplicated(["arch_id", "seed"]).any():
        raise BenchError(f"{path}: an (architecture, seed) pair appears twice")
    return rows


def aggregate_trainings(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture, in order of first training: mean accuracy over its seeds, the
    accuracy of each seed (empty where not trained), the number of seeds, params and FLOPs."""
    per_seed = rows.pivot(index="arch_id", columns="seed", values="accuracy")
    per_seed.columns = [SEED_COLUMN.format(seed) for seed in per_seed.columns]
    first = rows.drop_duplicates("arch_id").set_index("arch_id")
    table = pd.DataFrame({
        "arch": first["arch"],
        "accuracy": per_seed.mean(axis=1).round(4),
        **{column: per_seed[column] for column in per_seed.columns},
        "n_seeds": per_seed.notna().sum(axis=1),
        "params": first["params"],
        "flops": first["flops"],
    }, index=first.index)
    return table.reset_index()


def benchmark_provenance(name: str, training_provenance: dict, table: pd.DataFrame,
                         source_path: Path) -> dict:
    """Provenance in the benchmark format: the training provenance plus what each column means."""
    recipe = training_provenance["recipe"]
    accuracy = {"dataset": training_provenance["dataset"], "num_classes": 10,
                "metric": "top-1 accuracy (%) on the 10,000 test images",
                "training": "from scratch", "recipe": recipe}
    columns = {
        "accuracy": {**accuracy, "meaning": "mean top-1 test accuracy (%) over the trained seeds"},
        **{column: {**accuracy, "meaning": f"top-1 test accuracy (%) with training seed "
                                           f"{column.removeprefix('acc_seed')}"}
           for column in table.columns if column.startswith("acc_seed")},
        "n_seeds": {"meaning": "number of seeds trained (accuracy averages them)"},
        "params": {"meaning": "trainable parameters"},
        "flops": {"meaning": "forward FLOPs of one 28x28 image (a multiply-accumulate is 2)"},
    }
    return {
        **training_provenance,
        "name": name,
        "source": f"trained by this project with `bench groundtruth train`; raw per-training "
                  f"table {source_path.name}",
        "url": None,
        "commit": None,
        "licence": f"{training_provenance['dataset_licence']} (Fashion-MNIST); the table is the "
                   "project's own work, under the project's licence",
        "sha256": sha256_of(source_path),
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "columns": columns,
        "default_target": "accuracy",
    }


def export_benchmark(trainings_path: Path | str, benchmark_path: Path | str) -> Benchmark:
    """Write the per-architecture benchmark (NAME.csv and NAME.json) from the per-training table
    and its provenance (the .json beside it); NAME is the benchmark file's stem."""
    trainings_path, benchmark_path = Path(trainings_path), Path(benchmark_path)
    training_provenance = json.loads(trainings_path.with_suffix(".json").read_text())
    rows = read_trainings(trainings_path)
    table = aggregate_trainings(rows)
    name = benchmark_path.with_suffix("").name
    provenance = {**benchmark_provenance(name, training_provenance, table, trainings_path),
                  "quality": benchmark_quality(rows)}
    bench = check_benchmark(Benchmark(name, training_provenance["space"], table, provenance),
                            builds=0)
    benchmark_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path = benchmark_path.with_suffix(".csv")
    json_path = benchmark_path.with_suffix(".json")
    for path, text in ((csv_path, table.to_csv(index=False)),
                       (json_path, json.dumps(provenance, indent=2) + "\n")):
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        partial.replace(path)
    return bench


def kendall_tau(a, b) -> float:
    """Kendall tau-b (scipy), the rank agreement the project reports everywhere."""
    return float(stats.kendalltau(a, b).statistic)


def benchmark_quality(rows: pd.DataFrame) -> dict[str, float]:
    """The benchmark's quality figures from its per-training rows, by name.

    spread: std (ddof=1) across architectures of the mean accuracy; seed_std: mean over the
    repeated architectures of the std (ddof=1) of their seeds' accuracies; noise_ceiling_i_j:
    Kendall tau between seed i's and seed j's accuracies on the architectures trained with both.
    """
    table = aggregate_trainings(rows)
    seeds = sorted(rows["seed"].unique())
    repeated = table[table["n_seeds"] >= 2]
    per_arch_std = repeated[[SEED_COLUMN.format(s) for s in seeds]].std(axis=1, ddof=1)
    figures = {
        "architectures": float(len(table)),
        "trainings": float(len(rows)),
        "repeated architectures": float(len(repeated)),
        "mean accuracy": float(table["accuracy"].mean()),
        "min accuracy": float(table["accuracy"].min()),
        "max accuracy": float(table["accuracy"].max()),
        "spread (std across architectures)": float(table["accuracy"].std(ddof=1)),
        "seed std (mean per architecture)": float(per_arch_std.mean()),
    }
    figures["spread / seed std"] = (figures["spread (std across architectures)"]
                                    / figures["seed std (mean per architecture)"])
    for i, j in combinations(seeds, 2):
        both = table[[SEED_COLUMN.format(i), SEED_COLUMN.format(j)]].dropna()
        figures[f"noise ceiling tau(seed {i}, seed {j})"] = kendall_tau(*both.T.values)
    ceilings = [value for key, value in figures.items() if key.startswith("noise ceiling")]
    if ceilings:  # the figure that `bench run` prints beside the proxies' tau
        figures["noise_ceiling_kendall"] = float(sum(ceilings) / len(ceilings))
    figures["tau(params, accuracy)"] = kendall_tau(table["params"], table["accuracy"])
    figures["tau(flops, accuracy)"] = kendall_tau(table["flops"], table["accuracy"])
    return figures
