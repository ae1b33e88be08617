"""The spine as an ordered chain of body instances.

Small pieces far off the spine's curve are dropped (:func:`off_spine`); instances are ordered
along the spine's own axis (:func:`spine_order`); a fused sacral tail is extended
(:func:`extend_fused`) and small pieces stacked on a neighbour are merged into it
(:func:`merge_stacked_fragments`). Geometry comes from the affine, never from the array order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.levels.sacrum import FULL_BODY_RATIO, BodyShape, body_shape

OFF_SPINE_MM = 35.0
OFF_SPINE_VOLUME = 0.5
BIT_OFF_SPINE_MM = 20.0
# a piece under this volume is a speck, not a vertebra nor a sacral fragment (see specks)
SPECK_ML = 0.05


def specks(shapes: list[BodyShape], *, keep: int | None = None) -> set[int]:
    """Indices of pieces under ``SPECK_ML`` (``keep`` excepted): a few voxels the body mask
    leaves beside the sacrum class or a body, 1-5 mm³ on MyoSegmenTUM and one phantom voxel
    (7.6 mm³), against 0.34 mL for the smallest sacral fragment (the shipped model and the fold
    models on MyoSegmenTUM, held-out phantom seeds). Left in the chain, one voxel below the
    sacrum class decided whether the piece above the class was taken into the sacrum: a
    quantised copy of the shipped model (every mask within a few voxels of fp32's) left a
    one-voxel speck below MyoSegmenTUM myo38's sacrum, and every level moved down one without
    a flag."""
    return {i for i, s in enumerate(shapes) if s.volume_ml < SPECK_ML and i != keep}


# pieces below the sacrum class under this fraction of the median piece are sacral bits
SACRAL_BIT = 0.15


def class_tail(order: list[int], shapes: list[BodyShape], protected: int | None) -> int:
    """Length of the sacral tail that starts at the model's sacrum class (instance
    ``protected``): the class and the pieces below it in ``order``, when each of those is under
    ``SACRAL_BIT`` of the median piece (bits of the ala or of S2, 0.3-0.5 mL on MyoSegmenTUM
    against 30-50 mL bodies); 0 when the class is not in ``order`` or a larger piece lies below
    it (a body below the class: it sits on L5, see ``body_below_sacrum``). A 0.4 mL bit of the
    ala below myo31's class, with noise of 2 % of the water image added, once kept the class
    from the tail, and S1 was named L5."""
    if protected is None or protected not in order:
        return 0
    below = order[order.index(protected) + 1 :]
    median = float(np.median([shapes[i].volume_ml for i in order]))
    if any(shapes[i].volume_ml >= SACRAL_BIT * median for i in below):
        return 0
    return 1 + len(below)


def off_spine(shapes: list[BodyShape]) -> set[int]:
    """Indices of small pieces that lie beside the spine: volume under ``OFF_SPINE_VOLUME`` of
    the median and centroid more than ``OFF_SPINE_MM`` left or right of the spine's curve.

    The curve is the left-right coordinate as a quadratic in the position along the principal
    axis, fitted through the centroids of the full-size instances (at least four). A body's own
    pieces lie within its half width (at most 26 mm) of the curve, whatever the scoliosis; the
    1.0-1.4 mL pieces a water-only model puts in the iliac bones lie 64-66 mm lateral (phantom
    seed 7 P003), and counting them as bodies made a false ``gap``. Only the left-right offset
    counts: small sacral segments below the fitted bodies sit on the midline, but an
    extrapolated lordosis can put them 30 mm or more from the curve in the sagittal plane.
    Bits under ``SACRAL_BIT`` of the median lie beside the spine already ``BIT_OFF_SPINE_MM``
    from the curve: 0.4-0.9 mL bits of the sacral ala 25-33 mm lateral (MyoSegmenTUM myo31 and
    myo38 with noise of 2 % of the water image added, or under a quantised copy of the shipped
    model) sat between S1 and the sacrum class in the chain, kept the class's tail from
    reaching S1, and S1 was named L5 without a flag.
    """
    if len(shapes) < 5:
        return set()
    centres = np.array([s.centre_mm for s in shapes])
    volumes = np.array([s.volume_ml for s in shapes])
    big = volumes >= OFF_SPINE_VOLUME * float(np.median(volumes))
    if int(big.sum()) < 4:
        return set()
    mean = centres[big].mean(axis=0)
    axis = np.linalg.svd(centres[big] - mean, full_matrices=False)[2][0]
    t = (centres - mean) @ axis
    lateral = centres[:, 0]  # RAS x: left-right
    fit = np.polynomial.polynomial.polyfit(t[big], lateral[big], 2)
    distance = np.abs(lateral - np.polynomial.polynomial.polyval(t, fit))
    tiny = volumes < SACRAL_BIT * float(np.median(volumes))
    return {int(i) for i in np.flatnonzero(
        (~big & (distance > OFF_SPINE_MM)) | (tiny & (distance > BIT_OFF_SPINE_MM)))}


def spine_order(shapes: list[BodyShape]) -> list[int]:
    """Instance indices ordered top (most superior) to bottom along the spine's own axis."""
    centres = np.array([s.centre_mm for s in shapes])
    if len(shapes) < 3:
        return [int(i) for i in np.argsort(-centres[:, 2], kind="stable")]
    axis = np.linalg.svd(centres - centres.mean(axis=0), full_matrices=False)[2][0]
    if abs(axis[2]) < np.cos(np.deg2rad(60.0)):
        axis = np.array([0.0, 0.0, 1.0])  # centroids not spread along S: fall back to +S
    axis = axis if axis[2] >= 0 else -axis
    return [int(i) for i in np.argsort(-(centres @ axis), kind="stable")]


