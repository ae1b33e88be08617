"""Multi-echo readers (io/echoes): the ISMRM toolbox .mat, the phantom's echoes.npz, per-echo
NIfTI folders (dcm2niix naming) and 4D complex NIfTI, with echo order and phase scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.io.echoes import is_echo_study, read_echoes
from vertebrafat.io.nifti import save_volume

TE = (1.2e-3, 2.2e-3, 3.2e-3)


def _echoes(shape: tuple[int, int, int] = (3, 5, 4), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(len(TE), *shape)) + 1j * rng.normal(size=(len(TE), *shape))
            ).astype(np.complex64)


def _save_mat(path: Path, images: np.ndarray, **extra: object) -> None:
    params = {"images": images, "TE": np.array([TE]), "FieldStrength": 3.0,
              "PrecessionIsClockwise": 0, **extra}
    scipy.io.savemat(str(path), {"imDataParams": params})


def test_mat_layout_is_brought_to_echoes_slices_rows_cols(tmp_path: Path) -> None:
    """images (rows, cols, slices, coils=1, echoes) -> (echoes, slices, rows, cols), TE in s,
    the file's field strength and precession flag; no voxelSize: geometry unknown."""
    e = _echoes()
    images = np.transpose(e, (2, 3, 1, 0))[:, :, :, None, :]  # rows, cols, slices, 1, echoes
    _save_mat(tmp_path / "12.mat", images)
    series = read_echoes(tmp_path / "12.mat")
    np.testing.assert_array_equal(series.echoes, e)
    assert series.te_s == pytest.approx(TE)
    assert series.field_strength_t == 3.0
    assert series.precession_clockwise is False
    assert series.geometry_known is False and series.subject == "12"
    assert is_echo_study(tmp_path / "12.mat")


def test_mat_voxel_size_gives_the_affine(tmp_path: Path) -> None:
    images = np.transpose(_echoes(), (2, 3, 1, 0))[:, :, :, None, :]
    _save_mat(tmp_path / "a.mat", images, voxelSize=np.array([1.5, 2.0, 4.0]))
    series = read_echoes(tmp_path / "a.mat")
    assert series.geometry_known
    np.testing.assert_allclose(np.diag(series.affine)[:3], (4.0, 1.5, 2.0))  # slice, row, col


def test_mat_two_coils_are_combined_by_the_first_echo(tmp_path: Path) -> None:
    """Two coils seeing the same echoes e_k through sensitivities 2 exp(0.3i) and exp(-1.2i):
    combined, sum_c conj(s_c1) s_ck / sqrt(sum_c |s_c1|^2) = sqrt(5) e_k conj(e_1) / |e_1|,
    the echoes of the object with one phase per voxel removed (the phase between echoes,
    which carries the field and the fat, is kept)."""
    e = _echoes()
    obj = np.transpose(e, (2, 3, 1, 0))  # rows, cols, slices, echoes
    coils = np.stack([2 * np.exp(0.3j) * obj, np.exp(-1.2j) * obj], axis=3)
    _save_mat(tmp_path / "c.mat", coils)
    series = read_echoes(tmp_path / "c.mat")
    expected = np.sqrt(5) * e * np.conj(e[:1]) / np.abs(e[:1])
    np.testing.assert_allclose(series.echoes, expected, rtol=1e-4, atol=1e-5)
    assert "2 coils combined by the first echo's phase" in series.notes


def test_mat_v73_and_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.mat").write_bytes(b"MATLAB 7.3 MAT-file" + b"\0" * 200)
    with pytest.raises(InputError, match=r"x\.mat"):
        read_echoes(tmp_path / "x.mat")
    scipy.io.savemat(str(tmp_path / "y.mat"), {"other": np.ones(3)})
    with pytest.raises(InputError, match="no imDataParams"):
        read_echoes(tmp_path / "y.mat")


def test_npz_of_the_phantom(tmp_path: Path) -> None:
    e = _echoes()
    np.savez(tmp_path / "echoes.npz", echoes=e, echo_times_ms=np.array(TE) * 1e3,
             affine=np.diag([4.0, 1.2, 1.2, 1.0]), field_strength_t=np.asarray(1.5),
             precession_clockwise=np.asarray(True))
    (tmp_path / "study.json").write_text(json.dumps({"subject": "P007", "scan": "2"}))
    series = read_echoes(tmp_path / "echoes.npz")
    np.testing.assert_array_equal(series.echoes, e)
    assert series.te_s == pytest.approx(TE)
    assert (series.field_strength_t, series.subject, series.scan) == (1.5, "P007", "2")


def test_npz_without_field_strength_reads_acquisition_json_or_asks(tmp_path: Path) -> None:
    np.savez(tmp_path / "echoes.npz", echoes=_echoes(), echo_times_ms=np.array(TE) * 1e3,
             affine=np.eye(4))
    with pytest.raises(InputError, match="--field-strength"):
        read_echoes(tmp_path / "echoes.npz")
    assert read_echoes(tmp_path / "echoes.npz", field_strength_t=3.0).field_strength_t == 3.0
    (tmp_path / "acquisition.json").write_text(json.dumps({"field_strength_t": 1.5}))
    assert read_echoes(tmp_path / "echoes.npz").field_strength_t == 1.5


