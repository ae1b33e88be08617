"""What the CLI shows people: results as titled tables of rounded text.

Each function turns one result (the JSON-ready dict a verb also prints with ``--json``) into
:class:`TextTable` objects; ``cli.py`` draws them with rich and ``report.py`` writes them as
Markdown. Rounding is fixed per quantity: overlap scores, AUCs and ICCs 3 decimals, distances
(mm) and fat-fraction differences (pp) 2, FF values and volumes 1, p values 3 (``<0.001``).
Missing values (``None``, NaN) are shown as ``—``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vertebrafat.core.schema import LevelMeasurement

MISSING = "—"


@dataclass(frozen=True)
class TextTable:
    """A titled table whose cells are already rounded text.

    ``notes``: remarks about the table (e.g. rows left unpaired), printed after it by the CLI
    on stderr and below it in Markdown.
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


def justify(t: TextTable) -> tuple[Literal["left", "right"], ...]:
    """``"right"`` for a column whose cells are all numbers (or missing), else ``"left"``; the
    first column (names) is always left."""
    return tuple("right" if k > 0 and all(_numeric(row[k]) for row in t.rows) else "left"
                 for k in range(len(t.header)))


def _numeric(cell: str) -> bool:
    head = cell.lstrip("+-<(")[:1]
    return cell in ("", MISSING) or head.isdigit()


# characters a terminal draws one cell wide (rich's cell_len agrees): ASCII, Latin-1 and the
# few symbols the tables use
_NARROW = frozenset(chr(c) for c in range(0x20, 0x7F)) | frozenset(
    chr(c) for c in range(0xA0, 0x180)) | frozenset("—–−±×≤≥…·²³°µ")


def plain_table(t: TextTable) -> str | None:
    """``t`` as the plain text ``cli`` prints to a pipe or file: the title, the header, a rule
    of ``─`` and the rows, columns three spaces apart, justified as :func:`justify` says, no
    trailing blanks, one newline after each line. The characters rich prints for the same
    table without colour (``rich.box.SIMPLE_HEAD``, no edge; tested against it), without
    importing rich (0.02 s) or measuring with it (0.03 s for a ten-level BMF table). ``None``
    when a cell holds a character outside :data:`_NARROW` or a newline: rich draws those.
    """
    cells = [t.title, *t.header, *(c for row in t.rows for c in row)]
    if any(not _NARROW.issuperset(c) for c in cells):
        return None
    widths = [max(len(c) for c in column) for column in zip(t.header, *t.rows, strict=True)]
    sides = justify(t)

    def line(row: Sequence[str]) -> str:
        return "   ".join(c.rstrip().rjust(w) if side == "right" else c.ljust(w)
                          for c, w, side in zip(row, widths, sides, strict=True)).rstrip()

    lines = [t.title.rstrip()] if t.title else []
    lines += [line(t.header), "─" * max(1, sum(widths) + 3 * (len(widths) - 1))]
    lines += [line(row) for row in t.rows]
    return "".join(f"{x}\n" for x in lines)


def num(value: Any, digits: int) -> str:
    """``value`` with ``digits`` decimals; ``—`` for None, NaN or inf.

    Examples
    --------
    >>> num(0.94234, 3), num(None, 2), num(float("nan"), 1), num(-0.1271, 2)
    ('0.942', '—', '—', '-0.13')
    """
    if value is None or isinstance(value, bool):
        return MISSING
    v = float(value)
    return f"{v:.{digits}f}" if math.isfinite(v) else MISSING


def interval(pair: Sequence[Any] | None, digits: int) -> str:
    """``"lo to hi"`` for a confidence interval or limits; ``—`` when either end is missing.

    >>> interval([0.83209, 0.83503], 3), interval(None, 2)
    ('0.832 to 0.835', '—')
    """
    if pair is None or len(pair) != 2:
        return MISSING
    lo, hi = num(pair[0], digits), num(pair[1], digits)
    return MISSING if MISSING in (lo, hi) else f"{lo} to {hi}"


def with_ci(value: Any, pair: Sequence[Any] | None, digits: int) -> str:
    """``"0.983 (0.965 to 0.992)"``: an estimate and its interval."""
    ci = interval(pair, digits)
    return num(value, digits) if ci == MISSING else f"{num(value, digits)} ({ci})"


def p_value(p: Any) -> str:
    """p with 3 decimals, ``<0.001`` below that."""
    if p is not None and math.isfinite(float(p)) and float(p) < 0.001:
        return "<0.001"
    return num(p, 3)


