"""Fuzzed DICOM reading (issue 15): every mutated phantom study ends in a result or one line.

One small phantom study per vendor layout is written once per module; each case mutates a copy
of it (tags deleted or corrupted, contradictory geometry, duplicates, mixed series, truncated
files, foreign files) and checks the one property of the reader: ``load_study`` returns a
:class:`WaterFatImage` with finite values and an invertible affine, or raises a
:class:`VertebrafatError` whose message is one line naming the file or folder.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from conftest import load_outcome
from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError, InputError, VertebrafatError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.dicom.write_enhanced import save_enhanced_dicom_study
from vertebrafat.phantom import generate_subject
from vertebrafat.workflows.loading import load_study

VENDORS = ("ge", "siemens", "philips")
WATER = {"ge": "1001", "siemens": "0005", "philips": "0501"}  # folder of the water series
N_SLICES = 5
# pydicom's own test files, listed from its package folder: get_testdata_files() may try to
# download the ones that live outside the package, and tests never touch the network.
PYDICOM_FILES = sorted(
    p for p in (Path(pydicom.data.__file__).parent / "test_files").rglob("*")
    if p.is_file() and p.suffix not in (".py", ".json", ".pyc")
)
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom-real"
Mutation = Callable[[Path], None]


def _small_phantom() -> WaterFatImage:
    """Five central slices of phantom subject P001 (seed 3), every 8th row and column."""
    image = generate_subject(seed=3, index=0).image
    k0, step = image.shape[0] // 2 - N_SLICES // 2, 8
    crop = (slice(k0, k0 + N_SLICES), slice(None, None, step), slice(None, None, step))
    shrink = np.diag([1.0, step, step, 1.0])
    shrink[0, 3] = k0
    volumes = {name: np.ascontiguousarray(getattr(image, name)[crop]) for name in image.channels}
    return dataclasses.replace(image, affine=image.affine @ shrink, **volumes)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    image = _small_phantom()
    root = tmp_path_factory.mktemp("phantom")
    for vendor in VENDORS:
        save_dicom_study(image, root / vendor, vendor=vendor, patient_name="PHANTOM^P001",
                         patient_id="P001", uid_seed=3)
    # issue 19: the Philips layout as one enhanced multi-frame object (its water: 0501)
    save_enhanced_dicom_study(image, root / "philips-enhanced", vendor="philips",
                              patient_name="PHANTOM^P001", patient_id="P001", uid_seed=3)
    return {name: root / name for name in (*VENDORS, "philips-enhanced")}


@pytest.fixture
def ge(studies: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh copy of the GE study."""
    return Path(shutil.copytree(studies["ge"], tmp_path / "study"))


# -- mutations: each changes the study folder in place --------------------------------------


def _water(folder: Path) -> list[Path]:
    """The files of the water series folder (whichever vendor wrote the study)."""
    sub = next(folder / n for n in WATER.values() if (folder / n).is_dir())
    return sorted(p for p in sub.iterdir() if p.is_file())


