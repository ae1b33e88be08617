"""Tests of vertebrafat.workflows.phantom_cohort and the ``phantom`` CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.cli import main
from vertebrafat.core.errors import InputError
from vertebrafat.io.table import load_table
from vertebrafat.phantom import PhantomStudy, generate_subject
from vertebrafat.workflows.loading import load_study
from vertebrafat.workflows.phantom_cohort import (
    expand_formats,
    save_phantom_study,
    write_phantom_cohort,
)


@pytest.fixture(scope="module")
def study() -> PhantomStudy:
    return generate_subject(seed=4, index=0, echoes=True)


@pytest.fixture(scope="module")
def written(study: PhantomStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_phantom_study(
        study,
        tmp_path_factory.mktemp("ph") / "P001",
        formats=["nifti", "dicom-ge", "dicom-siemens", "dicom-philips"],
    )


def test_layout(written: Path, study: PhantomStudy) -> None:
    names = {p.name for p in written.iterdir()}
    assert names == {
        "water.nii.gz",
        "fat.nii.gz",
        "ff.nii.gz",
        "r2star.nii.gz",
        "labels.nii.gz",
        "rater_a.nii.gz",
        "rater_b.nii.gz",
        "ribs.nii.gz",
        "annotated_slices.json",
        "truth.csv",
        "lesions.json",
        "acquisition.json",
        "study.json",
        "echoes.npz",
        "dicom-ge",
        "dicom-siemens",
        "dicom-philips",
    }
    assert json.loads((written / "study.json").read_text())["subject"] == "P001"
    assert json.loads((written / "annotated_slices.json").read_text()) == list(
        study.annotated_slices
    )
    assert load_table(written / "truth.csv") == list(study.truth)
    with np.load(written / "echoes.npz") as z:
        assert z["echoes"].shape == (6, *study.image.shape)
        assert z["echoes"].dtype == np.complex64


def test_nifti_round_trip(written: Path, study: PhantomStudy) -> None:
    back = load_study(written)
    assert back.channels == ("water", "fat", "ff", "r2star")
    np.testing.assert_allclose(back.affine, study.image.affine, atol=1e-4)
    np.testing.assert_array_equal(back.water, study.image.water)
    np.testing.assert_allclose(back.ff, study.image.ff, atol=1e-4)  # type: ignore[arg-type]


@pytest.mark.parametrize("vendor", [pytest.param(v, id=v) for v in ("ge", "siemens", "philips")])
def test_dicom_round_trip(written: Path, study: PhantomStudy, vendor: str) -> None:
    back = load_study(written / f"dicom-{vendor}")
    assert {"water", "fat", "ff"} <= set(back.channels)
    assert back.shape == study.image.shape
    np.testing.assert_allclose(back.affine, study.image.affine, atol=1e-4)
    inside = study.labels > 0
    assert float(np.abs(back.ff[inside] - study.image.ff[inside]).max()) < 0.6  # type: ignore[index]


def test_same_seed_identical_bytes_whatever_the_workers(tmp_path: Path) -> None:
    """Serial and 2-process runs of the same cohort write byte-identical folders."""
    for run, workers in (("a", 1), ("b", 2)):
        folders = write_phantom_cohort(
            tmp_path / run, n_subjects=1, seed=9, rescans=True, workers=workers
        )
        assert [f.name for f in folders] == ["P001", "P001-scan2"]
    for folder in ("P001", "P001-scan2"):
        files = sorted(p.name for p in (tmp_path / "a" / folder).iterdir())
        assert len(files) == 13
        for name in files:
            assert (tmp_path / "a" / folder / name).read_bytes() == (
                tmp_path / "b" / folder / name
            ).read_bytes(), f"{folder}/{name}"


def test_workers_below_one_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--workers must be at least 1, got 0"):
        write_phantom_cohort(tmp_path, n_subjects=1, seed=0, workers=0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(["all"], ("nifti", "dicom-ge", "dicom-siemens", "dicom-philips",
                                  "nifti-dcm2niix", "dicom-ge-enhanced", "dicom-siemens-enhanced",
                                  "dicom-philips-enhanced"), id="all"),
        pytest.param(["dicom-ge", "nifti"], ("nifti", "dicom-ge"), id="ordered"),
    ],
)
def test_expand_formats(given: list[str], expected: tuple[str, ...]) -> None:
    assert expand_formats(given) == expected


def test_unknown_format_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown format 'dicom-x'"):
        expand_formats(["dicom-x"])


def test_cli_writes_cohort_with_rescans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "phantom",
            str(tmp_path / "out"),
            "--subjects",
            "1",
            "--seed",
            "2",
            "--rescans",
            "--preview",
            "--json",
        ]
    )
    assert code == 0
    folders = json.loads(capsys.readouterr().out)
    assert [Path(f).name for f in folders] == ["P001", "P001-scan2"]
    assert (tmp_path / "out" / "P001-scan2" / "preview.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "P001-scan2" / "study.json").read_text())["scan"] == "2"


def test_cli_bad_format_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phantom", str(tmp_path), "--subjects", "1", "--format", "png"]) == 2
    assert "unknown format 'png'" in capsys.readouterr().err


def test_id_prefix_changes_the_ids_not_the_images() -> None:
    plain = generate_subject(seed=3, index=1)
    named = generate_subject(seed=3, index=1, id_prefix="c3_")
    assert (plain.image.meta.subject, named.image.meta.subject) == ("P002", "c3_P002")
    assert np.array_equal(plain.image.water, named.image.water)
    assert np.array_equal(plain.labels, named.labels)


def test_cli_id_prefix_lets_two_cohorts_share_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cohorts of seeds 1 and 2 pooled in one folder: ids s1-P001 and s2-P001, never P001 twice;
    the prefix names the folder, study.json, truth.csv and the study read back."""
    out = tmp_path / "pooled"
    for seed in (1, 2):
        assert main(["phantom", str(out), "--subjects", "1", "--seed", str(seed),
                     "--id-prefix", f"s{seed}-", "--workers", "1", "--json"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["s1-P001", "s2-P001"]
    for seed in (1, 2):
        folder = out / f"s{seed}-P001"
        assert json.loads((folder / "study.json").read_text())["subject"] == f"s{seed}-P001"
        assert {r.subject for r in load_table(folder / "truth.csv")} == {f"s{seed}-P001"}
        assert load_study(folder).meta.subject == f"s{seed}-P001"
    assert main(["phantom", str(tmp_path / "bad"), "--id-prefix", "a/b"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: phantom: id prefix 'a/b' may hold only letters, digits, '-', '_' "
                   "and '.'\n")
