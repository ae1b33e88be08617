"""Validation figures: Dice per vertebra (level) and per subject, on the native voxel grid.

Per vertebra, two figures:

- ``per_vertebra`` (segmentation only): every voxel of the loss region is given to the nearest
  truth-labelled voxel's level (a 3D Voronoi split, robust to lordosis); the predicted binary
  mask inside a level's share is compared with that level's truth. A body the truth leaves
  unlabelled (T12, S1 on MyoSegmenTUM) counts against its neighbour where it enters the loss
  region.
- ``per_vertebra_named`` (what the tool delivers): the prediction is named by
  :func:`vertebrafat.levels.labeller.label_vertebrae` and each truth level is compared with the
  predicted body of the same name inside the loss region; a body named wrongly scores 0.

Per subject: the binary mask inside the loss region.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from vertebrafat.core.image import WaterFatImage
from vertebrafat.core.labels import LEVEL_OF_LABEL, SACRUM_LABEL, body_mask
from vertebrafat.core.types import Labels, Mask
from vertebrafat.levels.labeller import label_segmentation
from vertebrafat.segmentation.inference import Segmentation
from vertebrafat.stats.overlap import dice
from vertebrafat.train.dataset import Subject, known_mask


@dataclass(frozen=True)
class SubjectScores:
    """Dice of one subject: binary (all bodies), per level (``{"L1": 0.95, ...}``) and per
    level after naming (empty when not computed)."""

    subject: str
    dice_binary: float
    dice_per_level: dict[str, float]
    dice_named: dict[str, float] = field(default_factory=dict)




def score_subject(
    labels: Labels, pred: Mask, known: Mask, *, subject: str, named: Labels | None = None
) -> SubjectScores:
    """Dice of ``pred`` against the vertebral bodies of ``labels`` inside ``known``; with
    ``named`` (the prediction named by ``label_vertebrae``) also per level by name."""
    body = body_mask(labels)
    _, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    owner = labels[tuple(nearest)]
    per_level, per_name = {}, {}
    for label in sorted(set(np.unique(labels).tolist()) - {0, SACRUM_LABEL}):
        share = (owner == label) & known
        name = LEVEL_OF_LABEL.get(label, str(label))
        per_level[name] = dice((labels == label) & share, pred & share, both_empty=math.nan)
        if named is not None:
            per_name[name] = dice((labels == label) & known, (named == label) & known,
                                  both_empty=math.nan)
    whole = dice(body & known, pred & known, both_empty=math.nan)
    return SubjectScores(subject, whole, per_level, per_name)


def evaluate(
    subjects: Sequence[Subject],
    segmenter: Callable[[WaterFatImage], Segmentation],
    *,
    channel_sets: Sequence[tuple[str, ...]] = (("water", "fat", "ff", "r2star"),),
) -> dict[str, object]:
    """Score ``segmenter`` on ``subjects`` for every channel set the subjects have.

    Returns a JSON-ready dict per channel set: per-subject Dice, per-level and per-vertebra
    ``mean``/``sd``/``n``, without and with naming (module docstring).
    """
    results: dict[str, object] = {}
    for channels in channel_sets:
        scores = score_subjects(subjects, segmenter, channels)
        if scores:
            results["+".join(channels)] = summarise(scores)
    return results


def score_subjects(
    subjects: Sequence[Subject],
    segmenter: Callable[[WaterFatImage], Segmentation],
    channels: tuple[str, ...],
) -> list[SubjectScores]:
    """:func:`score_subject` of each subject that has ``channels``, segmented from those
    channels only (the others are left out of the image) and named by the labeller."""
    scores = []
    for s in subjects:
        if not set(channels) <= set(s.image.channels):
            continue
        kept = {c: getattr(s.image, c) for c in ("fat", "ff", "r2star") if c in channels}
        image = WaterFatImage(water=s.image.water, affine=s.image.affine, meta=s.image.meta, **kept)
        seg = segmenter(image)
        named = label_segmentation(seg, image.affine).labels
        scores.append(score_subject(s.labels, seg.mask, known_mask(s), subject=s.name, named=named))
    return scores


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "n": 0}
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {
        "mean": round(float(v.mean()), 4),
        "sd": round(sd, 4),
        "min": round(float(v.min()), 4),
        "n": int(v.size),
    }


def summarise(scores: Sequence[SubjectScores]) -> dict[str, object]:
    """Mean ± SD of per-subject and per-vertebra Dice, and each level separately."""
    levels = sorted({k for s in scores for k in s.dice_per_level})
    return {
        "per_subject": _stats([s.dice_binary for s in scores]),
        "per_vertebra": _stats([d for s in scores for d in s.dice_per_level.values()]),
        "per_level": {
            lv: _stats([s.dice_per_level.get(lv, float("nan")) for s in scores]) for lv in levels
        },
        "per_vertebra_named": _stats([d for s in scores for d in s.dice_named.values()]),
        "per_level_named": {
            lv: _stats([s.dice_named.get(lv, float("nan")) for s in scores]) for lv in levels
        },
        "subjects": {s.subject: round(s.dice_binary, 4) for s in scores},
    }
