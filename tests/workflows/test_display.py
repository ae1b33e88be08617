"""What the CLI shows: rounded text tables (workflows/display.py) and the report's tables."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.stats.agreement import agreement
from vertebrafat.stats.repeatability import repeatability
from vertebrafat.workflows.display import (
    TextTable,
    agreement_tables,
    evaluation_tables,
    interval,
    markdown_table,
    measurement_table,
    num,
    p_value,
    plain_table,
    repeatability_tables,
    validation_table,
)
from vertebrafat.workflows.report import report_markdown
from vertebrafat.workflows.reproduce import Reproduction


def row(subject: str, scan: str, level: str, ff: float) -> LevelMeasurement:
    return LevelMeasurement(subject, scan, level, 20, 10, 5, 1.0, ff, ff, 1.0, ff, ff, 2.0,
                            "all")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(num(0.942342, 3), "0.942", id="dice-3-decimals"),
        pytest.param(num(-0.12713141728762758, 2), "-0.13", id="pp-2-decimals"),
        pytest.param(num(None, 2), "—", id="none"),
        pytest.param(num(math.nan, 2), "—", id="nan"),
        pytest.param(interval([0.8320894973806766, 0.8350331771617915], 3), "0.832 to 0.835",
                     id="interval"),
        pytest.param(interval([None, 1.0], 3), "—", id="half-missing-interval"),
        pytest.param(p_value(0.004261940602211908), "0.004", id="p"),
        pytest.param(p_value(2e-9), "<0.001", id="tiny-p"),
    ],
)
def test_rounding(text: str, expected: str) -> None:
    assert text == expected


def test_agreement_table_names_the_difference_and_rounds_pp_to_2_decimals() -> None:
    # the Bland-Altman example of stats.agreement: differences -1, -0.5, 1, -1.5 (bias -0.5,
    # SD 1.0801, t(0.975, 3) = 3.1824: bias CI -0.5 -/+ 1.7187, limits -0.5 -/+ 1.96 SD)
    a = [row(f"s{i}", "1", "L1", v) for i, v in enumerate([30.0, 32.5, 41.0, 28.0])]
    b = [row(f"s{i}", "1", "L1", v) for i, v in enumerate([31.0, 33.0, 40.0, 29.5])]
    b.append(row("extra", "1", "L2", 20.0))
    (table,) = agreement_tables(agreement(a, b), name_a="auto", name_b="manual")
    assert table.title == "Bland-Altman of ff_mean: differences auto − manual (pp), 4 pair(s)"
    assert table.header[:5] == ("level", "n", "bias (95 % CI)", "SD", "lower LoA (95 % CI)")
    assert table.rows[0][:4] == ("all", "4", "-0.50 (-2.22 to 1.22)", "1.08")
    assert table.rows[0][4].startswith("-2.62 (") and table.rows[0][5].startswith("1.62 (")
    assert [r[0] for r in table.rows] == ["all", "L1"]
    assert table.notes == ("1 row(s) only in manual (left out): extra/1/L2",)


def test_repeatability_tables_show_every_icc_with_its_95_ci() -> None:
    rows = [row(s, c, "L1", ff + (c == "2") * d)
            for s, ff, d in (("A", 30, 1), ("B", 40, -1), ("C", 50, 0.5), ("D", 35, 0))
            for c in ("1", "2")]
    r = repeatability(rows)
    main, iccs, mixed = repeatability_tables(r)
    icc2, (lo, hi) = r["icc"]["ICC2"], r["icc_ci"]["ICC2"]  # type: ignore[index]
    assert main.rows[0][0] == "all"
    assert main.rows[0][6] == f"{icc2:.3f} ({lo:.3f} to {hi:.3f})"
    assert main.rows[0][2] == f"{r['precision_error']['rms_sd']:.2f}"  # type: ignore[index]
    assert [x[0] for x in iccs.rows] == ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
    assert iccs.rows[1][2:] == (f"{icc2:.3f}", f"{lo:.3f} to {hi:.3f}")
    assert mixed.rows[0] == ("formula", "value ~ 1")


def test_evaluation_table_rounds_scores_and_distances() -> None:
    block: dict[str, Any] = {"dice": 0.9423422724156221, "iou": 0.8909709141613054,
                             "sensitivity": 0.975, "specificity": 0.9979741306490651,
                             "precision": 0.911, "kappa": 0.941, "hd95_mm": 2.4073813272583098,
                             "hd95_mm_sd": 0.6143733320651429, "assd_mm": 0.6206945376523659,
                             "assd_mm_sd": None, "roc_auc": 0.833561337271234,
                             "roc_auc_ci": [0.8320894973806766, 0.8350331771617915],
                             "pr_auc": None}
    r = {**block, "n_subjects": 2, "slices": "all", "per_level": {"L1": block},
         "per_subject": {"P001": block}, "unpaired": {"reference": ["P009"], "prediction": []}}
    pooled, per_level, per_subject = evaluation_tables(r)
    values = dict(pooled.rows)
    assert values["Dice"] == "0.942" and values["specificity"] == "0.998"
    assert values["HD95 mm (mean ± SD of subjects)"] == "2.41 ± 0.61"
    assert values["ASSD mm (mean ± SD of subjects)"] == "0.62 ± —"
    assert values["pixel ROC AUC (95 % CI)"] == "0.834 (0.832 to 0.835)"
    assert values["PR AUC (average precision)"] == "—"
    assert per_level.rows == (("L1", "0.942", "0.891", "0.975", "0.998", "2.41", "0.62"),)
    assert per_subject.rows[0][0] == "P001"
    assert pooled.notes == ("1 reference name(s) without a partner: P009",)


def test_measurement_table_rounds_ff_to_one_decimal() -> None:
    m = LevelMeasurement("P001", "2", "L3", 22, 3524, 11, 28.616, 40.5247, 41.2, 4.8919, 30.4,
                         45.2, 2.0, "all", ("partial_fov", "low_volume"))
    table = measurement_table([m])
    assert table.title == "BMF per level, subject P001 scan 2"
    assert table.rows == (("L3", "22", "3524", "11", "28.6", "40.5", "41.2", "4.9", "30.4",
                           "45.2", "partial_fov, low_volume"),)


def test_markdown_table() -> None:
    t = TextTable("T", ("a", "b"), (("1", "2"),), ("a note",))
    assert markdown_table(t) == "| a | b |\n|---|---|\n| 1 | 2 |\n\na note"


def test_report_markdown_has_no_python_lists_or_dicts() -> None:
    rows = [row(s, c, "L1", ff + (c == "2")) for s, ff in (("A", 30), ("B", 40), ("C", 52))
            for c in ("1", "2")]
    rep = Reproduction(supp_table2={**repeatability(rows),
                                    "dropped_levels": [["A", "T12"], ["C", "S1"]]},
                       counts={"test1": 2, "rescan_studies": 6})
    md = report_markdown(rep, title="R", context=[])
    assert "Studies: test1 2, rescan_studies 6" in md
    assert "Levels seen in one scan only (left out): A T12, C S1" in md
    assert not re.search(r"[\[{]\s*['\"\[\d-]", md)  # no "['A', 'T12']", "[0.1, 0.2]", "{'"


def test_validation_table_of_a_model_card() -> None:
    block = {"per_subject": {"mean": 0.8822, "sd": 0.0109, "min": 0.8622, "n": 6},
             "per_vertebra": {"mean": 0.8817, "sd": 0.0304, "min": 0.8093, "n": 30}}
    table = validation_table({"split:myosegmentum": {"water": block}, "note": "x"}, title="V")
    assert table.rows == (("split:myosegmentum", "water", "0.882 ± 0.011 (min 0.862, n 6)",
                           "0.882 ± 0.030 (min 0.809, n 30)"),)


def _rich_plain(t: TextTable) -> str:
    """What ``cli.emit`` printed for ``t`` to a pipe before plain_table: rich's capture."""
    from rich.console import Console

    from vertebrafat.cli import _rich_table

    out = Console(force_terminal=False, no_color=True, highlight=False, width=10_000,
                  soft_wrap=True)
    with out.capture() as captured:
        out.print(_rich_table(t))
    return "".join(f"{line.rstrip()}\n" for line in captured.get().splitlines())


