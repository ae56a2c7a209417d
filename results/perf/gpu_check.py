"""The numerics and the summary of results/perf/gpu_check.sh (see its header for the settings).

`numerics`: every registered proxy on N architectures of a space, four times each:
- twice through the harness on the device (`build_model` there, weights drawn by the device's
  generator, then `evaluate` as `bench run` does): is the same score bit-identical?
- once on the CPU and once on the device with the same weights: the network is built once on the
  CPU and a copy moved to the device, so that the comparison measures the numerics of the two
  devices, not two draws of random weights (CUDA's generator draws other weights than the CPU's).
Warnings that an op has no deterministic implementation are recorded per proxy (the device runs
with `warn_only`, bench/device.py). The CPU pass runs in the same process, so on a CUDA check
under torch's deterministic mode too, which on a CPU at most serialises a few accumulations.
Writes numerics.csv (one row per architecture and proxy) and agreement.csv (per proxy: Kendall τ
between the CPU and device scores over the architectures, the median and largest relative
difference, whether every repeat was identical).

`summary`: summary.json, summary.md and gpu_check.png/pdf from the perf tables, the numerics and
the search, with the search's throughput extrapolated to 8,000 candidates.

Usage: python results/perf/gpu_check.py numerics --device D --space S --img-size P
           --batch-size B --n N --out DIR
       python results/perf/gpu_check.py summary --device D --out DIR --search-seconds S
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.device import device_settings
from bench.figures import save
from bench.inputs import make_batch
from bench.metrics import finite_kendall
from bench.perf import TRAIN_STEP
from bench.report import markdown_table
from bench.runner import architecture_seed, build_model, evaluate, pick_device
from proxies.base import all_proxy_names, get_proxy, shared_work
from spaces.base import arch_id, get_space

INPUT_KIND = "pink"
SEED = 0
EXTRAPOLATE_TO = 8000
TEXT_COLUMNS = ("method", "error", "nondeterministic_ops")
# Where the figure puts a relative difference of exactly 0 (log axis).
IDENTICAL = 1e-17
NONDETERMINISM = "deterministic"  # in every warning torch gives for a non-deterministic op


def score_suite(model, batch, seed: int) -> dict[str, dict]:
    """Every proxy on `model` as the runner scores it (shared work, seeded calls), with the
    non-determinism warnings each call raised."""
    results = {}
    with shared_work():
        for name in all_proxy_names():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = evaluate(get_proxy(name), model, batch, seed)
            results[name] = {"score": result.score, "error": result.error,
                             "warnings": sorted({str(w.message).split(".")[0] for w in caught
                                                 if NONDETERMINISM in str(w.message)})}
    return results


def numerics(device_name: str, space_name: str, img_size: int, batch_size: int, n: int,
             out: Path) -> None:
    device = pick_device(device_name)
    space = get_space(space_name)
    batch = make_batch(INPUT_KIND, batch_size, img_size, space.in_chans, space.num_classes, SEED)
    on_device = batch.to(device)
    rows = []
    for index, arch in enumerate(space.sample_many(n, SEED)):
        seed = architecture_seed(SEED, arch)
        first, second = (score_suite(build_model(space, arch, img_size, seed, device), on_device,
                                     seed) for _ in range(2))
        cpu_model = build_model(space, arch, img_size, seed, "cpu")
        moved = cpu_model if isinstance(cpu_model, Exception) else copy.deepcopy(cpu_model).to(device)
        cpu, same_weights = score_suite(cpu_model, batch, seed), score_suite(moved, on_device, seed)
        for name in cpu:
            rows.append({
                "arch_id": arch_id(arch), "proxy": name,
                "device_score": first[name]["score"], "device_repeat": second[name]["score"],
                "repeat_identical": first[name]["score"] == second[name]["score"]
                and first[name]["error"] == second[name]["error"],
                "cpu_score": cpu[name]["score"], "same_weights_score": same_weights[name]["score"],
                "relative_difference": relative_difference(same_weights[name]["score"],
                                                           cpu[name]["score"]),
                "error": "; ".join(filter(None, dict.fromkeys([first[name]["error"],
                                                               cpu[name]["error"]]))),
                "nondeterministic_ops": "; ".join(first[name]["warnings"]
                                                  + same_weights[name]["warnings"]),
            })
        print(f"architecture {index + 1}/{n} scored ({len(cpu)} proxies, 4 passes)", flush=True)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "numerics.csv", index=False)
    agreement(table).to_csv(out / "agreement.csv", index=False)
    setting = {"device": device.type, "space": space_name, "img_size": img_size,
               "batch_size": batch_size, "n": n, "inputs": INPUT_KIND, "seed": SEED,
               "device_settings": device_settings(device)}
    (out / "numerics.json").write_text(json.dumps(setting, indent=2) + "\n")


def relative_difference(value, reference) -> float:
    """|value − reference| / |reference| (0 where both are 0; NaN where either failed)."""
    if value is None or reference is None:
        return math.nan
    if value == reference:
        return 0.0
    return abs(value - reference) / abs(reference) if reference else math.inf


def agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Per proxy: τ(CPU, device) over the architectures, relative differences, repeats."""
    rows = []
    for name, group in table.groupby("proxy", sort=False):
        cpu, device = group["cpu_score"].astype(float), group["same_weights_score"].astype(float)
        differences = group["relative_difference"].astype(float)
        rows.append({"proxy": name, "n": int((np.isfinite(cpu) & np.isfinite(device)).sum()),
                     "kendall_cpu_device": finite_kendall(cpu, device),
                     "median_relative_difference": differences.median(),
                     "max_relative_difference": differences.max(),
                     "repeats_identical": bool(group["repeat_identical"].all()),
                     "nondeterministic_ops": "; ".join(sorted(set(
                         filter(None, "; ".join(group["nondeterministic_ops"].fillna(""))
                                .split("; ")))))})
    return pd.DataFrame(rows)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV written here: an empty number is NaN, an empty text (TEXT_COLUMNS) stays empty."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    text = [column for column in TEXT_COLUMNS if column in table]
    return table.astype({column: object for column in text}).fillna({c: "" for c in text})


