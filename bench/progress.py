"""The progress of the long jobs: scoring a run (bench/runner.py), a search (bench/search.py) and
training the ground truth (bench/groundtruth.py). On a terminal a rich progress bar; anywhere
else (CI, nohup, a log file) a plain line every few percent or every minute."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# A plain progress line is printed at each 1/PLAIN_STEPS of the total (every 5%) and at least
# every PLAIN_INTERVAL seconds while something advances.
PLAIN_STEPS = 20
PLAIN_INTERVAL = 60.0


def progress_bar(label: str, *extra: ProgressColumn, console: Console | None = None,
                 **options: Any) -> Progress | PlainProgress:
    """`label` (rich markup, may name task fields), the bar, done/total, the `extra` columns, the
    time elapsed and the time left; `options` go to rich's Progress (transient, disable). Where
    the console is no terminal, a PlainProgress with the same methods prints lines instead."""
    console = console or Console()
    if not console.is_terminal and not console.quiet:
        return PlainProgress(label, console, disable=options.get("disable", False))
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                    console=console, **options)


class PlainProgress:
    """Progress as plain lines, `label: done/total (percent), rate, elapsed, left`, at every
    1/PLAIN_STEPS of the total, every PLAIN_INTERVAL seconds and at the end. The rate and the time
    left count only what advanced after a task was added (a run's cached part is not work)."""

    def __init__(self, label: str, console: Console, disable: bool = False):
        self.label, self.console, self.disable = label, console, disable
        self.tasks: list[dict] = []

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def add_task(self, description: str, total: float, completed: float = 0,
                 **fields: Any) -> int:
        now = time.monotonic()
        self.tasks.append({"description": description, "total": total, "completed": completed,
                           "start": completed, "started": now, "printed": now,
                           "step": self.step_of(completed, total)})
        return len(self.tasks) - 1

    def update(self, task: int, advance: float = 0, **fields: Any) -> None:
        """Advance the task; rich's fields (a rate column's text) are rich's alone."""
        state = self.tasks[task]
        state["completed"] += advance
        now, step = time.monotonic(), self.step_of(state["completed"], state["total"])
        if advance and (step > state["step"] or now - state["printed"] >= PLAIN_INTERVAL
                        or state["completed"] >= state["total"]):
            state["step"], state["printed"] = step, now
            if not self.disable:
                self.console.print(self.line(state, now), highlight=False, markup=False,
                                   soft_wrap=True)

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    @staticmethod
    def step_of(completed: float, total: float) -> int:
        return int(completed * PLAIN_STEPS // total) if total else 0

    def line(self, state: dict, now: float) -> str:
        task = SimpleNamespace(description=state["description"])
        label = Text.from_markup(self.label.format(task=task)).plain
        done, total = state["completed"], state["total"]
        elapsed = now - state["started"]
        rate = (done - state["start"]) / elapsed if elapsed > 0 else 0.0
        left = format_duration((total - done) / rate) if rate > 0 else "?"
        unit = state["description"]
        return (f"{label}: {done:g}/{total:g} {unit} ({100 * done / total:.0f}%), "
                f"{60 * rate:.3g} {unit}/min, elapsed {format_duration(elapsed)}, left {left}")


def format_duration(seconds: float) -> str:
    """`42 s`, `3 min 20 s`, `2 h 05 min`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
