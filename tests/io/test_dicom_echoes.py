"""Multi-echo DICOM as complex echoes (issue 19.3): echoes grouped by EchoTime in one series or
one series per echo, magnitude/phase and real/imaginary pairs matched, phase in radians; the
input of the water-fat separation, which needs 3 echoes or more."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import sagittal_affine
from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.io.dicom.echoes import load_dicom_echoes
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.dicom.write_echoes import save_dicom_echoes
from vertebrafat.workflows.loading import describe_input, load_study

TE_MS = np.array([1.2, 2.2, 3.2, 4.2, 5.2, 6.2])
SHAPE = (6, 5, 16, 16)


def _echoes(n: int = 6) -> np.ndarray:
    """Complex echoes: magnitudes 100-1100, phases over the whole turn (seeded)."""
    rng = np.random.default_rng(11)
    magnitude = rng.uniform(100, 1100, (n, *SHAPE[1:]))
    phase = rng.uniform(-np.pi, np.pi, (n, *SHAPE[1:]))
    return (magnitude * np.exp(1j * phase)).astype(np.complex64)


def _write(folder: Path, layout: str, n: int = 6) -> np.ndarray:
    echoes = _echoes(n)
    save_dicom_echoes(echoes, TE_MS[:n], sagittal_affine(oblique_rad=0.2), folder,
                      layout=layout, uid_seed=4, field_strength_t=3.0)  # type: ignore[arg-type]
    return echoes


@pytest.mark.parametrize(("layout", "series", "tolerance", "note"), [
    pytest.param("siemens", (2, 3), 1e-3, "phase: radians from the stored range 0..4095",
                 id="siemens-magnitude-phase-series"),
    pytest.param("ge", (101, 102, 103, 104, 105, 106), 1e-4,
                 "real: RescaleSlope 0.0366585, RescaleIntercept 0",
                 id="ge-real-imaginary-series-per-echo"),
    pytest.param("philips-enhanced", (601,), 1e-3, "phase: radians from Real World Value "
                 "Mapping: slope 1.53436, intercept -3141.59 (mrad)",
                 id="philips-enhanced-frames"),
])
def test_layouts_read_back_as_complex_echoes(
    tmp_path: Path, layout: str, series: tuple[int, ...], tolerance: float, note: str
) -> None:
    truth = _write(tmp_path, layout)
    read = load_dicom_echoes(tmp_path)
    assert read.echoes.shape == SHAPE and read.echoes.dtype == np.complex64
    np.testing.assert_allclose(read.echo_times_s, TE_MS / 1000, rtol=1e-9)
    np.testing.assert_allclose(read.affine, sagittal_affine(oblique_rad=0.2), atol=1e-5)
    assert read.field_strength_t == 3.0 and read.series == series
    assert np.max(np.abs(read.echoes - truth)) <= tolerance * np.max(np.abs(truth))
    assert note in read.notes


def test_file_names_do_not_matter(tmp_path: Path) -> None:
    _write(tmp_path / "a", "siemens")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for i, path in enumerate(sorted((tmp_path / "b").rglob("*.dcm"))):
        path.rename(tmp_path / "b" / f"x{(i * 7919) % 1000:03d}")
    a, b = load_dicom_echoes(tmp_path / "a"), load_dicom_echoes(tmp_path / "b")
    np.testing.assert_array_equal(a.echoes, b.echoes)


def test_two_echoes_are_one_line_with_the_count(tmp_path: Path) -> None:
    _write(tmp_path, "siemens", n=2)
    with pytest.raises(InputError) as info:
        load_dicom_echoes(tmp_path)
    assert str(info.value) == (f"{tmp_path}: 2 echoes (TE 1.20, 2.20 ms), magnitude and phase: "
                               "a water-fat separation needs 3 or more echoes, found 2")
    assert load_dicom_echoes(tmp_path, min_echoes=2).echoes.shape == (2, *SHAPE[1:])


def test_magnitude_only(tmp_path: Path) -> None:
    truth = _write(tmp_path, "siemens", n=3)
    shutil.rmtree(tmp_path / "0003")  # the phase series
    with pytest.raises(InputError, match=r"3 echoes \(TE 1.20, 2.20, 3.20 ms\), magnitude only: "
                       r"the echo at TE 1.20 ms has no phase \(or real and imaginary\) images"):
        load_dicom_echoes(tmp_path)
    read = load_dicom_echoes(tmp_path, need_phase=False)
    assert np.all(read.echoes.imag == 0)
    np.testing.assert_allclose(read.echoes.real, np.abs(truth), rtol=2e-3)


def test_phase_that_fills_no_turn_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "siemens", n=3)
    for path in sorted((tmp_path / "0003").iterdir()):  # phase on 0..409 of 0..4095
        ds = pydicom.dcmread(path)
        ds.PixelData = (ds.pixel_array // 10).astype(np.uint16).tobytes()
        ds.save_as(path)
    with pytest.raises(InputError, match=r"series 3 'me_gre' \(TE 1.20 ms, phase\): phase values "
                       r"span 0.6\d rad read as radians from the stored range 0..4095, less "
                       "than half a turn"):
        load_dicom_echoes(tmp_path)


def test_echo_time_missing_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "siemens", n=3)
    victim = sorted((tmp_path / "0002").iterdir())[4]
    ds = pydicom.dcmread(victim)
    del ds.EchoTime
    ds.save_as(victim)
    with pytest.raises(InputError) as info:
        load_dicom_echoes(tmp_path)
    assert str(info.value) == (f"{victim}: EchoTime missing or not one number in series 2 "
                               "'me_gre'; cannot tell its echoes apart")


def test_phase_on_another_grid(tmp_path: Path) -> None:
    _write(tmp_path, "siemens", n=3)
    for path in sorted((tmp_path / "0003").iterdir()):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [float(v) + 2.0 for v in ds.ImagePositionPatient]
        ds.save_as(path)
    with pytest.raises(GeometryError, match=r"series 3 'me_gre' \(TE 1.20 ms, phase\) and "
                       r"series 2 'me_gre' \(TE 1.20 ms, magnitude\) are on different voxel "
                       "grids"):
        load_dicom_echoes(tmp_path)


def test_a_second_echo_series_asks_which(tmp_path: Path) -> None:
    _write(tmp_path / "a", "siemens", n=3)
    _write(tmp_path / "b", "ge", n=3)
    with pytest.raises(InputError) as info:
        load_dicom_echoes(tmp_path)  # GE's real/imaginary beside Siemens' magnitude/phase
    assert str(info.value) == (f"{tmp_path}: the echo at TE 1.20 ms is given twice "
                               "(magnitude/phase in series 2, 3; real/imaginary in series 101); "
                               "choose the series to use")
    assert load_dicom_echoes(tmp_path, series=[101, 102, 103]).series == (101, 102, 103)
    with pytest.raises(InputError, match="no echo series number 7 "):
        load_dicom_echoes(tmp_path, series=[7])


def test_echoes_beside_water_fat_maps(tmp_path: Path, tiny_image: object) -> None:
    """Maps and raw echoes of one study in one folder: each reader takes its own."""
    save_dicom_study(tiny_image, tmp_path, vendor="ge", patient_name="A", patient_id="A",  # type: ignore[arg-type]
                     uid_seed=4)
    _write(tmp_path, "siemens", n=3)
    assert load_study(tmp_path).channels == ("water", "fat", "ff", "r2star")
    assert load_dicom_echoes(tmp_path).echoes.shape == (3, *SHAPE[1:])
    d = describe_input(tmp_path)
    assert d["echoes"] == "3 echoes (TE 1.20, 2.20, 3.20 ms), magnitude and phase"
    assert d["missing"] is None
