"""Surface distances between two masks in millimetres: HD95 and ASSD, spacing-aware, in 3D.

The surface of a mask is its voxels with at least one face-neighbour (6-connectivity) outside
the mask; the array border counts as outside, so a mask cut by the field of view has a
surface there. For every surface voxel of one mask the distance (mm, Euclidean between voxel
centres, ``sampling=spacing_mm``) to the nearest surface voxel of the other mask is taken
with :func:`scipy.ndimage.distance_transform_edt`; both directions are pooled:

- ``hd95_mm``: the 95th percentile of the pooled distances of both directions (MedPy's
  ``hd95``; ``percentile=100`` gives the Hausdorff distance);
- ``assd_mm``: the mean of the two directed average surface distances (MedPy's ``assd``).

Edge cases: both masks empty -> 0.0 (they agree perfectly, as Dice = 1); exactly one empty
-> NaN (the distance is undefined/infinite). The EDT runs on the bounding box of the union
of both masks (every surface voxel is inside it), so the cost follows the masks, not the
field of view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import FloatArray, Mask


@dataclass(frozen=True)
class SurfaceDistance:
    """Symmetric surface distances (mm); NaN when exactly one mask is empty."""

    hd95_mm: float
    assd_mm: float


def surface(mask: Mask) -> Mask:
    """Boundary voxels of ``mask`` (6-connected, the array border counts as outside)."""
    m = np.asarray(mask, dtype=bool)
    structure = ndi.generate_binary_structure(m.ndim, 1)
    return m & ~ndi.binary_erosion(m, structure=structure, border_value=0)


def directed_distances(
    ref: Mask, pred: Mask, *, spacing_mm: Sequence[float]
) -> tuple[FloatArray, FloatArray]:
    """Distances (mm) from each surface voxel of ``ref`` to ``pred``'s surface, and back.

    Both masks must be non-empty and share one shape; ``spacing_mm`` has one entry per axis.
    """
    union = np.asarray(ref, dtype=bool) | np.asarray(pred, dtype=bool)
    box = ndi.find_objects(union.astype(np.uint8))[0]
    s_ref, s_pred = surface(np.asarray(ref)[box]), surface(np.asarray(pred)[box])
    to_pred = ndi.distance_transform_edt(~s_pred, sampling=spacing_mm)
    to_ref = ndi.distance_transform_edt(~s_ref, sampling=spacing_mm)
    return np.asarray(to_pred[s_ref], dtype=np.float64), np.asarray(
        to_ref[s_pred], dtype=np.float64
    )


def surface_distance(
    ref: Mask, pred: Mask, *, spacing_mm: Sequence[float], percentile: float = 95.0
) -> SurfaceDistance:
    """HD95 and ASSD (mm) between two boolean masks of one shape.

    Parameters
    ----------
    ref, pred : bool arrays, same shape (2D or 3D)
    spacing_mm : one voxel size (mm) per axis
    percentile : the Hausdorff percentile reported as ``hd95_mm`` (95; 100 = Hausdorff)

    Returns
    -------
    SurfaceDistance
        0.0 / 0.0 when both masks are empty; NaN / NaN when exactly one is empty.

    Raises
    ------
    InputError
        If the shapes differ or ``spacing_mm`` does not have one positive entry per axis.
    """
    r, p = np.asarray(ref, dtype=bool), np.asarray(pred, dtype=bool)
    if r.shape != p.shape:
        raise InputError(f"reference shape {r.shape} differs from prediction shape {p.shape}")
    if len(spacing_mm) != r.ndim or min(spacing_mm) <= 0:
        raise InputError(f"spacing_mm {tuple(spacing_mm)} does not fit shape {r.shape}")
    has_r, has_p = bool(r.any()), bool(p.any())
    if not has_r and not has_p:
        return SurfaceDistance(hd95_mm=0.0, assd_mm=0.0)
    if not has_r or not has_p:
        return SurfaceDistance(hd95_mm=math.nan, assd_mm=math.nan)
    d_rp, d_pr = directed_distances(r, p, spacing_mm=spacing_mm)
    hd = float(np.percentile(np.concatenate([d_rp, d_pr]), percentile))
    return SurfaceDistance(hd95_mm=hd, assd_mm=float((d_rp.mean() + d_pr.mean()) / 2))
