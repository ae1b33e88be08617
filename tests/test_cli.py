"""The CLI shell: exit codes, fast start (no heavy imports), README/CI command identity, plain
scriptable output (tables on stdout, messages on stderr, --json, --version, --debug)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vertebrafat.cli import main
from vertebrafat.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnxruntime", "matplotlib", "dask", "monai", "highdicom", "sklearn", "pingouin")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_unknown_command_exits_two() -> None:
    assert main(["no-such-verb"]) == 2


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from vertebrafat.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    assert block is not None, "README must start with a shell block of two commands"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_starts_with_exactly_two_commands() -> None:
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert "vertebrafat demo" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci


# ---- plain, scriptable output (issue 15) ---------------------------------------------------

def _commands() -> dict[str, Any]:
    import typer

    from vertebrafat.cli import app

    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from vertebrafat.core.version import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"vertebrafat {__version__}\n"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--debug", "measure", "nope.nii.gz", "x.nii.gz"], id="before-the-verb"),
        pytest.param(["measure", "nope.nii.gz", "--debug", "x.nii.gz"], id="between-arguments"),
        pytest.param(["measure", "nope.nii.gz", "x.nii.gz", "--debug"], id="at-the-end"),
    ],
)
def test_debug_anywhere_lets_the_error_through(args: list[str]) -> None:
    with pytest.raises(InputError, match=r"^nope\.nii\.gz: no such file$"):
        main(args)


def test_without_debug_an_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", "nope.nii.gz", "x.nii.gz"]) == 2
    assert capsys.readouterr().err == "error: nope.nii.gz: no such file\n"


def test_debug_after_the_verb_prints_a_traceback() -> None:
    args = [sys.executable, "-m", "vertebrafat.cli", "measure", "nope.nii.gz", "x.nii.gz"]
    plain = subprocess.run(args, capture_output=True, text=True)
    debug = subprocess.run([*args, "--debug"], capture_output=True, text=True)
    assert (plain.returncode, plain.stderr) == (2, "error: nope.nii.gz: no such file\n")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().endswith("InputError: nope.nii.gz: no such file")


def test_help_shows_no_bool_metavar_and_no_huge_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ["", *_commands()]:
        assert main([name, "--help"] if name else ["--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out, name
        assert "1000000000" not in out and "1e+09" not in out, name
    main(["train", "--help"])
    assert "(default: no limit)" in " ".join(capsys.readouterr().out.split())


def test_every_verb_that_prints_results_has_json() -> None:
    without = [name for name, cmd in _commands().items()
               if "--json" not in [o for p in cmd.params for o in getattr(p, "opts", [])]]
    assert without == []


def test_reproduce_scale_outside_0_1_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reproduce", str(tmp_path / "r"), "--scale", "2"]) == 2
    assert capsys.readouterr().err == (
        "error: reproduce: --scale must be in (0, 1] (a share of the study's cohort), got 2\n")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("paths", "roles", "expected"),
    [
        pytest.param(["S", "O"], {}, (Path("S"), Path("O")), id="study-out"),
        pytest.param(["O"], {"water": Path("w.nii.gz")}, (None, Path("O")), id="water-out"),
        pytest.param(["S", "O"], {"water": Path("w.nii.gz")}, (Path("S"), Path("O")),
                     id="study-out-water-overrides"),
    ],
)
def test_segment_positionals(
    paths: list[str], roles: dict[str, Path], expected: tuple[Path | None, Path]
) -> None:
    from vertebrafat.cli import study_and_out

    got = study_and_out([Path(p) for p in paths], water=roles.get("water"), others=())
    assert got == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--fat", "f.nii.gz", "out"], "ambiguous: out is either STUDY (then OUT is "
                     "missing) or OUT (then --water is missing)", id="fat-without-water"),
        pytest.param(["study"], "OUT is missing after study", id="study-only"),
        pytest.param([], "0 paths given", id="nothing"),
        pytest.param(["a", "b", "c"], "3 paths given", id="three"),
    ],
)
def test_segment_bad_positionals_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["segment", *args]) == 2
    assert capsys.readouterr().err == (
        f"error: segment: {message}; give STUDY OUT, or --water FILE [--fat FILE ...] OUT\n")


def test_segment_water_then_out_table_on_stdout_files_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vertebrafat.phantom import generate_subject
    from vertebrafat.workflows.phantom_cohort import save_phantom_study

    study = save_phantom_study(generate_subject(seed=5, index=0), tmp_path / "P001")
    out = tmp_path / "seg"
    assert main(["segment", "--water", str(study / "water.nii.gz"), "--fat",
                 str(study / "fat.nii.gz"), str(out)]) == 0
    captured = capsys.readouterr()
    assert (out / "bmf.csv").is_file() and (out / "qc.png").is_file()
    lines = captured.out.splitlines()
    assert lines[0] == "BMF per level, subject P001 scan 1"  # study.json beside the water
    assert lines[1].split() == ["level", "label", "voxels", "slices", "volume", "mL", "FF",
                                "mean", "%", "FF", "median", "%", "FF", "SD", "FF", "P5",
                                "FF", "P95", "flags"]
    assert str(out) not in captured.out and "\x1b[" not in captured.out
    assert captured.err == "wrote " + " ".join(str(out / n) for n in (
        "labels.nii.gz", "probability.nii.gz", "bmf.csv", "bmf.json", "qc.png",
        "labels.itksnap.txt", "labels.ctbl")) + "\n"


def _four_columns(path: Path, rows: list[tuple[str, str, str, float]]) -> Path:
    path.write_text("subject,scan,level,ff_mean\n"
                    + "".join(f"{s},{c},{lv},{ff}\n" for s, c, lv, ff in rows))
    return path


def test_agreement_of_hand_made_four_column_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _four_columns(tmp_path / "auto.csv", [("s1", "1", "L1", 30.0), ("s2", "1", "L1", 32.5),
                                              ("s3", "1", "L1", 41.0), ("s4", "1", "L1", 28.0)])
    b = _four_columns(tmp_path / "manual.csv", [("s1", "1", "L1", 31.0), ("s2", "1", "L1", 33.0),
                                                ("s3", "1", "L1", 40.0), ("s4", "1", "L1", 29.5)])
    assert main(["agreement", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "Bland-Altman of ff_mean: differences auto − manual (pp), 4 pair(s)")
    assert out.splitlines()[3].split()[:6] == ["all", "4", "-0.50", "(-2.22", "to", "1.22)"]
    assert "\x1b[" not in out and all(ln == ln.rstrip() for ln in out.splitlines())


def test_repeatability_of_a_four_column_table_shows_icc_with_ci(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = _four_columns(tmp_path / "t.csv", [(s, c, "L1", ff + (c == "2") * d) for s, ff, d in
                                           (("A", 30, 1), ("B", 40, -1), ("C", 50, 0.5))
                                           for c in ("1", "2")])
    assert main(["repeatability", str(t), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert main(["repeatability", str(t)]) == 0
    out = capsys.readouterr().out
    (lo, hi), icc = r["icc_ci"]["ICC2"], r["icc"]["ICC2"]
    assert f"{icc:.3f} ({lo:.3f} to {hi:.3f})" in out.splitlines()[3]
    assert "ICC, all levels (Shrout & Fleiss 1979)" in out


@pytest.mark.parametrize("verb", ["agreement", "repeatability"])
def test_a_table_missing_a_required_column_is_named(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("subject,level,ff_mean\ns1,L1,30\n")
    assert main([verb, str(bad), *([str(bad)] if verb == "agreement" else [])]) == 2
    assert capsys.readouterr().err == (f"error: {bad}: missing column 'scan' (this table needs "
                                       f"subject, scan, level, ff_mean)\n")
    main([verb, "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert ("needs the columns subject, scan, level and the --column (ff_mean by default); no "
            "other column is used") in helptext


def test_readme_label_list_has_every_level_of_the_label_table() -> None:
    from vertebrafat.core.labels import LEVEL_OF_LABEL

    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Label convention"):text.index("Naming counts up")]
    for label, level in LEVEL_OF_LABEL.items():
        if label >= 15:  # T8 onwards written one by one; T1-T7 as the range 8-14
            assert f"{label} {level}" in section.replace("sacrum (S1)", "S1"), level
    assert "8–14 T1–T7" in section


def test_a_skipped_file_is_one_warning_line(tmp_path: Path, tiny_image: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from vertebrafat.io.dicom.write import save_dicom_study

    written = save_dicom_study(tiny_image, tmp_path / "s", vendor="ge", patient_name="A^B",
                               patient_id="A", uid_seed=1)
    (tmp_path / "s" / "IM9999").write_bytes(written[0].read_bytes()[:3000])  # cut in its pixels
    assert main(["info", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err.splitlines()
    # info's notes first, then the run's warnings, one line each
    assert err == [f"note: skipped unreadable file {tmp_path / 's' / 'IM9999'}",
                   f"warning: {tmp_path / 's' / 'IM9999'}: truncated DICOM pixel data, "
                   "file skipped"]


def _echo_npz(folder: Path) -> Path:
    from vertebrafat.waterfat.model import synthesize

    te = 1.2e-3 + 1e-3 * np.arange(6)
    echoes = synthesize(np.full((2, 8, 8), 600.0), np.full((2, 8, 8), 400.0), r2star=40.0,
                        field_map_hz=30.0, te_s=te, field_strength_t=3.0)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "echoes.npz", echoes=echoes.astype(np.complex64),
             echo_times_ms=te * 1e3, affine=np.diag([4.0, 1.5, 1.5, 1.0]),
             field_strength_t=np.asarray(3.0))
    return folder / "echoes.npz"


def test_separate_json_lists_the_files(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    npz = _echo_npz(tmp_path / "in")
    assert main(["separate", str(npz), str(tmp_path / "out"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["files"]) == ["fat", "ff", "fieldmap", "json", "qc", "r2star", "study",
                                    "water"]
    assert out["field_strength_t"] == 3.0 and out["precession_clockwise"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["missing.mat", "out"], "error: missing.mat: no such file or folder\n",
                     id="missing-input"),
        pytest.param(["{npz}", "out", "--precession", "sideways"],
                     "error: separate: --precession must be clockwise or anticlockwise, got "
                     "'sideways'\n", id="bad-precession"),
        pytest.param(["{npz}", "out", "--method", "magic"],
                     "error: separate: method must be one of graphcut, growing, voxelwise, got "
                     "'magic'\n", id="bad-method"),
    ],
)
def test_separate_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    npz = _echo_npz(tmp_path / "in")
    filled = [str(npz) if a == "{npz}" else str(tmp_path / a) if a == "out" else a
              for a in args]
    assert main(["separate", *filled]) == 2
    assert capsys.readouterr().err == message
    assert not (tmp_path / "out").exists()


class _Exited(Exception):
    pass


def _record_exit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise _Exited

    monkeypatch.setattr("vertebrafat.cli.os._exit", fake_exit)
    return codes


def test_run_ends_with_os_exit_and_the_commands_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from vertebrafat import cli

    codes = _record_exit(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["vertebrafat", "measure", "nope.nii.gz", "x.nii.gz"])
    with pytest.raises(_Exited):
        cli.run()
    assert codes == [2]


def test_fast_exit_leaves_running_threads_and_dask_to_the_normal_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from vertebrafat.cli import fast_exit

    codes = _record_exit(monkeypatch)
    release = threading.Event()
    worker = threading.Thread(target=release.wait)  # not a daemon: Python would wait for it
    worker.start()
    try:
        fast_exit(0)  # returns: the normal exit must join the thread
    finally:
        release.set()
        worker.join()
    monkeypatch.setitem(sys.modules, "distributed", sys)
    fast_exit(0)
    assert codes == []
    monkeypatch.delitem(sys.modules, "distributed")
    with pytest.raises(_Exited):
        fast_exit(3)
    assert codes == [3]


def test_fast_exit_flushes_piped_output_first() -> None:
    # print() to a pipe is block-buffered: without the flush before os._exit it would be lost
    code = "from vertebrafat.cli import fast_exit\nprint('table row')\nfast_exit(4)"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=buffered)
    assert (done.returncode, done.stdout) == (4, "table row\n")
    version = subprocess.run([sys.executable, "-m", "vertebrafat", "--version"],
                             capture_output=True, text=True)
    assert (version.returncode, version.stdout.startswith("vertebrafat ")) == (0, True)
