"""Stored pixel values read directly for plain images: the same values and type as pydicom's
``pixel_array``; every other layout (or fault) left to pydicom, its values and its errors."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage

from vertebrafat.io.dicom.files import _plain_layout, stored_array


def _image(rows: int = 3, cols: int = 3, *, bits: int = 16, stored: int | None = None,
           signed: int = 0, syntax: str = ExplicitVRLittleEndian, frames: int | None = None,
           extra: bytes = b"", drop: tuple[str, ...] = ()) -> Any:
    """A one-sample image written to bytes and read back as pydicom reads a file; values
    0, 1, 2... wrapping at the stored range (as signed when ``signed``), every bit set in the
    last pixel."""
    dtype = np.dtype(f"<{'ui'[signed]}{bits // 8}")
    values = (np.arange(rows * cols * (frames or 1)) % 100).astype(dtype)
    values[-1] = -1 if signed else np.iinfo(dtype).max
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, "1.2.3.4"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored = bits, stored or bits
    ds.HighBit, ds.PixelRepresentation = (stored or bits) - 1, signed
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = values.tobytes() + extra
    for keyword in drop:
        delattr(ds, keyword)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


@pytest.mark.parametrize("ds", [
    pytest.param(_image(), id="16-bit-unsigned"),
    pytest.param(_image(signed=1), id="16-bit-signed"),
    pytest.param(_image(bits=8), id="8-bit-odd-length-padded"),
    pytest.param(_image(bits=32, signed=1), id="32-bit-signed"),
    pytest.param(_image(syntax=ImplicitVRLittleEndian), id="implicit-vr"),
    pytest.param(_image(frames=1), id="number-of-frames-1"),
])
def test_plain_images_are_read_directly_as_pydicom_decodes_them(ds: Any) -> None:
    assert _plain_layout(ds) == (f"<{'ui'[ds.PixelRepresentation]}{ds.BitsAllocated // 8}", 3, 3)
    ours = stored_array(ds)
    theirs = ds.pixel_array
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape == (3, 3)
    np.testing.assert_array_equal(ours, theirs)
    assert ours[2, 2] == (-1 if ds.PixelRepresentation else 2 ** ds.BitsAllocated - 1)


def test_unused_high_bits_are_left_to_pydicom() -> None:
    """12 of 16 bits stored: pydicom clears the 4 unused bits of 0xFFFF, giving 4095."""
    ds = _image(stored=12)
    assert _plain_layout(ds) is None
    assert stored_array(ds)[2, 2] == 4095


@pytest.mark.parametrize(("ds", "error", "match"), [
    pytest.param(_image(extra=b"\0\0"), None, "2 bytes of excess padding", id="excess-bytes"),
    pytest.param(_image(frames=2), None, None, id="two-frames"),
    pytest.param(_image(drop=("PhotometricInterpretation",)), AttributeError,
                 "Photometric Interpretation", id="no-photometric-interpretation"),
    pytest.param(_image(drop=("SamplesPerPixel",)), AttributeError, "Samples per Pixel",
                 id="no-samples-per-pixel"),
])
def test_other_layouts_get_pydicoms_values_warnings_and_errors(
    ds: Any, error: type[Exception] | None, match: str | None
) -> None:
    assert _plain_layout(ds) is None
    if error is not None:
        with pytest.raises(error, match=match):
            stored_array(ds)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = stored_array(ds)
    assert (match is None) == (not caught)
    if match is not None:
        assert match in str(caught[0].message)
    np.testing.assert_array_equal(ours, ds.pixel_array)


def test_truncated_pixel_data_fails_as_in_pydicom() -> None:
    ds = _image(rows=4, cols=4)
    ds.PixelData = ds.PixelData[:20]
    assert _plain_layout(ds) is None
    with pytest.raises(ValueError, match=r"less than expected \(20 vs 32 bytes\)"):
        stored_array(ds)
