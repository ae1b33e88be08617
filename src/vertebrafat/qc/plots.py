"""Validation figures (ROC, precision-recall, Bland-Altman) as matplotlib ``Figure`` objects.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas, never pyplot, so
nothing depends on a display or global state; matplotlib is imported inside each function.
Save them with :func:`vertebrafat.workflows.evaluate.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vertebrafat.stats.agreement import BlandAltman
from vertebrafat.stats.roc import RocResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(size: tuple[float, float] = (4.5, 4.5)) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def roc_figure(roc: RocResult, *, title: str = "Pixel ROC") -> Figure:
    """ROC curve (FPR vs TPR) with the chance line; AUC and its 95 % CI in the legend."""
    fig = _figure()
    ax = fig.add_subplot()
    lo, hi = roc.auc_ci
    ax.plot(roc.fpr, roc.tpr, color="C0", lw=1.5,
            label=f"AUC {roc.auc:.3f} (95 % CI {lo:.3f}-{hi:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity",
           title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def pr_figure(roc: RocResult, *, title: str = "Pixel precision-recall") -> Figure:
    """Precision-recall curve (step) with the prevalence line; average precision in the legend."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(roc.recall, roc.precision, where="post", color="C1", lw=1.5,
            label=f"AP {roc.pr_auc:.3f}")
    total = roc.n_positive + roc.n_negative
    prevalence = roc.n_positive / total if total else 0.0
    ax.axhline(prevalence, color="0.6", lw=0.8, ls="--")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="Recall", ylabel="Precision", title=title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def bland_altman_figure(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    stats: BlandAltman,
    *,
    title: str = "Bland-Altman",
    unit: str = "pp",
    names: tuple[str, str] = ("A", "B"),
) -> Figure:
    """Difference ``a - b`` against the mean, with bias, limits of agreement and their CIs.

    ``names``: what ``a`` and ``b`` are (e.g. the table file stems); the axes say
    "auto − manual (pp)" and "Mean of auto and manual (pp)". Points strictly outside the
    limits are drawn as red crosses.
    """
    name_a, name_b = names
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mean, diff = (x + y) / 2, x - y
    outside = (diff < stats.loa[0]) | (diff > stats.loa[1])
    fig = _figure((5.5, 4.0))
    ax = fig.add_subplot()
    ax.scatter(mean[~outside], diff[~outside], s=14, color="C0", alpha=0.8)
    ax.scatter(mean[outside], diff[outside], s=22, color="C3", marker="x",
               label=f"outside LoA ({stats.pct_outside:.1f} %)")
    ax.axhline(stats.bias, color="k", lw=1.0,
               label=f"bias {stats.bias:.2f} {unit} (95 % CI {stats.bias_ci[0]:.2f} to "
                     f"{stats.bias_ci[1]:.2f})")
    ax.axhspan(*stats.bias_ci, color="k", alpha=0.08)
    for limit, (lo, hi) in zip(stats.loa, stats.loa_ci, strict=True):
        ax.axhline(limit, color="C3", lw=1.0, ls="--")
        ax.axhspan(lo, hi, color="C3", alpha=0.08)
    ax.plot([], [], color="C3", ls="--",
            label=f"LoA {stats.loa[0]:.2f} to {stats.loa[1]:.2f} {unit}")
    ax.set(xlabel=f"Mean of {name_a} and {name_b} ({unit})",
           ylabel=f"Difference {name_a} − {name_b} ({unit})",
           title=f"{title} (n = {stats.n})")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return fig


def distribution_figure(
    values: Mapping[str, npt.ArrayLike],
    *,
    highlight: Mapping[str, npt.ArrayLike] | None = None,
    title: str = "BMF per level",
    unit: str = "%",
) -> Figure:
    """Box plot per group (e.g. level -> every study's BMF) with each value drawn as a point.

    Boxes: quartiles and median, whiskers to the last value within 1.5 IQR (Tukey). Points
    are spread sideways by a fixed pattern (no randomness: same values, same picture);
    ``highlight`` marks some values per group (e.g. cohort outliers) as red crosses. Empty
    groups and NaN values are left out; the group's count is under its name.
    """
    names = [k for k, v in values.items() if np.isfinite(np.asarray(v, dtype=float)).any()]
    fig = _figure((max(4.0, 1.0 + 0.9 * len(names)), 4.0))
    ax = fig.add_subplot()
    data = [np.asarray(values[k], dtype=np.float64) for k in names]
    data = [d[np.isfinite(d)] for d in data]
    if data:
        ax.boxplot(data, widths=0.55, showfliers=False, medianprops={"color": "k"})
    labelled = False
    for i, d in enumerate(data, start=1):
        spread = ((np.arange(d.size) * 0.618034) % 1.0 - 0.5) * 0.35
        ax.scatter(i + spread, d, s=10, color="C0", alpha=0.6, zorder=3)
        marked = np.asarray((highlight or {}).get(names[i - 1], []), dtype=np.float64)
        if marked.size:
            ax.scatter(np.full(marked.size, float(i)), marked, s=40, color="C3", marker="x",
                       zorder=4, label=None if labelled else "outlier")
            labelled = True
    ax.set_xticks(range(1, len(names) + 1),
                  [f"{k}\n(n = {d.size})" for k, d in zip(names, data, strict=True)])
    ax.set(ylabel=f"BMF ({unit})", title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return fig
