"""`bench search`: a proxy-driven architecture search, its outcome on a benchmark and its cost."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from bench.report import fmt, rich_table

console = Console()


@click.command("search")
@click.option("--proxy", required=True, help="The proxy that scores the candidates (see `bench proxies`).")
@click.option("--space", default=None, help="Search space to sample from (no ground truth).")
@click.option("--benchmark", default=None,
              help="Benchmark whose architectures to search (default micro-fmnist).")
@click.option("--target", default=None, help="Ground-truth column of the benchmark.")
@click.option("--strategy", type=click.Choice(["random", "evolution"]), default="random",
              show_default=True)
@click.option("--budget", type=int, default=50, show_default=True,
              help="Candidates scored per search.")
@click.option("--constraint", "constraints", multiple=True,
              help="params<=N, params>=N, flops<=N or flops>=N at the run's resolution "
                   "(repeatable).")
@click.option("--seeds", type=int, default=5, show_default=True,
              help="Searches; search i draws with strategy seed --seed + i.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Scoring seed (weights, inputs) of every search, and the first strategy seed.")
@click.option("--population", type=int, default=None, help="Evolution: candidates per generation (10).")
@click.option("--parents", type=int, default=None,
              help="Evolution: best candidates so far that breed the next generation (5).")
@click.option("--generations", type=int, default=None,
              help="Evolution: generations at most, the first included (default: until the budget).")
@click.option("--mutation-prob", type=float, default=None,
              help="Evolution: probability that a mutation redraws each choice (0.2).")
@click.option("--train", is_flag=True,
              help="--space micro: train each found architecture with the embedded benchmark's "
                   "recipe and place its accuracy among the benchmark's.")
@click.option("--train-data-dir", default=None,
              help="--train: folder of the four Fashion-MNIST IDX files "
                   "(default /usr/share/datasets/fashion-mnist).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per proxy evaluation.")
@click.option("--img-size", type=int, default=None, help="Input resolution (default: the space's).")
@click.option("--inputs", type=click.Choice(["auto", "gaussian", "pink", "real"]), default="auto",
              show_default=True)
@click.option("--data-dir", default=None, help="Real images for the proxies: an ImageFolder or CIFAR root.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--kernel-dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True)
@click.option("--cache", default=None, help="SQLite score cache (default results/cache.sqlite).")
@click.option("--out", default=None, help="Search directory (default results/searches/<time>-<hash>).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Local worker processes scoring candidates side by side (a random search's "
                   "whole budget, an evolution's generation).")
@click.option("--threads", type=int, default=None,
              help="torch threads per worker (default: cores / workers; 1 per Ray task); "
                   "networks under 1e6 parameters always use one.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Score on this machine or as Ray tasks (pip install '.[ray]').")
@click.option("--address", default=None,
              help="--executor ray: the Ray cluster to join (default: a local Ray).")
def search(constraints, **options):
    """Search architectures with a proxy under constraints; report what it found and its cost."""
    from bench.report import prepare_out_dir
    from bench.search import SearchConfig, run_search, write_search

    config = SearchConfig(constraints=tuple(constraints), **options)
    out = config.out_dir()
    fresh = not out.exists()
    prepare_out_dir(out)
    try:
        result = run_search(config, console)
    except KeyboardInterrupt:
        click.echo("interrupted: every score computed so far is cached; rerun the same command "
                   "to resume", err=True)
        sys.exit(130)
    finally:
        if fresh and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty search directory behind
    write_search(result, out)
    print_search(result)
    console.print(f"wrote {out / 'search.json'}")


def print_search(result: dict) -> None:
    """The outcome table (proxy, random pick, params on a benchmark; the found architectures
    otherwise), the trained architectures with --train, and the cost."""
    where = (f"benchmark {result['benchmark']} ({result['target']})" if result["benchmark"]
             else f"space {result['space']} (no ground truth)")
    title = (f"{result['strategy']} search with {result['proxy']} on {where}: "
             f"{len(result['seeds'])} seeds, budget {result['budget']}, "
             f"constraints: {', '.join(result['constraints']) or 'none'}")
    if result["baselines"]:
        labels = ("picked by", "ground truth", "percentile", "regret")
        rows = [outcome_row(result["proxy"], result["summary"]),
                outcome_row("random pick", result["baselines"]["random"]),
                outcome_row("params (same search)", result["baselines"]["params"])]
        console.print(rich_table(title + " (mean ± std over seeds)", labels, rows))
        console.print(f"best available under the constraints: {fmt(result['best_available'])}")
    else:
        labels = ("seed", "arch_id", "score", "params", "flops", "architecture")
        rows = [(str(s["seed"]), s["best"]["arch_id"], f"{s['best']['score']:.4g}",
                 str(s["best"]["params"]), str(s["best"]["flops"]),
                 json.dumps(s["best"]["arch"], sort_keys=True)) for s in result["searches"]]
        console.print(rich_table(title, labels, rows, text_columns=2, overflow="fold"))
    if result["trained"]:
        trained = result["trained"]
        rows = [(t["arch_id"], fmt(t["accuracy"], 2), fmt(t["percentile"], 1),
                 fmt(t["benchmark_accuracy"], 2) if t["benchmark_accuracy"] is not None else "-")
                for t in trained["architectures"]]
        console.print(rich_table(
            f"Found architectures trained with the {trained['benchmark']} recipe (seed "
            f"{trained['seed']}, {trained['threads']} thread)",
            ("arch_id", "test accuracy %", f"percentile in {trained['benchmark']}",
             "benchmark accuracy %"), rows))
    console.print(cost_line(result["cost"]))


def outcome_row(name: str, summary: dict) -> tuple[str, ...]:
    """Mean ± std of the ground truth, percentile and regret (the mean alone for one seed)."""
    cells = []
    for key in ("ground_truth", "percentile", "regret"):
        std = summary[f"{key}_std"]
        cells.append(fmt(summary[f"{key}_mean"], 2) + ("" if std is None else f" ± {std:.2f}"))
    return (name, *cells)


def cost_line(cost: dict) -> str:
    published = "; ".join(f"{entry['ratio']:.1e} of {name} ({entry['device_hours']:g} GPU-hours)"
                          for name, entry in cost["published"].items())
    searches = f"{cost['searches']} search" + ("es" if cost["searches"] > 1 else "")
    line = (f"cost: {cost['candidates_scored']} candidates scored in {searches}, "
            f"{cost['seconds']:.1f} s of scoring (stored seconds, cached or computed now) on "
            f"{cost['device_kind']} ({cost['device']}), {cost['device_hours']:.3g} device-hours; "
            f"one search {cost['device_hours_per_search']:.3g} h = {published}")
    return line + (f" [{cost['note']}]" if cost["note"] else "")
