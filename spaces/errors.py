"""The project's one exception type: bad input a user can fix, shown as a one-line message."""

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits with code 2."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> BenchError:
    """The error for a name that is not registered: the close names when there are some (a typo),
    else every known name."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    if close:
        return BenchError(f"unknown {kind} {name!r}; did you mean {' or '.join(close)}?")
    return BenchError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
