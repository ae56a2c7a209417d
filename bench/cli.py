"""The `bench` command line: parses options, calls the same functions a notebook user calls,
and turns a BenchError into a one-line message and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from bench.data_cli import data
from bench.export_cli import export
from bench.groundtruth_cli import groundtruth
from bench.report_cli import report
from bench.search_cli import search
from bench.stability_cli import stability
from spaces.errors import BenchError

console = Console()


class BenchGroup(click.Group):
    """A click group that reports BenchError, and a bad option of a subcommand, as one line with
    exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BenchError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except click.UsageError as err:
            command = err.ctx.command_path if err.ctx else "bench"
            click.echo(f"error: {err.format_message()} (see `{command} --help`)", err=True)
            sys.exit(2)


@click.group(cls=BenchGroup)
def main():
    """Zero-cost proxies for Vision Transformer search spaces, benchmarked against ground truth."""


def split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


@main.command()
@click.option("--proxies", "proxy_list", default=None,
              help="Comma-separated proxy names (see `bench proxies`), default ntk,vintk; "
                   "`all` is every registered proxy, -name leaves one out (all,-grasp); "
                   "ensemble:a+b+c aggregates the ranks of a, b, c.")
@click.option("--space", default=None, help="Search space to sample from (see `bench spaces`).")
@click.option("--benchmark", default=None, help="Benchmark whose architectures and accuracies to use.")
@click.option("--target", default=None, help="Ground-truth column of the benchmark.")
@click.option("--n", type=int, default=None, help="Number of architectures (all of a benchmark if unset).")
@click.option("--seed", type=int, default=None, help="Seed of sampling, weights and inputs.")
@click.option("--weight-seed", type=int, default=None,
              help="Seed of the weights alone (default: --seed).")
@click.option("--input-seed", type=int, default=None,
              help="Seed of the input batch alone (default: --seed).")
@click.option("--batch-size", type=int, default=None, help="Images per proxy evaluation.")
@click.option("--img-size", type=int, default=None, help="Input resolution (default: the space's).")
@click.option("--inputs", type=click.Choice(["auto", "gaussian", "pink", "real"]), default=None,
              help="Input images: auto = real when available, else 1/f (pink) noise.")
@click.option("--data-dir", default=None, help="Real images: an ImageFolder or CIFAR root.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--kernel-dtype", type=click.Choice(["float64", "float32"]), default=None,
              help="dtype of the NTK proxies' per-sample gradients (default float64).")
@click.option("--retry-failures", is_flag=True, default=None,
              help="Recompute the cached failures instead of reporting them again.")
@click.option("--out", default=None, help="Run directory (default results/runs/<time>-<hash>).")
@click.option("--cache", default=None, help="SQLite score cache (default results/cache.sqlite).")
@click.option("--workers", type=int, default=None,
              help="Local worker processes scoring architectures side by side (default 1).")
@click.option("--threads", type=int, default=None,
              help="torch threads per worker (default: cores / workers; 1 per Ray task); "
                   "networks under 1e6 parameters always use one.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Score on this machine (default) or as Ray tasks (pip install '.[ray]').")
@click.option("--address", default=None,
              help="--executor ray: the Ray cluster to join (default: a local Ray).")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Repeat a run from its config.json; other options override it.")
def run(proxy_list, config_path, **options):
    """Compute proxies on architectures and rank-correlate them with ground truth."""
    from bench.report import prepare_out_dir, print_run_table, write_run
    from bench.runner import RunConfig, run_benchmark

    overrides = {key: value for key, value in options.items() if value is not None}
    if proxy_list is not None:
        overrides["proxies"] = split_names(proxy_list)
    if config_path:
        config = RunConfig.from_file(Path(config_path)).replace(**overrides)
    else:
        config = RunConfig(**overrides)
    out = config.out_dir()
    fresh = not out.exists()
    prepare_out_dir(out)
    try:
        result = run_benchmark(config, console=console)
    except KeyboardInterrupt:
        click.echo("interrupted: every score computed so far is cached; rerun the same command to resume",
                   err=True)
        sys.exit(130)
    finally:
        if fresh and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty run directory behind
    write_run(result, out)
    print_run_table(result, console)
    console.print(f"wrote {out}")


@main.command("proxies")
def list_proxies():
    """List the registered proxies: name, needs, hyper-parameters, whole description, reference."""
    import textwrap

    from rich.text import Text

    from proxies.base import all_proxy_names, get_proxy

    # One block per proxy, its description wrapped between words at the terminal's width and never
    # cut: a table column would squeeze it, and Text (not markup) keeps formulas like [log(λ+k)].
    console.print(Text("Registered proxies (higher = predicted better; see docs/proxies.md)",
                       style="bold"))
    indent = " " * 4
    for name in all_proxy_names():
        proxy = get_proxy(name)
        console.print()
        console.print(Text.assemble((name, "bold cyan"), f"  needs: {proxy.needs.describe()}"))
        hparams = ", ".join(f"{k}={v}" for k, v in proxy.hparams.items())
        lines = [proxy.description(), f"Hyper-parameters: {hparams}" if hparams else "",
                 f"Reference: {proxy.reference}"]
        for text in filter(None, lines):
            wrapped = textwrap.fill(text, max(console.width, 40), initial_indent=indent,
                                    subsequent_indent=indent, break_long_words=False,
                                    break_on_hyphens=False)
            console.print(Text(wrapped), soft_wrap=True)


