"""A multi-echo gradient-echo series as read, before water-fat separation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.types import Affine


@dataclass(frozen=True)
class EchoSeries:
    """Complex echoes of one study on one voxel grid.

    Attributes
    ----------
    echoes : complex64, (echoes, slices, rows, cols)
        One complex image per echo, in the internal ``(slices, rows, cols)`` layout.
    te_s : tuple of float
        Echo times (s), increasing, one per echo.
    field_strength_t : float
        B0 (T).
    affine : (4, 4)
        Voxel -> RAS mm of ``(slices, rows, cols)``.
    precession_clockwise : bool
        Sense of precession of the echoes (the ISMRM toolbox's ``PrecessionIsClockwise``).
    geometry_known : bool
        False when the file has no geometry (an ISMRM toolbox ``.mat`` without
        ``voxelSize``): the affine is then 1 mm voxels, good for writing maps, not for measuring.
    source, format : str
        Where it was read from and how (``ismrm-mat``, ``phantom-npz``, ``nifti``).
    subject, scan : str
        The study's identity.
    file_axes : tuple of int
        Transpose that brought the stored arrays to ``(slices, rows, cols)``.
    notes : tuple of str
        What the reader decided (phase scale, coil combination, ...).

    Raises
    ------
    InputError
        Echoes not 4D complex, or not one echo time per echo.
    GeometryError
        Affine not an invertible 4x4 matrix.
    """

    echoes: npt.NDArray[np.complex64]
    te_s: tuple[float, ...]
    field_strength_t: float
    affine: Affine
    precession_clockwise: bool = True
    geometry_known: bool = True
    source: str = ""
    format: str = ""
    subject: str = ""
    scan: str = "1"
    file_axes: tuple[int, int, int] = (0, 1, 2)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        where = self.source or "echoes"
        if self.echoes.ndim != 4 or not np.iscomplexobj(self.echoes):
            raise InputError(f"{where}: expected complex echoes (echoes, slices, rows, cols), "
                             f"got {self.echoes.dtype} {self.echoes.shape}")
        if len(self.te_s) != self.echoes.shape[0]:
            raise InputError(f"{where}: {self.echoes.shape[0]} echoes but {len(self.te_s)} "
                             "echo times")
        aff = np.asarray(self.affine)
        if aff.shape != (4, 4) or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
            raise GeometryError(f"{where}: affine must be an invertible 4x4 matrix")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, cols)``."""
        s = self.echoes.shape
        return (int(s[1]), int(s[2]), int(s[3]))
