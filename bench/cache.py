"""SQLite score cache: one row per (architecture, proxy, inputs, seed, device) so runs resume.

Every score is committed as soon as it is computed, so an interrupted run loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

# Bump when a change to the code would change cached scores, so stale rows are not reused.
CACHE_VERSION = 1

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
    the proxy's note on how it computed the score (e.g. which NTK construction)."""

    score: float | None
    seconds: float
    error: str | None
    note: str | None = None


def cache_key(description: dict) -> str:
    """A stable key for everything that determines a score."""
    text = json.dumps({"cache_version": CACHE_VERSION, **description}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ScoreCache:
    """Get and put proxy scores by the description of what produced them."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60)  # two runs may share one cache
        self.db.execute(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(scores)")}
        if "note" not in columns:  # a cache written before notes were kept
            self.db.execute("ALTER TABLE scores ADD COLUMN note TEXT")
        self.db.commit()

    def get(self, description: dict) -> CachedScore | None:
        row = self.db.execute("SELECT score, seconds, error, note FROM scores WHERE key = ?",
                              (cache_key(description),)).fetchone()
        return CachedScore(*row) if row else None

    def put(self, description: dict, result: CachedScore) -> None:
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