AFFINE = np.array([[0.0, 0.0, -4.0, 10.0], [1.2, 0.0, 0.0, -5.0], [0.0, 1.2, 0.0, 3.0],
                   [0.0, 0.0, 0.0, 1.0]])
"""dcm2niix's order for a sagittal series: (cols, rows, slices), the slice axis last."""


def _write_echo(folder: Path, n: int, te: float, echo: np.ndarray, *, phase_scale: float = 1.0,
                manufacturer: str = "GE") -> None:
    stored = np.transpose(echo, (1, 2, 0))  # (rows, cols, slices) along AFFINE's axes
    save_volume(np.abs(stored).astype(np.float32), AFFINE, folder / f"s_e{n}.nii.gz")
    save_volume((np.angle(stored) * phase_scale).astype(np.float32), AFFINE,
                folder / f"s_e{n}_ph.nii.gz")
    (folder / f"s_e{n}.json").write_text(json.dumps(
        {"EchoTime": te, "MagneticFieldStrength": 3, "Manufacturer": manufacturer}))


def test_nifti_echoes_are_ordered_by_echo_time_not_by_file_name(tmp_path: Path) -> None:
    """Files e1, e2, e3 hold the echoes at 2.2, 3.2 and 1.2 ms: the series comes back in
    time order (1.2, 2.2, 3.2 ms), each echo with its own image, slice axis first."""
    e = _echoes()
    for n, k in ((1, 1), (2, 2), (3, 0)):
        _write_echo(tmp_path, n, TE[k], e[k])
    assert is_echo_study(tmp_path)
    series = read_echoes(tmp_path)
    assert series.te_s == pytest.approx(TE)
    np.testing.assert_allclose(series.echoes, e, rtol=1e-5, atol=1e-5)
    assert series.file_axes == (2, 0, 1)
    assert series.field_strength_t == 3.0 and series.precession_clockwise


def test_nifti_siemens_phase_is_scaled_and_others_are_refused(tmp_path: Path) -> None:
    e = _echoes()
    for n in (1, 2, 3):
        _write_echo(tmp_path, n, TE[n - 1], e[n - 1], phase_scale=4096 / np.pi,
                    manufacturer="Siemens")
    series = read_echoes(tmp_path)
    np.testing.assert_allclose(series.echoes, e, rtol=1e-4, atol=1e-4)
    assert "Siemens phase scaled by pi/4096" in series.notes
    other = tmp_path / "ge"
    other.mkdir()
    for n in (1, 2, 3):
        _write_echo(other, n, TE[n - 1], e[n - 1], phase_scale=1000.0)
    with pytest.raises(InputError, match="not radians"):
        read_echoes(other)


def test_nifti_echo_without_phase_or_time_is_named(tmp_path: Path) -> None:
    e = _echoes()
    for n in (1, 2, 3):
        _write_echo(tmp_path, n, TE[n - 1], e[n - 1])
    (tmp_path / "s_e2_ph.nii.gz").unlink()
    with pytest.raises(InputError, match="echo 2 has a magnitude file but no phase"):
        read_echoes(tmp_path)
    _write_echo(tmp_path, 2, TE[1], e[1])
    (tmp_path / "s_e3.json").write_text("{}")
    with pytest.raises(InputError, match="no EchoTime"):
        read_echoes(tmp_path)


def test_nifti_echoes_on_different_grids_are_refused(tmp_path: Path) -> None:
    e = _echoes()
    for n in (1, 2, 3):
        _write_echo(tmp_path, n, TE[n - 1], e[n - 1])
    save_volume(np.ones((5, 4, 4), np.float32), AFFINE, tmp_path / "s_e3.nii.gz")
    with pytest.raises(GeometryError, match="grid"):
        read_echoes(tmp_path)


def test_4d_complex_nifti_with_listed_echo_times(tmp_path: Path) -> None:
    import nibabel as nib

    e = _echoes()
    stored = np.transpose(e, (2, 3, 1, 0))  # (rows, cols, slices, echoes)
    nib.save(nib.Nifti1Image(stored, AFFINE), str(tmp_path / "me.nii.gz"))
    (tmp_path / "me.json").write_text(json.dumps(
        {"EchoTime": list(TE), "MagneticFieldStrength": 1.5, "PrecessionIsClockwise": False}))
    assert is_echo_study(tmp_path / "me.nii.gz")
    series = read_echoes(tmp_path / "me.nii.gz")
    np.testing.assert_allclose(series.echoes, e, rtol=1e-6)
    assert (series.field_strength_t, series.precession_clockwise) == (1.5, False)


def test_a_map_study_folder_is_no_echo_study(tmp_path: Path) -> None:
    save_volume(np.ones((3, 4, 4), np.float32), np.eye(4), tmp_path / "water.nii.gz")
    assert not is_echo_study(tmp_path)
    assert not is_echo_study(tmp_path / "water.nii.gz")
