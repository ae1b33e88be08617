"""Read a water-fat DICOM study: files in any order and with any names, searched recursively.

Series are grouped by SeriesInstanceUID, given a role from ImageType, SeriesDescription and
vendor conventions (:mod:`vertebrafat.io.dicom_roles`), and turned into float32 volumes with a
voxel -> RAS affine by :mod:`vertebrafat.io.dicom_geometry`.
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
from vertebrafat.io.dicom_geometry import (
    Broken,
    file_of,
    series_volume,
    tag_int,
    tag_numbers,
    tag_value,
)
from vertebrafat.io.dicom_roles import FF_FULL_SCALE, series_role, vendor_of
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent
from vertebrafat.io.orientation import check_sagittal

# What each kind of unusable file of a known series is called in messages.
_WHY = {"truncated": "unreadable DICOM file", "unplaced": "ImagePositionPatient missing",
        "no-pixels": "no pixel data"}


@dataclass
class _Series:
    uid: str
    number: int
    description: str
    datasets: list[Any]
    skipped: list[str]
    broken: list[Broken]
    roles: dict[str, str]  # role -> first file that says so

    @property
    def label(self) -> str:
        return f"series {self.number} '{self.description}'"

    @property
    def role(self) -> str | None:
        """The one role its files agree on; None when none or several (see ``roles``)."""
        return next(iter(self.roles)) if len(self.roles) == 1 else None


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
        for s in found:
            if len(s.roles) > 1:
                mix = ", ".join(f"{r} ({name})" for r, name in s.roles.items())
                raise InputError(f"{folder}: {s.label} mixes images of several roles ({mix}); "
                                 "cannot tell which is water")
        listing = "; ".join(f"{s.label} -> {s.role or '?'}" for s in found)
        skipped = dict.fromkeys(f for s in found for f in s.skipped)
        why = f"; {len(skipped)} file(s) skipped, first {next(iter(skipped))}" if skipped else ""
        raise InputError(f"{folder}: no water series found (series: {listing}){why}")
    volumes: dict[str, Volume] = {}
    affine: Affine | None = None
    for role, s in chosen.items():
        hint = f" ({len(s.skipped)} unreadable file(s) skipped: {s.skipped[0]})" if (
            s.skipped) else ""
        data, aff = series_volume(s.datasets, s.broken, label=s.label, source=str(folder),
                                  hint=hint)
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
    vendor = vendor_of(str(tag_value(water_ds, "Manufacturer") or ""))
    ff, scale = _fat_fraction(volumes, chosen, vendor, folder, ff_scale)
    r2 = volumes.get("r2star")
    if r2 is None and "t2star" in volumes:
        t2 = volumes["t2star"]
        r2 = np.where(t2 > 0, 1000.0 / np.maximum(t2, 1e-6), 0.0).astype(np.float32)
    field, field_note = _field_strength(water_ds)
    notes = tuple(dict.fromkeys(
        [f"skipped unreadable file {f}" for s in chosen.values() for f in s.skipped]
        + ([field_note] if field_note else [])
    ))
    infos = [
        SeriesInfo(role=r if chosen.get(r) is s else "unused", source=str(folder),
                   description=s.description, series_number=s.number, series_uid=s.uid,
                   n_slices=len(s.datasets))
        for s in found for r in [s.role or "unknown"]
    ]
    meta = StudyMeta(
        source=str(folder), format="dicom", vendor=vendor, ff_scale=scale,
        field_strength_t=field,
        series=tuple(infos), subject=str(tag_value(water_ds, "PatientID") or "") or folder.name,
        notes=notes,
    )
    return WaterFatImage(water=volumes["water"], affine=affine, fat=volumes.get("fat"), ff=ff,
                         r2star=r2, meta=meta)


def scan_series(folder: Path) -> list[_Series]:
    """Every image series below ``folder``, sorted by series number.

    Unreadable DICOM files (truncated, corrupt) are skipped with a warning and remembered in
    their series when their SeriesInstanceUID can be read, as are images without a position or
    without pixels: the series refuses them when no other file holds their slice. A series
    with no usable image at all (its UID may be cut short) is skipped with a warning too,
    unless it is made of unplaced images of no known role (screen saves), ignored as before.

    Raises
    ------
    InputError
        Empty folder, no DICOM image among the files (naming an enhanced multi-frame file when
        there is one), an image without SeriesInstanceUID or with a non-integer SeriesNumber.
    """
    files = dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: empty folder (no files)")
    groups: dict[str, _Series] = {}
    orphans: list[str] = []
    multi_frame: list[Any] = []
    n_non_dicom = 0
    for path in files:
        kind, ds = _read_file(path)
        if kind == "not-dicom":
            n_non_dicom += 1
        elif kind == "unreadable":
            orphans.append(str(path))
        elif kind == "multi-frame":
            multi_frame.append(ds)
        elif kind != "other":
            _add(groups, kind, ds, path)
    for uid in [uid for uid, s in groups.items() if not s.datasets]:
        dropped = groups.pop(uid)
        if dropped.role is None and all(b[2] == _WHY["unplaced"] for b in dropped.broken):
            continue  # images never placed and of no water-fat role: screen saves and the like
        for name, _, why in dropped.broken:
            warnings.warn(f"{name}: {why}, file skipped", stacklevel=2)
            orphans.append(f"{name} ({why})")
    if not groups:
        if multi_frame:
            raise InputError(f"{_multi_frame_note(multi_frame)}; export the series as "
                             "single-frame images")
        if n_non_dicom == len(files):
            raise InputError(f"{folder}: no DICOM files ({len(files)} files, none is DICOM)")
        first = f"; first unusable: {orphans[0]}" if orphans else ""
        raise InputError(f"{folder}: no readable DICOM image ({len(files)} files{first})")
    for s in groups.values():
        s.skipped.extend(orphans)
    return sorted(groups.values(), key=lambda s: (s.number, s.uid))


def _add(groups: dict[str, _Series], kind: str, ds: Any, path: Path) -> None:
    """File ``ds`` into its series: an image, or a broken file (``kind`` in ``_WHY``)."""
    uid = str(tag_value(ds, "SeriesInstanceUID") or "")
    if not uid:
        if kind != "image":
            return
        raise InputError(f"{path}: SeriesInstanceUID missing; cannot tell which series the "
                         "image belongs to")
    s = groups.get(uid)
    if s is None:
        s = groups[uid] = _Series(uid, tag_int(ds, "SeriesNumber", 0), "", [], [], [], {})
    description = str(tag_value(ds, "SeriesDescription") or "")
    s.description = s.description or description
    image_type = tag_value(ds, "ImageType") or []
    role = series_role([image_type] if isinstance(image_type, str) else list(image_type),
                       description)
    if role is not None:
        s.roles.setdefault(role, str(path))
    if kind == "image":
        s.datasets.append(ds)
        return
    where = None
    if kind != "unplaced":
        try:
            where = tag_numbers(ds, "ImagePositionPatient", 3)
        except InputError:
            where = None
    s.broken.append((str(path), where, _WHY[kind]))
    s.skipped.append(str(path))


def _multi_frame_note(files: list[Any]) -> str:
    more = f" (and {len(files) - 1} more)" if len(files) > 1 else ""
    frames = tag_int(files[0], "NumberOfFrames", 1)
    return (f"{file_of(files[0])}{more}: enhanced multi-frame DICOM ({frames} frames) is not "
            "supported")


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
    """``(kind, dataset)`` by content, without decoding pixels: kind is image, not-dicom,
    unreadable, unplaced (pixels but no position), no-pixels (position but no pixels),
    multi-frame (enhanced) or other (DICOM that is no image: DICOMDIR, reports).
    ``header_only`` leaves values over 1 KB (the pixel data) unread."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, defer_size="1 KB" if header_only else None)
    except InvalidDicomError:
        return "not-dicom", None
    except Exception:  # truncated or corrupt file: pydicom raises many types
        return "unreadable", None
    if "PerFrameFunctionalGroupsSequence" in ds:
        return "multi-frame", ds
    has_pixels, has_position = "PixelData" in ds, "ImagePositionPatient" in ds
    if not has_pixels and _image_storage(ds):  # cut before its pixels, or before its UIDs
        return ("no-pixels", ds) if "SeriesInstanceUID" in ds else ("unreadable", None)
    if not (has_pixels and has_position):
        return ("other" if not (has_pixels or has_position) else
                "unplaced" if has_pixels else "no-pixels"), ds
    return "image", ds


