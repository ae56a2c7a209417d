"""`bench stability`: each proxy's rank agreement with itself under other weight seeds and other
input batches, printed beside its τ with accuracy."""

from __future__ import annotations

import sys

import click
from rich.console import Console

console = Console()


@click.command("stability")
@click.option("--proxies", "proxy_list", required=True,
              help="Comma-separated proxy names (see `bench proxies`); ensemble:a+b works too.")
@click.option("--space", default=None, help="Search space to sample from (no ground truth).")
@click.option("--benchmark", default=None,
              help="Benchmark whose architectures and accuracies to use (default micro-fmnist).")
@click.option("--target", default=None, help="Ground-truth column of the benchmark.")
@click.option("--n", type=int, default=None, help="Number of architectures (all of a benchmark if unset).")
@click.option("--repeats", type=int, default=3, show_default=True,
              help="Weight seeds, and input batches, whose rankings are compared pair by pair.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the architecture sample; the weight and input seeds are seed, seed+1, …")
@click.option("--batch-size", type=int, default=32, show_default=True,
              help="Images per proxy evaluation.")
@click.option("--img-size", type=int, default=None, help="Input resolution (default: the space's).")
@click.option("--inputs", type=click.Choice(["auto", "gaussian", "pink", "real"]), default="auto",
              show_default=True, help="Input images: auto = real when available, else 1/f noise.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--cache", default=None, help="SQLite score cache (default results/cache.sqlite).")
@click.option("--out", default=None,
              help="Directory for stability.csv and stability.json "
                   "(default results/stability/<time>-<hash>).")
def stability(proxy_list, repeats, out, **options):
    """Kendall τ of each proxy with itself across weight seeds and across input batches."""
    from bench.cli import split_names
    from bench.report import prepare_out_dir
    from bench.runner import RunConfig
    from bench.stability import (
        measure_stability,
        print_stability,
        stability_out_dir,
        stability_seeds,
        write_stability,
    )

    config = RunConfig(proxies=tuple(split_names(proxy_list)), **options)
    stability_seeds(config.seed, repeats)  # refuses --repeats below 2 before any work
    out_dir = stability_out_dir(config, out)
    fresh = not out_dir.exists()
    prepare_out_dir(out_dir)
    try:
        table, info = measure_stability(config, repeats, console)
    except KeyboardInterrupt:
        click.echo("interrupted: every score computed so far is cached; rerun the same command "
                   "to resume", err=True)
        sys.exit(130)
    finally:
        if fresh and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # nothing was written: leave no empty directory behind
    write_stability(table, info, config, repeats, out_dir)
    print_stability(table, info, console)
    console.print(f"wrote {out_dir / 'stability.csv'} and stability.json")
