"""The one benchmark format: a table of architectures of one space with their ground truth, and
where it came from.

A benchmark called NAME is two files side by side, readable with plain pandas and diffable:

- `NAME.csv`, one row per architecture: `arch_id` (spaces.base.arch_id), `arch` (the canonical
  JSON of the validated architecture), one column per ground truth (e.g. `c100_base_acc`), and
  optional reference columns, prefixed `ref_`, holding proxy scores published with the source
  (for cross-checks; never ground truth). Empty cells are missing values.
- `NAME.json`, the provenance: `name`; `space` (a registered space) and `space_kwargs` (e.g.
  {"num_classes": 100}); `source`, `url`, `commit`, `licence`, `sha256` (of the source file),
  `imported_at`; `columns`, which says for every column after `arch` what it means (at least
  `meaning`; importers add dataset, num_classes, metric, training: from scratch, distillation or
  inherited supernet weights, and the recipe); and `default_target`, the ground truth a run uses
  unless told otherwise. `url`, `commit`, `licence` and `sha256` may be null for data without an
  upstream file, but the keys must be there; `space_kwargs` may be left out when there are none.

Imported benchmarks live in the user's data directory (`--data-dir`, else $VITZC_DATA_DIR, else
~/.local/share/vit-zc-bench), under `benchmarks/`, never in the repository. Benchmarks shipped with
the package live in EMBEDDED_DIR and are found by name too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from spaces.base import Arch, SearchSpace, arch_id, canonical_json, get_space
from spaces.errors import BenchError, unknown_name

EMBEDDED_DIR = Path(__file__).resolve().parent / "data"
DATA_DIR_ENV = "VITZC_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.local/share/vit-zc-bench")
REFERENCE_PREFIX = "ref_"
ARCH_COLUMNS = ("arch_id", "arch")
PROVENANCE_KEYS = ("name", "space", "source", "url", "commit", "licence", "sha256", "imported_at",
                   "columns", "default_target")
NULLABLE_KEYS = ("url", "commit", "licence", "sha256")
CHECK_IMG_SIZE = 32  # builds in a check run at this resolution: proof that a model builds, not a score
CHECK_BUILDS = 8
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class Benchmark:
    """Architectures of one space, their ground-truth (and reference) columns, and provenance."""

    name: str
    space: str
    table: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    def architectures(self) -> list[Arch]:
        return [json.loads(text) for text in self.table["arch"]]

    def targets(self) -> list[str]:
        """The ground-truth columns, in table order."""
        return [c for c in self.table.columns
                if c not in ARCH_COLUMNS and not c.startswith(REFERENCE_PREFIX)]

    def references(self) -> list[str]:
        """The `ref_` columns: proxy scores published with the source."""
        return [c for c in self.table.columns if c.startswith(REFERENCE_PREFIX)]

    def search_space(self) -> SearchSpace:
        """The benchmark's space, constructed with its `space_kwargs`."""
        kwargs = self.provenance.get("space_kwargs") or {}
        try:
            return get_space(self.space, **kwargs)
        except TypeError as err:
            raise BenchError(f"benchmark {self.name}: space {self.space} does not take "
                             f"space_kwargs {kwargs} ({err!r})") from None  # repr: a key may hold a newline


def data_dir(override: str | Path | None = None) -> Path:
    """The user data directory: `override`, else $VITZC_DATA_DIR, else DEFAULT_DATA_DIR."""
    return Path(override or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def benchmarks_dir(override: str | Path | None = None) -> Path:
    return data_dir(override) / "benchmarks"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise unless the file's sha256 is `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise BenchError(f"sha256 mismatch for {path.name}: expected {expected}, got {actual}; "
                         "the file is not the pinned upstream version")


def make_table(archs: list[Arch], columns: dict[str, list], where: str) -> pd.DataFrame:
    """A benchmark table from validated architectures and value columns (None = missing);
    `where` names the source in error messages."""
    table = pd.DataFrame({
        "arch_id": [arch_id(a) for a in archs],
        "arch": [canonical_json(a) for a in archs],
    })
    for name, values in columns.items():
        table[name] = [as_number(value, f"{where}: column {name!r}, row {row}")
                       for row, value in enumerate(values)]
    return table


