"""Training subjects: NIfTI folders -> cached canonical slices at the model pixel spacing.

A DATASET argument is a subject folder (role NIfTIs ``water/fat/ff/r2star.nii.gz`` +
``labels.nii.gz`` [+ ``annotated_slices.json``]), a folder of such folders, or a ``.txt`` file
listing either, one per line. Every slice goes through the same preprocessing as
:func:`vertebrafat.segmentation.inference.predict`
(:func:`vertebrafat.segmentation.inference.canonical_input`).

Targets: 0 background, 1 vertebral body (any label but the sacrum), 2 sacrum (label 26), and
for a model with a rib class 3 rib (``ribs.nii.gz``, phantom truth) or, in a subject without
rib truth (manual masks), ``BACKGROUND_OR_RIB`` for every background pixel: the loss then takes
the two classes together (a marginal loss), so unlabelled ribs are not taught as background. The
``known`` mask says which pixels the loss may use: with ``annotated_slices.json`` only those
slices; a subject whose labels stop at L1 (no T11/T12/T13) is unknown cranial to L1's top minus
``margin_mm``, one without a sacrum label unknown caudal to L5's bottom plus ``margin_mm``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import StudyMeta, WaterFatImage
from vertebrafat.core.labels import SACRUM_LABEL, THORACIC_LABELS, body_mask
from vertebrafat.core.model_card import CHANNELS, ModelCard
from vertebrafat.core.types import Labels, Volume
from vertebrafat.io.nifti import read_nifti
from vertebrafat.segmentation.inference import (
    canonical_axes,
    canonical_input,
    canonical_spacing_mm,
    resample_linear,
    to_canonical,
)

RIB_CLASS = 3
BACKGROUND_OR_RIB = 4


@dataclass(frozen=True)
class Subject:
    """One loaded training subject on its native grid."""

    name: str
    dataset: str
    image: WaterFatImage
    labels: Labels
    annotated_slices: tuple[int, ...] | None
    ribs: npt.NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class CachedSlices:
    """Slices of one subject at model spacing, canonical orientation.

    ``x`` ``(n, planes, rows, cols)`` float32, ``target`` ``(n, rows, cols)`` uint8 classes,
    ``known`` ``(n, rows, cols)`` bool loss mask.
    """

    name: str
    dataset: str
    x: npt.NDArray[np.float32]
    target: npt.NDArray[np.uint8]
    known: npt.NDArray[np.bool_]


def subject_folders(paths: Iterable[str | Path]) -> list[Path]:
    """Expand DATASET arguments into sorted subject folders (each has ``labels.nii.gz``)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix == ".txt":
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
            found += subject_folders(lines)
        elif (path / "labels.nii.gz").is_file():
            found.append(path)
        elif path.is_dir():
            subs = sorted(p for p in path.iterdir() if (p / "labels.nii.gz").is_file())
            if not subs:
                raise InputError(f"{path}: no subject folders with labels.nii.gz")
            found += subs
        else:
            raise InputError(f"{path}: not a subject folder, dataset folder or .txt list")
    return found


def load_subject(folder: Path, *, annotated: bool = True) -> Subject:
    """Read a subject folder (FF assumed in percent); ``annotated=False`` ignores
    ``annotated_slices.json`` (labels drawn on every slice, e.g. phantom truth). An optional
    ``ribs.nii.gz`` (non-zero = rib) is the rib truth."""
    arrays: dict[str, Volume] = {}
    affine = None
    for role in CHANNELS:
        f = folder / f"{role}.nii.gz"
        if f.is_file():
            data, aff = read_nifti(f)
            arrays[role] = cast(Volume, data)
            affine = aff if affine is None else affine
    if "water" not in arrays or affine is None:
        raise InputError(f"{folder}: no water.nii.gz")
    labels = read_nifti(folder / "labels.nii.gz", as_float32=False)[0].astype(np.uint8)
    ribs = None
    if (folder / "ribs.nii.gz").is_file():
        ribs = np.asarray(read_nifti(folder / "ribs.nii.gz", as_float32=False)[0], float) > 0
        if ribs.shape != labels.shape:
            raise InputError(f"{folder / 'ribs.nii.gz'}: shape {ribs.shape} differs from labels")
    slices = None
    ann_file = folder / "annotated_slices.json"
    if annotated and ann_file.is_file():
        slices = tuple(int(i) for i in json.loads(ann_file.read_text()))
    meta = StudyMeta(source=str(folder), format="nifti", subject=folder.name)
    image = WaterFatImage(affine=np.asarray(affine, dtype=np.float64), meta=meta, **arrays)
    return Subject(folder.name, folder.parent.name, image, labels, slices, ribs)


