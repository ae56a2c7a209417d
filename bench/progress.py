"""The rich progress bar of the long jobs: scoring a run (bench/runner.py) and training the ground
truth (bench/groundtruth.py)."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(label: str, *extra: ProgressColumn, **options: Any) -> Progress:
    """`label` (rich markup, may name task fields), the bar, done/total, the `extra` columns, the
    time elapsed and the time left; `options` go to rich's Progress (console, transient, disable)."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), **options)