def image_study_uid(path: Path) -> str | None:
    """The StudyInstanceUID of a DICOM image file as :func:`scan_series` counts images (header
    only); ``""`` for a DICOM file that cannot be parsed or names no study, None for a file that
    is no DICOM image (not DICOM, or DICOM without pixel data)."""
    try:
        kind, ds = _open(path, header_only=True)
    except InputError:  # a SOP class UID that cannot be decoded: the reader will name it
        return ""
    if kind == "unreadable":
        return ""
    if kind not in ("image", "multi-frame", "unplaced"):
        return None
    return str(getattr(ds, "StudyInstanceUID", ""))


def _read_file(path: Path) -> tuple[str, Any]:
    """``(kind, dataset)`` as :func:`_open` says, the pixels of an image decoded: a truncated
    file fails there (kind ``truncated``). Unreadable and truncated files are warned about."""
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


def _image_storage(ds: Any) -> bool:
    """Whether the file says it is an image (its SOP class is one of the Image Storage ones)."""
    from pydicom.uid import UID

    try:
        meta = getattr(ds, "file_meta", None)
        uid = (meta.get("MediaStorageSOPClassUID") if meta is not None else None) or ds.get(
            "SOPClassUID")
    except Exception:  # a corrupt UID fails to decode in many ways
        raise InputError(f"{file_of(ds)}: SOP class UID cannot be decoded") from None
    return bool(uid) and "Image Storage" in UID(str(uid)).name


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


def _field_strength(ds: Any) -> tuple[float | None, str | None]:
    """MagneticFieldStrength in tesla, or None with a note when absent or not a number."""
    try:
        value = tag_numbers(ds, "MagneticFieldStrength", 1)
    except InputError as exc:
        return None, f"field strength unknown: {exc}"
    return (None if value is None else float(value[0])), None


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
