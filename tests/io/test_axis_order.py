"""Any NIfTI axis order: a study stored in any of the 48 axis orders and directions gives the
same table, outputs come back in the input's own order, and a dcm2niix export of the
phantom's GE DICOM segments exactly as the DICOM does (issue 15, item 1)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import apply_orientation, inv_ornt_aff

from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError
from vertebrafat.core.image import align_to_grid, permute_affine, slices_first_axes
from vertebrafat.io.dcm2niix import dcm2niix_axes
from vertebrafat.io.orientation import read_on_grid, read_slices_first
from vertebrafat.phantom import generate_subject
from vertebrafat.workflows.loading import load_model, load_study
from vertebrafat.workflows.outputs import write_study_outputs
from vertebrafat.workflows.study import segment_study

# (axis, flip) of every one of the 48 layouts: nibabel's orientation arrays, an independent
# implementation of the transpose and flip and of the affine that goes with it
LAYOUTS = [np.array([[ax, -1.0 if f else 1.0] for ax, f in zip(perm, flips, strict=True)])
           for perm in itertools.permutations(range(3))
           for flips in itertools.product((False, True), repeat=3)]


def _variant(data: np.ndarray, affine: np.ndarray, ornt: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """``data`` stored in the layout ``ornt`` (nibabel semantics) and its affine."""
    moved = apply_orientation(data, ornt)
    return moved, affine @ inv_ornt_aff(ornt, data.shape)


def test_all_48_layouts_align_back_to_the_original_grid() -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, size=(5, 7, 9)).astype(np.uint8)
    affine = np.array([[-3.5, 0, 0, 40.0], [0, 0, 0.9, -60.0], [0, -1.2, 0, 10.0],
                       [0, 0, 0, 1.0]])  # axis 0 left-right (3.5 mm), rows S-I, cols A-P
    seen = set()
    for ornt in LAYOUTS:
        moved, aff = _variant(data, affine, ornt)
        seen.add(moved.tobytes() + aff.tobytes())
        assert np.array_equal(align_to_grid(moved, aff, data.shape, affine), data)
        # slices first: the left-right axis (3.5 mm) comes first, the order of the other two kept
        axes = slices_first_axes(aff)
        assert np.linalg.norm(permute_affine(aff, axes)[:3, 0]) == pytest.approx(3.5)
        assert np.transpose(moved, axes).shape[0] == 5
    assert len(seen) == 48
    # another grid (one voxel shifted) matches in no layout
    shifted = affine.copy()
    shifted[:3, 3] += affine[:3, 1]
    assert align_to_grid(data, affine, data.shape, shifted) is None


@pytest.fixture(scope="module")
def study_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray],
                                                                   np.ndarray]:
    """One phantom study (11 central slices, to keep 48 runs short) as float32 arrays."""
    image = generate_subject(seed=5, index=0).image
    mid = image.shape[0] // 2
    keep = slice(mid - 5, mid + 6)
    arrays = {r: np.asarray(getattr(image, r)[keep], np.float32)
              for r in ("water", "fat", "ff", "r2star")}
    affine = image.affine.copy()
    affine[:3, 3] += affine[:3, 0] * (mid - 5)
    return tmp_path_factory.mktemp("axes"), arrays, affine


@pytest.mark.slow
def test_every_layout_gives_the_same_table_and_outputs_in_its_own_order(
    study_files: tuple[Path, dict[str, np.ndarray], np.ndarray],
) -> None:
    root, arrays, affine = study_files
    model = load_model()
    reference = None
    for n, ornt in enumerate(LAYOUTS):
        folder = root / f"layout{n:02d}" / "sub01"
        folder.mkdir(parents=True)
        for role, data in arrays.items():
            moved, aff = _variant(data, affine, ornt)
            nib.save(nib.Nifti1Image(moved, aff), folder / f"{role}.nii.gz")
        result = segment_study(load_study(folder), model)
        rows = [(r.level, r.label, r.n_voxels, r.n_slices, round(r.volume_ml, 6),
                 round(r.ff_mean, 4), r.flags) for r in result.table]
        if reference is None:
            reference = (rows, result.labelling.labels)
            assert [r[0] for r in rows if r[0].startswith("L")] == ["L1", "L2", "L3", "L4", "L5"]
        assert rows == reference[0], f"layout {ornt.tolist()}"
        files = write_study_outputs(result, root / f"layout{n:02d}" / "out")
        written = nib.load(files["labels"])
        expected, aff = _variant(reference[1], affine, ornt)
        assert np.array_equal(np.asarray(written.dataobj), expected), f"layout {ornt.tolist()}"
        assert np.allclose(written.affine, aff, atol=1e-5)


def test_maps_in_different_axis_orders_are_read_onto_one_grid(
    study_files: tuple[Path, dict[str, np.ndarray], np.ndarray],
) -> None:
    root, arrays, affine = study_files
    folder = root / "mixed"
    folder.mkdir()
    nib.save(nib.Nifti1Image(arrays["water"], affine), folder / "water.nii.gz")
    slice_last, aff = _variant(arrays["ff"], affine, LAYOUTS[17])
    nib.save(nib.Nifti1Image(slice_last, aff), folder / "ff.nii.gz")
    image = load_study(folder)
    assert np.allclose(image.ff, arrays["ff"], atol=1e-4)  # type: ignore[arg-type]
    water, water_aff, axes = read_slices_first(folder / "water.nii.gz")
    assert axes == (0, 1, 2)
    assert np.array_equal(read_on_grid(folder / "ff.nii.gz", water.shape, water_aff,
                                       grid_of="water"), arrays["ff"])
    # a map one voxel off is no grid of the water image, in any order
    off = aff.copy()
    off[:3, 3] += aff[:3, 0]
    nib.save(nib.Nifti1Image(slice_last, off), folder / "ff.nii.gz")
    with pytest.raises(GeometryError, match=r"ff\.nii\.gz: grid .* does not match the water"):
        load_study(folder)


def test_measure_and_evaluate_take_two_maps_in_different_axis_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    labels = np.zeros((6, 20, 16), np.uint8)
    labels[1:5, 2:8, 3:12] = 20
    labels[1:5, 11:17, 3:12] = 21
    ff = np.where(labels == 20, 30.0, np.where(labels == 21, 40.0, 95.0)).astype(np.float32)
    affine = np.diag([4.0, -1.0, -1.0, 1.0])[:, [0, 2, 1, 3]]  # slices L-R, rows, cols
    nib.save(nib.Nifti1Image(ff, affine), tmp_path / "ff.nii.gz")
    moved, aff = _variant(labels, affine, LAYOUTS[45])
    nib.save(nib.Nifti1Image(moved, aff), tmp_path / "labels.nii.gz")
    assert main(["measure", str(tmp_path / "ff.nii.gz"), str(tmp_path / "labels.nii.gz"),
                 "--out", str(tmp_path / "bmf.csv"), "--erosion-mm", "0"]) == 0
    with (tmp_path / "bmf.csv").open() as fh:
        rows = {r["level"]: r for r in csv.DictReader(fh)}
    assert float(rows["L1"]["ff_mean"]) == 30.0 and int(rows["L1"]["n_voxels"]) == 4 * 6 * 9
    assert float(rows["L2"]["ff_mean"]) == 40.0
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "ref.nii.gz")
    capsys.readouterr()
    assert main(["evaluate", "--reference", str(tmp_path / "ref.nii.gz"), "--prediction",
                 str(tmp_path / "labels.nii.gz"), "--json"]) == 0
    assert '"dice": 1.0' in capsys.readouterr().out


@pytest.mark.slow
def test_a_dcm2niix_export_segments_as_the_dicom_does(tmp_path: Path) -> None:
    assert main(["phantom", str(tmp_path / "ph"), "--subjects", "1", "--seed", "5",
                 "--format", "dicom-ge", "--format", "nifti-dcm2niix"]) == 0
    study = tmp_path / "ph" / "P001"
    converted = sorted((study / "nifti-dcm2niix").glob("*.nii.gz"))
    assert [p.name for p in converted] == [f"P001_Sag_IDEAL_IQ_L-spine_{n}.nii.gz"
                                           for n in (1001, 1101, 1201, 1301)]
    water = nib.load(converted[0])
    assert water.shape[2] < water.shape[0]  # slice axis last, as dcm2niix writes it
    assert "".join(nib.aff2axcodes(water.affine))[2] in "LR"
    tables = {}
    for fmt in ("dicom-ge", "nifti-dcm2niix"):
        assert main(["segment", str(study / fmt), str(tmp_path / fmt)]) == 0
        with (tmp_path / fmt / "bmf.csv").open() as fh:
            tables[fmt] = [{k: v for k, v in r.items() if k != "subject"}
                           for r in csv.DictReader(fh)]
    # NIfTI keeps the voxel size in float32: the volume (n_voxels times a voxel volume that
    # differs in the 7th digit) may round the other way in its 4th decimal (16.9623/16.9622)
    volumes = [[float(r.pop("volume_ml")) for r in tables[f]]
               for f in ("dicom-ge", "nifti-dcm2niix")]
    np.testing.assert_allclose(volumes[0], volumes[1], atol=2e-4)
    assert tables["dicom-ge"] == tables["nifti-dcm2niix"]
    assert [r["level"] for r in tables["dicom-ge"]][-6:] == ["L1", "L2", "L3", "L4", "L5", "S1"]
    dicom_labels = nib.load(tmp_path / "dicom-ge" / "labels.nii.gz")
    nifti_labels = nib.load(tmp_path / "nifti-dcm2niix" / "labels.nii.gz")
    expected, aff = dcm2niix_axes(np.asarray(dicom_labels.dataobj), dicom_labels.affine)
    assert np.array_equal(np.asarray(nifti_labels.dataobj), expected)
    assert np.allclose(nifti_labels.affine, aff, atol=1e-3)
