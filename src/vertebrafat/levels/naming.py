"""Names for an ordered chain of bodies: counted up from the sacrum, down from T12, or up from
the lowest body when neither anchor is in view; the two anchors together reveal an L6 or a
missing lumbar body (``transitional``); a long step means a missing body (``gap``).

Every cue that can place the lumbosacral junction (the slot of S1 in the chain) votes
independently (:class:`Cue`): the model's sacrum class, sacral fragments cut by the field of
view, a long sacrum-shaped lowest body, the rib-bearing T12 (five lumbar bodies below it), a
full-sized body with a disc below the sacrum class, or a piece below it that outweighs it (the
class then sits on L5, not on the sacrum's top), the class pressed against the body above it
(it ends inside a bone, not at the L5/S1 disc), a body the size of two above the sacrum (two
bodies fused: the count misses one), the rib class on a water image alone (strong where the
labeller lets it name, else weak: it checks), and, only when nothing else is in view, the
lowest body (weak: lumbar protocols usually stop at the sacrum). Two strong cues that agree
outvote the one the count rests on (:func:`_majority`). The naming's confidence: ``high`` when
two or more strong cues agree and none disagrees, ``medium`` with one strong cue, ``low`` when
a cue disagrees, only a weak one exists, or the count is transitional (a missed floating rib on
T12 counts like an L6); ``low`` sets ``uncertain_level``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vertebrafat.levels.instances import overlap_index
from vertebrafat.levels.sacrum import BodyShape, looks_like_sacrum
from vertebrafat.levels.spine import SACRAL_BIT, spine_steps

_ABOVE_SACRUM = ("L5", "L4", "L3", "L2", "L1", "T12", "T11", "T10", "T9", "T8", "T7", "T6")
_BELOW_T12 = ("L1", "L2", "L3", "L4", "L5", "L6")
# a separate body below the sacrum class at least this fraction of the median lumbar volume
# (with a disc between them: they are separate instances) means the class sits on L5
FULL_BELOW_SACRUM = 0.6
# a body above the sacrum this many times the volume of the whole body above it is two bodies
# fused through a disc the mask did not cut: one level is missing from the count. Consecutive
# lumbar bodies differ by at most 1.28x in the 30 MyoSegmenTUM truth masks (median 1.16) and
# 1.43x in the phantom; two fused bodies are 1.7-2.2x (fold model of MyoSegmenTUM myo35, L4+L5).
FUSED_VOLUME_RATIO = 1.6
FUSED_STEP_RATIO = 1.3
# a piece below the sacrum class this many times the class's volume (and over SACRAL_BIT of a
# body) means the class is no sacral top (:func:`_body_below_class`)
OUTWEIGHS_CLASS = 2.0
# a sacrum class under this many lumbar bodies' volume, not cut by the field of view below, is
# one body called sacrum (:func:`lone_sacral_body`)
LONE_SACRAL_RATIO = 1.3
# ... with at least this much field of view below it: more than a disc, so S2 would show
LONE_ROOM_MM = 10.0


@dataclass(frozen=True)
class Cue:
    """One cue's vote on where the lumbosacral junction is.

    ``name``: ``sacrum_class``, ``sacral_fragments``, ``sacrum_shape``, ``t12_ribs``
    (``t12_cue`` from a given T12 mask), ``body_below_sacrum``, ``sacrum_extent``,
    ``sacrum_contact``, ``body_sizes`` (a body the size of two: a level missing from the
    count), ``tail_size``, ``t12_ribs_water`` or ``lowest_body``. ``strength``: ``strong`` or
    ``weak``. ``junction``: the chain slot of S1 this cue implies (``None``: it only objects).
    ``verdict``: ``agrees`` or ``disagrees`` with the names given.
    """

    name: str
    strength: str
    junction: int | None
    verdict: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"cue": self.name, "strength": self.strength, "verdict": self.verdict}


@dataclass(frozen=True)
class Naming:
    """Level names of a chain (top to bottom), study flags, anchor, cues and confidence."""

    names: list[str]
    flags: tuple[str, ...]
    anchor: str
    cues: tuple[Cue, ...] = ()
    confidence: str = "low"


def name_levels(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    sacrum: npt.NDArray[np.bool_] | None, t12: npt.NDArray[np.bool_] | None, n_tail: int,
    *, rib_cue: bool = False, t12_check: npt.NDArray[np.bool_] | None = None,
    weak_tail: bool = False, split: bool = False, water_ribs: bool = False,
    doubtful_tail: bool = False, class_cut: bool = False,
) -> Naming:
    """Level names for ``order`` (top to bottom), the study flags, the anchor and the cues.

    A T12 cue found from ribs (``rib_cue``) may only reveal an L6: with the sacrum in view it is
    used when it leaves five or six lumbar bodies; otherwise it does not rename the spine (a
    rib-class speck on a lumbar body) but it disagrees, and the naming is ``uncertain_level``.
    ``split``: the labeller cut a body the size of two at its waist (:func:`fused_body`); the
    ``body_sizes`` cue then objects. ``doubtful_tail``: the sacral tail grew over a piece
    whose size an upper S1 and an L5 share (:func:`~vertebrafat.levels.spine.doubtful_tail`);
    the ``tail_size`` cue then objects. ``class_cut``: the sacrum class ends against the body
    above it, inside a bone (:func:`~vertebrafat.levels.spine.sacrum_contact`); the
    ``sacrum_contact`` cue then objects."""
    names, flags, anchor, slots = _names(
        order, shapes, inst, sacrum, t12, n_tail, rib_cue=rib_cue, weak_tail=weak_tail
    )
    cues = _cues(order, shapes, inst, sacrum, t12, n_tail, slots, rib_cue=rib_cue,
                 weak_tail=weak_tail, water_ribs=water_ribs)
    check_pos = _overlap_position(order, inst, t12_check)
    if check_pos is not None:
        cues.append(Cue("t12_ribs_water", "weak", slots[check_pos] + 6))
    if split:  # it only objects: a body the size of two, cut at its waist by the labeller
        cues.append(Cue("body_sizes", "strong", None))
    if doubtful_tail:  # it only objects: an upper S1 or a bridged L5 in the sacral tail
        cues.append(Cue("tail_size", "strong", None))
    if class_cut:  # it only objects: the class split a bone, part "body", part "sacrum"
        cues.append(Cue("sacrum_contact", "strong", None))
    junction = _junction(names, slots)
    transitional = "transitional" in flags  # the count says sacrum and T12 bracket 4 or 6
    majority = None if transitional else _majority(cues, junction)
    if majority is not None:  # two strong cues against the one the count rests on
        names = _count_up(slots, majority, _ABOVE_SACRUM)
        names = [n if s < majority else "S1" for n, s in zip(names, slots, strict=True)]
        junction, anchor = majority, "cues"
    voted = tuple(
        Cue(c.name, c.strength, c.junction,
            "agrees" if (c.junction is not None and c.junction == junction)
            or (transitional and c.name.startswith("t12")) else "disagrees")
        for c in cues
    )
    strong = [c for c in voted if c.strength == "strong"]
    # four or six lumbar bodies named on the sacrum and T12 cues: concordant, so declared
    # ... but six bodies below T12 with no sacrum in view rest on one cue (L6 or S1?)
    # two weak cues that agree (the lowest body and the rib class on water) stand for one
    # strong cue
    if (any(c.verdict == "disagrees" for c in voted) or (not strong and len(voted) < 2)
            or (transitional and "no_sacrum" in flags)):
        confidence = "low"
    else:
        confidence = "high" if len(strong) >= 2 else "medium"
    if confidence == "low" and "uncertain_level" not in flags:
        flags = (*flags, "uncertain_level")
    return Naming(names, flags, anchor, voted, confidence)


def _majority(cues: list[Cue], junction: int | None) -> int | None:
    """The junction slot that at least two strong cues place alike, when fewer strong cues
    place it where the names put it (``junction``); else None.

    The count rests on one anchor; when two independent strong cues agree on another junction
    (held-out phantom seed 3 subject 6 on water alone: the sacrum class on L5, against a
    sacrum-shaped body below it and the rib-bearing T12), they name the spine. The cues still
    disagree, so the naming stays ``uncertain_level``."""
    votes: dict[int, int] = {}
    for c in cues:
        if c.strength == "strong" and c.junction is not None:
            votes[c.junction] = votes.get(c.junction, 0) + 1
    if not votes:
        return None
    best = max(votes, key=lambda j: (votes[j], j == junction))
    here = 0 if junction is None else votes.get(junction, 0)
    if best == junction or votes[best] < 2 or here >= votes[best]:
        return None
    return best


def _junction(names: list[str], slots: list[int]) -> int | None:
    """Slot of S1 in the names given (one below the last lumbar body when S1 is not in view)."""
    if "S1" in names:
        return slots[names.index("S1")]
    lumbar = [k for k, n in enumerate(names) if n in _BELOW_T12]
    if not lumbar:
        return None
    # from the first piece of the lowest lumbar body: a body the model split has more pieces
    # below, of the same name, and the slot after the last of them is no junction (held-out
    # phantom seed 42 subject 6, lumbar-only view)
    lowest = names.index(names[lumbar[-1]])  # L1..L5 stand 5..1 slots above S1, an L6 one slot
    return slots[lowest] + max(5 - _BELOW_T12.index(names[lowest]), 1)


def _cues(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    sacrum: npt.NDArray[np.bool_] | None, t12: npt.NDArray[np.bool_] | None, n_tail: int,
    slots: list[int], *, rib_cue: bool, weak_tail: bool = False, water_ribs: bool = False,
) -> list[Cue]:
    """Each available cue's junction slot, independently of the others."""
    cues: list[Cue] = []
    class_pos = _overlap_position(order, inst, sacrum) if sacrum is not None else None
    if class_pos is not None:
        # the class grown over pieces fused to it (n_tail) is one sacrum
        top = slots[len(order) - n_tail] if n_tail else slots[class_pos]
        cues.append(Cue("sacrum_class", "weak" if weak_tail else "strong", top))
        median = lumbar_median(order, shapes, class_pos)
        if median > 0 and _body_below_class(order, shapes, class_pos, median):
            cues.append(Cue("body_below_sacrum", "strong", None))
        sacral = order[len(order) - n_tail :] if n_tail else [order[class_pos]]
        if lone_sacral_body([shapes[i] for i in sacral], median):
            cues.append(Cue("sacrum_extent", "strong", None))
    if n_tail and class_pos is None:
        strength = "weak" if weak_tail else "strong"  # grown over a body, or a broken body
        cues.append(Cue("sacral_fragments", strength, slots[len(order) - n_tail]))
    if len(order) >= 3 and looks_like_sacrum(shapes[order[-1]], [shapes[i] for i in order[:-1]]):
        cues.append(Cue("sacrum_shape", "strong", slots[-1]))
        # the shape alone, no class on it: a long piece the size of one body that ends well
        # above the edge is no whole sacrum either (a fold model's L4 and L5 fragments of
        # MyoSegmenTUM myo49 in one piece, 0.68 of the bodies above, 17 mm from the edge)
        lowest = len(order) - 1
        if class_pos is None and lone_sacral_body([shapes[order[lowest]]],
                                                  lumbar_median(order, shapes, lowest)):
            cues.append(Cue("sacrum_extent", "strong", None))
    t12_pos = _overlap_position(order, inst, t12)
    if t12_pos is not None:
        name = ("t12_ribs_water" if water_ribs else "t12_ribs") if rib_cue else "t12_cue"
        cues.append(Cue(name, "strong", slots[t12_pos] + 6))
    if not cues:
        cues.append(Cue("lowest_body", "weak", slots[-1] + 1))
    return cues