def perf_rows(out: Path) -> pd.DataFrame:
    """The measured calls of the run's perf tables, one row per (setting, call)."""
    tables = [read_table(path).assign(setting=path.parent.name.removeprefix("perf-"))
              for path in sorted(out.glob("perf-*/perf.csv"))]
    table = pd.concat(tables, ignore_index=True)
    return table[table["repeats"] > 0]


def search_throughput(out: Path, wall_seconds: float) -> dict:
    """The search's candidates per second (wall clock of the whole command, and scoring alone)
    and the device-hours of 8,000 candidates at each rate."""
    result = json.loads((out / "search" / "search.json").read_text())
    cost = result["cost"]
    scored = cost["candidates_scored"]
    return {"space": result["space"], "proxy": result["proxy"], "candidates": scored,
            "img_size": result["setting"]["resolved"]["img_size"],
            "batch_size": result["setting"]["resolved"]["batch_size"],
            "wall_seconds": wall_seconds, "scoring_seconds": cost["seconds"],
            "candidates_per_second_wall": scored / wall_seconds,
            "candidates_per_second_scoring": scored / cost["seconds"],
            f"device_hours_{EXTRAPOLATE_TO}_wall": wall_seconds / scored * EXTRAPOLATE_TO / 3600,
            f"device_hours_{EXTRAPOLATE_TO}_scoring":
                cost["seconds"] / scored * EXTRAPOLATE_TO / 3600,
            "device": cost["device"]}


def summary(device: str, out: Path, search_seconds: float) -> None:
    perf = perf_rows(out)
    agree = read_table(out / "agreement.csv")
    search = search_throughput(out, search_seconds)
    report = {"device": device, "numerics": json.loads((out / "numerics.json").read_text()),
              "search": search,
              "repeats_identical": agree.set_index("proxy")["repeats_identical"].to_dict(),
              "agreement": agree.to_dict("records"), "perf": perf.to_dict("records")}
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "summary.md").write_text(summary_markdown(device, perf, agree, search))
    save(summary_figure(device, perf, agree), out / "gpu_check")


def markdown(table: pd.DataFrame) -> str:
    """A pandas table in markdown, floats with 4 significant digits."""
    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return markdown_table(table.columns, [[cell(v) for v in row]
                                          for row in table.itertuples(index=False)])


