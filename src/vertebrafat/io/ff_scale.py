"""The full scale of a stored FF map (fraction 0-1, percent 0-100, GE's 0-1000) and its
conversion to percent: told from vendor tags and the value range, never guessed."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import Volume

FF_SCALES: Final[tuple[float, ...]] = (1.0, 100.0, 1000.0)

# Robust maximum (99.9th percentile) of a stored FF map -> its full scale. Gaps between the
# bands are ambiguous: a fraction never exceeds ~1.5 even with noise, a percent map of a lumbar
# field of view (subcutaneous fat ~90 %) never tops out below 20, and a GE x10 map below 200.
_BANDS: Final[tuple[tuple[float, float, float], ...]] = (
    (0.0, 1.5, 1.0),
    (20.0, 150.0, 100.0),
    (200.0, 1500.0, 1000.0),
)


def detect_ff_scale(values: npt.ArrayLike, *, source: str, hint: float | None = None) -> float:
    """Full scale (1, 100 or 1000) of a stored FF map, from its value range and a tag hint.

    Parameters
    ----------
    values : array_like
        The stored FF values (rescale tags already applied).
    source : str
        File or series name for error messages.
    hint : float, optional
        Scale implied by vendor tags (GE IDEAL-IQ stores FF x10 -> 1000). It must agree with
        the value range.

    Raises
    ------
    InputError
        If the robust maximum falls between the bands (ambiguous), outside every band, or
        disagrees with ``hint``; the message asks for ``--ff-scale``.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    top = float(np.percentile(finite, 99.9)) if finite.size else 0.0
    if top <= 0.0:
        raise InputError(f"{source}: FF map is empty or non-positive; give --ff-scale 1|100|1000")
    found = next((scale for lo, hi, scale in _BANDS if lo < top <= hi), None)
    if found is None:
        raise InputError(
            f"{source}: FF scale is ambiguous (99.9th percentile {top:.4g} fits none of "
            "0-1, 0-100, 0-1000); give --ff-scale 1|100|1000"
        )
    if hint is not None and hint != found:
        raise InputError(
            f"{source}: FF tags say full scale {hint:g} but the values (99.9th percentile "
            f"{top:.4g}) say {found:g}; give --ff-scale 1|100|1000"
        )
    return found


def ff_to_percent(values: npt.ArrayLike, scale: float, *, source: str) -> Volume:
    """Stored FF values of full scale ``scale`` as float32 percent (no clipping).

    Raises
    ------
    InputError
        If ``scale`` is not 1, 100 or 1000.
    """
    if scale not in FF_SCALES:
        raise InputError(f"{source}: --ff-scale must be 1, 100 or 1000, got {scale:g}")
    return (np.asarray(values, dtype=np.float64) * (100.0 / scale)).astype(np.float32)
