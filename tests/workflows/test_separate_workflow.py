"""Echoes on disk to maps on disk (workflows/separate.py), and segment/load_study on echoes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import scipy.io

from vertebrafat.core.errors import InputError
from vertebrafat.waterfat.model import synthesize
from vertebrafat.workflows.loading import load_study
from vertebrafat.workflows.separate import separate_study

TE = 1.2e-3 + 1e-3 * np.arange(6)
AFFINE = np.diag([4.0, 1.5, 1.5, 1.0])


@pytest.fixture(scope="module")
def echo_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A phantom-style echoes.npz: 3 slices of 24 x 24, FF 0-92 % in columns, 3 T."""
    ff = np.linspace(0.0, 0.92, 24)[None, None, :] * np.ones((3, 24, 1))
    echoes = synthesize(800 * (1 - ff), 800 * ff, r2star=50.0, field_map_hz=40.0, te_s=TE,
                        field_strength_t=3.0).astype(np.complex64)
    folder = tmp_path_factory.mktemp("P009")
    np.savez(folder / "echoes.npz", echoes=echoes, echo_times_ms=TE * 1e3, affine=AFFINE,
             field_strength_t=np.asarray(3.0), precession_clockwise=np.asarray(True))
    (folder / "study.json").write_text(json.dumps({"subject": "P009", "scan": "1"}))
    return folder / "echoes.npz", 100 * ff


def test_separate_study_writes_the_maps_as_the_phantom_stores_them(
    echo_file: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, ff = echo_file
    summary = separate_study(path, tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"water.nii.gz", "fat.nii.gz", "ff.nii.gz", "r2star.nii.gz",
                     "fieldmap.nii.gz", "separation.png", "separation.json", "study.json"}
    stored = nib.load(str(tmp_path / "out" / "ff.nii.gz"))
    assert stored.get_data_dtype() == np.int16
    assert float(stored.dataobj.slope) == pytest.approx(0.1)  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.asarray(stored.dataobj), ff, atol=0.051)  # tenths of a %
    np.testing.assert_allclose(stored.affine, AFFINE)
    fmap = np.asarray(nib.load(str(tmp_path / "out" / "fieldmap.nii.gz")).dataobj)
    np.testing.assert_allclose(fmap, 40.0, atol=0.1)
    card = json.loads((tmp_path / "out" / "separation.json").read_text())
    assert (card["subject"], card["field_strength_t"], card["method"]) == ("P009", 3.0,
                                                                           "graphcut")
    assert summary["files"]["ff"].endswith("ff.nii.gz")
    # the output folder is a study: segment and measure read it with FF as stored
    again = load_study(tmp_path / "out")
    assert again.meta.subject == "P009" and again.meta.ff_scale == 100
    np.testing.assert_allclose(again.ff, ff, atol=0.051)  # type: ignore[arg-type]


def test_magnitude_mode_writes_no_field_map(echo_file: tuple[Path, np.ndarray],
                                            tmp_path: Path) -> None:
    separate_study(echo_file[0], tmp_path / "m", mode="magnitude")
    assert not (tmp_path / "m" / "fieldmap.nii.gz").exists()
    assert json.loads((tmp_path / "m" / "separation.json").read_text())["method"] == "magnitude"


def test_load_study_separates_an_echo_file(echo_file: tuple[Path, np.ndarray]) -> None:
    """What segment reads: the separated study, FF derived, R2* present."""
    image = load_study(echo_file[0])
    assert image.channels == ("water", "fat", "ff", "r2star")
    assert image.meta.ff_scale == "derived" and image.meta.subject == "P009"
    np.testing.assert_allclose(image.ff, echo_file[1], atol=0.05)  # type: ignore[arg-type]
    np.testing.assert_allclose(image.r2star, 50.0, atol=0.1)  # type: ignore[arg-type]


def test_an_ismrm_mat_without_geometry_is_not_segmented(tmp_path: Path) -> None:
    images = np.ones((8, 8, 2, 1, 3), np.complex64)
    scipy.io.savemat(str(tmp_path / "c.mat"), {"imDataParams": {
        "images": images, "TE": np.array([TE[:3]]), "FieldStrength": 3.0,
        "PrecessionIsClockwise": 1}})
    with pytest.raises(InputError, match="no voxel geometry"):
        load_study(tmp_path / "c.mat")


