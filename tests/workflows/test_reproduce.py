"""Pieces of the reproduction of the reference study (workflows/reproduce.py and report.py)."""

from __future__ import annotations

import numpy as np
import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.workflows.report import markdown_to_html
from vertebrafat.workflows.reproduce import (
    complete_rescans,
    restrict_to_slices,
    study_shaped_cohort,
)


def _row(subject: str, scan: str, level: str, ff: float) -> LevelMeasurement:
    return LevelMeasurement(subject, scan, level, 20, 10, 1, 1.0, ff, ff, 0.0, ff, ff, 1.0,
                            "all")


def test_restrict_to_slices_keeps_only_listed_slices() -> None:
    labels = np.full((4, 2, 2), 21, np.uint8)
    out = restrict_to_slices(labels, [1, 3])
    assert out[:, 0, 0].tolist() == [0, 21, 0, 21]
    assert out.dtype == np.uint8


def test_complete_rescans_lists_levels_seen_once() -> None:
    rows = [_row("P1", "1", "L1", 30), _row("P1", "2", "L1", 31), _row("P1", "1", "T12", 28),
            _row("P2", "1", "L1", 40), _row("P2", "2", "L1", 41), _row("P2", "2", "S1", 50)]
    keep, dropped = complete_rescans(rows)
    assert [(r.subject, r.scan, r.level) for r in keep] == [
        ("P1", "1", "L1"), ("P1", "2", "L1"), ("P2", "1", "L1"), ("P2", "2", "L1")]
    assert dropped == [["P1", "T12"], ["P2", "S1"]]


def test_markdown_to_html_tables_headings_images() -> None:
    md = "# Title\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n![x](fig.png) ![y](g.png)\ntext\n"
    page = markdown_to_html(md, title="T")
    assert "<h1>Title</h1>" in page
    assert "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>&lt;2&gt;</td></tr></table>" \
        in page
    assert '<img src="fig.png" alt="" width="420"><img src="g.png" alt="" width="420">' in page
    assert "<p>text</p>" in page


@pytest.mark.parametrize("scale", [pytest.param(2.0, id="above-1"), pytest.param(0.0, id="zero"),
                                   pytest.param(-0.5, id="negative")])
def test_study_shaped_cohort_refuses_a_scale_outside_0_1(scale: float) -> None:
    with pytest.raises(InputError) as info:
        study_shaped_cohort(seed=0, scale=scale)  # raised at the call, before any study
    assert str(info.value) == (f"reproduce: --scale must be in (0, 1] (a share of the study's "
                               f"cohort), got {scale:g}")
