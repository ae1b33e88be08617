"""Write the reproduction of the reference study: Markdown, HTML, PNG figures and JSON."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat.io.atomic import write_text_atomic
from vertebrafat.workflows.display import (
    MISSING,
    TextTable,
    interval,
    markdown_table,
    num,
    p_value,
    with_ci,
)
from vertebrafat.workflows.evaluate import save_figure
from vertebrafat.workflows.reproduce import PUBLISHED, Reproduction

_METRICS = ("dice", "iou", "sensitivity", "specificity", "precision", "f1", "accuracy")


def _table2(rep: Reproduction) -> TextTable:
    groups = list(rep.table2)
    rows = []
    for m in _METRICS:
        cells = [f"{num(rep.table2[g]['per_slice'][m]['mean'], 3)} ± "
                 f"{num(rep.table2[g]['per_slice'][m]['sd'], 3)}" for g in groups]
        rows.append((m, *cells, str(PUBLISHED.get(m, MISSING))))
    for m, label, digits in (("kappa", "Cohen's kappa (pooled)", 3),
                             ("hd95_mm", "HD95 mm (mean)", 2), ("roc_auc", "pixel ROC AUC", 3),
                             ("pr_auc", "PR AUC", 3)):
        cells = [num(rep.table2[g][m], digits) for g in groups]
        rows.append((label, *cells, str(PUBLISHED.get(m, MISSING))))
    return TextTable("Table 2 — segmentation vs the raters (per annotated slice, mean ± SD)",
                     ("metric", *groups, "published (Zhou 2020)"), tuple(rows))


_BA_HEADER = ("comparison", "n", "bias pp (95 % CI)", "limits of agreement pp", "% outside",
              "proportional bias slope (p)", "published")


def _ba_row(name: str, r: dict[str, Any], published: str) -> tuple[str, ...]:
    return (name, str(r["n"]), with_ci(r["bias"], r["bias_ci"], 2), interval(r["loa"], 2),
            num(r["pct_outside"], 1), f"{num(r['slope'], 3)} (p {p_value(r['slope_p'])})",
            published)


def _figure3(rep: Reproduction) -> TextTable:
    rows = tuple(_ba_row(name.replace(" vs ", " − "), r, PUBLISHED["bias_vs_rater"])
                 for name, r in rep.figure3.items())
    return TextTable("Figure 3 — Bland-Altman of per-vertebra BMF, automatic vs raters",
                     _BA_HEADER, rows)


def _supp_figure2(rep: Reproduction) -> TextTable:
    rows = ((_ba_row("rater B − rater A", rep.supp_figure2, PUBLISHED["rater_b_minus_a"]),)
            if rep.supp_figure2 else ())
    return TextTable("Supplementary Figure 2 — rater B vs rater A", _BA_HEADER, rows)


def _supp_table2(rep: Reproduction) -> TextTable:
    title = "Supplementary Table 2 — test-retest repeatability of automatic BMF"
    header = ("level", "n subjects", "RMS-SD pp", "RMS-CV %", "LSC pp", "ICC(2,1) (95 % CI)",
              "mixed-model ICC", "published")
    r = rep.supp_table2
    if not r:
        return TextTable(title, header, (), ("No rescans.",))
    rows = []
    for name, b in [("all", r), *r.get("per_level", {}).items()]:
        pe, icc, ci = b["precision_error"], b["icc"], b["icc_ci"]
        rows.append((name, str(b.get("n_subjects", MISSING)), num(pe["rms_sd"], 2),
                     num(pe["rms_cv_percent"], 2), num(pe["lsc"], 2),
                     with_ci(icc["ICC2"], ci["ICC2"], 3), num(b["mixed_model"]["icc"], 3),
                     f"{PUBLISHED['precision_error']}, ICC {PUBLISHED['icc']}"))
    dropped = r.get("dropped_levels") or []
    notes = (("Levels seen in one scan only (left out): "
              + ", ".join(" ".join(map(str, d)) for d in dropped),) if dropped else ())
    return TextTable(title, header, tuple(rows), notes)


def report_tables(rep: Reproduction) -> list[TextTable]:
    """The report's tables (Table 2, Figure 3, Supp. Figure 2, Supp. Table 2), rounded."""
    return [_table2(rep), _figure3(rep), _supp_figure2(rep), _supp_table2(rep)]


def counts_line(rep: Reproduction) -> str:
    """``"Studies: test1 11, test2 26, rescan 16, rescan_studies 16"``."""
    return "Studies: " + ", ".join(f"{k} {v}" for k, v in rep.counts.items())


