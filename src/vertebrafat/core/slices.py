"""The slice rule of the measurement schema's ``slices`` column: ``all`` or ``midN``.

``midN`` keeps the N sagittal slices centred on a region's centroid; measurement
(:func:`vertebrafat.measure.restrict_to_slices`) and evaluation
(:func:`vertebrafat.stats.overlap.select_slices`) share :func:`central_slices`.
"""

from __future__ import annotations

import math
import re
from typing import Final

import numpy as np
import numpy.typing as npt

MID_RULE: Final = re.compile(r"^mid([1-9][0-9]*)$")


def central_slices(counts: npt.ArrayLike, n: int) -> npt.NDArray[np.bool_]:
    """The ``n`` slices centred on the foreground centroid, one bool per slice.

    ``counts`` is the foreground count per slice. The window starts at the centroid minus
    ``(n - 1) / 2``, rounded half up, and is kept inside the foreground's slice range; every
    foreground slice is kept when there are ``n`` or fewer, none when ``counts`` is all zero.

    Examples
    --------
    >>> central_slices([0, 1, 4, 4, 1, 0], 2).astype(int).tolist()
    [0, 0, 1, 1, 0, 0]
    """
    c = np.asarray(counts, dtype=np.float64)
    keep = np.zeros(len(c), dtype=bool)
    present = np.flatnonzero(c)
    if len(present) <= n:
        keep[present] = True
        return keep
    centre = float((np.arange(len(c)) * c).sum() / c.sum())
    start = int(np.clip(math.floor(centre - (n - 1) / 2 + 0.5), present[0], present[-1] - n + 1))
    keep[start : start + n] = True
    return keep
