"""``vertebrafat cohort``: plan, run the studies to compute, rebuild the tables and the report."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import InputError, Interrupted
from vertebrafat.core.schema import DEFAULT_EROSION_MM
from vertebrafat.io.atomic import output_errors
from vertebrafat.workflows.cohort.execute import OnOutcome, execute, ignoring_interrupts
from vertebrafat.workflows.cohort.outcome import StudyOutcome
from vertebrafat.workflows.cohort.plan import CohortPlan, plan_cohort
from vertebrafat.workflows.cohort.records import cohort_settings
from vertebrafat.workflows.cohort.tables import CohortTables, collect, write_tables


@dataclass(frozen=True)
class CohortRun:
    """A finished cohort run: the plan, one outcome per study (plan order), the files."""

    plan: CohortPlan
    outcomes: tuple[StudyOutcome, ...]
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Studies per status: ok, skipped, error, pending."""
        return {s: sum(o.status == s for o in self.outcomes)
                for s in ("ok", "skipped", "error", "pending")}


def find_plan(
    root: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
    model_path: str | None = None, erosion_mm: float = DEFAULT_EROSION_MM, slices: str = "all",
) -> CohortPlan:
    """What :func:`run_cohort` would do, without doing it (``cohort --dry-run``).

    Raises
    ------
    InputError, ModelError
        Bad root, no study, bad settings, or a model failing its checksum.
    """
    settings = cohort_settings(model_path, erosion_mm=erosion_mm, slices=slices)
    return plan_cohort(root, out_dir, settings)


def run_cohort(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model_path: str | None = None,
    erosion_mm: float = DEFAULT_EROSION_MM,
    slices: str = "all",
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    on_plan: Callable[[CohortPlan], None] | None = None,
    on_outcome: OnOutcome | None = None,
    report: bool = True,
) -> CohortRun:
    """Measure every study below ``root`` into ``out_dir``; resumable, on Dask.

    Parameters
    ----------
    root, out_dir : path
        Cohort root (studies found by :func:`vertebrafat.io.discovery.find_study_folders`)
        and output folder: ``OUT/<name>/`` per study, ``cohort_status.csv``,
        ``cohort_bmf.csv``, ``report.html``.
    model_path, erosion_mm, slices
        As ``segment``; with the package version they are the run's settings, recorded with
        each study (a study measured with other settings or other inputs is measured again).
    workers : int
        Local Dask worker processes; 0 runs the studies in this process, without Dask.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``).
    client : distributed.Client, optional
        A client of any Dask cluster (e.g. ``dask_jobqueue.SLURMCluster``); left open.
    on_plan, on_outcome : callable, optional
        Called with the plan before any study starts, and with each study's outcome as it ends.
    report : bool
        Write ``report.html`` (:func:`vertebrafat.workflows.cohort.report.write_report`).

    Returns
    -------
    CohortRun
        Outcomes rebuilt from the records on disk, one per study found.

    Raises
    ------
    InputError, ModelError, OutputError
        Before any study starts: bad root or settings, no study, unwritable ``out_dir``,
        negative ``workers``, an unreachable ``scheduler``.
    vertebrafat.core.errors.Interrupted
        On Ctrl-C, after the tables and the report are written from what was done.

    Examples
    --------
    >>> run = run_cohort("phantom", "cohort-out", workers=2)  # doctest: +SKIP
    >>> run.counts()  # doctest: +SKIP
    {'ok': 4, 'skipped': 0, 'error': 1, 'pending': 0}
    """
    start = time.perf_counter()
    out = Path(out_dir)
    if workers < 0:
        raise InputError(f"--workers must be >= 0 (0: no Dask), got {workers}")
    try:
        settings = cohort_settings(model_path, erosion_mm=erosion_mm, slices=slices)
        plan = plan_cohort(root, out, settings)
        with output_errors(out):  # an unwritable OUT is one error, not one per study
            out.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=out).close()
    except KeyboardInterrupt:
        raise Interrupted("before any study started; nothing was measured") from None
    if on_plan is not None:
        on_plan(plan)
    this_run: dict[str, StudyOutcome] = {}

    def ended(outcome: StudyOutcome) -> None:
        this_run[outcome.name] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    jobs = plan.jobs(model_path)
    interrupted = False
    try:
        execute(jobs, ended, workers=workers, scheduler=scheduler, client=client)
    except KeyboardInterrupt:
        interrupted = True
    finally:  # also when the cluster fails under us: the tables say what was done
        with ignoring_interrupts():
            tables = collect(plan, this_run)
            files = write_tables(out, tables)
            if report:
                files["report"] = _report(plan, tables)
    run = CohortRun(plan, tables.outcomes, time.perf_counter() - start, files)
    if interrupted:
        computed = {j.name for j in jobs}
        finished = [o for o in tables.outcomes if o.name in computed
                    and (o.name in this_run or o.status == "ok")]  # ok: ended while stopping
        n_failed = sum(o.status == "error" for o in finished)
        raise Interrupted(
            f"{len(finished)} of {len(jobs)} studies done ({n_failed} failed), "
            f"{len(jobs) - len(finished)} not; {files['status']} lists them; run the same command "
            "again to resume")
    return run


def _report(plan: CohortPlan, tables: CohortTables) -> Path:
    from vertebrafat.workflows.cohort.report import write_report

    return write_report(plan, tables)
