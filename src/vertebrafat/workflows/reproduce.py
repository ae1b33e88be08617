"""The reference study's validation (Zhou et al. 2020) on any rated cohort (pure computation).

Given studies with two raters' masks on a few mid-sagittal slices and rescans, this computes the
study's Table 2 (segmentation metrics per slice vs each rater), Figure 3 (Bland-Altman of
per-vertebra BMF, automatic vs each rater), Supplementary Figure 1 (pixel ROC and PR),
Supplementary Figure 2 (rater B vs rater A) and Supplementary Table 2 (test-retest). Files are
written by :mod:`vertebrafat.workflows.report`; the phantom cohort shaped like the study comes from
:func:`study_shaped_cohort`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import WaterFatImage, spacing_from_affine
from vertebrafat.core.schema import DEFAULT_EROSION_MM, LevelMeasurement
from vertebrafat.core.types import Labels
from vertebrafat.workflows.study import Segmenter, analyse_study

# Published figures of Zhou et al. 2020 (Front. Endocrinol. 11:612) as quoted by the project.
PUBLISHED: Final[dict[str, Any]] = {
    "dice": "0.849 ± 0.091",
    "roc_auc": "0.92",
    "sensitivity": "0.99",
    "specificity": "0.80",
    "bias_vs_rater": "−0.605 pp (LoA −3.28 to +2.07 pp)",
    "rater_b_minus_a": "+1.35 pp",
    "precision_error": "1.6 %",
    "icc": "1.00",
    "seconds_per_series": "16 ± 1 s (20 slices, 4-core CPU)",
}

# The study's cohort: 31 training subjects, 11 + 26 test subjects, 8 rescanned subjects.
STUDY_SHAPE: Final[dict[str, int]] = {"train": 31, "test1": 11, "test2": 26, "rescan": 8}


@dataclass(frozen=True)
class RatedStudy:
    """One study with manual masks drawn on ``annotated_slices`` (indices along axis 0)."""

    image: WaterFatImage
    rater_a: Labels | None
    rater_b: Labels | None
    annotated_slices: tuple[int, ...]
    group: str = "test1"


@dataclass
class Reproduction:
    """Everything the report shows (JSON-ready dicts plus the paired values for figures)."""

    table2: dict[str, dict[str, Any]] = field(default_factory=dict)
    figure3: dict[str, dict[str, Any]] = field(default_factory=dict)
    supp_figure2: dict[str, Any] = field(default_factory=dict)
    supp_table2: dict[str, Any] = field(default_factory=dict)
    roc: Any = None
    pairs: dict[str, tuple[list[float], list[float], list[str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def restrict_to_slices(labels: Labels, slices: Sequence[int]) -> Labels:
    """``labels`` with every slice (axis 0) outside ``slices`` set to 0."""
    keep = np.zeros(labels.shape[0], dtype=bool)
    keep[list(slices)] = True
    return np.where(keep[:, None, None], labels, 0).astype(np.uint8)


def reproduce(
    studies: Iterable[RatedStudy],
    segmenter: Segmenter,
    *,
    erosion_mm: float = DEFAULT_EROSION_MM,
    progress: Callable[[int], None] | None = None,
) -> Reproduction:
    """Run the automatic pipeline on every study and compute the study's tables and figures.

    Automatic BMF is measured on the automatic labels restricted to the raters' slices (with
    ``erosion_mm``, the tool's default), manual BMF on each rater's mask as drawn (no
    erosion), so both describe the same slices. Rescans (``group == "rescan"``) enter only the
    test-retest analysis, measured on all slices as the pipeline does by default.
    """
    from vertebrafat.stats.agreement import agreement
    from vertebrafat.stats.evaluation import evaluate_pair, pooled_roc, summarise
    from vertebrafat.stats.repeatability import repeatability

    evals: dict[str, dict[str, Any]] = {"test1": {}, "test2": {}}
    rows: dict[str, list[LevelMeasurement]] = {k: [] for k in ("auto1", "a1", "auto2", "b2",
                                                               "a2", "rescan")}
    for n, study in enumerate(studies, start=1):
        result = analyse_study(study.image, segmenter, erosion_mm=erosion_mm)
        if study.group == "rescan":
            rows["rescan"].extend(result.table)
        else:
            _rated(study, result, evals, rows, evaluate_pair, erosion_mm)
        if progress is not None:
            progress(n)
    out = Reproduction()
    for group, rater in (("test1", "rater A"), ("test2", "rater B")):
        if evals[group]:
            out.table2[f"{group} vs {rater}"] = summarise(evals[group])
    for key, auto, manual in (("test1 auto vs rater A", "auto1", "a1"),
                              ("test2 auto vs rater B", "auto2", "b2")):
        if len(rows[auto]) >= 2:
            out.figure3[key] = agreement(rows[auto], rows[manual])
            out.pairs[key] = _paired(rows[auto], rows[manual])
    if len(rows["b2"]) >= 2 and len(rows["a2"]) >= 2:
        out.supp_figure2 = agreement(rows["b2"], rows["a2"])
        out.pairs["rater B vs rater A"] = _paired(rows["b2"], rows["a2"])
    paired, dropped = complete_rescans(rows["rescan"])
    if paired:
        out.supp_table2 = repeatability(paired)
        out.supp_table2["dropped_levels"] = dropped
    regions = [ev.overall for g in evals.values() for ev in g.values()]
    out.roc = pooled_roc(regions) if regions else None
    out.counts = {g: len(v) for g, v in evals.items()}
    out.counts["rescan_studies"] = len({(r.subject, r.scan) for r in rows["rescan"]})
    return out


def _rated(
    study: RatedStudy,
    result: Any,
    evals: dict[str, dict[str, Any]],
    rows: dict[str, list[LevelMeasurement]],
    evaluate_pair: Callable[..., Any],
    erosion_mm: float,
) -> None:
    from vertebrafat.measure import bmf_table, sagittal_axis

    image = study.image
    assert image.ff is not None, "rated studies need an FF map"
    auto = restrict_to_slices(result.labelling.labels, study.annotated_slices)
    manual = study.rater_a if study.group == "test1" else study.rater_b
    assert manual is not None
    name = f"{image.meta.subject}_{image.meta.scan}"
    evals[study.group][name] = evaluate_pair(
        manual, result.labelling.labels, spacing_mm=spacing_from_affine(image.affine),
        slice_axis=sagittal_axis(image.affine), probability=result.probability,
        slices="annotated", annotated=study.annotated_slices,
    )

    def table(labels: Labels, erosion: float) -> list[LevelMeasurement]:
        return bmf_table(image.ff, labels, affine=image.affine,  # type: ignore[arg-type]
                         erosion_mm=erosion, subject=image.meta.subject, scan=image.meta.scan)

    key = "1" if study.group == "test1" else "2"
    rows[f"auto{key}"].extend(table(auto, erosion_mm))
    rows["a1" if key == "1" else "b2"].extend(table(manual, 0.0))
    if key == "2" and study.rater_a is not None:
        rows["a2"].extend(table(study.rater_a, 0.0))


def complete_rescans(
    rows: Sequence[LevelMeasurement],
) -> tuple[list[LevelMeasurement], list[list[str]]]:
    """Rows of the (subject, level) pairs measured in at least two scans, and the others.

    A level found in one scan only (e.g. a body at the edge of the field of view) cannot enter
    a test-retest analysis; it is listed, never silently dropped.
    """
    scans: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        scans.setdefault((r.subject, r.level), set()).add(r.scan)
    keep = [r for r in rows if len(scans[(r.subject, r.level)]) >= 2]
    dropped = sorted([s, lv] for (s, lv), sc in scans.items() if len(sc) < 2)
    return keep, dropped


def _paired(
    a: Sequence[LevelMeasurement], b: Sequence[LevelMeasurement]
) -> tuple[list[float], list[float], list[str]]:
    from vertebrafat.stats.agreement import pair_rows

    p = pair_rows(a, b, column="ff_mean")
    return [float(v) for v in p.a], [float(v) for v in p.b], [k[2] for k in p.keys]


def study_shaped_cohort(
    *, seed: int, scale: float = 1.0
) -> ShapedCohort:
    """The phantom cohort shaped like the study: 11 + 26 rated test subjects, 8 rescanned.

    ``scale`` (0 < scale <= 1) shrinks every group (at least 2 subjects each) for quick runs.
    The 31 training subjects are not generated: the shipped model was trained beforehand (its
    card says on what). Subjects are indexed 31.. so they never coincide with training
    indices. The studies are generated lazily, one at a time; ``len()`` counts them.

    Raises
    ------
    InputError
        If ``scale`` is not in (0, 1] (checked at the call, before any study is generated).
    """
    if not 0 < scale <= 1:
        raise InputError(f"reproduce: --scale must be in (0, 1] (a share of the study's "
                         f"cohort), got {scale:g}")
    sizes = {g: max(2, round(n * scale)) for g, n in STUDY_SHAPE.items() if g != "train"}
    return ShapedCohort(seed, sizes)


@dataclass(frozen=True)
class ShapedCohort:
    """The studies of :func:`study_shaped_cohort`, generated as they are iterated."""

    seed: int
    sizes: dict[str, int]

    def __len__(self) -> int:
        return self.sizes["test1"] + self.sizes["test2"] + 2 * self.sizes["rescan"]

    def __iter__(self) -> Iterator[RatedStudy]:
        return _shaped_cohort(self.seed, self.sizes)


def _shaped_cohort(seed: int, sizes: dict[str, int]) -> Iterator[RatedStudy]:
    from vertebrafat.phantom import generate_subject

    index = STUDY_SHAPE["train"]
    for group in ("test1", "test2"):
        for _ in range(sizes[group]):
            s = generate_subject(seed=seed, index=index)
            index += 1
            yield RatedStudy(s.image, s.rater_a, s.rater_b, tuple(s.annotated_slices), group)
    for _ in range(sizes["rescan"]):
        for scan in (1, 2):
            s = generate_subject(seed=seed, index=index, scan=scan)
            yield RatedStudy(s.image, None, None, (), "rescan")
        index += 1
