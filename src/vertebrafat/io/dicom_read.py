"""Read a water-fat DICOM study: files in any order and with any names, searched recursively.

Series are grouped by SeriesInstanceUID, given a role from ImageType, SeriesDescription and
vendor conventions (:mod:`vertebrafat.io.dicom_roles`), sorted by position along the slice
normal (never by name or InstanceNumber), and turned into float32 volumes with RescaleSlope /
Intercept applied and a voxel -> RAS affine built from the geometry tags.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.image import SeriesInfo, StudyMeta, WaterFatImage
from vertebrafat.core.types import Affine, Volume
from vertebrafat.io.dicom_roles import FF_FULL_SCALE, series_role, vendor_of
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent
from vertebrafat.io.orientation import check_sagittal

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class _Series:
    uid: str
    number: int
    description: str
    role: str | None
    datasets: list[Any]
    skipped: list[str]
    skipped_positions: list[tuple[str, np.ndarray]]

    @property
    def label(self) -> str:
        return f"series {self.number} '{self.description}'"


def load_dicom_study(
    folder: Path,
    *,
    ff_scale: float | None = None,
    series: Mapping[str, int] | None = None,
    allow_orientation: bool = False,
) -> WaterFatImage:
    """Load the water-fat study in ``folder`` (see :func:`vertebrafat.io.study.read_study`)."""
    found = scan_series(folder)
    chosen = _choose(found, folder, series or {})
    if "water" not in chosen:
        listing = "; ".join(f"{s.label} -> {s.role or '?'}" for s in found)
        raise InputError(f"{folder}: no water series found (series: {listing})")
    volumes: dict[str, Volume] = {}
    affine: Affine | None = None
    for role, s in chosen.items():
        data, aff = _volume(s)
        if affine is None:
            affine, first = aff, s
        elif data.shape != volumes[next(iter(volumes))].shape or not np.allclose(
            aff, affine, atol=1e-2
        ):
            raise GeometryError(
                f"{folder}: {s.label} ({role}) and {first.label} have different geometry "
                f"(shape {data.shape} vs {volumes[next(iter(volumes))].shape} or position)"
            )
        volumes[role] = data
    assert affine is not None
    check_sagittal(affine, source=str(folder), allow_orientation=allow_orientation)
    water_ds = chosen["water"].datasets[0]
    vendor = vendor_of(str(getattr(water_ds, "Manufacturer", "")))
    ff, scale = _fat_fraction(volumes, chosen, vendor, folder, ff_scale)
    r2 = volumes.get("r2star")
    if r2 is None and "t2star" in volumes:
        t2 = volumes["t2star"]
        r2 = np.where(t2 > 0, 1000.0 / np.maximum(t2, 1e-6), 0.0).astype(np.float32)
    notes = tuple(dict.fromkeys(
        f"skipped unreadable file {f}" for s in chosen.values() for f in s.skipped
    ))
    infos = [
        SeriesInfo(role=r if chosen.get(r) is s else "unused", source=str(folder),
                   description=s.description, series_number=s.number, series_uid=s.uid,
                   n_slices=len(s.datasets))
        for s in found for r in [s.role or "unknown"]
    ]
    field = getattr(water_ds, "MagneticFieldStrength", None)
    meta = StudyMeta(
        source=str(folder), format="dicom", vendor=vendor, ff_scale=scale,
        field_strength_t=float(field) if field not in (None, "") else None,
        series=tuple(infos), subject=str(getattr(water_ds, "PatientID", "")) or folder.name,
        notes=notes,
    )
    return WaterFatImage(water=volumes["water"], affine=affine, fat=volumes.get("fat"), ff=ff,
                         r2star=r2, meta=meta)


def scan_series(folder: Path) -> list[_Series]:
    """Every image series below ``folder``, sorted by series number.

    Unreadable DICOM files (truncated, corrupt) are skipped with a warning and remembered in
    their series when their SeriesInstanceUID can be read.

    Raises
    ------
    InputError
        Empty folder, or no DICOM image among the files.
    """
    files = dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: empty folder (no files)")
    groups: dict[str, _Series] = {}
    orphans: list[str] = []
    bad_by_uid: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    n_non_dicom = 0
    for path in files:
        kind, ds = _read_file(path)
        if kind == "not-dicom":
            n_non_dicom += 1
        elif kind == "unreadable":
            orphans.append(str(path))
        elif kind == "truncated":
            position = np.asarray(ds.ImagePositionPatient, dtype=np.float64)
            bad_by_uid[str(getattr(ds, "SeriesInstanceUID", ""))].append((str(path), position))
        elif kind == "image":
            uid = str(getattr(ds, "SeriesInstanceUID", ""))
            if uid not in groups:
                description = str(getattr(ds, "SeriesDescription", ""))
                role = series_role(list(getattr(ds, "ImageType", [])), description)
                groups[uid] = _Series(uid, int(getattr(ds, "SeriesNumber", 0) or 0),
                                      description, role, [], [], [])
            groups[uid].datasets.append(ds)
    if not groups:
        if n_non_dicom == len(files):
            raise InputError(f"{folder}: no DICOM files ({len(files)} files, none is DICOM)")
        raise InputError(f"{folder}: no readable DICOM image ({len(files)} files)")
    for uid, bad in bad_by_uid.items():
        if uid in groups:
            groups[uid].skipped.extend(name for name, _ in bad)
            groups[uid].skipped_positions.extend(bad)
    for s in groups.values():
        s.skipped.extend(orphans)
    return sorted(groups.values(), key=lambda s: (s.number, s.uid))


def dicom_files(folder: Path) -> list[Path]:
    """The files a DICOM study folder is made of: every file at any depth below ``folder``,
    whatever its name or extension, hidden ones (``.name``) left out; sorted. Symbolic links
    to folders are followed once (a folder reached twice is read once)."""
    seen: set[str] = set()
    found = []
    for here, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        found += [Path(here) / f for f in files if not f.startswith(".")
                  and os.path.isfile(os.path.join(here, f))]
    return sorted(found)


def _open(path: Path, *, header_only: bool = False) -> tuple[str, Any]:
    """``(kind, dataset)`` by content: kind is image (pixel data and a position), other (DICOM
    without them: DICOMDIR, reports), not-dicom or unreadable (DICOM that pydicom cannot
    parse). ``header_only`` leaves values over 1 KB (the pixel data) unread."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, defer_size="1 KB" if header_only else None)
    except InvalidDicomError:
        return "not-dicom", None
    except Exception:  # truncated or corrupt file: pydicom raises many types
        return "unreadable", None
    if "PixelData" not in ds or "ImagePositionPatient" not in ds:
        return "other", ds
    return "image", ds


