"""Progress a log can read (workflows/progress.py): when a line is due and what it says."""

from __future__ import annotations

import io

from rich.console import Console

from vertebrafat.workflows.progress import Progress, ProgressLog


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_line_every_n_items_or_t_seconds_and_at_the_end() -> None:
    clock = Clock()
    log = ProgressLog("cohort", 7, every=3, seconds=60.0, clock=clock)
    lines = []
    for k in range(7):
        clock.t += 10.0 if k != 4 else 70.0  # the fifth item takes 70 s
        lines.append(log.advance(failed=k == 1))
    assert lines == [
        None, None,
        "cohort: 3/7 done, 1 failed, 4 to go, 0.10/s, about 40 s left",
        None,
        "cohort: 5/7 done, 1 failed, 2 to go, 0.05/s, about 44 s left",  # 70 s: time's up
        None,
        "cohort: 7/7 done, 1 failed, 0 to go, 0.05/s, in 2 min",
    ]


def test_tick_reports_a_stalled_run() -> None:
    clock = Clock()
    log = ProgressLog("cohort", 4, every=10, seconds=30.0, clock=clock)
    clock.t += 29.0
    assert log.tick() is None
    clock.t += 2.0
    assert log.tick() == "cohort: 0/4 done, 0 failed, 4 to go"
    assert log.tick() is None  # the clock restarts at each line


def test_without_a_terminal_progress_prints_lines_and_notes() -> None:
    written: list[str] = []
    console = Console(file=io.StringIO(), force_terminal=False)
    with Progress("evaluate", console=console, write=written.append, every=2) as progress:
        progress.start(3)
        progress.advance()
        progress.advance(failed=True, note="failed: P002: InputError: no water image")
        progress.advance()
    assert [w.split(",")[0] for w in written] == [
        "failed: P002: InputError: no water image", "evaluate: 2/3 done", "evaluate: 3/3 done"]


def test_on_a_terminal_progress_is_a_bar_and_quiet_prints_nothing() -> None:
    written: list[str] = []
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with Progress("cohort", console=console, write=written.append) as progress:
        progress.start(2)
        progress.advance(failed=True, note="failed: X: boom")
        progress.advance()
    assert written == [] and "failed: X: boom" in screen.getvalue()
    with Progress("cohort", console=console, write=written.append, quiet=True) as progress:
        progress.start(2)
        progress.advance(note="failed: Y")
    assert written == [] and "failed: Y" not in screen.getvalue()
