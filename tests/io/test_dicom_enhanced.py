"""Enhanced multi-frame DICOM (issue 19.1): each vendor layout written as Enhanced MR objects
(io.dicom.write_enhanced) reads to the same voxels and affine as its classic twin
(io.dicom.write), segments identically, and every broken enhanced object ends in one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import reversed_slices
from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError, InputError, VertebrafatError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.io.dicom.write_enhanced import save_enhanced_dicom_study
from vertebrafat.workflows.loading import load_study

VENDORS = ("ge", "siemens", "philips")
FILES = {"ge": 4, "siemens": 6, "philips": 1}  # objects written: one per role, Philips one


def _twins(image: WaterFatImage, root: Path, vendor: str) -> tuple[Path, Path]:
    kw = {"vendor": vendor, "patient_name": "PHANTOM^E1", "patient_id": "E1", "uid_seed": 5}
    save_dicom_study(image, root / "classic", **kw)  # type: ignore[arg-type]
    written = save_enhanced_dicom_study(image, root / "enhanced", shuffle_frames=True,
                                        **kw)  # type: ignore[arg-type]
    assert len(written) == FILES[vendor]
    return root / "classic", root / "enhanced"


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("reverse", [False, True], ids=["ascending", "reversed-slices"])
def test_enhanced_reads_like_its_classic_twin(
    tmp_path: Path, tiny_image: WaterFatImage, vendor: str, reverse: bool
) -> None:
    image = reversed_slices(tiny_image) if reverse else tiny_image
    classic, enhanced = (load_study(p) for p in _twins(image, tmp_path, vendor))
    assert enhanced.channels == classic.channels == ("water", "fat", "ff", "r2star")
    for name in classic.channels:
        np.testing.assert_array_equal(getattr(enhanced, name), getattr(classic, name), name)
    np.testing.assert_array_equal(enhanced.affine, classic.affine)
    assert enhanced.meta.ff_scale == classic.meta.ff_scale == (
        100.0 if vendor == "philips" else 1000.0)
    assert enhanced.meta.vendor == vendor and enhanced.meta.subject == "E1"
    assert enhanced.meta.field_strength_t == 3.0
    assert {s.role for s in enhanced.meta.series} == {s.role for s in classic.meta.series}


def test_same_seed_same_bytes(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    digests = []
    for name in ("a", "b"):
        files = save_enhanced_dicom_study(tiny_image, tmp_path / name, vendor="philips",
                                          patient_name="A", patient_id="A", uid_seed=9,
                                          shuffle_frames=True)
        digests.append(hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest())
    assert digests[0] == digests[1]


def test_info_lists_the_frames_and_their_mapping(
    tmp_path: Path, tiny_image: WaterFatImage, capsys: pytest.CaptureFixture[str]
) -> None:
    _, enhanced = _twins(tiny_image, tmp_path, "philips")
    assert main(["info", str(enhanced), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = {i["role"]: i for i in d["images"]}
    assert set(rows) == {"water", "fat", "ff", "r2star"}
    assert rows["ff"]["file"] == "0501/IM0001.dcm (6 of 24 frames)"
    assert rows["ff"]["values"] == ("Real World Value Mapping: slope 0.025, intercept -10 (%)")
    assert rows["r2star"]["values"].endswith("(Hz)")
    assert d["missing"] is None and d["echoes"] is None
    assert [s["role"] for s in d["series"]] == ["fat", "ff", "r2star", "water"]


def test_philips_roles_from_private_image_type(tmp_path: Path, tiny_image: WaterFatImage) -> None:
    """Frames whose FrameType names no role: Philips' per-frame ImageTypeMR (2005,1011) does."""
    classic, enhanced = _twins(tiny_image, tmp_path, "philips")

    def anonymous(ds: pydicom.Dataset) -> None:
        for item in ds.PerFrameFunctionalGroupsSequence:
            item.MRImageFrameTypeSequence[0].FrameType = ["DERIVED", "PRIMARY", "MIXED", "NONE"]

    _edit_object(enhanced, anonymous)
    a, b = load_study(classic), load_study(enhanced)
    for name in a.channels:
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), name)


