"""Read the inputs of ``vertebrafat measure``: a fat-fraction NIfTI and a label-map NIfTI.

The label map may come from anywhere (a manual mask from ITK-SNAP or 3D Slicer, a corrected
automatic one); it must share the FF map's voxel grid. The FF scale is detected from the data
unless given: maximum <= 1.5 -> fraction 0-1; <= 150 -> percent; <= 1500 -> per mille
(GE IDEAL-IQ); anything else is refused rather than guessed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vertebrafat.errors import GeometryError, InputError
from vertebrafat.types import Affine, Labels, Volume

_SCALES = (1.0, 100.0, 1000.0)


def load_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, Affine]:
    """The array and affine of a 3D NIfTI file.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or not 3D.
    """
    import nibabel as nib

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)  # type: ignore[attr-defined]
    except Exception as exc:  # nibabel raises many types for a bad file
        raise InputError(f"{p}: not a readable NIfTI file ({exc})") from None
    data = np.squeeze(data) if data.ndim == 4 and data.shape[3] == 1 else data
    if data.ndim != 3:
        raise InputError(f"{p}: expected a 3D image, got shape {data.shape}")
    return np.asarray(data), np.asarray(img.affine, dtype=np.float64)  # type: ignore[attr-defined]


def ff_to_percent(data: np.ndarray, *, source: str, ff_scale: float | None = None) -> Volume:
    """FF in percent (float32) from stored values of full scale ``ff_scale`` (1, 100 or 1000).

    Raises
    ------
    InputError
        If ``ff_scale`` is not one of 1, 100, 1000, or the scale cannot be told from the data.
    """
    values = np.asarray(data, dtype=np.float64)
    if ff_scale is None:
        finite = values[np.isfinite(values)]
        top = float(np.percentile(finite, 99.9)) if finite.size else 0.0
        if top <= 0:
            raise InputError(f"{source}: FF map is empty or non-positive; give --ff-scale")
        ff_scale = next((s for s in _SCALES if top <= 1.5 * s), None)
        if ff_scale is None:
            raise InputError(f"{source}: FF values up to {top:g} fit no known scale; "
                             "give --ff-scale 1, 100 or 1000")
    if ff_scale not in _SCALES:
        raise InputError(f"{source}: ff_scale must be 1, 100 or 1000, got {ff_scale}")
    return (values * (100.0 / ff_scale)).astype(np.float32)


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
    ff_raw, ff_aff = load_nifti(ff_path)
    lab_raw, lab_aff = load_nifti(labels_path)
    if ff_raw.shape != lab_raw.shape:
        raise GeometryError(f"{labels_path}: shape {lab_raw.shape} differs from the FF map "
                            f"{ff_raw.shape}")
    if not np.allclose(ff_aff, lab_aff, atol=1e-3):
        raise GeometryError(f"{labels_path}: affine differs from the FF map's ({ff_path})")
    lab = np.asarray(lab_raw, dtype=np.float64)
    if np.any(lab != np.round(lab)) or lab.min() < 0 or lab.max() > 255:
        raise InputError(f"{labels_path}: label values must be integers 0-255")
    ff = ff_to_percent(ff_raw, source=str(ff_path), ff_scale=ff_scale)
    return ff, lab.astype(np.uint8), ff_aff