def unit_of(column: str) -> str:
    """Unit of a measurement-table column's differences: pp for FF, mL, voxels, slices."""
    if column.startswith("ff_"):
        return "pp"
    return {"volume_ml": "mL", "n_voxels": "voxels", "n_slices": "slices",
            "erosion_mm": "mm"}.get(column, "")


def _digits(column: str) -> int:
    return 0 if column in ("n_voxels", "n_slices") else 2


def evaluation_tables(r: Mapping[str, Any]) -> list[TextTable]:
    """``evaluate``: pooled metrics, then per level and per subject."""
    hd = f"{num(r.get('hd95_mm'), 2)} ± {num(r.get('hd95_mm_sd'), 2)}"
    assd = f"{num(r.get('assd_mm'), 2)} ± {num(r.get('assd_mm_sd'), 2)}"
    pooled = [("Dice", num(r["dice"], 3)), ("IoU", num(r["iou"], 3)),
              ("sensitivity", num(r["sensitivity"], 3)),
              ("specificity", num(r["specificity"], 3)),
              ("precision", num(r["precision"], 3)), ("Cohen's kappa", num(r["kappa"], 3)),
              ("HD95 mm (mean ± SD of subjects)", hd),
              ("ASSD mm (mean ± SD of subjects)", assd),
              ("pixel ROC AUC (95 % CI)", with_ci(r.get("roc_auc"), r.get("roc_auc_ci"), 3)),
              ("PR AUC (average precision)", num(r.get("pr_auc"), 3))]
    unpaired = r.get("unpaired") or {}
    notes = tuple(f"{len(names)} {side} name(s) without a partner: {', '.join(names)}"
                  for side, names in unpaired.items() if names)
    title = (f"Segmentation vs reference: {r['n_subjects']} subject(s), slices "
             f"{r.get('slices', 'all')}, voxels pooled")
    header = ("Dice", "IoU", "sensitivity", "specificity", "HD95 mm", "ASSD mm")

    def scores(b: Mapping[str, Any]) -> tuple[str, ...]:
        return (num(b["dice"], 3), num(b["iou"], 3), num(b["sensitivity"], 3),
                num(b["specificity"], 3), num(b.get("hd95_mm"), 2), num(b.get("assd_mm"), 2))

    return [
        TextTable(title, ("metric", "value"), tuple(pooled), notes),
        TextTable("Per level", ("level", *header),
                  tuple((lv, *scores(b)) for lv, b in r.get("per_level", {}).items())),
        TextTable("Per subject", ("subject", *header),
                  tuple((s, *scores(b)) for s, b in r.get("per_subject", {}).items())),
    ]


def agreement_tables(
    r: Mapping[str, Any], *, name_a: str = "A", name_b: str = "B"
) -> list[TextTable]:
    """``agreement``: Bland-Altman of ``name_a - name_b``, pooled then per level."""
    column = str(r.get("column", "ff_mean"))
    unit, d = unit_of(column), _digits(column)
    title = (f"Bland-Altman of {column}: differences {name_a} − {name_b}"
             f"{f' ({unit})' if unit else ''}, {r['n']} pair(s)")
    header = ("level", "n", "bias (95 % CI)", "SD", "lower LoA (95 % CI)",
              "upper LoA (95 % CI)", "% outside", "slope", "slope p")

    def row(name: str, b: Mapping[str, Any]) -> tuple[str, ...]:
        loa, loa_ci = b.get("loa") or (None, None), b.get("loa_ci") or (None, None)
        return (name, str(b["n"]), with_ci(b["bias"], b.get("bias_ci"), d), num(b.get("sd"), d),
                with_ci(loa[0], loa_ci[0], d), with_ci(loa[1], loa_ci[1], d),
                num(b.get("pct_outside"), 1), num(b.get("slope"), 3), p_value(b.get("slope_p")))

    rows = [row("all", r), *(row(lv, b) for lv, b in r.get("per_level", {}).items())]
    unpaired = r.get("unpaired") or {}
    where = {"a": f"only in {name_a}", "b": f"only in {name_b}",
             "missing": "with no value in one table"}
    notes = tuple(
        f"{len(keys)} row(s) {where[k]} (left out): "
        + ", ".join("/".join(map(str, key)) for key in keys[:8])
        + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
        for k, keys in unpaired.items() if keys)
    return [TextTable(title, header, tuple(rows), notes)]


