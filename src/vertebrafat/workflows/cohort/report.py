"""``OUT/report.html``: one page to review a cohort, flagged studies first.

One self-contained file (no network, no external script or style): every study with its QC
thumbnail (a click opens the full picture), status, flags and L1-L5 BMF, flagged studies on
top (:func:`flag_rank`); the per-level table; box plots of BMF per level
(:func:`vertebrafat.qc.plots.distribution_figure`); sorting by any column and filtering by
flag, level and subject in a little vanilla JavaScript (the filter is kept in the address,
``report.html#flag=failed&level=L3``). Pictures are embedded as base64: thumbnails always, the
full-size QC pictures while they add up to :data:`EMBED_LIMIT_BYTES` (about 60 studies);
beyond that a click opens ``<name>/qc.png`` beside the report.

A level's BMF is a cohort outlier (``cohort_outlier``) when its modified z-score among the
cohort's values of that level exceeds 3.5 (:func:`vertebrafat.stats.outliers.outliers`), with
at least :data:`MIN_STUDIES` values of that level (fewer cannot tell an outlier from the
spread: two subjects' copies look like two clusters).
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vertebrafat.core.labels import LEVEL_OF_LABEL, LUMBAR_LABELS
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.io.atomic import write_text_atomic
from vertebrafat.workflows.cohort.outcome import StudyOutcome
from vertebrafat.workflows.cohort.plan import CohortPlan
from vertebrafat.workflows.cohort.process import THUMBNAIL
from vertebrafat.workflows.cohort.report_page import PAGE_SCRIPT, PAGE_STYLE
from vertebrafat.workflows.cohort.tables import CohortTables
from vertebrafat.workflows.display import num

REPORT = "report.html"
EMBED_LIMIT_BYTES = 32 * 2**20
MIN_STUDIES = 10
"""Fewer values of a level than this flag no cohort outlier: too few to tell from the spread."""
LUMBAR = tuple(LEVEL_OF_LABEL[lab] for lab in LUMBAR_LABELS)
PLOTTED = (*LUMBAR, "L6")
# the order of concern: a flagged study's rank is that of its most serious flag
RANKED_FLAGS = ("failed", "pending", "uncertain_level", "transitional", "missing_levels",
                "cohort_outlier", "outlier_ff")


@dataclass(frozen=True)
class StudyEntry:
    """One study as the report shows it: its outcome, BMF rows and flags.

    ``flags``: the study's flags: those of its L1-L6 rows (a field of view that cuts T10 is
    no concern), ``failed``/``pending``, ``missing_levels`` (of L1-L5) and ``cohort_outlier``;
    ``tags``: the flags with the levels that carry them (``outlier_ff:L3``).
    """

    outcome: StudyOutcome
    rows: tuple[LevelMeasurement, ...]
    flags: tuple[str, ...]
    tags: tuple[str, ...]
    outlier_levels: tuple[str, ...]


def flag_rank(flags: tuple[str, ...]) -> int:
    """Sort key of a study: the index of its most serious flag in :data:`RANKED_FLAGS`, then
    any other flag, then no flag.

    >>> flag_rank(("partial_fov", "transitional")), flag_rank(("low_volume",)), flag_rank(())
    (3, 7, 8)
    """
    ranks = [RANKED_FLAGS.index(f) for f in flags if f in RANKED_FLAGS]
    if ranks:
        return min(ranks)
    return len(RANKED_FLAGS) if flags else len(RANKED_FLAGS) + 1


def study_entries(
    outcomes: tuple[StudyOutcome, ...], rows: dict[str, tuple[LevelMeasurement, ...]]
) -> list[StudyEntry]:
    """Every study with its flags, the most serious first (ties by name)."""
    from vertebrafat.stats.outliers import outliers

    by_level: dict[str, list[tuple[str, float]]] = {}
    for name, study_rows in rows.items():
        for r in study_rows:
            by_level.setdefault(r.level, []).append((name, r.ff_mean))
    outlying = {(name, level) for level, pairs in by_level.items()
                for (name, _), out in zip(pairs, outliers([v for _, v in pairs],
                                                          min_count=MIN_STUDIES), strict=True)
                if out}
    entries = []
    for o in outcomes:
        study_rows = rows.get(o.name, ())
        lumbar = [r for r in study_rows if r.level in PLOTTED]  # a cut T10 is no concern
        tags = [f"{f}:{r.level}" for r in lumbar for f in r.flags]
        flags = [f for r in lumbar for f in r.flags]
        if o.status in ("error", "pending"):
            flags.append("failed" if o.status == "error" else "pending")
        else:
            present = {r.level for r in study_rows}
            missing = [lv for lv in LUMBAR if lv not in present]
            flags += ["missing_levels"] * bool(missing)
            tags += [f"missing_levels:{lv}" for lv in missing]
        out_levels = tuple(r.level for r in lumbar if (o.name, r.level) in outlying)
        flags += ["cohort_outlier"] * bool(out_levels)
        tags += [f"cohort_outlier:{lv}" for lv in out_levels]
        entries.append(StudyEntry(o, study_rows, tuple(dict.fromkeys(flags)),
                                  tuple(dict.fromkeys(tags)), out_levels))
    return sorted(entries, key=lambda e: (flag_rank(e.flags), e.outcome.name))


def write_report(plan: CohortPlan, tables: CohortTables) -> Path:
    """Write ``OUT/report.html`` for the run's tables; returns its path.

    Raises
    ------
    OutputError
        If it cannot be written.
    """
    path = plan.out / REPORT
    entries = study_entries(tables.outcomes, dict(tables.rows))
    write_text_atomic(path, report_html(plan, entries))
    return path


def report_html(plan: CohortPlan, entries: list[StudyEntry]) -> str:
    """The report page for ``entries`` (in :func:`study_entries` order)."""
    counts = Counter(e.outcome.status for e in entries)
    flagged = sum(flag_rank(e.flags) < len(RANKED_FLAGS) for e in entries)
    s = plan.settings
    facts = (f"{len(entries)} studies: {counts['ok']} measured now, {counts['skipped']} "
             f"measured before, {counts['error']} failed, {counts['pending']} not done; "
             f"{flagged} flagged. Settings: model sha256 {s.model_sha256[:12]}…, erosion "
             f"{s.erosion_mm:g} mm, slices {s.slices}, vertebrafat {s.version}.")
    budget = [EMBED_LIMIT_BYTES]
    flag_counts = Counter(f for e in entries for f in e.flags)
    options = "".join(f'<option value="{html.escape(f)}">{html.escape(f)} ({n})</option>'
                      for f, n in sorted(flag_counts.items(), key=lambda kv: (
                          flag_rank((kv[0],)), kv[0])))
    levels = sorted({r.level for e in entries for r in e.rows},
                    key=lambda lv: _level_order(lv))
    level_options = "".join(f'<option value="{lv}">{lv}</option>' for lv in levels)
    body = [
        f"<h1>Cohort report</h1><p class=meta>{html.escape(str(plan.root))} → "
        f"{html.escape(str(plan.out))}</p><p>{html.escape(facts)}</p>",
        "<div class=controls><label>Flag <select id=f-flag><option value=''>any</option>"
        f"<option value=none>no flag</option>{options}</select></label> <label>Level "
        f"<select id=f-level><option value=''>any</option>{level_options}</select></label> "
        "<label>Subject <input id=f-subject type=search placeholder='subject or study'>"
        "</label> <span id=f-count></span></div>",
        "<h2>Studies, flagged first</h2>", _studies_table(plan, entries, budget),
        "<h2>BMF per level</h2>", _figure(entries),
        "<h2>Per-level table</h2>", _levels_table(entries),
        "<div id=overlay hidden><img alt='QC picture'></div>",
    ]
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<link rel=icon href='data:,'><title>vertebrafat cohort report</title>"
            f"<style>{PAGE_STYLE}</style></head><body>{''.join(body)}"
            f"<script>{PAGE_SCRIPT}</script></body></html>\n")


def _level_order(level: str) -> int:
    from vertebrafat.core.labels import CRANIOCAUDAL_ORDER, LABEL_OF_LEVEL

    label = LABEL_OF_LEVEL.get(level)
    return CRANIOCAUDAL_ORDER.index(label) if label in CRANIOCAUDAL_ORDER else 99


def _chips(flags: tuple[str, ...]) -> str:
    return " ".join(f"<span class='flag r{min(flag_rank((f,)), len(RANKED_FLAGS))}'>"
                    f"{html.escape(f)}</span>" for f in flags)


def _studies_table(plan: CohortPlan, entries: list[StudyEntry], budget: list[int]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("QC", "study", "subject", "scan", "status",
                                              "flags", *LUMBAR, "note"))
    trs = []
    for e in entries:
        o = e.outcome
        ff = {r.level: r.ff_mean for r in e.rows}
        subject = e.rows[0].subject if e.rows else ""
        scan = e.rows[0].scan if e.rows else ""
        cells = [_thumbnail(plan.out / o.name, o.name, budget) if e.rows else "<td>—</td>",
                 f"<td>{html.escape(o.name)}</td>", f"<td>{html.escape(subject)}</td>",
                 f"<td>{html.escape(scan)}</td>", f"<td class=s-{o.status}>{o.status}</td>",
                 f"<td>{_chips(e.flags)}</td>",
                 *(_num_cell(ff.get(lv), lv in e.outlier_levels) for lv in LUMBAR),
                 f"<td class=note>{html.escape(o.error)}</td>"]
        levels = " ".join(r.level for r in e.rows)
        trs.append(f"<tr data-flags='{html.escape(' '.join(e.flags))}' "
                   f"data-tags='{html.escape(' '.join(e.tags))}' data-levels='{levels}' "
                   f"data-subject='{html.escape(subject + ' ' + o.name)}'>{''.join(cells)}</tr>")
    return (f"<table id=studies class=sortable><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table>")


def _num_cell(value: float | None, outlier: bool = False) -> str:
    v = "" if value is None or not np.isfinite(value) else f"{value:.4f}"
    cls = " class=outlier" if outlier else ""
    return f"<td data-v='{v}'{cls}>{num(value, 1)}</td>"


def _thumbnail(folder: Path, name: str, budget: list[int]) -> str:
    thumb = folder / THUMBNAIL
    qc = folder / "qc.png"
    try:
        small = thumb.read_bytes() if thumb.is_file() else _thumb_from(qc)
        size = qc.stat().st_size
    except OSError:
        return "<td>—</td>"
    if size <= budget[0]:
        budget[0] -= size
        full = "data:image/png;base64," + base64.b64encode(qc.read_bytes()).decode()
    else:
        full = html.escape(f"{name}/qc.png")
    src = "data:image/jpeg;base64," + base64.b64encode(small).decode()
    return (f"<td><img class=thumb src='{src}' data-full='{full}' "
            f"alt='QC of {html.escape(name)}' title='click: full size'></td>")


def _thumb_from(qc: Path) -> bytes:
    from PIL import Image

    from vertebrafat.io.label_tables import thumbnail_bytes

    with Image.open(qc) as picture:
        return thumbnail_bytes(np.asarray(picture.convert("RGB")))


def _levels_table(entries: list[StudyEntry]) -> str:
    head = "".join(f"<th>{h}</th>" for h in (
        "study", "subject", "scan", "level", "BMF mean %", "median %", "SD", "volume mL",
        "voxels", "flags"))
    trs = []
    for e in entries:
        for r in e.rows:
            flags = (*r.flags, *(("cohort_outlier",) if r.level in e.outlier_levels else ()))
            trs.append(
                f"<tr data-flags='{html.escape(' '.join(flags))}' data-level='{r.level}' "
                f"data-subject='{html.escape(r.subject + ' ' + e.outcome.name)}'>"
                f"<td>{html.escape(e.outcome.name)}</td><td>{html.escape(r.subject)}</td>"
                f"<td>{html.escape(r.scan)}</td><td data-v='{_level_order(r.level)}'>"
                f"{r.level}</td>{_num_cell(r.ff_mean, r.level in e.outlier_levels)}"
                f"{_num_cell(r.ff_median)}{_num_cell(r.ff_sd)}{_num_cell(r.volume_ml)}"
                f"<td data-v='{r.n_voxels}'>{r.n_voxels}</td><td>{_chips(flags)}</td></tr>")
    return (f"<table id=levels class=sortable><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table>")


def _figure(entries: list[StudyEntry]) -> str:
    from vertebrafat.qc.plots import distribution_figure

    values: dict[str, list[float]] = {lv: [] for lv in PLOTTED}
    marked: dict[str, list[float]] = {lv: [] for lv in PLOTTED}
    for e in entries:
        for r in e.rows:
            if r.level in values:
                values[r.level].append(r.ff_mean)
                if r.level in e.outlier_levels:
                    marked[r.level].append(r.ff_mean)
    if not any(values.values()):
        return "<p>No study measured yet.</p>"
    fig = distribution_figure(values, highlight=marked,
                              title="BMF per level over the cohort's studies")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode()
    return f"<img class=figure src='data:image/png;base64,{data}' alt='BMF box plots per level'>"
