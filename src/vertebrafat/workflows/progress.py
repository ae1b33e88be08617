"""Progress of long runs (cohort, reproduce, evaluate) that a person and a log can read.

On a terminal, a live bar (rich) with done/total, failures, rate and time left; failures are
printed above it as they happen. Without a terminal (a log file, a batch job), a line every
``every`` items or every ``seconds`` seconds, whichever comes first, and at the end::

    cohort: 12/40 done, 1 failed, 28 to go, 0.85/s, about 33 s left

:class:`ProgressLog` decides when a line is due and what it says (no I/O, an injectable
clock); :class:`Progress` prints it, to the ``write`` callable it is given (the CLI's stderr).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any


def duration(seconds: float) -> str:
    """``"42 s"``, ``"7 min"``, ``"2 h 05 min"``: a time span as a person says it.

    >>> duration(41.6), duration(420), duration(7500)
    ('42 s', '7 min', '2 h 05 min')
    """
    s = round(seconds)
    if s < 100:
        return f"{s} s"
    if s < 6000:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {round(s % 3600 / 60):02d} min"


@dataclass
class ProgressLog:
    """When a progress line is due in a log, and its text.

    A line is due after ``every`` more items, after ``seconds`` without a line (checked on
    each item and by :meth:`tick`), and at the last item.
    """

    what: str
    total: int
    every: int = 10
    seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    done: int = 0
    failed: int = 0
    _start: float = field(init=False)
    _last: tuple[int, float] = field(init=False)

    def __post_init__(self) -> None:
        self._start = self.clock()
        self._last = (0, self._start)

    def advance(self, *, failed: bool = False) -> str | None:
        """Count one item; the line to print when one is due."""
        self.done += 1
        self.failed += int(failed)
        now = self.clock()
        if (self.done >= self.total or self.done - self._last[0] >= self.every
                or now - self._last[1] >= self.seconds):
            return self._line(now)
        return None

    def tick(self) -> str | None:
        """The line to print when ``seconds`` passed without one (a stalled or slow run)."""
        now = self.clock()
        return self._line(now) if now - self._last[1] >= self.seconds else None

    def _line(self, now: float) -> str:
        self._last = (self.done, now)
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = (f", about {duration(left / rate)} left" if rate > 0 and left
               else "" if left else f", in {duration(elapsed)}")
        pace = f", {rate:.2f}/s" if rate > 0 else ""
        return (f"{self.what}: {self.done}/{self.total} done, {self.failed} failed, "
                f"{left} to go{pace}{eta}")


class Progress:
    """Progress on stderr: a rich bar on a terminal, else :class:`ProgressLog` lines.

    ``console``: a rich console on stderr (``console.is_terminal`` decides); ``write``: prints
    one line there. Use as a context manager; :meth:`start` sets the total, :meth:`advance`
    counts an item (``note``: a line to print, e.g. a failure). ``quiet`` prints nothing.
    """

    def __init__(self, what: str, *, console: Any, write: Callable[[str], None],
                 quiet: bool = False, every: int = 10, seconds: float = 60.0) -> None:
        self.what, self.console, self.write, self.quiet = what, console, write, quiet
        self.every, self.seconds = every, seconds
        self.log: ProgressLog | None = None
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int, *, notes: Sequence[str] = ()) -> None:
        """Print ``notes``, then begin counting ``total`` items (no bar or line for 0)."""
        if self.quiet:
            return
        for line in notes:
            self.write(line)
        if total == 0:
            return
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(),
                            console=self.console, transient=True)
            self._task = self._bar.add_task(self.what, total=total, failed=0)
            self._bar.start()
            return
        self.log = ProgressLog(self.what, total, every=self.every, seconds=self.seconds)
        self._thread = threading.Thread(target=self._heartbeat, daemon=True)
        self._thread.start()

    def advance(self, *, failed: bool = False, note: str | None = None) -> None:
        """Count one item (``failed``: it failed); print ``note`` first if given."""
        if self.quiet:
            return
        if self._bar is not None:
            if note:
                self._bar.console.print(note, markup=False, highlight=False)
            task = self._bar.tasks[0]
            self._bar.update(self._task, advance=1, failed=task.fields["failed"] + int(failed))
            return
        with self._lock:
            if note:
                self.write(note)
            line = self.log.advance(failed=failed) if self.log is not None else None
            if line:
                self.write(line)

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                line = self.log.tick() if self.log is not None else None
                if line and self.log is not None and self.log.done < self.log.total:
                    self.write(line)
