"""Multi-echo NIfTI layouts.

**A folder of one file per echo**, as dcm2niix converts a multi-echo series: ``NAME_e1.nii.gz``
(magnitude) with ``NAME_e1_ph.nii.gz`` (phase), or ``NAME_e1_real.nii.gz`` with
``NAME_e1_imaginary.nii.gz``; one such set of files per echo. Each magnitude/real file has a
BIDS sidecar (``NAME_e1.json``) with ``EchoTime`` (s); the first one with
``MagneticFieldStrength`` (T). The echoes are ordered by ``EchoTime``, never by file name.
Phase in radians; Siemens' integer phase (``Manufacturer`` Siemens, values within +-4096) is
scaled by pi/4096; any other range is refused rather than guessed.

**A 4D complex NIfTI file** (``(x, y, z, echoes)``, complex64) whose sidecar lists the echo
times: ``{"EchoTime": [0.0012, 0.0022, ...], "MagneticFieldStrength": 3}``.

Either sidecar may carry ``"PrecessionIsClockwise": false`` (the ISMRM toolbox's flag); the
default is clockwise. Volumes are brought to ``(slices, rows, cols)`` from the affine, in any
stored axis order.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vertebrafat.core.echoes import EchoSeries
from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.image import permute_affine, slices_first_axes
from vertebrafat.io.dcm2niix import read_sidecar
from vertebrafat.io.orientation import read_slices_first

_ECHO_NAME = re.compile(r"^(?P<stem>.+)_e(?P<n>\d+)(?P<part>_ph|_real|_imaginary)?\.nii(\.gz)?$")
_PARTS = {None: "magnitude", "_ph": "phase", "_real": "real", "_imaginary": "imaginary"}


def echo_files(folder: Path) -> dict[int, dict[str, Path]]:
    """Echo number -> {part: file} of the per-echo NIfTI files in ``folder`` (one stem).

    Raises
    ------
    InputError
        If files of two different series (stems) are there.
    """
    found: dict[int, dict[str, Path]] = {}
    stems = set()
    for p in sorted(folder.iterdir()):
        m = _ECHO_NAME.match(p.name)
        if m is None or not p.is_file():
            continue
        stems.add(m["stem"])
        found.setdefault(int(m["n"]), {})[_PARTS[m["part"]]] = p
    if len(stems) > 1:
        raise InputError(f"{folder}: echoes of several series ({', '.join(sorted(stems))}); "
                         "keep one series per folder")
    return found


def read_echo_folder(folder: Path, *, field_strength_t: float | None = None) -> EchoSeries:
    """Read a folder of per-echo NIfTI files (see module docstring).

    Raises
    ------
    InputError
        No echo files; an echo without its phase (or imaginary) part; a missing or repeated
        ``EchoTime``; a phase scale that cannot be told; no field strength.
    GeometryError
        Echo files on different grids.
    """
    files = echo_files(folder)
    if not files:
        raise InputError(f"{folder}: no per-echo NIfTI files (NAME_e1.nii.gz, NAME_e1_ph.nii.gz"
                         ", ...)")
    echoes, times, notes = [], [], set()
    first: dict[str, object] | None = None
    grid: tuple[tuple[int, ...], np.ndarray, tuple[int, int, int]] | None = None
    for n in sorted(files):
        parts = files[n]
        main = parts.get("magnitude", parts.get("real"))
        if main is None:
            raise InputError(f"{folder}: echo {n} has no magnitude or real file")
        meta = read_sidecar(main)
        first = first if first is not None else meta
        te = meta.get("EchoTime")
        if not isinstance(te, (int, float)):
            raise InputError(f"{main}: its sidecar gives no EchoTime (s)")
        volume, grid, note = _echo_volume(parts, meta, grid, n, folder)
        if note:
            notes.add(note)
        echoes.append(volume)
        times.append(float(te))
    order = np.argsort(times)
    te_sorted = [times[i] for i in order]
    if len(set(te_sorted)) != len(te_sorted):
        raise InputError(f"{folder}: two echoes have the same EchoTime ({te_sorted})")
    assert grid is not None and first is not None
    from vertebrafat.io.study import study_identity

    subject, scan = study_identity(folder)
    return EchoSeries(
        echoes=np.stack([echoes[i] for i in order]).astype(np.complex64),
        te_s=tuple(te_sorted), field_strength_t=_field(first, field_strength_t, folder),
        affine=grid[1], precession_clockwise=_clockwise(first), source=str(folder),
        format="nifti", subject=subject, scan=scan, file_axes=grid[2],
        notes=tuple(sorted(notes)),
    )


def _echo_volume(
    parts: dict[str, Path],
    meta: dict[str, object],
    grid: tuple[tuple[int, ...], np.ndarray, tuple[int, int, int]] | None,
    n: int,
    folder: Path,
) -> tuple[npt.NDArray[np.complex64], tuple[tuple[int, ...], np.ndarray, tuple[int, int, int]],
           str]:
    """One echo as complex ``(slices, rows, cols)``, the grid, and a note on the phase."""
    pair = ("magnitude", "phase") if "magnitude" in parts else ("real", "imaginary")
    if pair[1] not in parts:
        raise InputError(f"{folder}: echo {n} has a {pair[0]} file but no {pair[1]} file "
                         f"({parts[pair[0]].name})")
    a, aff, axes = read_slices_first(parts[pair[0]])
    b, aff_b, _ = read_slices_first(parts[pair[1]])
    here = (a.shape, aff, axes)
    for shape, affine, name in ((b.shape, aff_b, parts[pair[1]]),) + (
            ((grid[0], grid[1], parts[pair[0]]),) if grid is not None else ()):
        if shape != a.shape or not np.allclose(affine, aff, atol=1e-3):
            raise GeometryError(f"{name}: not on the grid of the other echo files")
    first: npt.NDArray[np.float32] = np.asarray(a, np.float32)
    second: npt.NDArray[np.float32] = np.asarray(b, np.float32)
    if pair[0] == "real":
        return (first + np.complex64(1j) * second).astype(np.complex64), here, ""
    phase, note = _radians(second, meta, parts[pair[1]])
    return (first * np.exp(1j * phase)).astype(np.complex64), here, note


def _radians(phase: npt.NDArray[np.floating], meta: dict[str, object], path: Path) -> (
    tuple[npt.NDArray[np.floating], str]
):
    top = float(np.max(np.abs(phase))) if phase.size else 0.0
    if top <= np.pi * 1.001:
        return phase, ""
    if "siemens" in str(meta.get("Manufacturer", "")).lower() and top <= 4096:
        return phase * (np.pi / 4096), "Siemens phase scaled by pi/4096"
    raise InputError(f"{path}: phase values up to {top:g} are not radians and not Siemens' "
                     "+-4096; convert the phase to radians")


def read_complex_nifti(path: Path, *, field_strength_t: float | None = None) -> EchoSeries:
    """Read a 4D complex NIfTI file whose sidecar lists ``EchoTime`` (see module docstring).

    Raises
    ------
    InputError
        Not 4D complex, no ``EchoTime`` list of the right length, no field strength.
    """
    import nibabel as nib

    meta = read_sidecar(path)
    te = meta.get("EchoTime")
    if not isinstance(te, list):
        raise InputError(f"{path}: its sidecar must list the echo times: "
                         '{"EchoTime": [t1, t2, ...]} (s)')
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)  # type: ignore[attr-defined]
        affine = np.asarray(img.affine, dtype=np.float64)  # type: ignore[attr-defined]
    except Exception as exc:  # nibabel raises many types for a bad file
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if data.ndim != 4 or not np.iscomplexobj(data) or data.shape[3] != len(te):
        raise InputError(f"{path}: expected complex (x, y, z, {len(te)} echoes), got "
                         f"{data.dtype} {data.shape}")
    axes = slices_first_axes(affine)
    echoes = np.stack([np.transpose(data[..., k], axes) for k in range(data.shape[3])])
    times = [float(t) for t in te]
    order = np.argsort(times)
    from vertebrafat.io.study import study_identity

    subject, scan = study_identity(path.parent)
    return EchoSeries(
        echoes=np.ascontiguousarray(echoes[order]).astype(np.complex64),
        te_s=tuple(times[i] for i in order), field_strength_t=_field(meta, field_strength_t, path),
        affine=permute_affine(affine, axes), precession_clockwise=_clockwise(meta),
        source=str(path), format="nifti", subject=subject, scan=scan, file_axes=axes,
    )


def _field(meta: dict[str, object], given: float | None, where: Path) -> float:
    if given is not None:
        return given
    value = meta.get("MagneticFieldStrength")
    if not isinstance(value, (int, float)):
        raise InputError(f"{where}: no MagneticFieldStrength in the sidecar; give it with "
                         "--field-strength")
    return float(value)


def _clockwise(meta: dict[str, object]) -> bool:
    value = meta.get("PrecessionIsClockwise", True)
    return bool(value)
