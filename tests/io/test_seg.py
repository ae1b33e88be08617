"""DICOM SEG: the water images it references are those the reader loaded (their headers kept
on the image's metadata), not a second parse of the folder."""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.dicom.write_enhanced import save_enhanced_dicom_study
from vertebrafat.io.seg import save_dicom_seg
from vertebrafat.workflows.loading import load_study


def _labels(image: WaterFatImage) -> np.ndarray:
    labels = np.zeros(image.shape, np.uint8)
    labels[1:4, 4:10, 4:12] = 20
    labels[2:5, 14:20, 4:12] = 24
    return labels


def _water_uids(folder: Path, image: WaterFatImage) -> list[str]:
    """The SOP instance UIDs of the water series' files in ``folder``, sorted."""
    water_uid = next(s.series_uid for s in image.meta.series if s.role == "water")
    found = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")]
    return sorted(str(d.SOPInstanceUID) for d in found if d.SeriesInstanceUID == water_uid)


def _referenced(path: Path) -> list[str]:
    seg = pydicom.dcmread(path)
    items = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    return sorted(str(item.ReferencedSOPInstanceUID) for item in items)


@pytest.mark.parametrize("write", [
    pytest.param(lambda image, out: save_dicom_study(
        image, out, vendor="ge", patient_name="PHANTOM^S", patient_id="S", uid_seed=5),
        id="ge-classic"),
    pytest.param(lambda image, out: save_dicom_study(
        image, out, vendor="philips", patient_name="PHANTOM^S", patient_id="S", uid_seed=5,
        shuffle_names=True), id="philips-classic"),
    pytest.param(lambda image, out: save_enhanced_dicom_study(
        image, out, vendor="siemens", patient_name="PHANTOM^S", patient_id="S", uid_seed=5,
        shuffle_frames=True), id="siemens-enhanced"),
    pytest.param(lambda image, out: save_enhanced_dicom_study(
        image, out, vendor="philips", patient_name="PHANTOM^S", patient_id="S", uid_seed=5),
        id="philips-enhanced-one-object"),
])
def test_seg_from_the_kept_headers_is_the_seg_from_the_files(
    tmp_path: Path, tiny_image: WaterFatImage, write: Callable[[WaterFatImage, Path], object]
) -> None:
    write(tiny_image, tmp_path / "dcm")
    image = load_study(tmp_path / "dcm")
    assert len(image.meta.water_headers) == image.shape[0] == 6
    assert not any("PixelData" in getattr(h, "parent", h) for h in image.meta.water_headers)
    labels = _labels(image)
    save_dicom_seg(labels, image, tmp_path / "dcm", tmp_path / "kept.dcm")
    parsed = dataclasses.replace(image, meta=dataclasses.replace(image.meta, water_headers=()))
    save_dicom_seg(labels, parsed, tmp_path / "dcm", tmp_path / "parsed.dcm")
    assert (tmp_path / "kept.dcm").read_bytes() == (tmp_path / "parsed.dcm").read_bytes()


def test_seg_references_the_loaded_images_after_the_folder_is_gone(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    """The references come from the images the labels were computed on: removing (or
    rewriting) the folder after loading changes nothing; before, the writer parsed the folder
    again and found no water image."""
    save_dicom_study(tiny_image, tmp_path / "dcm", vendor="ge", patient_name="PHANTOM^S",
                     patient_id="S", uid_seed=5)
    image = load_study(tmp_path / "dcm")
    loaded = _water_uids(tmp_path / "dcm", image)
    shutil.rmtree(tmp_path / "dcm")
    save_dicom_seg(_labels(image), image, tmp_path / "dcm", tmp_path / "seg.dcm")
    assert len(loaded) == 6
    assert _referenced(tmp_path / "seg.dcm") == loaded
    assert pydicom.dcmread(tmp_path / "seg.dcm").NumberOfFrames == 6  # L1 on 3, L5 on 3 slices


def test_seg_of_a_study_with_a_truncated_duplicate_water_file(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    """A truncated copy of a water file is skipped by the reader (another file holds its
    slice); the SEG references the six images read. Before, the writer parsed the truncated
    header too and refused: 7 readable slices, labels have 6."""
    save_dicom_study(tiny_image, tmp_path / "dcm", vendor="ge", patient_name="PHANTOM^S",
                     patient_id="S", uid_seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = load_study(tmp_path / "dcm")
    loaded = _water_uids(tmp_path / "dcm", image)
    original = next(p for p in sorted((tmp_path / "dcm").rglob("*.dcm"))
                    if str(pydicom.dcmread(p).SOPInstanceUID) == loaded[2])
    data = original.read_bytes()
    (original.parent / "copy.dcm").write_bytes(data[: int(len(data) * 0.9)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = load_study(tmp_path / "dcm")
    assert image.meta.notes == (f"skipped unreadable file {original.parent / 'copy.dcm'}",)
    save_dicom_seg(_labels(image), image, tmp_path / "dcm", tmp_path / "seg.dcm")
    assert _referenced(tmp_path / "seg.dcm") == loaded


def test_seg_given_another_folder_references_that_folders_images(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    """The kept headers serve only the folder they were read from: a SEG of the same labels
    against a copy whose water images have new SOP instance UIDs references the copy's."""
    save_dicom_study(tiny_image, tmp_path / "a", vendor="ge", patient_name="PHANTOM^S",
                     patient_id="S", uid_seed=5)
    image = load_study(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for k, path in enumerate(sorted((tmp_path / "b").rglob("*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = f"1.2.3.{k + 1}"
        ds.save_as(path)
    save_dicom_seg(_labels(image), image, tmp_path / "b", tmp_path / "seg.dcm")
    copied = _water_uids(tmp_path / "b", image)
    assert len(copied) == 6 and all(uid.startswith("1.2.3.") for uid in copied)
    assert _referenced(tmp_path / "seg.dcm") == copied
