"""Before a cohort run: which studies there are, their output names, and which to compute.

:func:`plan_cohort` finds the studies below the root
(:func:`vertebrafat.io.discovery.find_study_folders`, the readers' own rule), names each
output folder after the study's path below the root, and asks each study's record whether its
outputs still hold (:func:`vertebrafat.workflows.cohort.records.resume_reason`). ``cohort
--dry-run`` prints the plan and stops there.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vertebrafat.core.errors import InputError
from vertebrafat.io.discovery import FoundStudy, find_study_folders
from vertebrafat.workflows.cohort.records import SKIP, Settings, resume_reason

Action = Literal["compute", "skip", "fail"]


@dataclass(frozen=True)
class Job:
    """One study to compute; it travels to a Dask worker, so it holds only plain data."""

    name: str
    study: FoundStudy
    out_dir: Path
    settings: Settings
    model_path: str | None = None


@dataclass(frozen=True)
class PlannedStudy:
    """A study and what the run does with it: ``compute`` (``reason``: new, settings changed,
    ...), ``skip`` (its outputs match) or ``fail`` (it could not even be looked at)."""

    name: str
    study: FoundStudy
    out_dir: Path
    action: Action
    reason: str


@dataclass(frozen=True)
class CohortPlan:
    """Every study found below ``root``, in path order, and what the run does with it."""

    root: Path
    out: Path
    settings: Settings
    studies: tuple[PlannedStudy, ...]
    duplicates: tuple[tuple[Path, Path], ...] = ()

    def jobs(self, model_path: str | None = None) -> list[Job]:
        """The studies to compute, as jobs."""
        return [Job(p.name, p.study, p.out_dir, self.settings, model_path)
                for p in self.studies if p.action == "compute"]

    def rows(self) -> list[dict[str, str]]:
        """The plan as plain data (``cohort --dry-run --json``): name, study, format, action,
        reason per study."""
        return [{"name": p.name, "study": str(p.study.path), "format": p.study.format,
                 "action": p.action, "reason": p.reason} for p in self.studies]

    def notes(self) -> list[str]:
        """Lines for people before the run: ``ROOT: summary``, and each folder reached twice."""
        return [f"{self.root}: {self.summary()}",
                *(f"note: {path} is {first} again (symbolic link), taken once"
                  for path, first in self.duplicates)]

    def summary(self) -> str:
        """One line: ``8 studies: 5 to compute (3 new, 2 settings changed: ...), 3 skipped
        (same settings and inputs), 1 unreadable``."""
        reasons = Counter(p.reason for p in self.studies if p.action == "compute")
        parts = [f"{sum(reasons.values())} to compute"
                 + (f" ({', '.join(f'{n} {r}' for r, n in sorted(reasons.items()))})"
                    if reasons else "")]
        n_skip = sum(p.action == "skip" for p in self.studies)
        parts.append(f"{n_skip} skipped ({SKIP})")
        n_fail = sum(p.action == "fail" for p in self.studies)
        if n_fail:
            parts.append(f"{n_fail} unreadable")
        return f"{len(self.studies)} studies: " + ", ".join(parts)


def plan_cohort(
    root: str | os.PathLike[str], out_dir: str | os.PathLike[str], settings: Settings
) -> CohortPlan:
    """Find the studies below ``root`` and decide, for each, whether to compute it.

    Raises
    ------
    InputError
        If ``root`` is not a folder, holds no study, or is ``out_dir``.
    """
    base, out = Path(root), Path(out_dir)
    if os.path.realpath(base) == os.path.realpath(out):
        raise InputError(f"{out}: the output folder is the cohort root; give another one "
                         "(inside the root is fine: it is not searched)")
    found = find_study_folders(base, exclude=[out])
    names = unique_names([s.path for s in found.studies], base)
    planned = []
    for study, name in zip(found.studies, names, strict=True):
        target = out / name
        if study.error:
            planned.append(PlannedStudy(name, study, target, "fail", study.error))
            continue
        reason = resume_reason(target, study, settings)
        planned.append(PlannedStudy(name, study, target, "skip" if reason == SKIP else "compute",
                                    reason))
    return CohortPlan(base, out, settings, tuple(planned), found.duplicates)


def study_name(study: Path, root: Path) -> str:
    """Output folder name of ``study``: its path below ``root`` with ``/`` turned into ``_``
    (the root's own name when the root is the study)."""
    rel = study.relative_to(root)
    return "_".join(rel.parts) if rel.parts else study.name


def unique_names(studies: list[Path], root: Path) -> list[str]:
    """:func:`study_name` of each study; two paths that would share a name (``a/b_c`` and
    ``a_b/c``) each get ``-`` and 6 hex digits of their relative path's sha1 appended."""
    names = [study_name(s, root) for s in studies]
    counts = Counter(names)
    out = []
    for s, n in zip(studies, names, strict=True):
        if counts[n] > 1:
            rel = s.relative_to(root).as_posix()
            n = f"{n}-{hashlib.sha1(rel.encode()).hexdigest()[:6]}"
        out.append(n)
    return out