def _body_below_class(
    order: list[int], shapes: list[BodyShape], class_pos: int, median: float
) -> bool:
    """Whether a piece below the sacrum class (position ``class_pos`` of ``order``; ``median``:
    :func:`lumbar_median` there) says the class is not the top of the sacrum: a full-sized body
    (``FULL_BELOW_SACRUM`` of the median: with a disc between them, the class sits on L5), or a
    piece that is more than a sacral bit (``SACRAL_BIT`` of the median) and ``OUTWEIGHS_CLASS``
    times the class itself. The sacrum narrows downward, so what lies below its top is smaller
    than the top: a fold model called a strip 9 mm wide at the side of MyoSegmenTUM myo32's L5
    "sacrum" (2.6 mL) and the rest of L5 (19.2 mL, 0.55 of the bodies above, 7.4 times the
    class), next in the chain, was named S1 with every name one level up and no flag. (A
    sacrum that an emptied mid-sagittal slice cut into halves, the class on one, gives a
    piece about the class's size beside it: myo35, 5.9 against 5.2 mL.)"""
    top = shapes[order[class_pos]].volume_ml
    return any(shapes[i].volume_ml >= FULL_BELOW_SACRUM * median
               or (shapes[i].volume_ml >= OUTWEIGHS_CLASS * top
                   and shapes[i].volume_ml >= SACRAL_BIT * median)
               for i in order[class_pos + 1 :])


