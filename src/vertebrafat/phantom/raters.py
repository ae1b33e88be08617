"""Two simulated raters who outline the vertebral bodies on a few mid-sagittal slices.

Each rater draws the iso-contour of the signed distance to the true body surface (as seen on
the slice-centre plane) at their own offset, plus a smooth boundary jitter: rater A is
conservative (inside the surface: stays inside the cortex and avoids partial volume), rater B
generous (towards the anterior wall, where the body blends into prevertebral fat). Labels are
kept only on the annotated slices; every other slice is 0 (not annotated, not background).
"""

from __future__ import annotations

import numpy as np

from vertebrafat.core.types import Affine, FloatArray, Labels, RealArray
from vertebrafat.phantom.acquisition import plane_coordinates


def annotated_slices(labels: Labels, *, n: int) -> tuple[int, ...]:
    """The ``n`` contiguous slices around the one with the most labelled voxels."""
    counts = (labels > 0).sum(axis=(1, 2))
    if not counts.any():
        return ()
    centre = int(np.argmax(counts))
    start = int(np.clip(centre - n // 2, 0, max(0, labels.shape[0] - n)))
    return tuple(range(start, min(labels.shape[0], start + n)))


def _jitter(
    rng: np.random.Generator, y: FloatArray, z: FloatArray, *, amplitude_mm: float
) -> FloatArray:
    """Smooth random field (wavelengths 12-40 mm) with standard deviation ``amplitude_mm``.

    ``y``, ``z``: a plane's ``(rows, cols)`` world coordinates, affine in the pixel indices, so
    each wave separates into row and column factors (two small matrix products).
    """
    waves = []
    for _ in range(8):
        k = rng.normal(0, 1, 2)
        k *= 2 * np.pi / rng.uniform(12.0, 40.0) / np.linalg.norm(k)
        waves.append((k[0], k[1], rng.uniform(0, 2 * np.pi)))
    ky, kz, phase = (np.array(w) for w in zip(*waves, strict=True))
    a = ky * y[:, :1] + kz * z[:, :1] + phase  # (rows, waves)
    b = ky * (y[:1] - y[:1, :1]).T + kz * (z[:1] - z[:1, :1]).T  # (cols, waves)
    g = np.cos(a) @ np.cos(b).T - np.sin(a) @ np.sin(b).T
    return np.asarray(amplitude_mm * g / 2.0, dtype=np.float64)


def draw_rater(
    rng: np.random.Generator,
    surface_mm: RealArray,
    surface_label: Labels,
    affine: Affine,
    slices: tuple[int, ...],
    *,
    offset_mm: float,
    anterior_mm: float,
    jitter_mm: float,
    anterior: RealArray,
) -> Labels:
    """One rater's label map on ``slices``, labelled by ``surface_label``.

    The rater draws ``surface_mm < offset_mm + anterior_mm * max(anterior, 0) + jitter``:
    ``anterior_mm`` widens the outline towards the anterior wall, where the body blends into
    prevertebral tissue (endplates and the posterior wall face bright disc and CSF and are
    drawn tighter). ``surface_mm`` is negative inside a body; all arrays
    ``(slices, rows, cols)``.
    """
    y, z = plane_coordinates(affine, surface_mm.shape)
    out = np.zeros(surface_mm.shape, np.uint8)
    for i in slices:
        limit = offset_mm + anterior_mm * np.clip(anterior[i], 0, 1)
        drawn = surface_mm[i] < limit + _jitter(rng, y, z, amplitude_mm=jitter_mm)
        out[i][drawn] = surface_label[i][drawn]
    return out
