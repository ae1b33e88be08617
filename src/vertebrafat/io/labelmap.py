"""Read the inputs of ``vertebrafat measure``: a fat-fraction NIfTI and a label-map NIfTI.

The label map may come from anywhere (a manual mask from ITK-SNAP or 3D Slicer, a corrected
automatic one); it must share the FF map's voxel grid, in any axis order (both are brought to
``(slices, rows, cols)``, the slice axis the one closest to left-right). NaN or infinite FF voxels
are refused with their count, as in every study. The FF scale is detected from the data unless
given, by the same rule as every study (:func:`vertebrafat.io.ff_scale.detect_ff_scale`):
an ambiguous range is refused rather than guessed. The rows are named by
:func:`measure_identity` unless the caller names them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import Affine, Labels, Volume
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent
from vertebrafat.io.orientation import read_on_grid, read_slices_first
from vertebrafat.io.study import study_identity


def load_measure_inputs(
    ff_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    *,
    ff_scale: float | None = None,
) -> tuple[Volume, Labels, Affine]:
    """FF (percent), labels (uint8) and the shared affine.

    Raises
    ------
    InputError
        On unreadable files, NaN/inf FF voxels, non-integer or out-of-range label values, or
        a bad FF scale.
    GeometryError
        If the label map is not on the FF map's voxel grid (within 1e-3 mm) in any of the 48
        axis orders and directions.
    """
    ff_raw, ff_aff, _ = read_slices_first(ff_path, as_float32=False)
    lab_raw = read_on_grid(labels_path, ff_raw.shape, ff_aff,
                           grid_of=f"the FF map {ff_path}", as_float32=False)
    bad = int(np.count_nonzero(~np.isfinite(np.asarray(ff_raw, dtype=np.float64))))
    if bad:
        raise InputError(f"{ff_path}: {bad} voxels are NaN or infinite")
    lab = np.asarray(lab_raw, dtype=np.float64)
    if np.any(lab != np.round(lab)) or lab.min() < 0 or lab.max() > 255:
        raise InputError(f"{labels_path}: label values must be integers 0-255")
    source = str(ff_path)
    scale = ff_scale if ff_scale is not None else detect_ff_scale(ff_raw, source=source)
    ff = ff_to_percent(ff_raw, scale, source=source)
    return ff, lab.astype(np.uint8), ff_aff


def measure_identity(ff_path: str | os.PathLike[str]) -> tuple[str, str]:
    """(subject, scan) for the rows measured on ``ff_path``, by the rule of a NIfTI study folder.

    A ``study.json`` beside the FF map (``{"subject": .., "scan": ..}``, as the phantom and
    :func:`vertebrafat.io.study.read_study` use) names them; otherwise the subject is the name
    of the folder holding the FF map and the scan is ``"1"``.

    Raises
    ------
    InputError
        If a ``study.json`` is there but is not a JSON object.

    Examples
    --------
    >>> measure_identity("out/sub01/ff.nii.gz")  # no out/sub01/study.json
    ('sub01', '1')
    """
    return study_identity(Path(ff_path).absolute().parent)