def as_number(value: Any, where: str) -> float:
    """`value` as a float (None is missing: NaN); a BenchError for anything else."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchError(f"{where}: {value!r} is not a number")
    return float(value)


def check_benchmark(bench: Benchmark, builds: int | None = CHECK_BUILDS) -> Benchmark:
    """Raise a BenchError naming the first defect; return the benchmark unchanged if there is none.

    Checks the provenance, the columns, that every value column is numeric, that every
    architecture validates in the space, is in canonical form with a matching arch_id and appears
    once, and that `builds` architectures spread over the table (all when None) build at
    CHECK_IMG_SIZE and map one image to num_classes logits.
    """
    where = f"benchmark {bench.name}"
    check_provenance(bench, where)
    table = bench.table
    for column in ARCH_COLUMNS:
        if column not in table.columns:
            raise BenchError(f"{where}: the table has no {column!r} column")
    if not bench.targets():
        raise BenchError(f"{where}: the table has no ground-truth column")
    if bench.provenance["default_target"] not in bench.targets():
        raise BenchError(f"{where}: default_target {bench.provenance['default_target']!r} is not "
                         f"one of its ground-truth columns {bench.targets()}")
    described = set(bench.provenance["columns"])
    listed = set(table.columns) - set(ARCH_COLUMNS)
    if described != listed:
        raise BenchError(f"{where}: provenance 'columns' must describe exactly the table's columns; "
                         f"undescribed {sorted(listed - described)}, "
                         f"absent from the table {sorted(described - listed)}")
    for column in sorted(listed):
        # A published proxy score may be -inf (e.g. the log-determinant of a singular kernel);
        # an accuracy may not.
        check_numeric(table[column], f"{where}, column {column!r}",
                      finite=not column.startswith(REFERENCE_PREFIX))
    space = bench.search_space()
    check_architectures(table, space, where)
    if len(table) and builds != 0:
        check_builds(bench.architectures(), space, where, builds)
    return bench


def check_provenance(bench: Benchmark, where: str) -> None:
    prov = bench.provenance
    missing = [key for key in PROVENANCE_KEYS if key not in prov]
    if missing:
        raise BenchError(f"{where}: provenance is missing {', '.join(missing)}")
    empty = [key for key in PROVENANCE_KEYS if key not in NULLABLE_KEYS and not prov[key]]
    if empty:
        raise BenchError(f"{where}: provenance has no value for {', '.join(empty)}")
    if not isinstance(prov["name"], str) or not NAME_PATTERN.fullmatch(prov["name"]) \
            or prov["name"] != bench.name:
        raise BenchError(f"{where}: provenance name {prov['name']!r} must be the benchmark's name "
                         "(letters, digits, '.', '_', '-')")
    if prov["space"] != bench.space:
        raise BenchError(f"{where}: provenance space {prov['space']!r} is not {bench.space!r}")
    if not isinstance(prov.get("space_kwargs", {}), dict):
        raise BenchError(f"{where}: provenance space_kwargs must be an object")
    columns = prov["columns"]
    if not isinstance(columns, dict) or any(
            not isinstance(meta, dict) or not meta.get("meaning") for meta in columns.values()):
        raise BenchError(f"{where}: provenance 'columns' must map each column to an object "
                         "with at least a 'meaning'")


def check_numeric(values: pd.Series, where: str, finite: bool) -> None:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    if len(bad):
        raise BenchError(f"{where}: value {bad.iloc[0]!r} in row {bad.index[0]} is not a number")
    infinite = numbers[numbers.abs() == math.inf]
    if finite and len(infinite):
        raise BenchError(f"{where}: infinite value in row {infinite.index[0]}")


def check_architectures(table: pd.DataFrame, space: SearchSpace, where: str) -> None:
    seen: dict[str, int] = {}
    for row, (stored_id, text) in enumerate(zip(table["arch_id"], table["arch"])):
        try:
            arch = json.loads(text)
        except (TypeError, json.JSONDecodeError, RecursionError):
            raise BenchError(f"{where}: row {row}: arch {text!r:.80} is not JSON") from None
        if not isinstance(arch, dict):
            raise BenchError(f"{where}: row {row}: arch must be a JSON object")
        try:
            canonical = canonical_json(space.validate(arch))
        except BenchError as err:
            raise BenchError(f"{where}: row {row}: not an architecture of {space.name}: {err}") \
                from None
        if canonical != text:
            raise BenchError(f"{where}: row {row}: arch is not in canonical form; expected {canonical}")
        if stored_id != arch_id(arch):
            raise BenchError(f"{where}: row {row}: arch_id {stored_id!r} does not match its arch "
                             f"({arch_id(arch)})")
        if text in seen:
            raise BenchError(f"{where}: rows {seen[text]} and {row} hold the same architecture")
        seen[text] = row


def check_builds(archs: list[Arch], space: SearchSpace, where: str, builds: int | None) -> None:
    """Build `builds` architectures spread over the table (all when None) and check that each
    maps an image to the space's logits. On torch's meta device: every shape is checked, no
    weight is drawn and no arithmetic done, so a 1,000-row import takes seconds."""
    count = len(archs) if builds is None else min(builds, len(archs))
    picks = sorted({round(i * (len(archs) - 1) / max(count - 1, 1)) for i in range(count)})
    for row in picks:
        try:
            with torch.no_grad(), torch.device("meta"):
                image = torch.zeros(1, space.in_chans, CHECK_IMG_SIZE, CHECK_IMG_SIZE)
                logits = space.build(archs[row], img_size=CHECK_IMG_SIZE).eval()(image)
        except Exception as err:
            raise BenchError(f"{where}: row {row}: {space.name} cannot build this architecture "
                             f"({type(err).__name__}: {err})") from None
        if tuple(logits.shape) != (1, space.num_classes):
            raise BenchError(f"{where}: row {row}: the model gives logits of shape "
                             f"{tuple(logits.shape)}, not (1, {space.num_classes})")


def benchmark_files(path: Path) -> tuple[Path, Path]:
    """The (csv, json) pair of a benchmark given either file or the common stem."""
    stem = path.with_suffix("") if path.suffix in (".csv", ".json") else path
    return stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".json")


def read_benchmark(path: Path) -> Benchmark:
    """A benchmark from its csv/json pair, unchecked."""
    csv_path, json_path = benchmark_files(path)
    for required in (csv_path, json_path):
        if not required.is_file():
            raise BenchError(f"benchmark file {required} not found (a benchmark is NAME.csv with "
                             "its provenance NAME.json beside it)")
    try:
        provenance = json.loads(json_path.read_text())
    except json.JSONDecodeError as err:
        raise BenchError(f"{json_path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except (UnicodeDecodeError, RecursionError) as err:
        raise BenchError(f"{json_path}: not valid JSON ({type(err).__name__})") from None
    if not isinstance(provenance, dict):
        raise BenchError(f"{json_path}: provenance must be a JSON object")
    try:
        table = pd.read_csv(csv_path, dtype={"arch_id": str, "arch": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BenchError(f"{csv_path}: not a readable CSV table ({str(err).strip()})") from None
    name = provenance.get("name") or csv_path.stem
    return Benchmark(str(name), str(provenance.get("space")), table, provenance)


def find_benchmark(name: str, data_dir_override: str | Path | None = None) -> Path | None:
    """The csv path of the benchmark called `name`, embedded or in the data directory."""
    for folder in (EMBEDDED_DIR, benchmarks_dir(data_dir_override)):
        if (folder / f"{name}.csv").is_file():
            return folder / f"{name}.csv"
    return None


def load_benchmark(name_or_path: str | Path, data_dir: str | Path | None = None,
                   builds: int | None = 0) -> Benchmark:
    """A checked benchmark, by name (embedded, then the data directory) or by a path to either of
    its two files. Architectures are validated, not built, unless `builds` asks for it
    (import already built them)."""
    text = str(name_or_path)
    path = find_benchmark(text, data_dir) if NAME_PATTERN.fullmatch(text) else None
    if path is None:
        path = Path(text).expanduser()
        if not benchmark_files(path)[0].is_file():
            raise unknown_benchmark(text, data_dir)
    return check_benchmark(read_benchmark(path), builds=builds)


def unknown_benchmark(name: str, data_dir: str | Path | None = None) -> BenchError:
    """The error for a benchmark name that is not found: a public one not fetched yet says how to
    fetch it; otherwise the close names among the present and the fetchable ones, or all."""
    from spaces.importers.sources import KNOWN  # the importers build on this module

    present = [entry["name"] for entry in list_benchmarks(data_dir)]
    fetchable = [entry.name for entry in KNOWN if entry.name not in present]
    if name in fetchable:
        return BenchError(f"benchmark {name!r} is not in {benchmarks_dir(data_dir)} yet; "
                          f"run `bench data fetch {name}`")
    return BenchError(f"{unknown_name('benchmark', name, present + fetchable)} "
                      "(see `bench data list`, `bench data import`, `bench data fetch`)")


def save_benchmark(bench: Benchmark, data_dir: str | Path | None = None,
                   overwrite: bool = False) -> Path:
    """Write NAME.csv and NAME.json into the data directory; return the csv path."""
    csv_path, json_path = destination(bench.name, data_dir, overwrite)
    write_files(bench, csv_path, json_path)
    return csv_path


def destination(name: str, data_dir: str | Path | None, overwrite: bool) -> tuple[Path, Path]:
    """The (csv, json) paths a benchmark called `name` will be saved at, or a BenchError if it
    cannot be: the checks that need no table, so that they come before any work."""
    if not NAME_PATTERN.fullmatch(name):
        raise BenchError(f"benchmark name {name!r} must be letters, digits, '.', '_' or '-'")
    if (EMBEDDED_DIR / f"{name}.csv").is_file():
        raise BenchError(f"{name!r} is the name of a shipped benchmark; choose another --name")
    folder = benchmarks_dir(data_dir)
    csv_path, json_path = benchmark_files(folder / name)
    if csv_path.exists() and not overwrite:
        raise BenchError(f"benchmark {name!r} already exists in {folder}; "
                         "choose another --name or replace it with --force")
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        raise BenchError(f"cannot store benchmarks in {folder}: {existing} is not a directory")
    return csv_path, json_path


def write_files(bench: Benchmark, csv_path: Path, json_path: Path) -> None:
    """Write both files beside their targets first and move them in only when both are written,
    so that a failed write leaves no half benchmark (nor a stray partial file)."""
    partials = [path.with_name(path.name + ".partial") for path in (csv_path, json_path)]
    try:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        bench.table.to_csv(partials[0], index=False)
        partials[1].write_text(json.dumps(bench.provenance, indent=2, sort_keys=True) + "\n")
        for partial, path in zip(partials, (csv_path, json_path)):
            partial.replace(path)
    except OSError as err:
        raise BenchError(f"cannot write benchmark {bench.name!r} into {csv_path.parent}: "
                         f"{err.strerror or err}") from None
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)


def renamed(bench: Benchmark, name: str | None) -> Benchmark:
    """The benchmark under another name (its provenance follows; `destination` checks it)."""
    if not name or name == bench.name:
        return bench
    return Benchmark(name, bench.space, bench.table, {**bench.provenance, "name": name})


def store_benchmark(bench: Benchmark, name: str | None = None,
                    data_dir: str | Path | None = None, overwrite: bool = False,
                    builds: int | None = CHECK_BUILDS) -> Benchmark:
    """Check a benchmark and save it in the data directory, under `name` if given; where it goes
    is checked first, as the check builds models."""
    bench = renamed(bench, name)
    csv_path, json_path = destination(bench.name, data_dir, overwrite)
    write_files(check_benchmark(bench, builds=builds), csv_path, json_path)
    return bench


def import_benchmark(path: str | Path, name: str | None = None,
                     data_dir: str | Path | None = None, overwrite: bool = False,
                     builds: int | None = CHECK_BUILDS) -> Benchmark:
    """Import a benchmark in the native format (either of its files) into the data directory."""
    return store_benchmark(read_benchmark(Path(path).expanduser()), name, data_dir, overwrite,
                           builds)


def list_benchmarks(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Name, location (embedded or user), path and provenance of every benchmark found."""
    entries = []
    for location, folder in (("embedded", EMBEDDED_DIR), ("user", benchmarks_dir(data_dir))):
        for csv_path in sorted(folder.glob("*.csv")):
            json_path = csv_path.with_suffix(".json")
            if not json_path.is_file():
                continue
            try:
                provenance = json.loads(json_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                provenance = {}
            if not isinstance(provenance, dict):
                provenance = {}  # listed all the same; `bench data show` names the defect
            entries.append({"name": csv_path.stem, "location": location, "path": csv_path,
                            "provenance": provenance})
    return entries
