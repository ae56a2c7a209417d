"""SQLite score cache: one row per (architecture, proxy, inputs, seed, device, versions) so runs
resume.

Every score is committed as soon as it is computed, so an interrupted or killed run loses nothing.
The key is a hash of everything that can change a score: the setting (space, resolution, batch
size, seed, device, the batch's content), the architecture, the proxy's name, hyper-parameters,
code version and kernel dtype, and the torch and timm versions (major.minor). A row written under
any other key, by older code included, is never served.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from proxies.base import Batch
from spaces.errors import BenchError

# Bump when the key's layout changes. Version 2 added proxy versions, library versions, the
# kernel dtype and the batch's content hash.
CACHE_VERSION = 2

COLUMNS = ("key", "description", "score", "seconds", "error", "created", "note")
SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    key TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    score REAL,
    seconds REAL NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    note TEXT
)
"""


@dataclass(frozen=True)
class CachedScore:
    """One proxy evaluation: the score (None on failure), its wall-clock seconds, any error, and
    the proxy's note on how it computed the score (e.g. which NTK construction). A transient
    failure (out of memory) is never written to the cache."""

    score: float | None
    seconds: float
    error: str | None
    note: str | None = None
    transient: bool = field(default=False, compare=False)


def cache_key(description: dict) -> str:
    """A stable key for everything that determines a score."""
    text = json.dumps({"cache_version": CACHE_VERSION, **description}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def batch_digest(batch: Batch) -> str:
    """A hash of the batch's content (images as float32, labels, class count), whatever its device."""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(batch.x.shape), batch.num_classes]).encode())
    digest.update(batch.x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest.update(batch.y.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """torch and timm as major.minor: what can change a score between installs."""
    import timm

    return {name: ".".join(version.split("+")[0].split(".")[:2])
            for name, version in (("torch", torch.__version__), ("timm", timm.__version__))}


class ScoreCache:
    """Get and put proxy scores by the description of what produced them.

    Opening checks the file: a missing one is created; a corrupt file, another program's
    database, a directory or a read-only file is a BenchError naming it, the file untouched.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if self.path.is_dir():
            raise BenchError(f"cache {self.path} is a directory; give a file path to --cache")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60)  # two runs may share one cache
        except (OSError, sqlite3.Error) as err:
            raise BenchError(f"cannot open cache {self.path}: {err}") from None
        try:
            self.open_checked()
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise BenchError(f"cache {self.path} is not a usable score cache ({err}); give "
                             "another --cache or move the file away") from None

    def open_checked(self) -> None:
        tables = {row[0] for row in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "scores" not in tables:
            raise sqlite3.DatabaseError(f"it holds other tables: {', '.join(sorted(tables))}")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(scores)")}
        if columns and not set(COLUMNS) - {"note"} <= columns:
            raise sqlite3.DatabaseError("its scores table has other columns")
        self.db.execute("BEGIN IMMEDIATE")  # fails now, not after scoring, on a read-only file
        self.db.execute(SCHEMA)
        if columns and "note" not in columns:  # a cache written before notes were kept
            self.db.execute("ALTER TABLE scores ADD COLUMN note TEXT")
        self.db.commit()

    def get(self, description: dict) -> CachedScore | None:
        row = self.db.execute("SELECT score, seconds, error, note FROM scores WHERE key = ?",
                              (cache_key(description),)).fetchone()
        return CachedScore(*row) if row else None

    def put(self, description: dict, result: CachedScore) -> None:
        if result.transient:
            raise ValueError("a transient failure is never cached")
        self.db.execute(
            "INSERT OR REPLACE INTO scores (key, description, score, seconds, error, created, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cache_key(description), json.dumps(description, sort_keys=True), result.score,
             result.seconds, result.error, time.time(), result.note),
        )
        self.db.commit()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def close(self) -> None:
        self.db.close()
