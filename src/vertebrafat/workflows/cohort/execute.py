"""Running a cohort's jobs: one after another in this process, or on Dask.

Dask: local worker processes (a ``LocalCluster``, one thread each), a running scheduler by
address, or a ``distributed.Client`` the caller made (any cluster: ``dask-jobqueue`` on SLURM,
Kubernetes, ...). Every study is one task; a worker process that dies (killed, out of memory)
has its task run again elsewhere, and a study that kills workers again and again ends as
Dask's ``KilledWorker``: a failed study, never a failed run.

Ctrl-C: local worker processes ignore SIGINT (set before they start and again by
:func:`dask_setup`, this module being their preload, when a nanny restarts one), so a Ctrl-C
in a terminal, which reaches the whole process group, stops only this process; the cluster is
then shut down with Ctrl-C ignored, quietly, and the ``KeyboardInterrupt`` goes on to the
caller.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vertebrafat.core.errors import InputError, VertebrafatError
from vertebrafat.workflows.cohort.outcome import StudyOutcome, error_line
from vertebrafat.workflows.cohort.plan import Job
from vertebrafat.workflows.cohort.process import process_study, record_failure
from vertebrafat.workflows.cohort.records import now

OnOutcome = Callable[[StudyOutcome], None]


def execute(
    jobs: Sequence[Job],
    on_outcome: OnOutcome,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
) -> None:
    """Run every job, calling ``on_outcome`` as each one ends (in the order they end).

    ``client`` (a ``distributed.Client``) is used as it is and left open; otherwise
    ``scheduler`` (an address) is connected to, or ``workers`` local processes are started
    (0: no Dask, every study in this process).

    Raises
    ------
    InputError
        If the scheduler cannot be reached.
    KeyboardInterrupt
        On Ctrl-C, once the cluster this function started is shut down.
    """
    if not jobs:
        return
    if client is None and scheduler is None and workers == 0:
        for job in jobs:
            on_outcome(process_study(job))
        return
    with _client(workers=workers, scheduler=scheduler, client=client) as c:
        _run_on(c, jobs, on_outcome)


def _run_on(client: Any, jobs: Sequence[Job], on_outcome: OnOutcome) -> None:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = [client.submit(process_study, job, key=f"vertebrafat-{job.name}-{run}")
               for job in jobs]
    job_of = {f.key: job for f, job in zip(futures, jobs, strict=True)}
    try:
        for future in as_completed(futures):
            job = job_of[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # KilledWorker, a lost worker: the study failed
                outcome = StudyOutcome(job.name, str(job.study.path), str(job.out_dir),
                                       "error", error=error_line(exc),
                                       kind=type(exc).__name__, finished=now())
                with contextlib.suppress(VertebrafatError, OSError):
                    record_failure(job, outcome)
            future.release()
            on_outcome(outcome)
    finally:
        with ignoring_interrupts(), contextlib.suppress(Exception):
            client.cancel(futures)


@contextlib.contextmanager
def _client(*, workers: int, scheduler: str | None, client: Any) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from distributed import Client

    if scheduler is not None:
        try:
            c = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({error_line(exc)})") \
                from None
        try:
            yield c
        finally:
            with ignoring_interrupts(), contextlib.suppress(Exception):
                c.close()
        return
    with ignoring_interrupts():  # worker processes started now inherit "ignore SIGINT"
        cluster = local_cluster(workers, preload=[__name__])
        c = Client(cluster)
    try:
        yield c
    finally:
        with ignoring_interrupts():
            for close in (c.close, cluster.close):
                with contextlib.suppress(Exception):
                    close()


WORKER_MALLOC_BYTES = 64 * 2**20
"""glibc's trim and mmap thresholds in local worker processes (bytes). Dask sets the trim
threshold to 64 KiB so that workers hand freed memory back at once; that also freezes glibc's
mmap threshold at 128 KiB, so each of a study's arrays (up to ~50 MB for 20 slices) is mapped
fresh and faulted in page by page: 0.30-0.37 s of system time per 20-slice study beside
0.9-1.0 s of user time. At 64 MiB a worker reuses its own freed arrays. Measured on 2 cores,
20-slice GE DICOM studies (system time per study; worker RSS): Dask's default 0.30-0.37 s,
~300 MiB; 32 MiB 0.09-0.13 s, 305 MiB; 64 MiB 0.06 s, 340-410 MiB; 128 MiB 0.03 s, 440-460
MiB; 256 MiB 0.03 s, 480-530 MiB (16-study rounds under load). Results are the same; over
100 studies (``benchmarks/bench_cohort.py``) each worker's RSS stayed flat, at 430-475 MiB
(Dask's default: 230-340 MiB); with one arena besides (:func:`local_cluster`), at 311-380
MiB."""


def local_cluster(workers: int, *, preload: Sequence[str] = ()) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes (at least 1), one thread each,
    no dashboard, quiet, glibc's allocator thresholds at :data:`WORKER_MALLOC_BYTES` and one
    allocator arena (``MALLOC_ARENA_MAX=1``).

    One arena: a worker runs its study on a thread of its own, and glibc gives such a thread
    its own arena, grown in 64 MiB heaps that a study's 20-50 MB arrays soon overflow, so
    its arrays were mapped fresh again: 4 400-23 000 page faults per 20-slice study on that
    thread, 1 400-2 000 with one arena (as on the main thread), 0.015 s less CPU per study
    (median of 6 pairs; the worker's other threads allocate little).

    Dask's statistical profiler is off: it samples the running task's stack every 10 ms for a
    dashboard these clusters do not have, and took half of a worker's event-loop CPU (0.026 ->
    0.013 s per 20-slice study)."""
    import dask
    from distributed import LocalCluster

    environ = "distributed.nanny.pre-spawn-environ."
    with dask.config.set({"distributed.worker.profile.enabled": False,
                          environ + "MALLOC_TRIM_THRESHOLD_": WORKER_MALLOC_BYTES,
                          environ + "MALLOC_MMAP_THRESHOLD_": WORKER_MALLOC_BYTES,
                          environ + "MALLOC_ARENA_MAX": 1}):
        # the nannies' own copy of these settings: a nanny keeps the caller's configuration by
        # reference, so a worker it restarts after this block would run with the defaults
        settings = {"distributed": copy.deepcopy(dask.config.get("distributed"))}
        return LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.CRITICAL, preload=list(preload),
            config=settings,
        )


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """Ignore SIGINT (Ctrl-C) inside the block; only the main thread can, elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def dask_setup(worker: Any) -> None:
    """Dask preload hook, run in each local worker process as it starts: ignore Ctrl-C (the
    process that started the cluster stops it)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