@main.command("spaces")
def list_spaces():
    """List the search spaces with their choices."""
    from bench.report import rich_table
    from spaces.base import all_space_names, get_space

    rows = []
    for name in all_space_names():
        space = get_space(name)
        choices = "\n".join(f"{k}: {v}" for k, v in space.choices().items())
        shape = f"{space.in_chans}x{space.default_img_size}x{space.default_img_size}"
        rows.append((name, shape, str(space.num_classes), choices, space.description))
    labels = ("name", "input", "classes", "choices", "description")
    console.print(rich_table("Search spaces", labels, rows, text_columns=len(labels),
                             overflow="fold"))


@main.command()
@click.option("--space", required=True, help="Search space name.")
@click.option("--arch", "arch_json", default=None, help="Architecture as JSON.")
@click.option("--sample", type=int, default=None, help="Print K sampled architectures as JSON lines.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--img-size", type=int, default=None, help="Resolution for the FLOP count.")
def arch(space, arch_json, sample, seed, img_size):
    """Print an architecture's params and FLOPs, or sample architectures as JSON lines."""
    from spaces.base import arch_id, get_space, load_arch

    search_space = get_space(space)
    if (arch_json is None) == (sample is None):
        raise BenchError("give exactly one of --arch JSON or --sample K")
    if sample is not None:
        if sample < 1:
            raise BenchError(f"--sample K must be a positive integer, got {sample}")
        for candidate in search_space.sample_many(sample, seed):
            click.echo(json.dumps(candidate, sort_keys=True))
        return
    size = search_space.default_img_size if img_size is None else img_size
    search_space.check_img_size(size)
    parsed = load_arch(search_space, arch_json)
    info = {"space": space, "arch_id": arch_id(parsed), "arch": parsed,
            "params": search_space.count_params(parsed),
            "flops": search_space.count_flops(parsed, size), "img_size": size}
    click.echo(json.dumps(info, sort_keys=True))


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--proxies", "proxy_list", default="ntk,vintk,params,flops", show_default=True,
              help="Comma-separated proxies to show, one column each.")
@click.option("--difference", "difference_list", multiple=True,
              help="A-B: add τ(A) − τ(B) with a paired bootstrap 95% CI (repeatable).")
@click.option("--partial", type=click.Choice(["params", "flops"]), default=None,
              help="Show the partial τ given params (or FLOPs) instead of τ.")
@click.option("--markdown", default=None, type=click.Path(dir_okay=False),
              help="Also write the table as markdown to this file.")
def compare(run_dirs, proxy_list, difference_list, partial, markdown):
    """Runs side by side: Kendall τ [95% CI] of each proxy on each run's ground truth."""
    from bench.compare import cells, compare_runs, parse_difference
    from bench.report import markdown_table, rich_table

    proxies = split_names(proxy_list)
    differences = [parse_difference(text) for text in difference_list]
    table = compare_runs([Path(d) for d in run_dirs], proxies, differences, partial)
    labels, body = cells(table, proxies, differences)
    shown = f"Partial Kendall τ given {partial}" if partial else "Kendall τ"
    console.print(rich_table(f"{shown} [95% bootstrap CI] with each run's ground truth", labels,
                             body))
    if markdown:
        Path(markdown).write_text(markdown_table(labels, body) + "\n")
        console.print(f"wrote {markdown}")


main.add_command(data)
main.add_command(export)
main.add_command(groundtruth)
main.add_command(report)
main.add_command(search)
main.add_command(stability)


@main.command()
@click.option("--space", default="autoprox-t", show_default=True, help="Search space of the network.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--img-size", type=int, default=None, help="Input resolution (default: the space's).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--out", default="results/perf", show_default=True,
              help="Directory for perf.csv and perf.json.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the architecture, weights and batch.")
@click.option("--proxies", "proxy_list", default="",
              help="Comma-separated proxies to time (default: all; -name leaves one out).")
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--naive-repeats", type=int, default=1, show_default=True,
              help="Repeats of the naive NTK, which costs one backward per sample (0 skips it).")
@click.option("--kernel-dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="dtype of the NTK proxies and of the naive NTK.")
def perf(space, batch_size, img_size, device, out, seed, proxy_list, repeats, naive_repeats,
         kernel_dtype):
    """Time one training step, every proxy and the naive NTK side by side (on CUDA also GPU time
    by CUDA events and peak GPU memory); write perf.csv."""
    from bench.perf import PerfConfig, measure_perf, print_perf, write_perf

    config = PerfConfig(space, batch_size, img_size, device, seed, tuple(split_names(proxy_list)),
                        repeats, naive_repeats, kernel_dtype)
    table, setting = measure_perf(config, console)
    write_perf(table, setting, Path(out))
    print_perf(table, setting, console)
    console.print(f"wrote {Path(out) / 'perf.csv'} and perf.json")
