"""`bench groundtruth`: train the embedded benchmark's ground truth, and measure its quality."""

from __future__ import annotations

from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

from spaces.benchmarks import EMBEDDED_DIR

console = Console()


def default_paths(space: str) -> tuple[Path, Path]:
    """The shipped per-training table and the per-architecture benchmark made from it."""
    name = f"{space}-fmnist"
    return EMBEDDED_DIR / "trainings" / f"{name}.csv", EMBEDDED_DIR / f"{name}.csv"


@click.group("groundtruth")
def groundtruth():
    """Ground truth the project trains itself (the embedded Fashion-MNIST benchmark)."""


@groundtruth.command("train")
@click.option("--space", default="micro", show_default=True, help="Search space to sample from.")
@click.option("--n", type=int, required=True, help="Number of architectures.")
@click.option("--seeds", type=int, default=3, show_default=True,
              help="Seeds of each of the first 30 architectures (the others get seed 0).")
@click.option("--data-dir", default=None,
              help="Folder of the four Fashion-MNIST gzip IDX files "
                   "(default /usr/share/datasets/fashion-mnist).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Per-training table, appended to and resumed from "
                   "(default spaces/data/trainings/SPACE-fmnist.csv).")
@click.option("--benchmark", default=None, type=click.Path(dir_okay=False),
              help="Per-architecture benchmark rewritten after each training "
                   "(default spaces/data/SPACE-fmnist.csv).")
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch CPU threads (the recorded accuracies used 1).")
def train(space, n, seeds, data_dir, out, benchmark, threads):
    """Train the missing (architecture, seed) pairs with the one recipe; safe to stop and rerun."""
    from bench.groundtruth import train_benchmark
    from spaces.base import get_space

    torch.set_num_threads(threads)
    default_out, default_benchmark = default_paths(space)
    out = Path(out) if out else default_out
    benchmark = Path(benchmark) if benchmark else default_benchmark
    trained = train_benchmark(get_space(space), n, seeds, out, benchmark, data_dir)
    if trained:
        console.print(f"trained {trained} networks; table {out}, benchmark {benchmark}")
    else:
        console.print(f"nothing to train: {out} has every (architecture, seed) pair; "
                      "no file written")


@groundtruth.command("quality")
@click.option("--table", default=None, type=click.Path(dir_okay=False),
              help="Per-training table (default the shipped micro one).")
def quality(table):
    """Spread, seed noise, noise ceiling and params/FLOPs tau of a trained benchmark."""
    from bench.trained_benchmark import benchmark_quality, read_trainings

    path = Path(table) if table else default_paths("micro")[0]
    figures = benchmark_quality(read_trainings(path))
    report = Table(title=f"Quality of {path.name}")
    report.add_column("figure")
    report.add_column("value", justify="right")
    for name, value in figures.items():
        report.add_row(name, f"{value:.0f}" if value.is_integer() else f"{value:.3f}")
    console.print(report)