FUSED_GAP_MM = 3.5


FUSED_CONTACT = 0.4


def extend_fused(
    order: list[int], n_tail: int, inst: npt.NDArray[np.int32], aff: npt.NDArray[np.float64]
) -> int:
    """Grow the sacral tail upward over pieces fused to it: closest gap < FUSED_GAP_MM over at
    least FUSED_CONTACT of the endplate (see :func:`_contact_fraction`).

    Sacral segments are separated by a thin remnant disc (~2 mm) across the whole endplate,
    lumbar bodies by a disc of 5-13 mm: phantom S1/S2/S3 closest gaps measure 1.1-3 mm at 1.4 x
    3.9 mm voxels with contact fractions 0.46-1.2, phantom L5/S1 and MyoSegmenTUM L5/sacral-piece
    gaps >= 7 mm. A mask that bridges a lumbar disc, or comes within a few mm of the next body at
    one corner, gives a narrow contact: 0.004-0.07 on the model's MyoSegmenTUM masks (myo05, 30,
    44), so those stay separate bodies. From the mask alone a sacralised L5 (3 mm L5/S1 disc)
    is taken into the sacrum (VerSe would call it L5): stopping the tail at its first full-size
    segment fixed that but broke phantom subjects whose S1 is split in two, so the model's
    sacrum class is what names it right. At least 3 bodies stay above the sacrum.
    """
    while len(order) - n_tail - 1 >= 3:
        above, below = order[len(order) - n_tail - 1], order[len(order) - n_tail]
        if _near_contact(inst, above, [below], aff) < FUSED_CONTACT:
            break
        n_tail += 1
    return n_tail


