"""The QC picture of one study, rendered to an RGB array (Pillow; no plotting library).

Left: the mid-sagittal slice (FF, or water when there is no FF) in the anatomical view
(superior up, anterior left, pixel aspect from the affine), each labelled body outlined in its
colour (:data:`vertebrafat.core.labels.COLOUR_OF_LABEL`) with "L3  34.2 %" written beside it on
the anterior side, and a colour bar of its grey scale (FF 0-100 %, or the water window).
Right: the sagittal slices the measurement used (up to ``max_strip``, evenly chosen), cropped
around the labelled bodies, with the measured regions outlined, laid out in the grid of rows
and columns that shows them largest (:func:`strip_layout`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from vertebrafat.core.boxes import plane_box
from vertebrafat.core.labels import COLOUR_OF_LABEL, LEVEL_OF_LABEL, present_labels
from vertebrafat.core.schema import DEFAULT_EROSION_MM, LevelMeasurement
from vertebrafat.core.types import Affine, Labels
from vertebrafat.measure import erode_in_plane, restrict_to_slices, sagittal_axis

_GREY = (200, 200, 200)
WIDTH, HEIGHT = 1280, 900
_MAIN = (8, 30, 640, 870)  # left, top, right, bottom of the main panel's box (pixels)
COLOUR_BAR = (652, 672)  # left, right of the main panel's grey scale (as tall as the panel)
_STRIP = (728, 56, 1272, 870)  # the measured slices, in a grid
_CELL_TITLE = 16  # pixels above each strip cell for "slice N"
Box = tuple[float, float, float, float]


@lru_cache(maxsize=4)
def _font(size: int) -> Any:
    return ImageFont.load_default(size=size)


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
    (900, 1280, 3) uint8
        The picture; same inputs give the same pixels. An empty label map gives the
        mid-volume slice without outlines. The colour bar runs down the columns
        :data:`COLOUR_BAR` beside the main panel.
    """
    axis = sagittal_axis(affine)
    present = present_labels(labels)
    measured = _measured(labels, present, affine, erosion_mm=erosion_mm, slices=slices)
    mid = _mid_slice(labels, axis)
    strip = _strip_slices(measured, axis, max_strip) or [mid]
    window = (0.0, 100.0) if is_ff else _window(background)
    canvas = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    what = "fat fraction (%)" if is_ff else "water"
    draw.text(((_MAIN[0] + _MAIN[2]) / 2, 14), f"{title}  mid-sagittal {what}, slice {mid}".strip(),
              fill=(0, 0, 0), font=_font(15), anchor="mm")
    bodies = {label: labels == label for label in present}
    placed = _panel(canvas, background, bodies, axis, mid, affine, window, _MAIN, thick=2)
    bmf = {r.label: r.ff_mean for r in rows}
    for label, body in bodies.items():
        plane, _ = _view(body, axis, mid, affine)
        if plane.any():
            _annotate(draw, plane.astype(bool), placed, label, bmf.get(label, math.nan))
    _colour_bar(draw, window, "FF %" if is_ff else "water", (placed[1], placed[3]))
    crop = _crop_box(labels > 0, axis, affine)
    if crop is None:
        extent = _view(background, axis, mid, affine)[1]
        mm_size = (extent[1], extent[3])
    else:
        mm_size = (crop[1] - crop[0], crop[3] - crop[2])
    draw.text(((_STRIP[0] + _STRIP[2]) / 2, 40),
              f"measured regions ({slices}, erosion {erosion_mm:g} mm)",
              fill=(0, 0, 0), font=_font(13), anchor="mm")
    for s, cell in zip(strip, strip_layout(len(strip), mm_size, _STRIP), strict=True):
        box = (cell[0], cell[1] + _CELL_TITLE, cell[2], cell[3])
        shown = _panel(canvas, background, measured, axis, s, affine, window, box, thick=1,
                       crop=crop)
        draw.text(((shown[0] + shown[2]) / 2, shown[1] - _CELL_TITLE / 2), f"slice {s}",
                  fill=(0, 0, 0), font=_font(12), anchor="mm")
    return np.asarray(canvas, dtype=np.uint8).copy()


