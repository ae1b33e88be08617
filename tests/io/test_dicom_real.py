"""Real scanner DICOM (issue 19.4): every folder of ``../shared/data/dicom-real`` (GE dual echo,
Philips enhanced multi-frame magnitude+phase, Siemens magnitude and phase series) is described
by ``info`` (echoes, TEs, magnitude/phase, frames, value mapping, what a water-fat study
needs), ends ``segment`` with one line and exit 2, and reads as echoes where it can.
Skipped, with the path, when ``../shared`` is absent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.io.dicom.echoes import load_dicom_echoes

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom-real"
NEEDS = "a water-fat study needs 3 or more echoes with phase, or water/fat/FF series"
PHILIPS_FILE = "2001_WIP_fcMRI_Field_Mapping_e2_phMag.dcm (53 of 212 frames)"
PHILIPS_MAGNITUDE = "Real World Value Mapping: slope 1.29158, intercept 0 (no units)"
PHILIPS_PHASE = "radians from Real World Value Mapping: slope 1.53455, intercept -3142 (mrad)"
STORED = "stored values (no rescale tags)"
# folder -> (vendor, field T, echoes, [(series, component, echo, TE ms, images, values, file)])
FOLDERS = {
    "ge_dual_echo_abdomen": ("ge", 1.5, "2 echoes (TE 2.04, 4.21 ms), magnitude only", [
        (5, "magnitude", 1, 2.044, 20, STORED, "1-01.dcm +19 files"),
        (5, "magnitude", 2, 4.212, 20, STORED, "1-02.dcm +19 files")]),
    "philips_enhanced_me_fieldmap": ("philips", 3.0,
                                     "2 echoes (TE 2.30, 4.60 ms), magnitude and phase", [
        (2001, "magnitude", None, 2.3, 53, PHILIPS_MAGNITUDE, PHILIPS_FILE),
        (2001, "phase", None, 2.3, 53, PHILIPS_PHASE, PHILIPS_FILE),
        (2001, "magnitude", None, 4.6, 53, PHILIPS_MAGNITUDE, PHILIPS_FILE),
        (2001, "phase", None, 4.6, 53, PHILIPS_PHASE, PHILIPS_FILE)]),
    "siemens_me_gre_magnitude": ("siemens", 3.0, "2 echoes (TE 5.19, 7.65 ms), magnitude only", [
        (2, "magnitude", 1, 5.19, 36, STORED, "0001.dcm +35 files"),
        (2, "magnitude", 2, 7.65, 36, STORED, "0001_e2.dcm +35 files")]),
    "siemens_me_gre_phase": ("siemens", 3.0, "1 echo (TE 7.65 ms), phase only", [
        (3, "phase", 2, 7.65, 36, "radians from the stored range 0..4095",
         "0001_e2_ph.dcm +35 files")]),
}


def _folder(name: str) -> Path:
    folder = REAL / name
    if not folder.is_dir():
        pytest.skip(f"real DICOM not found at {folder} (../shared/data/dicom-real absent)")
    return folder


@pytest.mark.parametrize("name", FOLDERS)
def test_info_describes_the_folder(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(name)
    vendor, field, echoes, rows = FOLDERS[name]
    assert main(["info", str(folder), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["vendor"], d["field_strength_t"], d["echoes"]) == (vendor, field, echoes)
    assert d["missing"] == f"{echoes}: {NEEDS}"
    assert d["channels"] == [] and d["shape"] is None
    found = [(i["series"], i["component"], i["echo"], i["te_ms"], i["images"], i["values"],
              i["file"]) for i in d["images"]]
    assert found == rows
    assert all(i["role"] is None for i in d["images"])


def test_info_text_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder("philips_enhanced_me_fieldmap")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (f"water-fat study      no: 2 echoes (TE 2.30, 4.60 ms), magnitude and phase: "
            f"{NEEDS}") in out
    assert "phase          —    4.60       53   " + PHILIPS_PHASE in out


@pytest.mark.parametrize("name", FOLDERS)
def test_segment_is_one_line_and_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(name)
    out = tmp_path / "out"
    assert main(["segment", str(folder), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {folder}: no water series found (series: ")
    assert err.rstrip().endswith(f"; {FOLDERS[name][2]}: {NEEDS}")
    assert not out.exists()


@pytest.mark.parametrize(("name", "found"), [
    ("ge_dual_echo_abdomen", 2), ("philips_enhanced_me_fieldmap", 2),
    ("siemens_me_gre_magnitude", 2), ("siemens_me_gre_phase", 1),
])
def test_separation_input_says_how_many_echoes(name: str, found: int) -> None:
    folder = _folder(name)
    with pytest.raises(InputError) as info:
        load_dicom_echoes(folder)
    assert str(info.value) == (f"{folder}: {FOLDERS[name][2]}: a water-fat separation needs 3 "
                               f"or more echoes, found {found}")


def test_philips_enhanced_echoes_read_as_complex() -> None:
    folder = _folder("philips_enhanced_me_fieldmap")
    with pytest.raises(GeometryError, match=r"non-sagittal acquisition \(slice axis is "
                       r"cranio-caudal \(axial\)\)"):
        load_dicom_echoes(folder, min_echoes=2)  # a brain, axial
    read = load_dicom_echoes(folder, min_echoes=2, allow_orientation=True)
    assert read.echoes.shape == (2, 53, 80, 80) and read.echoes.dtype == np.complex64
    np.testing.assert_allclose(read.echo_times_s, [0.0023, 0.0046])
    assert read.field_strength_t == 3.0 and read.series == (2001,)
    np.testing.assert_allclose(np.linalg.norm(read.affine[:3, :3], axis=0), [3.0, 3.0, 3.0],
                               atol=1e-4)
    phase = np.angle(read.echoes[np.abs(read.echoes) > 0])
    assert phase.min() < -3.1 and phase.max() > 3.1  # the whole turn, in radians
    # the brightest magnitude, stored 2055, through its Real World Value slope
    assert float(np.abs(read.echoes).max()) == pytest.approx(2055 * 1.29157509157509, rel=1e-6)


def test_siemens_magnitude_and_phase_together(tmp_path: Path) -> None:
    """The phase series holds echo 2 only (a phase difference): echo 1 has no phase."""
    for name in ("siemens_me_gre_magnitude", "siemens_me_gre_phase"):
        shutil.copytree(_folder(name), tmp_path / name)
    with pytest.raises(InputError) as info:
        load_dicom_echoes(tmp_path, min_echoes=2, allow_orientation=True)
    assert str(info.value) == (
        f"{tmp_path}: 2 echoes (TE 5.19, 7.65 ms): magnitude at TE 5.19, 7.65 ms; phase at TE "
        "7.65 ms: the echo at TE 5.19 ms has no phase (or real and imaginary) images; a "
        "complex separation needs them")
    read = load_dicom_echoes(tmp_path, min_echoes=2, need_phase=False, allow_orientation=True)
    assert read.echoes.shape == (2, 36, 64, 64) and read.series == (2, 3)
    assert np.all(read.echoes[0].imag == 0) and np.any(read.echoes[1].imag != 0)


def test_ge_dual_echo_magnitudes() -> None:
    folder = _folder("ge_dual_echo_abdomen")
    read = load_dicom_echoes(folder, min_echoes=2, need_phase=False, allow_orientation=True)
    assert read.echoes.shape == (2, 20, 512, 512) and read.field_strength_t == 1.5
    np.testing.assert_allclose(read.echo_times_s, [0.002044, 0.004212])
    assert "magnitude: stored values (no rescale tags)" in read.notes
