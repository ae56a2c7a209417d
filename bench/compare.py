"""Several run directories side by side: one row per run (its space, ground truth and inputs), one
column per proxy (Kendall τ with its interval), so a proxy can be read across CNN and ViT spaces."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from spaces.errors import BenchError


def load_run(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    """A run directory's config.json and correlations.csv, or a BenchError naming what is missing."""
    config_path, correlations_path = run_dir / "config.json", run_dir / "correlations.csv"
    if not config_path.is_file() or not correlations_path.is_file():
        raise BenchError(f"{run_dir} is not a run directory (it needs config.json and "
                         "correlations.csv, as `bench run` writes them)")
    return json.loads(config_path.read_text()), pd.read_csv(correlations_path)


def describe_run(info: dict) -> str:
    """What a run measured against: benchmark, target, architectures, inputs and resolution."""
    setting = info["resolved"]
    truth = (f"{info['benchmark'].get('benchmark')} {info['target']}" if info.get("target")
             else f"{setting['space']} (no ground truth)")
    return (f"{truth} ({info['n_architectures']} archs, {setting['inputs']} "
            f"{setting['img_size']} px)")


def compare_runs(run_dirs: list[Path], proxies: list[str]) -> pd.DataFrame:
    """One row per run with ground truth: `run`, then per proxy its Kendall τ and interval
    (`<proxy>`, `<proxy>_lo`, `<proxy>_hi`, NaN where the run lacks it), the best proxy of the
    run and the noise ceiling where the benchmark has one."""
    rows, seen = [], set()
    for run_dir in run_dirs:
        info, correlations = load_run(Path(run_dir))
        if not info.get("target"):
            continue
        by_proxy = correlations.set_index("proxy")
        seen |= set(by_proxy.index)
        row = {"run": describe_run(info)}
        for proxy in proxies:
            for suffix, column in (("", "kendall"), ("_lo", "kendall_lo"), ("_hi", "kendall_hi")):
                row[proxy + suffix] = (float(by_proxy.loc[proxy, column]) if proxy in by_proxy.index
                                       else math.nan)
        best = by_proxy["kendall"].dropna()
        row["best"] = f"{best.idxmax()} ({best.max():.3f})" if len(best) else ""
        row["noise_ceiling"] = info["benchmark"].get("noise_ceiling_kendall", math.nan)
        rows.append(row)
    if not rows:
        raise BenchError("none of the given run directories has a ground truth to compare")
    missing = [proxy for proxy in proxies if proxy not in seen]
    if missing:
        raise BenchError(f"proxy {missing[0]!r} is in none of the runs; they have "
                         f"{', '.join(sorted(seen))}")
    return pd.DataFrame(rows)


def cells(table: pd.DataFrame, proxies: list[str]) -> tuple[list[str], list[list[str]]]:
    """Column labels and formatted cells: τ [lo, hi] per proxy."""
    def tau(row, proxy):
        if math.isnan(row[proxy]):
            return "—"
        return f"{row[proxy]:.3f} [{row[proxy + '_lo']:.2f}, {row[proxy + '_hi']:.2f}]"

    labels = ["ground truth", *proxies, "best proxy", "noise ceiling"]
    body = [[row["run"], *(tau(row, p) for p in proxies), row["best"],
             "—" if math.isnan(row["noise_ceiling"]) else f"{row['noise_ceiling']:.3f}"]
            for row in table.to_dict("records")]
    return labels, body
