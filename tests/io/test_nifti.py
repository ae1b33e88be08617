"""NIfTI studies, label round trip, DICOM SEG round trip, and the real MyoSegmenTUM files."""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from conftest import myo_subjects
from vertebrafat.core.errors import GeometryError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.nifti import save_labels, save_volume
from vertebrafat.io.seg import save_dicom_seg
from vertebrafat.workflows.loading import load_study


def _save(folder: Path, name: str, data: np.ndarray, affine: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), folder / name)
    return folder / name


def test_nifti_folder_with_roles_and_study_card(tmp_path: Path,
                                                tiny_image: WaterFatImage) -> None:
    aff = tiny_image.affine
    _save(tmp_path, "water.nii.gz", tiny_image.water, aff)
    _save(tmp_path, "fat.nii", tiny_image.fat, aff)  # type: ignore[arg-type]
    assert tiny_image.ff is not None
    _save(tmp_path, "ff.nii.gz", tiny_image.ff / 100, aff)
    (tmp_path / "study.json").write_text(json.dumps({"subject": "S7", "scan": "2"}))
    image = load_study(tmp_path)
    assert image.channels == ("water", "fat", "ff")
    assert image.meta.ff_scale == 1.0
    assert (image.meta.subject, image.meta.scan) == ("S7", "2")
    np.testing.assert_allclose(image.ff, tiny_image.ff, atol=1e-4)  # type: ignore[arg-type]
    np.testing.assert_allclose(image.affine, aff, atol=1e-6)


def test_ff_derived_from_water_and_fat(tmp_path: Path) -> None:
    aff = np.diag([4.0, 1.0, 1.0, 1.0])
    _save(tmp_path, "water.nii.gz", np.full((3, 4, 4), 30.0, np.float32), aff)
    _save(tmp_path, "fat.nii.gz", np.full((3, 4, 4), 10.0, np.float32), aff)
    image = load_study(tmp_path)
    assert image.meta.ff_scale == "derived"
    np.testing.assert_allclose(image.ff, 25.0)  # type: ignore[arg-type]


def test_explicit_paths_and_water_only(tmp_path: Path) -> None:
    aff = np.diag([4.0, 1.0, 1.0, 1.0])
    w = _save(tmp_path / "a", "anything.nii.gz", np.ones((3, 4, 4), np.float32), aff)
    image = load_study(None, water=w)
    assert image.channels == ("water",)
    assert load_study(w).channels == ("water",)


def test_labels_round_trip_keeps_affine_and_bytes(tmp_path: Path) -> None:
    labels = np.zeros((3, 5, 6), np.uint8)
    labels[1, 2:4, 1:5] = 22
    aff = np.array([[0.0, 0, -1.2, 5], [3.5, 0, 0, -2], [0, 1.1, 0, 7], [0, 0, 0, 1]])
    save_labels(labels, aff, tmp_path / "a.nii.gz")
    save_labels(labels, aff, tmp_path / "b.nii.gz")
    back: Any = nib.load(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(np.asarray(back.dataobj), labels)
    np.testing.assert_allclose(back.affine, aff, atol=1e-6)
    assert back.get_data_dtype() == np.uint8
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()
    # gzip header: deflate, no name, mtime 0, OS 255 (the same bytes on every platform)
    assert (tmp_path / "a.nii.gz").read_bytes()[:10] == bytes.fromhex("1f8b08000000000004ff")


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rx @ ry @ rz


@pytest.mark.parametrize("case", range(6))
def test_nifti_bytes_equal_what_nibabel_writes(tmp_path: Path, case: int) -> None:
    # the header is packed by hand (no nibabel import when writing); nibabel is the oracle:
    # axis-aligned, oblique, left-handed (qfac -1) and sheared affines, four dtypes
    rng = np.random.default_rng(case)
    aff = np.eye(4)
    if case == 0:
        aff = np.array([[-1.4, 0, 0, 10.0], [0, 0, -1.25, 50.0], [0, -1.25, 0, 60.0], [0, 0, 0, 1]])
    elif case == 5:
        aff[0, 1] = 0.1  # shear: the qform drops it, the sform keeps it
    else:
        flips = rng.choice([-1.0, 1.0], 3)
        aff[:3, :3] = _rotation(*rng.uniform(-3, 3, 3)) @ np.diag(rng.uniform(0.5, 4, 3)) * flips
        aff[:3, 3] = rng.normal(0, 50, 3)
    arrays = [(rng.integers(0, 30, (3, 4, 5)).astype(np.uint8), None),
              (rng.random((3, 4, 5)).astype(np.float32), None),
              (rng.integers(-300, 300, (3, 4, 5)).astype(np.int16), 0.1),
              (rng.random((3, 4, 5)), None)]
    for arr, slope in arrays:
        img = nib.Nifti1Image(arr, aff)
        if slope is not None:
            img.header.set_slope_inter(slope, 0.0)
        img.set_qform(aff, code=1)
        img.set_sform(aff, code=1)
        save_volume(arr, aff, tmp_path / "x.nii", slope=slope)
        assert (tmp_path / "x.nii").read_bytes() == img.to_bytes(), (case, arr.dtype)


def test_deflate_level_zero_stores_the_nifti_bytes_in_the_gzip_stream(tmp_path: Path) -> None:
    """Level 0: one stored deflate block (RFC 1951: final-block bit, type 00, LEN, ~LEN) holds
    the very bytes of the uncompressed ``.nii``; any gzip reader gets the same volume back."""
    rng = np.random.default_rng(0)
    arr, aff = rng.random((3, 4, 5)).astype(np.float32), np.diag([1.5, 2.0, 2.5, 1.0])
    save_volume(arr, aff, tmp_path / "x.nii")
    save_volume(arr, aff, tmp_path / "x.nii.gz", deflate_level=0)
    raw, gz = (tmp_path / "x.nii").read_bytes(), (tmp_path / "x.nii.gz").read_bytes()
    n = len(raw)  # 352 + 240 bytes: one block
    block = bytes([1]) + n.to_bytes(2, "little") + (0xFFFF - n).to_bytes(2, "little") + raw
    assert gz[:10] == bytes.fromhex("1f8b08000000000004ff")
    assert gz[10:-8] == block
    assert gz[-8:] == zlib.crc32(raw).to_bytes(4, "little") + n.to_bytes(4, "little")
    back: Any = nib.load(tmp_path / "x.nii.gz")
    np.testing.assert_array_equal(np.asarray(back.dataobj), arr)


def test_save_volume_refuses_what_nifti_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"x\.nii: cannot store dtype complex64"):
        save_volume(np.zeros((2, 2, 2), np.complex64), np.eye(4), tmp_path / "x.nii")
    with pytest.raises(ValueError, match=r"x\.nii: expected a 3D array"):
        save_volume(np.zeros((2, 2)), np.eye(4), tmp_path / "x.nii")
    with pytest.raises(GeometryError, match=r"x\.nii: the affine must be a finite, invertible"):
        save_volume(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]), tmp_path / "x.nii")
    assert not (tmp_path / "x.nii").exists()


