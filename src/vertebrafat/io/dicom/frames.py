"""Enhanced multi-frame DICOM (Enhanced MR Image Storage, Philips, Siemens XA, Canon) read as
single-frame images: each frame becomes a :class:`FrameView` that answers ``get(keyword)`` the
way a classic image does, from its per-frame functional groups, then the shared ones, then the
object's own attributes. The readers (:mod:`vertebrafat.io.dicom.geometry`,
:mod:`vertebrafat.io.dicom.values`) then need no second code path.

Where each classic attribute lives in an enhanced object:

===========================================  ==============================================
classic                                      enhanced (functional group sequence, attribute)
===========================================  ==============================================
ImagePositionPatient                         PlanePositionSequence
ImageOrientationPatient                      PlaneOrientationSequence
PixelSpacing, SliceThickness, SpacingBe...   PixelMeasuresSequence
RescaleSlope, RescaleIntercept, RescaleType  PixelValueTransformationSequence
EchoTime                                     MREchoSequence, EffectiveEchoTime
ImageType, ComplexImageComponent             MRImageFrameTypeSequence (FrameType, ...)
RealWorldValueMappingSequence                the functional group itself
Philips private tags (2005,xxxx)             the private per-frame item (2005,140F)
===========================================  ==============================================
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.io.dicom.tags import file_of, tag_int, tag_value

# classic keyword -> (functional group sequence, attribute inside its item)
_GROUPS: Final[dict[str, tuple[str, str]]] = {
    "ImagePositionPatient": ("PlanePositionSequence", "ImagePositionPatient"),
    "ImageOrientationPatient": ("PlaneOrientationSequence", "ImageOrientationPatient"),
    "PixelSpacing": ("PixelMeasuresSequence", "PixelSpacing"),
    "SliceThickness": ("PixelMeasuresSequence", "SliceThickness"),
    "SpacingBetweenSlices": ("PixelMeasuresSequence", "SpacingBetweenSlices"),
    "RescaleSlope": ("PixelValueTransformationSequence", "RescaleSlope"),
    "RescaleIntercept": ("PixelValueTransformationSequence", "RescaleIntercept"),
    "RescaleType": ("PixelValueTransformationSequence", "RescaleType"),
    "EchoTime": ("MREchoSequence", "EffectiveEchoTime"),
    "ImageType": ("MRImageFrameTypeSequence", "FrameType"),
    "ComplexImageComponent": ("MRImageFrameTypeSequence", "ComplexImageComponent"),
}
# attributes that are functional group sequences themselves
_SEQUENCES: Final[frozenset[str]] = frozenset({"RealWorldValueMappingSequence"})
PHILIPS_PRIVATE: Final[str] = "Philips MR Imaging DD 001"
_PHILIPS_FRAME_ITEM: Final[tuple[int, str, int]] = (0x2005, "Philips MR Imaging DD 005", 0x0F)


def is_enhanced(ds: Any) -> bool:
    """Whether ``ds`` holds its frames' geometry in per-frame functional groups."""
    return "PerFrameFunctionalGroupsSequence" in ds


class FrameView:
    """One frame of an enhanced multi-frame object, read like a single-frame dataset.

    ``filename`` is ``"<file> frame <n>"`` (1-based, as DICOM counts frames) so that every
    message names the frame; ``frame_number`` is that ``n``; ``parent`` the whole object.
    """

    def __init__(self, parent: Any, index: int, per_frame: Any, shared: Any,
                 pixels: dict[str, Any]) -> None:
        self.parent = parent
        self.frame_number = index + 1
        self._per_frame = per_frame
        self._shared = shared
        self._pixels = pixels  # one decoded array shared by the object's frames
        self.filename = f"{getattr(parent, 'filename', None) or '<dataset>'} frame {index + 1}"

    def get(self, keyword: str, default: Any = None) -> Any:
        """The frame's value of a classic attribute (see the module table), else ``default``."""
        if keyword == "NumberOfFrames":
            return 1
        for group in (self._per_frame, self._shared):
            value = _from_group(group, keyword)
            if value is not None:
                return value
        return self.parent.get(keyword, default)

    def __contains__(self, keyword: str) -> bool:
        return self.get(keyword) is not None

    def __getattr__(self, keyword: str) -> Any:
        if keyword.startswith("_"):
            raise AttributeError(keyword)
        value = self.get(keyword)
        if value is None:
            raise AttributeError(keyword)
        return value

    @property
    def pixel_array(self) -> Any:
        """This frame's stored values, ``(rows, cols)``."""
        if "array" not in self._pixels:
            array = np.asarray(self.parent.pixel_array)
            self._pixels["array"] = array[np.newaxis] if array.ndim == 2 else array
        return self._pixels["array"][self.frame_number - 1]

    def release_pixels(self) -> None:
        """Drop the object's pixel data, raw and decoded (every frame's), keeping its headers."""
        self._pixels.clear()
        if "PixelData" in self.parent:
            del self.parent.PixelData

    def private_items(self) -> list[Any]:
        """Where the frame's private tags may be: its Philips per-frame item, then the object."""
        group, creator, element = _PHILIPS_FRAME_ITEM
        items = []
        for holder in (self._per_frame, self._shared):
            seq = private_element(holder, group, creator, element)
            if seq is not None and len(seq) > 0:
                items.append(seq[0])
        return [*items, self.parent]


