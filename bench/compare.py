"""Several run directories side by side: one row per run (its space, ground truth and inputs), one
column per proxy (Kendall τ with its interval, or the partial τ given params or FLOPs), so a proxy
can be read across CNN and ViT spaces, and optionally paired differences τ(a) − τ(b) with a
bootstrap interval over the run's architectures (does a beat b on this benchmark?)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.metrics import SIZE_MEASURES, paired_difference
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


def parse_difference(text: str) -> tuple[str, str]:
    """'a-b' -> (a, b): proxy names never contain '-'."""
    first, _, second = text.partition("-")
    if not first or not second or "-" in second:
        raise BenchError(f"a difference is two proxy names joined by '-' (e.g. vintk-ntk), "
                         f"not {text!r}")
    return first, second


def compare_runs(run_dirs: list[Path], proxies: list[str],
                 differences: list[tuple[str, str]] = (), partial: str | None = None) -> pd.DataFrame:
    """One row per run with ground truth: `run`, then per proxy its Kendall τ (with `partial`,
    its partial τ given params or flops) and interval (`<proxy>`, `<proxy>_lo`, `<proxy>_hi`,
    NaN where the run lacks it), per pair (a, b) the paired difference of τ `a-b` with `a-b_lo`,
    `a-b_hi`, the proxy of the run with the highest of the values shown and the noise ceiling
    where the benchmark has one."""
    if partial is not None and partial not in SIZE_MEASURES:
        raise BenchError(f"--partial is one of {', '.join(SIZE_MEASURES)}, not {partial!r}")
    metric = "kendall" if partial is None else f"partial_{partial}"
    rows, seen = [], set()
    for run_dir in run_dirs:
        info, correlations = load_run(Path(run_dir))
        if not info.get("target"):
            continue
        if metric not in correlations:
            raise BenchError(f"{run_dir} has no partial τ (its correlations.csv is older); "
                             f"`bench run --config {Path(run_dir) / 'config.json'}` rewrites it "
                             "from the cached scores")
        by_proxy = correlations.set_index("proxy")
        seen |= set(by_proxy.index)
        row = {"run": describe_run(info)}
        for proxy in proxies:
            for suffix in ("", "_lo", "_hi"):
                row[proxy + suffix] = (float(by_proxy.loc[proxy, metric + suffix])
                                       if proxy in by_proxy.index else math.nan)
        if differences:
            row.update(paired_differences(Path(run_dir), differences, info["resolved"]["seed"]))
        best = by_proxy[metric].dropna()
        row["best"] = f"{best.idxmax()} ({best.max():.3f})" if len(best) else ""
        row["noise_ceiling"] = info["benchmark"].get("noise_ceiling_kendall", math.nan)
        rows.append(row)
    if not rows:
        raise BenchError("none of the given run directories has a ground truth to compare")
    missing = [p for p in [*proxies, *(p for pair in differences for p in pair)] if p not in seen]
    if missing:
        raise BenchError(f"proxy {missing[0]!r} is in none of the runs; they have "
                         f"{', '.join(sorted(seen))}")
    return pd.DataFrame(rows)


def paired_differences(run_dir: Path, differences: list[tuple[str, str]], seed: int) -> dict:
    """τ(a) − τ(b) and its paired bootstrap interval for each pair, from the run's scores."""
    scores = pd.read_csv(run_dir / "scores.csv")
    wide = scores.pivot(index="arch", columns="proxy", values="score")
    target = scores.drop_duplicates("arch").set_index("arch")["target"].loc[wide.index]
    row = {}
    for first, second in differences:
        name = f"{first}-{second}"
        if first in wide and second in wide:
            delta, lo, hi = paired_difference(wide[first], wide[second], target, seed=seed)
        else:
            delta = lo = hi = math.nan
        row.update({name: delta, f"{name}_lo": lo, f"{name}_hi": hi})
    return row


def cells(table: pd.DataFrame, proxies: list[str],
          differences: list[tuple[str, str]] = ()) -> tuple[list[str], list[list[str]]]:
    """Column labels and formatted cells: τ [lo, hi] per proxy, Δτ [lo, hi] per difference."""
    def tau(row, column):
        if math.isnan(row[column]):
            return "—"
        return f"{row[column]:.3f} [{row[column + '_lo']:.2f}, {row[column + '_hi']:.2f}]"

    names = [f"{a}-{b}" for a, b in differences]
    labels = ["ground truth", *proxies, *(f"Δτ {a} − {b}" for a, b in differences), "best proxy",
              "noise ceiling"]
    body = [[row["run"], *(tau(row, column) for column in [*proxies, *names]), row["best"],
             "—" if math.isnan(row["noise_ceiling"]) else f"{row['noise_ceiling']:.3f}"]
            for row in table.to_dict("records")]
    return labels, body
