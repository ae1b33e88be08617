"""The phantom's ``echoes.npz``: ``echoes`` complex64 ``(echoes, slices, rows, cols)``,
``echo_times_ms``, ``affine``, ``field_strength_t`` and ``precession_clockwise`` (files written
before these two keys existed take the field strength from ``acquisition.json`` beside them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vertebrafat.core.echoes import EchoSeries
from vertebrafat.core.errors import InputError


def read_npz(path: Path, *, field_strength_t: float | None = None) -> EchoSeries:
    """Read ``path`` (see module docstring).

    Raises
    ------
    InputError
        Not a readable ``.npz``, a key missing, no field strength anywhere.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("echoes", "echo_times_ms", "affine"):
        if key not in data:
            raise InputError(f"{path}: no {key!r} array (the phantom's echoes.npz layout)")
    field = field_strength_t
    notes: list[str] = []
    if field is None and "field_strength_t" in data:
        field = float(data["field_strength_t"])
    if field is None:
        field = _field_from_acquisition(path)
        notes.append("field strength from acquisition.json")
    from vertebrafat.io.study import study_identity

    subject, scan = study_identity(path.parent)
    return EchoSeries(
        echoes=np.asarray(data["echoes"]).astype(np.complex64, copy=False),
        te_s=tuple(float(t) * 1e-3 for t in np.ravel(data["echo_times_ms"])),
        field_strength_t=field,
        affine=np.asarray(data["affine"], dtype=np.float64),
        precession_clockwise=bool(data.get("precession_clockwise", True)),
        source=str(path), format="phantom-npz", subject=subject, scan=scan,
        notes=tuple(notes),
    )


def _field_from_acquisition(path: Path) -> float:
    card = path.parent / "acquisition.json"
    try:
        return float(json.loads(card.read_text(encoding="utf-8"))["field_strength_t"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: no field strength (neither in the file nor in {card}); "
                         "give it with --field-strength") from None
