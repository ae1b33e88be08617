"""The cohort tables, rebuilt from what is on disk after every run (finished or interrupted).

``OUT/cohort_status.csv``: one row per study found (:class:`StudyOutcome`), from its record
(``run.json`` or ``<name>.error.json``, :mod:`vertebrafat.workflows.cohort.records`);
``OUT/cohort_bmf.csv``: every measured study's ``bmf.csv``, concatenated (DESIGN.md schema).
A study measured with other settings than this run's, or not yet done, is ``pending`` and
adds no rows, so the table never mixes settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import VertebrafatError
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.io.atomic import write_text_atomic
from vertebrafat.io.table import load_table, save_table
from vertebrafat.workflows.cohort.outcome import StudyOutcome, outcomes_csv
from vertebrafat.workflows.cohort.plan import CohortPlan, PlannedStudy
from vertebrafat.workflows.cohort.records import (
    RECORD,
    SKIP,
    failure_path,
    read_json,
    resume_reason,
    settings_changes,
)

STATUS_TABLE = "cohort_status.csv"
BMF_TABLE = "cohort_bmf.csv"


@dataclass(frozen=True)
class CohortTables:
    """The status rows (plan order) and each measured study's BMF rows, by study name."""

    outcomes: tuple[StudyOutcome, ...]
    rows: Mapping[str, tuple[LevelMeasurement, ...]]


def collect(plan: CohortPlan, this_run: Mapping[str, StudyOutcome]) -> CohortTables:
    """Each planned study's row and BMF rows, from disk.

    ``this_run``: the outcomes of the studies this run computed (used as they are only where
    the disk has no record of them, e.g. when even the failure record could not be written).
    A study to compute whose outcome never came but whose record on disk matches the settings
    and inputs (a worker finished it while Ctrl-C stopped the run) is ``ok``.
    """
    outcomes, rows = [], {}
    for p in plan.studies:
        o = _outcome(plan, p, this_run.get(p.name))
        if o.status in ("ok", "skipped"):
            try:
                rows[p.name] = tuple(load_table(p.out_dir / "bmf.csv"))
            except VertebrafatError as exc:
                o = replace(o, status="error", error=f"outputs unreadable: {exc}",
                            kind=type(exc).__name__)
        outcomes.append(o)
    return CohortTables(tuple(outcomes), rows)


def _outcome(plan: CohortPlan, p: PlannedStudy, now: StudyOutcome | None) -> StudyOutcome:
    base = StudyOutcome(p.name, str(p.study.path), str(p.out_dir), "pending")
    if p.action == "fail":
        return replace(base, status="error", error=p.reason, kind="InputError")
    record = read_json(p.out_dir / RECORD)
    done = (record is not None and record.get("status") == "ok"
            and not settings_changes(record, plan.settings))
    if done and (p.action == "skip" or (now is not None and now.status == "ok")):
        assert record is not None
        return _from_record(base, record, "ok" if now is not None else "skipped")
    if done and now is None and resume_reason(p.out_dir, p.study, plan.settings) == SKIP:
        assert record is not None  # finished while the run was stopping (Ctrl-C)
        return _from_record(base, record, "ok")
    failure = read_json(failure_path(plan.out, p.name))
    if failure is not None and not settings_changes(failure, plan.settings) and (
            now is None or now.status == "error"):
        return _from_record(base, failure, "error")
    return now if now is not None else base


def _from_record(base: StudyOutcome, record: dict[str, Any], status: str) -> StudyOutcome:
    return replace(base, status=status,  # type: ignore[arg-type]
                   n_levels=int(record.get("n_levels", 0)),
                   seconds=float(record.get("seconds", 0.0)),
                   error=str(record.get("error", "")), kind=str(record.get("kind", "")),
                   finished=str(record.get("finished", "")))


def write_tables(out: Path, tables: CohortTables) -> dict[str, Path]:
    """Write ``cohort_status.csv`` and ``cohort_bmf.csv`` into ``out``; returns their paths.

    Raises
    ------
    OutputError
        If either cannot be written.
    """
    write_text_atomic(out / STATUS_TABLE, outcomes_csv(tables.outcomes))
    save_table([r for o in tables.outcomes for r in tables.rows.get(o.name, ())],
               out / BMF_TABLE)
    return {"status": out / STATUS_TABLE, "bmf": out / BMF_TABLE}
