"""The water-fat image every stage passes around."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.types import Affine, Volume

Role = Literal["water", "fat", "ff", "r2star", "in_phase", "out_phase"]
ROLES: tuple[Role, ...] = ("water", "fat", "ff", "r2star", "in_phase", "out_phase")
MAP_ROLES: tuple[str, ...] = ("water", "fat", "ff", "r2star")
"""The maps a study is made of, in the canonical channel order."""


@dataclass(frozen=True)
class SeriesInfo:
    """One input series (DICOM) or file (NIfTI) and the role it was given."""

    role: str
    source: str
    description: str = ""
    series_number: int | None = None
    series_uid: str | None = None
    n_slices: int = 0


@dataclass(frozen=True)
class StudyMeta:
    """What was learnt about a study while loading it.

    ``ff_scale`` is the full-scale value of the stored FF map as found: ``1`` (0-1), ``100``
    (0-100 %) or ``1000`` (0-1000, GE IDEAL-IQ), ``"derived"`` when FF was computed from water
    and fat, ``None`` when the study has no FF at all. ``file_axes`` is the transpose that
    brought the stored arrays to ``(slices, rows, cols)`` (:func:`slices_first_axes`); outputs
    are written back with its inverse, on the input's own axis order. ``water_headers`` (DICOM
    input; opaque here, objects of the io layer) are the water images as the reader parsed
    them, in no particular order and with their pixel data released: the headers a DICOM SEG
    of the study references, so its writer need not parse the files again; empty for other
    inputs. They are not compared or shown.
    """

    source: str
    format: Literal["dicom", "nifti", "phantom"]
    vendor: str = "unknown"
    ff_scale: float | str | None = None
    field_strength_t: float | None = None
    series: tuple[SeriesInfo, ...] = ()
    subject: str = ""
    scan: str = "1"
    notes: tuple[str, ...] = field(default_factory=tuple)
    file_axes: tuple[int, int, int] = (0, 1, 2)
    water_headers: tuple[Any, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class WaterFatImage:
    """Water, fat, fat fraction (percent) and R2* volumes on one voxel grid.

    Every volume is float32 ``(slices, rows, cols)``; ``affine`` maps voxel indices to RAS mm.
    Only ``water`` is required (segmentation); ``ff`` is percent (0-100, may fall slightly outside
    from noise), ``r2star`` is in 1/s.

    Raises
    ------
    InputError
        If ``water`` is not 3D or a volume is not float32.
    GeometryError
        If the volumes differ in shape or the affine is not an invertible 4x4 matrix.
    """

    water: Volume
    affine: Affine
    fat: Volume | None = None
    ff: Volume | None = None
    r2star: Volume | None = None
    meta: StudyMeta = field(default_factory=lambda: StudyMeta(source="", format="nifti"))

    def __post_init__(self) -> None:
        if self.water.ndim != 3:
            raise InputError(
                f"{self.meta.source or 'image'}: expected a 3D volume, got shape {self.water.shape}"
            )
        for name in ("water", "fat", "ff", "r2star"):
            arr = getattr(self, name)
            if arr is None:
                continue
            if arr.dtype != np.float32:
                raise InputError(f"{name} must be float32, got {arr.dtype}")
            if arr.shape != self.water.shape:
                raise GeometryError(
                    f"{name} has shape {arr.shape} but water has shape {self.water.shape}"
                )
        aff = np.asarray(self.affine)
        if aff.shape != (4, 4) or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
            raise GeometryError(f"affine must be an invertible 4x4 matrix, got {aff.tolist()}")

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.water.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size in mm along (slices, rows, cols)."""
        return spacing_from_affine(self.affine)

    @property
    def channels(self) -> tuple[str, ...]:
        """The roles present, in the canonical order water, fat, ff, r2star."""
        return tuple(n for n in MAP_ROLES if getattr(self, n) is not None)


def array_axis_along(affine: Affine, ras: int) -> int:
    """The array axis whose direction is most aligned with RAS axis ``ras`` (0 x left-right,
    1 y antero-posterior, 2 z cranio-caudal), from the affine's column directions."""
    aff = np.asarray(affine, dtype=np.float64)[:3, :3]
    return int(np.argmax(np.abs(aff[ras, :]) / np.linalg.norm(aff, axis=0)))


def spacing_from_affine(affine: Affine) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis (the column norms of the affine's 3x3 part)."""
    norms = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    return (float(norms[0]), float(norms[1]), float(norms[2]))


def slices_first_axes(affine: Affine) -> tuple[int, int, int]:
    """The array axes in the internal order: the axis closest to left-right first (the
    sagittal slice axis), then the other two in their stored order.

    ``np.transpose(volume, axes)`` brings a volume stored in any axis order (dcm2niix writes the
    slice axis last) to ``(slices, rows, cols)``; :func:`permute_affine` gives its affine.
    Only the order changes, never a direction, so slice ``i`` inside is slice ``i`` of the
    file's left-right axis.
    """
    first = array_axis_along(affine, 0)
    rest = [a for a in range(3) if a != first]
    return (first, rest[0], rest[1])


def permute_affine(affine: Affine, axes: tuple[int, int, int]) -> Affine:
    """The affine of ``np.transpose(volume, axes)``: its columns reordered the same way."""
    aff = np.array(affine, dtype=np.float64)
    aff[:, :3] = np.asarray(affine, dtype=np.float64)[:, list(axes)]
    return aff


def inverse_axes(axes: tuple[int, int, int]) -> tuple[int, int, int]:
    """The transpose that undoes ``np.transpose(volume, axes)``."""
    inv = np.argsort(np.asarray(axes))
    return (int(inv[0]), int(inv[1]), int(inv[2]))


def align_to_grid(
    volume: npt.NDArray[Any], affine: Affine, shape: tuple[int, ...], target: Affine,
    *, atol_mm: float = 1e-3,
) -> npt.NDArray[Any] | None:
    """``volume`` transposed and flipped onto the voxel grid ``(shape, target)``, or None.

    Two files hold the same world grid in any of the 48 axis orders and directions; this
    finds the one (if any) whose voxel centres match ``target``'s within ``atol_mm``, so a
    mask saved slice-last overlays an image saved slice-first voxel for voxel.
    """
    aff = np.asarray(affine, dtype=np.float64)
    want = np.asarray(target, dtype=np.float64)
    for axes in itertools.permutations(range(3)):
        moved = np.transpose(volume, axes)
        if moved.shape != tuple(shape):
            continue
        cols = aff[:3, list(axes)]
        flips = tuple(bool(np.dot(cols[:, k], want[:3, k]) < 0) for k in range(3))
        origin = aff[:3, 3] + sum(cols[:, k] * (moved.shape[k] - 1)
                                  for k in range(3) if flips[k])
        signed = cols * np.where(flips, -1.0, 1.0)
        if np.allclose(signed, want[:3, :3], atol=atol_mm) and np.allclose(
                origin, want[:3, 3], atol=atol_mm):
            index = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
            return np.ascontiguousarray(moved[index])
    return None
