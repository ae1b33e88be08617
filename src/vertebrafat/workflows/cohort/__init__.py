"""Many studies: the per-study pipeline mapped over a cohort with Dask, resumable.

The flow of ``vertebrafat cohort ROOT OUT``:

- :mod:`~vertebrafat.workflows.cohort.plan`: find the studies below ``ROOT`` by the readers'
  own rule (:mod:`vertebrafat.io.discovery`), name their output folders, and ask each study's
  record whether it is done with these settings and inputs (``--dry-run`` stops here);
- :mod:`~vertebrafat.workflows.cohort.execute`: run the others, in this process or on Dask;
  :mod:`~vertebrafat.workflows.cohort.process` is one study on a worker (any failure becomes
  its outcome, house rule 13);
- :mod:`~vertebrafat.workflows.cohort.tables` and :mod:`~vertebrafat.workflows.cohort.report`:
  the status and BMF tables and ``report.html``, rebuilt from the records on disk, also after
  Ctrl-C.

:mod:`~vertebrafat.workflows.cohort.records` says what is recorded and what a rerun compares.
"""

from vertebrafat.workflows.cohort.outcome import StudyOutcome, outcomes_csv
from vertebrafat.workflows.cohort.plan import CohortPlan, Job, PlannedStudy, study_name
from vertebrafat.workflows.cohort.process import process_study
from vertebrafat.workflows.cohort.run import CohortRun, find_plan, run_cohort

__all__ = [
    "CohortPlan",
    "CohortRun",
    "Job",
    "PlannedStudy",
    "StudyOutcome",
    "find_plan",
    "outcomes_csv",
    "process_study",
    "run_cohort",
    "study_name",
]
