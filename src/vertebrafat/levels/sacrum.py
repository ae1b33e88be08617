"""Shape of one body instance, and the test "is the lowest body a sacrum?".

A lumbar body is a short cylinder, about as tall as it is deep. From a body mask alone, the
sacrum is recognised when:

- it is long: its largest extent (SD along its long axis) is >= 1.6 times the median of the
  bodies above (a whole sacrum labelled as one piece, VerSe style); or
- it is a piece below L5 that is small (< 0.6 of the median body volume) or cut by the
  inferior edge of the field of view (:func:`count_sacral_fragments`): what a model trained
  on L1-L5-only masks (MyoSegmenTUM) makes of the top of the sacrum (15 of 30 subjects).

A full-sized S1 body that is neither long nor cut is not told from L5 by its shape: real L5
bodies turn up to 45 degrees from the spine above (MyoSegmenTUM, predicted masks), as much as
an S1 does. It needs the model's sacrum class (``sacrum=`` of ``label_vertebrae``).

Thresholds: no L5 of the 30 MyoSegmenTUM truth masks (volume ratios 0.73-1.07, elongation
0.81-1.14, never on the inferior edge) is called a sacrum (benchmarks/bench_levels.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.core.image import array_axis_along
from vertebrafat.core.types import Mask
from vertebrafat.levels.instances import voxel_volume_ml


@dataclass(frozen=True)
class BodyShape:
    """Geometry of one instance in RAS mm.

    ``centre_mm``: centroid (3,). ``axes_sd_mm``: standard deviations along the principal axes,
    largest first (3,). ``long_axis``: unit vector of the largest principal axis (3,).
    ``volume_ml``: volume. ``touches_border``: the instance reaches a face of the array;
    ``touches_inferior``: it reaches the inferior face (the field of view cuts it below).
    ``n_slices``: number of sagittal (left-right) slices it spans. ``below_mm``: the field of
    view below it (mm along the superior axis of the array, 0 when it touches the edge).
    """

    centre_mm: tuple[float, float, float]
    axes_sd_mm: tuple[float, float, float]
    long_axis: tuple[float, float, float]
    volume_ml: float
    touches_border: bool
    touches_inferior: bool = False
    n_slices: int = 0
    below_mm: float = 0.0


def body_shape(instance: Mask, affine: npt.NDArray[np.float64]) -> BodyShape:
    """Measure one instance (a boolean ``(slices, rows, cols)`` mask, at least one voxel)."""
    return _shape_of(np.argwhere(instance), instance.shape, affine)


def body_shapes(
    inst: npt.NDArray[np.int32], n: int, affine: npt.NDArray[np.float64]
) -> list[BodyShape]:
    """:func:`body_shape` of ``inst == k`` for k = 1..n, each read inside its bounding box
    (the same voxels in the same order as from the whole volume, so the same numbers)."""
    shapes = []
    for k, box in enumerate(ndi.find_objects(inst, max_label=n), start=1):
        if box is None:  # an empty instance: as body_shape of it
            shapes.append(body_shape(inst == k, affine))
            continue
        idx = np.argwhere(inst[box] == k) + np.array([s.start for s in box])
        shapes.append(_shape_of(idx, inst.shape, affine))
    return shapes


def _shape_of(
    idx: npt.NDArray[np.intp], shape: tuple[int, ...], affine: npt.NDArray[np.float64]
) -> BodyShape:
    """:func:`body_shape` from the instance's voxel indices ``(k, 3)`` in C order and the
    array's ``shape``."""
    mm = idx @ affine[:3, :3].T + affine[:3, 3]
    centre = mm.mean(axis=0)
    if len(mm) > 3:
        w, v = np.linalg.eigh(np.cov((mm - centre).T))
        sd = np.sqrt(np.clip(w[::-1], 0.0, None))
        long_axis = v[:, -1]
    else:
        sd, long_axis = np.zeros(3), np.array([0.0, 0.0, 1.0])
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    touches = bool(np.any(lo == 0) or np.any(hi == np.array(shape) - 1))
    voxel_ml = voxel_volume_ml(affine)
    s_axis = array_axis_along(affine, 2)
    rows_below = shape[s_axis] - 1 - hi[s_axis] if affine[2, s_axis] < 0 else lo[s_axis]
    inferior = rows_below == 0
    lr_axis = array_axis_along(affine, 0)
    return BodyShape(
        n_slices=int(hi[lr_axis] - lo[lr_axis] + 1),
        centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        axes_sd_mm=(float(sd[0]), float(sd[1]), float(sd[2])),
        long_axis=(float(long_axis[0]), float(long_axis[1]), float(long_axis[2])),
        volume_ml=len(idx) * voxel_ml,
        touches_border=touches,
        touches_inferior=bool(inferior),
        below_mm=float(rows_below * np.linalg.norm(affine[:3, s_axis])),
    )


