"""Names for an ordered chain of bodies: counted up from the sacrum, down from T12, or up from
the lowest body when neither anchor is in view; the two anchors together reveal an L6 or a
missing lumbar body (``transitional``); a long step means a missing body (``gap``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vertebrafat.levels.sacrum import BodyShape, looks_like_sacrum
from vertebrafat.levels.spine import spine_steps

_ABOVE_SACRUM = ("L5", "L4", "L3", "L2", "L1", "T12", "T11", "T10", "T9", "T8", "T7", "T6")
_BELOW_T12 = ("L1", "L2", "L3", "L4", "L5", "L6")


def name_levels(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    sacrum: npt.NDArray[np.bool_] | None, t12: npt.NDArray[np.bool_] | None, n_tail: int,
    *, rib_cue: bool = False,
) -> tuple[list[str], tuple[str, ...], str]:
    """Level names for ``order`` (top to bottom), the study flags and the anchor.

    A T12 cue found from ribs (``rib_cue``) may only reveal an L6: with the sacrum in view it is
    used when it leaves five or six lumbar bodies, and ignored otherwise (a rib-class speck on
    a lumbar body must not rename the spine)."""
    sacrum_pos = len(order) - n_tail if n_tail else _sacrum_position(order, shapes, inst, sacrum)
    # position of each body counted from the top, gaps skipped; no gap is looked for in or
    # into the sacrum (its segments and the L5/S1 step differ from the lumbar spacing)
    above = order if sacrum_pos is None else order[:sacrum_pos]
    slots = _slots(above, shapes)
    slots += list(range(slots[-1] + 1 if slots else 0, (slots[-1] + 1 if slots else 0)
                        + len(order) - len(above)))
    flags: list[str] = ["gap"] if slots[-1] != len(order) - 1 else []
    t12_pos = _overlap_position(order, inst, t12)
    if rib_cue and sacrum_pos is not None and t12_pos is not None:
        if t12_pos >= sacrum_pos or slots[sacrum_pos] - slots[t12_pos] - 1 not in (5, 6):
            t12_pos = None
    if sacrum_pos is None and t12_pos is None:
        flags += ["no_sacrum", "uncertain_level"]
        return _count_up(slots, slots[-1] + 1, _ABOVE_SACRUM), tuple(flags), "bottom"
    if sacrum_pos is None:
        assert t12_pos is not None
        flags.append("no_sacrum")
        return _count_down(slots, slots[t12_pos]), tuple(flags), "t12"
    names = _count_up(slots, slots[sacrum_pos], _ABOVE_SACRUM)
    names[sacrum_pos:] = ["S1"] * (len(order) - sacrum_pos)
    if t12_pos is not None and t12_pos < sacrum_pos:
        n_lumbar = slots[sacrum_pos] - slots[t12_pos] - 1
        if n_lumbar != 5:
            flags.append("transitional")
            names[:sacrum_pos] = _count_down(slots[:sacrum_pos], slots[t12_pos])
            if n_lumbar not in (4, 6):
                flags.append("uncertain_level")
    return names, tuple(flags), "sacrum"


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


def _sacrum_position(
    order: list[int], shapes: list[BodyShape], inst: npt.NDArray[np.int32],
    sacrum: npt.NDArray[np.bool_] | None,
) -> int | None:
    """Index in ``order`` of the sacrum: the model's sacrum class, else a sacrum-shaped bottom."""
    if sacrum is not None and sacrum.any():
        return _overlap_position(order, inst, sacrum)
    if len(order) >= 3 and looks_like_sacrum(shapes[order[-1]], [shapes[i] for i in order[:-1]]):
        return len(order) - 1
    return None


def _overlap_position(
    order: list[int], inst: npt.NDArray[np.int32], cue: npt.NDArray[np.bool_] | None
) -> int | None:
    """Index in ``order`` of the instance that overlaps ``cue`` most (None if no overlap)."""
    if cue is None or not cue.any():
        return None
    counts = np.bincount(inst[cue].ravel(), minlength=int(inst.max()) + 1)
    counts[0] = 0
    if counts.max() == 0:
        return None
    return order.index(int(np.argmax(counts)) - 1)
