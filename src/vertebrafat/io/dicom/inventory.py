"""What a DICOM folder holds, image stack by image stack, as plain data (``vertebrafat info``):
series, role, echo time, signal component, how many images or frames, which file, and which
value mapping reads them; then the echoes and what a water-fat study would still need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vertebrafat.core.errors import InputError
from vertebrafat.io.dicom.echoes import echo_summary, water_fat_gap
from vertebrafat.io.dicom.frames import FrameView
from vertebrafat.io.dicom.geometry import file_of, tag_int, tag_numbers, tag_value
from vertebrafat.io.dicom.roles import vendor_of
from vertebrafat.io.dicom.scan import Stack, scan_series, stacks_of
from vertebrafat.io.dicom.values import phase_text, value_mapping


def dicom_inventory(folder: Path) -> dict[str, Any]:
    """The image stacks of ``folder`` and its echoes, as JSON-ready data.

    Returns
    -------
    dict
        ``source``, ``format`` (``dicom``), ``vendor``, ``subject`` (PatientID or the folder
        name), ``field_strength_t`` (None when absent or unreadable), ``images`` (one dict per
        stack: ``series``, ``description``, ``role``, ``component``, ``te_ms``, ``echo``,
        ``images``, ``file``, ``values``), ``echoes`` (e.g.
        ``2 echoes (TE 2.04, 4.21 ms), magnitude only``, or None) and ``missing`` (what a
        water-fat study still needs; None when a water series is there).

    Raises
    ------
    InputError
        As :func:`vertebrafat.io.dicom.scan.scan_series`, or a value mapping that cannot be
        read (one line naming the file).
    """
    found = scan_series(folder)
    stacks = [st for s in found for st in stacks_of(s)]
    first = stacks[0].images[0]
    has_water = any(st.role == "water" for st in stacks)
    missing = None if has_water else (
        water_fat_gap(stacks) or "no water/fat/FF series and no echo images")
    return {
        "source": str(folder),
        "format": "dicom",
        "vendor": vendor_of(str(tag_value(first, "Manufacturer") or "")),
        "subject": str(tag_value(first, "PatientID") or "") or folder.name,
        "field_strength_t": _field_strength(first),
        "images": [_row(st, folder) for st in stacks],
        "echoes": echo_summary(stacks),
        "missing": missing,
    }


def _row(st: Stack, folder: Path) -> dict[str, Any]:
    first = st.images[0]
    if isinstance(first, FrameView):
        total = tag_int(first.parent, "NumberOfFrames", 1)
        where = f"{_relative(first.parent, folder)} ({len(st.images)} of {total} frames)"
    else:
        more = f" +{len(st.images) - 1} files" if len(st.images) > 1 else ""
        where = f"{_relative(first, folder)}{more}"
    values = phase_text(first) if st.component == "phase" else value_mapping(first).text
    return {"series": st.series.number, "description": st.series.description, "role": st.role,
            "component": st.component, "te_ms": st.te_ms, "echo": st.echo_number,
            "images": len(st.images), "file": where, "values": values}


def _relative(ds: Any, folder: Path) -> str:
    path = Path(file_of(ds))
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _field_strength(ds: Any) -> float | None:
    try:
        value = tag_numbers(ds, "MagneticFieldStrength", 1)
    except InputError:
        return None
    return None if value is None else float(value[0])
