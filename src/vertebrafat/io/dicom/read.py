"""Read a water-fat DICOM study: files in any order and with any names, searched recursively.

Images are grouped into series and stacks (:mod:`vertebrafat.io.dicom.scan`: classic files and
the frames of enhanced multi-frame objects alike), each stack given a role from ImageType or
FrameType, SeriesDescription and vendor conventions (:mod:`vertebrafat.io.dicom.roles`), and
turned into float32 volumes with a voxel -> RAS affine by :mod:`vertebrafat.io.dicom.geometry`,
values through each vendor's mapping (:mod:`vertebrafat.io.dicom.values`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat.core.errors import GeometryError, InputError, NotWaterFatError
from vertebrafat.core.image import SeriesInfo, StudyMeta, WaterFatImage
from vertebrafat.core.types import Affine, Volume
from vertebrafat.io.dicom.echoes import water_fat_gap
from vertebrafat.io.dicom.files import release_pixels
from vertebrafat.io.dicom.geometry import series_volume, tag_numbers, tag_value
from vertebrafat.io.dicom.roles import FF_FULL_SCALE, vendor_of
from vertebrafat.io.dicom.scan import Series, Stack, scan_series, stacks_of
from vertebrafat.io.dicom.values import value_mapping
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent
from vertebrafat.io.orientation import check_sagittal

__all__ = ["load_dicom_study", "scan_series"]
# Full scale of an FF map whose Real World Value Mapping names these units.
_FF_UNITS_SCALE = {"%": 100.0}


def load_dicom_study(
    folder: Path,
    *,
    ff_scale: float | None = None,
    series: Mapping[str, int] | None = None,
    allow_orientation: bool = False,
) -> WaterFatImage:
    """Load the water-fat study in ``folder`` (see :func:`vertebrafat.io.study.read_study`).

    Classic and enhanced multi-frame files alike; without water images, the one line says what
    the folder holds instead (echoes, their times, magnitude/phase) and what a water-fat study
    needs.
    """
    found = scan_series(folder)
    stacks = [stack for s in found for stack in stacks_of(s)]
    chosen = _choose(stacks, folder, series or {})
    if "water" not in chosen:
        _no_water(found, stacks, folder)
    volumes: dict[str, Volume] = {}
    affine: Affine | None = None
    for role, st in chosen.items():
        s = st.series
        hint = f" ({len(s.skipped)} unreadable file(s) skipped: {s.skipped[0]})" if (
            s.skipped) else ""
        data, aff = series_volume(st.images, s.broken, label=st.label, source=str(folder),
                                  hint=hint)
        if affine is None:
            affine, first = aff, st
        elif data.shape != volumes[next(iter(volumes))].shape or not np.allclose(
            aff, affine, atol=1e-2
        ):
            raise GeometryError(
                f"{folder}: {st.label} ({role}) and {first.label} have different geometry "
                f"(shape {data.shape} vs {volumes[next(iter(volumes))].shape} or position)"
            )
        volumes[role] = data
    assert affine is not None
    check_sagittal(affine, source=str(folder), allow_orientation=allow_orientation)
    water_ds = chosen["water"].images[0]
    vendor = vendor_of(str(tag_value(water_ds, "Manufacturer") or ""))
    ff, scale = _fat_fraction(volumes, chosen, vendor, folder, ff_scale)
    r2 = volumes.get("r2star")
    if r2 is None and "t2star" in volumes:
        t2 = volumes["t2star"]
        r2 = np.where(t2 > 0, 1000.0 / np.maximum(t2, 1e-6), 0.0).astype(np.float32)
    field, field_note = _field_strength(water_ds)
    notes = tuple(dict.fromkeys(
        [f"skipped unreadable file {f}" for st in chosen.values() for f in st.series.skipped]
        + ([field_note] if field_note else [])
    ))
    infos = [
        SeriesInfo(role=r if chosen.get(r) is st else "unused", source=str(folder),
                   description=st.series.description, series_number=st.series.number,
                   series_uid=st.series.uid, n_slices=len(st.images))
        for st in stacks for r in [st.role or "unknown"]
    ]
    headers = chosen["water"].images
    release_pixels(headers)  # their values are in the volumes; a DICOM SEG needs the headers
    meta = StudyMeta(
        source=str(folder), format="dicom", vendor=vendor, ff_scale=scale,
        field_strength_t=field,
        series=tuple(infos), subject=str(tag_value(water_ds, "PatientID") or "") or folder.name,
        notes=notes, water_headers=tuple(headers),
    )
    return WaterFatImage(water=volumes["water"], affine=affine, fat=volumes.get("fat"), ff=ff,
                         r2star=r2, meta=meta)


def _no_water(found: list[Series], stacks: list[Stack], folder: Path) -> None:
    """Raise the one line that says why no water image was found and what the folder holds
    (:class:`NotWaterFatError`; an InputError when a series contradicts itself)."""
    for s in found:
        if len(s.roles) > 1:
            mix = ", ".join(f"{r} ({name})" for r, name in s.roles.items())
            raise InputError(f"{folder}: {s.label} mixes images of several roles ({mix}); "
                             "cannot tell which is water")
    listing = "; ".join(_listing(s, [st for st in stacks if st.series is s]) for s in found)
    skipped = dict.fromkeys(f for s in found for f in s.skipped)
    why = f"; {len(skipped)} file(s) skipped, first {next(iter(skipped))}" if skipped else ""
    gap = water_fat_gap(stacks)
    raise NotWaterFatError(f"{folder}: no water series found (series: {listing}){why}"
                     f"{f'; {gap}' if gap else ''}")


def _listing(s: Series, stacks: list[Stack]) -> str:
    """``series 5 'Ax T1' -> ?`` and, for a series of several stacks, how many."""
    roles = "/".join(dict.fromkeys(st.role or "?" for st in stacks)) or "?"
    return f"{s.label} -> {roles}" + (f" ({len(stacks)} image stacks)" if len(stacks) > 1 else "")


def _choose(stacks: list[Stack], folder: Path, picks: Mapping[str, int]) -> dict[str, Stack]:
    """role -> its stack: the ``--series`` picks, then the one stack of each role.

    Raises
    ------
    InputError
        A picked series number that does not exist, or that holds several stacks none of
        which alone has the role (echoes, components); several stacks of one role.
    """
    chosen: dict[str, Stack] = {}
    by_role: dict[str, list[Stack]] = defaultdict(list)
    for st in stacks:
        if st.role is not None:
            by_role[st.role].append(st)
    for role, number in picks.items():
        match = [st for st in stacks if st.series.number == number]
        if not match:
            raise InputError(f"{folder}: --series {role}={number}: no series number {number}")
        if len(match) > 1:
            match = [st for st in match if st.role == role] or match
        if len(match) > 1:
            listing = "; ".join(st.detail for st in match)
            raise InputError(f"{folder}: --series {role}={number}: {match[0].series.label} "
                             f"holds {len(match)} image stacks ({listing}), not one {role} "
                             "image per slice")
        chosen[role] = match[0]
    for role, cands in by_role.items():
        if role in chosen:
            continue
        if len(cands) > 1:
            listing = ", ".join(st.label for st in cands)
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
    chosen: Mapping[str, Stack],
    vendor: str,
    folder: Path,
    ff_scale: float | None,
) -> tuple[Volume | None, float | str | None]:
    if "ff" in volumes:
        source = f"{folder}: {chosen['ff'].label}"
        mapping = value_mapping(chosen["ff"].images[0])
        hint = (_FF_UNITS_SCALE.get(mapping.units) if mapping.kind == "real-world"
                else FF_FULL_SCALE["ge"] if vendor == "ge" else None)
        scale = ff_scale if ff_scale is not None else detect_ff_scale(
            volumes["ff"], source=source, hint=hint
        )
        return ff_to_percent(volumes["ff"], scale, source=source), scale
    return None, None
