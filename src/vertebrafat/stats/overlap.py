"""Voxel-overlap metrics of a binary prediction against a binary reference.

All metrics come from the confusion counts TP, FP, TN, FN of two boolean arrays:

=============  ==============================  =========================================
metric         formula                         when the denominator is 0
=============  ==============================  =========================================
sensitivity    TP / (TP + FN)                  NaN (no reference foreground)
specificity    TN / (TN + FP)                  NaN (no reference background)
precision      TP / (TP + FP)                  NaN (no predicted foreground)
accuracy       (TP + TN) / N                   NaN (no voxel)
f1 = dice      2 TP / (2 TP + FP + FN)         1.0 (both masks empty: perfect agreement)
iou            TP / (TP + FP + FN)             1.0 (both masks empty)
kappa          (po - pe) / (1 - pe)            NaN (pe = 1: both put every voxel in the
                                               same single class)
=============  ==============================  =========================================

F1 and Dice are the same number for binary masks; both are reported because the reference
study reports both. Per-slice statistics (:func:`per_slice_scores`) are taken over the
selected slices (axis ``slice_axis``) in which the reference or the prediction has
foreground; slices empty in both carry no information and are skipped (they would all score
Dice = 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.core.slices import MID_RULE, central_slices
from vertebrafat.core.types import FloatArray, Mask

SCORE_NAMES = ("sensitivity", "specificity", "precision", "accuracy", "f1", "dice", "iou",
               "kappa")


@dataclass(frozen=True)
class Confusion:
    """Voxel counts of a binary prediction against a binary reference."""

    tp: int
    fp: int
    tn: int
    fn: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn,
                         self.fn + other.fn)


@dataclass(frozen=True)
class Scores:
    """The overlap metrics of one :class:`Confusion` (rules in the module notes)."""

    sensitivity: float
    specificity: float
    precision: float
    accuracy: float
    f1: float
    dice: float
    iou: float
    kappa: float


def confusion(ref: Mask, pred: Mask) -> Confusion:
    """TP/FP/TN/FN of ``pred`` against ``ref`` (boolean arrays of one shape).

    Raises
    ------
    InputError
        If the shapes differ (both shapes quoted).
    """
    r, p = np.asarray(ref, dtype=bool), np.asarray(pred, dtype=bool)
    if r.shape != p.shape:
        raise InputError(f"reference shape {r.shape} differs from prediction shape {p.shape}")
    tp = int(np.count_nonzero(r & p))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(r)) - tp
    return Confusion(tp=tp, fp=fp, tn=r.size - tp - fp - fn, fn=fn)


def _ratio(num: float, den: float, *, empty: float = math.nan) -> float:
    return empty if den == 0 else num / den


def scores(c: Confusion) -> Scores:
    """All overlap metrics of the counts ``c`` (see the module table for the 0/0 rules)."""
    total = c.tp + c.fp + c.tn + c.fn
    dice = _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, empty=1.0)
    if total == 0:
        kappa = math.nan
    else:
        po = (c.tp + c.tn) / total
        pe = ((c.tp + c.fp) * (c.tp + c.fn) + (c.tn + c.fn) * (c.tn + c.fp)) / total**2
        kappa = _ratio(po - pe, 1.0 - pe) if not math.isclose(pe, 1.0) else math.nan
    return Scores(
        sensitivity=_ratio(c.tp, c.tp + c.fn),
        specificity=_ratio(c.tn, c.tn + c.fp),
        precision=_ratio(c.tp, c.tp + c.fp),
        accuracy=_ratio(c.tp + c.tn, total),
        f1=dice,
        dice=dice,
        iou=_ratio(c.tp, c.tp + c.fp + c.fn, empty=1.0),
        kappa=kappa,
    )


def dice(ref: Mask, pred: Mask, *, both_empty: float = 1.0) -> float:
    """Dice coefficient ``2|R & P| / (|R| + |P|)`` of two boolean arrays of one shape.

    The one Dice of the package. Two empty masks agree perfectly, so the default is 1.0 (as in
    the metrics table); pass ``both_empty=math.nan`` where an absent structure should drop out
    of a mean instead (training validation does).

    Raises
    ------
    InputError
        If the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([1, 1, 0, 0], bool)
    >>> dice(ref, np.array([1, 0, 1, 0], bool))
    0.5
    >>> dice(ref[:0], ref[:0]), dice(ref[:0], ref[:0], both_empty=math.nan)
    (1.0, nan)
    """
    c = confusion(ref, pred)
    return both_empty if c.tp + c.fp + c.fn == 0 else scores(c).dice


def iou(ref: Mask, pred: Mask) -> float:
    """Intersection over union (Jaccard) of two boolean arrays; 1.0 when both are empty."""
    return scores(confusion(ref, pred)).iou


def per_slice_scores(
    ref: Mask, pred: Mask, *, slice_axis: int = 0, keep: npt.ArrayLike | None = None
) -> dict[str, FloatArray]:
    """Each metric per slice, for the kept slices with foreground in ``ref`` or ``pred``.

    Returns ``{metric: values}`` (one value per used slice, in slice order) plus
    ``"slice"``: the slice indices used. ``keep`` (one bool per slice) restricts the slices.
    """
    r = np.moveaxis(np.asarray(ref, dtype=bool), slice_axis, 0)
    p = np.moveaxis(np.asarray(pred, dtype=bool), slice_axis, 0)
    if r.shape != p.shape:
        raise InputError(f"reference shape {r.shape} differs from prediction shape {p.shape}")
    used = (r.any(axis=(1, 2)) | p.any(axis=(1, 2))) & (
        np.ones(len(r), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    )
    rows = [asdict(scores(confusion(r[k], p[k]))) for k in np.flatnonzero(used)]
    out = {name: np.array([row[name] for row in rows], dtype=np.float64) for name in SCORE_NAMES}
    out["slice"] = np.flatnonzero(used).astype(np.float64)
    return out


def select_slices(
    ref: Mask, *, slices: str, slice_axis: int = 0, annotated: Sequence[int] | None = None
) -> np.ndarray:
    """Which slices to evaluate: a bool per slice along ``slice_axis``.

    ``slices``: ``all``; ``annotated`` = the ``annotated`` indices when given, else the slices
    where ``ref`` has foreground; ``midN`` = the N slices centred on the reference
    foreground's centroid (rounded half up, kept inside the foreground range; all foreground
    slices when there are fewer than N; none when ``ref`` is empty).

    Raises
    ------
    InputError
        On an unknown rule or an annotated index outside the volume.
    """
    r = np.moveaxis(np.asarray(ref, dtype=bool), slice_axis, 0)
    counts = r.sum(axis=(1, 2))
    keep = np.zeros(len(counts), dtype=bool)
    match = MID_RULE.match(slices)
    if slices == "all":
        keep[:] = True
    elif slices == "annotated" and annotated is not None:
        bad = [i for i in annotated if not 0 <= i < len(counts)]
        if bad:
            raise InputError(f"annotated slices {bad} outside 0..{len(counts) - 1}")
        keep[list(annotated)] = True
    elif slices == "annotated":
        keep = counts > 0
    elif match is not None:
        keep = central_slices(counts, int(match.group(1)))
    else:
        raise InputError(f"slices must be 'all', 'annotated' or 'midN' (e.g. mid5), "
                         f"got {slices!r}")
    return keep
