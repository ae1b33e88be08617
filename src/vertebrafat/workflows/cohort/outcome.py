"""One row of the cohort status table: what happened to one study."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "skipped", "error", "pending"]
STATUSES: tuple[Status, ...] = ("ok", "skipped", "error", "pending")


@dataclass(frozen=True)
class StudyOutcome:
    """What happened to one study of a cohort run.

    ``status``: ``ok`` measured by this run, ``skipped`` measured by an earlier run with the
    same settings and inputs, ``error`` its last attempt failed (``error``: one line, ``kind``:
    the exception's class, e.g. ``InputError``, ``KilledWorker``), ``pending`` not done (the run
    was interrupted first). ``seconds``: time of the attempt; ``finished``: when it ended (UTC,
    ISO 8601).
    """

    name: str
    study: str
    out_dir: str
    status: Status
    n_levels: int = 0
    seconds: float = 0.0
    error: str = ""
    kind: str = ""
    finished: str = ""

    def note(self) -> str | None:
        """``failed: NAME: KIND: ERROR`` for a failure (printed as it happens), else None."""
        return f"failed: {self.name}: {self.kind}: {self.error}" if self.status == "error" \
            else None


def outcomes_csv(outcomes: Sequence[StudyOutcome]) -> str:
    """CSV text of the cohort status table (one row per study)."""
    buf = io.StringIO()
    names = list(StudyOutcome.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for o in outcomes:
        row = asdict(o)
        row["seconds"] = round(o.seconds, 3)
        writer.writerow(row)
    return buf.getvalue()


def error_line(exc: BaseException) -> str:
    """An exception as one line: its message (first line), or its class when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
