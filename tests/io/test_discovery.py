"""Study discovery (io/discovery.py): the readers' rule on real-looking folder layouts, and the
input fingerprint that resume compares."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dcm2niix import save_dcm2niix_study
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.discovery import (
    FoundStudy,
    find_study_folders,
    input_files,
    same_inputs,
    study_files,
)
from vertebrafat.io.nifti import save_volume


def _dicom(image: WaterFatImage, folder: Path, *, seed: int, vendor: str = "ge") -> None:
    save_dicom_study(image, folder, vendor=vendor, patient_name="T^T",  # type: ignore[arg-type]
                     patient_id=f"T{seed}", uid_seed=seed)


def _flatten_without_extensions(folder: Path) -> None:
    """GE's way: every series' files in one folder, names without an extension."""
    for k, f in enumerate(sorted(folder.rglob("*.dcm"))):
        f.rename(folder / f"MRDC{k:05d}")
    for sub in [p for p in folder.iterdir() if p.is_dir()]:
        sub.rmdir()


def _nifti(image: WaterFatImage, folder: Path) -> None:
    save_volume(image.water, image.affine, folder / "water.nii.gz")
    save_volume(image.fat, image.affine, folder / "fat.nii.gz")  # type: ignore[arg-type]


def _rel(root: Path, studies: tuple[FoundStudy, ...]) -> list[tuple[str, str]]:
    return [(s.path.relative_to(root).as_posix() or ".", s.format) for s in studies]


def test_mixed_layouts_each_study_once(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    root = tmp_path / "root"
    _dicom(tiny_image, root / "ge_flat", seed=1)
    _flatten_without_extensions(root / "ge_flat")
    _dicom(tiny_image, root / "site" / "sub02", seed=2, vendor="siemens")  # series sub-folders
    _nifti(tiny_image, root / "P003")
    _dicom(tiny_image, root / "P003" / "dicom-ge", seed=3)  # phantom layout: a study of its own
    save_dcm2niix_study(tiny_image, root / "conv", vendor="ge", folder_name="conv")
    (root / "broken").mkdir()
    (root / "broken" / "water.nii.gz").write_bytes(b"not a nifti file")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no study here\n")
    _nifti(tiny_image, tmp_path / "elsewhere" / "S9")
    os.symlink(tmp_path / "elsewhere" / "S9", root / "linked")
    os.symlink(root, root / "site" / "loop")
    os.symlink(tmp_path / "gone", root / "dangling")

    found = find_study_folders(root)

    assert _rel(root, found.studies) == [
        ("P003", "nifti"), ("P003/dicom-ge", "dicom"), ("broken", "nifti"), ("conv", "nifti"),
        ("dangling", "unknown"), ("ge_flat", "dicom"), ("linked", "nifti"),
        ("site/sub02", "dicom"),
    ]
    dangling = found.studies[4]
    assert dangling.error == f"{root / 'dangling'}: dangling symbolic link (to {tmp_path / 'gone'})"
    assert found.duplicates == ((root / "site" / "loop", root),)
    assert len(study_files(found.studies[5])) == 4 * 6  # water, fat, FF, R2* of 6 slices


def test_a_study_with_series_in_sub_folders_may_be_the_root(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    _dicom(tiny_image, tmp_path, seed=4, vendor="philips")
    assert _rel(tmp_path, find_study_folders(tmp_path).studies) == [(".", "dicom")]


def test_two_studies_in_one_parent_are_two(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    _dicom(tiny_image, tmp_path / "exam" / "a", seed=5)
    _dicom(tiny_image, tmp_path / "exam" / "b", seed=6)
    assert _rel(tmp_path, find_study_folders(tmp_path).studies) == [
        ("exam/a", "dicom"), ("exam/b", "dicom")]


def test_excluded_output_folder_is_not_searched(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    _nifti(tiny_image, tmp_path / "P1")
    _nifti(tiny_image, tmp_path / "out" / "P1")  # looks like a study: the cohort's own output
    found = find_study_folders(tmp_path, exclude=[tmp_path / "out"])
    assert _rel(tmp_path, found.studies) == [("P1", "nifti")]
    assert found.duplicates == ()


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: p.mkdir(), id="empty-folder"),
    pytest.param(lambda p: (p.mkdir(), (p / "a.txt").write_text("x")), id="no-image"),
])
def test_no_study_is_one_error(tmp_path: Path, make: object) -> None:
    root = tmp_path / "root"
    make(root)  # type: ignore[operator]
    with pytest.raises(InputError, match=f"^{root}: no study found"):
        find_study_folders(root)
    with pytest.raises(InputError, match="not a folder"):
        find_study_folders(tmp_path / "absent")


def test_inputs_compare_by_content_when_times_differ(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    _nifti(tiny_image, tmp_path / "S")
    (tmp_path / "S" / "study.json").write_text('{"subject": "S"}\n')
    (tmp_path / "S" / "notes.txt").write_text("not an input\n")
    study = FoundStudy(tmp_path / "S", "nifti")
    recorded = input_files(study, content=True)
    assert [f.path for f in recorded] == ["fat.nii.gz", "study.json", "water.nii.gz"]
    assert all(len(f.sha256) == 64 for f in recorded)
    os.utime(tmp_path / "S" / "water.nii.gz", ns=(1, 1))  # touched: same bytes
    (tmp_path / "S" / "notes.txt").write_text("edited, not an input\n")
    assert same_inputs(recorded, study)
    shutil.copy(tmp_path / "S" / "fat.nii.gz", tmp_path / "S" / "water.nii.gz")  # same size
    assert not same_inputs(recorded, study)
    _nifti(tiny_image, tmp_path / "S")
    (tmp_path / "S" / "ff.nii.gz").write_bytes(np.zeros(3).tobytes())  # a new role file
    assert not same_inputs(recorded, study)


def test_a_linked_series_is_read_once(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    from vertebrafat.io.dicom.files import dicom_files

    _dicom(tiny_image, tmp_path / "elsewhere", seed=7)
    study = tmp_path / "S1"
    study.mkdir()
    for series in sorted((tmp_path / "elsewhere").iterdir()):
        os.symlink(series, study / series.name)  # series kept on another disk
    os.symlink(tmp_path / "elsewhere", study / "again")  # the same series a second time
    assert len(dicom_files(study)) == 4 * 6
    found = find_study_folders(tmp_path)  # "elsewhere" was reached first through S1/again
    assert _rel(tmp_path, found.studies) == [("S1", "dicom")]
    assert (tmp_path / "elsewhere", study / "again") in found.duplicates