def report_markdown(rep: Reproduction, *, title: str, context: list[str]) -> str:
    """The whole report as Markdown (figures referenced by file name)."""
    table2, fig3, supp2, supp_t2 = (markdown_table(t) for t in report_tables(rep))
    titles = [f"## {t.title}" for t in report_tables(rep)]
    lines = [f"# {title}", "", *context, "", counts_line(rep), "", titles[0], "", table2, "",
             "## Supplementary Figure 1 — pixel ROC and precision-recall", "",
             "![ROC](supp_figure1_roc.png) ![PR](supp_figure1_pr.png)", "",
             titles[1], "", fig3, "",
             "![Figure 3](figure3_test1.png) ![Figure 3](figure3_test2.png)", "",
             titles[2], "", supp2, "", "![Supplementary Figure 2](supp_figure2.png)", "",
             titles[3], "", supp_t2, ""]
    return "\n".join(lines) + "\n"


def markdown_to_html(markdown: str, *, title: str) -> str:
    """A self-contained HTML page of the report's Markdown subset (headings, tables, images)."""
    body: list[str] = []
    table: list[str] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-"):
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            body.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            for part in line.split(") "):
                src = part[part.index("(") + 1:].rstrip(")")
                body.append(f'<img src="{html.escape(src)}" alt="" width="420">')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #aaa;padding:3px 8px;text-align:right}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def save_reproduction(
    rep: Reproduction, out_dir: str | os.PathLike[str], *, title: str, context: list[str]
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``results.json`` and the PNG figures."""
    from vertebrafat.qc.plots import bland_altman_figure, pr_figure, roc_figure
    from vertebrafat.stats.agreement import bland_altman

    out = Path(out_dir)
    written: dict[str, Path] = {}
    if rep.roc is not None:
        for name, fig in (("supp_figure1_roc", roc_figure(rep.roc)),
                          ("supp_figure1_pr", pr_figure(rep.roc))):
            save_figure(fig, out / f"{name}.png")
            written[name] = out / f"{name}.png"
    figures = {"test1 auto vs rater A": ("figure3_test1", ("auto", "rater A")),
               "test2 auto vs rater B": ("figure3_test2", ("auto", "rater B")),
               "rater B vs rater A": ("supp_figure2", ("rater B", "rater A"))}
    for key, (name, names) in figures.items():
        if key in rep.pairs and len(rep.pairs[key][0]) >= 2:
            a, b, _ = rep.pairs[key]
            fig = bland_altman_figure(a, b, bland_altman(a, b), title=key, names=names)
            save_figure(fig, out / f"{name}.png")
            written[name] = out / f"{name}.png"
    md = report_markdown(rep, title=title, context=context)
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", markdown_to_html(md, title=title))
    results = {"table2": rep.table2, "figure3": rep.figure3, "supp_figure2": rep.supp_figure2,
               "supp_table2": rep.supp_table2, "counts": rep.counts, "published": PUBLISHED}
    write_text_atomic(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    written.update(md=out / "report.md", html=out / "report.html", json=out / "results.json")
    return written


def load_rated_cohort(root: str | os.PathLike[str]) -> list[Any]:
    """Rated studies below ``root`` for ``reproduce --cohort``.

    Every folder holding ``water.nii[.gz]`` (and an FF map or water + fat) is a study; its
    ``rater_a.nii.gz`` / ``rater_b.nii.gz`` masks and ``annotated_slices.json`` (slice indices)
    make it a test study: both raters -> group ``test2``, rater A only -> ``test1``. Subjects
    with two or more scans (``study.json``) form the ``rescan`` group.

    Raises
    ------
    InputError
        If no study or no rated study is found.
    """
    from vertebrafat.core.errors import InputError
    from vertebrafat.io.discovery import find_study_folders
    from vertebrafat.io.nifti import read_nifti
    from vertebrafat.workflows.evaluate import load_annotated
    from vertebrafat.workflows.loading import load_study
    from vertebrafat.workflows.reproduce import RatedStudy

    folders = [s.path for s in find_study_folders(root).studies if s.format == "nifti"
               and any((s.path / n).is_file() for n in ("water.nii.gz", "water.nii"))]
    images = [(f, load_study(f)) for f in folders]
    scans: dict[str, int] = {}
    for _, im in images:
        scans[im.meta.subject] = scans.get(im.meta.subject, 0) + 1
    studies = []
    for folder, im in images:
        if scans[im.meta.subject] >= 2:
            studies.append(RatedStudy(im, None, None, (), "rescan"))
            continue
        raters = [read_nifti(folder / f"rater_{r}.nii.gz")[0].astype(np.uint8)
                  if (folder / f"rater_{r}.nii.gz").is_file() else None for r in ("a", "b")]
        if raters[0] is None and raters[1] is None:
            continue
        annotated = load_annotated(folder / "annotated_slices.json")
        group = "test2" if raters[1] is not None else "test1"
        studies.append(RatedStudy(im, raters[0], raters[1], tuple(annotated), group))
    if not any(s.group != "rescan" for s in studies):
        raise InputError(f"{root}: no study with rater_a.nii.gz / rater_b.nii.gz masks")
    return studies