def _edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    """Apply ``change`` to the dataset in ``path`` and save it; a file that an earlier mutation
    made unreadable, or whose tags no longer allow the change, is left as it is."""
    try:
        ds = pydicom.dcmread(path)
        change(ds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(path)
    except Exception:
        return


def _targets(folder: Path, k: int | None) -> list[Path]:
    """Every water file when ``k`` is None, else file ``k`` of the study in path order (the
    GE water series first: 0 to 4 are its slices)."""
    if k is None:
        return _water(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return [files[k % len(files)]]


def delete_tag(folder: Path, keyword: str, k: int | None) -> None:
    """Delete ``keyword`` from file ``k`` (every water file when None)."""
    for path in _targets(folder, k):
        _edit(path, lambda ds: ds.pop(Tag(keyword), None))


def set_raw(folder: Path, keyword: str, value: bytes, k: int | None) -> None:
    """Store ``value`` as the raw bytes of ``keyword`` (invalid values included)."""
    tag = Tag(keyword)
    vr = pydicom.datadict.dictionary_VR(tag)
    padded = value + b" " * (len(value) % 2)

    def change(ds: pydicom.Dataset) -> None:
        ds[tag] = RawDataElement(tag, vr, len(padded), padded, 0, False, True)

    for path in _targets(folder, k):
        _edit(path, change)


def shift(folder: Path, k: int, offset_mm: tuple[float, float, float]) -> None:
    """Move the slice of file ``k`` by ``offset_mm`` (patient LPS; the normal is +-x)."""
    def change(ds: pydicom.Dataset) -> None:
        ds.ImagePositionPatient = [float(a) + b for a, b in
                                   zip(ds.ImagePositionPatient, offset_mm, strict=True)]
    _edit(_targets(folder, k)[0], change)


def same_position(folder: Path, k: int, j: int) -> None:
    """Give water slice ``k`` the position of slice ``j``."""
    files = _water(folder)

    def change(ds: pydicom.Dataset) -> None:
        ds.ImagePositionPatient = pydicom.dcmread(files[j % len(files)]).ImagePositionPatient
    _edit(files[k % len(files)], change)


def tilt(folder: Path, k: int, degrees: float) -> None:
    """Rotate the orientation of file ``k`` in its plane by ``degrees``."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))

    def change(ds: pydicom.Dataset) -> None:
        iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
        x, y = iop[:3], iop[3:]
        ds.ImageOrientationPatient = [float(v) for v in (*(c * x + s * y), *(c * y - s * x))]
    _edit(_targets(folder, k)[0], change)


def duplicate(folder: Path, k: int) -> None:
    """Copy file ``k`` under a new name without extension."""
    path = _targets(folder, k)[0]
    shutil.copy(path, path.parent / f"copy_of_{path.stem}")


def resize(folder: Path, k: int) -> None:
    """File ``k`` holds a consistent image of half the rows and columns."""
    def change(ds: pydicom.Dataset) -> None:
        half = np.ascontiguousarray(ds.pixel_array[::2, ::2])
        ds.Rows, ds.Columns = half.shape
        ds.PixelData = half.tobytes()
    _edit(_targets(folder, k)[0], change)


def two_frames(folder: Path, k: int) -> None:
    """File ``k`` holds two frames (NumberOfFrames 2) at one position."""
    def change(ds: pydicom.Dataset) -> None:
        ds.NumberOfFrames = 2
        ds.PixelData = ds.PixelData * 2
    _edit(_targets(folder, k)[0], change)


def truncate(folder: Path, k: int, keep: float) -> None:
    """Cut file ``k`` to the fraction ``keep`` of its bytes."""
    path = _targets(folder, k)[0]
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def second_series(folder: Path, n_files: int, number: int | None) -> None:
    """Copy ``n_files`` water files as another series (new SeriesInstanceUID, and the series
    number ``number``, or the same one when None)."""
    uid = pydicom.uid.generate_uid(entropy_srcs=["second", str(n_files)])
    for i, path in enumerate(_water(folder)[:n_files]):
        copy = folder / "extra" / f"X{i}"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(path, copy)

        def change(ds: pydicom.Dataset, i: int = i) -> None:
            ds.SeriesInstanceUID = uid
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[uid, str(i)])
            if number is not None:
                ds.SeriesNumber = number
        _edit(copy, change)


def screen_save(folder: Path) -> None:
    """A screen capture in a series of its own: pixels, no position, no water-fat role."""
    copy = folder / "screen" / "SC0001"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(_water(folder)[0], copy)

    def change(ds: pydicom.Dataset) -> None:
        ds.SeriesInstanceUID = ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["sc"])
        ds.SeriesDescription, ds.SeriesNumber = "SCREEN SAVE", 999
        ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
        del ds.ImagePositionPatient
    _edit(copy, change)


def water_only(folder: Path, keep: int) -> None:
    """Remove every series but water, and all water files after the first ``keep``."""
    water = _water(folder)
    for sub in [p for p in folder.iterdir() if p.is_dir() and p != water[0].parent]:
        shutil.rmtree(sub)
    for path in water[keep:]:
        path.unlink()


def junk(folder: Path, content: bytes) -> None:
    """A non-DICOM file among the series."""
    (folder / "README").write_bytes(content)


def no_extensions(folder: Path) -> None:
    for path in list(folder.rglob("*.dcm")):
        path.rename(path.with_suffix(""))


def foreign(folder: Path, index: int) -> None:
    """One of pydicom's test files in the study folder."""
    source = PYDICOM_FILES[index % len(PYDICOM_FILES)]
    shutil.copy(source, folder / f"pydicom_{source.name}")


def enhanced(folder: Path) -> Path:
    """An Enhanced MR Image (multi-frame) of the phantom water series, written in ``folder``."""
    files = _water(folder)
    frames = [pydicom.dcmread(p) for p in files]
    ds = frames[0]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.NumberOfFrames = len(frames)
    shared = pydicom.Dataset()
    shared.PixelMeasuresSequence = [pydicom.Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = ds.PixelSpacing
    shared.PlaneOrientationSequence = [pydicom.Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = ds.ImageOrientationPatient
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for frame in frames:
        item = pydicom.Dataset()
        item.PlanePositionSequence = [pydicom.Dataset()]
        item.PlanePositionSequence[0].ImagePositionPatient = frame.ImagePositionPatient
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        del ds[keyword]
    ds.PixelData = b"".join(f.PixelData for f in frames)
    for path in files:
        path.unlink()
    out = files[0].parent / "enhanced.dcm"
    ds.save_as(out)
    return out


# -- the property -----------------------------------------------------------------------------


def _fails(folder: Path, error: type[VertebrafatError], *phrases: str) -> str:
    outcome = load_outcome(folder)
    # isinstance: NotWaterFatError (issue 19) is the InputError of a folder without water
    assert isinstance(outcome, error), outcome
    message = str(outcome).replace(f"{folder}/", "")
    for phrase in phrases:
        assert phrase in message, message
    return message


# -- each mutation alone: its exact outcome ---------------------------------------------------

SERIES = "series 1001 'WATER: Sag IDEAL IQ L-spine'"
CASES = [  # mutation of the GE study, error class, phrases of the message (paths from the study)
    pytest.param(partial(delete_tag, keyword="ImagePositionPatient", k=2), InputError,
                 "1001/IM0003.dcm: ImagePositionPatient missing; cannot place the slice in "
                 + SERIES, id="position-missing"),
    pytest.param(partial(delete_tag, keyword="ImagePositionPatient", k=None), InputError,
                 "no water series found", "5 file(s) skipped, first 1001/IM0001.dcm "
                 "(ImagePositionPatient missing)", id="position-missing-everywhere"),
    pytest.param(partial(set_raw, keyword="ImagePositionPatient", value=b"abc\\1\\2", k=1),
                 InputError, "1001/IM0002.dcm: ImagePositionPatient ['abc', '1', '2'] is not 3 "
                 "finite number(s)", id="position-not-numbers"),
    pytest.param(partial(set_raw, keyword="ImagePositionPatient", value=b"0\\0", k=None),
                 InputError, "1001/IM0001.dcm: ImagePositionPatient [0, 0] is not 3",
                 id="position-two-values"),
    pytest.param(partial(set_raw, keyword="ImagePositionPatient", value=b"nan\\0\\0", k=1),
                 InputError, "1001/IM0002.dcm: ImagePositionPatient [nan, 0, 0] is not 3",
                 id="position-nan"),
    pytest.param(partial(delete_tag, keyword="ImageOrientationPatient", k=2), InputError,
                 "1001/IM0003.dcm: ImageOrientationPatient missing; cannot orient the slice",
                 id="orientation-missing"),
    pytest.param(partial(set_raw, keyword="ImageOrientationPatient", value=b"1\\0\\0\\0\\1",
                         k=1), InputError,
                 "1001/IM0002.dcm: ImageOrientationPatient [1, 0, 0, 0, 1] is not 6",
                 id="orientation-five-values"),
    pytest.param(partial(set_raw, keyword="ImageOrientationPatient",
                         value=b"1\\0\\0\\0.5\\0.5\\0", k=None), GeometryError,
                 "1001/IM0001.dcm: ImageOrientationPatient [1.0, 0.0, 0.0, 0.5, 0.5, 0.0] is not "
                 "two orthogonal unit vectors", id="orientation-not-orthonormal"),
    pytest.param(partial(tilt, k=2, degrees=10.0), GeometryError,
                 "1001/IM0003.dcm: ImageOrientationPatient differs from", id="orientation-varies"),
    pytest.param(partial(delete_tag, keyword="PixelSpacing", k=None), InputError,
                 "1001/IM0001.dcm: PixelSpacing missing; cannot size the pixels",
                 id="spacing-missing"),
    pytest.param(partial(set_raw, keyword="PixelSpacing", value=b"0\\0", k=1), InputError,
                 "1001/IM0002.dcm: PixelSpacing [0.0, 0.0] is not positive", id="spacing-zero"),
    pytest.param(partial(set_raw, keyword="PixelSpacing", value=b"1", k=None), InputError,
                 "1001/IM0001.dcm: PixelSpacing 1 is not 2 finite number(s)",
                 id="spacing-one-value"),
    pytest.param(partial(set_raw, keyword="PixelSpacing", value=b"1\\1", k=1), GeometryError,
                 "1001/IM0002.dcm: PixelSpacing [1.0, 1.0] differs from", id="spacing-varies"),
    pytest.param(partial(same_position, k=2, j=3), InputError,
                 "1001/IM0003.dcm and 1001/IM0004.dcm: two images at one position in " + SERIES,
                 id="two-at-one-position"),
    pytest.param(partial(duplicate, k=2), InputError,
                 "1001/IM0003.dcm and 1001/copy_of_IM0003: two images at one position",
                 id="duplicate-instance"),
    pytest.param(partial(shift, k=2, offset_mm=(0.0, 5.0, 0.0)), GeometryError,
                 "1001/IM0003.dcm: slice position", "mm off the line through the other slices",
                 id="positions-not-collinear"),
    pytest.param(partial(shift, k=2, offset_mm=(1.0, 0.0, 0.0)), InputError,
                 SERIES + ": slice missing or irregular slice positions after",
                 id="spacing-between-slices-varies"),
    pytest.param(partial(resize, k=2), GeometryError,
                 "1001/IM0003.dcm: image of 16x16 pixels, ", id="rows-columns-differ"),
    pytest.param(partial(two_frames, k=2), InputError,
                 "1001/IM0003.dcm: 2 frames in one file; multi-frame images are not supported",
                 id="two-frames-in-a-file"),
    pytest.param(partial(truncate, k=2, keep=0.9), InputError,
                 "1001/IM0003.dcm: unreadable DICOM file and its slice is missing",
                 id="truncated-pixel-data"),
    pytest.param(partial(truncate, k=2, keep=0.3), InputError,  # cut inside SeriesInstanceUID
                 SERIES + ": slice missing or irregular slice positions after 1001/IM0002.dcm",
                 "skipped: 1001/IM0003.dcm (no pixel data)", id="truncated-header"),
    pytest.param(partial(delete_tag, keyword="SeriesInstanceUID", k=2), InputError,
                 "1001/IM0003.dcm: SeriesInstanceUID missing", id="series-uid-missing"),
    pytest.param(partial(set_raw, keyword="SeriesNumber", value=b"x", k=None), InputError,
                 "1001/IM0001.dcm: SeriesNumber x is not an integer", id="series-number-text"),
    pytest.param(partial(set_raw, keyword="SeriesDescription", value=b"FAT: x", k=1),
                 InputError, SERIES + " mixes images of several roles (water (", "fat (",
                 id="roles-contradict"),
    pytest.param(partial(second_series, n_files=5, number=77), InputError,
                 "2 candidate water series", "--series water=NUMBER", id="second-series-mixed-in"),
    pytest.param(partial(set_raw, keyword="RescaleSlope", value=b"0", k=1), InputError,
                 "1001/IM0002.dcm: RescaleSlope is 0", id="slope-zero"),
    pytest.param(partial(set_raw, keyword="RescaleSlope", value=b"nan", k=1), InputError,
                 "1001/IM0002.dcm: RescaleSlope nan is not 1 finite number(s)", id="slope-nan"),
    pytest.param(partial(set_raw, keyword="RescaleSlope", value=b"1e300", k=1), InputError,
                 "1001/IM0002.dcm: pixel values overflow after RescaleSlope", id="slope-overflow"),
    pytest.param(partial(set_raw, keyword="RescaleIntercept", value=b"nan", k=None), InputError,
                 "1001/IM0001.dcm: RescaleIntercept nan is not 1", id="intercept-nan"),
]


@pytest.mark.parametrize(("mutate", "error", "phrases"),
                         [pytest.param(*p.values[:2], p.values[2:], id=p.id) for p in CASES])
def test_broken_study_one_line(ge: Path, mutate: Mutation, error: type[VertebrafatError],
                               phrases: tuple[str, ...]) -> None:
    mutate(ge)
    _fails(ge, error, *phrases)


@pytest.mark.parametrize("mutate", [
    pytest.param(partial(delete_tag, keyword="SliceThickness", k=None), id="thickness-missing"),
    pytest.param(partial(delete_tag, keyword="ImageType", k=None), id="image-type-missing"),
    pytest.param(partial(delete_tag, keyword="SeriesDescription", k=0),
                 id="description-missing-on-first-file"),
    pytest.param(partial(delete_tag, keyword="EchoTime", k=None), id="echo-time-missing"),
    pytest.param(partial(set_raw, keyword="EchoTime", value=b"2.4", k=1),
                 id="echo-time-on-one-file"),
    pytest.param(partial(junk, content=b"not a DICOM file"), id="non-dicom-file"),
    pytest.param(no_extensions, id="no-extensions"),
    pytest.param(screen_save, id="screen-save-series"),
    pytest.param(partial(foreign, index=PYDICOM_FILES.index(
        next(p for p in PYDICOM_FILES if p.name == "MR_small.dcm"))), id="foreign-mr-file"),
])
def test_harmless_change_still_loads(ge: Path, studies: dict[str, Path],
                                     mutate: Mutation) -> None:
    reference = load_outcome(studies["ge"])
    mutate(ge)
    image = load_outcome(ge)
    assert isinstance(image, WaterFatImage) and isinstance(reference, WaterFatImage)
    assert image.meta.notes == ()
    np.testing.assert_array_equal(image.water, reference.water)
    np.testing.assert_allclose(image.affine, reference.affine)


def test_unreadable_field_strength_is_a_note(ge: Path) -> None:
    set_raw(ge, "MagneticFieldStrength", b"x", None)
    image = load_outcome(ge)
    assert isinstance(image, WaterFatImage)
    assert image.meta.field_strength_t is None
    assert any("MagneticFieldStrength x is not 1 finite number(s)" in n for n in image.meta.notes)


def test_missing_end_slice_is_not_dropped(ge: Path) -> None:
    """Was: a file without position at the end of the stack vanished, leaving 4 slices."""
    water_only(ge, keep=N_SLICES)
    delete_tag(ge, "ImagePositionPatient", N_SLICES - 1)
    _fails(ge, InputError, "1001/IM0005.dcm: ImagePositionPatient missing")


def test_single_slice_without_thickness(ge: Path) -> None:
    """Was: a one-slice series without SliceThickness got 1 mm silently."""
    water_only(ge, keep=1)
    delete_tag(ge, "SliceThickness", 0)
    _fails(ge, InputError, "1001/IM0001.dcm: the only slice of " + SERIES
           + " has no positive SliceThickness")


def test_enhanced_multi_frame_reads_like_classic(ge: Path, studies: dict[str, Path]) -> None:
    """Was refused (issue 15); enhanced objects are read since issue 19."""
    water_only(ge, keep=N_SLICES)
    reference = load_outcome(ge)
    enhanced(ge)
    image = load_outcome(ge)
    assert isinstance(image, WaterFatImage) and isinstance(reference, WaterFatImage)
    np.testing.assert_array_equal(image.water, reference.water)
    np.testing.assert_allclose(image.affine, reference.affine, atol=1e-9)


def test_enhanced_frame_count_contradicts_groups(ge: Path) -> None:
    water_only(ge, keep=N_SLICES)
    _edit(enhanced(ge), lambda ds: setattr(ds, "NumberOfFrames", 4))
    with pytest.warns(UserWarning, match="NumberOfFrames 4 but 5 per-frame functional groups"):
        with pytest.raises(InputError, match="no readable DICOM image"):
            load_study(ge)


def test_pydicom_test_files(tmp_path: Path) -> None:
    for source in PYDICOM_FILES:
        shutil.copy(source, tmp_path / source.name)
    _fails(tmp_path, InputError, "no water series found")


@pytest.mark.parametrize(("name", "extra", "phrase"), [  # what the reader understands (issue 19)
    ("ge_dual_echo_abdomen", {}, "2 echoes (TE 2.04, 4.21 ms), magnitude only: a water-fat "
     "study needs 3 or more echoes with phase, or water/fat/FF series"),
    ("ge_dual_echo_abdomen", {"series": {"water": 5}}, "--series water=5: series 5 'Ax T1 "
     "DualEcho (out/in Phase' holds 2 image stacks (TE 2.04 ms, magnitude; TE 4.21 ms, "
     "magnitude), not one water image per slice"),
    ("philips_enhanced_me_fieldmap", {}, "series 2001 'fcMRI Field Mapping' -> ? (4 image "
     "stacks)); 2 echoes (TE 2.30, 4.60 ms), magnitude and phase: a water-fat study needs"),
    ("siemens_me_gre_magnitude", {}, "2 echoes (TE 5.19, 7.65 ms), magnitude only"),
    ("siemens_me_gre_magnitude", {"series": {"water": 2}}, "holds 2 image stacks"),
    ("siemens_me_gre_phase", {}, "1 echo (TE 7.65 ms), phase only"),
])
def test_real_scanner_dicom(name: str, extra: dict[str, dict[str, int]], phrase: str) -> None:
    folder = REAL / name
    if not folder.is_dir():
        pytest.skip(f"real DICOM not found at {folder}")
    with pytest.raises(InputError) as info:
        load_study(folder, **extra)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and str(folder) in message and phrase in message, message


def test_real_single_echo_passes_the_geometry_checks(tmp_path: Path) -> None:
    """One echo of a real Siemens series: the new per-instance checks accept real geometry."""
    source = REAL / "siemens_me_gre_magnitude"
    if not source.is_dir():
        pytest.skip(f"real DICOM not found at {source}")
    for path in source.glob("*.dcm"):
        if "_e2" not in path.name:
            shutil.copy(path, tmp_path / path.name)
    image = load_study(tmp_path, series={"water": 2}, allow_orientation=True)
    assert image.shape == (36, 64, 64)
    np.testing.assert_allclose(image.spacing_mm, (3.6, 3.0, 3.0), atol=1e-3)


def test_cli_one_line_exit_2(ge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    delete_tag(ge, "ImagePositionPatient", 2)
    assert main(["info", str(ge)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"error: {ge}/1001/IM0003.dcm: ImagePositionPatient missing")


# -- mutations combined at random: the property holds for every vendor layout ----------------

KEYWORDS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
            "ImageType", "SeriesDescription", "EchoTime", "SeriesInstanceUID", "SeriesNumber",
            "RescaleSlope", "RescaleIntercept", "Rows", "MagneticFieldStrength", "PixelData")
RAW_VALUES = st.one_of(
    st.sampled_from([b"", b"0", b"-1", b"nan", b"inf", b"1e400", b"x", b"0\\0", b"1\\0\\0",
                     b"nan\\0\\0", b"1\\0\\0\\0\\1\\0", b"1\\0\\0\\1\\0\\0", b"2\\0\\0\\0\\2\\0",
                     b"ORIGINAL\\PRIMARY\\F", b"DERIVED\\PRIMARY\\DIXON\\W", b"FAT: x"]),
    st.binary(max_size=16),
)
FILE = st.integers(0, 6 * N_SLICES + 4)  # any file of the study, water first (GE)
MUTATIONS = st.one_of(
    st.builds(partial, st.just(delete_tag), keyword=st.sampled_from(KEYWORDS),
              k=st.none() | FILE),
    st.builds(partial, st.just(set_raw), keyword=st.sampled_from(KEYWORDS[:-1]),
              value=RAW_VALUES, k=st.none() | FILE),
    st.builds(partial, st.just(shift), k=FILE,
              offset_mm=st.tuples(*[st.floats(-5, 5, allow_nan=False)] * 3)),
    st.builds(partial, st.just(same_position), k=FILE, j=FILE),
    st.builds(partial, st.just(tilt), k=FILE, degrees=st.floats(-20, 20)),
    st.builds(partial, st.just(duplicate), k=FILE),
    st.builds(partial, st.just(resize), k=FILE),
    st.builds(partial, st.just(two_frames), k=FILE),
    st.builds(partial, st.just(truncate), k=FILE, keep=st.floats(0.0, 0.99)),
    st.builds(partial, st.just(second_series), n_files=st.integers(1, N_SLICES),
              number=st.none() | st.just(77)),
    st.builds(partial, st.just(water_only), keep=st.integers(1, N_SLICES)),
    st.builds(partial, st.just(junk), content=st.binary(max_size=200)),
    st.just(no_extensions),
    st.just(screen_save),
    st.builds(partial, st.just(foreign), index=st.integers(0, len(PYDICOM_FILES) - 1)),
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(vendor=st.sampled_from((*VENDORS, "philips-enhanced")),
       mutations=st.lists(MUTATIONS, min_size=1, max_size=3))
def test_mutated_study_ends_in_result_or_one_line(
    studies: dict[str, Path], vendor: str, mutations: list[Mutation]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(studies[vendor], Path(tmp) / "study"))
        for mutate in mutations:
            mutate(folder)
        load_outcome(folder)