def _from_group(group: Any, keyword: str) -> Any:
    if group is None:
        return None
    if keyword in _SEQUENCES:
        return group.get(keyword)
    where = _GROUPS.get(keyword)
    if where is None:
        return None
    seq = group.get(where[0])
    if not seq:
        return None
    return seq[0].get(where[1])


def frames_of(ds: Any) -> list[FrameView]:
    """The frames of an enhanced multi-frame object, in file order.

    Raises
    ------
    InputError
        When NumberOfFrames and the number of per-frame functional groups differ, or the
        shared functional groups are not one item.
    """
    per_frame = tag_value(ds, "PerFrameFunctionalGroupsSequence") or []
    shared_seq = tag_value(ds, "SharedFunctionalGroupsSequence")
    n = tag_int(ds, "NumberOfFrames", 1)
    if n != len(per_frame):
        raise InputError(f"{file_of(ds)}: NumberOfFrames {n} but {len(per_frame)} per-frame "
                         "functional groups")
    if shared_seq is not None and len(shared_seq) > 1:
        raise InputError(f"{file_of(ds)}: {len(shared_seq)} shared functional group items "
                         "(one expected)")
    shared = shared_seq[0] if shared_seq else None
    pixels: dict[str, Any] = {}
    return [FrameView(ds, k, item, shared, pixels) for k, item in enumerate(per_frame)]


def private_element(ds: Any, group: int, creator: str, element: int) -> Any:
    """The value of private tag ``(group, creator, element)`` in ``ds``; None when absent."""
    try:
        block = ds.private_block(group, creator)
    except (KeyError, ValueError, AttributeError):
        return None
    try:
        return block[element].value if element in block else None
    except Exception:  # a corrupt private value fails to decode in many ways
        return None


def private_float(ds: Any, group: int, creator: str, element: int) -> float | None:
    """A private single float (FL, or 4 raw bytes when the file's VR is implicit), or None
    when absent; an InputError naming the file when present but not one finite number."""
    holders = ds.private_items() if isinstance(ds, FrameView) else [ds]
    for holder in holders:
        value = private_element(holder, group, creator, element)
        if value is None:
            continue
        if isinstance(value, bytes):
            value = struct.unpack("<f", value)[0] if len(value) == 4 else None
        number = _one_float(value)
        if number is None:
            raise InputError(f"{file_of(ds)}: private tag ({group:04X},xx{element:02X}) of "
                             f"{creator!r} is {str(value)[:40]!r}, not one finite number")
        return number
    return None


def _one_float(value: Any) -> float | None:
    try:
        values = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    if values.size != 1 or not np.isfinite(values[0]):
        return None
    return float(values[0])


def image_type(ds: Any) -> list[str]:
    """ImageType (a frame's FrameType) as a list of strings."""
    value = tag_value(ds, "ImageType") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def philips_image_type(ds: Any) -> str | None:
    """A Philips frame's private ImageTypeMR (2005,1011: ``M``, ``P``, ``W``, ``F``, ``FF``...);
    None for other images. The readers use it only where FrameType says nothing."""
    if not isinstance(ds, FrameView):
        return None
    for item in ds.private_items()[:-1]:
        value = private_element(item, 0x2005, PHILIPS_PRIVATE, 0x11)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
