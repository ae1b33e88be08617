"""Per-level BMF: exact numbers on known FF patterns, erosion in mm, slice rules, flags, schema."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.cli import main
from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.io.table import load_table, table_to_csv
from vertebrafat.measure import bmf_table, erode_in_plane, restrict_to_slices, sagittal_axis

# axis 0 = sagittal slices (L), axis 1 = rows (I), axis 2 = cols (P); 1 mm voxels
AFFINE = np.array(
    [[-1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
)


def body_with_cortex() -> tuple[np.ndarray, np.ndarray]:
    """L3 = slices 1..3 x 6 x 6 voxels; FF 100 % on the in-plane outer ring ("cortex"), inside
    (4 x 4 per slice) FF = col index (3..6) + 10 x (slice index - 1)."""
    labels = np.zeros((5, 10, 10), dtype=np.uint8)
    labels[1:4, 2:8, 2:8] = 22
    ff = np.full(labels.shape, 100.0, dtype=np.float32)
    for s in range(3):
        for c in range(3, 7):
            ff[s + 1, 3:7, c] = c + 10 * s
    return ff, labels


def test_erosion_by_one_mm_removes_exactly_the_cortex_ring() -> None:
    ff, labels = body_with_cortex()
    (row,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=1.0)
    assert (row.level, row.label, row.n_voxels, row.n_slices) == ("L3", 22, 48, 3)
    assert row.ff_mean == pytest.approx(14.5)
    assert row.ff_median == pytest.approx(14.5)
    interior = [c + 10 * s for s in range(3) for c in range(3, 7) for _ in range(4)]
    assert row.ff_sd == pytest.approx(float(np.std(interior, ddof=1)), abs=1e-4)
    assert row.ff_p05 == pytest.approx(3.0)  # rank 0.05 x 47 = 2.35: sorted[2] = sorted[3] = 3
    assert row.ff_p95 == pytest.approx(26.0)  # rank 44.65: sorted[44] = sorted[45] = 26
    assert row.volume_ml == pytest.approx(0.108)


def test_without_erosion_the_cortex_is_averaged_in() -> None:
    ff, labels = body_with_cortex()
    (row,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=0.0)
    assert row.n_voxels == 108
    assert row.ff_mean == pytest.approx((60 * 100 + 48 * 14.5) / 108)  # 62.0
    assert row.ff_median == pytest.approx(100.0)
    assert row.erosion_mm == 0.0


def test_an_erosion_that_empties_a_body_is_flagged_eroded_empty() -> None:
    ff, labels = body_with_cortex()  # 6 x 6 voxels in-plane: 3 mm leaves none
    (row,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=3.0)
    assert row.n_voxels == 0 and math.isnan(row.ff_mean)
    assert row.flags == ("eroded_empty", "low_volume")
    assert row.volume_ml == pytest.approx(0.108)  # the whole body, before erosion
    (kept,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=2.0)  # 2 x 2 left per slice
    assert kept.n_voxels == 12 and "eroded_empty" not in kept.flags


def test_mid_slice_rule_keeps_the_central_slices() -> None:
    ff, labels = body_with_cortex()
    (row,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=1.0, slices="mid1")
    assert (row.n_voxels, row.n_slices, row.slices) == (16, 1, "mid1")
    assert row.ff_mean == pytest.approx(14.5)  # slice 1: cols 3..6 + 10
    (wide,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=1.0, slices="mid9")
    assert (wide.n_voxels, wide.n_slices) == (48, 3)  # fewer slices than N: all of them


@pytest.mark.parametrize(
    ("slices", "expected"),
    [
        pytest.param("mid1", [5], id="mid1-tie-goes-up"),
        pytest.param("mid2", [4, 5], id="mid2-centroid-4.5"),
        pytest.param("mid3", [4, 5, 6], id="mid3-tie-goes-up"),
        pytest.param("all", [1, 2, 3, 4, 5, 6, 7, 8], id="all"),
    ],
)
def test_restrict_to_slices_centres_on_the_body(slices: str, expected: list[int]) -> None:
    region = np.zeros((10, 3, 3), dtype=bool)
    region[1:9, 1, 1] = True  # slices 1..8, centroid 4.5
    kept = restrict_to_slices(region, AFFINE, slices=slices)
    assert list(np.flatnonzero(kept.any(axis=(1, 2)))) == expected


def test_erosion_is_in_millimetres_and_in_plane_only() -> None:
    aniso = np.diag([4.0, 0.5, 0.5, 1.0])  # 4 mm slices, 0.5 mm pixels
    region = np.zeros((3, 12, 12), dtype=bool)
    region[:, 1:11, 1:11] = True  # 10 x 10 pixels = 5 x 5 mm per slice
    eroded = erode_in_plane(region, aniso, erosion_mm=1.0)  # 1 mm = 2 pixels
    assert eroded.sum() == 3 * 6 * 6
    assert eroded.any(axis=(1, 2)).all()  # no slice lost across the thick direction


def test_sagittal_axis_follows_the_affine() -> None:
    assert sagittal_axis(AFFINE) == 0
    assert sagittal_axis(AFFINE[:, [1, 2, 0, 3]]) == 2


def test_body_on_the_image_border_is_kept_and_not_eroded_from_the_border() -> None:
    labels = np.zeros((3, 10, 10), dtype=np.uint8)
    labels[:, 0:6, 2:8] = 24
    ff = np.full(labels.shape, 30.0, dtype=np.float32)
    (row,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=1.0)
    assert row.n_voxels == 3 * 5 * 4  # rows 0..4 (row 0 kept), cols 3..6
    assert row.flags == ("partial_fov",)


def test_ff_is_never_clipped() -> None:
    labels = np.zeros((1, 2, 2), dtype=np.uint8)
    labels[0, 0, :] = 20
    labels[0, 1, :] = 21
    ff = np.array([[[-5.0, 105.0], [110.0, 120.0]]], dtype=np.float32)
    rows = bmf_table(ff, labels, affine=AFFINE, erosion_mm=0.0)
    assert [r.ff_mean for r in rows] == [50.0, 115.0]


def test_rows_follow_cranio_caudal_order_and_carry_given_flags() -> None:
    labels = np.zeros((3, 14, 4), dtype=np.uint8)
    for k, lab in enumerate((26, 24, 20, 19)):
        labels[1, 3 * k + 1 : 3 * k + 3, 1:3] = lab
    ff = np.ones(labels.shape, dtype=np.float32)
    rows = bmf_table(ff, labels, affine=AFFINE, erosion_mm=0.0, subject="S7", scan="2",
                     flags={24: ("transitional",)}, min_voxels=1)
    assert [r.level for r in rows] == ["T12", "L1", "L5", "S1"]
    assert rows[2].flags == ("transitional",)
    assert {(r.subject, r.scan) for r in rows} == {("S7", "2")}


def _five_levels(means: list[float]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((5, 42, 8), dtype=np.uint8)
    ff = np.zeros(labels.shape, dtype=np.float32)
    for k, m in enumerate(means):
        labels[1:4, 8 * k + 1 : 8 * k + 7, 1:7] = 20 + k
        ff[1:4, 8 * k + 1 : 8 * k + 7, 1:7] = m
    return ff, labels


def test_outlier_ff_uses_a_robust_leave_one_out_rule() -> None:
    ff, labels = _five_levels([30.0, 31.0, 33.0, 35.0, 60.0])
    rows = bmf_table(ff, labels, affine=AFFINE, erosion_mm=0.0)
    assert [r.flags for r in rows] == [(), (), (), (), ("outlier_ff",)]
    ff, labels = _five_levels([30.0, 32.0, 34.0, 36.0, 38.0])  # a caudal rise is normal
    assert all(r.flags == () for r in bmf_table(ff, labels, affine=AFFINE, erosion_mm=0.0))


def test_low_volume_and_r2star_high_flags() -> None:
    ff, labels = _five_levels([30.0, 30.0, 30.0, 30.0, 30.0])
    labels[:, 33:39, 1:7] = 0
    labels[2, 33:35, 1:7] = 24  # L5: 12 voxels of 108
    r2star = np.full(labels.shape, 80.0, dtype=np.float32)
    r2star[:, :8] = 400.0  # L1 region
    rows = bmf_table(ff, labels, affine=AFFINE, erosion_mm=0.0, r2star=r2star)
    assert [r.flags for r in rows] == [("r2star_high",), (), (), (), ("low_volume",)]


def test_region_eroded_away_gives_nan_and_low_volume_not_a_dropped_row() -> None:
    labels = np.zeros((3, 5, 5), dtype=np.uint8)
    labels[1, 1:3, 1:3] = 21
    (row,) = bmf_table(np.ones(labels.shape, np.float32), labels, affine=AFFINE, erosion_mm=1.0)
    assert row.n_voxels == 0 and math.isnan(row.ff_mean)
    assert row.flags == ("eroded_empty", "low_volume")


def test_csv_schema_is_exactly_the_design_one() -> None:
    ff, labels = body_with_cortex()
    text = table_to_csv(bmf_table(ff, labels, affine=AFFINE, slices="mid1", erosion_mm=1.0,
                                      min_voxels=1))
    header, line = text.splitlines()
    assert header == (
        "subject,scan,level,label,n_voxels,n_slices,volume_ml,ff_mean,ff_median,ff_sd,"
        "ff_p05,ff_p95,erosion_mm,slices,flags"
    )
    assert line.startswith(",1,L3,22,16,1,0.108,14.5,14.5,")
    assert line.endswith(",1.0,mid1,")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"slices": "middle"}, InputError, id="bad-slices"),
        pytest.param({"slices": "mid0"}, InputError, id="mid0"),
        pytest.param({"erosion_mm": -1.0}, InputError, id="negative-erosion"),
        pytest.param({"r2star": np.zeros((2, 2, 2), np.float32)}, GeometryError, id="r2-shape"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, object], error: type[Exception]) -> None:
    ff, labels = body_with_cortex()
    with pytest.raises(error):
        bmf_table(ff, labels, affine=AFFINE, **kwargs)  # type: ignore[arg-type]


def test_unknown_labels_and_shape_mismatch_raise() -> None:
    ff, labels = body_with_cortex()
    with pytest.raises(InputError, match=r"\[3\]"):
        bmf_table(ff, np.where(labels > 0, 3, 0).astype(np.uint8), affine=AFFINE)
    with pytest.raises(GeometryError):
        bmf_table(ff[:2], labels, affine=AFFINE)


def test_empty_label_map_gives_an_empty_table() -> None:
    ff, labels = body_with_cortex()
    assert bmf_table(ff, np.zeros_like(labels), affine=AFFINE) == []


@settings(max_examples=25, deadline=None)
@given(
    depths=st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 3.0)),
    offset=st.floats(-20.0, 20.0),
)
def test_more_erosion_never_adds_voxels_and_an_ff_offset_shifts_the_mean(
    depths: tuple[float, float], offset: float
) -> None:
    ff, labels = body_with_cortex()
    small, large = sorted(depths)
    (a,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=small)
    (b,) = bmf_table(ff, labels, affine=AFFINE, erosion_mm=large)
    assert b.n_voxels <= a.n_voxels
    (c,) = bmf_table(ff + np.float32(offset), labels, affine=AFFINE, erosion_mm=small)
    if a.n_voxels:
        assert c.ff_mean == pytest.approx(a.ff_mean + offset, abs=2e-3)


def _write_nifti(path: object, array: np.ndarray, affine: np.ndarray) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, affine), str(path))


def test_cli_measure_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ff, labels = body_with_cortex()
    _write_nifti(tmp_path / "ff.nii.gz", ff / 100.0, AFFINE)  # stored as a 0-1 fraction
    _write_nifti(tmp_path / "labels.nii.gz", labels, AFFINE)
    out = tmp_path / "bmf.csv"
    code = main(["measure", str(tmp_path / "ff.nii.gz"), str(tmp_path / "labels.nii.gz"),
                 "--out", str(out), "--erosion-mm", "1", "--subject", "S3", "--json"])
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["subject"], row["level"], row["n_voxels"]) == ("S3", "L3", 48)
    assert row["ff_mean"] == pytest.approx(14.5)
    assert load_table(out)[0].ff_mean == pytest.approx(14.5)


@pytest.mark.parametrize(
    ("study_json", "expected"),
    [
        pytest.param(None, ("sub05", "1"), id="folder-name"),
        pytest.param({"subject": "P004", "scan": "2"}, ("P004", "2"), id="study-json"),
    ],
)
def test_cli_measure_names_the_subject_without_subject_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], study_json: dict[str, str] | None,
    expected: tuple[str, str],
) -> None:
    ff, labels = body_with_cortex()
    folder = tmp_path / "sub05"
    folder.mkdir()
    _write_nifti(folder / "ff.nii.gz", ff, AFFINE)
    _write_nifti(folder / "labels.nii.gz", labels, AFFINE)
    if study_json is not None:
        (folder / "study.json").write_text(json.dumps(study_json))
    args = ["measure", str(folder / "ff.nii.gz"), str(folder / "labels.nii.gz")]
    assert main([*args, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["subject"], row["scan"]) == expected
    assert main([*args, "--scan", "3"]) == 0  # the table for people; --scan wins
    assert f"BMF per level, subject {expected[0]} scan 3" in capsys.readouterr().out


def test_cli_measure_refuses_mismatched_grids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ff, labels = body_with_cortex()
    _write_nifti(tmp_path / "ff.nii.gz", ff, AFFINE)
    _write_nifti(tmp_path / "labels.nii.gz", labels[:4], AFFINE)
    code = main(["measure", str(tmp_path / "ff.nii.gz"), str(tmp_path / "labels.nii.gz")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "labels.nii.gz" in err and len(err.splitlines()) == 1


def test_erosion_in_the_bounding_box_equals_erosion_of_the_whole_slice() -> None:
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    aff = np.diag([3.0, 1.3, 0.9, 1.0])
    for trial in range(40):
        region = rng.random((3, 30, 27)) > (0.3 if trial % 2 else 0.6)
        region[:, 5:12, 20:27] = True  # touches the border
        depth = float(rng.uniform(0.5, 4.0))
        whole = np.stack([ndi.distance_transform_edt(s, sampling=(1.3, 0.9)) > depth
                          for s in region])
        assert np.array_equal(erode_in_plane(region, aff, erosion_mm=depth), whole)
