"""``vertebrafat demo``: the whole job on the built-in phantom, offline, in about a minute.

phantom cohort (NIfTI, the first subject also as GE DICOM, every subject rescanned) ->
``cohort`` (segment, label, measure, QC per study) -> validation against the phantom's truth
(segmentation metrics, Bland-Altman of BMF, test-retest) -> ``report.md`` + ``summary.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.io.atomic import write_text_atomic
from vertebrafat.io.table import load_table, save_table


def truth_rows(folders: list[Path]) -> list[LevelMeasurement]:
    """The phantom's per-level truth tables (``truth.csv``) of ``folders``, concatenated."""
    rows: list[LevelMeasurement] = []
    for f in folders:
        rows.extend(load_table(f / "truth.csv"))
    return rows


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    subjects: int = 3,
    seed: int = 0,
    model_path: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns the summary also written to ``summary.json``."""
    from vertebrafat.stats.agreement import agreement
    from vertebrafat.stats.repeatability import repeatability
    from vertebrafat.workflows.cohort import StudyOutcome, run_cohort
    from vertebrafat.workflows.evaluate import evaluate_maps
    from vertebrafat.workflows.phantom_cohort import write_phantom_cohort
    from vertebrafat.workflows.reproduce import complete_rescans

    out = Path(out_dir)
    # every subject scanned twice; subject 1's first scan also as GE DICOM
    folders = write_phantom_cohort(
        out / "phantom", n_subjects=subjects, seed=seed, rescans=True,
        first_scan_formats=["dicom-ge"],
        progress=(lambda name: progress(f"phantom {name}")) if progress else None,
    )
    done: list[str] = []

    def segmented(outcome: StudyOutcome) -> None:
        done.append(outcome.name)
        if progress is not None:
            progress(f"segmented {outcome.name} ({len(done)} of this run)")

    outcomes = run_cohort(out / "phantom", out / "results", model_path=model_path, workers=0,
                          on_outcome=segmented).outcomes
    # The DICOM copy of subject 1 is segmented too (it shows the DICOM path and seg.dcm) but
    # kept out of the statistics, where it would count subject 1 twice.
    auto = [r for o in outcomes if o.status != "error" and not o.name.endswith("dicom-ge")
            for r in load_table(Path(o.out_dir) / "bmf.csv")]
    truth = truth_rows(folders)
    save_table(truth, out / "truth_bmf.csv")
    seg = evaluate_maps(out / "phantom", out / "results")
    ba = agreement([r for r in auto if r.level in _levels(truth)], truth)
    # L1-L5, the levels the BMF targets are about: thoracic bodies also take in rib-head partial
    # volume in their lateral slices (in-plane erosion cannot remove it), as on a real scan
    lumbar = [r for r in truth if r.level in LUMBAR]
    ba_l = agreement([r for r in auto if r.level in _levels(lumbar)], lumbar)
    paired, dropped = complete_rescans(auto)
    rep = repeatability(paired) if paired else {}
    summary = {
        "studies": {o.name: o.status + (f": {o.error}" if o.error else "") for o in outcomes},
        "dice": seg["dice"], "per_level_dice": {k: v["dice"] for k, v in
                                                 seg["per_level"].items()},  # type: ignore[attr-defined]
        "bmf_bias_pp": ba["bias"], "bmf_loa_pp": ba["loa"], "n_levels": ba["n"],
        "bmf_bias_lumbar_pp": ba_l["bias"], "bmf_loa_lumbar_pp": ba_l["loa"],
        "n_lumbar_levels": ba_l["n"],
        "precision_error": rep.get("precision_error"), "icc": rep.get("icc"),
        "rescan_levels_left_out": dropped,
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    write_text_atomic(out / "report.md", _markdown(summary))
    return summary


LUMBAR = ("L1", "L2", "L3", "L4", "L5")


def _levels(rows: list[LevelMeasurement]) -> set[str]:
    return {r.level for r in rows}


def _markdown(s: dict[str, Any]) -> str:
    pe = s["precision_error"] or {}
    lines = [
        "# vertebrafat demo on the built-in phantom", "",
        "Automatic pipeline (shipped ONNX model) against the phantom's ground truth.", "",
        "| quantity | value |", "|---|---|",
        f"| vertebral-body Dice (pooled) | {_f(s['dice'])} |",
        *[f"| Dice {lv} | {_f(v)} |" for lv, v in s["per_level_dice"].items()],
        f"| BMF bias, automatic − truth (pp) | {_f(s['bmf_bias_pp'])} |",
        f"| BMF 95 % limits of agreement (pp) | {_f(s['bmf_loa_pp'])} |",
        f"| BMF bias L1-L5 (pp) | {_f(s['bmf_bias_lumbar_pp'])} |",
        f"| BMF 95 % limits of agreement L1-L5 (pp) | {_f(s['bmf_loa_lumbar_pp'])} |",
        f"| test-retest RMS-SD (pp) | {_f(pe.get('rms_sd'))} |",
        f"| test-retest RMS-CV (%) | {_f(pe.get('rms_cv_percent'))} |", "",
        "Per-study outputs (labels, probability, bmf.csv, qc.png) are in `results/`.", "",
    ]
    return "\n".join(lines)


def _f(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_f(x) for x in v) + "]"
    return f"{float(v):.3f}"
