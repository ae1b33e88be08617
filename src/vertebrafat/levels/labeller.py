"""Name the vertebral bodies of a mask: L1-L5 (and T12, sacrum, L6) in the VerSe convention.

Steps (all geometry from the affine, never from the array order):

1. instances: :func:`vertebrafat.levels.instances.split_instances` (3D components, bridged
   discs cut, side-by-side pieces of one body merged); small pieces far off the spine's curve
   (false positives in the pelvis, :func:`vertebrafat.levels.spine.off_spine`) are dropped;
2. order: instance centroids in RAS mm, sorted by their projection on the spine's own axis
   (principal axis of the centroids, oriented to +S); a small piece that sits on top of a
   neighbour (centroid step under half the typical step, not cut by the field of view) is merged
   into it; a step far longer than the typical one means a body is missing (``gap``) and the
   count skips the levels that belong there;
3. anchor and name: at the sacrum when in view (a sacrum mask from the model, small or
   FOV-cut sacral pieces below the last full body, or a long, sacrum-shaped lowest body, see
   :mod:`vertebrafat.levels.sacrum`), the bodies above are L5, L4, ...;
   with a T12 cue (a mask of the last rib-bearing body, or the model's rib class: the last body
   with rib heads against it, :mod:`vertebrafat.levels.ribs`) the count runs down from T12 and the
   two anchors together reveal six (``L6``, ``transitional``) or four lumbar bodies
   (``transitional``); with neither, the lowest body is called L5 (lumbar fields of view stop
   at the sacrum) and the study is flagged ``no_sacrum`` and ``uncertain_level``.

Per-label flags: ``partial_fov`` (touches the image border: cut by the field of view, still
named and measured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.core.labels import LABEL_OF_LEVEL, present_labels
from vertebrafat.core.types import Affine, Labels, Mask
from vertebrafat.levels.instances import (
    SIX_CONNECTED,
    InstanceOptions,
    overlap_index,
    split_instances,
    voxel_volume_ml,
)
from vertebrafat.levels.naming import (
    Cue,
    fused_body,
    lumbar_median,
    name_levels,
    sacrum_position,
)
from vertebrafat.levels.ribs import rib_contacts, side_free
from vertebrafat.levels.sacrum import (
    BodyShape,
    body_shapes,
    count_sacral_fragments,
)
from vertebrafat.levels.spine import (
    CLASS_CUT_CONTACT,
    NOT_A_BODY_VOLUME,
    class_tail,
    doubtful_tail,
    drop_non_bodies,
    extend_fused,
    merge_stacked_fragments,
    off_spine,
    sacrum_contact,
    specks,
    spine_order,
    split_at_waist,
    tail_is_weak,
)


@dataclass(frozen=True)
class VertebraLabelling:
    """Result of :func:`label_vertebrae`.

    ``labels``: uint8 ``(slices, rows, cols)`` in the VerSe convention. ``level_flags``: label ->
    flags of that body (``partial_fov``). ``study_flags``: flags of the whole naming
    (``no_sacrum``, ``uncertain_level``, ``transitional``, ``gap``). ``anchor``: what the count
    started from (``sacrum``, ``t12``, ``bottom``; ``none`` for an empty mask). ``cues``: every
    cue's vote on the lumbosacral junction and its verdict, ``confidence`` ``high``, ``medium``
    or ``low`` (:mod:`vertebrafat.levels.naming`). ``dropped``: pieces left out of the count as
    not bodies (one sagittal slice, or small between two bodies); they get no label.
    ``ignored``: cue masks left unused, with the reason (a rib mask larger than the bodies).
    """

    labels: Labels
    level_flags: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    study_flags: tuple[str, ...] = ()
    anchor: str = "none"
    cues: tuple[Cue, ...] = ()
    confidence: str = "none"
    dropped: int = 0
    ignored: tuple[str, ...] = ()

    def naming(self) -> dict[str, object]:
        """The naming's anchor, confidence, flags, cues and verdicts (``bmf.json``'s
        ``naming``)."""
        return {"anchor": self.anchor, "confidence": self.confidence,
                "flags": list(self.study_flags), "cues": [c.as_dict() for c in self.cues],
                "pieces_not_counted": self.dropped, "cues_ignored": list(self.ignored)}

    def flags(self) -> dict[int, tuple[str, ...]]:
        """Per label: its own flags followed by the study flags (the table's ``flags``)."""
        present = present_labels(self.labels)
        return {lab: tuple(self.level_flags.get(lab, ())) + self.study_flags for lab in present}


def label_vertebrae(
    mask: Mask,
    geometry: Affine | WaterFatImage,
    *,
    sacrum: Mask | None = None,
    t12: Mask | None = None,
    ribs: Mask | None = None,
    rib_check: Mask | None = None,
    options: InstanceOptions | None = None,
) -> VertebraLabelling:
    """Split a vertebral-body mask into bodies and name them L1-L5 (VerSe labels).

    Parameters
    ----------
    mask : (slices, rows, cols) bool
        Binary vertebral-body mask (``labels > 0`` of any label map works too).
    geometry : (4, 4) affine or WaterFatImage
        Voxel -> RAS mm; superior is +S whatever the array order.
    sacrum : (slices, rows, cols) bool, optional
        Sacrum class of a model that has one; its largest overlap becomes label 26. An empty
        class (the model saw no sacrum) makes sacral fragments a weak cue.
    t12 : (slices, rows, cols) bool, optional
        A T12 cue (last rib-bearing body); the instance it overlaps most is T12.
    ribs : (slices, rows, cols) bool, optional
        Rib mask (a model's rib class); used for the T12 cue when ``t12`` is not given: the
        most caudal body with rib voxels against it on both sides is T12.
    rib_check : (slices, rows, cols) bool, optional
        A less reliable rib mask (a model's rib class on a water image alone): its T12 names
        (a strong ``t12_ribs_water`` cue) when the body below it bears no rib within 15 mm on
        one side and either the sacrum is in view or five bodies or more lie below; otherwise
        it votes as a weak cue, so a disagreement makes the naming ``uncertain_level`` but
        never renames.
    options : InstanceOptions, optional
        Instance-splitting thresholds.

    Returns
    -------
    VertebraLabelling
        Empty mask -> all-zero labels, anchor ``none``.

    Raises
    ------
    InputError
        If the masks are not 3D or differ in shape.
    GeometryError
        If the affine is not an invertible 4x4 matrix.

    Examples
    --------
    Six bodies above a long sacrum, in 2 mm voxels (axis 1 runs head to feet):

    >>> import numpy as np
    >>> from vertebrafat.core.labels import LEVEL_OF_LABEL
    >>> affine = np.array([[-2.0, 0, 0, 10], [0, 0, -2.0, 20], [0, -2.0, 0, 60], [0, 0, 0, 1]])
    >>> mask = np.zeros((7, 72, 12), bool)
    >>> for top in range(2, 56, 9):
    ...     mask[1:6, top:top + 6, 2:10] = True
    >>> mask[1:6, 56:72, 2:10] = True
    >>> result = label_vertebrae(mask, affine)
    >>> [LEVEL_OF_LABEL[int(label)] for label in np.unique(result.labels)[1:]]
    ['T12', 'L1', 'L2', 'L3', 'L4', 'L5', 'S1']
    >>> result.anchor, result.study_flags
    ('sacrum', ())
    """
    affine = geometry.affine if isinstance(geometry, WaterFatImage) else geometry
    aff = np.asarray(affine, dtype=np.float64)
    body = _check_body(mask)
    extra = _check_mask(sacrum, "sacrum", body.shape)
    cue = _check_mask(t12, "t12", body.shape)
    rib_mask = _check_mask(ribs, "ribs", body.shape)
    check_mask = _check_mask(rib_check, "rib_check", body.shape)
    if aff.shape != (4, 4) or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
        raise GeometryError(f"affine must be an invertible 4x4 matrix, got {aff.tolist()}")
    ignored: list[str] = []
    rib_mask = _plausible_ribs(rib_mask, body, "ribs", aff, ignored)
    check_mask = _plausible_ribs(check_mask, body, "rib_check", aff, ignored)
    class_empty = extra is not None and not extra.any()  # the model has the class, saw none
    extra = _largest_component(extra)
    inst, n = split_instances(body if extra is None else body & ~extra, aff, options=options)
    if extra is not None:
        n += 1
        inst[extra] = n
    if n == 0:
        return VertebraLabelling(labels=np.zeros(body.shape, dtype=np.uint8))
    shapes = body_shapes(inst, n, aff)
    stray = off_spine(shapes[: n - 1] if extra is not None else shapes)
    stray |= specks(shapes, keep=n - 1 if extra is not None else None)
    if stray:
        keep = [i for i in range(n) if i not in stray]
        remap = np.zeros(n + 1, dtype=inst.dtype)
        remap[[i + 1 for i in keep]] = np.arange(1, len(keep) + 1)
        inst, shapes, n = remap[inst], [shapes[i] for i in keep], len(keep)
    order = spine_order(shapes)
    # the sacral tail: fragments below L5 or, with the model's sacrum class at the bottom, the
    # class's instance; either grows over pieces fused to it (S1 continuous with S2, no disc):
    # a model may call the upper S1 "body" and the rest "sacrum" (issue-14 real-anatomy model)
    protected = overlap_index(inst, extra)  # the class's instance: never merged nor dropped
    if extra is None:
        found_tail = count_sacral_fragments([shapes[i] for i in order])
    else:
        found_tail = class_tail(order, shapes, protected)
    n_tail = extend_fused(order, found_tail, inst, aff) if found_tail else 0
    weak_tail = tail_is_weak(order, shapes, found=found_tail, grown=n_tail)
    doubtful = doubtful_tail(order, shapes, found=found_tail, grown=n_tail)
    if extra is not None and (n_tail == found_tail or weak_tail):
        # the class (and the bits below it) alone, or grown over a full-sized body (a bridged
        # L5/S1 disc, phantom seed 7 P006 with the real-anatomy model): named by the class's
        # own overlap, as before
        n_tail = found_tail = 0
        weak_tail = False
    tail = order[len(order) - n_tail :]
    order, shapes, inst = merge_stacked_fragments(order[: len(order) - n_tail], shapes, inst, aff,
                                                  keep=protected)
    order, dropped = drop_non_bodies(order, shapes, tail_follows=n_tail > 0, keep=protected)
    # two bodies fused through a disc above the sacrum: cut at the waist, or the count would
    # miss a level
    top_of_sacrum = sacrum_position(order + tail, shapes, inst, extra, n_tail)
    fused = fused_body(order[:top_of_sacrum], shapes)
    if fused is not None:
        order, shapes = split_at_waist(order, shapes, inst, fused, aff)
    order += tail
    from_ribs = False
    if cue is None and rib_mask is not None:
        cue, from_ribs = _rib_cue(rib_mask, order, shapes, inst, aff)[0], True
    check, check_reach = (None, None) if check_mask is None else _rib_cue(
        check_mask, order, shapes, inst, aff)
    # the rib class on water alone names when the body below its T12 is rib-free, and either
    # the sacrum is in view (which checks its count: five or six lumbar bodies, see
    # name_levels) or it leaves at least five bodies below T12: it may reveal an L6, never
    # take a lumbar body for T12 (a real L1 with "ribs" on water, MyoSegmenTUM myo44)
    water_cue = False
    if cue is None and check is not None and check_reach is not None:
        below = order.index(int(inst[check].flat[0]) - 1) + 1  # position of the body below
        water_cue = (below < len(order)
                     and side_free(check_reach, order[below])
                     and (sacrum_position(order, shapes, inst, extra, n_tail) is not None
                          or len(order) - below >= 5))
    if water_cue:
        cue, from_ribs, check = check, True, None
    # the class alone at the bottom, a body's worth pressed against the body above it: it
    # covers a body cut from its upper part
    class_pos = None if extra is None or n_tail else sacrum_position(order, shapes, inst,
                                                                     extra, 0)
    class_cut = class_pos is not None and class_pos >= 1 and (
        NOT_A_BODY_VOLUME * lumbar_median(order, shapes, class_pos)
        <= shapes[order[class_pos]].volume_ml <= shapes[order[class_pos - 1]].volume_ml
    ) and sacrum_contact(order, class_pos, inst, aff) >= CLASS_CUT_CONTACT
    naming = name_levels(order, shapes, inst, extra, cue, n_tail, rib_cue=from_ribs,
                         t12_check=check, weak_tail=weak_tail or class_empty,
                         split=fused is not None, water_ribs=water_cue,
                         doubtful_tail=doubtful and n_tail > 0, class_cut=class_cut)
    label_of = np.zeros(int(inst.max()) + 1, dtype=np.uint8)  # instance -> label, one pass
    level_flags: dict[int, tuple[str, ...]] = {}
    for idx, name in zip(order, naming.names, strict=True):
        label = LABEL_OF_LEVEL.get(name)
        if label is None:
            continue
        label_of[idx + 1] = label
        if shapes[idx].touches_border:
            level_flags[label] = ("partial_fov",)
    labels = label_of[inst]
    return VertebraLabelling(labels, level_flags, naming.flags, naming.anchor, naming.cues,
                             naming.confidence, len(dropped), tuple(ignored))


class HasMask(Protocol):
    """A segmentation as :func:`label_segmentation` reads it (``segment.Segmentation`` fits);
    optional ``sacrum`` and ``ribs`` attributes (``Mask | None``) are used when present."""

    @property
    def mask(self) -> Mask: ...


def label_segmentation(seg: HasMask, geometry: Affine | WaterFatImage) -> VertebraLabelling:
    """:func:`label_vertebrae` of a segmentation with every cue it carries (its ``sacrum``,
    ``ribs`` and ``water_ribs`` masks when present), so that every caller names with the same
    cues."""
    return label_vertebrae(
        seg.mask,
        geometry,
        sacrum=getattr(seg, "sacrum", None),
        ribs=getattr(seg, "ribs", None),
        rib_check=getattr(seg, "water_ribs", None),
    )


def _rib_cue(
    ribs: npt.NDArray[np.bool_],
    order: list[int],
    shapes: list[BodyShape],
    inst: npt.NDArray[np.int32],
    aff: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.bool_] | None, npt.NDArray[np.float64]]:
    """Mask of the most caudal rib-bearing body (None when no body bears ribs), and the rib
    volume within reach of each body side (:func:`rib_contacts`)."""
    centres_x = np.array([s.centre_mm[0] for s in shapes])
    bearing, reach = rib_contacts(ribs & (inst == 0), inst, centres_x, aff, cranial_first=order)
    found = [i for i in order if bearing[i]]
    return (None if not found else np.asarray(inst == found[-1] + 1)), reach