@pytest.mark.parametrize("layout", ["siemens", "ge", "philips-enhanced"])
def test_a_multi_echo_dicom_folder_is_separated_like_its_echoes(
    layout: str, echo_file: tuple[Path, np.ndarray], tmp_path: Path,
) -> None:
    """The DICOM input of the separation (issues 18 and 19): the same echoes written as each
    vendor's multi-echo DICOM (magnitude/phase, real/imaginary, enhanced frames) load and
    separate to the FF the echoes themselves give, and load_study separates such a folder."""
    from vertebrafat.io.dicom.write_echoes import save_dicom_echoes
    from vertebrafat.io.echoes import read_echoes

    npz, truth = echo_file
    data = np.load(npz)
    # 6 rows of background noise below the tissue, as in any real image: its phase spans the
    # whole turn, which is how the reader checks the phase scale
    rng = np.random.default_rng(3)
    noise = 5 * (rng.normal(size=(6, 3, 6, 24)) + 1j * rng.normal(size=(6, 3, 6, 24)))
    echoes = np.concatenate([data["echoes"], noise.astype(np.complex64)], axis=2)
    save_dicom_echoes(echoes, data["echo_times_ms"], AFFINE, tmp_path / "dcm",
                      layout=layout, uid_seed=5, field_strength_t=3.0)  # type: ignore[arg-type]
    series = read_echoes(tmp_path / "dcm")
    assert series.format == "dicom" and len(series.te_s) == 6
    assert np.allclose(series.te_s, TE, atol=1e-7)
    image = load_study(tmp_path / "dcm")
    assert image.ff is not None and image.shape == (3, 30, 24)
    tissue = image.ff[:, :24]
    assert float(np.max(np.abs(tissue - truth))) < 1.5


@pytest.mark.parametrize("layout", ["siemens", "ge", "philips-enhanced"])
def test_flipped_precession_through_the_dicom_reader_swaps_water_and_fat(
    layout: str, tmp_path: Path,
) -> None:
    """Echoes recorded anticlockwise (the conjugate; the phase sign a vendor may store),
    tissue at 20 % and 80 % FF, written as each vendor's multi-echo DICOM. The reader keeps
    the phase sign and takes every vendor's echoes as clockwise (the files carry no flag):
    read as they come, water and fat swap (20 % above 70 %, 80 % below 40 %, as the
    separation alone gives: tests/waterfat/test_separate.py); with
    ``precession_clockwise=False`` they separate right (within 0.5 pp), and ``load_study``
    of the folder gives the swapped maps too (it has no way to know)."""
    from vertebrafat.io.dicom.write_echoes import save_dicom_echoes
    from vertebrafat.io.echoes import read_echoes
    from vertebrafat.waterfat.separate import separate

    ff = np.where(np.arange(24)[None, None] < 12, 0.2, 0.8) * np.ones((3, 24, 1))
    echoes = synthesize(800 * (1 - ff), 800 * ff, r2star=40.0, field_map_hz=50.0, te_s=TE,
                        field_strength_t=3.0, precession_clockwise=False)
    rng = np.random.default_rng(3)
    noise = 5 * (rng.normal(size=(6, 3, 6, 24)) + 1j * rng.normal(size=(6, 3, 6, 24)))
    data = np.concatenate([echoes, noise], axis=2).astype(np.complex64)  # background rows
    save_dicom_echoes(data, TE * 1e3, AFFINE, tmp_path / "dcm", layout=layout,  # type: ignore[arg-type]
                      uid_seed=7, field_strength_t=3.0)
    as_read = read_echoes(tmp_path / "dcm")
    assert as_read.precession_clockwise is True
    told = read_echoes(tmp_path / "dcm", precession_clockwise=False)
    wrong = separate(as_read.echoes, as_read.te_s, 3.0,
                     precession_clockwise=as_read.precession_clockwise)
    right = separate(told.echoes, told.te_s, 3.0, precession_clockwise=told.precession_clockwise)
    loaded = load_study(tmp_path / "dcm")
    assert loaded.ff is not None
    for value in (0.2, 0.8):
        m = np.zeros(data.shape[1:], bool)
        m[:, :24] = ff == value
        assert float(right.ff_percent[m].mean()) == pytest.approx(100 * value, abs=0.5)
        for swapped in (float(wrong.ff_percent[m].mean()), float(loaded.ff[m].mean())):
            assert swapped > 70.0 if value < 0.5 else swapped < 40.0
