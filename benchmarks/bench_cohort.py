"""Benchmark: a long cohort run on Dask: warm time per study, and memory per worker (flat).

Run: ``python benchmarks/bench_cohort.py [--studies 100] [--workers 2] [--every 10]
[--subjects 12] [--format dicom|nifti]``.

The phantom subjects ``--subjects`` (seed 0; index 12, the default, is 20 slices of 256 x 256,
the study ``bench_segment.py`` times) make ``--studies`` study folders, in turn: GE DICOM
(default; each study with its own UIDs) or NIfTI (hard links to one copy per subject).
``run_cohort`` measures them on the ``LocalCluster`` that ``vertebrafat cohort`` starts
(:func:`vertebrafat.workflows.cohort.execute.local_cluster`: ``--workers`` processes, one
thread each, glibc's allocator thresholds at 64 MiB) and writes the cohort report, as
``vertebrafat cohort`` does. Every ``--every`` studies the resident memory (RSS) of each
worker process is read and printed.

The last lines give the time per study amortised over the whole run, cluster start and
report included (issue 16: <= 0.35 s for 20-slice studies on 2 cores), the steady rate after
the first study of each worker, one study's time alone, and each worker's RSS range, its
lowest RSS in each quarter of the run (what it keeps between studies: issue 17 wants it flat)
and the trend.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_segment import machine
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.phantom import generate_subject
from vertebrafat.workflows.cohort import StudyOutcome, run_cohort
from vertebrafat.workflows.cohort.execute import local_cluster
from vertebrafat.workflows.phantom_cohort import save_phantom_study

FLAT_MIB = 50.0
"""A worker whose lowest RSS in the last quarter of the run exceeds that of the first quarter
by more than this is not flat (a leak of 1/3 MiB per study over 200 studies)."""


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _cpu() -> float:
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _root(base: Path, *, studies: int, subjects: list[int], fmt: str) -> Path:
    """NIfTI: each subject written once, the studies hard-linked to it. DICOM: each study
    written with its own UIDs (the cohort tells studies apart by StudyInstanceUID)."""
    images = {index: generate_subject(seed=0, index=index) for index in subjects}
    source = base / "source"
    if fmt == "nifti":
        for index, study in images.items():
            save_phantom_study(study, source / f"P{index:03d}")
    root = base / "root"
    for k in range(studies):
        index = subjects[k % len(subjects)]
        folder = root / f"S{k:04d}"
        if fmt == "dicom":
            save_dicom_study(images[index].image, folder, vendor="ge",
                             patient_name=f"BENCH^S{k:04d}", patient_id=f"S{k:04d}", uid_seed=k)
            continue
        folder.mkdir(parents=True)
        for role in ("water", "fat", "ff", "r2star"):
            os.link(source / f"P{index:03d}" / f"{role}.nii.gz", folder / f"{role}.nii.gz")
    return root


def main() -> None:
    """Run the cohort; print RSS per worker every ``--every`` studies, then the timings."""
    from distributed import Client

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--subjects", type=int, nargs="+", default=[12])
    parser.add_argument("--format", choices=("dicom", "nifti"), default="dicom")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = _root(Path(tmp), studies=args.studies, subjects=args.subjects, fmt=args.format)
        samples: list[tuple[int, float, dict[str, int]]] = []
        begin = time.perf_counter()
        with local_cluster(args.workers) as cluster, Client(cluster) as client:
            done = [0]
            start = time.perf_counter()
            firsts: list[float] = []

            def sample(outcome: StudyOutcome) -> None:
                done[0] += 1
                if done[0] <= args.workers:
                    firsts.append(time.perf_counter())
                if done[0] == 1 or done[0] % args.every == 0:
                    samples.append((done[0], time.perf_counter() - start, client.run(_rss)))
                    _row(*samples[-1], names=sorted(samples[0][2]), header=len(samples) == 1)

            run = run_cohort(root, Path(tmp) / "out", client=client, on_outcome=sample)
            end = time.perf_counter()
            cpu = sum(client.run(_cpu).values())
            single = min(o.seconds for o in run.outcomes if o.status == "ok")
    n = len(run.outcomes)
    print(f"studies: {run.counts()}, {args.format}, subjects {args.subjects}, "
          f"{args.workers} workers x 1 thread")
    print(f"cluster start {start - begin:.2f} s; run {end - start:.2f} s; per study amortised "
          f"over {n} (cluster start and report included) {(end - begin) / n:.3f} s "
          f"(target <= 0.35 s); steady, after each worker's first study "
          f"{(end - max(firsts)) / max(1, n - len(firsts)):.3f} s; fastest study alone "
          f"{single:.2f} s on one worker")
    print(f"worker CPU time {cpu / n:.3f} s per study (user + system, cluster start "
          f"included): {cpu / n / args.workers:.3f} s per study on {args.workers} idle cores")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    _memory(samples)


def _row(n: int, seconds: float, rss: dict[str, int], *, names: list[str],
         header: bool) -> None:
    """One line of the RSS table, printed as the run goes (a worker a nanny restarted: 0)."""
    if header:
        print(f"{'studies':>8}{'s':>8}" + "".join(f"{f'worker {i} RSS MiB':>20}"
                                                  for i in range(len(names))))
    print(f"{n:>8}{seconds:>8.0f}" + "".join(f"{rss.get(w, 0) / 2**20:>20.0f}" for w in names),
          flush=True)


def _memory(samples: list[tuple[int, float, dict[str, int]]]) -> None:
    import numpy as np

    steady = samples[1:]  # after the first study: the model and the first arrays are in
    if len(steady) < 8:
        print("too few samples for a memory trend: give more --studies or a smaller --every")
        return
    verdicts = []
    for i, w in enumerate(sorted(samples[0][2])):
        kept = [(k, rss[w] / 2**20) for k, _, rss in steady if w in rss]
        done, mib = np.array([k for k, _ in kept]), np.array([m for _, m in kept])
        # a sample lands anywhere in a study (its arrays add up to ~150 MiB); the lowest RSS
        # of each quarter of the run is what the worker keeps between studies
        low = [float(q.min()) for q in np.array_split(mib, 4)]
        slope = float(np.polyfit(done, mib, 1)[0] * 100)
        verdicts.append(low[-1] - low[0] <= FLAT_MIB)
        print(f"worker {i}: RSS {mib.min():.0f}-{mib.max():.0f} MiB over studies {done[0]}-"
              f"{done[-1]}; lowest per quarter of the run "
              + ", ".join(f"{v:.0f}" for v in low)
              + f" MiB ({low[-1] - low[0]:+.0f}, limit +{FLAT_MIB:.0f}); trend of all samples "
              f"{slope:+.0f} MiB per 100 studies")
    print(f"memory per worker: {'flat' if all(verdicts) else 'GROWING'}")


if __name__ == "__main__":
    main()
