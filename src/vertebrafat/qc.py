"""The QC picture of one study, rendered to an RGB array (matplotlib Agg, imported lazily).

Top: the mid-sagittal slice (FF, or water when there is no FF) in the anatomical view
(superior up, anterior left, pixel aspect from the affine), each labelled body outlined in its
colour (:data:`anatomy.COLOUR_OF_LABEL`) with "L3  34.2 %" written beside it on the anterior
side. Bottom: a strip of the sagittal slices the measurement used (up to ``max_strip``, evenly
chosen), with the measured regions outlined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from vertebrafat.anatomy import COLOUR_OF_LABEL, LEVEL_OF_LABEL
from vertebrafat.measure import erode_in_plane, sagittal_axis, select_slices
from vertebrafat.table import DEFAULT_EROSION_MM, LevelMeasurement
from vertebrafat.types import Affine, Labels

_GREY = (200, 200, 200)


def render_qc(
    background: npt.NDArray[np.floating],
    labels: Labels,
    rows: Sequence[LevelMeasurement],
    *,
    affine: Affine,
    is_ff: bool = True,
    erosion_mm: float = DEFAULT_EROSION_MM,
    slices: str = "all",
    title: str = "",
    max_strip: int = 7,
) -> npt.NDArray[np.uint8]:
    """Render the QC picture.

    Parameters
    ----------
    background : (slices, rows, cols) float
        FF in percent (``is_ff=True``, shown 0-100 %) or a water image (1st-99th percentile).
    labels : (slices, rows, cols) uint8
        VerSe label map.
    rows : sequence of LevelMeasurement
        The table; gives the BMF written beside each body.
    affine : (4, 4) float
        Voxel -> RAS mm.
    erosion_mm, slices : float, str
        The measurement settings, to outline the measured regions in the strip.
    title : str
        Written above the picture (e.g. subject and scan).

    Returns
    -------
    (H, W, 3) uint8
        The picture; same inputs give the same pixels. An empty label map gives the
        mid-volume slice without outlines.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    axis = sagittal_axis(affine)
    present = [int(v) for v in np.unique(labels) if v]
    measured = _measured(labels, present, affine, erosion_mm=erosion_mm, slices=slices)
    mid = _mid_slice(labels, axis)
    strip = _strip_slices(measured, axis, max_strip) or [mid]
    window = (0.0, 100.0) if is_ff else _window(background)
    fig = Figure(figsize=(8.0, 9.0), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.04)
    grid = fig.add_gridspec(2, len(strip), height_ratios=(4.0, 1.4), hspace=0.08, wspace=0.04)
    main = fig.add_subplot(grid[0, :])
    bodies = {label: labels == label for label in present}
    extent = _panel(main, background, bodies, axis, mid, affine, window, linewidth=1.5)
    bmf = {r.label: r.ff_mean for r in rows}
    for label, body in bodies.items():
        plane, _ = _view(body, axis, mid, affine)
        if plane.any():
            _annotate(main, plane.astype(bool), extent, label, bmf.get(label, math.nan))
    what = "fat fraction (%)" if is_ff else "water"
    main.set_title(f"{title}  mid-sagittal {what}, slice {mid}".strip(), fontsize=11)
    crop = _crop_box(labels > 0, axis, affine)
    for k, s in enumerate(strip):
        ax = fig.add_subplot(grid[1, k])
        _panel(ax, background, measured, axis, s, affine, window, linewidth=0.8)
        if crop is not None:
            ax.set_xlim(crop[0], crop[1])
            ax.set_ylim(crop[2], crop[3])
        ax.set_title(f"slice {s}", fontsize=8)
    fig.text(0.5, 0.02, f"strip: measured regions ({slices}, erosion {erosion_mm:g} mm)",
             ha="center", fontsize=9)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]


def _colour(label: int) -> tuple[float, float, float]:
    r, g, b = COLOUR_OF_LABEL.get(label, _GREY)
    return (r / 255, g / 255, b / 255)


def _panel(
    ax: Any, background: npt.NDArray[np.floating], regions: dict[int, npt.NDArray[np.bool_]],
    axis: int, index: int, affine: Affine, window: tuple[float, float], *, linewidth: float,
) -> tuple[float, float, float, float]:
    """Draw slice ``index`` in grey with each region outlined in its colour; return the extent.

    Outlines are the regions' boundary pixels (``linewidth`` >= 1.2: two pixels thick) drawn as
    one RGBA overlay: one image per panel instead of a contour per region, several times faster.
    """
    image, extent = _view(background, axis, index, affine)
    ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1], extent=extent,
              interpolation="nearest")
    overlay = np.zeros((*image.shape, 4))
    for label, region in regions.items():
        plane, _ = _view(region, axis, index, affine)
        plane = plane.astype(bool)
        if plane.any():
            inner = ndi.binary_erosion(plane, iterations=2 if linewidth >= 1.2 else 1)
            overlay[plane & ~inner] = (*_colour(label), 1.0)
    if overlay[..., 3].any():
        ax.imshow(overlay, extent=extent, interpolation="nearest")
    ax.set_axis_off()
    return extent


