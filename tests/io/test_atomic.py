"""Atomic writers leave either the complete new file or nothing."""

from pathlib import Path

import pytest

from vertebrafat.io.atomic import atomic_path, write_text_atomic


def test_write_text_atomic_creates_parents(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.txt"]


def test_failure_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "labels.nii.gz"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_version(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
