"""Sequences encoded by hand are byte for byte those pydicom writes from datasets: the generic
pieces, and a DICOM SEG's per-frame functional groups from classic and enhanced sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom import encode
from vertebrafat.io.dicom.frames import FrameView
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.dicom.write_enhanced import save_enhanced_dicom_study
from vertebrafat.io.seg import _per_frame_groups
from vertebrafat.workflows.loading import load_study

CHARSET = "ISO_IR 192"


def _pydicom_bytes(keyword: str, items: list[Dataset]) -> bytes:
    """The sequence ``keyword`` of ``items`` as pydicom writes it (explicit VR little endian,
    text in UTF-8)."""
    holder = Dataset()
    setattr(holder, keyword, items)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, holder[keyword], CHARSET)
    return fp.getvalue()


def _item(**attributes: Any) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


@pytest.mark.parametrize(("keyword", "value"), [
    pytest.param("ReferencedSOPInstanceUID", "1.2.3", id="odd-uid-nul-padded"),
    pytest.param("ReferencedSOPInstanceUID", "1.2.34", id="even-uid"),
    pytest.param("ImagePositionPatient", ["-1.50", "1e-05", "12"], id="ds-strings-kept"),
    pytest.param("ImagePositionPatient", [-16.4446, 0.0, 191.034446], id="ds-floats"),
    pytest.param("ReferencedFrameNumber", 7, id="is-int"),
    pytest.param("CodeMeaning", "Wirbelkörper", id="lo-utf8"),
    pytest.param("SpatialLocationsPreserved", "YES", id="cs-odd-space-padded"),
])
def test_element_is_the_element_pydicom_writes(keyword: str, value: Any) -> None:
    ours = encode.sequence("SourceImageSequence", [encode.item(
        encode.element(keyword, value, encodings=CHARSET))])
    assert ours == _pydicom_bytes("SourceImageSequence", [_item(**{keyword: value})])


def test_items_put_their_elements_in_tag_order_and_numbers_are_little_endian() -> None:
    ours = encode.sequence("FrameContentSequence", [
        encode.item(encode.unsigned("DimensionIndexValues", 3, 70000),
                    encode.element("StackID", "1", encodings=CHARSET)),
        encode.item(encode.unsigned("InStackPositionNumber", 2)),
    ])
    theirs = _pydicom_bytes("FrameContentSequence", [
        _item(DimensionIndexValues=[3, 70000], StackID="1"),
        _item(InStackPositionNumber=2),
    ])
    assert ours == theirs
    assert ours[12:20] == bytes.fromhex("feff00e0 1a000000")  # item of 26 bytes, defined length
    assert encode.unsigned("ReferencedSegmentNumber", 258) == bytes.fromhex(
        "6200 0b00 5553 0200 0201")


def _pydicom_frame_groups(source: Any, segment: int, rank: int) -> Dataset:
    """One frame's functional groups built as pydicom datasets (how the SEG writer built them
    before it encoded them itself)."""
    image = _item(ReferencedSOPClassUID=source.SOPClassUID,
                  ReferencedSOPInstanceUID=source.SOPInstanceUID)
    if isinstance(source, FrameView):
        image.ReferencedFrameNumber = source.frame_number
    image.SpatialLocationsPreserved = "YES"
    image.PurposeOfReferenceCodeSequence = [_item(
        CodeValue="121322", CodingSchemeDesignator="DCM",
        CodeMeaning="Source image for image processing operation")]
    derivation = _item(SourceImageSequence=[image], DerivationCodeSequence=[_item(
        CodeValue="113076", CodingSchemeDesignator="DCM", CodeMeaning="Segmentation")])
    return _item(
        DerivationImageSequence=[derivation],
        FrameContentSequence=[_item(DimensionIndexValues=[segment, rank])],
        PlanePositionSequence=[_item(ImagePositionPatient=source.ImagePositionPatient)],
        SegmentIdentificationSequence=[_item(ReferencedSegmentNumber=segment)],
    )


@pytest.mark.parametrize("enhanced", [False, True], ids=["classic", "enhanced"])
def test_per_frame_groups_are_those_pydicom_writes(
    tmp_path: Path, tiny_image: WaterFatImage, enhanced: bool
) -> None:
    write = save_enhanced_dicom_study if enhanced else save_dicom_study
    write(tiny_image, tmp_path / "dcm", vendor="siemens", patient_name="PHANTOM^S",
          patient_id="S", uid_seed=5)
    sources = list(load_study(tmp_path / "dcm").meta.water_headers)
    assert len(sources) == 6
    assert all(isinstance(s, FrameView) == enhanced for s in sources)
    frames = [(0, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 2), (0, 3, 1)]  # slice, segment, rank
    theirs = _pydicom_bytes("PerFrameFunctionalGroupsSequence",
                            [_pydicom_frame_groups(sources[k], n, r) for k, n, r in frames])
    ours = _per_frame_groups(sources, frames)
    assert ours == theirs
    assert ours.count(bytes.fromhex("6200 0b00 5553 0200")) == 5  # one segment number a frame