def _measured(
    labels: Labels, present: list[int], affine: Affine, *, erosion_mm: float, slices: str
) -> dict[int, npt.NDArray[np.bool_]]:
    return {
        label: select_slices(erode_in_plane(labels == label, affine, erosion_mm=erosion_mm),
                             affine, slices=slices)
        for label in present
    }


def _mid_slice(labels: Labels, axis: int) -> int:
    """Sagittal slice through the centroid of the labelled voxels (mid-volume if none)."""
    counts = (labels > 0).sum(axis=tuple(a for a in range(3) if a != axis))
    if counts.sum() == 0:
        return labels.shape[axis] // 2
    return round(float((np.arange(len(counts)) * counts).sum() / counts.sum()))


def _strip_slices(measured: dict[int, npt.NDArray[np.bool_]], axis: int, n: int) -> list[int]:
    used = np.zeros(0, dtype=int)
    for region in measured.values():
        per_slice = region.sum(axis=tuple(a for a in range(3) if a != axis))
        used = np.union1d(used, np.flatnonzero(per_slice))
    if len(used) <= n:
        return [int(s) for s in used]
    picks = np.round(np.linspace(0, len(used) - 1, n)).astype(int)
    return [int(used[p]) for p in picks]


def _view(
    volume: npt.NDArray[np.generic], axis: int, index: int, affine: Affine
) -> tuple[npt.NDArray[np.generic], tuple[float, float, float, float]]:
    """A sagittal slice turned so that superior is up and anterior left, with its mm extent."""
    aff = np.asarray(affine, dtype=np.float64)[:3, :3]
    plane = np.take(volume, index, axis=axis)
    in_plane = [a for a in range(3) if a != axis]
    s_axis = max(in_plane, key=lambda a: abs(aff[2, a]) / np.linalg.norm(aff[:, a]))
    a_axis = in_plane[0] if s_axis == in_plane[1] else in_plane[1]
    if in_plane.index(s_axis) == 1:
        plane = plane.T
    if aff[2, s_axis] > 0:  # index grows superiorly: flip so superior is at the top row
        plane = plane[::-1, :]
    if aff[1, a_axis] > 0:  # index grows anteriorly: flip so anterior is on the left
        plane = plane[:, ::-1]
    spacing = np.linalg.norm(aff, axis=0)
    height, width = plane.shape[0] * spacing[s_axis], plane.shape[1] * spacing[a_axis]
    return plane, (0.0, float(width), 0.0, float(height))


def _annotate(
    ax: Any, body: npt.NDArray[np.bool_], extent: tuple[float, float, float, float],
    label: int, ff_mean: float,
) -> None:
    """Write "L3  34.2 %" at the anterior (left) edge of the body, at its centroid height."""
    rows, cols = np.nonzero(body)
    h, w = body.shape
    y = extent[3] * (1.0 - (rows.mean() + 0.5) / h)
    x = extent[1] * (cols.min() / w) - 4.0
    value = "n/a" if not math.isfinite(ff_mean) else f"{ff_mean:.1f} %"
    ax.text(
        x, y, f"{LEVEL_OF_LABEL.get(label, str(label))}  {value}", ha="right", va="center",
        fontsize=10, color="black", fontweight="bold",
        bbox={"boxstyle": "round,pad=0.25", "facecolor": _colour(label), "edgecolor": "none",
              "alpha": 0.9},
    )


def _crop_box(
    mask: npt.NDArray[np.bool_], axis: int, affine: Affine, margin_mm: float = 10.0
) -> tuple[float, float, float, float] | None:
    """x and y limits (mm, view coordinates) around all labelled voxels, or None if none."""
    if not mask.any():
        return None
    flat = mask.any(axis=axis)
    view, extent = _view(np.expand_dims(flat, axis), axis, 0, affine)
    rows, cols = np.nonzero(view)
    h, w = view.shape
    sy, sx = extent[3] / h, extent[1] / w
    return (max(cols.min() * sx - margin_mm, 0.0), min((cols.max() + 1) * sx + margin_mm,
            extent[1]), max(extent[3] - (rows.max() + 1) * sy - margin_mm, 0.0),
            min(extent[3] - rows.min() * sy + margin_mm, extent[3]))


def _window(image: npt.NDArray[np.floating]) -> tuple[float, float]:
    """Display range of a non-FF image: its 1st and 99th percentiles (0, 1 if flat)."""
    lo, hi = np.percentile(np.asarray(image, dtype=np.float64), [1.0, 99.0])
    return (float(lo), float(hi)) if hi > lo else (0.0, 1.0)
