"""One DICOM series as a volume: each instance's geometry tags checked, slices ordered along the
normal (never by name or InstanceNumber), RescaleSlope/Intercept applied, and the voxel -> RAS
affine built. Every refusal is one line naming the file and the tag or the contradiction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.types import Affine, FloatArray, Volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# A file the reader could not use but whose series is known: (path, position or None, why).
Broken = tuple[str, FloatArray | None, str]


def file_of(ds: Any) -> str:
    """The path a dataset was read from (for messages)."""
    return str(getattr(ds, "filename", None) or "<dataset>")


def tag_value(ds: Any, keyword: str) -> Any:
    """``ds.get(keyword)``, or an InputError naming the file when pydicom cannot decode it."""
    try:
        return ds.get(keyword)
    except Exception:  # pydicom decodes lazily: a corrupt value fails here in many ways
        raise InputError(f"{file_of(ds)}: {keyword} cannot be decoded") from None


def tag_numbers(ds: Any, keyword: str, count: int) -> FloatArray | None:
    """The value of ``keyword`` as ``count`` finite numbers; None when absent or empty.

    Raises
    ------
    InputError
        When the tag is present but not ``count`` finite numbers (names the file and value).
    """
    value = tag_value(ds, keyword)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = isinstance(value, (str, bytes))
    values = list(value) if isinstance(value, Sequence) and not text else [value]
    try:
        numbers = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        numbers = np.full(0, np.nan)
    if numbers.shape != (count,) or not np.all(np.isfinite(numbers)):
        shown = " ".join(str(value).split())[:80]
        raise InputError(f"{file_of(ds)}: {keyword} {shown} is not {count} finite number(s)")
    return numbers


def tag_int(ds: Any, keyword: str, default: int) -> int:
    """An integer tag (SeriesNumber, NumberOfFrames); ``default`` when absent or empty.

    Raises
    ------
    InputError
        When present but not an integer.
    """
    value = tag_value(ds, keyword)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{file_of(ds)}: {keyword} {value!s:.40} is not an integer") from None


def _instance(ds: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(orientation (6,), position (3,), pixel spacing (2,)) of one instance, checked."""
    name = file_of(ds)
    iop = tag_numbers(ds, "ImageOrientationPatient", 6)
    ipp = tag_numbers(ds, "ImagePositionPatient", 3)
    spacing = tag_numbers(ds, "PixelSpacing", 2)
    if ipp is None:
        raise InputError(f"{name}: ImagePositionPatient missing; cannot place the slice")
    if iop is None:
        raise InputError(f"{name}: ImageOrientationPatient missing; cannot orient the slice")
    if spacing is None:
        raise InputError(f"{name}: PixelSpacing missing; cannot size the pixels")
    x, y = iop[:3], iop[3:]
    if max(abs(float(np.linalg.norm(x)) - 1), abs(float(np.linalg.norm(y)) - 1),
           abs(float(x @ y))) > 1e-2:
        raise GeometryError(f"{name}: ImageOrientationPatient {np.round(iop, 4).tolist()} is "
                            "not two orthogonal unit vectors")
    if np.any(spacing <= 0):
        raise InputError(f"{name}: PixelSpacing {spacing.tolist()} is not positive")
    return iop, ipp, spacing


