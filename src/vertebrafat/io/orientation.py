"""Axis order and orientation of input volumes.

A DICOM series is stacked in acquisition order, so its slice axis is array axis 0 and must be
left-right (:func:`check_sagittal`). A NIfTI file may hold its axes in any order (dcm2niix
writes the slice axis last): :func:`read_slices_first` brings it to ``(slices, rows, cols)``
from the affine, :func:`check_nifti_sagittal` tells a sagittal acquisition from its voxel
sizes, and :func:`read_on_grid` reads a second map onto the first one's grid whatever its own
axis order and directions.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import GeometryError
from vertebrafat.core.image import (
    align_to_grid,
    permute_affine,
    slices_first_axes,
    spacing_from_affine,
)
from vertebrafat.core.types import Affine
from vertebrafat.io.nifti import read_nifti

_RAS_NAMES = ("left-right (sagittal)", "antero-posterior (coronal)", "cranio-caudal (axial)")
THICK_RATIO = 0.75
"""A NIfTI volume whose left-right voxel size is under this fraction of its largest one was
acquired in another plane (its thick slices run along that axis)."""


def check_sagittal(affine: Affine, *, source: str, allow_orientation: bool) -> None:
    """Refuse a DICOM series whose slice axis (axis 0) is not mostly left-right.

    Raises
    ------
    GeometryError
        Unless ``allow_orientation`` is set.
    """
    axis = np.abs(np.asarray(affine)[:3, 0])
    dominant = int(np.argmax(axis))
    if dominant != 0 and not allow_orientation:
        raise GeometryError(
            f"{source}: non-sagittal acquisition (slice axis is {_RAS_NAMES[dominant]}); "
            "vertebrafat expects sagittal slices; use --allow-orientation to process it anyway"
        )


def check_nifti_sagittal(affine: Affine, *, source: str, allow_orientation: bool) -> None:
    """Refuse a slices-first NIfTI volume acquired in another plane.

    A file keeps no record of the acquired slice axis, but the voxel sizes do: a sagittal
    series has its thickest voxels (or isotropic ones) along left-right. When the left-right
    size is under :data:`THICK_RATIO` of the largest, the thick slices ran along another axis.

    Raises
    ------
    GeometryError
        Unless ``allow_orientation`` is set.
    """
    spacing = spacing_from_affine(affine)
    thickest = int(np.argmax(spacing))
    if spacing[0] >= THICK_RATIO * spacing[thickest] or allow_orientation:
        return
    direction = np.abs(np.asarray(affine, dtype=np.float64)[:3, thickest])
    raise GeometryError(
        f"{source}: non-sagittal acquisition (thick slices of {spacing[thickest]:.3g} mm are "
        f"{_RAS_NAMES[int(np.argmax(direction))]}, left-right voxels {spacing[0]:.3g} mm); "
        "vertebrafat expects sagittal slices; use --allow-orientation to process it anyway"
    )


def read_slices_first(
    path: str | os.PathLike[str], *, as_float32: bool = True,
) -> tuple[npt.NDArray[np.generic], Affine, tuple[int, int, int]]:
    """A NIfTI volume in ``(slices, rows, cols)`` order, its affine, and the transpose used.

    See :func:`vertebrafat.io.nifti.read_nifti` for ``as_float32`` and the errors.
    """
    data, affine = read_nifti(path, as_float32=as_float32)
    axes = slices_first_axes(affine)
    if axes == (0, 1, 2):
        return data, affine, axes
    return np.ascontiguousarray(np.transpose(data, axes)), permute_affine(affine, axes), axes


def read_on_grid(
    path: str | os.PathLike[str], shape: tuple[int, ...], affine: Affine, *, grid_of: str,
    as_float32: bool = True,
) -> npt.NDArray[np.generic]:
    """A NIfTI volume brought onto the voxel grid ``(shape, affine)`` of ``grid_of``.

    Any of the 48 axis orders and directions of the same grid is accepted.

    Raises
    ------
    GeometryError
        If no reordering puts the file on that grid (another shape, spacing or position).
    """
    data, own = read_nifti(path, as_float32=as_float32)
    aligned = align_to_grid(data, own, shape, affine)
    if aligned is None:
        raise GeometryError(
            f"{path}: grid {tuple(data.shape)} does not match {grid_of} {tuple(shape)} "
            "(another shape, voxel size or position, in any axis order)"
        )
    return aligned
