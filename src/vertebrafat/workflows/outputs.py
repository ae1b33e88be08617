"""Write one study's outputs into a folder, all or nothing.

Files: ``labels.nii.gz`` (uint8 VerSe labels), ``probability.nii.gz`` (float32), both on the
input's grid in the input's own axis order (a NIfTI stored slice-last gets slice-last masks),
``seg.dcm`` (DICOM SEG, DICOM input only), ``bmf.csv`` (DESIGN.md schema), ``bmf.json`` (the
same rows and the level naming's cues and confidence),
``qc.png``, and two label tables so the mask opens with level names and colours
(:mod:`vertebrafat.io.label_tables`).

Everything is first written into a hidden staging folder beside ``OUT``; only when every file
exists are they moved into ``OUT`` (one rename each). A failure removes the staging folder and
leaves ``OUT`` as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vertebrafat.core.image import inverse_axes, permute_affine
from vertebrafat.io.atomic import output_errors, write_bytes_atomic, write_text_atomic
from vertebrafat.io.label_tables import itksnap_label_table, png_bytes, slicer_color_table
from vertebrafat.io.nifti import save_labels, save_volume
from vertebrafat.io.table import save_table, study_json
from vertebrafat.workflows.study import StudyResult


def write_study_outputs(
    result: StudyResult,
    out_dir: str | os.PathLike[str],
    *,
    dicom_source: str | os.PathLike[str] | None = None,
    extra: Mapping[str, bytes] | None = None,
) -> dict[str, Path]:
    """Write every output of ``result`` into ``out_dir`` (created if needed), all or nothing.

    Parameters
    ----------
    result : StudyResult
        From :func:`vertebrafat.workflows.study.analyse_study`.
    out_dir : path
        Output folder; existing files of the same names are replaced.
    dicom_source : path, optional
        The DICOM folder (or file) the study came from; when given, ``seg.dcm`` is written with
        :func:`vertebrafat.io.seg.save_dicom_seg`. Defaults to ``image.meta.source`` for DICOM
        input, none otherwise.
    extra : mapping, optional
        More files, name -> bytes, moved into ``out_dir`` after all the others: a marker
        among them (the cohort's ``run.json``) is there only when everything else is.

    Returns
    -------
    dict
        File role (``labels``, ``probability``, ``seg``, ``csv``, ``json``, ``qc``, ``itksnap``,
        ``slicer``) -> final path, and each ``extra`` name -> its path.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> result = vf.segment_study(vf.load_study("phantom/P001"))  # doctest: +SKIP
    >>> vf.write_study_outputs(result, "out/P001")  # doctest: +SKIP
    """
    out = Path(out_dir)
    image = result.image
    if dicom_source is None and image.meta.format == "dicom" and image.meta.source:
        dicom_source = image.meta.source
    with output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        names = _write_all(result, staging, dicom_source)
        for name, data in (extra or {}).items():
            write_bytes_atomic(staging / name, data)
            names[name] = name
        final = {}
        with output_errors(out):
            out.mkdir(parents=True, exist_ok=True)
            for role, name in names.items():
                os.replace(staging / name, out / name)
                final[role] = out / name
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_all(
    result: StudyResult, folder: Path, dicom_source: str | os.PathLike[str] | None
) -> dict[str, str]:
    """Write every file into ``folder``; the DICOM SEG (Python-bound) and the probability map
    (mostly deflate, which runs without the GIL) on their own threads, the small files here."""
    labels = result.labelling.labels
    # the volumes go back to the input's own axis order, so a viewer overlays them as they are
    back = inverse_axes(result.image.meta.file_axes)
    affine = permute_affine(result.image.affine, back)
    probability = np.asarray(result.probability, dtype=np.float32)  # no copy when float32
    with ThreadPoolExecutor(max_workers=2) as pool:
        # stored, not deflated: float32 probabilities shrink by 10 % only, for 0.04 s of a
        # 20-slice study's CPU time (0.005 s stored)
        jobs = [pool.submit(save_volume, np.transpose(probability, back), affine,
                            folder / "probability.nii.gz", deflate_level=0)]
        if dicom_source is not None:
            from vertebrafat.io.seg import save_dicom_seg

            jobs.append(pool.submit(save_dicom_seg, labels, result.image, dicom_source,
                                    folder / "seg.dcm"))
        save_labels(np.transpose(labels, back), affine, folder / "labels.nii.gz")
        save_table(result.table, folder / "bmf.csv")
        write_text_atomic(folder / "bmf.json",
                          study_json(result.table, result.labelling.naming()))
        write_bytes_atomic(folder / "qc.png", png_bytes(result.qc))
        write_text_atomic(folder / "labels.itksnap.txt", itksnap_label_table())
        write_text_atomic(folder / "labels.ctbl", slicer_color_table())
        for job in jobs:
            job.result()  # a writer's error surfaces here, and the staging folder goes
    names = {"labels": "labels.nii.gz", "probability": "probability.nii.gz", "csv": "bmf.csv",
             "json": "bmf.json", "qc": "qc.png", "itksnap": "labels.itksnap.txt",
             "slicer": "labels.ctbl"}
    if dicom_source is not None:
        names["seg"] = "seg.dcm"
    return names