def lone_sacral_body(sacral: list[BodyShape], lumbar_median_ml: float) -> bool:
    """Whether the sacrum the class found ends inside the field of view at the size of one
    lumbar body: the sacrum is about 10 cm long, so below a real one there is either more of it
    or the field of view's edge. A class on one body with nothing below it is a model that
    missed the sacrum and called L5 "sacrum" (fold model of MyoSegmenTUM myo39: 24 mL, 0.72 of
    the lumbar median, 21 mm above the edge), or one that found S1 and lost the rest; a
    sacrum-shaped lowest body with no class on it is held to the same test. Lone:
    under ``LONE_SACRAL_RATIO`` lumbar bodies, at least ``LONE_ROOM_MM`` above the edge.
    Every sacrum class of the 30 held-out MyoSegmenTUM subjects reaches the inferior edge, and
    those of held-out phantom subjects that do not are 1.6-2.7 times the lumbar median."""
    if not sacral or lumbar_median_ml <= 0 or min(s.below_mm for s in sacral) < LONE_ROOM_MM:
        return False
    return sum(s.volume_ml for s in sacral) < LONE_SACRAL_RATIO * lumbar_median_ml


def lumbar_median(order: list[int], shapes: list[BodyShape], pos: int) -> float:
    """Median volume (mL) of the (up to) four bodies above position ``pos`` of ``order``, the
    yardstick of a sacral piece's size; 0.0 when none lies above."""
    above = [shapes[i].volume_ml for i in order[max(pos - 4, 0) : pos]]
    return float(np.median(above)) if above else 0.0