def test_dicom_seg_round_trip(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    import highdicom as hd
    import pydicom

    save_dicom_study(tiny_image, tmp_path / "dcm", vendor="philips", patient_name="PHANTOM^S",
                     patient_id="S", uid_seed=5, shuffle_names=True)
    image = load_study(tmp_path / "dcm")
    labels = np.zeros(image.shape, np.uint8)
    labels[1:4, 4:10, 4:12] = 20
    labels[2:5, 14:20, 4:12] = 24
    save_dicom_seg(labels, image, tmp_path / "dcm", tmp_path / "seg.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["L1", "L5"]
    water_uid = next(s.series_uid for s in image.meta.series if s.role == "water")
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == water_uid
    # Rebuild the label map frame by frame from the referenced source instances.
    sop_to_index = {}
    for p in sorted((tmp_path / "dcm").rglob("*.dcm")):
        d = pydicom.dcmread(p, stop_before_pixels=True)
        if d.SeriesInstanceUID == water_uid:
            sop_to_index[d.SOPInstanceUID] = d
    positions = {uid: np.asarray(d.ImagePositionPatient) for uid, d in sop_to_index.items()}
    lps_first = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    step = lps_first[:3, 0]
    rebuilt = np.zeros_like(labels)
    value_of = {1: 20, 2: 24}
    for frame, item in zip(ds.pixel_array, ds.PerFrameFunctionalGroupsSequence, strict=True):
        number = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = round(float(np.dot(positions[uid] - lps_first[:3, 3], step) / np.dot(step, step)))
        rebuilt[k][frame > 0] = value_of[number]
    np.testing.assert_array_equal(rebuilt, labels)
    # highdicom, an independent reader, decodes the same label map through the references
    ordered = sorted(sop_to_index, key=lambda u: float(np.dot(positions[u], step)))
    by_highdicom = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=ordered, combine_segments=True, relabel=True
    )
    np.testing.assert_array_equal(np.array([0, 20, 24])[by_highdicom], labels)
    save_dicom_seg(labels, image, tmp_path / "dcm", tmp_path / "seg2.dcm")
    assert (tmp_path / "seg.dcm").read_bytes() == (tmp_path / "seg2.dcm").read_bytes()


def test_dicom_seg_refuses_labels_that_do_not_fit_the_source_grid(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    """Rows and columns come from the label map; a map (and image) narrower than the water
    series it references is refused, not written."""
    save_dicom_study(tiny_image, tmp_path / "dcm", vendor="ge", patient_name="PHANTOM^S",
                     patient_id="S", uid_seed=5)
    image = load_study(tmp_path / "dcm")
    cropped = np.ascontiguousarray(image.water[:, :, :-3])
    swapped = dataclasses.replace(image, water=cropped, fat=None, ff=None, r2star=None)
    labels = np.zeros(swapped.shape, np.uint8)
    labels[1:3, 4:10, 4:12] = 22
    with pytest.raises(GeometryError, match="labels are"):
        save_dicom_seg(labels, swapped, tmp_path / "dcm", tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_every_myosegmentum_subject_loads() -> None:
    subjects = myo_subjects()
    assert len(subjects) == 30
    for folder in subjects:
        image = load_study(folder)
        assert image.shape == (77, 224, 224), folder
        assert image.spacing_mm == pytest.approx((1.0, 1.0, 1.0))
        assert image.channels == ("water",)
        lab_img: Any = nib.load(folder / "labels.nii.gz")
        labels = np.asarray(lab_img.dataobj)
        assert set(np.unique(labels)) <= {0, 20, 21, 22, 23, 24}, folder
        assert set(np.unique(labels)) >= {20, 24}, folder
