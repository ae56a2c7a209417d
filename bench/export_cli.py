"""`bench export`: a run's scores as NASLib's zero-cost JSON or as a wide CSV table."""

from __future__ import annotations

import click
from rich.console import Console

console = Console()


@click.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--format", "file_format", type=click.Choice(["naslib", "csv"]), required=True,
              help="naslib: NASLib's {dataset: {arch: {proxy: {score, time}, val_accuracy}}}; "
                   "csv: one row per architecture, one column per proxy.")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="File to write (default: naslib_zc.json or scores_wide.csv in RUN_DIR).")
def export(run_dir, file_format, out):
    """Write a run's scores in a layout other tools read."""
    from bench.export import export_run

    path = export_run(run_dir, file_format, out)
    console.print(f"wrote {path}")
