"""Measurement tables (DESIGN.md schema) as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from vertebrafat.core.errors import InputError
from vertebrafat.core.labels import LABEL_OF_LEVEL
from vertebrafat.core.schema import COLUMNS, LevelMeasurement
from vertebrafat.io.atomic import write_text_atomic

_INT_COLUMNS = {"label", "n_voxels", "n_slices"}
_FLOAT_COLUMNS = {
    "volume_ml", "ff_mean", "ff_median", "ff_sd", "ff_p05", "ff_p95", "erosion_mm"
}


def table_to_csv(rows: Sequence[LevelMeasurement]) -> str:
    """The CSV text of a measurement table (header = :data:`COLUMNS`, floats as repr)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r.row())
    return buf.getvalue()


def table_to_json(rows: Sequence[LevelMeasurement]) -> str:
    """JSON text: a list of row objects; NaN becomes ``null``, flags a list."""
    return json.dumps(_rows(rows), indent=2) + "\n"


def study_json(rows: Sequence[LevelMeasurement], naming: Mapping[str, object]) -> str:
    """A study's ``bmf.json``: ``{"rows": [...], "naming": {...}}``, the rows as in
    :func:`table_to_json` and the level naming's anchor, confidence, flags and cue verdicts."""
    return json.dumps({"rows": _rows(rows), "naming": dict(naming)}, indent=2) + "\n"


def _rows(rows: Sequence[LevelMeasurement]) -> list[dict[str, object]]:
    out = []
    for r in rows:
        d: dict[str, object] = dict(r.row())
        d["flags"] = list(r.flags)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        out.append(d)
    return out


def save_table(rows: Sequence[LevelMeasurement], path: str | os.PathLike[str]) -> None:
    """Write a measurement table atomically; ``.json`` gives JSON, anything else CSV.

    Examples
    --------
    >>> save_table(result.table, "out/bmf.csv")  # doctest: +SKIP
    """
    text = table_to_json(rows) if str(path).endswith(".json") else table_to_csv(rows)
    write_text_atomic(path, text)


def load_table(
    path: str | os.PathLike[str], *, required: Sequence[str] = COLUMNS
) -> list[LevelMeasurement]:
    """Read a measurement table CSV written by vertebrafat (or by hand in the same schema).

    ``required``: the columns the file must have (default: all of :data:`COLUMNS`). A column
    that is not required may be absent: its values are then ``label`` the label of the level
    (0 for an unknown level name), ``n_voxels``/``n_slices`` 0, floats NaN, ``slices`` empty,
    ``flags`` none. Columns outside the schema are ignored.

    Raises
    ------
    InputError
        If the file is missing, a required column is absent (named), or a value is not a
        number where one is required. The message names the file (and line).

    Examples
    --------
    >>> rows = load_table("out/P001/bmf.csv")  # doctest: +SKIP
    >>> [(r.level, r.ff_mean) for r in rows]  # doctest: +SKIP
    [('L1', 31.2), ('L2', 32.0), ('L3', 33.4), ('L4', 35.1), ('L5', 36.9)]
    >>> by_hand = load_table("manual.csv", required=("subject", "scan", "level", "ff_mean"))
    ... # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(f"{p}: missing column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(map(repr, missing))} (this table needs "
                             f"{', '.join(required)})")
        rows = []
        for lineno, raw in enumerate(reader, start=2):
            try:
                rows.append(_parse_row(raw, present=set(header)))
            except ValueError as exc:
                raise InputError(f"{p}: line {lineno}: {exc}") from None
    return rows


def _parse_row(raw: dict[str, str], *, present: set[str]) -> LevelMeasurement:
    values: dict[str, object] = {}
    for c in COLUMNS:
        text = (raw.get(c) or "").strip()
        if c == "label" and c not in present:
            values[c] = LABEL_OF_LEVEL.get((raw.get("level") or "").strip(), 0)
        elif c in _INT_COLUMNS:
            values[c] = int(float(text)) if c in present else 0
        elif c in _FLOAT_COLUMNS:
            values[c] = float(text) if text else math.nan
        elif c == "flags":
            values[c] = tuple(f for f in text.split(";") if f)
        else:
            values[c] = text
    return LevelMeasurement(**values)  # type: ignore[arg-type]