def _near_contact(
    inst: npt.NDArray[np.int32], above: int, below: list[int], aff: npt.NDArray[np.float64]
) -> float:
    """Fraction of the endplate (:func:`_contact_fraction`) over which instance ``above`` lies
    within ``FUSED_GAP_MM`` of the instances ``below`` together; 0.0 when the closest gap is
    that wide or wider."""
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    lower_all = np.isin(inst, [i + 1 for i in below])
    box = ndi.find_objects(((inst == above + 1) | lower_all).astype(np.int32))[0]
    upper, lower = inst[box] == above + 1, lower_all[box]
    dist = ndi.distance_transform_edt(~lower, sampling=spacing)
    if float(dist[upper].min()) >= FUSED_GAP_MM:
        return 0.0
    near = upper & (dist < FUSED_GAP_MM + float(spacing.max()))
    offset = np.array([sl.start for sl in box], dtype=np.float64)
    return _contact_fraction(near, upper, lower, aff, offset)


def _contact_fraction(
    near: npt.NDArray[np.bool_],
    upper: npt.NDArray[np.bool_],
    lower: npt.NDArray[np.bool_],
    aff: npt.NDArray[np.float64],
    offset: npt.NDArray[np.float64],
) -> float:
    """Area of ``near`` over the smaller cross-section of ``upper`` and ``lower``, all projected
    on the plane normal to the line between their centroids (1 mm cells, world coordinates).

    ``offset`` is the voxel index of the arrays' origin in the full volume.
    """
    def world(m: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        return np.asarray((np.argwhere(m) + offset) @ aff[:3, :3].T + aff[:3, 3])

    pu, pl = world(upper), world(lower)
    normal = pl.mean(axis=0) - pu.mean(axis=0)
    normal /= np.linalg.norm(normal)
    e1 = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    plane = np.stack([e1, np.cross(normal, e1)], axis=1)

    def area(points: npt.NDArray[np.float64]) -> int:
        return len(np.unique(np.floor(points @ plane).astype(np.int64), axis=0))

    return area(world(near)) / min(area(pu), area(pl))


# the model's sacrum class alone (no sacral tail grown), no bigger than the body above it (and
# more than NOT_A_BODY_VOLUME of the lumbar median: a body's worth, not a sliver at the edge),
# within FUSED_GAP_MM of that body over this fraction of its endplate: the class covers a body
# cut from its upper part, not a sacral top, which has the L5/S1 disc above it. A fold model of
# MyoSegmenTUM myo39 called most of L5 and S1 "sacrum" and joined the top of L5 to L4: 0.57,
# the class 0.56 of the piece above it. The class alone stays at 0.03 or less on the right
# MyoSegmenTUM spines measured; on the phantom it often lies against L5 (0.33-0.81), but there
# a sacrum in view is 1.1-1.9 times L5, and in lumbar-only views a sliver under 0.26 of it
CLASS_CUT_CONTACT = 0.25


def sacrum_contact(
    order: list[int], sacrum_pos: int, inst: npt.NDArray[np.int32], aff: npt.NDArray[np.float64]
) -> float:
    """Fraction of the endplate (see :func:`_contact_fraction`) over which the body just above
    the sacrum (position ``sacrum_pos`` of ``order``, top to bottom) lies within
    ``FUSED_GAP_MM`` of the sacrum (that position and everything below it); 0.0 when nothing
    lies above it or the gap is wider everywhere."""
    if sacrum_pos < 1 or sacrum_pos >= len(order):
        return 0.0
    return _near_contact(inst, order[sacrum_pos - 1], order[sacrum_pos:], aff)


def spine_steps(order: list[int], shapes: list[BodyShape]) -> npt.NDArray[np.float64]:
    c = np.array([shapes[i].centre_mm for i in order])
    return np.linalg.norm(np.diff(c, axis=0), axis=1)


def merge_stacked_fragments(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    aff: npt.NDArray[np.float64], *, keep: int | None = None,
) -> tuple[list[int], list[BodyShape], npt.NDArray[np.int32]]:
    """Merge a small, uncut piece into the neighbour it sits on (step < half the median).

    ``keep``: an instance never merged either way (the model's sacrum class: merged into the
    body above it, the true L5 became "sacrum" and the whole spine moved up one level without
    a flag, fold model of MyoSegmenTUM myo31)."""
    while len(order) >= 3:
        steps = spine_steps(order, shapes)
        vols = np.array([shapes[i].volume_ml for i in order])
        typical_vol, typical_step = float(np.median(vols)), float(np.median(steps))
        merged = False
        for k, step in enumerate(steps):
            a, b = order[k], order[k + 1]
            small = a if shapes[a].volume_ml < shapes[b].volume_ml else b
            if keep in (a, b):
                continue
            if step < 0.5 * typical_step and shapes[small].volume_ml < 0.4 * typical_vol and (
                not shapes[small].touches_border
            ):
                into = b if small == a else a
                inst[inst == small + 1] = into + 1
                shapes[into] = body_shape(inst == into + 1, aff)
                order = [i for i in order if i != small]
                merged = True
                break
        if not merged:
            break
    return order, shapes, inst


# a piece between two bodies smaller than this fraction of the median body is not a body
NOT_A_BODY_VOLUME = 0.35


def drop_non_bodies(
    order: list[int], shapes: list[BodyShape], *, tail_follows: bool, keep: int | None = None
) -> tuple[list[int], list[int]]:
    """``order`` without the pieces that are not bodies, and those pieces.

    ``order`` is the chain above any sacral tail (``tail_follows``); ``keep`` an instance never
    dropped (the model's sacrum). Not a body: a piece one sagittal slice wide and under half
    the median body volume (a 4 mm sliver of a sacrum or a pedicle; a body spans 8 or more
    slices), or a piece under ``NOT_A_BODY_VOLUME`` of the median body volume lying between
    two bodies (cut by the field of view or not: the real-anatomy model leaves such sacral
    pieces between L5 and its sacrum class on MyoSegmenTUM myo04). The first and the last piece
    of the chain may be small (the field of view cuts T12 above and the sacrum below). At least
    four bodies must remain, else nothing is dropped.
    """
    if len(order) < 5:
        return order, []
    median = float(np.median([shapes[i].volume_ml for i in order]))
    last = len(order) - 1

    def not_a_body(k: int, i: int) -> bool:
        s = shapes[i]
        if i == keep:
            return False
        if s.n_slices == 1 and s.volume_ml < 0.5 * median:
            return True
        between = 0 < k < last or (k == last and tail_follows)
        return between and s.volume_ml < NOT_A_BODY_VOLUME * median

    dropped = [i for k, i in enumerate(order) if not_a_body(k, i)]
    if len(order) - len(dropped) < 4:
        return order, []
    return [i for i in order if i not in dropped], dropped


# sacral "fragments" adding up to this fraction of a body are a body broken into pieces
FRAGMENTS_OF_A_BODY = 0.6


def tail_is_weak(order: list[int], shapes: list[BodyShape], *, found: int, grown: int) -> bool:
    """Whether a sacral tail is weak evidence of the sacrum: ``found`` fragments at the bottom
    of ``order`` (:func:`~vertebrafat.levels.sacrum.count_sacral_fragments`), ``grown`` after
    :func:`extend_fused`.

    Weak when the tail grew over a full-sized body fused to it (S1 of a fused sacrum, or an L5
    whose disc the mask bridges: a fold model's mask of MyoSegmenTUM myo31), or when several
    fragments add up to most of a body (a missing mid-sagittal slice broke myo11's L5 in
    three). Sizes are relative to the median of the three bodies above the tail.
    """
    sizes = _tail_sizes(order, shapes, found=found, grown=grown)
    if sizes is None:
        return False
    median, extra, fragments = sizes
    fused_full = bool(extra) and max(extra) >= FULL_BODY_RATIO * median
    broken = len(fragments) >= 2 and sum(fragments) >= FRAGMENTS_OF_A_BODY * median
    return fused_full or broken


def _tail_sizes(
    order: list[int], shapes: list[BodyShape], *, found: int, grown: int
) -> tuple[float, list[float], list[float]] | None:
    """The median volume of the (up to) three bodies above a sacral tail, the volumes of the
    pieces it grew over, and of the fragments it was found with; None without a tail or a
    body above it."""
    n = len(order)
    above = [shapes[i].volume_ml for i in order[max(n - grown - 3, 0) : n - grown]]
    if not found or not above:
        return None
    extra = [shapes[i].volume_ml for i in order[n - grown : n - found]]
    fragments = [shapes[i].volume_ml for i in order[n - found :]]
    return float(np.median(above)), extra, fragments


# a piece the sacral tail grew over, this fraction of the bodies above or more (and under
# FULL_BODY_RATIO), may be an upper S1 or an L5 whose disc the mask bridged (0.65 until a
# partial L5 of 0.52 under a row of sacrum class went one level off without a flag)
DOUBTFUL_GROWN_RATIO = 0.45


def doubtful_tail(order: list[int], shapes: list[BodyShape], *, found: int, grown: int) -> bool:
    """Whether the sacral tail grew over a piece of ``DOUBTFUL_GROWN_RATIO`` to
    ``FULL_BODY_RATIO`` of the median of the three bodies above the tail: the upper S1s the
    model calls "body" beside or above its sacrum class measure 0.2-0.61 of the bodies above on
    MyoSegmenTUM and held-out phantom subjects, 0.66 once with 2 % noise (myo13); L5s whose
    disc the mask bridged 0.27-0.98 (lumbar-only phantom views cut through L5; myo39 cut 4
    voxels short, 0.73, was taken into the sacrum and every name moved up one without a
    flag; a partial L5 of 0.52 whose bottom row the model calls "sacrum" likewise). Above the
    range the tail is weak (:func:`tail_is_weak`); in it the names stand, but uncertain. Its
    lower end lies inside the upper S1s' range: an upper S1 of 0.45-0.61 is flagged too (on
    the held-out benchmark sets, 2 more flagged spines of 618 predictions), as the masks
    cannot tell it from a partial L5."""
    sizes = _tail_sizes(order, shapes, found=found, grown=grown)
    if sizes is None or not sizes[1]:
        return False
    median, extra, _ = sizes
    return DOUBTFUL_GROWN_RATIO * median <= max(extra) < FULL_BODY_RATIO * median


def split_at_waist(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32], index: int,
    aff: npt.NDArray[np.float64],
) -> tuple[list[int], list[BodyShape]]:
    """Cut instance ``index`` (two bodies fused through a disc) in two at its waist, and put
    the lower half into ``order`` just below it (``inst`` is relabelled in place: the lower
    half becomes instance ``len(shapes) + 1``).

    The waist is the thinnest 1 mm cross-section, along the body's own long axis (a fused pair
    is twice as tall as deep, so its long axis runs along the spine), within the middle 40 %
    of its length; a bridged disc is narrower than the bodies on either side of it.
    """
    voxels = np.argwhere(inst == index + 1)
    mm = voxels @ aff[:3, :3].T + aff[:3, 3]
    axis = np.asarray(shapes[index].long_axis)
    axis = axis if axis[2] >= 0 else -axis  # +S: the upper half has the larger coordinate
    t = (mm - mm.mean(axis=0)) @ axis
    edges = np.arange(np.floor(t.min()), np.ceil(t.max()) + 1.0)
    counts = np.convolve(np.histogram(t, bins=edges)[0], np.ones(3) / 3, mode="same")
    lo = int(0.3 * len(counts))
    hi = max(int(np.ceil(0.7 * len(counts))), lo + 1)
    cut = edges[lo + int(np.argmin(counts[lo:hi]))] + 0.5
    lower = voxels[t < cut]
    new = len(shapes)
    inst[tuple(lower.T)] = new + 1
    shapes = [*shapes[:index], body_shape(inst == index + 1, aff), *shapes[index + 1 :],
              body_shape(inst == new + 1, aff)]
    k = order.index(index)
    return [*order[: k + 1], new, *order[k + 1 :]], shapes