def repeatability_tables(r: Mapping[str, Any]) -> list[TextTable]:
    """``repeatability``: precision error and ICC(2,1) per level, every ICC with its 95 % CI,
    the mixed model."""
    column = str(r.get("column", "ff_mean"))
    unit = unit_of(column)
    u = f" {unit}" if unit else ""
    title = (f"Repeatability of {column}: {r['n_subjects']} subject(s), "
             f"{r['n_measurements']} measurements, ICC on the first {r['icc_scans']} scans")
    header = ("level", "subjects", f"RMS-SD{u}", "RMS-CV %", f"LSC{u}", "LSC %",
              "ICC(2,1) (95 % CI)", "mixed-model ICC")

    def row(name: str, b: Mapping[str, Any]) -> tuple[str, ...]:
        pe = b["precision_error"]
        return (name, str(b["n_subjects"]), num(pe["rms_sd"], 2), num(pe["rms_cv_percent"], 2),
                num(pe["lsc"], 2), num(pe["lsc_percent"], 2),
                with_ci(b["icc"]["ICC2"], b["icc_ci"]["ICC2"], 3),
                num(b["mixed_model"]["icc"], 3))

    models = {"ICC1": "one-way random, single scan", "ICC2": "two-way random, absolute "
              "agreement, single scan", "ICC3": "two-way mixed, consistency, single scan",
              "ICC1k": "as ICC1, mean of the scans", "ICC2k": "as ICC2, mean of the scans",
              "ICC3k": "as ICC3, mean of the scans"}
    iccs = tuple((name, model, num(r["icc"][name], 3), interval(r["icc_ci"][name], 3))
                 for name, model in models.items())
    mm = r["mixed_model"]
    mixed = (("formula", str(mm["formula"])),
             (f"subject variance{f' ({unit}²)' if unit else ''}",
              num(mm["subject_variance"], 2)),
             (f"residual variance{f' ({unit}²)' if unit else ''}",
              num(mm["residual_variance"], 2)),
             ("ICC", num(mm["icc"], 3)), ("converged", "yes" if mm["converged"] else "no"))
    notes = (f"mixed model: {mm['error']}",) if mm.get("error") else ()
    return [
        TextTable(title, header, (row("all", r), *(row(lv, b) for lv, b
                                                    in r.get("per_level", {}).items()))),
        TextTable("ICC, all levels (Shrout & Fleiss 1979)", ("ICC", "model", "value", "95 % CI"),
                  iccs),
        TextTable("Linear mixed model (REML, random intercept per subject)",
                  ("", "value"), mixed, notes),
    ]


def measurement_table(rows: Sequence[LevelMeasurement], *, title: str = "") -> TextTable:
    """``segment`` / ``measure``: the BMF table, FF in percent with 1 decimal."""
    ids = sorted({(r.subject or MISSING, r.scan) for r in rows})
    who = "; ".join(f"subject {s} scan {c}" for s, c in ids) or "no rows"
    header = ("level", "label", "voxels", "slices", "volume mL", "FF mean %", "FF median %",
              "FF SD", "FF P5", "FF P95", "flags")
    body = tuple((r.level, str(r.label), str(r.n_voxels), str(r.n_slices), num(r.volume_ml, 1),
                  num(r.ff_mean, 1), num(r.ff_median, 1), num(r.ff_sd, 1), num(r.ff_p05, 1),
                  num(r.ff_p95, 1), ", ".join(r.flags)) for r in rows)
    return TextTable(title or f"BMF per level, {who}", header, body)


def study_tables(d: Mapping[str, Any]) -> list[TextTable]:
    """``info``: what was found in a study, its series, then (DICOM) its image stacks: role,
    echo, magnitude/phase, images or frames, and the value mapping that reads them."""
    def times(values: Sequence[Any] | None, fmt: str = "{}") -> str:
        return " × ".join(fmt.format(v) for v in values) if values else MISSING

    fields = [("source", str(d["source"])), ("format", str(d["format"])),
              ("vendor", str(d["vendor"])), ("subject", str(d["subject"])),
              ("scan", str(d.get("scan") or MISSING)),
              ("channels", ", ".join(d["channels"]) or MISSING),
              ("shape (voxels)", times(d["shape"])),
              ("spacing (mm)", times(d["spacing_mm"], "{:.3g}")),
              ("orientation", str(d["orientation"] or MISSING)),
              ("FF scale", MISSING if d["ff_scale"] is None else str(d["ff_scale"])),
              ("field strength (T)", num(d.get("field_strength_t"), 1))]
    if "images" in d:
        fields += [("echoes", str(d.get("echoes") or MISSING)),
                   ("water-fat study", "yes" if d.get("missing") is None
                    else f"no: {d['missing']}")]
    series = tuple((str(s["number"]) if s["number"] is not None else str(s["source"]),
                    str(s["role"]), str(s["description"] or ""), str(s["slices"]))
                   for s in d["series"])
    tables = [TextTable("Study", ("", "value"), tuple(fields), tuple(d["notes"]))]
    if series:
        tables.append(TextTable("Series", ("series", "role", "description", "slices"), series))
    if d.get("images"):
        tables.append(images_table(d["images"]))
    return tables


