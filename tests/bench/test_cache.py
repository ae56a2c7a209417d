"""The SQLite score cache."""

from bench.cache import CachedScore, ScoreCache, cache_key

DESCRIPTION = {"space": "s", "arch": '{"a":1}', "proxy": {"name": "p"}, "seed": 0, "device": "cpu"}


def test_a_score_survives_reopening_the_database(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put(DESCRIPTION, CachedScore(1.5, 0.25, None))
    cache.close()
    reopened = ScoreCache(tmp_path / "c.sqlite")
    assert reopened.get(DESCRIPTION) == CachedScore(1.5, 0.25, None)
    assert len(reopened) == 1


def test_failures_are_cached_with_their_reason(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put(DESCRIPTION, CachedScore(None, 0.1, "RuntimeError: boom"))
    assert cache.get(DESCRIPTION) == CachedScore(None, 0.1, "RuntimeError: boom")


def test_a_note_round_trips_and_a_cache_from_before_notes_gains_the_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE scores (key TEXT PRIMARY KEY, description TEXT NOT NULL, "
                "score REAL, seconds REAL NOT NULL, error TEXT, created REAL NOT NULL)")
    old.execute("INSERT INTO scores VALUES (?, '{}', 2.0, 0.5, NULL, 0)", (cache_key(DESCRIPTION),))
    old.commit()
    old.close()
    cache = ScoreCache(path)
    assert cache.get(DESCRIPTION) == CachedScore(2.0, 0.5, None, None)
    other = {**DESCRIPTION, "seed": 1}
    cache.put(other, CachedScore(3.0, 0.5, None, "naive NTK"))
    assert cache.get(other).note == "naive NTK"


def test_every_field_of_the_description_changes_the_key():
    base = cache_key(DESCRIPTION)
    for field, other in [("space", "t"), ("arch", '{"a":2}'), ("proxy", {"name": "q"}),
                         ("seed", 1), ("device", "cuda")]:
        assert cache_key({**DESCRIPTION, field: other}) != base
    assert cache_key(dict(reversed(list(DESCRIPTION.items())))) == base
