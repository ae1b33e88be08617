"""Array aliases shared by every module.

Volumes are ``(slices, rows, cols)``: one sagittal slice per index, as acquired. Geometry lives in
a 4x4 voxel -> RAS mm affine, never in the index order.
"""

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]
"""Boolean volume, ``(slices, rows, cols)``."""

Labels = npt.NDArray[np.uint8]
"""Label volume in the VerSe convention (see :mod:`vertebrafat.core.labels`)."""

Volume = npt.NDArray[np.float32]
"""Float32 image volume, ``(slices, rows, cols)``."""

Affine = npt.NDArray[np.float64]
"""4x4 voxel -> RAS (mm) matrix, as in NIfTI."""

FloatArray = npt.NDArray[np.float64]

RealArray = npt.NDArray[np.floating]
"""Float array of either precision (the phantom renders its planes in float32)."""
