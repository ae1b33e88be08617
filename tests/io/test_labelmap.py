"""Naming the rows of ``vertebrafat measure`` (io/labelmap.py)."""

import json
from pathlib import Path

import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.io.labelmap import measure_identity


def test_subject_is_the_ff_maps_folder_and_scan_1(tmp_path: Path) -> None:
    (tmp_path / "sub07").mkdir()
    assert measure_identity(tmp_path / "sub07" / "ff.nii.gz") == ("sub07", "1")


def test_study_json_beside_the_ff_map_names_subject_and_scan(tmp_path: Path) -> None:
    folder = tmp_path / "P001-scan2"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"subject": "P001", "scan": 2}))
    assert measure_identity(folder / "ff.nii.gz") == ("P001", "2")


def test_a_broken_study_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text("[1, 2")
    with pytest.raises(InputError) as info:
        measure_identity(tmp_path / "ff.nii.gz")
    assert str(info.value) == (f"{tmp_path / 'study.json'}: not a valid study.json (a JSON "
                               f"object with subject and scan)")
