"""``cohort`` with the shipped model on phantom studies: mixed folder layouts, resume after a
settings change, a failure of any kind as a row, Dask with two worker processes, a killed
worker, Ctrl-C, and the report in headless Chromium (slow, run in CI)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from vertebrafat.cli import main
from vertebrafat.io.table import load_table
from vertebrafat.workflows.cohort import StudyOutcome, run_cohort

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def phantom_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two phantom subjects (seed 1): P001 as NIfTI, GE DICOM and dcm2niix NIfTI; P002 as
    NIfTI and Siemens DICOM (series in sub-folders)."""
    from vertebrafat.phantom import generate_subject
    from vertebrafat.workflows.phantom_cohort import save_phantom_study

    src = tmp_path_factory.mktemp("phantom")
    for index, formats in ((0, ["nifti", "dicom-ge", "nifti-dcm2niix"]),
                           (1, ["nifti", "dicom-siemens"])):
        study = generate_subject(seed=1, index=index)
        save_phantom_study(study, src / study.image.meta.subject, formats=formats)
    return src


def nifti_copy(src: Path, dst: Path) -> Path:
    """The NIfTI study of a phantom folder (its own files, no DICOM sub-folders)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, dst / f.name)
    return dst


def mixed_root(src: Path, root: Path) -> list[str]:
    """A cohort root of real-looking layouts; returns the names of its good studies.

    ``ge_flat``: P001's GE DICOM in one folder, names without extension (GE's MRDC files);
    ``site/sub02``: P002's Siemens DICOM, series in sub-folders; ``P001``: a NIfTI role folder;
    ``conv``: P001 as dcm2niix converts it (roles in JSON sidecars); ``linked``: a symbolic
    link to P002's NIfTI folder elsewhere; ``broken``: a water.nii.gz that is not NIfTI.
    """
    flat = root / "ge_flat"
    flat.mkdir(parents=True)
    for k, f in enumerate(sorted((src / "P001" / "dicom-ge").rglob("*.dcm"))):
        shutil.copy2(f, flat / f"MRDC{k:05d}")
    shutil.copytree(src / "P002" / "dicom-siemens", root / "site" / "sub02")
    nifti_copy(src / "P001", root / "P001")
    shutil.copytree(src / "P001" / "nifti-dcm2niix", root / "conv")
    outside = nifti_copy(src / "P002", root.parent / f"{root.name}-elsewhere" / "P002")
    os.symlink(outside, root / "linked")
    (root / "broken").mkdir()
    (root / "broken" / "water.nii.gz").write_bytes(b"not a nifti file")
    return ["P001", "conv", "ge_flat", "linked", "site_sub02"]


def _cli(args: list[object]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _status(out: Path) -> dict[str, tuple[str, str, str]]:
    with (out / "cohort_status.csv").open() as f:
        return {r["name"]: (r["status"], r["kind"], r["error"]) for r in csv.DictReader(f)}


@dataclass(frozen=True)
class Measured:
    root: Path
    out: Path
    good: list[str]
    dry_run: tuple[int, str, str]
    out_after_dry_run: bool
    first: tuple[int, str, str]


@pytest.fixture(scope="module")
def measured(phantom_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    base = tmp_path_factory.mktemp("mixed")
    root, out = base / "root", base / "out"
    good = mixed_root(phantom_source, root)
    dry = _cli(["cohort", root, out, "--dry-run", "--json"])
    exists = out.exists()
    first = _cli(["cohort", root, out, "--workers", "0", "--log-every", "2"])
    return Measured(root, out, good, dry, exists, first)


def test_dry_run_lists_every_layout_and_writes_nothing(measured: Measured) -> None:
    code, stdout, _ = measured.dry_run
    assert code == 0 and not measured.out_after_dry_run
    listing = [(r["name"], r["format"], r["action"], r["reason"]) for r in json.loads(stdout)]
    assert listing == [
        ("P001", "nifti", "compute", "new"), ("broken", "nifti", "compute", "new"),
        ("conv", "nifti", "compute", "new"), ("ge_flat", "dicom", "compute", "new"),
        ("linked", "nifti", "compute", "new"), ("site_sub02", "dicom", "compute", "new"),
    ]


def test_every_good_study_is_measured_once(measured: Measured) -> None:
    code, stdout, stderr = measured.first
    assert code == 0
    status = _status(measured.out)
    assert {n: s[0] for n, s in status.items()} == {**dict.fromkeys(measured.good, "ok"),
                                                     "broken": "error"}
    assert status["broken"][1] == "InputError"
    bad = measured.root / "broken" / "water.nii.gz"
    assert status["broken"][2] == (f"{bad}: not a readable NIfTI file (ImageFileError: File "
                                   f"{bad} is not a gzip file)")
    lines = stderr.splitlines()
    assert lines[0] == (f"{measured.root}: 6 studies: 6 to compute (6 new), 0 skipped (same "
                        "settings and inputs)")
    assert [ln.split(" done")[0] for ln in lines if re.match(r"cohort: \d/6 done", ln)] == [
        "cohort: 2/6", "cohort: 4/6", "cohort: 6/6"]
    assert sum(ln.startswith("failed: broken: InputError: ") for ln in lines) == 1
    assert re.fullmatch(r"cohort: 6 studies in [0-9.]+ s: 5 measured, 0 skipped \(done "
                        r"before\), 1 failed; wrote .*cohort_status.csv .*cohort_bmf.csv "
                        r".*report.html", lines[-1])
    assert "Cohort: 5 ok, 0 skipped, 1 error" in stdout
    entries = sorted(p.name for p in measured.out.iterdir())
    assert entries == sorted([*measured.good, "broken.error.json", "cohort_bmf.csv",
                              "cohort_status.csv", "report.html"])  # no staging, no partial
    ff = {}
    for name in measured.good:
        record = json.loads((measured.out / name / "run.json").read_text())
        assert record["settings"]["erosion_mm"] == 2.0 and record["inputs"], name
        ff[name] = {r.level: r.ff_mean for r in load_table(measured.out / name / "bmf.csv")}
    for level in ("L1", "L2", "L3", "L4", "L5"):  # P001 as NIfTI, GE DICOM without
        values = [ff[n][level] for n in ("P001", "conv", "ge_flat")]  # extensions, dcm2niix
        assert max(values) - min(values) < 0.5, (level, values)
        assert abs(ff["linked"][level] - ff["site_sub02"][level]) < 0.5, level  # P002 twice
    rows = load_table(measured.out / "cohort_bmf.csv")
    assert len(rows) == sum(len(v) for v in ff.values())


def test_rerun_skips_and_a_settings_change_recomputes(measured: Measured, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(measured.out, out)
    code, _, stderr = _cli(["cohort", measured.root, out, "--workers", "0"])
    assert code == 0
    assert stderr.splitlines()[0].endswith(
        "6 studies: 1 to compute (1 failed before), 5 skipped (same settings and inputs)")
    assert {n: s[0] for n, s in _status(out).items()} == {
        **dict.fromkeys(measured.good, "skipped"), "broken": "error"}
    code, _, stderr = _cli(["cohort", measured.root, out, "--workers", "0", "--erosion-mm", "0"])
    assert code == 0
    assert stderr.splitlines()[0].endswith(
        "6 studies: 6 to compute (1 failed before, 5 settings changed: erosion_mm 2.0 -> 0.0), "
        "0 skipped (same settings and inputs)")
    assert {n: s[0] for n, s in _status(out).items()} == {
        **dict.fromkeys(measured.good, "ok"), "broken": "error"}
    assert {r.erosion_mm for r in load_table(out / "cohort_bmf.csv")} == {0.0}


def test_any_exception_is_a_failure_row(
    phantom_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vertebrafat.workflows import study

    root, out = tmp_path / "root", tmp_path / "out"
    for name, src in (("A", "P001"), ("B", "P002"), ("bug", "P001")):
        nifti_copy(phantom_source / src, root / name)
    analyse = study.analyse_study

    def sometimes_buggy(image: object, *args: object, **kwargs: object) -> object:
        if str(image.meta.source).endswith("bug"):  # type: ignore[attr-defined]
            raise RuntimeError("simulated bug")
        return analyse(image, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(study, "analyse_study", sometimes_buggy)
    out.mkdir()
    (out / "B").write_text("a file where B's output folder should be\n")
    run = run_cohort(root, out, workers=0)
    got = {o.name: (o.status, o.kind, o.error) for o in run.outcomes}
    assert got == {
        "A": ("ok", "", ""),
        "B": ("error", "OutputError", f"{out / 'B'}: cannot write ({out / 'B'} is a file, "
                                       "not a folder)"),
        "bug": ("error", "RuntimeError", "simulated bug"),
    }
    record = json.loads((out / "bug.error.json").read_text())
    assert "RuntimeError: simulated bug" in record["traceback"]
    assert not (out / "bug").exists()
    assert _status(out)["bug"] == ("error", "RuntimeError", "simulated bug")
    assert (out / "report.html").is_file()


@pytest.mark.parametrize("how", ["workers", "scheduler"])
def test_dask_two_workers_with_a_broken_study(
    phantom_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """``--workers 2`` starts a LocalCluster of 2 processes; ``--scheduler ADDRESS`` uses one
    that is running (here a LocalCluster of 2 processes, as ``dask scheduler`` + ``dask worker``
    would be)."""
    from distributed import LocalCluster

    root, out = tmp_path / "root", tmp_path / "out"
    nifti_copy(phantom_source / "P001", root / "P001")
    nifti_copy(phantom_source / "P002", root / "P002")
    (root / "P003").mkdir()
    (root / "P003" / "water.nii").write_bytes(b"\0" * 400)
    with contextlib.ExitStack() as stack:
        if how == "workers":
            args = ["--workers", "2"]
        else:
            cluster = stack.enter_context(LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.CRITICAL))
            args = ["--scheduler", cluster.scheduler_address]
        assert main(["cohort", str(root), str(out), *args]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert {n: s[:2] for n, s in _status(out).items()} == {
        "P001": ("ok", ""), "P002": ("ok", ""), "P003": ("error", "InputError")}


def _allocator_environ() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in
                 ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX"))


def _profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_a_killed_worker_loses_no_study(phantom_source: Path, tmp_path: Path) -> None:
    """The cluster ``cohort --workers 2`` starts: a worker killed mid-study is replaced and
    its study run again; every worker, the replacement too, has glibc's trim and mmap
    thresholds at 64 MiB (Dask's default 64 KiB trim threshold costs 0.3 s of page faults
    per study) and one allocator arena, and Dask's profiler off."""
    from distributed import Client

    from vertebrafat.workflows.cohort.execute import local_cluster

    root, out = tmp_path / "root", tmp_path / "out"
    names = [f"S{k}" for k in range(4)]
    for k, name in enumerate(names):
        nifti_copy(phantom_source / ("P001", "P002")[k % 2], root / name)
    killed: list[int] = []
    with local_cluster(2) as cluster, Client(cluster) as client:
        assert set(client.run(_allocator_environ).values()) == {("67108864", "67108864", "1")}
        assert set(client.run(_profiling).values()) == {False}
        pids = client.run(os.getpid)

        def kill_a_busy_worker(outcome: StudyOutcome) -> None:
            if not killed:
                busy = [w for w, keys in client.processing().items() if keys and w in pids]
                victim = pids[busy[0]]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        run = run_cohort(root, out, client=client, on_outcome=kill_a_busy_worker)
        assert killed[0] not in client.run(os.getpid).values()  # the nanny started a new one
        assert set(client.run(_allocator_environ).values()) == {("67108864", "67108864", "1")}
        assert set(client.run(_profiling).values()) == {False}
    assert len(killed) == 1
    assert [(o.name, o.status) for o in run.outcomes] == [(n, "ok") for n in names]
    assert sorted(p.name for p in out.iterdir()) == [
        *names, "cohort_bmf.csv", "cohort_status.csv", "report.html"]  # no staging left
    rows = load_table(out / "cohort_bmf.csv")
    for o in run.outcomes:
        assert (out / o.name / "run.json").is_file()
        assert len([r for r in rows if r.subject == ("P001", "P002")[int(o.name[1]) % 2]]) \
            == 2 * o.n_levels  # each study's rows once (two studies per subject)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_ctrl_c_stops_with_one_line_and_resumes(
    phantom_source: Path, tmp_path: Path, workers: str
) -> None:
    """Ctrl-C after the first study: exit 130, one line, and a rerun computes only the rest.
    Ten studies, so that the run is still busy when the signal comes even on a loaded machine
    (with four, at load 5-6, a fast run once ended before this process could send it)."""
    n = 10
    root, out = tmp_path / "root", tmp_path / "out"
    for k in range(n):
        nifti_copy(phantom_source / ("P001", "P002")[k % 2], root / f"S{k}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vertebrafat", "cohort", str(root), str(out), "--workers",
         workers, "--log-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None and proc.stdout is not None
    before = []
    for line in proc.stderr:
        before.append(line.rstrip("\n"))
        if line.startswith(f"cohort: 1/{n} done"):
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole group
            break
    after = proc.stderr.read().splitlines()
    assert proc.wait(timeout=120) == 130
    assert proc.stdout.read() == ""
    assert before[0].endswith(f"{n} studies: {n} to compute ({n} new), 0 skipped (same settings "
                              "and inputs)")
    assert [ln for ln in after if not ln.startswith("cohort: ")] == after[-1:]
    assert re.fullmatch(rf"interrupted: (\d+) of {n} studies done \(0 failed\), \d+ not; "
                        r".*cohort_status.csv lists them; run the same command again to "
                        r"resume", after[-1]), after
    done = int(after[-1].split()[1])
    assert 1 <= done < n
    status = [s[0] for s in _status(out).values()]
    assert status.count("ok") == done and status.count("pending") == n - done
    _wait_for_group_to_end(proc.pid)
    code, stdout, _ = _cli(["cohort", root, out, "--dry-run", "--json"])
    assert code == 0
    actions = [r["action"] for r in json.loads(stdout)]
    assert actions.count("skip") == done and actions.count("compute") == n - done


def _wait_for_group_to_end(pgid: int) -> None:
    """Every process of the run's group (the local Dask workers too) ends with it."""
    for _ in range(100):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {pgid} still running 10 s after the run ended")


@pytest.mark.skipif(CHROMIUM is None, reason="needs a headless Chromium: apt-get install "
                    "chromium (Debian) to run this test")
def test_report_opens_in_headless_chromium(measured: Measured) -> None:
    assert CHROMIUM is not None
    page = (measured.out / "report.html").as_uri()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "cohort_report.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
            "--v=0", "--window-size=1400,2000"]
    done = subprocess.run([*base, f"--screenshot={shot}", page], capture_output=True,
                          text=True, timeout=120)
    print(f"report screenshot kept at {shot}")
    dom = subprocess.run([*base, "--dump-dom", page + "#flag=failed"], capture_output=True,
                         text=True, timeout=120)
    for r in (done, dom):
        assert r.returncode == 0
        assert [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln] == []  # no JS error
    assert shot.stat().st_size > 50_000
    html = dom.stdout
    assert 'data-ready="yes"' in html  # the script ran to its end
    studies = html[html.index('<table id="studies"'):]
    studies = studies[:studies.index("</table>")]
    rows = re.findall(r"<tr data-flags=\"([^\"]*)\"[^>]*?( hidden=\"\")?>", studies)
    assert len(rows) == 6  # one per study, the failure on top
    assert rows[0] == ("failed", "") and all(hidden for _, hidden in rows[1:])