def summary_markdown(device: str, perf: pd.DataFrame, agree: pd.DataFrame, search: dict) -> str:
    gpu = [c for c in ("gpu_seconds_median", "gpu_ratio_to_train_step") if c in perf]
    perf_shown = perf[["setting", "proxy", "method", "seconds_median", "cpu_seconds_median",
                       *gpu[:1], "peak_mem_mb", "ratio_to_train_step", *gpu[1:],
                       "mem_ratio_to_train_step", "error"]]
    same_device = ("\n\nWith --device cpu the device is the CPU itself: both comparisons "
                   "exercise the path and must find no difference at all." if device == "cpu"
                   else "")
    hours = EXTRAPOLATE_TO
    return "\n\n".join([
        f"# gpu_check on {device} ({search['device']})",
        "## bench perf\n\n" + markdown(perf_shown),
        "## Same score twice on the device, and CPU against the device on the same weights\n\n"
        + markdown(agree) + same_device,
        f"## Random search with {search['proxy']} on {search['space']} "
        f"({search['img_size']} px, batch {search['batch_size']})\n\n"
        f"{search['candidates']} candidates in {search['wall_seconds']:.1f} s wall clock "
        f"({search['candidates_per_second_wall']:.3g} per second; scoring alone "
        f"{search['scoring_seconds']:.1f} s, {search['candidates_per_second_scoring']:.3g} per "
        f"second): {hours:,} candidates would take {search[f'device_hours_{hours}_wall']:.3g} "
        f"device-hours ({search[f'device_hours_{hours}_scoring']:.3g} scoring alone).",
    ]) + "\n"


def summary_figure(device: str, perf: pd.DataFrame, agree: pd.DataFrame) -> Figure:
    """Time and peak memory of each measured call relative to the training step, per setting,
    and the CPU-device relative difference of every proxy."""
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    time_axis, memory_axis, numerics_axis = fig.subplots(1, 3)
    ratio = "gpu_ratio_to_train_step" if "gpu_ratio_to_train_step" in perf else "ratio_to_train_step"
    calls = [c for c in dict.fromkeys(perf["proxy"]) if c != TRAIN_STEP]
    settings = list(dict.fromkeys(perf["setting"]))
    width = 0.8 / max(len(settings), 1)
    for k, setting in enumerate(settings):
        rows = perf[perf["setting"] == setting].set_index("proxy")
        positions = np.arange(len(calls)) + k * width
        time_axis.bar(positions, [rows[ratio].get(c, np.nan) for c in calls], width, label=setting)
        memory_axis.bar(positions, [rows["mem_ratio_to_train_step"].get(c, np.nan)
                                    for c in calls], width, label=setting)
    for axis, what in ((time_axis, "GPU time" if "gpu" in ratio else "wall time"),
                       (memory_axis, "peak memory")):
        axis.set_xticks(np.arange(len(calls)) + width * (len(settings) - 1) / 2, calls)
        axis.axhline(1, color="grey", lw=0.8)
        axis.set_ylabel(f"{what} / training step")
        axis.legend(fontsize=7)
    differences = np.maximum(agree["max_relative_difference"].astype(float).to_numpy(), IDENTICAL)
    rows = np.arange(len(agree))
    repeated = agree["repeats_identical"].astype(bool).to_numpy()
    numerics_axis.scatter(differences[repeated], rows[repeated], color="tab:purple",
                          label="same score twice on the device")
    numerics_axis.scatter(differences[~repeated], rows[~repeated], color="tab:red", marker="x",
                          label="repeat on the device differs")
    numerics_axis.axvline(IDENTICAL, color="grey", lw=0.8)
    numerics_axis.set_xlim(IDENTICAL / 10, max(1.0, float(np.nanmax(differences)) * 10))
    numerics_axis.set_xscale("log")
    numerics_axis.set_yticks(rows, agree["proxy"], fontsize=6)
    numerics_axis.set_xlabel(f"max |device − CPU| / |CPU|, same weights ({IDENTICAL:g} = equal)")
    numerics_axis.legend(fontsize=7)
    fig.suptitle(f"gpu_check on {device}: cost against a training step, and numerics")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("numerics")
    run.add_argument("--device", required=True)
    run.add_argument("--space", required=True)
    run.add_argument("--img-size", type=int, required=True)
    run.add_argument("--batch-size", type=int, required=True)
    run.add_argument("--n", type=int, required=True)
    run.add_argument("--out", type=Path, required=True)
    report = commands.add_parser("summary")
    report.add_argument("--device", required=True)
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--search-seconds", type=float, required=True)
    args = parser.parse_args()
    if args.command == "numerics":
        numerics(args.device, args.space, args.img_size, args.batch_size, args.n, args.out)
    else:
        summary(args.device, args.out, args.search_seconds)


if __name__ == "__main__":
    main()