def known_mask(subject: Subject, *, margin_mm: float = 5.0) -> npt.NDArray[np.bool_]:
    """Native-grid loss mask ``(slices, rows, cols)`` (see the module docstring)."""
    labels = subject.labels
    axes = canonical_axes(subject.image.affine)
    canon = to_canonical(labels, axes)
    known = np.ones(canon.shape, dtype=bool)
    rows = np.nonzero((canon > 0).any(axis=(0, 2)))[0]
    if rows.size:
        margin = round(margin_mm / canonical_spacing_mm(subject.image.affine, axes)[0])
        if not np.isin(canon, THORACIC_LABELS).any():
            known[:, : max(0, rows[0] - margin), :] = False
        if not (canon == SACRUM_LABEL).any():
            known[:, rows[-1] + margin + 1 :, :] = False
    if subject.annotated_slices is not None:
        keep = np.zeros(labels.shape[0], dtype=bool)
        keep[list(subject.annotated_slices)] = True
        known &= keep[:, None, None]
    return np.ascontiguousarray(known)


def cache_subject(
    subject: Subject, card: ModelCard, *, lateral: int = 4, margin_mm: float = 5.0
) -> CachedSlices:
    """Preprocess ``subject`` like :func:`~vertebrafat.segmentation.inference.predict` and keep
    the slices that carry labels (+ ``lateral`` background slices each side; only annotated
    slices if listed)."""
    x, axes = canonical_input(subject.image, card)
    shape = (x.shape[2], x.shape[3])
    canon_labels = to_canonical(subject.labels, axes)
    body = resample_linear(
        body_mask(canon_labels).astype(np.float32), shape
    )
    sacrum = resample_linear((canon_labels == SACRUM_LABEL).astype(np.float32), shape)
    known = resample_linear(known_mask(subject, margin_mm=margin_mm).astype(np.float32), shape)
    target = np.where(body >= 0.5, 1, np.where(sacrum >= 0.5, 2, 0)).astype(np.uint8)
    if "rib" in card.classes:
        if subject.ribs is None:
            target[target == 0] = BACKGROUND_OR_RIB
        else:
            rib = resample_linear(to_canonical(subject.ribs, axes).astype(np.float32), shape)
            target[(target == 0) & (rib >= 0.5)] = RIB_CLASS
    has = (subject.labels > 0).any(axis=(1, 2))
    idx = np.nonzero(has)[0]
    lo, hi = (idx[0] - lateral, idx[-1] + lateral) if idx.size else (0, -1)
    keep = np.zeros(has.shape, dtype=bool)
    keep[max(0, lo) : hi + 1] = True
    if subject.annotated_slices is not None:
        keep[:] = False
        keep[list(subject.annotated_slices)] = True
    return CachedSlices(subject.name, subject.dataset, x[keep], target[keep], known[keep] >= 0.5)


def subject_of(folder: Path) -> str:
    """The subject a study folder belongs to: ``subject`` of its ``study.json`` (rescans of one
    subject share it: ``P002`` and ``P002-scan2``), else the folder name."""
    card = folder / "study.json"
    if card.is_file():
        try:
            data = json.loads(card.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{card}: not a valid study.json") from None
        if isinstance(data, dict) and data.get("subject"):
            return str(data["subject"])
    return folder.name


def split_subjects(
    folders: Sequence[Path], *, every: int = 5, offset: int = 2
) -> tuple[list[Path], list[Path]]:
    """Fixed patient-level split: within each dataset folder, the subjects (:func:`subject_of`,
    sorted) are taken in turn and every ``every``-th starting at ``offset`` is validation, with
    all its scans, so no rescan of a validation subject is trained on. Returns ``(train,
    val)``, each sorted."""
    train: list[Path] = []
    val: list[Path] = []
    by_parent: dict[Path, dict[str, list[Path]]] = {}
    for f in folders:
        by_parent.setdefault(f.parent, {}).setdefault(subject_of(f), []).append(f)
    for group in by_parent.values():
        for i, subject in enumerate(sorted(group)):
            (val if i % every == offset % every else train).extend(sorted(group[subject]))
    return train, val
