"""One DICOM series as a volume: each instance's geometry tags checked, slices ordered along the
normal (never by name or InstanceNumber), values mapped (:mod:`vertebrafat.io.dicom.values`),
and the voxel -> RAS affine built. Every refusal is one line naming the file and the tag or the
contradiction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.types import Affine, FloatArray, Volume
from vertebrafat.io.dicom.tags import file_of, tag_int, tag_numbers, tag_value
from vertebrafat.io.dicom.values import mapped_pixels

__all__ = ["Broken", "file_of", "series_volume", "tag_int", "tag_numbers", "tag_value"]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# A file the reader could not use but whose series is known: (path, position or None, why).
Broken = tuple[str, FloatArray | None, str]


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
    datasets: Sequence[Any], broken: Sequence[Broken], *, label: str, source: str, hint: str = "",
    pixels: Callable[[Any], FloatArray] = mapped_pixels,
) -> tuple[Volume, Affine]:
    """Stack one series' instances into ``(slices, rows, cols)`` float32 and its affine.

    ``datasets`` are single-frame images or frames of enhanced objects
    (:class:`~vertebrafat.io.dicom.frames.FrameView`). ``broken`` are the series' files that
    could not be used (truncated, no position, no pixels): tolerated only when another file
    holds their slice. ``label`` names the series, ``source`` the study folder and ``hint``
    ends the message on irregular slice steps. ``pixels`` reads one image's values (default:
    through its value mapping, :func:`~vertebrafat.io.dicom.values.mapped_pixels`).

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
    # each image's values go straight into the float32 volume; every image is read before a
    # size mismatch is reported, so a value error in any image comes first, as it always has
    first_plane = pixels(ordered[0])
    volume = np.empty((len(ordered), *first_plane.shape), dtype=np.float32)
    volume[0] = first_plane
    mismatch = None
    for k, ds in enumerate(ordered[1:], start=1):
        plane = pixels(ds)
        if plane.shape != first_plane.shape:
            mismatch = mismatch or (ds, plane.shape)
        elif mismatch is None:
            volume[k] = plane
    if mismatch is not None:
        ds, shape = mismatch
        raise GeometryError(f"{file_of(ds)}: image of {shape[0]}x{shape[1]} pixels, "
                            f"{file_of(ordered[0])} has {first_plane.shape[0]}x"
                            f"{first_plane.shape[1]} in {label}")
    return volume, _LPS_TO_RAS @ lps


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
