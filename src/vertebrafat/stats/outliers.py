"""Outliers of a cohort's values by the modified z-score (Iglewicz & Hoaglin 1993).

``M_i = 0.6745 (x_i - median) / MAD`` with ``MAD = median |x_i - median|``; a value with
``|M_i| > 3.5`` is an outlier (Iglewicz & Hoaglin's recommendation, also in the NIST/SEMATECH
e-Handbook of Statistical Methods, section 1.3.5.17). 0.6745 is the 0.75 quantile of the
standard normal, so ``M`` is a z-score for normal data, but one that a few wild values do not
drag, unlike the mean and SD. Where more than half the values are equal (MAD = 0) the mean
absolute deviation stands in: ``M_i = (x_i - median) / (1.253314 MeanAD)``. NaN values are
ignored and get NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MODIFIED_Z_LIMIT = 3.5
"""``|M| >`` this is an outlier (Iglewicz & Hoaglin 1993)."""


def modified_z(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Modified z-score of each value (see the module notes); same shape as ``values``.

    NaN where a value is NaN; zeros where every finite value is the same; all NaN with no
    finite value.

    Examples
    --------
    >>> modified_z([1.0, 2.0, 3.0, 4.0, 100.0]).round(4).tolist()
    [-1.349, -0.6745, 0.0, 0.6745, 65.4265]
    """
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    out = np.full(x.shape, np.nan)
    if finite.size == 0:
        return out
    median = float(np.median(finite))
    mad = float(np.median(np.abs(finite - median)))
    if mad > 0:
        scale = mad / 0.6745
    else:
        scale = 1.253314 * float(np.mean(np.abs(finite - median)))
    ok = np.isfinite(x)
    out[ok] = (x[ok] - median) / scale if scale > 0 else 0.0
    return out


def outliers(values: npt.ArrayLike, *, limit: float = MODIFIED_Z_LIMIT,
             min_count: int = 5) -> npt.NDArray[np.bool_]:
    """True where ``|modified_z| > limit``; all False with fewer than ``min_count`` finite
    values (too few to tell an outlier from the spread).

    Examples
    --------
    >>> outliers([30.0, 32.0, 31.0, 29.0, 33.0, 75.0]).tolist()
    [False, False, False, False, False, True]
    """
    z = modified_z(values)
    if int(np.isfinite(z).sum()) < min_count:
        return np.zeros(z.shape, dtype=bool)
    return np.abs(np.nan_to_num(z, nan=0.0)) > limit