def series_volume(
    datasets: Sequence[Any], broken: Sequence[Broken], *, label: str, source: str, hint: str = ""
) -> tuple[Volume, Affine]:
    """Stack one series' instances into ``(slices, rows, cols)`` float32 and its affine.

    ``broken`` are the series' files that could not be used (truncated, no position, no
    pixels): tolerated only when another file holds their slice. ``label`` names the series,
    ``source`` the study folder and ``hint`` ends the message on irregular slice steps.

    Raises
    ------
    InputError
        A geometry tag missing or not numeric, a broken file whose slice is missing, two
        images at one position, irregular slice steps, several frames in a file, a rescale
        that is zero or not finite.
    GeometryError
        Orientation not orthonormal or not the same on every instance, pixel spacing or
        image size differing, slice positions not on one line.
    """
    geometry = [_instance(ds) for ds in datasets]
    first = file_of(datasets[0])
    iop, _, spacing = geometry[0]
    for ds, (iop_k, _, spacing_k) in zip(datasets, geometry, strict=True):
        if not np.allclose(iop_k, iop, atol=1e-3):
            raise GeometryError(f"{file_of(ds)}: ImageOrientationPatient differs from {first} "
                                f"in {label} ({np.round(iop_k, 4).tolist()} vs "
                                f"{np.round(iop, 4).tolist()})")
        if not np.allclose(spacing_k, spacing, rtol=1e-3):
            raise GeometryError(f"{file_of(ds)}: PixelSpacing {spacing_k.tolist()} differs from "
                                f"{first} ({spacing.tolist()}) in {label}")
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort([g[1] @ normal for g in geometry], kind="stable")
    ordered = [datasets[i] for i in order]
    pos = np.array([geometry[i][1] for i in order])
    for name, where, why in broken:
        if where is None:
            raise InputError(f"{name}: {why}; cannot place the slice in {label}")
        if not np.any(np.linalg.norm(pos - where, axis=1) < 1e-2):
            raise InputError(f"{name}: {why} and its slice is missing from {label}")
    slice_vec = _slice_vector(ordered, pos, normal, label=label, source=source, hint=hint)
    lps = np.eye(4)
    lps[:3, 0] = slice_vec
    lps[:3, 1] = iop[3:] * spacing[0]
    lps[:3, 2] = iop[:3] * spacing[1]
    lps[:3, 3] = pos[0]
    planes = [_pixels(ds) for ds in ordered]
    for ds, plane in zip(ordered, planes, strict=True):
        if plane.shape != planes[0].shape:
            raise GeometryError(f"{file_of(ds)}: image of {plane.shape[0]}x{plane.shape[1]} "
                                f"pixels, {file_of(ordered[0])} has {planes[0].shape[0]}x"
                                f"{planes[0].shape[1]} in {label}")
    return np.stack(planes).astype(np.float32), _LPS_TO_RAS @ lps


def _slice_vector(
    ordered: Sequence[Any], pos: FloatArray, normal: FloatArray, *, label: str, source: str,
    hint: str,
) -> FloatArray:
    """The step from one slice to the next (mm, LPS), from the sorted positions."""
    if len(ordered) == 1:
        thickness = tag_numbers(ordered[0], "SliceThickness", 1)
        if thickness is None or thickness[0] <= 0:
            raise InputError(f"{file_of(ordered[0])}: the only slice of {label} has no positive "
                             "SliceThickness; cannot tell the slice spacing")
        return normal * float(thickness[0])
    steps = np.diff(pos @ normal)
    for k, step in enumerate(steps):
        if step < 1e-3:
            raise InputError(
                f"{file_of(ordered[k])} and {file_of(ordered[k + 1])}: two images at one "
                f"position in {label} (a duplicate file, or several echoes or image types in "
                "one series)"
            )
    median = float(np.median(steps))
    irregular = np.flatnonzero(np.abs(steps - median) > 0.1 * median)
    if irregular.size:
        raise InputError(
            f"{source}: {label}: slice missing or irregular slice positions after "
            f"{file_of(ordered[irregular[0]])} (steps {np.round(steps, 2).tolist()} mm){hint}"
        )
    line = pos[-1] - pos[0]
    offsets = pos - pos[0]
    off_line = offsets - np.outer(offsets @ line / (line @ line), line)
    worst = int(np.argmax(np.linalg.norm(off_line, axis=1)))
    if np.linalg.norm(off_line[worst]) > 0.1 * median:
        raise GeometryError(
            f"{file_of(ordered[worst])}: slice position {np.round(pos[worst], 2).tolist()} is "
            f"{np.linalg.norm(off_line[worst]):.2f} mm off the line through the other slices "
            f"of {label}"
        )
    return line / (len(ordered) - 1)


def _pixels(ds: Any) -> FloatArray:
    """One frame's pixels with RescaleSlope/Intercept applied (float64)."""
    name = file_of(ds)
    frames = tag_int(ds, "NumberOfFrames", 1)
    if frames > 1:
        raise InputError(f"{name}: {frames} frames in one file; multi-frame images are not "
                         "supported (export single-frame images)")
    slope_tag = tag_numbers(ds, "RescaleSlope", 1)
    intercept_tag = tag_numbers(ds, "RescaleIntercept", 1)
    slope = 1.0 if slope_tag is None else float(slope_tag[0])
    intercept = 0.0 if intercept_tag is None else float(intercept_tag[0])
    if slope == 0:
        raise InputError(f"{name}: RescaleSlope is 0 (every pixel would be {intercept:g})")
    arr = np.asarray(ds.pixel_array, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name}: pixel data of shape {arr.shape}; expected one grey-scale "
                         "frame")
    out = arr * slope + intercept
    if not np.all(np.isfinite(out.astype(np.float32))):
        raise InputError(f"{name}: pixel values overflow after RescaleSlope {slope:g} and "
                         f"RescaleIntercept {intercept:g}")
    return out
