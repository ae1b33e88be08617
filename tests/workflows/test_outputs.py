"""A study's output folder: every file, label tables, all-or-nothing writing."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from vertebrafat.core.image import StudyMeta, WaterFatImage
from vertebrafat.io.label_tables import itksnap_label_table, slicer_color_table
from vertebrafat.io.table import load_table
from vertebrafat.workflows import outputs
from vertebrafat.workflows.outputs import write_study_outputs
from vertebrafat.workflows.study import StudyResult, analyse_study, mask_segmenter

AFFINE = np.array(
    [[-2.0, 0, 0, 0], [0, 0, -2.0, 0], [0, -2.0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
)  # axis 0 L, rows I, cols P


def small_result() -> StudyResult:
    labels = np.zeros((5, 30, 12), dtype=np.uint8)
    for k in range(3):
        labels[1:4, 2 + 9 * k : 8 + 9 * k, 2:10] = 1
    ff = np.full(labels.shape, 33.0, dtype=np.float32)
    image = WaterFatImage(np.ones(labels.shape, np.float32), AFFINE, ff=ff,
                          meta=StudyMeta(source="x", format="nifti", subject="S1"))
    return analyse_study(image, mask_segmenter(labels > 0))


def test_all_outputs_are_written(tmp_path: Path) -> None:
    result = small_result()
    paths = write_study_outputs(result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bmf.csv", "bmf.json", "labels.ctbl", "labels.itksnap.txt", "labels.nii.gz",
        "probability.nii.gz", "qc.png",
    ]
    assert set(paths) == {"labels", "probability", "csv", "json", "qc", "itksnap", "slicer"}
    img = nib.load(str(paths["labels"]))
    assert np.array_equal(np.asarray(img.dataobj), result.labelling.labels)
    assert np.allclose(img.affine, AFFINE)
    assert [r.level for r in load_table(paths["csv"])] == ["L3", "L4", "L5"]
    data = json.loads(paths["json"].read_text())
    assert [r["level"] for r in data["rows"]] == ["L3", "L4", "L5"]
    # three bodies, no sacrum: named up from the lowest body, one weak cue, uncertain
    assert data["naming"] == {
        "anchor": "bottom", "confidence": "low", "flags": ["no_sacrum", "uncertain_level"],
        "cues": [{"cue": "lowest_body", "strength": "weak", "verdict": "agrees"}],
        "pieces_not_counted": 0, "cues_ignored": [],
    }
    assert paths["qc"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_same_result_gives_the_same_bytes(tmp_path: Path) -> None:
    result = small_result()
    a = write_study_outputs(result, tmp_path / "a")
    b = write_study_outputs(result, tmp_path / "b")
    for role in ("csv", "json", "qc", "itksnap", "slicer"):
        assert a[role].read_bytes() == b[role].read_bytes(), role


def test_a_failure_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "write_text_atomic", broken)
    with pytest.raises(OSError, match="disk full"):
        write_study_outputs(small_result(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_extra_files_are_moved_in_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[str] = []
    replace = outputs.os.replace

    def record(src: str, dst: Path) -> None:
        if Path(dst).parent.name == "out":  # not the atomic writes into the staging folder
            moved.append(Path(dst).name)
        replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", record)
    paths = write_study_outputs(small_result(), tmp_path / "out",
                                extra={"qc_thumb.jpg": b"thumb", "run.json": b"{}\n"})
    assert moved[-2:] == ["qc_thumb.jpg", "run.json"] and len(moved) == 9
    assert paths["run.json"].read_bytes() == b"{}\n"


def test_thumbnail_is_a_small_jpeg() -> None:
    from io import BytesIO

    from PIL import Image

    from vertebrafat.io.label_tables import thumbnail_bytes

    picture = Image.open(BytesIO(thumbnail_bytes(small_result().qc, width=100)))
    assert picture.format == "JPEG" and picture.width == 100


def test_png_bytes_is_a_png_every_decoder_reads_back_exactly() -> None:
    """The QC picture's encoder: Pillow decodes a random picture to the same pixels, and a one-
    pixel picture is, byte for byte, the canonical 1 x 1 RGB PNG (IHDR CRC 907753DE, IEND CRC
    AE426082) around one IDAT holding the scanline ``00 ff 00 00`` (filter None, red)."""
    import zlib
    from io import BytesIO

    from PIL import Image

    from vertebrafat.io.label_tables import png_bytes

    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(BytesIO(png_bytes(rgb))).convert("RGB")), rgb)
    one = png_bytes(np.array([[[255, 0, 0]]], dtype=np.uint8))
    head = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108020000"
                         "00907753de")
    tail = bytes.fromhex("0000000049454e44ae426082")
    assert one.startswith(head) and one.endswith(tail)
    idat = one[len(head) : -len(tail)]
    length = int.from_bytes(idat[:4], "big")
    assert idat[4:8] == b"IDAT" and len(idat) == 12 + length
    assert zlib.decompress(idat[8 : 8 + length]) == bytes.fromhex("00ff0000")


def test_label_tables_name_and_colour_the_lumbar_levels() -> None:
    itk = itksnap_label_table().splitlines()
    assert '   20   230   25   75        1  1  1    "L1"' in itk
    assert '    0     0    0    0        0  0  0    "Clear Label"' in itk
    slicer = slicer_color_table().splitlines()
    assert "24 L5 245 130 48 255" in slicer
    assert slicer[2] == "0 Background 0 0 0 0"


def dicom_result(folder: Path) -> StudyResult:
    """Three bodies written as a Siemens DICOM study into ``folder``, loaded and measured."""
    from vertebrafat.io.dicom.write import save_dicom_study
    from vertebrafat.workflows.loading import load_study
    from vertebrafat.workflows.study import MaskSegmentation

    labels = np.zeros((6, 40, 16), dtype=np.uint8)
    for k in range(3):
        labels[1:5, 3 + 12 * k : 11 + 12 * k, 3:13] = 1
    water = np.where(labels > 0, 100.0, 10.0).astype(np.float32)
    fat = np.where(labels > 0, 50.0, 90.0).astype(np.float32)  # fat around: FF 90 %
    ff = (100 * fat / (water + fat)).astype(np.float32)
    source = WaterFatImage(water, AFFINE, fat=fat, ff=ff)
    save_dicom_study(source, folder, vendor="siemens", patient_name="TEST^SEG",
                     patient_id="T1", uid_seed=3)
    image = load_study(folder)

    def threshold(im: WaterFatImage) -> MaskSegmentation:
        mask = im.water > 0.5 * float(im.water.max())
        return MaskSegmentation(np.where(mask, 0.75, 0.125).astype(np.float32), mask)

    return analyse_study(image, threshold)


def test_dicom_study_gets_a_dicom_seg(tmp_path: Path) -> None:
    result = dicom_result(tmp_path / "dicom")
    paths = write_study_outputs(result, tmp_path / "out")
    assert paths["seg"].name == "seg.dcm"
    assert [r.level for r in result.table] == ["L3", "L4", "L5"]
    assert [r.ff_mean for r in result.table] == pytest.approx([33.33] * 3, abs=0.05)
    import pydicom

    seg = pydicom.dcmread(paths["seg"])
    assert seg.Modality == "SEG"
    assert sorted(s.SegmentLabel for s in seg.SegmentSequence) == ["L3", "L4", "L5"]


def test_concurrent_writing_gives_each_writers_own_bytes(tmp_path: Path) -> None:
    """The folder writer runs the SEG and the probability map on threads: each file is byte
    for byte what its writer gives alone, one after the other."""
    from vertebrafat.io.nifti import save_labels, save_volume
    from vertebrafat.io.seg import save_dicom_seg
    from vertebrafat.io.table import save_table

    result = dicom_result(tmp_path / "dicom")
    paths = write_study_outputs(result, tmp_path / "out")
    alone = tmp_path / "alone"
    image = result.image
    save_labels(result.labelling.labels, image.affine, alone / "labels.nii.gz")
    save_volume(result.probability, image.affine, alone / "probability.nii.gz", deflate_level=0)
    save_dicom_seg(result.labelling.labels, image, tmp_path / "dicom", alone / "seg.dcm")
    save_table(result.table, alone / "bmf.csv")
    for role in ("labels", "probability", "seg", "csv"):
        assert paths[role].read_bytes() == (alone / paths[role].name).read_bytes(), role
    from PIL import Image

    with Image.open(paths["qc"]) as picture:  # deflate level 1: the same pixels
        assert np.array_equal(np.asarray(picture.convert("RGB")), result.qc)
