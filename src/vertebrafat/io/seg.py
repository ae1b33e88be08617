"""DICOM SEG of a VerSe label map, referencing the source water series (highdicom)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat import __version__
from vertebrafat.anatomy import COLOUR_OF_LABEL, LEVEL_OF_LABEL
from vertebrafat.errors import GeometryError, InputError
from vertebrafat.image import WaterFatImage
from vertebrafat.io.atomic import atomic_path
from vertebrafat.types import Labels

_SCT_LEVEL = {
    "T11": "12989004", "T12": "23215003", "L1": "66794005", "L2": "14293000",
    "L3": "36470004", "L4": "11994002", "L5": "49668003", "S1": "54735007",
}


def _water_datasets(image: WaterFatImage, source: Path) -> list[Any]:
    """The water series' datasets of ``source``, in the image's slice order."""
    import pydicom

    water = next((s for s in image.meta.series if s.role == "water"), None)
    if water is None or water.series_uid is None:
        raise InputError(f"{source}: the study has no DICOM water series to reference")
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    datasets = []
    for p in files:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=False)
        except Exception:  # non-DICOM or unreadable files were reported by the reader
            continue
        if str(getattr(ds, "SeriesInstanceUID", "")) == water.series_uid:
            datasets.append(ds)
    ras = np.asarray(image.affine)
    normal_lps = np.array([-1.0, -1.0, 1.0]) * ras[:3, 0]
    datasets.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient), normal_lps)))
    if len(datasets) != image.shape[0]:
        raise GeometryError(
            f"{source}: water series has {len(datasets)} readable slices, labels have "
            f"{image.shape[0]}"
        )
    return datasets


def save_dicom_seg(
    labels: Labels,
    image: WaterFatImage,
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
) -> None:
    """Write ``labels`` as a binary DICOM SEG, one segment per level present, atomically.

    Parameters
    ----------
    labels : ndarray of uint8, shape (slices, rows, cols)
        VerSe label map on the water series' grid (as returned with ``image``).
    image : WaterFatImage
        The study loaded from ``source`` (its series UIDs pick the water series).
    source : path
        The DICOM folder the study was loaded from.
    path : path
        Output file (``seg.dcm``).

    Raises
    ------
    InputError
        No DICOM water series, or no labelled voxel.
    GeometryError
        Labels and the water series differ in shape.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    lab = np.asarray(labels)
    if lab.shape != image.shape:
        raise GeometryError(f"{path}: labels {lab.shape} differ from the image {image.shape}")
    present = [int(v) for v in np.unique(lab) if v != 0]
    if not present:
        raise InputError(f"{path}: no labelled voxel, nothing to write as DICOM SEG")
    src = Path(source)
    datasets = _water_datasets(image, src)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="vertebrafat", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = []
    for number, value in enumerate(present, start=1):
        level = LEVEL_OF_LABEL.get(value, f"label {value}")
        code = _SCT_LEVEL.get(level)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=level,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=Code(code, "SCT", f"{level} vertebra") if code
            else codes.SCT.Vertebra,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor(*_lab_of(COLOUR_OF_LABEL.get(value, (255, 0, 0)))),
        ))
    pixels = np.stack([lab == v for v in present], axis=-1).astype(np.uint8)
    first = datasets[0]
    import hashlib

    from pydicom.uid import generate_uid

    digest = hashlib.sha256(lab.tobytes()).hexdigest()
    entropy = [str(first.SeriesInstanceUID), digest, __version__]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(str(generate_uid(entropy_srcs=[*entropy, "series"]))),
        series_number=int(getattr(first, "SeriesNumber", 0) or 0) + 9000,
        sop_instance_uid=hd.UID(str(generate_uid(entropy_srcs=[*entropy, "sop"]))),
        instance_number=1,
        manufacturer="vertebrafat",
        manufacturer_model_name="vertebrafat",
        software_versions=__version__,
        device_serial_number="0",
        series_description="vertebrafat vertebral bodies",
    )
    # Same labels and source -> same bytes: dates from the source, not the clock.
    date = str(getattr(first, "StudyDate", "") or "20000101")
    time = str(getattr(first, "StudyTime", "") or "000000")
    for keyword in ("ContentDate", "SeriesDate", "InstanceCreationDate"):
        setattr(seg, keyword, date)
    for keyword in ("ContentTime", "SeriesTime", "InstanceCreationTime"):
        setattr(seg, keyword, time)
    for item in seg.get("ContributingEquipmentSequence", []):
        item.ContributionDateTime = date + time
    organisation = str(generate_uid(entropy_srcs=[*entropy, "dimensions"]))
    for item in (*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence):
        item.DimensionOrganizationUID = organisation
    with atomic_path(path) as tmp:
        seg.save_as(tmp)


def _lab_of(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIELab (L 0-100, a/b -128..127) of an sRGB colour, D65."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    return (float(np.clip(lab[0], 0, 100)), float(np.clip(lab[1], -128, 127)),
            float(np.clip(lab[2], -128, 127)))
