"""Multi-echo gradient echoes from files: :func:`read_echoes` -> :class:`EchoSeries`.

Layouts read (the reader is chosen by the path, never by trial):

- ``*.mat``: the ISMRM fat-water toolbox's ``imDataParams`` (MATLAB v5/v7;
  :mod:`vertebrafat.io.echoes.mat`).
- ``*.npz``: the phantom's ``echoes.npz`` (:mod:`vertebrafat.io.echoes.npz`).
- a NIfTI folder of one file per echo as dcm2niix writes multi-echo series (``NAME_e1.nii.gz``
  magnitude with ``NAME_e1_ph.nii.gz`` phase, or ``_real``/``_imaginary``), echo times from
  the BIDS sidecars' ``EchoTime``; or a 4D complex NIfTI file with a sidecar listing the echo
  times (:mod:`vertebrafat.io.echoes.nifti`).

Multi-echo DICOM is not read here yet (see the README).
"""

from __future__ import annotations

import os
from pathlib import Path

from vertebrafat.core.echoes import EchoSeries
from vertebrafat.core.errors import InputError
from vertebrafat.io.echoes.mat import read_mat
from vertebrafat.io.echoes.nifti import echo_files, read_complex_nifti, read_echo_folder
from vertebrafat.io.echoes.npz import read_npz

PathLike = str | os.PathLike[str]


def is_echo_study(path: PathLike) -> bool:
    """Whether ``path`` is a multi-echo input :func:`read_echoes` reads: a ``.mat`` or ``.npz``
    file, a 4D NIfTI file with an ``EchoTime`` list in its sidecar, or a folder of per-echo
    NIfTI files (``*_e1.nii*``) without water-fat maps (``water.nii*``)."""
    p = Path(path)
    if p.is_file():
        return p.suffix in (".mat", ".npz") or _is_4d_echo_nifti(p)
    if p.is_dir():
        has_maps = any(p.glob("water.nii*"))
        return not has_maps and bool(echo_files(p))
    return False


def read_echoes(
    path: PathLike,
    *,
    field_strength_t: float | None = None,
    precession_clockwise: bool | None = None,
) -> EchoSeries:
    """Read one multi-echo study.

    Parameters
    ----------
    path : path
        A ``.mat`` (ISMRM toolbox), ``.npz`` (phantom), a 4D complex NIfTI file, a folder
        of per-echo NIfTI files, or a DICOM folder of multi-echo images (magnitude/phase or
        real/imaginary, classic or enhanced multi-frame).
    field_strength_t : float, optional
        B0 (T); overrides the file's (needed when the file has none).
    precession_clockwise : bool, optional
        Overrides the file's ``PrecessionIsClockwise`` (NIfTI: default clockwise).

    Raises
    ------
    InputError
        Missing path, unknown layout, unreadable file, missing echo times or field strength.

    Examples
    --------
    >>> series = read_echoes("../shared/data/ismrm2012/13.mat")  # doctest: +SKIP
    >>> series.shape, series.field_strength_t, len(series.te_s)  # doctest: +SKIP
    ((4, 256, 131), 3.0, 4)
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_file() and p.suffix == ".mat":
        series = read_mat(p, field_strength_t=field_strength_t)
    elif p.is_file() and p.suffix == ".npz":
        series = read_npz(p, field_strength_t=field_strength_t)
    elif p.is_file():
        series = read_complex_nifti(p, field_strength_t=field_strength_t)
    elif echo_files(p):
        series = read_echo_folder(p, field_strength_t=field_strength_t)
    else:
        series = read_dicom_echo_folder(p, field_strength_t=field_strength_t)
    if precession_clockwise is None:
        return series
    from dataclasses import replace

    return replace(series, precession_clockwise=precession_clockwise)


def read_dicom_echo_folder(folder: Path, *, field_strength_t: float | None = None) -> (
    EchoSeries
):
    """A DICOM folder's multi-echo images (:func:`vertebrafat.io.dicom.echoes.
    load_dicom_echoes`: 3 or more echoes with phase) as an :class:`EchoSeries`. The sense of
    precession is taken as clockwise (the vendors' phase sign is not in the files; pass
    ``precession_clockwise`` when water and fat come out swapped).

    Raises
    ------
    InputError
        As ``load_dicom_echoes`` (one line saying how many echoes it found), or no field
        strength in the files and none given.
    """
    from vertebrafat.io.dicom.echoes import load_dicom_echoes

    found = load_dicom_echoes(folder)
    strength = field_strength_t if field_strength_t is not None else found.field_strength_t
    if strength is None:
        raise InputError(f"{folder}: no MagneticFieldStrength in the files; give the field "
                         "strength (--field-strength)")
    return EchoSeries(
        echoes=found.echoes, te_s=tuple(float(t) for t in found.echo_times_s),
        field_strength_t=float(strength), affine=found.affine, source=str(folder),
        format="dicom", subject=folder.name, notes=tuple(found.notes),
    )


def _is_4d_echo_nifti(p: Path) -> bool:
    if not (p.name.endswith(".nii") or p.name.endswith(".nii.gz")):
        return False
    from vertebrafat.io.dcm2niix import read_sidecar

    return isinstance(read_sidecar(p).get("EchoTime"), list)


__all__ = ["EchoSeries", "is_echo_study", "read_echoes"]
