"""Evaluate a predicted segmentation against a reference: overall, per level, per subject.

The reference is a VerSe label map (or a binary mask). The prediction is a label map, a
binary mask, or a probability map (float, 0-1, not all integer). Binary metrics use the
foreground :func:`vertebrafat.core.labels.body_mask` (every label but the sacrum: the
vertebral bodies, as the reference study counted them and as ``probability.nii.gz`` holds
them), or ``probability >= threshold`` (0.5, as the reference study). Pixel ROC/PR compare the
body probability with the reference bodies; sacrum voxels are background there.

Per level (labels of :data:`vertebrafat.core.labels.LEVEL_OF_LABEL`):

- label-map prediction: reference ``== label`` against prediction ``== label`` over the whole
  (selected) volume; levels found in either map are reported (the sacrum, S1, too, by Dice
  only: no body probability scores it);
- binary or probability prediction (no level names): every voxel is given to the *level
  region* of the reference level nearest to it (Euclidean distance in mm); level L compares
  reference ``== L`` with the binary prediction inside L's region. The regions tile the
  volume, so per-level FP/TN add up to the overall ones. ROC per level uses the same regions.
  The sacrum is no level here (a body mask has none).

``slices`` restricts every statistic to some slices
(:func:`vertebrafat.stats.overlap.select_slices`)
along ``slice_axis``; surface distances are then computed in 3D on the masks with the other
slices cleared. Pooling over subjects (:func:`summarise`): confusion counts and ROC histograms
are summed (so pooled Dice etc. are voxel-weighted); per-slice statistics pool all slices of
all subjects (mean, SD ddof=1); ``hd95_mm``/``assd_mm`` are the mean over subjects of the
per-subject values (SD in ``*_sd``), NaN values (one mask empty) skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.core.errors import InputError
from vertebrafat.core.labels import CRANIOCAUDAL_ORDER, LEVEL_OF_LABEL, SACRUM_LABEL, body_mask
from vertebrafat.core.types import FloatArray
from vertebrafat.stats.overlap import (
    SCORE_NAMES,
    Confusion,
    confusion,
    per_slice_scores,
    scores,
    select_slices,
)
from vertebrafat.stats.roc import Counts, RocResult, roc_from_counts, score_counts
from vertebrafat.stats.surface import surface_distance

ROC_BINS = 65536


@dataclass(frozen=True)
class RegionEvaluation:
    """Raw results for one region (whole volume or one level) of one subject."""

    confusion: Confusion
    per_slice: dict[str, FloatArray]
    hd95_mm: float
    assd_mm: float
    pos: Counts | None = None
    neg: Counts | None = None


@dataclass(frozen=True)
class SubjectEvaluation:
    """Overall and per-level results of one subject; ``level_rule`` is ``labels`` or
    ``nearest-level`` (see module notes)."""

    overall: RegionEvaluation
    per_level: dict[str, RegionEvaluation]
    level_rule: str


def prediction_kind(pred: npt.NDArray[np.generic]) -> str:
    """``probability`` (float with non-integer values), ``binary`` (only 0/1) or ``labels``.

    Raises
    ------
    InputError
        If a probability map has values outside [0, 1] or non-finite values.
    """
    a = np.asarray(pred)
    if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise InputError(f"probability map values must lie in [0, 1], got "
                             f"{np.nanmin(a):g}..{np.nanmax(a):g}")
        return "probability"
    return "binary" if a.size == 0 or float(a.max()) <= 1 else "labels"


def evaluate_pair(
    ref: npt.NDArray[np.generic],
    pred: npt.NDArray[np.generic],
    *,
    spacing_mm: Sequence[float],
    slice_axis: int = 0,
    probability: npt.NDArray[np.floating] | None = None,
    slices: str = "all",
    annotated: Sequence[int] | None = None,
    threshold: float = 0.5,
    roc_bins: int | None = ROC_BINS,
) -> SubjectEvaluation:
    """Metrics of one subject's prediction against its reference.

    Parameters
    ----------
    ref : int array (slices, rows, cols)
        Reference label map (0 background) or binary mask.
    pred : array, same shape
        Label map, binary mask or probability map (0-1).
    spacing_mm : voxel size per axis (mm), for the surface distances and level regions
    slice_axis : the axis of the slices for per-slice statistics and ``slices``
    probability : optional probability map beside a label-map ``pred`` (ROC/PR only)
    slices : ``all``, ``annotated`` or ``midN`` (see :func:`~.overlap.select_slices`)
    annotated : slice indices annotated in the reference (for ``slices="annotated"``)
    threshold : probability threshold for the binary metrics (``>=``)
    roc_bins : ROC score quantisation (None = exact; see :mod:`vertebrafat.stats.roc`)

    Raises
    ------
    InputError
        On a shape mismatch or a probability map outside [0, 1].

    Examples
    --------
    The prediction misses the top row of L1 (16 of 480 voxels per level in each of 5 slices):

    >>> import numpy as np
    >>> from vertebrafat.stats.overlap import scores
    >>> ref = np.zeros((5, 20, 20), np.uint8)
    >>> ref[:, 2:8, 2:18], ref[:, 10:16, 2:18] = 20, 21
    >>> pred = ref.copy()
    >>> pred[:, 2, :] = 0
    >>> result = evaluate_pair(ref, pred, spacing_mm=(4.0, 1.0, 1.0))
    >>> round(scores(result.overall.confusion).dice, 4)  # 2 * 880 / (960 + 880)
    0.9565
    >>> list(result.per_level)
    ['L1', 'L2']
    """
    r, p = np.asarray(ref), np.asarray(pred)
    if r.shape != p.shape or (probability is not None and probability.shape != r.shape):
        raise InputError(f"reference shape {r.shape} differs from prediction shape {p.shape}")
    kind = prediction_kind(p)
    prob = p.astype(np.float64) if kind == "probability" else probability
    pred_fg = p >= threshold if kind == "probability" else body_mask(p)
    ref_fg = body_mask(r)
    shape = [1] * r.ndim
    shape[slice_axis] = r.shape[slice_axis]
    keep_1d = select_slices(ref_fg, slices=slices, slice_axis=slice_axis, annotated=annotated)
    keep = np.broadcast_to(keep_1d.reshape(shape), r.shape)

    def region(ref_m: npt.NDArray[np.bool_], pred_m: npt.NDArray[np.bool_],
               inside: npt.NDArray[np.bool_], *, roc: bool = True) -> RegionEvaluation:
        ref_m, pred_m = ref_m & inside, pred_m & inside
        dist = surface_distance(ref_m, pred_m, spacing_mm=spacing_mm)
        pos = neg = None
        if prob is not None and roc:
            pos, neg = score_counts(prob[inside], ref_m[inside], bins=roc_bins)
        return RegionEvaluation(confusion(ref_m[inside], pred_m[inside]),
                                per_slice_scores(ref_m, pred_m, slice_axis=slice_axis,
                                                 keep=keep_1d), dist.hd95_mm, dist.assd_mm,
                                pos, neg)

    overall = region(ref_fg, pred_fg, keep)
    present = set(np.unique(r).tolist())
    if kind == "labels":
        present |= set(np.unique(p).tolist())
    else:
        present.discard(SACRUM_LABEL)
    labels = [lab for lab in CRANIOCAUDAL_ORDER if lab in present]
    per_level: dict[str, RegionEvaluation] = {}
    nearest = _nearest_level(r, labels, spacing_mm) if kind != "labels" or prob is not None \
        else None
    for lab in labels:
        if nearest is None or (kind == "labels" and lab == SACRUM_LABEL):
            ev = region(r == lab, p == lab, keep, roc=lab != SACRUM_LABEL)
        elif kind == "labels" and prob is not None:
            ev = _with_roc(region(r == lab, p == lab, keep), prob, r == lab,
                           keep & (nearest == lab), roc_bins)
        else:
            ev = region(r == lab, pred_fg, keep & (nearest == lab))
        per_level[LEVEL_OF_LABEL[lab]] = ev
    return SubjectEvaluation(overall, per_level, "labels" if kind == "labels" else
                             "nearest-level")


def _nearest_level(
    ref: npt.NDArray[np.generic], labels: Sequence[int], spacing_mm: Sequence[float]
) -> npt.NDArray[np.int64]:
    """The reference level label nearest (mm) to every voxel; 0 everywhere if none."""
    levels = np.isin(ref, labels)
    if not levels.any():
        return np.zeros(ref.shape, dtype=np.int64)
    idx = ndi.distance_transform_edt(~levels, sampling=spacing_mm, return_distances=False,
                                     return_indices=True)
    return np.asarray(ref[tuple(idx)], dtype=np.int64)


def _with_roc(ev: RegionEvaluation, prob: npt.NDArray[np.floating],
              truth: npt.NDArray[np.bool_], inside: npt.NDArray[np.bool_],
              bins: int | None) -> RegionEvaluation:
    pos, neg = score_counts(prob[inside], truth[inside], bins=bins)
    return RegionEvaluation(ev.confusion, ev.per_slice, ev.hd95_mm, ev.assd_mm, pos, neg)


def pooled_roc(regions: Sequence[RegionEvaluation], *, bins: int | None = ROC_BINS) -> (
    RocResult | None
):
    """ROC of several regions' summed histograms (same ``bins``); None without scores."""
    pos_list = [ev.pos for ev in regions if ev.pos is not None]
    neg_list = [ev.neg for ev in regions if ev.neg is not None]
    if not pos_list or len(pos_list) != len(regions):
        return None
    if bins is None and len(pos_list) > 1:
        raise InputError("exact ROC histograms of several subjects cannot be pooled; use bins")
    pos = np.sum(pos_list, axis=0)
    neg = np.sum(neg_list, axis=0)
    return roc_from_counts(pos, neg, bins=bins)


