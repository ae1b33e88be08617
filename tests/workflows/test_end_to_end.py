"""The whole job from the CLI with the shipped model: demo, reproduce, cohort (slow, run in CI).

Accuracy floors are those the issues set for the shipped model on held-out phantom subjects
(the phantom seeds used here, 0 and 2020, are not the training seed 100).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vertebrafat.cli import main

pytestmark = pytest.mark.slow


def test_demo_runs_offline_and_meets_the_phantom_floors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--subjects", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["studies"]) == {"P001", "P001-scan2", "P001_dicom-ge"}
    assert all(v == "ok" for v in summary["studies"].values())
    assert (out / "results" / "P001_dicom-ge" / "seg.dcm").is_file()
    assert (out / "results" / "P001" / "qc.png").is_file()
    # L1-L5 against the truth (the pooled Dice also counts T9/T10 and the sacrum, partly outside
    # what the model is trained to delineate)
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert summary["per_level_dice"][level] >= 0.90, level
    # Truth is the marrow's own FF over each labelled body; the default 2 mm erosion measures
    # within 0.15 pp of it with the truth mask (benchmarks/bench_levels.py). This subject with
    # the model's masks: +0.07 pp over L1-L5 (both scans); issue 5's target is |bias| <= 0.3
    # pp. Over all 20 levels (T9-S1) +0.53 pp: the thoracic bodies take in rib-head partial
    # volume in their lateral slices.
    assert abs(summary["bmf_bias_lumbar_pp"]) <= 0.3
    assert summary["n_lumbar_levels"] == 10
    assert (out / "report.md").read_text().startswith("# vertebrafat demo on the built-in phantom")
    # over the earlier demo with another seed: the regenerated phantom is measured again (its
    # inputs changed), not skipped into a grid mismatch
    assert main(["demo", str(out), "--subjects", "1", "--seed", "5", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["studies"] == dict.fromkeys(summary["studies"], "ok")
    assert again["per_level_dice"]["L3"] >= 0.90 and again["dice"] != summary["dice"]


def test_reproduce_writes_every_table_and_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "repro"
    assert main(["reproduce", str(out), "--scale", "0.1", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)
    for key in ("md", "html", "json", "figure3_test1", "figure3_test2", "supp_figure2",
                "supp_figure1_roc", "supp_figure1_pr"):
        assert Path(files[key]).is_file(), key
    results = json.loads((out / "results.json").read_text())
    # scale 0.1: 11 -> max(2, round(1.1)) = 2 and 26 -> round(2.6) = 3 rated test subjects
    assert results["counts"]["test1"] == 2
    assert results["counts"]["test2"] == 3
    html = (out / "report.html").read_text()
    assert "0.849" in html  # the published Dice stands beside ours


def test_cohort_records_a_bad_study_and_resumes(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    assert main(["phantom", str(root), "--subjects", "1", "--seed", "3", "--json"]) == 0
    bad = root / "P999"
    bad.mkdir()
    (bad / "water.nii.gz").write_bytes(b"not a nifti file")
    assert main(["cohort", str(root), str(out), "--workers", "0", "--json"]) == 0
    with (out / "cohort_status.csv").open() as f:
        status = {r["name"]: r["status"] for r in csv.DictReader(f)}
    assert status == {"P001": "ok", "P999": "error"}
    assert main(["cohort", str(root), str(out), "--workers", "0", "--json"]) == 0
    with (out / "cohort_status.csv").open() as f:
        status = {r["name"]: r["status"] for r in csv.DictReader(f)}
    assert status == {"P001": "skipped", "P999": "error"}


def test_segment_names_an_l6_from_the_rib_bearing_t12(tmp_path: Path) -> None:
    """Phantom seed 3, subject 1 (hard cohort: p 0.5 transitional) has six lumbar bodies; the
    sacrum alone would call its L1 T12. The model's rib class marks T12, so every truth level
    T12..L6 gets its own name and the study is flagged transitional."""
    import nibabel as nib
    import numpy as np

    from vertebrafat.phantom import PhantomConfig, generate_subject
    from vertebrafat.workflows.phantom_cohort import save_phantom_study

    study = generate_subject(
        seed=3, index=1, config=PhantomConfig(p_fracture=0.5, p_transitional=0.5)
    )
    assert study.anatomy.transitional == "L6"
    folder = save_phantom_study(study, tmp_path / "phantom", formats=("nifti",))
    out = tmp_path / "out"
    assert main(["segment", str(folder), str(out), "--json"]) == 0
    got = np.asarray(nib.load(str(out / "labels.nii.gz")).dataobj)
    for label in (19, 20, 21, 22, 23, 24, 25):  # T12, L1..L5, L6
        inside = got[study.labels == label]
        assert int(np.bincount(inside, minlength=27).argmax()) == label, label
    with (out / "bmf.csv").open() as f:
        rows = {r["level"]: r for r in csv.DictReader(f)}
    assert "transitional" in rows["L6"]["flags"]
