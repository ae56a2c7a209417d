"""`bench data fetch NAME`: download a known public benchmark from its pinned upstream address,
check its sha256, import it into the data directory.

Without network access the download fails with a BenchError naming each address to fetch by hand
and the `bench data import` command to run afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from spaces.benchmarks import Benchmark, sha256_of, store_benchmark, verify_sha256
from spaces.errors import BenchError, unknown_name
from spaces.importers import read_file
from spaces.importers.sources import KNOWN, KnownBenchmark, SourceFile, known_benchmark

TIMEOUT_S = 60


def download(source: SourceFile, folder: Path, entry: KnownBenchmark) -> Path:
    """The file at `source.url`, saved in `folder` under its upstream name."""
    target = folder / source.filename
    try:
        with urllib.request.urlopen(source.url, timeout=TIMEOUT_S) as response, \
                open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as err:
        urls = " and ".join(f.url for f in entry.files)
        raise BenchError(
            f"could not download {source.url} ({getattr(err, 'reason', err)}); download {urls} "
            f"by hand, then run: bench data import {entry.files[0].filename} --name {entry.name} "
            f"--format {entry.format}") from None
    return target


def fetch_benchmark(name: str, data_dir: str | Path | None = None,
                    overwrite: bool = False) -> tuple[Benchmark, list[str]]:
    """Download, verify and import the known benchmark `name`; return it and notes for the user
    (the sha256 of any file that had none pinned)."""
    entry = known_benchmark(name)
    if entry is None:
        raise unknown_name("public benchmark", name, (e.name for e in KNOWN))
    notes = []
    with tempfile.TemporaryDirectory(prefix="vitzc-fetch-") as tmp:
        paths = [download(source, Path(tmp), entry) for source in entry.files]
        for source, path in zip(entry.files, paths):
            if source.sha256:
                verify_sha256(path, source.sha256)
            else:
                notes.append(f"{source.filename} has no pinned sha256; the downloaded file has "
                             f"sha256 {sha256_of(path)} (pin it in spaces/importers/sources.py)")
        bench = read_file(paths[0], entry.format)
    bench.provenance.update(url=entry.url, commit=entry.commit)
    return store_benchmark(bench, entry.name, data_dir, overwrite), notes
