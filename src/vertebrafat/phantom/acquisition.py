"""Acquisition of a phantom scan: protocol parameters and the sagittal voxel grid.

The scan is a stack of contiguous sagittal slices. Array axes are ``(slices, rows, cols)`` =
(right-left normal, cranio-caudal towards inferior, antero-posterior towards posterior), the
layout of a DICOM sagittal series (ImageOrientationPatient ``[0, 1, 0, 0, 0, -1]`` in LPS when
the in-plane angle is 0); the slice axis points to the patient's right (+x in RAS), i.e. along
the DICOM slice normal ``row x col``, so readers that sort along the normal keep the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vertebrafat.core.fat_spectrum import LIVER_6PEAK
from vertebrafat.core.types import Affine, FloatArray

MATRICES: tuple[tuple[int, int], ...] = ((224, 224), (256, 256), (288, 288), (256, 224), (288, 256))
"""In-plane matrices (rows, cols) drawn from."""

FAT_PEAKS_PPM: tuple[float, ...] = LIVER_6PEAK.ppm
FAT_PEAKS_AMPLITUDE: tuple[float, ...] = LIVER_6PEAK.amplitudes


@dataclass(frozen=True)
class Acquisition:
    """Protocol of one phantom scan (a multi-echo spoiled gradient echo, sagittal).

    ``fov_mm`` is (cranio-caudal, antero-posterior); pixel size is ``fov_mm / matrix``.
    ``angle_deg`` is the in-plane tilt of the slab and ``centre_mm`` its centre (RAS mm).
    ``snr`` is the signal-to-noise ratio of a voxel of pure water (proton density 1) at the
    coil's sensitivity 1, per echo.
    """

    n_slices: int
    slice_thickness_mm: float
    matrix: tuple[int, int]
    fov_mm: tuple[float, float]
    field_strength_t: float
    echo_times_ms: tuple[float, ...]
    snr: float
    angle_deg: float
    centre_mm: tuple[float, float, float]

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """In-plane pixel size (rows, cols) in mm."""
        return (self.fov_mm[0] / self.matrix[0], self.fov_mm[1] / self.matrix[1])

    def as_dict(self) -> dict[str, object]:
        """JSON-ready description (``acquisition.json``)."""
        return {
            "sequence": "3D multi-echo spoiled gradient echo, sagittal, magnitude+phase",
            "n_slices": self.n_slices,
            "slice_thickness_mm": self.slice_thickness_mm,
            "matrix": list(self.matrix),
            "fov_mm": list(self.fov_mm),
            "pixel_mm": [round(p, 4) for p in self.pixel_mm],
            "field_strength_t": self.field_strength_t,
            "echo_times_ms": list(self.echo_times_ms),
            "snr": self.snr,
            "angle_deg": self.angle_deg,
            "centre_mm": list(self.centre_mm),
            "fat_peaks_ppm": list(FAT_PEAKS_PPM),
            "fat_peaks_amplitude": list(FAT_PEAKS_AMPLITUDE),
        }


def draw_protocol(
    rng: np.random.Generator, *, snr_range: tuple[float, float]
) -> tuple[int, float, tuple[int, int], tuple[float, float], float, tuple[float, ...], float]:
    """Draw (slices, thickness mm, matrix, fov mm, field T, TEs ms, SNR) of one subject.

    16-30 slices of 3-5 mm, matrix among :data:`MATRICES`, FOV 280-380 mm (the
    antero-posterior FOV scaled by the matrix aspect), 1.5 T or 3 T with six echoes
    (IDEAL-IQ-like spacing: 3 T TE1 1.2 ms, dTE 1.0 ms; 1.5 T TE1 1.4 ms, dTE 2.0 ms).
    """
    n_slices = int(rng.integers(16, 31))
    thickness = float(np.round(rng.uniform(3.0, 5.0), 1))
    matrix = MATRICES[int(rng.integers(len(MATRICES)))]
    fov_cc = float(np.round(rng.uniform(280.0, 380.0)))
    fov = (fov_cc, float(np.round(fov_cc * matrix[1] / matrix[0])))
    field = 3.0 if rng.random() < 0.7 else 1.5
    te1, dte = (1.2, 1.0) if field == 3.0 else (1.4, 2.0)
    tes = tuple(round(te1 + k * dte, 3) for k in range(6))
    snr = float(np.round(rng.uniform(*snr_range), 1))
    return n_slices, thickness, matrix, fov, field, tes, snr


def scan_affine(acq: Acquisition) -> Affine:
    """Voxel -> RAS affine of ``acq``: slices along +x, rows towards inferior, cols posterior.

    The in-plane directions are tilted by ``angle_deg`` about the x axis; the grid centre is
    ``centre_mm``.
    """
    a = np.deg2rad(acq.angle_deg)
    drow, dcol = acq.pixel_mm
    row_dir = np.array([0.0, -np.sin(a), -np.cos(a)])
    col_dir = np.array([0.0, -np.cos(a), np.sin(a)])
    m = np.column_stack(
        [np.array([acq.slice_thickness_mm, 0.0, 0.0]), row_dir * drow, col_dir * dcol]
    )
    half = np.array([(acq.n_slices - 1) / 2, (acq.matrix[0] - 1) / 2, (acq.matrix[1] - 1) / 2])
    affine = np.eye(4)
    affine[:3, :3] = m
    affine[:3, 3] = np.asarray(acq.centre_mm) - m @ half
    return affine


def plane_coordinates(affine: Affine, shape: tuple[int, int, int]) -> tuple[FloatArray, FloatArray]:
    """World (y, z) in mm of every in-plane pixel, each ``(rows, cols)`` (same on every slice)."""
    rows = np.arange(shape[1], dtype=np.float64)[:, None]
    cols = np.arange(shape[2], dtype=np.float64)[None, :]
    y = affine[1, 3] + affine[1, 1] * rows + affine[1, 2] * cols
    z = affine[2, 3] + affine[2, 1] * rows + affine[2, 2] * cols
    return y, z


def slice_positions(affine: Affine, n_slices: int, *, n_sub: int) -> FloatArray:
    """World x (mm) of ``n_sub`` sub-slices spanning each slice's thickness, ``(slices, n_sub)``."""
    dx = affine[0, 0]
    centres = affine[0, 3] + dx * np.arange(n_slices, dtype=np.float64)
    offsets = ((np.arange(n_sub) + 0.5) / n_sub - 0.5) * dx
    return centres[:, None] + offsets[None, :]
