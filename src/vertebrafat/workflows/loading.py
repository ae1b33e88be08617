"""What the verbs load: a study ready to segment and a model ready to run.

:func:`load_study` is :func:`vertebrafat.io.study.read_study` (formats) plus the fat fraction
derived from water and fat where no FF map was stored (:mod:`vertebrafat.waterfat`);
:func:`load_model` is :func:`vertebrafat.io.model.read_model` (verified files) plus an ONNX
Runtime session (:mod:`vertebrafat.segmentation.model`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import InputError, NotWaterFatError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.inventory import dicom_inventory
from vertebrafat.io.echoes import is_echo_study
from vertebrafat.io.model import read_model
from vertebrafat.io.study import describe_study, read_study
from vertebrafat.segmentation.model import SegmentationModel, open_session
from vertebrafat.waterfat.fraction import with_derived_ff

PathLike = str | os.PathLike[str]


def load_study(
    path: PathLike | None,
    *,
    ff_scale: float | None = None,
    series: Mapping[str, int] | None = None,
    allow_orientation: bool = False,
    water: PathLike | None = None,
    fat: PathLike | None = None,
    ff: PathLike | None = None,
    r2star: PathLike | None = None,
) -> WaterFatImage:
    """Load one water-fat study (DICOM folder, NIfTI folder or NIfTI files), or separate a
    multi-echo one (an ISMRM ``.mat``, the phantom's ``echoes.npz``, per-echo NIfTI files: see
    :func:`vertebrafat.workflows.separate.load_separated`).

    Parameters are those of :func:`vertebrafat.io.study.read_study`: ``path`` a DICOM folder, a
    NIfTI folder or a water NIfTI file; ``ff_scale`` the FF map's full scale (1, 100, 1000)
    when its tags and values cannot tell; ``series`` picks DICOM series by role
    (``{"water": 5}``); ``water``/``fat``/``ff``/``r2star`` explicit NIfTI files.

    Returns
    -------
    WaterFatImage
        float32 volumes ``(slices, rows, cols)``; FF in percent, derived from water and fat
        when no FF map exists (``meta.ff_scale == "derived"``); R2* in 1/s.

    Raises
    ------
    InputError, GeometryError
        As :func:`vertebrafat.io.study.read_study`: one line naming the file and the problem.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> image = vf.load_study("phantom/P001")  # doctest: +SKIP
    >>> image.channels, image.meta.ff_scale  # doctest: +SKIP
    (('water', 'fat', 'ff', 'r2star'), 100.0)
    """
    if path is not None and is_echo_study(path):
        from vertebrafat.workflows.separate import load_separated

        return load_separated(path)
    try:
        image = read_study(
            path, ff_scale=ff_scale, series=series, allow_orientation=allow_orientation,
            water=water, fat=fat, ff=ff, r2star=r2star,
        )
    except NotWaterFatError as no_maps:
        # a DICOM folder of multi-echo images: separate them, or say what is missing
        from vertebrafat.workflows.separate import load_separated

        try:
            return load_separated(str(path))
        except InputError:
            raise no_maps from None
    return with_derived_ff(image)


def describe_input(
    path: PathLike | None,
    *,
    ff_scale: float | None = None,
    series: Mapping[str, int] | None = None,
    allow_orientation: bool = False,
    water: PathLike | None = None,
    fat: PathLike | None = None,
    ff: PathLike | None = None,
    r2star: PathLike | None = None,
) -> dict[str, Any]:
    """What ``vertebrafat info`` shows: the study as loaded (series, roles, geometry, FF scale),
    and for DICOM every image stack (role, echo time, magnitude/phase, frames, value mapping)
    with the echoes found; a DICOM folder without water (echoes only, other series) is
    described, not refused, with what a water-fat study still needs (``missing``).

    Parameters are those of :func:`load_study`.

    Raises
    ------
    InputError, GeometryError
        As :func:`load_study`, except for a DICOM folder that holds no water image.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> d = vf.describe_input("dicom-real/ge_dual_echo_abdomen")  # doctest: +SKIP
    >>> d["echoes"], d["missing"]  # doctest: +SKIP
    ('2 echoes (TE 2.04, 4.21 ms), magnitude only', '2 echoes (TE 2.04, 4.21 ms), magnitude \
only: a water-fat study needs 3 or more echoes with phase, or water/fat/FF series')
    """
    try:
        image = load_study(path, ff_scale=ff_scale, series=series,
                           allow_orientation=allow_orientation, water=water, fat=fat, ff=ff,
                           r2star=r2star)
    except NotWaterFatError:
        found = dicom_inventory(Path(str(path)))
        return {**found, "scan": "", "channels": [], "shape": None, "spacing_mm": None,
                "orientation": None, "affine": None, "ff_scale": None, "series": [],
                "notes": []}
    described = describe_study(image)
    if image.meta.format == "dicom":
        found = dicom_inventory(Path(image.meta.source))
        described.update(images=found["images"], echoes=found["echoes"], missing=None)
    return described


def load_model(path: PathLike | None = None, *, threads: int = 2) -> SegmentationModel:
    """``NAME.onnx`` + ``NAME.json`` (default: the shipped model) as a runnable model.

    Raises
    ------
    ModelError
        If a file is missing, the card is unreadable, or the ONNX file fails its checksum.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> model = vf.load_model()
    >>> model.card.classes
    ('background', 'vertebral_body', 'sacrum', 'rib')
    """
    card, onnx, onnx_path = read_model(path)
    return open_session(card, onnx, source=str(onnx_path), threads=threads)
