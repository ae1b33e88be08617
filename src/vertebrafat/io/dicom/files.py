"""Which files below a folder are DICOM images, told by content (any name, any extension):
each file opened once, classified (image, enhanced multi-frame, truncated, unplaced...), and
for the cohort's discovery, its StudyInstanceUID from the header alone.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.io.dicom.frames import FrameView, frames_of, is_enhanced
from vertebrafat.io.dicom.tags import file_of

# Explicit and Implicit VR Little Endian: pixel data stored as is
_NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"})


def dicom_files(folder: Path) -> list[Path]:
    """The files a DICOM study folder is made of: every file at any depth below ``folder``,
    whatever its name or extension, hidden ones (``.name``) left out; sorted. Symbolic links
    to folders are followed once (a folder reached twice is read once)."""
    seen: set[str] = set()
    found = []
    for here, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        found += [Path(here) / f for f in files if not f.startswith(".")
                  and os.path.isfile(os.path.join(here, f))]
    return sorted(found)


def _open(path: Path, *, header_only: bool = False) -> tuple[str, Any]:
    """``(kind, dataset)`` by content, without decoding pixels: kind is image, enhanced
    (multi-frame with per-frame functional groups), not-dicom, unreadable, unplaced (pixels but
    no position), no-pixels (position but no pixels) or other (DICOM that is no image:
    DICOMDIR, reports). ``header_only`` leaves values over 1 KB (the pixel data) unread."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, defer_size="1 KB" if header_only else None)
    except InvalidDicomError:
        return "not-dicom", None
    except Exception:  # truncated or corrupt file: pydicom raises many types
        return "unreadable", None
    enhanced = is_enhanced(ds)
    has_pixels, has_position = "PixelData" in ds, enhanced or "ImagePositionPatient" in ds
    if not has_pixels and _image_storage(ds):  # cut before its pixels, or before its UIDs
        usable = "SeriesInstanceUID" in ds and not enhanced
        return ("no-pixels", ds) if usable else ("unreadable", None)
    if not (has_pixels and has_position):
        return ("other" if not (has_pixels or has_position) else
                "unplaced" if has_pixels else "no-pixels"), ds
    return ("enhanced" if enhanced else "image"), ds


def image_study_uid(path: Path) -> str | None:
    """The StudyInstanceUID of a DICOM image file as the reader counts images (header only);
    ``""`` for a DICOM file that cannot be parsed or names no study, None for a file that is
    no DICOM image (not DICOM, or DICOM without pixel data)."""
    try:
        kind, ds = _open(path, header_only=True)
    except InputError:  # a SOP class UID that cannot be decoded: the reader will name it
        return ""
    if kind == "unreadable":
        return ""
    if kind not in ("image", "enhanced", "unplaced"):
        return None
    return str(getattr(ds, "StudyInstanceUID", ""))


def read_image_file(path: Path) -> tuple[str, Any]:
    """``(kind, dataset)`` as :func:`_open` says, the pixels of an image decoded (a plain
    image's byte count checked: :func:`stored_array`): a truncated file fails there (kind
    ``truncated``; an enhanced object is then ``unreadable``), and an enhanced object comes as
    its list of frames (:func:`vertebrafat.io.dicom.frames.frames_of`; ``unreadable`` when its
    functional groups contradict its frames). Unreadable and truncated files are warned
    about."""
    kind, ds = _open(path)
    if kind == "unreadable":
        warnings.warn(f"{path}: unreadable DICOM file skipped", stacklevel=3)
    if kind not in ("image", "enhanced"):
        return kind, ds
    try:
        stored_array(ds)  # decode now: a truncated file fails here
    except Exception:
        warnings.warn(f"{path}: truncated DICOM pixel data, file skipped", stacklevel=3)
        return ("unreadable", None) if kind == "enhanced" else ("truncated", ds)
    if kind == "image":
        return kind, ds
    try:
        frames = frames_of(ds)
    except InputError as exc:  # functional groups that contradict the frames: unusable
        warnings.warn(f"{exc}; file skipped", stacklevel=3)
        return "unreadable", None
    return ("enhanced", frames) if frames else ("other", None)


def stored_array(ds: Any) -> npt.NDArray[Any]:
    """``ds.pixel_array``; for the plainest images (native little endian, one frame of one
    sample, every allocated bit stored, the exact number of bytes) a read-only view of the
    Pixel Data bytes, the same values without pydicom's decoder machinery (a tenth of the
    time).

    Raises
    ------
    Exception
        Whatever pydicom's decoding raises (truncated pixel data, no decoder...).
    """
    plain = _plain_layout(ds)
    if plain is None:
        return ds.pixel_array
    dtype, rows, cols = plain
    return np.frombuffer(ds.PixelData, dtype, count=rows * cols).reshape(rows, cols)


def _plain_layout(ds: Any) -> tuple[str, int, int] | None:
    """(dtype, rows, cols) of an image :func:`stored_array` reads itself: a layout pydicom
    decodes by reading the bytes as they are, every element it requires present and valid, no
    excess bytes it would warn about; None for any other (pydicom decodes, or says why not)."""
    meta = getattr(ds, "file_meta", None)
    if (isinstance(ds, FrameView) or meta is None
            or meta.get("TransferSyntaxUID") not in _NATIVE_LITTLE_ENDIAN):
        return None
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits, sign = int(ds.BitsAllocated), int(ds.PixelRepresentation)
        plain = (bits in (8, 16, 32) and int(ds.BitsStored) == bits and sign in (0, 1)
                 and int(ds.SamplesPerPixel) == 1 and 0 < rows < 2**16 and 0 < cols < 2**16
                 and ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
                 and ("NumberOfFrames" not in ds or ds.NumberOfFrames == 1)
                 and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds)
        data = ds.get("PixelData")
    except Exception:  # a missing or undecodable element: pydicom says what is wrong
        return None
    size = rows * cols * bits // 8
    if not plain or not isinstance(data, bytes) or len(data) not in (size, size + size % 2):
        return None
    return f"<{'ui'[sign]}{bits // 8}", rows, cols


def release_pixels(images: Sequence[Any]) -> None:
    """Drop the pixel data, raw and decoded, of images whose values have been read (datasets
    of :func:`read_image_file`, or frames of enhanced objects), keeping their headers."""
    for image in images:
        if isinstance(image, FrameView):
            image.release_pixels()
        elif "PixelData" in image:
            del image.PixelData


def _image_storage(ds: Any) -> bool:
    """Whether the file says it is an image (its SOP class is one of the Image Storage ones)."""
    from pydicom.uid import UID

    try:
        meta = getattr(ds, "file_meta", None)
        uid = (meta.get("MediaStorageSOPClassUID") if meta is not None else None) or ds.get(
            "SOPClassUID")
    except Exception:  # a corrupt UID fails to decode in many ways
        raise InputError(f"{file_of(ds)}: SOP class UID cannot be decoded") from None
    return bool(uid) and "Image Storage" in UID(str(uid)).name
