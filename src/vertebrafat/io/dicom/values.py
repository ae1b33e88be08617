"""From stored pixel values to real values: which mapping a vendor's image asks for, applied.

One rule, the first that applies (each image or frame on its own):

1. **Real World Value Mapping** (0040,9096), when present: ``value = stored x slope +
   intercept`` of its first item, in the units its code names (``%``, ``Hz``, ``mrad``...).
   Philips and Siemens XA put it on quantitative maps; it is the vendor's statement of the
   physical value and wins over the other two.
2. **Philips private scale slope** (2005,100E) of ``Philips MR Imaging DD 001``: the
   "floating point" value ``(stored x RescaleSlope + RescaleIntercept) / (RescaleSlope x
   scale slope)``; Philips' RescaleSlope/Intercept alone give display values scaled per
   series.
3. **RescaleSlope/RescaleIntercept**, else the stored values as they are.

GE's FF stored x10 is not a tag: it is the full-scale hint of
:data:`vertebrafat.io.dicom.roles.FF_FULL_SCALE`. Phase images are turned into radians by
:func:`phase_radians`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import FloatArray
from vertebrafat.io.dicom.files import stored_array
from vertebrafat.io.dicom.frames import (
    PHILIPS_PRIVATE,
    image_type,
    philips_image_type,
    private_element,
    private_float,
)
from vertebrafat.io.dicom.roles import component_from
from vertebrafat.io.dicom.tags import file_of, tag_int, tag_numbers, tag_value

MappingKind = Literal["real-world", "philips-scale", "rescale", "stored"]
_GE_PRIVATE: Final[tuple[int, str, int]] = (0x0043, "GEMS_PARM_01", 0x2F)
_RADIANS: Final[dict[str, float]] = {"rad": 1.0, "mrad": 1e-3}
_UNIT_NAMES: Final[dict[str, str]] = {"1": "no units"}  # UCUM codes shown by name


@dataclass(frozen=True)
class ValueMapping:
    """``value = stored x slope + intercept`` and where it came from.

    ``kind``: ``real-world``, ``philips-scale``, ``rescale`` or ``stored`` (module rules);
    ``units``: the Real World Value units code (``%``, ``mrad``...) or RescaleType, else "";
    ``text``: the mapping as ``info`` shows it.
    """

    kind: MappingKind
    slope: float
    intercept: float
    units: str
    text: str


def value_mapping(ds: Any) -> ValueMapping:
    """The mapping of one image or frame (module rules).

    Raises
    ------
    InputError
        A slope of zero, a Real World Value Mapping given only as a lookup table or without
        slope, a mapping value that is not a finite number (naming the file).
    """
    real_world = _real_world(ds)
    if real_world is not None:
        return real_world
    slope_tag = tag_numbers(ds, "RescaleSlope", 1)
    intercept_tag = tag_numbers(ds, "RescaleIntercept", 1)
    slope = 1.0 if slope_tag is None else float(slope_tag[0])
    intercept = 0.0 if intercept_tag is None else float(intercept_tag[0])
    if slope == 0:
        raise InputError(f"{file_of(ds)}: RescaleSlope is 0 (every pixel would be "
                         f"{intercept:g})")
    units = str(tag_value(ds, "RescaleType") or "").strip()
    rescale = f"RescaleSlope {slope:g}, RescaleIntercept {intercept:g}"
    scale = private_float(ds, 0x2005, PHILIPS_PRIVATE, 0x0E)
    if scale is not None and scale != 0:
        return ValueMapping("philips-scale", 1.0 / scale, intercept / (slope * scale), "",
                            f"Philips scale slope (2005,100E) {scale:g} over {rescale}")
    if slope_tag is None and intercept_tag is None:
        return ValueMapping("stored", 1.0, 0.0, "", "stored values (no rescale tags)")
    return ValueMapping("rescale", slope, intercept, units, rescale)


def _real_world(ds: Any) -> ValueMapping | None:
    items = tag_value(ds, "RealWorldValueMappingSequence")
    if not items:
        return None
    item, name = items[0], file_of(ds)
    if item.get("RealWorldValueSlope") is None:
        what = ("by a lookup table" if "RealWorldValueLUTData" in item
                else "without RealWorldValueSlope")
        raise InputError(f"{name}: Real World Value Mapping {what} is not supported")
    slope = _finite(item, "RealWorldValueSlope", name)
    intercept = _finite(item, "RealWorldValueIntercept", name, default=0.0)
    if slope == 0:
        raise InputError(f"{name}: RealWorldValueSlope is 0")
    units = ""
    codes = item.get("MeasurementUnitsCodeSequence")
    if codes:
        units = str(codes[0].get("CodeValue") or "").strip()
    more = f", first of {len(items)} mappings" if len(items) > 1 else ""
    return ValueMapping("real-world", slope, intercept, units,
                        f"Real World Value Mapping: slope {slope:g}, intercept {intercept:g}"
                        f"{f' ({_UNIT_NAMES.get(units, units)})' if units else ''}{more}")


def _finite(item: Any, keyword: str, name: str, default: float | None = None) -> float:
    value = item.get(keyword)
    if value is None and default is not None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise InputError(f"{name}: {keyword} {str(value)[:40]} is not a finite number")
    return number


def stored_pixels(ds: Any) -> FloatArray:
    """One image's (or frame's) stored values as float64 ``(rows, cols)``.

    Raises
    ------
    InputError
        Several frames in a file without per-frame functional groups, or pixel data that is
        not one grey-scale frame.
    """
    name = file_of(ds)
    frames = tag_int(ds, "NumberOfFrames", 1)
    if frames > 1:
        raise InputError(f"{name}: {frames} frames in one file; multi-frame images are not "
                         "supported without per-frame functional groups (export single-frame "
                         "or enhanced images)")
    arr = np.asarray(stored_array(ds), dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name}: pixel data of shape {arr.shape}; expected one grey-scale "
                         "frame")
    return arr


def mapped_pixels(ds: Any) -> FloatArray:
    """One image's values through its :func:`value_mapping` (float64).

    Raises
    ------
    InputError
        As :func:`value_mapping` and :func:`stored_pixels`, or values that overflow float32.
    """
    mapping = value_mapping(ds)
    out = stored_pixels(ds) * mapping.slope + mapping.intercept
    if not np.all(np.isfinite(out.astype(np.float32))):
        raise InputError(f"{file_of(ds)}: pixel values overflow after {mapping.text}")
    return out


def phase_radians(ds: Any) -> FloatArray:
    """A phase image in radians: from its mapping when that states ``rad`` or ``mrad`` (Philips),
    else from the stored range its BitsStored and PixelRepresentation give, spread over
    [-pi, pi) (Siemens: 12 bits, 0..4095). The caller checks that the values fill the range.
    """
    mapping = value_mapping(ds)
    stored = stored_pixels(ds)
    factor = _RADIANS.get(mapping.units.lower())
    if factor is not None:
        return (stored * mapping.slope + mapping.intercept) * factor
    lo, hi = stored_range(ds)
    return (stored - lo) / (hi - lo) * (2 * np.pi) - np.pi


def phase_text(ds: Any) -> str:
    """How :func:`phase_radians` reads this image (for ``info``)."""
    mapping = value_mapping(ds)
    if mapping.units.lower() in _RADIANS:
        return f"radians from {mapping.text}"
    lo, hi = stored_range(ds)
    return f"radians from the stored range {lo:g}..{hi - 1:g}"


def stored_range(ds: Any) -> tuple[float, float]:
    """``(lowest, one past the highest)`` stored integer of the image's BitsStored and
    PixelRepresentation (e.g. ``(0, 4096)`` for 12 unsigned bits).

    Raises
    ------
    InputError
        BitsStored not between 1 and 32.
    """
    bits = tag_int(ds, "BitsStored", 16)
    if not 1 <= bits <= 32:
        raise InputError(f"{file_of(ds)}: BitsStored {bits} is not between 1 and 32")
    if tag_int(ds, "PixelRepresentation", 0) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1)
    return 0.0, 2.0**bits


def image_component(ds: Any) -> str | None:
    """``magnitude``, ``phase``, ``real`` or ``imaginary`` as the image says it (enhanced
    ComplexImageComponent, ImageType values, GE's private image type (0043,102F), then a
    Philips frame's private ImageTypeMR); None when nothing says."""
    values = image_type(ds)
    ge = private_element(ds, *_GE_PRIVATE)
    if isinstance(ge, bytes) and len(ge) == 2:  # implicit VR: the raw SS
        ge = int.from_bytes(ge, "little", signed=True)
    ge_code = int(ge) if isinstance(ge, int) else None
    said = component_from(values, str(tag_value(ds, "ComplexImageComponent") or ""), ge_code)
    private = philips_image_type(ds)
    return said if said is not None or private is None else component_from(["", "", private])
