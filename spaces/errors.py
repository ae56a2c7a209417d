"""The project's one exception type: bad input a user can fix, shown as a one-line message."""

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits with code 2."""


def first_line(text: str) -> str:
    """The first line of a message, at most 200 characters: enough for a one-line error."""
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def describe_error(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    line = first_line(str(err))
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def unknown_name(kind: str, name: str, known: Iterable[str]) -> BenchError:
    """The error for a name that is not registered: the close names when there are some (a typo),
    else every known name."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    if close:
        return BenchError(f"unknown {kind} {name!r}; did you mean {' or '.join(close)}?")
    return BenchError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