@pytest.mark.slow
@pytest.mark.parametrize("vendor", VENDORS)
def test_enhanced_segments_like_its_classic_twin(tmp_path: Path, vendor: str) -> None:
    """The shipped model on a full phantom study: the same bmf.csv, byte for byte."""
    from vertebrafat.phantom import generate_subject

    image = generate_subject(seed=3, index=0).image
    classic, enhanced = _twins(image, tmp_path, vendor)
    tables = []
    for study in (classic, enhanced):
        out = tmp_path / f"out-{study.name}"
        assert main(["segment", str(study), str(out)]) == 0
        assert (out / "seg.dcm").is_file()
        tables.append((out / "bmf.csv").read_text())
    assert tables[0] == tables[1]
    assert tables[0].count("\n") >= 6  # header and L1-L5 at least


# -- broken enhanced objects: one line naming the file (and frame) -----------------------------

def _edit_object(folder: Path, change: Callable[[pydicom.Dataset], None]) -> Path:
    path = next(folder.rglob("IM0001.dcm"))
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    return path


def _frame(k: int) -> Callable[[pydicom.Dataset], pydicom.Dataset]:
    return lambda ds: ds.PerFrameFunctionalGroupsSequence[k]


def _no_position(ds: pydicom.Dataset) -> None:
    del _frame(3)(ds).PlanePositionSequence


def _tilted(ds: pydicom.Dataset) -> None:
    _frame(3)(ds).PlaneOrientationSequence = [pydicom.Dataset()]
    _frame(3)(ds).PlaneOrientationSequence[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]


def _lut_mapping(ds: pydicom.Dataset) -> None:
    item = _frame(0)(ds).RealWorldValueMappingSequence[0]
    del item.RealWorldValueSlope
    item.RealWorldValueLUTData = [0.0, 1.0]


def _zero_rwv(ds: pydicom.Dataset) -> None:
    _frame(0)(ds).RealWorldValueMappingSequence[0].RealWorldValueSlope = 0.0


def _frame_role_changed(ds: pydicom.Dataset) -> None:  # one water frame says fat
    for item in ds.PerFrameFunctionalGroupsSequence:
        if list(item.MRImageFrameTypeSequence[0].FrameType)[2] == "W":
            item.MRImageFrameTypeSequence[0].FrameType = ["DERIVED", "PRIMARY", "F", "F"]
            return


@pytest.mark.parametrize(("change", "error", "phrase"), [
    pytest.param(_no_position, InputError, "IM0001.dcm frame 4: ImagePositionPatient missing; "
                 "cannot place the slice", id="frame-position-missing"),
    pytest.param(_tilted, GeometryError, "IM0001.dcm frame 4: ImageOrientationPatient differs",
                 id="frame-orientation-differs"),
    pytest.param(_lut_mapping, InputError, "IM0001.dcm frame 1: Real World Value Mapping by a "
                 "lookup table is not supported", id="lut-mapping"),
    pytest.param(_zero_rwv, InputError, "IM0001.dcm frame 1: RealWorldValueSlope is 0",
                 id="zero-slope"),
    pytest.param(_frame_role_changed, InputError, "two images at one position in series 501 "
                 "'mDIXON Quant sag' (fat, magnitude)", id="water-frame-turned-fat"),
])
def test_broken_enhanced_one_line(tmp_path: Path, tiny_image: WaterFatImage,
                                  change: Callable[[pydicom.Dataset], None],
                                  error: type[VertebrafatError], phrase: str) -> None:
    _, enhanced = _twins(tiny_image, tmp_path, "philips")
    _edit_object(enhanced, change)
    with pytest.raises(error) as info:
        load_study(enhanced)
    message = str(info.value)
    assert "\n" not in message and phrase in message, message


def test_truncated_enhanced_is_skipped_with_a_warning(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    _, enhanced = _twins(tiny_image, tmp_path, "philips")
    path = next(enhanced.rglob("IM0001.dcm"))
    path.write_bytes(path.read_bytes()[:-5000])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="no readable DICOM image"):
            load_study(enhanced)
    assert any("IM0001.dcm: truncated DICOM pixel data, file skipped" in str(w.message)
               for w in caught)


def test_enhanced_beside_classic_twin_is_two_candidates(
    tmp_path: Path, tiny_image: WaterFatImage
) -> None:
    classic, enhanced = _twins(tiny_image, tmp_path, "siemens")
    shutil.copytree(enhanced, classic / "enhanced")
    with pytest.raises(InputError, match=r"2 candidate in_phase series \(series 3 "
                       r"'t1_vibe_dixon_sag_in', series 3 't1_vibe_dixon_sag_in'\); choose one"):
        load_study(classic)
