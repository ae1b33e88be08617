"""Benchmark: a long cohort run on Dask: throughput, and memory per worker (flat, not growing).

Run: ``python benchmarks/bench_cohort.py [--studies 200] [--workers 2] [--every 20]``.

``--distinct`` phantom subjects (seed 0, NIfTI) are written once; the cohort root holds
``--studies`` study folders hard-linked to them (distinct names, so every one is measured).
``run_cohort`` measures them on a ``LocalCluster`` of ``--workers`` processes (one thread
each, as ``vertebrafat cohort`` starts it); every ``--every`` studies the resident memory
(RSS) of each worker process is read and printed. The last lines give the throughput against
one study's time alone, and each worker's RSS range, its lowest RSS in each quarter of the run
(what it keeps between studies: issue 17 wants it flat over 200 studies) and the trend.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from vertebrafat.phantom import generate_subject
from vertebrafat.workflows.cohort import StudyOutcome, run_cohort
from vertebrafat.workflows.phantom_cohort import save_phantom_study

FLAT_MIB = 50.0
"""A worker whose lowest RSS in the last quarter of the run exceeds that of the first quarter
by more than this is not flat (a leak of 1/3 MiB per study over 200 studies)."""


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _root(base: Path, *, studies: int, distinct: int) -> Path:
    source = base / "source"
    for index in range(distinct):
        study = generate_subject(seed=0, index=index)
        save_phantom_study(study, source / f"P{index:03d}")
    root = base / "root"
    for k in range(studies):
        folder = root / f"S{k:04d}"
        folder.mkdir(parents=True)
        src = source / f"P{k % distinct:03d}"
        for role in ("water", "fat", "ff", "r2star"):
            os.link(src / f"{role}.nii.gz", folder / f"{role}.nii.gz")
    return root


def main() -> None:
    """Run the cohort and print RSS per worker every ``--every`` studies."""
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--distinct", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = _root(Path(tmp), studies=args.studies, distinct=args.distinct)
        samples: list[tuple[int, float, dict[str, int]]] = []
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster) as client:
            done = [0]
            start = time.perf_counter()

            def sample(outcome: StudyOutcome) -> None:
                done[0] += 1
                if done[0] == 1 or done[0] % args.every == 0:
                    samples.append((done[0], time.perf_counter() - start, client.run(_rss)))
                    _row(*samples[-1], names=sorted(samples[0][2]), header=len(samples) == 1)

            run = run_cohort(root, Path(tmp) / "out", client=client, on_outcome=sample,
                             report=False)
            single = min(o.seconds for o in run.outcomes if o.status == "ok")
    _print(samples, run.counts(), single, args.workers)


def _row(n: int, seconds: float, rss: dict[str, int], *, names: list[str],
         header: bool) -> None:
    """One line of the RSS table, printed as the run goes (a worker a nanny restarted: 0)."""
    if header:
        print(f"{'studies':>8}{'s':>8}" + "".join(f"{f'worker {i} RSS MiB':>20}"
                                                  for i in range(len(names))))
    print(f"{n:>8}{seconds:>8.0f}" + "".join(f"{rss.get(w, 0) / 2**20:>20.0f}" for w in names),
          flush=True)


def _print(samples: list[tuple[int, float, dict[str, int]]], counts: dict[str, int],
           single: float, workers: int) -> None:
    import numpy as np

    n, seconds = samples[-1][0], samples[-1][1]
    print(f"studies: {counts}; {n / seconds:.2f} studies/s with {workers} workers "
          f"({seconds / n * workers:.2f} s per study per worker; fastest study alone "
          f"{single:.2f} s)")
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