def images_table(images: Sequence[Mapping[str, Any]]) -> TextTable:
    """``info`` on DICOM: one row per image stack (a series, or one role, echo or component of
    it); TE in ms with 2 decimals."""
    def text(value: Any) -> str:
        return MISSING if value is None else str(value)

    rows = tuple((str(i["series"]), text(i["role"]), text(i["component"]), text(i["echo"]),
                  num(i["te_ms"], 2), str(i["images"]), str(i["values"]), str(i["file"]))
                 for i in images)
    return TextTable("Image stacks (series split by role, echo and component)",
                     ("series", "role", "component", "echo", "TE ms", "images", "values",
                      "file"), rows)


def cohort_table(outcomes: Sequence[Mapping[str, Any]]) -> TextTable:
    """``cohort``: one row per study; failures with the exception's kind and the error line."""
    rows = tuple((str(o["status"]), str(o["name"]), str(o["n_levels"]), num(o["seconds"], 1),
                  f"{o['kind']}: {o['error']}" if o.get("kind") else str(o["error"]))
                 for o in outcomes)
    counts = {s: sum(o["status"] == s for o in outcomes)
              for s in ("ok", "skipped", "error", "pending")}
    title = "Cohort: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s != "pending")
    return TextTable(title, ("status", "study", "levels", "seconds", "error"), rows)


def cohort_plan_table(plan: Any) -> TextTable:
    """``cohort --dry-run``: each study found (a ``CohortPlan``), its format, and what a run
    would do and why."""
    body = tuple((r["action"], r["name"], r["format"], r["reason"], r["study"])
                 for r in plan.rows())
    return TextTable(f"Cohort plan: {plan.summary()}", ("action", "study", "format", "why",
                                                        "path"), body)


def cohort_summary(counts: Mapping[str, int], seconds: float, files: Sequence[str]) -> str:
    """The line ``cohort`` ends with: what happened to how many studies, time, files written.

    >>> cohort_summary({"ok": 5, "skipped": 2, "error": 1, "pending": 0}, 12.34, ["o/a.csv"])
    'cohort: 8 studies in 12.3 s: 5 measured, 2 skipped (done before), 1 failed; wrote o/a.csv'
    """
    total = sum(counts.values())
    parts = [f"{counts.get('ok', 0)} measured",
             f"{counts.get('skipped', 0)} skipped (done before)",
             f"{counts.get('error', 0)} failed"]
    if counts.get("pending"):
        parts.append(f"{counts['pending']} not done")
    return (f"cohort: {total} studies in {seconds:.1f} s: {', '.join(parts)}; wrote "
            + " ".join(files))


def validation_table(validation: Mapping[str, Any], *, title: str) -> TextTable:
    """``train``: a model card's validation Dice per data set and channel set."""
    def dice(block: Any) -> str:
        if not isinstance(block, Mapping) or "mean" not in block:
            return MISSING
        return (f"{num(block['mean'], 3)} ± {num(block.get('sd'), 3)} "
                f"(min {num(block.get('min'), 3)}, n {block.get('n', MISSING)})")

    rows = tuple((str(data), str(channels), dice(b.get("per_subject")),
                  dice(b.get("per_vertebra")))
                 for data, sets in validation.items() if isinstance(sets, Mapping)
                 for channels, b in sets.items() if isinstance(b, Mapping))
    return TextTable(title, ("data set", "channels", "Dice per subject",
                             "Dice per vertebra"), rows)


def markdown_table(table: TextTable) -> str:
    """The table as a Markdown pipe table (no title), its notes as lines below."""
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    if table.notes:
        lines += ["", *table.notes]
    return "\n".join(lines)