def small_sacrum(order: list[int], shapes: list[BodyShape], sacrum_pos: int) -> bool:
    """Whether the sacrum found at ``sacrum_pos`` of ``order`` (with everything below it) is
    under ``LONE_SACRAL_RATIO`` times the median of the (up to) four bodies above it: one
    body's worth, wherever it ends (a whole sacrum is 1.6-2.7 lumbar bodies even where the
    class stops short of the field of view's edge, see :func:`lone_sacral_body`)."""
    sacral = sum(shapes[i].volume_ml for i in order[sacrum_pos:])
    return sacral < LONE_SACRAL_RATIO * lumbar_median(order, shapes, sacrum_pos)


def fused_body(order: list[int], shapes: list[BodyShape]) -> int | None:
    """The first body of ``order`` (top to bottom, above the sacrum) that is two bodies fused
    through a disc the mask did not cut, or None.

    Size and spacing must both say so: its volume is at least ``FUSED_VOLUME_RATIO`` times the
    larger of the (up to) two whole bodies above it (a body the field of view cuts, or a piece
    under half the median body, is no yardstick; two of them, so that a flattened fractured
    body does not make the next look fused), and its centroid lies at least
    ``FUSED_STEP_RATIO`` times the chain's median step below the one above (a fused pair's
    centroid sits between its two halves, 1.5 steps away; a large but single L5 a normal step).
    """
    if len(order) < 3:
        return None
    steps = spine_steps(order, shapes)
    typical_step = float(np.median(steps))
    median = float(np.median([shapes[i].volume_ml for i in order]))
    for k in range(1, len(order)):
        whole = [shapes[i].volume_ml for i in order[max(k - 2, 0) : k]
                 if not shapes[i].touches_border and shapes[i].volume_ml >= 0.5 * median]
        big = bool(whole) and shapes[order[k]].volume_ml >= FUSED_VOLUME_RATIO * max(whole)
        if big and steps[k - 1] >= FUSED_STEP_RATIO * typical_step:
            return order[k]
    return None