# A rib mask larger than the body mask times this is no rib mask: the rib class is learnt from
# the phantom only, and on real water images the fold models mark 550-1720 mL "rib" (a third of
# the field of view) against 160-250 mL of bodies (MyoSegmenTUM, 30 held-out subjects); its
# T12 then disagreed with right names on 7 of 26 spines. Ribs in a lumbar field of view are a
# few tens of mL (phantom: 2-24 mL on water alone).
RIB_MASK_MAX_RATIO = 1.0


def _plausible_ribs(
    ribs: npt.NDArray[np.bool_] | None, body: npt.NDArray[np.bool_], name: str,
    aff: npt.NDArray[np.float64], ignored: list[str],
) -> npt.NDArray[np.bool_] | None:
    """``ribs``, or None (noted in ``ignored``) when it is larger than the body mask times
    ``RIB_MASK_MAX_RATIO``."""
    if ribs is None or int(ribs.sum()) <= RIB_MASK_MAX_RATIO * int(body.sum()):
        return ribs
    ml = voxel_volume_ml(aff)
    ignored.append(f"{name}: {ribs.sum() * ml:.0f} mL, larger than the bodies' "
                   f"{body.sum() * ml:.0f} mL: not a rib mask")
    return None


def _check_body(mask: Mask) -> npt.NDArray[np.bool_]:
    arr = np.asarray(mask).astype(bool)
    if arr.ndim != 3:
        raise InputError(f"mask: expected a 3D mask, got shape {arr.shape}")
    return arr


def _check_mask(
    mask: Mask | None, name: str, shape: tuple[int, ...] | None
) -> npt.NDArray[np.bool_] | None:
    if mask is None:
        return None
    arr = np.asarray(mask).astype(bool)
    if arr.ndim != 3:
        raise InputError(f"{name}: expected a 3D mask, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name}: shape {arr.shape} differs from the body mask {shape}")
    return arr


def _largest_component(mask: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.bool_] | None:
    """The largest 6-connected component of a (sacrum) mask; None if empty or absent."""
    if mask is None or not mask.any():
        return None
    comps, n = ndi.label(mask, structure=SIX_CONNECTED)
    if n == 1:
        return mask
    sizes = np.bincount(comps.ravel())[1:]
    return np.asarray(comps == int(np.argmax(sizes)) + 1)


