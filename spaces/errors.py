"""The project's one exception type: bad input a user can fix, shown as a one-line message."""


class BenchError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits with code 2."""
