"""Multi-echo echoes from a file to water-fat maps on disk, or to a study ready to segment.

``separate_study(INPUT, OUT)`` writes into ``OUT`` (all files or none): ``water.nii.gz`` and
``fat.nii.gz`` (float32 magnitudes, the echoes' units), ``ff.nii.gz`` (int16 tenths of a
percent, ``scl_slope`` 0.1, as the phantom stores FF), ``r2star.nii.gz`` (int16 tenths of 1/s,
``scl_slope`` 0.1), ``fieldmap.nii.gz`` (float32 Hz; not in magnitude mode), ``separation.png``
(water, fat, FF, field map side by side), ``separation.json`` (the inputs and choices) and
``study.json`` (subject, scan): ``OUT`` is then a NIfTI study folder ``segment`` and ``measure``
read. Volumes go back to the input's own axis order.

:func:`load_separated` gives the separated study as a :class:`WaterFatImage` for ``segment``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vertebrafat.core.echoes import EchoSeries
from vertebrafat.core.errors import InputError
from vertebrafat.core.fat_spectrum import LIVER_6PEAK, FatModel
from vertebrafat.core.image import StudyMeta, WaterFatImage, inverse_axes, permute_affine
from vertebrafat.core.version import __version__
from vertebrafat.io.atomic import output_errors, write_bytes_atomic, write_text_atomic
from vertebrafat.io.echoes import read_echoes
from vertebrafat.io.label_tables import png_bytes
from vertebrafat.io.nifti import save_volume
from vertebrafat.qc.separation import render_separation
from vertebrafat.waterfat.separate import Method, Mode, Separation, separate

PathLike = str | os.PathLike[str]
INT16 = (-32768, 32767)


def separate_series(
    series: EchoSeries,
    *,
    mode: Mode = "complex",
    method: Method = "graphcut",
    fat_model: FatModel = LIVER_6PEAK,
) -> Separation:
    """:func:`vertebrafat.waterfat.separate.separate` on a series as read."""
    return separate(series.echoes, series.te_s, series.field_strength_t,
                    precession_clockwise=series.precession_clockwise, fat_model=fat_model,
                    mode=mode, method=method)


def separated_image(series: EchoSeries, sep: Separation) -> WaterFatImage:
    """The separation as a study: water and fat magnitudes, FF (%), R2* (1/s).

    Raises
    ------
    InputError
        If the series has no geometry (an ISMRM ``.mat`` without ``voxelSize``): a study
        to segment and measure needs real voxel sizes.
    """
    if not series.geometry_known:
        raise InputError(f"{series.source}: no voxel geometry in the file; separate it with "
                         "'vertebrafat separate' and give the maps a real affine to segment")
    fmt: Literal["phantom", "nifti"] = "phantom" if series.format == "phantom-npz" else "nifti"
    meta = StudyMeta(
        source=series.source, format=fmt, ff_scale="derived",
        field_strength_t=series.field_strength_t, subject=series.subject, scan=series.scan,
        file_axes=series.file_axes,
        notes=(f"separated from {len(series.te_s)} echoes ({sep.method})", *series.notes),
    )
    return WaterFatImage(
        water=np.abs(sep.water).astype(np.float32), affine=series.affine,
        fat=np.abs(sep.fat).astype(np.float32), ff=sep.ff_percent.astype(np.float32),
        r2star=sep.r2star_per_s.astype(np.float32), meta=meta,
    )


def load_separated(path: PathLike) -> WaterFatImage:
    """Read multi-echo echoes (:func:`vertebrafat.io.echoes.read_echoes`), separate them with
    the defaults and return the study to segment."""
    series = read_echoes(path)
    return separated_image(series, separate_series(series))


def separate_study(
    path: PathLike,
    out_dir: PathLike,
    *,
    field_strength_t: float | None = None,
    precession_clockwise: bool | None = None,
    mode: Mode = "complex",
    method: Method = "graphcut",
    fat_model: FatModel = LIVER_6PEAK,
) -> dict[str, Any]:
    """Separate the echoes in ``path`` and write the maps into ``out_dir`` (see module
    docstring). Returns the contents of ``separation.json`` with ``files`` (role -> path).

    Raises
    ------
    InputError
        As :func:`vertebrafat.io.echoes.read_echoes` and
        :func:`vertebrafat.waterfat.separate.separate`.
    OutputError
        If ``out_dir`` cannot be written.

    Examples
    --------
    >>> summary = separate_study("ph/P001/echoes.npz", "out/P001-sep")  # doctest: +SKIP
    >>> sorted(summary["files"])  # doctest: +SKIP
    ['fat', 'ff', 'fieldmap', 'json', 'qc', 'r2star', 'study', 'water']
    """
    series = read_echoes(path, field_strength_t=field_strength_t,
                         precession_clockwise=precession_clockwise)
    sep = separate_series(series, mode=mode, method=method, fat_model=fat_model)
    summary = _summary(series, sep, fat_model)
    out = Path(out_dir)
    with output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        names = _write_all(series, sep, summary, staging)
        with output_errors(out):
            out.mkdir(parents=True, exist_ok=True)
            for name in names.values():
                os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**summary, "files": {role: str(out / name) for role, name in names.items()}}


def _summary(series: EchoSeries, sep: Separation, fat_model: FatModel) -> dict[str, Any]:
    return {
        "source": series.source, "format": series.format, "subject": series.subject,
        "scan": series.scan, "shape": list(series.shape),
        "echo_times_s": list(series.te_s), "field_strength_t": series.field_strength_t,
        "precession_clockwise": series.precession_clockwise,
        "fat_model": asdict(fat_model), "method": sep.method,
        "period_hz": round(sep.period_hz, 3), "geometry_known": series.geometry_known,
        "notes": list(series.notes), "version": __version__,
    }


def _write_all(
    series: EchoSeries, sep: Separation, summary: dict[str, Any], folder: Path
) -> dict[str, str]:
    back = inverse_axes(series.file_axes)
    affine = permute_affine(series.affine, back)

    def put(name: str, volume: np.ndarray, slope: float | None = None) -> str:
        save_volume(np.transpose(volume, back), affine, folder / name, slope=slope)
        return name

    def tenths(values: np.ndarray) -> np.ndarray:
        return np.clip(np.round(np.asarray(values, np.float64) * 10), *INT16).astype(np.int16)

    names = {
        "water": put("water.nii.gz", np.abs(sep.water).astype(np.float32)),
        "fat": put("fat.nii.gz", np.abs(sep.fat).astype(np.float32)),
        "ff": put("ff.nii.gz", tenths(sep.ff_percent), 0.1),
        "r2star": put("r2star.nii.gz", tenths(sep.r2star_per_s), 0.1),
    }
    if sep.field_map_hz is not None:
        names["fieldmap"] = put("fieldmap.nii.gz", sep.field_map_hz.astype(np.float32))
    picture = render_separation(np.abs(sep.water), np.abs(sep.fat), sep.ff_percent,
                                sep.field_map_hz, affine=series.affine,
                                title=f"{series.subject} ({sep.method})")
    write_bytes_atomic(folder / "separation.png", png_bytes(picture))
    write_text_atomic(folder / "separation.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(folder / "study.json", json.dumps(
        {"subject": series.subject, "scan": series.scan}, indent=2) + "\n")
    return {**names, "qc": "separation.png", "json": "separation.json", "study": "study.json"}
