"""Reading one DICOM attribute safely: every value that pydicom cannot decode, or that is not
the count of finite numbers expected, becomes an :class:`InputError` naming the file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import FloatArray


def file_of(ds: Any) -> str:
    """The path a dataset was read from (for messages)."""
    return str(getattr(ds, "filename", None) or "<dataset>")


def tag_value(ds: Any, keyword: str) -> Any:
    """``ds.get(keyword)``, or an InputError naming the file when pydicom cannot decode it."""
    try:
        return ds.get(keyword)
    except Exception:  # pydicom decodes lazily: a corrupt value fails here in many ways
        raise InputError(f"{file_of(ds)}: {keyword} cannot be decoded") from None


def tag_numbers(ds: Any, keyword: str, count: int) -> FloatArray | None:
    """The value of ``keyword`` as ``count`` finite numbers; None when absent or empty.

    Raises
    ------
    InputError
        When the tag is present but not ``count`` finite numbers (names the file and value).
    """
    value = tag_value(ds, keyword)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = isinstance(value, (str, bytes))
    values = list(value) if isinstance(value, Sequence) and not text else [value]
    try:
        numbers = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        numbers = np.full(0, np.nan)
    if numbers.shape != (count,) or not np.all(np.isfinite(numbers)):
        shown = " ".join(str(value).split())[:80]
        raise InputError(f"{file_of(ds)}: {keyword} {shown} is not {count} finite number(s)")
    return numbers


def tag_int(ds: Any, keyword: str, default: int) -> int:
    """An integer tag (SeriesNumber, NumberOfFrames); ``default`` when absent or empty.

    Raises
    ------
    InputError
        When present but not an integer.
    """
    value = tag_value(ds, keyword)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{file_of(ds)}: {keyword} {value!s:.40} is not an integer") from None
