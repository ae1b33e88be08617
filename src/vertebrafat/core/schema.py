"""The one measurement-table schema (DESIGN.md), shared by every reader and writer.

One row per subject x scan x level. FF columns are percent. ``flags`` is a ``;``-joined list
(``partial_fov``, ``low_volume``, ``transitional``, ``outlier_ff``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

COLUMNS: Final[tuple[str, ...]] = (
    "subject",
    "scan",
    "level",
    "label",
    "n_voxels",
    "n_slices",
    "volume_ml",
    "ff_mean",
    "ff_median",
    "ff_sd",
    "ff_p05",
    "ff_p95",
    "erosion_mm",
    "slices",
    "flags",
)

KEY_COLUMNS: Final[tuple[str, ...]] = ("subject", "scan", "level")
"""The columns that identify a row: tables are paired and grouped by them."""

DEFAULT_EROSION_MM: Final = 2.0
"""In-plane erosion (mm) every verb measures with unless told otherwise: on the phantom it
keeps the measured BMF within 0.2 pp of the truth (see ``measure.bmf_table``)."""


@dataclass(frozen=True)
class LevelMeasurement:
    """One row of the measurement table: the marrow fat of one vertebral body.

    FF values are percent; NaN where the (eroded) region is empty. ``slices`` is the slice
    selection rule used (``all`` or ``midN``); ``flags`` is a tuple of flag words.
    """

    subject: str
    scan: str
    level: str
    label: int
    n_voxels: int
    n_slices: int
    volume_ml: float
    ff_mean: float
    ff_median: float
    ff_sd: float
    ff_p05: float
    ff_p95: float
    erosion_mm: float
    slices: str
    flags: tuple[str, ...] = ()

    def row(self) -> dict[str, str | int | float]:
        """The CSV row: the DESIGN.md columns, flags joined with ``;``."""
        out: dict[str, str | int | float] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ";".join(value) if f.name == "flags" else value
        return out


assert tuple(f.name for f in fields(LevelMeasurement)) == COLUMNS