def _names(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    sacrum: npt.NDArray[np.bool_] | None, t12: npt.NDArray[np.bool_] | None, n_tail: int,
    *, rib_cue: bool, weak_tail: bool = False,
) -> tuple[list[str], tuple[str, ...], str, list[int]]:
    """Names, flags and anchor (the counting rules), with the slots of the chain."""
    sacrum_pos = sacrum_position(order, shapes, inst, sacrum, n_tail)
    # position of each body counted from the top, gaps skipped; no gap is looked for in or
    # into the sacrum (its segments and the L5/S1 step differ from the lumbar spacing)
    above = order if sacrum_pos is None else order[:sacrum_pos]
    slots = _slots(above, shapes)
    slots += list(range(slots[-1] + 1 if slots else 0, (slots[-1] + 1 if slots else 0)
                        + len(order) - len(above)))
    flags: list[str] = ["gap"] if slots[-1] != len(order) - 1 else []
    t12_pos = _overlap_position(order, inst, t12)
    if (rib_cue and sacrum_pos is not None and t12_pos is not None and t12_pos < sacrum_pos
            and slots[sacrum_pos] - slots[t12_pos] - 1 == 4
            and (weak_tail or small_sacrum(order, shapes, sacrum_pos))):
        # four bodies between the rib-bearing T12 and a "sacrum" no bigger than a lumbar body:
        # that is L5 called sacrum (cut by the field of view's lower edge, or alone), or S1 of
        # a spine with four lumbar bodies. The ribs name it; the sacral cue disagrees, so the
        # naming is uncertain_level either way
        names = _count_down(slots[: sacrum_pos + 1], slots[t12_pos])
        names += [names[-1]] * (len(order) - sacrum_pos - 1)
        return names, (*flags, "uncertain_level"), "t12", slots
    if rib_cue and sacrum_pos is not None and t12_pos is not None:
        if t12_pos >= sacrum_pos or slots[sacrum_pos] - slots[t12_pos] - 1 not in (5, 6):
            t12_pos = None
    if sacrum_pos is None and t12_pos is None:
        flags.append("no_sacrum")  # uncertain_level unless a second cue agrees
        return _count_up(slots, slots[-1] + 1, _ABOVE_SACRUM), tuple(flags), "bottom", slots
    if sacrum_pos is None:
        assert t12_pos is not None
        flags.append("no_sacrum")
        names = _count_down(slots, slots[t12_pos])
        if "L6" in names:  # six bodies below T12 and no sacrum: an L6 on one cue, or S1
            flags.append("transitional")
        return names, tuple(flags), "t12", slots
    names = _count_up(slots, slots[sacrum_pos], _ABOVE_SACRUM)
    names[sacrum_pos:] = ["S1"] * (len(order) - sacrum_pos)
    if t12_pos is not None and t12_pos < sacrum_pos:
        n_lumbar = slots[sacrum_pos] - slots[t12_pos] - 1
        if n_lumbar != 5:
            flags.append("transitional")
            names[:sacrum_pos] = _count_down(slots[:sacrum_pos], slots[t12_pos])
            if n_lumbar not in (4, 6):
                flags.append("uncertain_level")
    return names, tuple(flags), "sacrum", slots


def _slots(order: list[int], shapes: list[BodyShape]) -> list[int]:
    """Position of each body from the top, skipping ``round(step / typical) - 1`` at gaps.

    ``typical`` is the median of the (up to) two steps on each side: body spacing grows
    caudally (thoracic bodies are shorter), so a global median would see gaps that are not.
    A step counts as a gap above 1.6 times the typical step.
    """
    if len(order) < 3:
        return list(range(len(order)))
    steps = spine_steps(order, shapes)
    slots = [0]
    for k, step in enumerate(steps):
        near = np.concatenate([steps[max(k - 2, 0) : k], steps[k + 1 : k + 3]])
        typical = float(np.median(near))
        missing = max(round(step / typical) - 1, 0) if step > 1.6 * typical else 0
        slots.append(slots[-1] + 1 + missing)
    return slots


def _count_up(slots: list[int], anchor_slot: int, names_up: tuple[str, ...]) -> list[str]:
    """Names for bodies above a sacrum at ``anchor_slot``: one slot above is L5, and so on."""
    out = []
    for s in slots:
        k = anchor_slot - s - 1
        out.append(names_up[k] if 0 <= k < len(names_up) else "?")
    return out


def _count_down(slots: list[int], t12_slot: int) -> list[str]:
    """Names counted down from T12 at ``t12_slot`` (above it: T11, T10, ...)."""
    out = []
    for s in slots:
        k = s - t12_slot
        if k >= 1:
            out.append(_BELOW_T12[k - 1] if k <= len(_BELOW_T12) else "?")
        else:
            out.append(_ABOVE_SACRUM[5 - k] if 5 - k < len(_ABOVE_SACRUM) else "?")
    return out


def sacrum_position(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    sacrum: npt.NDArray[np.bool_] | None, n_tail: int,
) -> int | None:
    """Index in ``order`` (top to bottom, a sacral tail of ``n_tail`` last) of the sacrum: the
    tail's top, the model's sacrum class, else a sacrum-shaped bottom; None without one."""
    if n_tail:
        return len(order) - n_tail
    if sacrum is not None and sacrum.any():
        return _overlap_position(order, inst, sacrum)
    if len(order) >= 3 and looks_like_sacrum(shapes[order[-1]], [shapes[i] for i in order[:-1]]):
        return len(order) - 1
    return None


def _overlap_position(
    order: list[int], inst: npt.NDArray[np.int32], cue: npt.NDArray[np.bool_] | None
) -> int | None:
    """Index in ``order`` of the instance that overlaps ``cue`` most (None if no overlap)."""
    index = overlap_index(inst, cue)
    return None if index is None else order.index(index)
