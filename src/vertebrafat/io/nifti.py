"""NIfTI writing (reading lives in :mod:`vertebrafat.io.study`)."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import numpy.typing as npt

from vertebrafat.io.atomic import atomic_path
from vertebrafat.types import Affine


def save_volume(
    array: npt.NDArray[np.generic], affine: Affine, path: str | os.PathLike[str]
) -> None:
    """Write ``array`` (``(slices, rows, cols)``) with ``affine`` as NIfTI, atomically.

    The array is stored as is (dtype kept); the affine goes to both qform and sform (code 1,
    scanner), so every reader agrees on the geometry.
    """
    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=np.float64))
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def save_labels(
    labels: npt.NDArray[np.integer], affine: Affine, path: str | os.PathLike[str]
) -> None:
    """Write a VerSe label map as uint8 NIfTI with the input's affine, atomically."""
    save_volume(np.asarray(labels, dtype=np.uint8), affine, path)
