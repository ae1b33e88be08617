"""Vendor value scaling of quantitative maps (issue 19.2): Real World Value Mapping before the
Philips private scale slope (2005,100E) before RescaleSlope/Intercept, and GE's FF stored x10.

Each case stores a block phantom's FF map (L1-L5 at 20, 30, 40, 50, 60 %, fat around at 90 %)
so that the right mapping gives the BMF exactly and every wrong one is off by 4 pp or more:
the test strips the preferred tags and shows the BMF that the next rule would give.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import sagittal_affine
from vertebrafat.core.errors import InputError
from vertebrafat.core.image import StudyMeta, WaterFatImage
from vertebrafat.io.dicom.values import value_mapping
from vertebrafat.io.dicom.write import save_dicom_study
from vertebrafat.measure import bmf_table
from vertebrafat.workflows.loading import describe_input, load_study

LEVEL_FF = {20: 20.0, 21: 30.0, 22: 40.0, 23: 50.0, 24: 60.0}  # label -> FF %
Edit = Callable[[pydicom.Dataset, np.ndarray], None]


def _block_phantom(background_ff: float = 90.0) -> tuple[WaterFatImage, np.ndarray]:
    """6 x 32 x 32: five vertebral blocks (labels 20-24) of known FF in fat."""
    shape = (6, 32, 32)
    labels = np.zeros(shape, np.uint8)
    ff = np.full(shape, background_ff, np.float32)
    for i, (label, value) in enumerate(LEVEL_FF.items()):
        labels[:, 2 + 6 * i: 7 + 6 * i, 8:24] = label
        ff[labels == label] = value
    water = (100.0 - ff) * 10 + 5
    image = WaterFatImage(water=water.astype(np.float32), fat=(ff * 10 + 5).astype(np.float32),
                          ff=ff, affine=sagittal_affine(oblique_rad=0.2),
                          meta=StudyMeta(source="blocks", format="phantom"))
    return image, labels


def _bmf(folder: Path, labels: np.ndarray, **kw: object) -> dict[str, float]:
    image = load_study(folder, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(image.affine, sagittal_affine(oblique_rad=0.2), atol=1e-5)
    assert image.ff is not None
    rows = bmf_table(image.ff, labels, affine=image.affine, erosion_mm=0.0)
    return {r.level: r.ff_mean for r in rows}


TRUTH = {"L1": 20.0, "L2": 30.0, "L3": 40.0, "L4": 50.0, "L5": 60.0}


def _store(ds: pydicom.Dataset, stored: np.ndarray) -> None:
    ds.PixelData = np.round(stored).astype(np.uint16).tobytes()


def _rescale(slope: float, intercept: float) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    return edit


def _philips_scale(scale: float) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(
            0x0E, "FL", scale)
    return edit


def _real_world(slope: float, units: str) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        code = pydicom.Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = units, "UCUM", units
        item = pydicom.Dataset()
        item.RealWorldValueSlope, item.RealWorldValueIntercept = slope, 0.0
        item.RealWorldValueFirstValueMapped, item.RealWorldValueLastValueMapped = 0, 4095
        item.MeasurementUnitsCodeSequence = [code]
        ds.RealWorldValueMappingSequence = [item]
    return edit


def _strip_real_world(ds: pydicom.Dataset) -> None:
    del ds.RealWorldValueMappingSequence


def _strip_private(ds: pydicom.Dataset) -> None:
    for tag in [t for t in ds.keys() if t.group == 0x2005]:
        del ds[tag]


def _strip_rescale(ds: pydicom.Dataset) -> None:
    del ds.RescaleSlope, ds.RescaleIntercept


def _write_ff(folder: Path, ff: np.ndarray, factor: float, offset: float,
              *edits: Callable[[pydicom.Dataset], None]) -> None:
    """Rewrite the Philips FF series: stored = (ff + offset) x factor, then ``edits``."""
    for path in sorted((folder / "0503").iterdir()):
        ds = pydicom.dcmread(path)
        _store(ds, (ff[int(ds.InstanceNumber) - 1] + offset) * factor)
        for edit in edits:
            edit(ds)
        ds.save_as(path)


def _edit_ff(folder: Path, edit: Callable[[pydicom.Dataset], None]) -> None:
    for path in sorted((folder / "0503").iterdir()):
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)


CASES = [
    # id, stored = (ff + offset) x factor, tags, expected mapping kind and text,
    # [(tags stripped, one after the other, to reach the next rule; the BMF it gives is
    #   (truth + offset) x factor)]
    pytest.param(1 / 1.25, 20.0, [_rescale(1.25, -20.0)], "rescale",
                 "RescaleSlope 1.25, RescaleIntercept -20",
                 [((_strip_rescale,), 0.8, 20.0)], id="rescale-slope-intercept"),
    pytest.param(8.0, 0.0, [_rescale(0.15625, 0.0), _philips_scale(8.0)], "philips-scale",
                 "Philips scale slope (2005,100E) 8 over RescaleSlope 0.15625, "
                 "RescaleIntercept 0",
                 [((_strip_private,), 1.25, 0.0),
                  ((_strip_rescale,), 0.8, 0.0)], id="philips-private-scale"),
    pytest.param(8.0, 0.0, [_rescale(0.15625, 0.0), _philips_scale(10.0),
                            _real_world(0.125, "%")], "real-world",
                 "Real World Value Mapping: slope 0.125, intercept 0 (%)",
                 [((_strip_real_world,), 0.8, 0.0),
                  ((_strip_private,), 1.25, 0.0)], id="real-world-value"),
]


@pytest.mark.parametrize(("factor", "offset", "tags", "kind", "text", "wrong"), CASES)
def test_mapping_choice_gives_the_bmf(
    tmp_path: Path, factor: float, offset: float,
    tags: list[Callable[[pydicom.Dataset], None]], kind: str, text: str,
    wrong: list[tuple[tuple[Callable[[pydicom.Dataset], None], ...], float, float]],
) -> None:
    image, labels = _block_phantom()
    study = tmp_path / "philips"
    save_dicom_study(image, study, vendor="philips", patient_name="B^1", patient_id="B1",
                     uid_seed=2)
    assert image.ff is not None
    _write_ff(study, image.ff, factor, offset, *tags)
    first = pydicom.dcmread(sorted((study / "0503").iterdir())[0])
    assert (value_mapping(first).kind, value_mapping(first).text) == (kind, text)
    bmf = _bmf(study, labels)
    assert bmf == pytest.approx(TRUTH, abs=0.01)
    ff_row = next(i for i in describe_input(study)["images"] if i["role"] == "ff")
    assert ff_row["values"] == text  # info shows the mapping used
    for strip, wrong_factor, wrong_offset in wrong:
        for edit in strip:
            _edit_ff(study, edit)
        off = _bmf(study, labels)
        expected = {lv: (v + wrong_offset) * wrong_factor for lv, v in TRUTH.items()}
        assert off == pytest.approx(expected, abs=0.01)
        assert min(abs(off[lv] - TRUTH[lv]) for lv in TRUTH) > 1.0  # every level > 1 pp off


def test_ge_ff_stored_x10(tmp_path: Path) -> None:
    image, labels = _block_phantom()
    save_dicom_study(image, tmp_path / "ge", vendor="ge", patient_name="B^2", patient_id="B2",
                     uid_seed=3)
    stored = pydicom.dcmread(sorted((tmp_path / "ge" / "1201").iterdir())[0]).pixel_array
    assert stored.max() == 900  # percent x 10, no rescale tags
    assert load_study(tmp_path / "ge").meta.ff_scale == 1000.0
    assert _bmf(tmp_path / "ge", labels) == pytest.approx(TRUTH, abs=0.01)


def test_ge_lean_ff_x10_is_not_read_as_percent(tmp_path: Path) -> None:
    """FF x10 whose values look like percent (no fat in view, FF <= 14 %): GE's x10 disagrees
    with the values, so the reader asks instead of giving a BMF 10 times too high."""
    image, labels = _block_phantom(background_ff=14.0)
    assert image.ff is not None
    image = dataclasses.replace(image, ff=np.minimum(image.ff, 14.0))
    save_dicom_study(image, tmp_path / "ge", vendor="ge", patient_name="B^3", patient_id="B3",
                     uid_seed=4)
    with pytest.raises(InputError, match=r"FF tags say full scale 1000 but the values "
                       r"\(99.9th percentile 140\) say 100; give --ff-scale"):
        load_study(tmp_path / "ge")
    assert _bmf(tmp_path / "ge", labels, ff_scale=1000.0)["L1"] == pytest.approx(14.0)
