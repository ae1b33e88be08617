"""Reading reference / predicted label and probability maps for ``evaluate``; saving figures.

A reference or prediction argument is either one NIfTI file, or a folder of subjects paired by
name with the other folder:

- a folder of study folders: ``NAME/labels.nii.gz`` (reference; prediction label map) and/or
  ``NAME/probability.nii.gz`` (prediction probability map, float 0-1). When a prediction
  folder holds both, the label map gives the binary and per-level metrics and the probability
  map the ROC / PR; with only ``probability.nii.gz`` it gives all (binarised at 0.5). Other
  file names inside the study folders are chosen with ``reference_name`` /
  ``prediction_name`` (e.g. ``rater_a.nii.gz`` against ``rater_b.nii.gz`` of the same
  folders, for agreement between raters); a ``probability.nii.gz`` is attached only to the
  default prediction name;
- a folder of NIfTI files: ``NAME.nii.gz`` (or ``.nii``) on both sides.

Names in one folder only are returned as unpaired, never dropped silently. Annotated slices
(for ``--slices annotated``) come from ``annotated_slices.json`` in the reference study folder
(or beside a single reference file), or ``NAME.annotated_slices.json`` beside a reference
file: a JSON list of 0-based slice indices (or ``{"slices": [...]}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import Affine
from vertebrafat.io.atomic import atomic_path
from vertebrafat.io.orientation import read_on_grid, read_slices_first

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_LABELS, _PROB, _ANN = "labels.nii.gz", "probability.nii.gz", "annotated_slices.json"


@dataclass(frozen=True)
class MapPair:
    """The files of one subject: reference, prediction, optional probability, annotations."""

    name: str
    reference: Path
    prediction: Path
    probability: Path | None = None
    annotated: Path | None = None


@dataclass(frozen=True)
class Pairing:
    """Subjects found on both sides, and names found on one side only."""

    pairs: tuple[MapPair, ...]
    unpaired_reference: tuple[str, ...]
    unpaired_prediction: tuple[str, ...]


@dataclass(frozen=True)
class LoadedPair:
    """Arrays of one subject on one voxel grid (``affine``)."""

    reference: np.ndarray
    prediction: np.ndarray
    probability: np.ndarray | None
    affine: Affine
    annotated: tuple[int, ...] | None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _entries(folder: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """Subject name -> study folder (holding one of ``names``) or NIfTI file in ``folder``."""
    studies = {p.name: p for p in sorted(folder.iterdir())
               if p.is_dir() and any((p / n).is_file() for n in names)}
    if studies:
        return studies
    files = {_stem(p): p for p in sorted(folder.iterdir())
             if p.is_file() and p.name.endswith((".nii", ".nii.gz"))}
    if not files:
        raise InputError(f"{folder}: no study folders (with {names[0]}) and no NIfTI files")
    return files


def _annotation(ref_file: Path, name: str, *, shared: bool) -> Path | None:
    """``NAME.annotated_slices.json`` beside the reference, else (study folder or a single
    reference) ``annotated_slices.json`` beside it."""
    candidates = [ref_file.parent / f"{name}.annotated_slices.json"]
    if shared:
        candidates.append(ref_file.parent / _ANN)
    return next((c for c in candidates if c.is_file()), None)


def _pair(name: str, ref: Path, pred: Path, *, ref_name: str, pred_name: str,
          single: bool = False) -> MapPair:
    ref_file = ref / ref_name if ref.is_dir() else ref
    if not ref_file.is_file():
        raise InputError(f"{ref}: no {ref_name}")
    annotated = _annotation(ref_file, name, shared=single or ref.is_dir())
    if not pred.is_dir():
        return MapPair(name, ref_file, pred, None, annotated)
    labels, prob = pred / pred_name, pred / _PROB
    if pred_name != _LABELS:
        if not labels.is_file():
            raise InputError(f"{pred}: no {pred_name}")
        return MapPair(name, ref_file, labels, None, annotated)
    if labels.is_file():
        return MapPair(name, ref_file, labels, prob if prob.is_file() else None, annotated)
    return MapPair(name, ref_file, prob, None, annotated)


def pair_maps(
    reference: str | os.PathLike[str],
    prediction: str | os.PathLike[str],
    *,
    reference_name: str = _LABELS,
    prediction_name: str = _LABELS,
) -> Pairing:
    """Pair reference and prediction maps by subject name (see module notes).

    ``reference_name`` / ``prediction_name``: the file read inside a study folder.

    Raises
    ------
    InputError
        If a path is missing, one is a file and the other a folder of several subjects, a
        folder holds no maps, or no name pairs up.
    """
    ref, pred = Path(reference), Path(prediction)
    for p in (ref, pred):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
    pred_names = (prediction_name, _PROB) if prediction_name == _LABELS else (prediction_name,)
    single_ref = ref.is_file() or (ref / reference_name).is_file()
    single_pred = pred.is_file() or any((pred / n).is_file() for n in pred_names)
    if single_ref and single_pred:
        name = _stem(ref) if ref.is_file() else ref.name
        return Pairing((_pair(name, ref, pred, ref_name=reference_name,
                              pred_name=prediction_name, single=True),), (), ())
    if single_ref or single_pred:
        raise InputError(f"{ref if single_ref else pred}: one subject, but "
                         f"{pred if single_ref else ref} is a folder of subjects")
    refs, preds = _entries(ref, (reference_name,)), _entries(pred, pred_names)
    pairs = tuple(_pair(n, refs[n], preds[n], ref_name=reference_name,
                        pred_name=prediction_name) for n in refs if n in preds)
    if not pairs:
        raise InputError(f"{ref} and {pred}: no subject name in common "
                         f"(e.g. {next(iter(refs))!r} vs {next(iter(preds))!r})")
    return Pairing(pairs, tuple(n for n in refs if n not in preds),
                   tuple(n for n in preds if n not in refs))


def load_annotated(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """0-based slice indices from an ``annotated_slices.json`` file.

    Raises
    ------
    InputError
        If the file is not a JSON list of integers (or ``{"slices": [...]}``).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        values = data["slices"] if isinstance(data, dict) else data
        return tuple(int(i) for i in values)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{p}: not a JSON list of slice indices ({exc})") from None


