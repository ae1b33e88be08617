"""Explicit VR little endian bytes of sequences, laid out as pydicom writes them (defined
lengths for sequences and items), for the parts of an object too repetitive to build as pydicom
datasets: a DICOM SEG's per-frame functional groups, eleven nested items per frame.

Leaf elements are encoded by pydicom's own writer (:func:`element`), so a value copied from a
source image (its DS strings, its UIDs) comes out exactly as it would from a dataset; only the
structure (tags, lengths, item markers, tag order) is laid out here, and unsigned integers
(:func:`unsigned`), whose encoding is fixed.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import Any

_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_UNSIGNED = {"US": "H", "UL": "I"}


def element(keyword: str, value: Any, *, encodings: str) -> bytes:
    """The data element ``keyword`` (tag, VR, length, value) as pydicom writes it from a
    dataset; ``encodings`` is the object's SpecificCharacterSet, which text values use."""
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    tag, vr = _tag_vr(keyword)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, DataElement(tag, vr, value), encodings)
    return fp.getvalue()


def unsigned(keyword: str, *values: int) -> bytes:
    """The US or UL element ``keyword`` of ``values``."""
    tag, vr = _tag_vr(keyword)
    code = _UNSIGNED[vr]
    value = struct.pack(f"<{len(values)}{code}", *values)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def item(*elements: bytes) -> bytes:
    """A sequence item of encoded ``elements``, put in tag order."""
    body = b"".join(sorted(elements, key=lambda e: struct.unpack_from("<HH", e)))
    return _ITEM + struct.pack("<I", len(body)) + body


def sequence(keyword: str, items: Iterable[bytes]) -> bytes:
    """The sequence element ``keyword`` of encoded ``items``."""
    tag, _ = _tag_vr(keyword)
    body = b"".join(items)
    return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, b"SQ", 0, len(body)) + body


@functools.cache
def _tag_vr(keyword: str) -> tuple[int, str]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"{keyword} is no DICOM keyword")
    return tag, dictionary_VR(tag)
