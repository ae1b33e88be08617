"""Many studies: the per-study pipeline mapped over a cohort with Dask, resumable.

Each study is loaded, segmented, labelled, measured and written to ``OUT/<name>/`` by
:func:`process_study`. A study whose ``OUT/<name>/bmf.csv`` already exists is skipped (resume);
a failing study records its error in its outcome and never stops the cohort (house rule 13).
The cohort table ``OUT/cohort_bmf.csv`` concatenates every study's table, and
``OUT/cohort_status.csv`` lists each study's status, error and time.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from vertebrafat.core.errors import InputError, VertebrafatError
from vertebrafat.core.schema import DEFAULT_EROSION_MM, LevelMeasurement
from vertebrafat.io.atomic import output_errors, write_text_atomic
from vertebrafat.io.table import load_table, save_table

Status = Literal["ok", "skipped", "error"]
_NIFTI_NAMES = ("water.nii.gz", "water.nii")


@dataclass(frozen=True)
class StudyOutcome:
    """What happened to one study of a cohort run."""

    name: str
    study: str
    out_dir: str
    status: Status
    n_levels: int = 0
    seconds: float = 0.0
    error: str = ""


def find_studies(root: str | os.PathLike[str]) -> list[Path]:
    """Study folders below ``root``, sorted: folders holding ``water.nii[.gz]``, and DICOM
    folders (``dicom*`` names or folders of ``.dcm`` files) that are not inside another study.

    Raises
    ------
    InputError
        If ``root`` is not a folder or holds no study.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base}: not a folder")
    found: list[Path] = []
    for folder, dirs, files in os.walk(base):
        here = Path(folder)
        dirs.sort()
        is_nifti = any(n in files for n in _NIFTI_NAMES)
        is_dicom = here.name.startswith("dicom") or (
            bool(files) and all(f.lower().endswith(".dcm") for f in files)
        )
        if is_nifti or (is_dicom and here != base):
            found.append(here)
            if is_dicom:
                dirs.clear()
    if not found:
        raise InputError(f"{base}: no study found (no water.nii[.gz] and no DICOM folder)")
    return sorted(found)


def study_name(study: Path, root: Path) -> str:
    """Output folder name of ``study``: its path below ``root`` with ``/`` turned into ``_``."""
    rel = study.relative_to(root)
    return "_".join(rel.parts) if rel.parts else study.name


@lru_cache(maxsize=4)
def _cached_model(path: str | None) -> Any:
    from vertebrafat.workflows.loading import load_model

    return load_model(path, threads=1)


def process_study(
    study: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    model_path: str | None = None,
    erosion_mm: float = DEFAULT_EROSION_MM,
    slices: str = "all",
) -> StudyOutcome:
    """Run one study end to end and write its outputs; errors become the outcome's ``error``."""
    out = Path(out_dir)
    if (out / "bmf.csv").is_file():
        return StudyOutcome(name, str(study), str(out), "skipped", len(load_table(out / "bmf.csv")))
    start = time.perf_counter()
    try:
        from vertebrafat.segmentation.inference import predict
        from vertebrafat.workflows.loading import load_study
        from vertebrafat.workflows.outputs import write_study_outputs
        from vertebrafat.workflows.study import analyse_study

        model = _cached_model(model_path)
        image = load_study(study)
        result = analyse_study(
            image, lambda img: predict(model, img), erosion_mm=erosion_mm, slices=slices
        )
        write_study_outputs(result, out)
    except VertebrafatError as exc:
        return StudyOutcome(
            name, str(study), str(out), "error", seconds=time.perf_counter() - start,
            error=str(exc),
        )
    return StudyOutcome(
        name, str(study), str(out), "ok", len(result.table), time.perf_counter() - start
    )


def run_cohort(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model_path: str | None = None,
    erosion_mm: float = DEFAULT_EROSION_MM,
    slices: str = "all",
    workers: int = 2,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[StudyOutcome]:
    """Process every study below ``root`` into ``out_dir`` with Dask; resumable.

    Parameters
    ----------
    root, out_dir : path
        Cohort root (see :func:`find_studies`) and output folder.
    workers : int
        Local worker processes (ignored with ``scheduler``); 0 runs the studies one after
        another in this process, without Dask.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``); local
        processes when omitted.
    progress : callable, optional
        Called as ``progress(done, total)`` after each study.

    Returns
    -------
    list of StudyOutcome
        One per study, in :func:`find_studies` order. ``cohort_bmf.csv`` and
        ``cohort_status.csv`` are written to ``out_dir``.
    """
    base = Path(root)
    out = Path(out_dir)
    studies = find_studies(base)
    with output_errors(out):  # an unwritable OUT is one error, not one per study
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    jobs = [(s, study_name(s, base)) for s in studies]
    kwargs = {"model_path": model_path, "erosion_mm": erosion_mm, "slices": slices}
    outcomes = _map(jobs, out, kwargs, workers=workers, scheduler=scheduler, progress=progress)
    rows: list[LevelMeasurement] = []
    for o in outcomes:
        if o.status != "error":
            rows.extend(load_table(Path(o.out_dir) / "bmf.csv"))
    save_table(rows, out / "cohort_bmf.csv")
    write_text_atomic(out / "cohort_status.csv", outcomes_csv(outcomes))
    return outcomes


def _map(
    jobs: Sequence[tuple[Path, str]],
    out: Path,
    kwargs: dict[str, Any],
    *,
    workers: int,
    scheduler: str | None,
    progress: Callable[[int, int], None] | None,
) -> list[StudyOutcome]:
    if scheduler is None and workers == 0:
        outcomes = []
        for done, (s, n) in enumerate(jobs, start=1):
            outcomes.append(process_study(s, out / n, name=n, **kwargs))
            if progress is not None:
                progress(done, len(jobs))
        return outcomes
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=50,
        )
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = [
            client.submit(process_study, s, out / n, name=n, pure=False, **kwargs)
            for s, n in jobs
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[StudyOutcome | None] = [None] * len(futures)
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if progress is not None:
                progress(done, len(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [r for r in results if r is not None]


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
