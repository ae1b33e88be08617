"""What a cohort run records about each study, and what a rerun compares.

A measured study's outputs hold ``run.json`` (:data:`RECORD`): the settings that made them
(:class:`Settings`: model sha256, erosion, slice rule, package version), its input files
(sizes, change times, sha256; :class:`~vertebrafat.io.discovery.InputFile`), its level count,
time and end time. It is moved into the study's folder after every other output, so a folder
without it is incomplete. A study that failed has ``OUT/<name>.error.json`` instead (error
line, kind, traceback of an unexpected exception, time); no output of it is written.

A rerun recomputes a study when its record is missing, names other settings, or lists other
input files or contents; it skips one whose record matches (:func:`resume_reason`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import InputError
from vertebrafat.core.version import __version__
from vertebrafat.io.atomic import write_text_atomic
from vertebrafat.io.discovery import FoundStudy, InputFile, same_inputs

RECORD = "run.json"
"""The name of a measured study's record, inside its output folder."""

SKIP = "same settings and inputs"
"""The reason given for a study that a rerun skips."""


@dataclass(frozen=True)
class Settings:
    """What, besides its inputs, decides a study's outputs."""

    model_sha256: str
    erosion_mm: float
    slices: str
    version: str = __version__


def cohort_settings(
    model_path: str | os.PathLike[str] | None, *, erosion_mm: float, slices: str
) -> Settings:
    """The settings of a run, checked before any study starts.

    Raises
    ------
    ModelError
        If the model is missing or fails its checksum.
    InputError
        If ``erosion_mm`` is negative or ``slices`` is neither ``all`` nor ``midN``.
    """
    from vertebrafat.io.model import read_model
    from vertebrafat.measure import parse_slices

    if not erosion_mm >= 0:
        raise InputError(f"--erosion-mm must be >= 0, got {erosion_mm}")
    parse_slices(slices)
    card, _, _ = read_model(model_path)
    return Settings(str(card.extra["sha256"]), float(erosion_mm), slices)


def now() -> str:
    """The time, UTC, ISO 8601 to the second (``2026-05-10T14:03:07Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_json(
    settings: Settings, *, name: str, study: FoundStudy, inputs: list[InputFile],
    n_levels: int, seconds: float, finished: str,
) -> str:
    """The text of a measured study's ``run.json``."""
    data = {"status": "ok", "name": name, "study": str(study.path), "format": study.format,
            "settings": asdict(settings), "n_levels": n_levels, "seconds": round(seconds, 3),
            "finished": finished, "inputs": [asdict(f) for f in inputs]}
    return json.dumps(data, indent=1) + "\n"


def failure_path(out: Path, name: str) -> Path:
    """Where the failure of study ``name`` is recorded: ``OUT/<name>.error.json``."""
    return out / f"{name}.error.json"


def write_failure(
    out: Path, name: str, settings: Settings, *, study: str, error: str, kind: str,
    seconds: float, finished: str, traceback: str = "",
) -> None:
    """Record a failed study (an :class:`~vertebrafat.core.errors.OutputError` if the disk
    refuses)."""
    data = {"status": "error", "name": name, "study": study, "settings": asdict(settings),
            "error": error, "kind": kind, "seconds": round(seconds, 3), "finished": finished,
            "traceback": traceback}
    write_text_atomic(failure_path(out, name), json.dumps(data, indent=1) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """A record as a dict; None when it is absent or unreadable (then the study counts as not
    done)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def settings_changes(record: dict[str, Any], settings: Settings) -> list[str]:
    """``["erosion_mm 2.0 -> 0.0", ...]``: the settings in which ``record`` differs."""
    old = record.get("settings") or {}
    changes = []
    for f in fields(Settings):
        before, after = old.get(f.name), getattr(settings, f.name)
        if before != after:
            short = (lambda v: str(v)[:12]) if f.name == "model_sha256" else str
            changes.append(f"{f.name} {short(before)} -> {short(after)}")
    return changes


def resume_reason(out_dir: Path, study: FoundStudy, settings: Settings) -> str:
    """Why ``study`` is computed, or :data:`SKIP` when its outputs in ``out_dir`` match.

    One of ``new``, ``incomplete outputs`` (a folder without a readable record),
    ``settings changed: erosion_mm 2.0 -> 0.0``, ``inputs changed`` and :data:`SKIP`; a study
    that failed before is ``failed before``.
    """
    record = read_json(out_dir / RECORD)
    if record is None or record.get("status") != "ok":
        if failure_path(out_dir.parent, out_dir.name).is_file():
            return "failed before"
        return "incomplete outputs" if out_dir.exists() else "new"
    changes = settings_changes(record, settings)
    if changes:
        return "settings changed: " + ", ".join(changes)
    try:
        recorded = [InputFile(**f) for f in record.get("inputs", [])]
    except TypeError:
        return "incomplete outputs"
    try:
        return SKIP if same_inputs(recorded, study) else "inputs changed"
    except OSError:  # a file went away while it was looked at
        return "inputs changed"
