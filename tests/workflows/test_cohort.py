"""Cohort discovery and bookkeeping (workflows/cohort.py); the end-to-end run: test_end_to_end."""

from __future__ import annotations

from pathlib import Path

import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.workflows.cohort import StudyOutcome, find_studies, outcomes_csv, study_name


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_find_studies_nifti_and_dicom(tmp_path: Path) -> None:
    _touch(tmp_path / "P001" / "water.nii.gz")
    _touch(tmp_path / "P001" / "dicom-ge" / "1001" / "IM0001.dcm")
    _touch(tmp_path / "P002-scan2" / "water.nii")
    _touch(tmp_path / "site" / "S9" / "a.dcm")
    _touch(tmp_path / "site" / "S9" / "b.dcm")
    _touch(tmp_path / "notes" / "readme.txt")
    found = [study_name(p, tmp_path) for p in find_studies(tmp_path)]
    assert found == ["P001", "P001_dicom-ge", "P002-scan2", "site_S9"]


def test_find_studies_refuses_empty_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no study found"):
        find_studies(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        find_studies(tmp_path / "absent")


def test_outcomes_csv_is_exact() -> None:
    rows = [
        StudyOutcome("P001", "/d/P001", "/o/P001", "ok", 5, 1.23456),
        StudyOutcome("P002", "/d/P002", "/o/P002", "error", 0, 0.5, "no water"),
    ]
    assert outcomes_csv(rows) == (
        "name,study,out_dir,status,n_levels,seconds,error\n"
        "P001,/d/P001,/o/P001,ok,5,1.235,\n"
        "P002,/d/P002,/o/P002,error,0,0.5,no water\n"
    )
