"""One study of a cohort, end to end, on whichever process runs it (this one or a Dask worker).

:func:`process_study` never raises an :class:`Exception`: any failure becomes the outcome's
error line and kind, and is recorded in ``OUT/<name>.error.json`` (house rule 13). A study's
outputs are written all or nothing, with ``run.json`` last
(:mod:`vertebrafat.workflows.cohort.records`).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import ModelError, VertebrafatError
from vertebrafat.io.atomic import output_errors
from vertebrafat.workflows.cohort.outcome import StudyOutcome, error_line
from vertebrafat.workflows.cohort.plan import Job
from vertebrafat.workflows.cohort.records import (
    RECORD,
    failure_path,
    now,
    record_json,
    write_failure,
)

THUMBNAIL = "qc_thumb.jpg"
"""The QC picture's thumbnail in each study's outputs (the cohort report shows it)."""


@lru_cache(maxsize=4)
def _cached_model(path: str | None) -> Any:
    from vertebrafat.workflows.loading import load_model

    return load_model(path, threads=1)


def process_study(job: Job) -> StudyOutcome:
    """Load, segment, label, measure and write one study; any failure becomes the outcome.

    Returns
    -------
    StudyOutcome
        ``ok`` with the level count, or ``error`` with the error line and the exception's
        class name (then ``OUT/<name>.error.json`` holds it, with the traceback of an
        exception that is no :class:`~vertebrafat.core.errors.VertebrafatError`).
    """
    start = time.perf_counter()
    try:
        n_levels = _measure(job, start)
    except Exception as exc:
        return _failed(job, exc, time.perf_counter() - start)
    with contextlib.suppress(OSError):  # a failure of an earlier run is history now
        failure_path(job.out_dir.parent, job.name).unlink(missing_ok=True)
    return StudyOutcome(job.name, str(job.study.path), str(job.out_dir), "ok", n_levels,
                        time.perf_counter() - start, finished=now())


def _measure(job: Job, start: float) -> int:
    from vertebrafat.io.discovery import input_files
    from vertebrafat.io.label_tables import thumbnail_bytes
    from vertebrafat.segmentation.inference import predict
    from vertebrafat.workflows.loading import load_study
    from vertebrafat.workflows.outputs import write_study_outputs
    from vertebrafat.workflows.study import analyse_study

    inputs = input_files(job.study, content=True)  # before reading: a later change shows
    model = _cached_model(job.model_path)
    if model.card.extra.get("sha256") != job.settings.model_sha256:
        raise ModelError(f"{model.source}: this worker's model is not the one the run was "
                         "started with (sha256 differs)")
    image = load_study(job.study.path)
    result = analyse_study(image, lambda im: predict(model, im),
                           erosion_mm=job.settings.erosion_mm, slices=job.settings.slices)
    with output_errors(job.out_dir):  # the old record goes first: a half-replaced folder
        (job.out_dir / RECORD).unlink(missing_ok=True)  # never passes for a finished one
    clear_staging(job.out_dir)
    record = record_json(job.settings, name=job.name, study=job.study, inputs=inputs,
                         n_levels=len(result.table), seconds=time.perf_counter() - start,
                         finished=now())
    write_study_outputs(result, job.out_dir, extra={THUMBNAIL: thumbnail_bytes(result.qc),
                                                    RECORD: record.encode("utf-8")})
    return len(result.table)


def _failed(job: Job, exc: Exception, seconds: float) -> StudyOutcome:
    outcome = StudyOutcome(job.name, str(job.study.path), str(job.out_dir), "error",
                           seconds=seconds, error=error_line(exc), kind=type(exc).__name__,
                           finished=now())
    trace = "" if isinstance(exc, VertebrafatError) else traceback.format_exc()
    with contextlib.suppress(VertebrafatError, OSError):  # the disk refuses even that: the
        record_failure(job, outcome, trace)  # run keeps the outcome in memory
    return outcome


def record_failure(job: Job, outcome: StudyOutcome, trace: str = "") -> None:
    """Write ``OUT/<name>.error.json`` for a failed ``outcome`` of ``job``."""
    write_failure(job.out_dir.parent, job.name, job.settings, study=outcome.study,
                  error=outcome.error, kind=outcome.kind, seconds=outcome.seconds,
                  finished=outcome.finished, traceback=trace)


def clear_staging(out_dir: Path) -> None:
    """Remove what an attempt killed while writing ``out_dir`` left: its hidden staging
    folders ``.<name>.XXXXXXXX`` (:func:`vertebrafat.workflows.outputs.write_study_outputs`)."""
    pattern = re.compile(rf"^\.{re.escape(out_dir.name)}\.[a-z0-9_]{{8}}$")
    if not out_dir.parent.is_dir():
        return
    for entry in out_dir.parent.iterdir():
        if pattern.match(entry.name) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
