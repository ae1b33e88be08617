"""Read the inputs of ``vertebrafat measure``: a fat-fraction NIfTI and a label-map NIfTI.

The label map may come from anywhere (a manual mask from ITK-SNAP or 3D Slicer, a corrected
automatic one); it must share the FF map's voxel grid. The FF scale is detected from the data
unless given, by the same rule as every study (:func:`vertebrafat.io.ff_scale.detect_ff_scale`):
an ambiguous range is refused rather than guessed.
"""

from __future__ import annotations

import os

import numpy as np

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.types import Affine, Labels, Volume
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent
from vertebrafat.io.nifti import read_nifti


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
        On unreadable files, non-integer or out-of-range label values, or a bad FF scale.
    GeometryError
        If the two files differ in shape or affine (more than 1e-3 mm).
    """
    ff_raw, ff_aff = read_nifti(ff_path, as_float32=False)
    lab_raw, lab_aff = read_nifti(labels_path, as_float32=False)
    if ff_raw.shape != lab_raw.shape:
        raise GeometryError(f"{labels_path}: shape {lab_raw.shape} differs from the FF map "
                            f"{ff_raw.shape}")
    if not np.allclose(ff_aff, lab_aff, atol=1e-3):
        raise GeometryError(f"{labels_path}: affine differs from the FF map's ({ff_path})")
    lab = np.asarray(lab_raw, dtype=np.float64)
    if np.any(lab != np.round(lab)) or lab.min() < 0 or lab.max() > 255:
        raise InputError(f"{labels_path}: label values must be integers 0-255")
    source = str(ff_path)
    scale = ff_scale if ff_scale is not None else detect_ff_scale(ff_raw, source=source)
    ff = ff_to_percent(ff_raw, scale, source=source)
    return ff, lab.astype(np.uint8), ff_aff
