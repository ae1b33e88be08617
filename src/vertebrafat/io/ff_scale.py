"""The full scale of a stored FF map (fraction 0-1, percent 0-100, GE's 0-1000) and its
conversion to percent: told from vendor tags and the value range, never guessed."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import Volume

FF_SCALES: Final[tuple[float, ...]] = (1.0, 100.0, 1000.0)

SCALE_TOLERANCE: Final[tuple[float, float]] = (0.5, 1.5)
"""A stored FF map's robust maximum (99.9th percentile) must lie within these multiples of its
full scale. A lumbar field of view holds subcutaneous fat (80-95 %) and background noise, so
the robust maximum of a percent map lies near 100 (50-150 with noise and complex fitting);
a map that fits no scale within this tolerance (e.g. 0-300, or a fraction map of 0-8) is
refused rather than read by the nearest scale."""
_BANDS: Final[tuple[tuple[float, float, float], ...]] = tuple(
    (SCALE_TOLERANCE[0] * s, SCALE_TOLERANCE[1] * s, s) for s in FF_SCALES
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
        If the robust maximum is not within :data:`SCALE_TOLERANCE` of one full scale
        (ambiguous), or disagrees with ``hint``; the message asks for ``--ff-scale``.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    top = float(np.percentile(finite, 99.9)) if finite.size else 0.0
    if top <= 0.0:
        raise InputError(f"{source}: FF map is empty or non-positive; give --ff-scale 1|100|1000")
    found = next((scale for lo, hi, scale in _BANDS if lo < top <= hi), None)
    if found is None:
        raise InputError(
            f"{source}: FF scale is ambiguous (99.9th percentile {top:.4g} is not within "
            f"{SCALE_TOLERANCE[0]:g}-{SCALE_TOLERANCE[1]:g} times a full scale of 1, 100 or "
            "1000); give --ff-scale 1|100|1000"
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
