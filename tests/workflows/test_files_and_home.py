"""What a run leaves on disk besides its outputs (nothing under HOME: no ONNX Runtime
telemetry store), the modes of its outputs (those of ``open`` under the umask), and one line
with exit 2 when an output cannot be written (issue 15, items 4-6)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vertebrafat.cli import main
from vertebrafat.core.errors import OutputError
from vertebrafat.io.atomic import output_error, write_text_atomic

CLI = [sys.executable, "-m", "vertebrafat.cli"]


def _run(args: list[str], home: Path, umask: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ORT_"))}
    env["HOME"] = str(home)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False,
                          preexec_fn=lambda: os.umask(umask))


def _modes(folder: Path) -> set[tuple[str, int]]:
    return {(p.name, stat.S_IMODE(p.stat().st_mode)) for p in folder.rglob("*")}


@pytest.mark.slow
def test_segment_writes_nothing_under_home_and_files_honour_the_umask(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    made = _run(["phantom", str(tmp_path / "ph"), "--subjects", "1", "--format", "dicom-ge"],
                home, 0o022)
    assert made.returncode == 0, made.stderr
    run = _run(["segment", str(tmp_path / "ph" / "P001" / "dicom-ge"), str(tmp_path / "out")],
               home, 0o027)
    assert run.returncode == 0, run.stderr
    assert list(home.rglob("*")) == []  # no ~/.cache/Microsoft/DeveloperTools/.onnxruntime
    modes = _modes(tmp_path / "out")
    assert {name for name, _ in modes} >= {"labels.nii.gz", "seg.dcm", "bmf.csv", "qc.png"}
    assert {mode for _, mode in modes} == {0o640}
    phantom = _modes(tmp_path / "ph")
    assert {mode for name, mode in phantom if (tmp_path / "ph").joinpath(name).suffix != ""} \
        <= {0o644, 0o755}
    assert {mode for _, mode in phantom} == {0o644, 0o755}


def test_atomic_writes_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~0o022 == 0o644


@pytest.mark.parametrize("verb", ["segment", "measure", "phantom", "cohort"])
def test_an_output_below_a_regular_file_is_one_line_and_exit_2(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    out = blocker / "out"
    import nibabel as nib
    import numpy as np

    study = tmp_path / "study"
    study.mkdir()
    nib.save(nib.Nifti1Image(np.full((4, 8, 8), 90.0, np.float32), np.diag([4.0, 1, 1, 1])),
             study / "ff.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((4, 8, 8), np.uint8) * 20, np.diag([4.0, 1, 1, 1])),
             study / "labels.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((4, 8, 8), np.float32), np.diag([4.0, 1, 1, 1])),
             study / "water.nii.gz")
    args = {
        "segment": ["segment", str(study), str(out)],
        "measure": ["measure", str(study / "ff.nii.gz"), str(study / "labels.nii.gz"),
                    "--out", str(out / "bmf.csv")],
        "phantom": ["phantom", str(out), "--subjects", "1"],
        "cohort": ["cohort", str(tmp_path), str(out), "--workers", "0"],
    }[verb]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {out}")
    assert err.endswith(f"cannot write ({blocker} is a file, not a folder)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "study"]


def test_a_full_disk_is_named_in_words() -> None:
    err = output_error("/data/out/bmf.csv", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(err, OutputError)
    assert str(err) == "/data/out/bmf.csv: cannot write (no space left on device)"


def test_an_os_error_no_writer_named_is_still_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vertebrafat.workflows.loading as loading

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/data/sub01/IM0001")

    monkeypatch.setattr(loading, "load_study", refuse)
    assert main(["info", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: /data/sub01/IM0001: Permission denied\n"
    with pytest.raises(PermissionError):
        main(["info", str(tmp_path), "--debug"])
