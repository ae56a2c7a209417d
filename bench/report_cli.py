"""`bench report`: run, search and stability directories -> report.md with figures."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

console = Console()


@click.command("report")
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", default="results/report", show_default=True,
              help="Directory for report.md and figures/ (PNG and PDF).")
@click.option("--proxies", "proxy_list", default=None,
              help="Comma-separated main proxies of the cross-run figures and the subsample "
                   "curves (default: params,flops,synflow,snip,dss,zico,ntk,vintk where present).")
@click.option("--detail", multiple=True, type=click.Path(file_okay=False),
              help="A run directory to draw in full (repeatable; default: the first run of each "
                   "benchmark).")
@click.option("--repeats", type=click.IntRange(min=1), default=200, show_default=True,
              help="Random subsamples per size in the subsample curves.")
def report(dirs, out, proxy_list, detail, repeats):
    """Turn runs, searches and stability studies into report.md with figures and captions."""
    from bench.cli import split_names
    from bench.report_doc import build_report

    proxies = split_names(proxy_list) if proxy_list else None
    # A shell glob such as results/reference/* also matches the files beside the directories and
    # an earlier report written there.
    skipped = [d for d in dirs if Path(d).is_file() or (Path(d) / "report.md").is_file()]
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} path(s), files or earlier reports: "
                      f"{', '.join(skipped)}")
    path = build_report([d for d in dirs if d not in skipped], out, proxies, detail, repeats)
    console.print(f"wrote {path} and its figures in {path.parent / 'figures'}")
