"""The bounding box of a 2D mask, so that per-slice image operations (hole filling, erosion,
distance transforms) run on the box instead of the whole plane."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def plane_box(
    mask: npt.NDArray[np.bool_], *, margin: int = 0
) -> tuple[slice, slice] | None:
    """Row and column slices around the True pixels of a 2D ``mask``, widened by ``margin``
    pixels on each side (clipped at 0; numpy clips the far end); None when ``mask`` is empty.

    Examples
    --------
    >>> m = np.zeros((5, 6), dtype=bool)
    >>> m[1:3, 2] = True
    >>> plane_box(m)
    (slice(1, 3, None), slice(2, 3, None))
    >>> plane_box(m, margin=1)
    (slice(0, 4, None), slice(1, 4, None))
    >>> plane_box(np.zeros((2, 2), dtype=bool)) is None
    True
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (slice(max(int(rows[0]) - margin, 0), int(rows[-1]) + 1 + margin),
            slice(max(int(cols[0]) - margin, 0), int(cols[-1]) + 1 + margin))
