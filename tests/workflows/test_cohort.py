"""Cohort bookkeeping without the model (workflows/cohort): names, records and resume
decisions, tables rebuilt from disk, the report's order of concern. Runs with the model, on Dask,
interrupted: test_cohort_run.py."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.io.discovery import FoundStudy, input_files
from vertebrafat.io.nifti import save_volume
from vertebrafat.io.table import save_table
from vertebrafat.workflows.cohort import StudyOutcome, outcomes_csv
from vertebrafat.workflows.cohort.plan import CohortPlan, plan_cohort, unique_names
from vertebrafat.workflows.cohort.records import (
    RECORD,
    Settings,
    failure_path,
    record_json,
    write_failure,
)
from vertebrafat.workflows.cohort.report import flag_rank, report_html, study_entries
from vertebrafat.workflows.cohort.tables import collect, write_tables

SETTINGS = Settings("a" * 64, 2.0, "all", "0.1.0")


def _study(folder: Path) -> None:
    save_volume(np.ones((3, 4, 4), np.float32), np.diag([4.0, 1.0, 1.0, 1.0]),
                folder / "water.nii.gz")


def _row(subject: str, level: str, ff: float, flags: tuple[str, ...] = ()) -> LevelMeasurement:
    return LevelMeasurement(subject, "1", level, 20, 100, 5, 30.0, ff, ff, 2.0, ff - 3, ff + 3,
                            2.0, "all", flags)


def _measured(out: Path, name: str, root: Path, settings: Settings = SETTINGS,
              rows: tuple[LevelMeasurement, ...] = ()) -> None:
    """What a measured study leaves: its bmf.csv and run.json."""
    study = FoundStudy(root / name, "nifti")
    save_table(list(rows) or [_row(name, "L1", 30.0)], out / name / "bmf.csv")
    (out / name / RECORD).write_text(record_json(
        settings, name=name, study=study, inputs=input_files(study, content=True),
        n_levels=len(rows) or 1, seconds=1.5, finished="2026-01-02T03:04:05Z"))


def test_names_follow_paths_and_collisions_get_a_hash() -> None:
    root = Path("/r")
    names = unique_names([Path("/r/a/b_c"), Path("/r/a_b/c"), Path("/r/site/S9"), Path("/r")],
                         root)
    assert names == ["a_b_c-f53c27", "a_b_c-9eddec", "site_S9", "r"]


def test_outcomes_csv_is_exact() -> None:
    rows = [
        StudyOutcome("P001", "/d/P001", "/o/P001", "ok", 5, 1.23456,
                     finished="2026-01-02T03:04:05Z"),
        StudyOutcome("P002", "/d/P002", "/o/P002", "error", 0, 0.5, "no water", "InputError",
                     "2026-01-02T03:04:06Z"),
    ]
    assert outcomes_csv(rows) == (
        "name,study,out_dir,status,n_levels,seconds,error,kind,finished\n"
        "P001,/d/P001,/o/P001,ok,5,1.235,,,2026-01-02T03:04:05Z\n"
        "P002,/d/P002,/o/P002,error,0,0.5,no water,InputError,2026-01-02T03:04:06Z\n"
    )


def test_resume_reasons(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    for name in ("done", "eroded", "edited", "failed", "half", "new"):
        _study(root / name)
    _measured(out, "done", root)
    _measured(out, "eroded", root, settings=replace(SETTINGS, erosion_mm=0.0))
    _measured(out, "edited", root)
    _study(root / "edited")  # rewritten with the same bytes: still the same inputs
    (root / "edited" / "fat.nii.gz").write_bytes(b"new role file")
    write_failure(out, "failed", SETTINGS, study=str(root / "failed"), error="bad", kind="X",
                  seconds=0.1, finished="t")
    (out / "half").mkdir(parents=True)
    plan = plan_cohort(root, out, SETTINGS)
    assert [(p.name, p.action, p.reason) for p in plan.studies] == [
        ("done", "skip", "same settings and inputs"),
        ("edited", "compute", "inputs changed"),
        ("eroded", "compute", "settings changed: erosion_mm 0.0 -> 2.0"),
        ("failed", "compute", "failed before"),
        ("half", "compute", "incomplete outputs"),
        ("new", "compute", "new"),
    ]
    assert plan.summary() == (
        "6 studies: 5 to compute (1 failed before, 1 incomplete outputs, 1 inputs changed, "
        "1 new, 1 settings changed: erosion_mm 0.0 -> 2.0), 1 skipped (same settings and "
        "inputs)")
    changed = plan_cohort(root, out, replace(SETTINGS, model_sha256="b" * 64, slices="mid5"))
    assert changed.studies[0].reason == ("settings changed: model_sha256 aaaaaaaaaaaa -> "
                                         "bbbbbbbbbbbb, slices all -> mid5")


def test_tables_are_rebuilt_from_disk(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    for name in ("a_ok", "b_skip", "c_fail", "d_pending", "e_old"):
        _study(root / name)
    _measured(out, "b_skip", root)
    _measured(out, "e_old", root, settings=replace(SETTINGS, slices="mid5"))
    plan = plan_cohort(root, out, SETTINGS)
    _measured(out, "a_ok", root)  # what the workers did this run
    write_failure(out, "c_fail", SETTINGS, study=str(root / "c_fail"), error="no water image",
                  kind="InputError", seconds=0.2, finished="2026-01-02T03:04:07Z")
    this_run = {
        "a_ok": StudyOutcome("a_ok", "", "", "ok", 1, 9.0),
        "c_fail": StudyOutcome("c_fail", "", "", "error", error="stale", kind="Y"),
    }
    tables = collect(plan, this_run)
    got = [(o.name, o.status, o.n_levels, o.seconds, o.error, o.kind) for o in tables.outcomes]
    assert got == [
        ("a_ok", "ok", 1, 1.5, "", ""),
        ("b_skip", "skipped", 1, 1.5, "", ""),
        ("c_fail", "error", 0, 0.2, "no water image", "InputError"),
        ("d_pending", "pending", 0, 0.0, "", ""),
        ("e_old", "pending", 0, 0.0, "", ""),  # measured with mid5: kept, but not this run's
    ]
    files = write_tables(out, tables)
    bmf = files["bmf"].read_text().splitlines()
    assert [line.split(",")[0] for line in bmf] == ["subject", "a_ok", "b_skip"]
    status = json.loads(failure_path(out, "c_fail").read_text())
    assert status["settings"]["erosion_mm"] == 2.0


@pytest.mark.parametrize(("flags", "rank"), [
    pytest.param(("failed", "uncertain_level"), 0, id="failed-first"),
    pytest.param(("outlier_ff", "uncertain_level"), 2, id="most-serious-wins"),
    pytest.param(("missing_levels",), 4, id="missing"),
    pytest.param(("partial_fov",), 7, id="other-flag"),
    pytest.param((), 8, id="no-flag"),
])
def test_flag_rank(flags: tuple[str, ...], rank: int) -> None:
    assert flag_rank(flags) == rank


def test_report_puts_flagged_studies_first(tmp_path: Path) -> None:
    lumbar = ("L1", "L2", "L3", "L4", "L5")
    values = {f"S{k}": 30.0 + k for k in range(10)}  # S0..S9: 30..39 % at every level
    rows = {n: tuple(_row(n, lv, v) for lv in lumbar) for n, v in values.items()}
    rows["S2"] = (*rows["S2"][:3], _row("S2", "L4", 90.0), rows["S2"][4])  # an outlier at L4
    rows["S4"] = rows["S4"][:4]  # no L5
    rows["S5"] = tuple(replace(r, flags=("transitional",)) for r in rows["S5"])
    rows["S1"] = (_row("S1", "T10", 30.0, ("partial_fov",)), *rows["S1"])  # no concern
    outcomes = [StudyOutcome(n, "", "", "skipped") for n in rows]
    outcomes.append(StudyOutcome("X1", "", "", "error", error="no water image",
                                 kind="InputError"))
    entries = study_entries(tuple(outcomes), rows)
    assert [(e.outcome.name, e.flags) for e in entries] == [
        ("X1", ("failed",)), ("S5", ("transitional",)), ("S4", ("missing_levels",)),
        ("S2", ("cohort_outlier",)), *((f"S{k}", ()) for k in (0, 1, 3, 6, 7, 8, 9))]
    assert entries[2].tags == ("missing_levels:L5",)
    assert entries[3].outlier_levels == ("L4",)
    page = report_html(_fake_plan(tmp_path), entries)
    assert page.count("<tr data-flags=") == 11 + 50  # the studies, then every level row
    assert page.index(">X1<") < page.index(">S5<") < page.index(">S0<")
    few = study_entries(tuple(outcomes[:4]), {n: rows[n] for n in ("S0", "S1", "S2", "S3")})
    assert [e.flags for e in few] == [()] * 4  # 4 values of L4: too few to call 90 % an outlier
    sources = re.findall(r"(?:src|href)=['\"]?([^'\" >]*)", page)
    assert sources and all(s.startswith("data:") for s in sources)  # no network, no file


def _fake_plan(tmp_path: Path) -> CohortPlan:
    return CohortPlan(tmp_path / "root", tmp_path / "out", SETTINGS, ())


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["{tmp}/absent", "{tmp}/out"], "error: {tmp}/absent: not a folder",
                 id="no-root"),
    pytest.param(["{tmp}/root", "{tmp}/root"], "error: {tmp}/root: the output folder is the "
                 "cohort root; give another one (inside the root is fine: it is not searched)",
                 id="out-is-root"),
    pytest.param(["{tmp}/root", "{tmp}/out", "--erosion-mm", "-1"],
                 "error: --erosion-mm must be >= 0, got -1.0", id="erosion"),
    pytest.param(["{tmp}/root", "{tmp}/out", "--slices", "middle"],
                 "error: slices must be 'all' or 'midN' (e.g. mid5), got 'middle'", id="slices"),
    pytest.param(["{tmp}/empty", "{tmp}/out"], "error: {tmp}/empty: no study found (no folder "
                 "below holds NIfTI or DICOM images)", id="no-study"),
])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from vertebrafat.cli import main

    _study(tmp_path / "root" / "S1")
    (tmp_path / "empty").mkdir()
    for dry in ([], ["--dry-run"]):
        assert main(["cohort", *(a.format(tmp=tmp_path) for a in args), *dry]) == 2
        assert capsys.readouterr().err == message.format(tmp=tmp_path) + "\n"
    assert not (tmp_path / "out").exists()
