"""Which folders below a cohort root are studies, by the readers' own rules, and what a study's
input files are (for the cohort's resume fingerprint).

A folder is a study when :func:`vertebrafat.io.study.read_study` reads it as one:

- **NIfTI**: it holds ``.nii``/``.nii.gz`` files (:func:`vertebrafat.io.nifti.nifti_files`;
  ``read_study`` then finds the roles by name or dcm2niix sidecar, or says that no water image
  is there). ``read_study`` reads nothing below it, so its sub-folders are searched on (the
  phantom keeps DICOM copies of a study in ``P001/dicom-ge/``: a study of its own).
- **DICOM**: it holds DICOM images itself (recognised by content, any file name, with or
  without extension: :func:`vertebrafat.io.dicom.files.image_study_uid`), or its DICOM images
  lie in several sub-folders and all belong to one study (one ``StudyInstanceUID``: a study's
  series in sub-folders). ``read_study`` reads the whole tree below it, so nothing below it is
  another study. One image per folder is read (header only) for its ``StudyInstanceUID``: the
  files of one folder are taken to belong together, as the reader takes them; a folder mixing
  two examinations is one study that the reader then refuses (two water series).

Anything else is searched on. Hidden entries (``.name``) are skipped, as the DICOM reader skips
hidden files. Symbolic links to folders are followed once: a folder reached again (a second
link to it, or a loop) is listed in :attr:`Discovery.duplicates` instead. A dangling link and a
folder that cannot be listed are studies that failed (:attr:`FoundStudy.error`), so that every
folder that looked like a study gets a row.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vertebrafat.core.errors import InputError
from vertebrafat.io.dicom.files import dicom_files, image_study_uid
from vertebrafat.io.nifti import nifti_files

StudyFormat = Literal["nifti", "dicom", "unknown"]


@dataclass(frozen=True)
class FoundStudy:
    """A study folder found below a cohort root; ``error`` when it cannot even be looked at."""

    path: Path
    format: StudyFormat
    error: str = ""


@dataclass(frozen=True)
class Discovery:
    """What :func:`find_study_folders` found: studies sorted by path, and folders reached a
    second time through a symbolic link ``(path, first path)``."""

    studies: tuple[FoundStudy, ...]
    duplicates: tuple[tuple[Path, Path], ...] = ()


@dataclass
class _Folder:
    path: Path
    nifti: bool = False
    uid: str | None = None  # StudyInstanceUID of its own first DICOM image; "" unreadable
    children: list[_Folder] = field(default_factory=list)
    error: str = ""

    def uids(self) -> set[str]:
        """StudyInstanceUIDs of the DICOM images below (a NIfTI folder's own are never read)."""
        own = {self.uid} if self.uid is not None and not self.nifti else set()
        return own.union(*(c.uids() for c in self.children))


def find_study_folders(
    root: str | os.PathLike[str], *, exclude: Iterable[str | os.PathLike[str]] = ()
) -> Discovery:
    """Every study folder below ``root`` (``root`` included), by the rules of this module.

    Parameters
    ----------
    root : path
        The cohort root.
    exclude : paths
        Folders not to search (the cohort's output folder when it lies inside ``root``).

    Raises
    ------
    InputError
        If ``root`` is not a folder, or nothing below it looks like a study.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base}: not a folder")
    seen = {os.path.realpath(p) for p in exclude}
    duplicates: list[tuple[Path, Path]] = []
    first: dict[str, Path] = {}
    tree = _scan(base, seen, first, duplicates)
    found: list[FoundStudy] = []
    _decide(tree, found)
    if not found:
        raise InputError(f"{base}: no study found (no folder below holds NIfTI or DICOM "
                         "images)")
    return Discovery(tuple(sorted(found, key=lambda s: s.path.parts)), tuple(duplicates))


def _scan(folder: Path, seen: set[str], first: dict[str, Path],
          duplicates: list[tuple[Path, Path]]) -> _Folder:
    real = os.path.realpath(folder)
    first[real] = folder
    seen.add(real)
    node = _Folder(folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        node.error = f"{folder}: cannot list the folder ({exc.strerror or exc})"
        return node
    files = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        if entry.is_symlink() and not os.path.exists(path):
            node.children.append(_Folder(path, error=f"{path}: dangling symbolic link (to "
                                                     f"{os.readlink(path)})"))
        elif entry.is_dir():
            target = os.path.realpath(path)
            if target in seen:
                if target in first:  # an excluded folder (OUT) is not a duplicate
                    duplicates.append((path, first[target]))
                continue
            node.children.append(_scan(path, seen, first, duplicates))
        elif entry.is_file():
            files.append(path)
    node.nifti = bool(nifti_files(folder))
    if not node.nifti:
        node.uid = next((u for u in map(image_study_uid, files) if u is not None), None)
    return node


def _is_nifti_name(path: Path) -> bool:
    return path.name.endswith(".nii.gz") or path.name.endswith(".nii")


def _decide(node: _Folder, found: list[FoundStudy]) -> None:
    if node.error:
        found.append(FoundStudy(node.path, "unknown", node.error))
        return
    if node.nifti:
        found.append(FoundStudy(node.path, "nifti"))
    elif node.uid is not None:
        found.append(FoundStudy(node.path, "dicom"))
        return  # the reader reads everything below
    else:
        holders = [c for c in node.children if c.uids()]
        if len(holders) >= 2 and len(node.uids()) == 1:
            found.append(FoundStudy(node.path, "dicom"))  # one study's series in sub-folders
            return
    for child in node.children:
        _decide(child, found)


@dataclass(frozen=True)
class InputFile:
    """One input file of a study: path relative to the study (``/``-separated), size, change
    time, and (when computed) the sha256 of its content."""

    path: str
    size: int
    mtime_ns: int
    sha256: str = ""


def study_files(study: FoundStudy) -> list[Path]:
    """The files ``read_study`` may read for ``study``: a NIfTI folder's own NIfTI and JSON
    files (roles, sidecars, ``study.json``), every file below a DICOM folder."""
    if study.format == "dicom":
        return dicom_files(study.path)
    if study.format == "nifti":
        return [p for p in sorted(study.path.iterdir())
                if p.is_file() and (_is_nifti_name(p) or p.name.endswith(".json"))]
    return []


def input_files(study: FoundStudy, *, content: bool = False) -> list[InputFile]:
    """:func:`study_files` with sizes and change times, and their sha256 with ``content``."""
    out = []
    for p in study_files(study):
        st = p.stat()
        digest = _sha256(p) if content else ""
        out.append(InputFile(p.relative_to(study.path).as_posix(), st.st_size, st.st_mtime_ns,
                             digest))
    return out


def same_inputs(recorded: Iterable[InputFile], study: FoundStudy) -> bool:
    """Whether ``study``'s input files are those ``recorded``: the same paths and sizes, and the
    same content (a file whose change time differs is hashed and compared by sha256)."""
    old = {f.path: f for f in recorded}
    now = input_files(study)
    if set(old) != {f.path for f in now}:
        return False
    for f in now:
        before = old[f.path]
        if f.size != before.size:
            return False
        if f.mtime_ns != before.mtime_ns and _sha256(study.path / f.path) != before.sha256:
            return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