def summarise_regions(regions: Sequence[RegionEvaluation], *, bins: int | None = ROC_BINS) -> (
    dict[str, object]
):
    """The JSON block of pooled regions (module notes): metrics, counts, per-slice, ROC."""
    total = sum((ev.confusion for ev in regions), Confusion(0, 0, 0, 0))
    out: dict[str, object] = {k: _num(v) for k, v in asdict(scores(total)).items()}
    hd = np.array([ev.hd95_mm for ev in regions], dtype=np.float64)
    asd = np.array([ev.assd_mm for ev in regions], dtype=np.float64)
    out.update(hd95_mm=_mean(hd), assd_mm=_mean(asd), hd95_mm_sd=_sd(hd), assd_mm_sd=_sd(asd))
    roc = pooled_roc(regions, bins=bins)
    out.update(roc_auc=_num(roc.auc) if roc else None,
               roc_auc_ci=[_num(v) for v in roc.auc_ci] if roc else None,
               pr_auc=_num(roc.pr_auc) if roc else None, **asdict(total))
    per_slice: dict[str, dict[str, object]] = {}
    for name in SCORE_NAMES:
        values = np.concatenate([ev.per_slice[name] for ev in regions])
        per_slice[name] = {"mean": _mean(values), "sd": _sd(values),
                           "n_slices": int(np.isfinite(values).sum())}
    out["per_slice"] = per_slice
    return out


def summarise(
    subjects: Mapping[str, SubjectEvaluation], *, bins: int | None = ROC_BINS
) -> dict[str, object]:
    """JSON-ready report: the pooled block at top level, ``per_level``, ``per_subject``."""
    evs = list(subjects.values())
    out = summarise_regions([ev.overall for ev in evs], bins=bins)
    levels = [lv for lab in CRANIOCAUDAL_ORDER if (lv := LEVEL_OF_LABEL[lab])
              and any(lv in ev.per_level for ev in evs)]
    out["per_level"] = {lv: summarise_regions([ev.per_level[lv] for ev in evs
                                               if lv in ev.per_level], bins=bins)
                        for lv in levels}
    out["per_subject"] = {
        name: {**summarise_regions([ev.overall], bins=bins), "level_rule": ev.level_rule,
               "per_level": {lv: summarise_regions([r], bins=bins)
                             for lv, r in ev.per_level.items()}}
        for name, ev in subjects.items()
    }
    return out


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _mean(values: FloatArray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _sd(values: FloatArray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.std(ddof=1)) if finite.size > 1 else None