def test_plain_table_of_a_bmf_table_by_construction() -> None:
    t = TextTable("BMF", ("level", "FF %", "flags"),
                  (("L1", "45.2", ""), ("L5", "—", "partial_fov")))
    assert plain_table(t) == (
        "BMF\n"
        "level   FF %   flags\n"
        "──────────────────────────\n"
        "L1      45.2\n"
        "L5         —   partial_fov\n"
    )


_CELL = st.text(alphabet="ab XZ09.-+<(—±µ²", max_size=7)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.text(alphabet="ab Z,—", max_size=30),
    st.lists(_CELL, min_size=n, max_size=n),
    st.lists(st.lists(_CELL, min_size=n, max_size=n), max_size=4))))
def test_plain_table_prints_what_rich_printed(case: tuple[str, list[str], list[list[str]]]) -> None:
    title, header, rows = case
    t = TextTable(title, tuple(header), tuple(tuple(r) for r in rows))
    assert plain_table(t) == _rich_plain(t)


def test_plain_table_leaves_wide_characters_to_rich() -> None:
    assert plain_table(TextTable("", ("subject",), (("患者",),))) is None
    assert plain_table(TextTable("", ("a",), (("two\nlines",),))) is None


def test_the_verbs_tables_print_as_rich_printed_them() -> None:
    a = [row(f"s{i}", "1", "L1", v) for i, v in enumerate([30.0, 32.5, 41.0, 28.0])]
    b = [row(f"s{i}", "1", "L1", v) for i, v in enumerate([31.0, 33.0, 40.0, 29.5])]
    pairs = [row(s, c, "L1", ff + (c == "2") * d)
             for s, ff, d in (("A", 30, 1), ("B", 40, -1), ("C", 50, 0.5), ("D", 35, 0))
             for c in ("1", "2")]
    m = LevelMeasurement("P001", "2", "L3", 22, 3524, 11, 28.616, math.nan, 41.2, 4.8919, 30.4,
                         45.2, 2.0, "all", ("partial_fov", "low_volume"))
    tables = [measurement_table([m, row("P001", "2", "L4", 45.24)]),
              *agreement_tables(agreement(a, b), name_a="auto", name_b="manual"),
              *repeatability_tables(repeatability(pairs))]
    for t in tables:
        assert plain_table(t) == _rich_plain(t), t.title
