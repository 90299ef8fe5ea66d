"""The CLI's progress bar on stderr, shown only for work that takes more than a second."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: Work that finishes sooner than this never shows a bar.
SHOW_AFTER = 1.0


class LazyProgress:
    """A rich progress bar on stderr that appears once work has taken SHOW_AFTER seconds."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet or not sys.stderr.isatty()
        self.started = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._label = ""
        self._total = 0.0
        self._done = 0.0

    def stage(self, label: str, total: float) -> None:
        """Begin a new stage of work, measured in any unit."""
        self._label, self._total, self._done = label, total, 0.0
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=label, total=total, completed=0)

    def advance(self, amount: float) -> None:
        self._done += amount
        self._refresh()

    def set(self, done: float) -> None:
        self._done = done
        self._refresh()

    def _refresh(self) -> None:
        if self.quiet:
            return
        if self._bar is None:
            if time.monotonic() - self.started < SHOW_AFTER:
                return
            # rich only once a bar shows: quick commands start without it.
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self._total)
        assert self._task is not None
        self._bar.update(self._task, completed=self._done)

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