def sacrum_features(lowest: BodyShape, above: list[BodyShape]) -> dict[str, float]:
    """Shape cues of the lowest instance (``above``: bodies top to bottom, >= 2).

    :func:`looks_like_sacrum` uses ``elongation``; the others are reported for diagnosis.

    ``elongation``: largest SD of ``lowest`` / median largest SD above. ``turn_deg``: angle
    between the last step of the centroid path and the mean direction of the steps above it.
    ``volume_ratio``: volume of ``lowest`` / median volume above. Pieces above under 0.1 of
    the largest one's volume (specks on the image border) are left out of these medians.
    """
    largest = max(b.volume_ml for b in above)
    above = [b for b in above if b.volume_ml >= 0.1 * largest] or above  # specks out
    centres = np.array([b.centre_mm for b in above] + [lowest.centre_mm])
    steps = np.diff(centres, axis=0)
    spine = steps[:-1].sum(axis=0)
    last = steps[-1]
    cos = float(spine @ last) / max(float(np.linalg.norm(spine) * np.linalg.norm(last)), 1e-9)
    # specks on the border (kept: they touch it) have zero spread; never divide by zero
    sd_above = max(float(np.median([b.axes_sd_mm[0] for b in above])), 1e-6)
    vol_above = max(float(np.median([b.volume_ml for b in above])), 1e-9)
    return {
        "elongation": lowest.axes_sd_mm[0] / sd_above,
        "turn_deg": float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))),
        "volume_ratio": lowest.volume_ml / vol_above,
    }


def looks_like_sacrum(lowest: BodyShape, above: list[BodyShape]) -> bool:
    """True if the lowest instance is long like a whole sacrum (needs >= 2 bodies above).

    Rule: ``elongation >= 1.6`` (see :func:`sacrum_features`).
    """
    if len(above) < 2:
        return False
    return sacrum_features(lowest, above)["elongation"] >= 1.6


FULL_BODY_RATIO = 0.9


def count_sacral_fragments(ordered: list[BodyShape], *, max_ratio: float = 0.6) -> int:
    """Number of bottom instances (``ordered`` top to bottom) that are sacral fragments.

    The lowest instance is one when the field of view cuts it below (``touches_inferior``): a
    lumbar protocol covers L1 to the sacrum, so what the inferior edge cuts is the sacrum;
    unless it is as large as a whole body (``FULL_BODY_RATIO`` of the median of the 3 above):
    then it is L5 with a leak through the L5/S1 disc to the edge (the shipped model on myo41).
    Then, walking up, an instance is a fragment while its volume is below ``max_ratio`` times
    the median volume of the 3 instances above it. At least 3 instances must remain above.
    MyoSegmenTUM truth L5 bodies are 0.73-1.07 times that median and never reach the inferior
    edge; the sacral pieces a MyoSegmenTUM-trained model adds are 0.04-0.22 of it, those of the
    shipped model (trained with the phantom) up to 0.51 (myo05), or cut by the inferior edge.
    """
    def ratio(k: int) -> float:  # volume of instance k-1 / median of the 3 above it
        above = float(np.median([b.volume_ml for b in ordered[max(k - 4, 0) : k - 1]]))
        return ordered[k - 1].volume_ml / above

    k = len(ordered)
    if k - 1 >= 3 and ordered[-1].touches_inferior and ratio(k) < FULL_BODY_RATIO:
        k -= 1
    while k - 1 >= 3 and ratio(k) < max_ratio:
        k -= 1
    return len(ordered) - k
