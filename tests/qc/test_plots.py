"""Figures: built without pyplot, the right artists, deterministic PNG bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vertebrafat.qc.plots import (
    bland_altman_figure,
    distribution_figure,
    pr_figure,
    roc_figure,
)
from vertebrafat.stats.agreement import bland_altman
from vertebrafat.stats.roc import roc_analysis
from vertebrafat.workflows.evaluate import save_figure

A = np.array([10.0, 12.0, 11.0, 30.0, 14.0, 13.0, 12.5, 11.5, 10.5, 12.0])
B = np.array([10.5, 11.0, 11.5, 12.0, 14.5, 12.0, 12.0, 12.0, 10.0, 11.0])


def test_bland_altman_figure_marks_points_outside_the_limits() -> None:
    ba = bland_altman(A, B)
    assert ba.pct_outside == 10.0  # the 30 vs 12 pair
    fig = bland_altman_figure(A, B, ba, title="test")
    ax = fig.axes[0]
    inside, outside = ax.collections[0], ax.collections[1]
    assert len(inside.get_offsets()) == 9 and len(outside.get_offsets()) == 1
    np.testing.assert_allclose(outside.get_offsets()[0], [21.0, 18.0])
    assert "n = 10" in ax.get_title()


def test_roc_and_pr_figures_carry_the_numbers() -> None:
    truth = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    roc = roc_analysis(np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), truth)
    roc_ax = roc_figure(roc).axes[0]
    assert roc_ax.get_legend().get_texts()[0].get_text().startswith(f"AUC {roc.auc:.3f}")
    np.testing.assert_allclose(roc_ax.lines[0].get_xdata(), roc.fpr)
    pr_ax = pr_figure(roc).axes[0]
    assert pr_ax.get_legend().get_texts()[0].get_text() == f"AP {roc.pr_auc:.3f}"


def test_saved_png_is_deterministic(tmp_path: Path) -> None:
    ba = bland_altman(A, B)
    save_figure(bland_altman_figure(A, B, ba), tmp_path / "a.png")
    save_figure(bland_altman_figure(A, B, ba), tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data[:4] == b"\x89PNG" and data == (tmp_path / "b.png").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp files


def test_bland_altman_axes_say_which_is_subtracted_from_which() -> None:
    ax = bland_altman_figure(A, B, bland_altman(A, B), names=("auto", "manual")).axes[0]
    assert ax.get_ylabel() == "Difference auto − manual (pp)"
    assert ax.get_xlabel() == "Mean of auto and manual (pp)"
    # the points are auto - manual: the 30 vs 12 pair sits at +18, not -18
    np.testing.assert_allclose(ax.collections[1].get_offsets()[0], [21.0, 18.0])


def test_distribution_figure_boxes_points_and_marked_values() -> None:
    fig = distribution_figure({"L1": [30.0, 31.0, 32.0, np.nan], "L2": [], "L3": [40.0, 90.0]},
                              highlight={"L3": [90.0]})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["L1\n(n = 3)", "L3\n(n = 2)"]
    points, marked = ax.collections[0], ax.collections[2]
    np.testing.assert_allclose(points.get_offsets()[:, 1], [30.0, 31.0, 32.0])
    np.testing.assert_allclose(marked.get_offsets(), [[2.0, 90.0]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["outlier"]