def load_pair(pair: MapPair) -> LoadedPair:
    """Read the maps of one subject and check they share one voxel grid.

    Raises
    ------
    InputError
        If a file is unreadable or not 3D.
    GeometryError
        If the prediction or probability is not on the reference's voxel grid in any axis
        order (both files named).
    """
    ref, affine, _ = read_slices_first(pair.reference, as_float32=False)
    grid_of = f"the reference {pair.reference}"
    pred = read_on_grid(pair.prediction, ref.shape, affine, grid_of=grid_of, as_float32=False)
    prob = None
    if pair.probability is not None:
        prob = read_on_grid(pair.probability, ref.shape, affine, grid_of=grid_of,
                            as_float32=False).astype(np.float64)
    for path, data in ((pair.reference, ref), (pair.prediction, pred),
                       (pair.probability, prob)):
        bad = 0 if data is None else int(np.count_nonzero(~np.isfinite(
            np.asarray(data, dtype=np.float64))))
        if bad:
            raise InputError(f"{path}: {bad} voxels are NaN or infinite")
    if not np.issubdtype(ref.dtype, np.integer):
        if not np.array_equal(ref, np.round(ref)):
            raise InputError(f"{pair.reference}: reference must be a label map (integers)")
        ref = ref.astype(np.int64)
    annotated = None if pair.annotated is None else load_annotated(pair.annotated)
    return LoadedPair(ref, pred, prob, affine, annotated)


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write a matplotlib figure as PNG atomically (fixed metadata: same figure, same bytes)."""
    with atomic_path(path) as tmp:
        fig.savefig(str(tmp), format="png", metadata={"Software": None})


def evaluate_maps(
    reference: str | os.PathLike[str],
    prediction: str | os.PathLike[str],
    *,
    slices: str = "all",
    threshold: float = 0.5,
    roc_bins: int | None = 65536,
    plots: str | os.PathLike[str] | None = None,
    reference_name: str = _LABELS,
    prediction_name: str = _LABELS,
    on_total: Callable[[int], None] | None = None,
    on_subject: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """``vertebrafat evaluate``: pair, load and evaluate every subject; pooled report.

    Per-slice statistics run along the sagittal axis of the reference affine. Returns
    :func:`vertebrafat.stats.evaluation.summarise`'s dict plus ``n_subjects``, ``unpaired``
    {``reference``, ``prediction``}, ``slices``, ``threshold``, ``roc_bins`` and, with
    ``plots``, ``plots`` (the PNG paths ``roc.png`` and ``pr.png``, written when a
    probability map was given). ``on_total`` is called with the number of pairs once they are
    known, ``on_subject`` with each pair's name as it is done (progress).
    """
    from vertebrafat.core.image import spacing_from_affine
    from vertebrafat.measure import sagittal_axis
    from vertebrafat.stats.evaluation import evaluate_pair, pooled_roc, summarise

    pairing = pair_maps(reference, prediction, reference_name=reference_name,
                        prediction_name=prediction_name)
    results = {}
    if on_total is not None:
        on_total(len(pairing.pairs))
    for pair in pairing.pairs:
        d = load_pair(pair)
        results[pair.name] = evaluate_pair(
            d.reference, d.prediction, spacing_mm=spacing_from_affine(d.affine),
            slice_axis=sagittal_axis(d.affine), probability=d.probability, slices=slices,
            annotated=d.annotated, threshold=threshold, roc_bins=roc_bins)
        if on_subject is not None:
            on_subject(pair.name)
    out = summarise(results, bins=roc_bins)
    out.update(n_subjects=len(results), slices=slices, threshold=threshold, roc_bins=roc_bins,
               unpaired={"reference": list(pairing.unpaired_reference),
                         "prediction": list(pairing.unpaired_prediction)})
    roc = pooled_roc([r.overall for r in results.values()], bins=roc_bins)
    if plots is not None and roc is not None:
        from vertebrafat.qc.plots import pr_figure, roc_figure

        folder = Path(plots)
        save_figure(roc_figure(roc), folder / "roc.png")
        save_figure(pr_figure(roc), folder / "pr.png")
        out["plots"] = [str(folder / "roc.png"), str(folder / "pr.png")]
    return out


def save_agreement_plots(
    a: np.ndarray, b: np.ndarray, levels: list[str], path: str | os.PathLike[str],
    *, title: str = "Bland-Altman", names: tuple[str, str] = ("A", "B"), unit: str = "pp",
) -> list[Path]:
    """Bland-Altman PNGs: pooled at ``path``, one per level at ``STEM_LEVEL.png`` beside it.

    ``a``, ``b``: paired values; ``levels``: the level of each pair; ``names``: what ``a``
    and ``b`` are, for the axes (the difference is ``a - b``). Levels with fewer than 2 pairs
    get no figure. Returns the paths written.
    """
    from vertebrafat.qc.plots import bland_altman_figure
    from vertebrafat.stats.agreement import bland_altman

    target = Path(path)
    written = []
    lv = np.asarray(levels)
    groups = [("pooled", np.ones(lv.size, dtype=bool), target)]
    groups += [(name, lv == name, target.with_name(f"{target.stem}_{name}{target.suffix}"))
               for name in dict.fromkeys(levels)]
    for name, sel, out in groups:
        if sel.sum() < 2:
            continue
        fig = bland_altman_figure(a[sel], b[sel], bland_altman(a[sel], b[sel]),
                                  title=f"{title} {name}", names=names, unit=unit)
        save_figure(fig, out)
        written.append(out)
    return written
