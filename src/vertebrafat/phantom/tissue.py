"""Tissue properties of the phantom and the canvas the renderer paints them on.

Proton densities are relative to pure water (1.0) and already include the contrast of a
low-flip-angle multi-echo gradient echo (muscle and discs a little darker than CSF); R2* values
are for 3 T and scale towards 1.5 T as ``0.5 + 0.5 * B0 / 3 T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vertebrafat.core.types import RealArray

# name: (proton density, fat fraction, R2* at 3 T in 1/s)
TISSUES: dict[str, tuple[float, float, float]] = {
    "air": (0.0, 0.0, 0.0),
    "skin": (0.75, 0.05, 40.0),
    "fat": (0.95, 0.92, 45.0),
    "muscle": (0.75, 0.05, 32.0),
    "abdomen": (0.6, 0.12, 35.0),
    "fluid": (0.95, 0.0, 10.0),
    "mesentery": (0.9, 0.85, 45.0),
    "bowel_gas": (0.0, 0.0, 150.0),
    "blood": (0.7, 0.0, 25.0),
    "csf": (1.0, 0.0, 5.0),
    "cord": (0.72, 0.0, 20.0),
    "ligament": (0.3, 0.3, 60.0),
    "annulus": (0.6, 0.0, 35.0),
    "nucleus": (0.92, 0.0, 15.0),
    "cortex": (0.0, 0.0, 400.0),
    "marrow": (0.78, 0.4, 100.0),
}


@dataclass(frozen=True)
class Canvas:
    """Water PD, fat PD and R2* arrays of one plane (or a window of it), painted in place."""

    water: RealArray
    fat: RealArray
    r2star: RealArray

    @staticmethod
    def empty(shape: tuple[int, ...]) -> Canvas:
        """Air everywhere."""
        return Canvas(*(np.zeros(shape, np.float32) for _ in range(3)))

    def copy(self) -> Canvas:
        """An independent copy."""
        return Canvas(self.water.copy(), self.fat.copy(), self.r2star.copy())

    def window(self, rows: slice, cols: slice) -> Canvas:
        """Views on a rectangle (painting them paints this canvas)."""
        return Canvas(self.water[rows, cols], self.fat[rows, cols], self.r2star[rows, cols])


Props = tuple[RealArray | float, RealArray | float, float]


def tissue(
    name: str,
    field_t: float,
    *,
    fat_fraction: RealArray | float | None = None,
    r2star_3t: float | None = None,
) -> Props:
    """(water PD, fat PD, R2* 1/s) of tissue ``name`` at ``field_t``; FF/R2* overridable."""
    pd, ff_default, r2_default = TISSUES[name]
    ff = ff_default if fat_fraction is None else fat_fraction
    r2 = r2_default if r2star_3t is None else r2star_3t
    return pd * (1 - ff), pd * ff, r2 * (0.5 + 0.5 * field_t / 3.0)


def ramp(inside_mm: RealArray, px_mm: float) -> RealArray:
    """Partial-volume occupancy (0-1) from the signed depth inside a surface, one pixel wide."""
    occ = inside_mm * (1.0 / px_mm)
    occ += 0.5
    np.maximum(occ, 0.0, out=occ)  # two ufuncs in place: np.clip's wrapper costs more here
    return np.minimum(occ, 1.0, out=occ)


def paint(canvas: Canvas, occupancy: RealArray | float, props: Props) -> None:
    """Replace the fraction ``occupancy`` of every pixel by tissue ``props`` (in place)."""
    if isinstance(occupancy, np.ndarray) and not occupancy.any():
        return  # nothing of this tissue here (one read instead of three blends)
    for layer, value in zip((canvas.water, canvas.fat, canvas.r2star), props, strict=True):
        delta = value - layer  # layer + occupancy * (value - layer), in place
        delta *= occupancy
        layer += delta


def abdomen_texture(waves: RealArray, x: float, y: RealArray, z: RealArray) -> RealArray:
    """Smooth random field (about unit variance) for bowel: ``waves`` rows (kx, ky, kz, phase).

    ``y`` and ``z`` are the ``(rows, cols)`` world coordinates (mm) of a plane's pixels, affine
    in the pixel indices (as from ``plane_coordinates``), so each plane wave separates into
    row and column factors: ``cos(a_r + b_c) = cos a_r cos b_c - sin a_r sin b_c``.
    """
    kx, ky, kz, phase = (waves[:, j] for j in range(4))
    a = kx * x + phase + ky * y[:, :1] + kz * z[:, :1]  # (rows, waves)
    b = ky * (y[:1] - y[:1, :1]).T + kz * (z[:1] - z[:1, :1]).T  # (cols, waves)
    g = np.cos(a) @ np.cos(b).T - np.sin(a) @ np.sin(b).T
    return np.asarray(g / np.sqrt(len(waves) / 2), dtype=np.float32)
