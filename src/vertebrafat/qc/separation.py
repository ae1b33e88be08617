"""The QC picture of a water-fat separation: water, fat, FF and field map side by side.

One slice (by default the one with the most signal), shown as stored (rows down, columns
across) with the pixel aspect from the affine. Water and fat share one grey window (0 to the
99.5th percentile of both, so a swap shows as a bright organ in the wrong panel); FF is grey
0-100 %; the field map runs blue (lowest) - white - red (highest) over the signal's range, with
the range written in the title. Rendered with Pillow to an RGB array (no plotting library).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from vertebrafat.core.types import Affine

PANEL_HEIGHT = 300
_TITLE = 22
_GAP = 8


@lru_cache(maxsize=2)
def _font(size: int) -> Any:
    return ImageFont.load_default(size=size)


def render_separation(
    water: npt.NDArray[np.floating],
    fat: npt.NDArray[np.floating],
    ff_percent: npt.NDArray[np.floating],
    field_map_hz: npt.NDArray[np.floating] | None,
    *,
    affine: Affine | None = None,
    slice_index: int | None = None,
    title: str = "",
    panel_height: int = PANEL_HEIGHT,
) -> npt.NDArray[np.uint8]:
    """Render the picture.

    Parameters
    ----------
    water, fat : (slices, rows, cols)
        Water and fat magnitudes.
    ff_percent : (slices, rows, cols)
        FF (%).
    field_map_hz : (slices, rows, cols) or None
        B0 offset (Hz); its panel is left out when None (magnitude mode).
    affine : (4, 4), optional
        For the pixel aspect (rows vs columns); square pixels when None.
    slice_index : int, optional
        The slice shown; default the one with the largest summed water + fat.
    title : str
        Written above the panels.

    Returns
    -------
    ndarray of uint8, (H, W, 3)
    """
    w, f = np.abs(np.asarray(water)), np.abs(np.asarray(fat))
    k = int(np.argmax((w + f).sum(axis=(1, 2)))) if slice_index is None else slice_index
    hi = float(np.percentile(np.concatenate([w[k].ravel(), f[k].ravel()]), 99.5)) or 1.0
    signal = (w[k] + f[k]) > 0.1 * hi
    panels = [("water", _grey(w[k], 0.0, hi)), ("fat", _grey(f[k], 0.0, hi)),
              ("FF 0-100 %", _grey(np.asarray(ff_percent)[k], 0.0, 100.0))]
    if field_map_hz is not None:
        fm = np.asarray(field_map_hz)[k]
        lo_f, hi_f = (np.percentile(fm[signal], [1, 99]) if signal.any() else (-1.0, 1.0))
        panels.append((f"field map {lo_f:.0f} to {hi_f:.0f} Hz",
                       _diverging(fm, float(lo_f), float(hi_f), signal)))
    aspect = 1.0
    if affine is not None:
        spacing = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, 1:3], axis=0)
        aspect = float(spacing[1] / spacing[0])  # column width / row height
    rows, cols = w.shape[1:]
    width = max(1, round(panel_height * cols * aspect / rows))
    top = _TITLE * (2 if title else 1)
    canvas = Image.new("RGB", (len(panels) * (width + _GAP) + _GAP, panel_height + top + _GAP),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_GAP, 4), f"{title} (slice {k})", fill=(0, 0, 0), font=_font(14))
    for i, (name, rgb) in enumerate(panels):
        x = _GAP + i * (width + _GAP)
        tile = Image.fromarray(rgb, mode="RGB").resize((width, panel_height),
                                                        Image.Resampling.NEAREST)
        canvas.paste(tile, (x, top))
        draw.text((x, top - _TITLE + 4), name, fill=(0, 0, 0), font=_font(13))
    return np.asarray(canvas, dtype=np.uint8)


def _grey(a: npt.NDArray[np.floating], lo: float, hi: float) -> npt.NDArray[np.uint8]:
    g = np.clip((np.asarray(a, np.float64) - lo) / (hi - lo), 0, 1)
    v = np.round(255 * g).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=-1)


def _diverging(
    a: npt.NDArray[np.floating], lo: float, hi: float, signal: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    """Blue (lo) - white (middle) - red (hi); grey where there is no signal."""
    x = np.clip((np.asarray(a, np.float64) - lo) / max(hi - lo, 1e-9), 0, 1) * 2 - 1
    r = np.where(x < 0, 1 + x, 1.0)
    g = 1 - np.abs(x)
    b = np.where(x > 0, 1 - x, 1.0)
    rgb = np.stack([r, g, b], axis=-1)
    rgb[~signal] = 0.5
    return np.round(255 * rgb).astype(np.uint8)
