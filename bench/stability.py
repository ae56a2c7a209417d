"""A proxy's own noise floor: Kendall τ between its rankings of the same architectures under
different weight seeds (the input batch fixed) and under different input batches (the weights
fixed). A proxy that ranks architectures differently each time its random weights are redrawn
cannot be trusted to more than that agreement, whatever its τ with accuracy."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape

from bench.metrics import finite_kendall
from bench.report import fmt, prepare_out_dir, rich_table
from bench.runner import RESULTS_DIR, RunConfig, RunResult, run_benchmark
from spaces.errors import BenchError

STABILITY_COLUMNS = ["proxy", "kind", "repeats", "pairs", "kendall_mean", "kendall_min",
                     "kendall_max", "accuracy_kendall"]
# What is redrawn between the runs compared, and the RunConfig field that seeds it.
KINDS = {"weights": "weight_seed", "inputs": "input_seed"}


def stability_seeds(seed: int, repeats: int) -> dict:
    """The sampling seed and the `repeats` weight and input seeds: seed, seed + 1, …; the first
    of each is the run seed, so the base run is the plain run of that seed (and its cache rows)."""
    if repeats < 2:
        raise BenchError(f"--repeats must be at least 2 (a pair of seeds to compare), not {repeats}")
    return {"sampling": seed, "weights": [seed + k for k in range(repeats)],
            "inputs": [seed + k for k in range(repeats)]}


def stability_out_dir(config: RunConfig, out: str | None) -> Path:
    """Where the study is written: --out, else results/stability/<time>-<config hash>."""
    return Path(out) if out else RESULTS_DIR / "stability" / (
        time.strftime("%Y%m%d-%H%M%S") + "-" + config.digest())


def measure_stability(config: RunConfig, repeats: int,
                      console: Console | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per (proxy, kind) of STABILITY_COLUMNS, and the base run's info. Every run is a
    `run_benchmark` of `config` with one weight or input seed changed (the cache serves what an
    earlier study or run computed); a weight run keeps the input seed at the run seed and an
    input run the weight seed."""
    console = console or Console(quiet=True)
    seeds = stability_seeds(config.seed, repeats)
    base_config = config.replace(weight_seed=config.seed, input_seed=config.seed, out=None)
    base = run_benchmark(base_config, console)
    runs = {}
    for kind, field in KINDS.items():
        runs[kind] = [base]
        for value in seeds[kind][1:]:
            console.print(f"{kind} seed {value} of {seeds[kind]}")
            runs[kind].append(run_benchmark(base_config.replace(**{field: value}), console))
    accuracy = base.correlations.set_index("proxy")["kendall"] if base.info["target"] else None
    rows = [stability_row(proxy, kind, runs[kind], accuracy)
            for proxy in dict.fromkeys(base.scores["proxy"]) for kind in KINDS]
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS), base.info


def stability_row(proxy: str, kind: str, results: list[RunResult],
                  accuracy: pd.Series | None) -> dict:
    """Kendall τ between the proxy's scores in each pair of the runs: mean, min and max."""
    rankings = [result.scores[result.scores["proxy"] == proxy].set_index("arch_id")["score"]
                for result in results]
    taus = [finite_kendall(a.to_numpy(), b.loc[a.index].to_numpy())
            for a, b in itertools.combinations(rankings, 2)]
    finite = [tau for tau in taus if np.isfinite(tau)]
    nan = float("nan")
    return {"proxy": proxy, "kind": kind, "repeats": len(results), "pairs": len(taus),
            "kendall_mean": float(np.mean(finite)) if finite else nan,
            "kendall_min": min(finite, default=nan), "kendall_max": max(finite, default=nan),
            "accuracy_kendall": nan if accuracy is None else float(accuracy[proxy])}


def write_stability(table: pd.DataFrame, info: dict, config: RunConfig, repeats: int,
                    out: Path) -> None:
    """stability.csv and stability.json (the configuration, the seeds, the base run's setting and
    the rows)."""
    out = prepare_out_dir(out)
    table.to_csv(out / "stability.csv", index=False)
    record = {"kind": "stability", "config": {**config.to_dict(), "repeats": repeats},
              "seeds": stability_seeds(config.seed, repeats), "info": info,
              "rows": json.loads(table.to_json(orient="records"))}
    (out / "stability.json").write_text(json.dumps(record, indent=2) + "\n")


def print_stability(table: pd.DataFrame, info: dict, console: Console) -> None:
    """One line per proxy: τ with accuracy, then τ between seeds of the weights and of the inputs."""
    setting = info["resolved"]
    truth = (f"ground truth '{info['target']}' of {info['benchmark'].get('benchmark')}"
             if info["target"] else "no ground truth")
    # Escaped: rich would read "[min, max]" as a style tag and drop it.
    title = escape(f"{info['n_architectures']} architectures of {setting['space']}, {truth}; "
                   f"{setting['batch_size']} {setting['inputs']} images of {setting['img_size']} "
                   "px\nKendall τ between a proxy's rankings under each pair of seeds: "
                   "mean [min, max]")
    by_kind = {kind: part.set_index("proxy") for kind, part in table.groupby("kind")}
    rows = []
    for proxy in dict.fromkeys(table["proxy"]):
        cells = [f"{fmt(row['kendall_mean'])} [{fmt(row['kendall_min'])}, "
                 f"{fmt(row['kendall_max'])}]"
                 for row in (by_kind[kind].loc[proxy] for kind in KINDS)]
        rows.append((proxy, fmt(by_kind["weights"].loc[proxy, "accuracy_kendall"]), *cells))
    repeats = int(table["repeats"].iloc[0])
    labels = ("proxy", "τ with accuracy", f"τ across {repeats} weight seeds",
              f"τ across {repeats} input batches")
    console.print(rich_table(title, labels, rows))
