"""Orientation of an input series: the slice axis must be sagittal (left-right)."""

from __future__ import annotations

import numpy as np

from vertebrafat.core.errors import GeometryError
from vertebrafat.core.types import Affine


def check_sagittal(affine: Affine, *, source: str, allow_orientation: bool) -> None:
    """Refuse a volume whose slice axis (axis 0) is not mostly left-right.

    Raises
    ------
    GeometryError
        Unless ``allow_orientation`` is set.
    """
    axis = np.abs(np.asarray(affine)[:3, 0])
    names = ("left-right (sagittal)", "antero-posterior (coronal)", "cranio-caudal (axial)")
    dominant = int(np.argmax(axis))
    if dominant != 0 and not allow_orientation:
        raise GeometryError(
            f"{source}: non-sagittal acquisition (slice axis is {names[dominant]}); vertebrafat "
            "expects sagittal slices; use --allow-orientation to process it anyway"
        )