def strip_layout(
    n: int, mm_size: tuple[float, float], box: Box, *, gap: float = 6.0
) -> list[Box]:
    """Cells for ``n`` views of ``mm_size`` (width, height in mm) in ``box``: the grid of
    rows x columns, filled row by row, in which the views are drawn largest.

    Each cell keeps :data:`_CELL_TITLE` pixels on top for its title.

    Examples
    --------
    Seven tall, narrow views (90 x 330 mm) in a 544 x 814 px box go in 2 rows of 4:

    >>> cells = strip_layout(7, (90.0, 330.0), (0.0, 0.0, 544.0, 814.0))
    >>> len(cells), cells[0], cells[4][1]
    (7, (0.0, 0.0, 131.5, 404.0), 410.0)
    """
    width, height = box[2] - box[0], box[3] - box[1]
    best: tuple[float, int, int] = (-1.0, 1, n)
    for rows in range(1, n + 1):
        cols = math.ceil(n / rows)
        cell_w = (width - gap * (cols - 1)) / cols
        cell_h = (height - gap * (rows - 1)) / rows - _CELL_TITLE
        scale = min(cell_w / mm_size[0], cell_h / mm_size[1])
        if scale > best[0]:
            best = (scale, rows, cols)
    _, rows, cols = best
    cell_w = (width - gap * (cols - 1)) / cols
    cell_h = (height - gap * (rows - 1)) / rows
    return [(box[0] + (k % cols) * (cell_w + gap), box[1] + (k // cols) * (cell_h + gap),
             box[0] + (k % cols) * (cell_w + gap) + cell_w,
             box[1] + (k // cols) * (cell_h + gap) + cell_h) for k in range(n)]


def _colour_bar(
    draw: ImageDraw.ImageDraw, window: tuple[float, float], name: str, rows: tuple[float, float]
) -> None:
    """The main panel's grey scale between the columns :data:`COLOUR_BAR` and the pixel
    ``rows`` (top, bottom), white (``window[1]``) on top and black (``window[0]``) at the
    bottom, in a black frame, with five ticks labelled in the image's units."""
    (left, right), top, bottom = COLOUR_BAR, round(rows[0]) + 12, round(rows[1]) - 1
    for y in range(top, bottom + 1):
        grey = round(255 * (bottom - y) / (bottom - top))
        draw.line((left, y, right, y), fill=(grey, grey, grey))
    draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), outline=(0, 0, 0))
    lo, hi = window
    for k in range(5):
        tick = bottom - k * (bottom - top) / 4
        draw.line((right + 1, tick, right + 4, tick), fill=(0, 0, 0))
        draw.text((right + 6, tick), f"{lo + k * (hi - lo) / 4:.4g}", fill=(0, 0, 0),
                  font=_font(11), anchor="lm")
    draw.text(((left + right) / 2, top - 14), name, fill=(0, 0, 0), font=_font(12),
              anchor="mm")


def _colour(label: int) -> tuple[int, int, int]:
    r, g, b = COLOUR_OF_LABEL.get(label, _GREY)
    return (int(r), int(g), int(b))


def _panel(
    canvas: Image.Image, background: npt.NDArray[np.floating],
    regions: dict[int, npt.NDArray[np.bool_]], axis: int, index: int, affine: Affine,
    window: tuple[float, float], box: Box, *, thick: int, crop: Box | None = None,
) -> Box:
    """Paste slice ``index`` (grey, ``window``) scaled to fit ``box`` at its mm aspect, each
    region outlined ``thick`` display pixels wide in its colour. ``crop`` (mm, view
    coordinates ``x0, x1, y0, y1`` with y up) limits the view. Returns the pixel box it was
    pasted in."""
    image, extent = _view(background, axis, index, affine)
    h, w = image.shape
    sy, sx = extent[3] / h, extent[1] / w  # mm per pixel
    r0, r1, c0, c1 = 0, h, 0, w
    if crop is not None:
        c0, c1 = int(crop[0] / sx), max(math.ceil(crop[1] / sx), int(crop[0] / sx) + 1)
        r0 = int((extent[3] - crop[3]) / sy)
        r1 = max(math.ceil((extent[3] - crop[2]) / sy), r0 + 1)
    image = image[r0:r1, c0:c1]
    mm_w, mm_h = image.shape[1] * sx, image.shape[0] * sy
    scale = min((box[2] - box[0]) / mm_w, (box[3] - box[1]) / mm_h)
    size = (max(1, round(mm_w * scale)), max(1, round(mm_h * scale)))
    lo, hi = window
    grey = np.clip((np.asarray(image, dtype=np.float64) - lo) / (hi - lo) * 255.0, 0, 255)
    tile = Image.fromarray(grey.astype(np.uint8), "L").resize(size, Image.Resampling.NEAREST)
    rgb = np.asarray(tile.convert("RGB")).copy()
    for label, region in regions.items():
        plane, _ = _view(region, axis, index, affine)
        plane = np.asarray(plane, dtype=bool)[r0:r1, c0:c1]
        if not plane.any():
            continue
        big = np.asarray(
            Image.fromarray(plane.astype(np.uint8) * 255, "L").resize(
                size, Image.Resampling.NEAREST
            )
        ) > 0
        # outlined inside its bounding box: outside it all is background, as the erosion's
        # border is, so the outline is the same pixels at a fraction of the cost
        bbox = plane_box(big)
        if bbox is None:
            continue
        sub = big[bbox]
        rgb[bbox][sub & ~ndi.binary_erosion(sub, iterations=thick)] = _colour(label)
    left = round(box[0] + (box[2] - box[0] - size[0]) / 2)
    top = round(box[1] + (box[3] - box[1] - size[1]) / 2)
    canvas.paste(Image.fromarray(rgb, "RGB"), (left, top))
    return (left, top, left + size[0], top + size[1])


def _measured(
    labels: Labels, present: list[int], affine: Affine, *, erosion_mm: float, slices: str
) -> dict[int, npt.NDArray[np.bool_]]:
    return {
        label: restrict_to_slices(erode_in_plane(labels == label, affine, erosion_mm=erosion_mm),
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
    draw: ImageDraw.ImageDraw, body: npt.NDArray[np.bool_],
    placed: Box, label: int, ff_mean: float,
) -> None:
    """Write "L3  34.2 %" on a box of the level's colour at the anterior (left) edge of the
    body, at its centroid height."""
    left, top, right, bottom = placed
    rows, cols = np.nonzero(body)
    h, w = body.shape
    y = top + (rows.mean() + 0.5) / h * (bottom - top)
    x = left + cols.min() / w * (right - left) - 6
    value = "n/a" if not math.isfinite(ff_mean) else f"{ff_mean:.1f} %"
    text = f"{LEVEL_OF_LABEL.get(label, str(label))}  {value}"
    font = _font(14)
    x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font, anchor="rm")
    if x0 < 2:  # keep the label inside the picture
        x, x1, x0 = x + 2 - x0, x1 + 2 - x0, 2
    draw.rounded_rectangle((x0 - 4, y0 - 3, x1 + 4, y1 + 3), radius=4, fill=_colour(label))
    draw.text((x, y), text, fill=(0, 0, 0), font=font, anchor="rm")


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
