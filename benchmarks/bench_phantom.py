"""Benchmark: phantom cohort generation + NIfTI writing vs the 57-subjects-in-60-s target.

Run: ``python benchmarks/bench_phantom.py [--subjects 57] [--workers 2] [--out DIR]``.
Prints a table: one subject's stages (generate = anatomy + signal + fit + raters; write = NIfTI
+ truth files) timed serially, then the whole cohort written by ``write_phantom_cohort`` with
``--workers`` processes (the CLI default is 2, the target machine has 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vertebrafat.phantom import generate_subject
from vertebrafat.workflows.phantom_cohort import save_phantom_study, write_phantom_cohort

TARGET_S = 60.0
TARGET_SUBJECTS = 57


def main() -> None:
    """Time ``--subjects`` phantom subjects (seed 0) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=TARGET_SUBJECTS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        gen = write = 0.0
        for index in range(3):
            t0 = time.perf_counter()
            study = generate_subject(seed=0, index=index)
            t1 = time.perf_counter()
            save_phantom_study(study, out / "serial" / study.image.meta.subject)
            write += time.perf_counter() - t1
            gen += t1 - t0
        t0 = time.perf_counter()
        write_phantom_cohort(out / "cohort", n_subjects=args.subjects, seed=0, workers=args.workers)
        cohort = time.perf_counter() - t0
    scaled = cohort * TARGET_SUBJECTS / args.subjects
    print(f"{'stage':<36}{'total s':>10}{'s/subject':>12}")
    print(f"{'generate (sim + fit), serial, 3':<36}{gen:>10.2f}{gen / 3:>12.2f}")
    print(f"{'write NIfTI + truth, serial, 3':<36}{write:>10.2f}{write / 3:>12.2f}")
    label = f"cohort of {args.subjects}, {args.workers} workers"
    print(f"{label:<36}{cohort:>10.1f}{cohort / args.subjects:>12.2f}")
    print(
        f"{TARGET_SUBJECTS} subjects: {scaled:.1f} s (target < {TARGET_S:.0f} s): "
        f"{'met' if scaled < TARGET_S else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
