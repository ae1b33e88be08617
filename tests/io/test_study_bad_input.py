"""Every bad-input case of the foundation issue: one line naming the file, exit 2, no output."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from vertebrafat.cli import main
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.workflows.loading import load_study


def _fails(study: Path | str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
           *extra: str) -> None:
    out = tmp_path / "out"
    assert main(["segment", str(study), str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def _ge(image: WaterFatImage, folder: Path, seed: int = 1) -> Path:
    save_dicom_study(image, folder, vendor="ge", patient_name="PHANTOM^B", patient_id="B",
                     uid_seed=seed)
    return folder


def _nifti(folder: Path, **volumes: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for role, data in volumes.items():
        nib.save(nib.Nifti1Image(data, np.diag([4.0, 1.0, 1.0, 1.0])), folder / f"{role}.nii.gz")
    return folder


def test_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(tmp_path / "nope", "nope: no such file or folder", tmp_path, capsys)


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", "empty: empty folder", tmp_path, capsys)


def test_non_dicom_files_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("hello")
    (tmp_path / "s" / "scan.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 300)
    _fails(tmp_path / "s", "no DICOM files (2 files, none is DICOM)", tmp_path, capsys)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 600])


def test_truncated_extra_copy_is_skipped_with_warning(tmp_path: Path,
                                                       tiny_image: WaterFatImage) -> None:
    study = _ge(tiny_image, tmp_path / "s")
    first = sorted((study / "1001").iterdir())[2]
    shutil.copy(first, study / "1001" / "copy_of_slice.dcm")
    _truncate(study / "1001" / "copy_of_slice.dcm")
    with pytest.warns(UserWarning, match="copy_of_slice.dcm"):
        image = load_study(study)
    assert image.shape == (6, 32, 32)
    assert any("copy_of_slice.dcm" in n for n in image.meta.notes)


def test_truncated_slice_is_an_error(tmp_path: Path, tiny_image: WaterFatImage,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    study = _ge(tiny_image, tmp_path / "s")
    victim = sorted((study / "1001").iterdir())[0]
    _truncate(victim)
    # the reader's "file skipped" warning is not printed: the one error line says it all
    _fails(study, f"{victim.name}: unreadable DICOM file and its slice is missing",
           tmp_path, capsys)


def test_no_water_series(tmp_path: Path, tiny_image: WaterFatImage,
                         capsys: pytest.CaptureFixture[str]) -> None:
    study = _ge(tiny_image, tmp_path / "s")
    shutil.rmtree(study / "1001")
    _fails(study, "no water series found", tmp_path, capsys)


def test_two_water_series_need_a_choice(tmp_path: Path, tiny_image: WaterFatImage,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    study = _ge(tiny_image, tmp_path / "s")
    save_dicom_study(tiny_image, study / "siemens", vendor="siemens", patient_name="P^B",
                     patient_id="B", uid_seed=2)
    _fails(study, "--series water=NUMBER", tmp_path, capsys)
    chosen = load_study(study, series={"water": 5, "fat": 6, "ff": 7, "r2star": 8})
    assert {s.series_number for s in chosen.meta.series if s.role != "unused"} >= {5, 6, 7, 8}


def test_roles_with_different_geometry(tmp_path: Path, tiny_image: WaterFatImage,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    study = _ge(tiny_image, tmp_path / "s")
    moved = tiny_image.affine.copy()
    moved[:3, 3] += 15.0
    _ge(dataclasses.replace(tiny_image, affine=moved), tmp_path / "other")
    shutil.rmtree(study / "1101")
    shutil.copytree(tmp_path / "other" / "1101", study / "1101")
    _fails(study, "have different geometry", tmp_path, capsys)


def test_non_sagittal(tmp_path: Path, tiny_image: WaterFatImage,
                      capsys: pytest.CaptureFixture[str]) -> None:
    axial = np.array([[1.2, 0, 0, 0], [0, 1.1, 0, 0], [0, 0, 4.0, 0], [0, 0, 0, 1.0]])
    axial = axial[:, [2, 1, 0, 3]]  # slice axis (array axis 0) along S-I
    study = _ge(dataclasses.replace(tiny_image, affine=axial), tmp_path / "s")
    _fails(study, "non-sagittal acquisition (slice axis is cranio-caudal (axial))", tmp_path,
           capsys)
    assert load_study(study, allow_orientation=True).shape == (6, 32, 32)


def test_nifti_with_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    water = np.ones((4, 8, 8), np.float32)
    water[0, 0, :3] = np.nan
    water[1, 1, 1] = np.inf
    study = _nifti(tmp_path / "s", water=water)
    _fails(study, "water.nii.gz: 4 voxels are NaN or infinite", tmp_path, capsys)


def test_2d_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8), np.float32), np.eye(4)), path)
    _fails(path, "slice.nii.gz: expected a 3D volume, got shape (8, 8)", tmp_path, capsys)


def test_ff_scale_ambiguous(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ff = np.linspace(0, 8, 4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    study = _nifti(tmp_path / "s", water=np.ones((4, 8, 8), np.float32), ff=ff)
    _fails(study, "ff.nii.gz: FF scale is ambiguous", tmp_path, capsys)
    assert load_study(study, ff_scale=100).ff.max() == pytest.approx(8.0)  # type: ignore[union-attr]


def test_measure_refuses_nan_in_the_ff_map(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    ff = np.full((4, 8, 8), 90.0, np.float32)
    ff[1, 2, 3] = np.nan
    ff[2, 2, 3] = -np.inf
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[1:3, 2:6, 2:6] = 20
    _nifti(tmp_path / "m", ff=ff, labels=labels)
    out = tmp_path / "bmf.csv"
    folder = tmp_path / "m"
    assert main(["measure", str(folder / "ff.nii.gz"), str(folder / "labels.nii.gz"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'm' / 'ff.nii.gz'}: 2 voxels are NaN or infinite"
    assert not out.exists()


def test_ff_stored_times_three_is_refused_not_read_as_permille(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ff = np.linspace(0, 99, 4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    study = _nifti(tmp_path / "s", water=np.ones((4, 8, 8), np.float32), ff=3 * ff)
    _fails(study, "ff.nii.gz: FF scale is ambiguous (99.9th percentile 296.7 is not within "
           "0.5-1.5 times a full scale", tmp_path, capsys)


def test_coronal_nifti_is_refused_whatever_its_axis_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # thick (5 mm) slices along antero-posterior, stored in-plane first as dcm2niix does
    coronal = np.array([[0.8, 0, 0, 0], [0, 0, 5.0, 0], [0, 0.8, 0, 0], [0, 0, 0, 1.0]])
    folder = tmp_path / "s"
    folder.mkdir()
    nib.save(nib.Nifti1Image(np.ones((40, 50, 6), np.float32), coronal), folder / "water.nii.gz")
    _fails(folder, "non-sagittal acquisition (thick slices of 5 mm are antero-posterior "
           "(coronal), left-right voxels 0.8 mm)", tmp_path, capsys)
    # the same slab stored sagittally (thick slices along left-right) in that order is accepted
    sagittal = coronal[:, [1, 0, 2, 3]][[1, 0, 2, 3]]
    nib.save(nib.Nifti1Image(np.ones((40, 50, 6), np.float32), sagittal), folder / "water.nii.gz")
    assert load_study(folder).shape == (6, 40, 50)


def test_a_file_named_by_its_role_takes_the_folder_as_subject(tmp_path: Path) -> None:
    study = _nifti(tmp_path / "sub07", water=np.ones((4, 8, 8), np.float32))
    assert load_study(study / "water.nii.gz").meta.subject == "sub07"
    (study / "water.nii.gz").rename(study / "sub07_T1_W.nii.gz")
    assert load_study(study / "sub07_T1_W.nii.gz").meta.subject == "sub07_T1_W"
