"""One study, image to table: segment -> name the levels -> measure -> QC picture (pure).

:func:`segment_study` runs it with the ONNX model; :func:`analyse_study` with any segmenter.

The segmenter is any callable ``WaterFatImage -> Segmentation``: the ONNX model
(:func:`segment_study`), or :func:`mask_segmenter` around a known mask
(a manual or truth mask; this is how the pipeline is tested without a model). Files are written
by :mod:`vertebrafat.workflows.outputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import GeometryError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.core.schema import DEFAULT_EROSION_MM, LevelMeasurement
from vertebrafat.core.types import Mask, Volume
from vertebrafat.levels.labeller import VertebraLabelling, label_segmentation
from vertebrafat.measure import bmf_table
from vertebrafat.qc.picture import render_qc
from vertebrafat.segmentation.model import SegmentationModel


class SegmentationLike(Protocol):
    """What :func:`analyse_study` needs from a segmentation (``segment.Segmentation`` fits).

    Optional ``sacrum`` and ``ribs`` attributes (``Mask | None``) are used when present.
    """

    @property
    def probability(self) -> Volume: ...

    @property
    def mask(self) -> Mask: ...


Segmenter = Callable[[WaterFatImage], SegmentationLike]


@dataclass(frozen=True)
class MaskSegmentation:
    """A segmentation made from a known mask: probability 1 inside, 0 outside."""

    probability: Volume
    mask: Mask
    sacrum: Mask | None = None


def mask_segmenter(mask: Mask, *, sacrum: Mask | None = None) -> Segmenter:
    """A segmenter that returns ``mask`` (e.g. ``truth_labels > 0``) for any image of its shape.

    Raises
    ------
    GeometryError
        When called on an image whose shape differs from the mask's.
    """
    body = np.asarray(mask, dtype=bool)

    def segment(image: WaterFatImage) -> SegmentationLike:
        if image.shape != body.shape:
            raise GeometryError(
                f"{image.meta.source or 'image'}: shape {image.shape} differs from the mask "
                f"{body.shape}"
            )
        return MaskSegmentation(body.astype(np.float32), body, sacrum)

    return segment


@dataclass(frozen=True)
class StudyResult:
    """Everything one study produces: inputs to the writers in :mod:`vertebrafat.workflows.outputs`.

    ``probability``: float32 foreground probability. ``labelling``: VerSe labels and flags.
    ``table``: one row per labelled body. ``qc``: the QC picture, ``(H, W, 3)`` uint8.
    """

    image: WaterFatImage
    probability: Volume
    labelling: VertebraLabelling
    table: tuple[LevelMeasurement, ...]
    qc: npt.NDArray[np.uint8]


def analyse_study(
    image: WaterFatImage,
    segmenter: Segmenter,
    *,
    erosion_mm: float = DEFAULT_EROSION_MM,
    slices: str = "all",
) -> StudyResult:
    """Segment, label, measure and picture one study.

    Parameters
    ----------
    image : WaterFatImage
        The study; FF (percent) is measured, R2* flags ``r2star_high``. Without FF the table
        still lists every body (voxels, volume) with NaN FF and the flag ``no_ff``.
    segmenter : callable
        ``WaterFatImage -> Segmentation`` (``probability``, ``mask``, optional ``sacrum``).
    erosion_mm, slices : float, str
        Measurement settings, see :func:`vertebrafat.measure.bmf_table`.

    Returns
    -------
    StudyResult

    Raises
    ------
    GeometryError
        If the segmentation's shape differs from the image's.

    Examples
    --------
    Measure with the truth mask instead of the model (a manual mask works the same way):

    >>> import vertebrafat as vf
    >>> study = vf.generate_subject(seed=1, index=0)
    >>> result = analyse_study(study.image, mask_segmenter(study.labels > 0), erosion_mm=2.0)
    >>> [row.level for row in result.table if row.level.startswith("L")]
    ['L1', 'L2', 'L3', 'L4', 'L5']
    """
    seg = segmenter(image)
    if np.shape(seg.mask) != image.shape:
        raise GeometryError(
            f"{image.meta.source or 'image'}: segmentation shape {np.shape(seg.mask)} differs "
            f"from the image {image.shape}"
        )
    labelling = label_segmentation(seg, image.affine)
    flags = labelling.flags()
    ff = image.ff
    if ff is None:
        ff = np.full(image.shape, np.nan, dtype=np.float32)
        flags = {label: (*f, "no_ff") for label, f in flags.items()}
    table = bmf_table(
        ff, labelling.labels, affine=image.affine, erosion_mm=erosion_mm, slices=slices,
        subject=image.meta.subject, scan=image.meta.scan, flags=flags, r2star=image.r2star,
    )
    title = " ".join(p for p in (image.meta.subject, f"scan {image.meta.scan}") if p)
    qc = render_qc(
        image.ff if image.ff is not None else image.water, labelling.labels, table,
        affine=image.affine, is_ff=image.ff is not None, erosion_mm=erosion_mm, slices=slices,
        title=title,
    )
    probability = np.asarray(seg.probability, dtype=np.float32)
    return StudyResult(image, probability, labelling, tuple(table), qc)


def segment_study(
    image: WaterFatImage,
    model: SegmentationModel | None = None,
    *,
    erosion_mm: float = DEFAULT_EROSION_MM,
    slices: str = "all",
) -> StudyResult:
    """The whole job on one loaded study: the ONNX model, then :func:`analyse_study`.

    Parameters
    ----------
    image : WaterFatImage
        From :func:`vertebrafat.load_study` (or :func:`vertebrafat.generate_subject`).
    model : SegmentationModel, optional
        From :func:`vertebrafat.load_model`; the shipped model when omitted (loading it takes
        a fraction of a second: load it once for many studies).
    erosion_mm, slices : float, str
        Measurement settings, see :func:`vertebrafat.measure.bmf_table`.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> result = vf.segment_study(vf.generate_subject(seed=1, index=0).image)
    >>> [row.level for row in result.table if row.level.startswith("L")]
    ['L1', 'L2', 'L3', 'L4', 'L5']
    """
    from vertebrafat.segmentation.inference import predict

    if model is None:
        from vertebrafat.workflows.loading import load_model

        model = load_model()
    loaded = model
    return analyse_study(image, lambda im: predict(loaded, im), erosion_mm=erosion_mm,
                         slices=slices)