def image_study_uid(path: Path) -> str | None:
    """The StudyInstanceUID of a DICOM image file as :func:`scan_series` counts images (header
    only); ``""`` for a DICOM file that cannot be parsed or names no study, None for a file that
    is no DICOM image (not DICOM, or DICOM without pixel data)."""
    kind, ds = _open(path, header_only=True)
    if kind == "unreadable":
        return ""
    if kind != "image":
        return None
    return str(getattr(ds, "StudyInstanceUID", ""))


def _read_file(path: Path) -> tuple[str, Any]:
    """``(kind, dataset)``: kind is image, not-dicom, unreadable, truncated or other."""
    kind, ds = _open(path)
    if kind == "unreadable":
        warnings.warn(f"{path}: unreadable DICOM file skipped", stacklevel=3)
    if kind != "image":
        return kind, ds
    try:
        ds.pixel_array  # noqa: B018 - decode now: a truncated file fails here
    except Exception:
        warnings.warn(f"{path}: truncated DICOM pixel data, file skipped", stacklevel=3)
        return "truncated", ds
    return "image", ds


def _choose(found: list[_Series], folder: Path, picks: Mapping[str, int]) -> dict[str, _Series]:
    chosen: dict[str, _Series] = {}
    by_role: dict[str, list[_Series]] = defaultdict(list)
    for s in found:
        if s.role is not None:
            by_role[s.role].append(s)
    for role, number in picks.items():
        match = [s for s in found if s.number == number]
        if not match:
            raise InputError(f"{folder}: --series {role}={number}: no series number {number}")
        chosen[role] = match[0]
    for role, cands in by_role.items():
        if role in chosen:
            continue
        if len(cands) > 1:
            listing = ", ".join(s.label for s in cands)
            raise InputError(
                f"{folder}: {len(cands)} candidate {role} series ({listing}); choose one with "
                f"--series {role}=NUMBER"
            )
        chosen[role] = cands[0]
    return chosen


def _volume(s: _Series) -> tuple[Volume, Affine]:
    ds0 = s.datasets[0]
    iop = np.asarray(ds0.ImageOrientationPatient, dtype=np.float64)
    x_dir, y_dir = iop[:3], iop[3:]
    normal = np.cross(x_dir, y_dir)
    ordered = sorted(s.datasets, key=lambda d: float(np.dot(d.ImagePositionPatient, normal)))
    pos = np.array([np.asarray(d.ImagePositionPatient, dtype=np.float64) for d in ordered])
    dists = pos @ normal
    if len(ordered) > 1:
        steps = np.diff(dists)
        median = float(np.median(steps))
        if median <= 0 or np.any(np.abs(steps - median) > 0.1 * median):
            why = f" ({len(s.skipped)} unreadable file(s) skipped: {s.skipped[0]})" if (
                s.skipped) else ""
            raise InputError(
                f"{s.label}: slice missing or irregular slice positions "
                f"(steps {np.round(steps, 2).tolist()} mm){why}"
            )
        slice_vec = (pos[-1] - pos[0]) / (len(ordered) - 1)
    else:
        slice_vec = normal * float(getattr(ds0, "SliceThickness", 1.0) or 1.0)
    for name, where in s.skipped_positions:
        if not np.any(np.linalg.norm(pos - where, axis=1) < 1e-2):
            raise InputError(
                f"{name}: unreadable DICOM file and its slice is missing from {s.label}"
            )
    dr, dc = (float(v) for v in ds0.PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = slice_vec
    lps[:3, 1] = y_dir * dr
    lps[:3, 2] = x_dir * dc
    lps[:3, 3] = pos[0]
    data = np.stack([_pixels(d) for d in ordered]).astype(np.float32)
    return data, _LPS_TO_RAS @ lps


def _pixels(ds: object) -> np.ndarray:
    arr = np.asarray(ds.pixel_array, dtype=np.float64)  # type: ignore[attr-defined]
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    return arr * slope + intercept


def _fat_fraction(
    volumes: Mapping[str, Volume],
    chosen: Mapping[str, _Series],
    vendor: str,
    folder: Path,
    ff_scale: float | None,
) -> tuple[Volume | None, float | str | None]:
    if "ff" in volumes:
        source = f"{folder}: {chosen['ff'].label}"
        hint = FF_FULL_SCALE["ge"] if vendor == "ge" else None
        scale = ff_scale if ff_scale is not None else detect_ff_scale(
            volumes["ff"], source=source, hint=hint
        )
        return ff_to_percent(volumes["ff"], scale, source=source), scale
    return None, None
