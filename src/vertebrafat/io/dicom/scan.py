"""Every DICOM image below a folder, grouped: series by SeriesInstanceUID, and inside a series
the stacks that each make one volume (:class:`Stack`: one role, echo and signal component).

Classic single-frame files are one image each; an enhanced multi-frame object gives one image
per frame (:mod:`vertebrafat.io.dicom.frames`), each with its own role (FrameType: water, fat,
FF...), echo time and component (MAGNITUDE, PHASE...). Classic files share their series' role:
images of one series whose ImageType or description name different roles are a contradiction,
reported when it matters. Images of no water-fat role are split into echoes by EchoTime (or
EchoNumbers) when every one of them carries it, and by component (magnitude, phase, real,
imaginary).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import InputError
from vertebrafat.io.dicom.files import dicom_files, read_image_file
from vertebrafat.io.dicom.frames import FrameView, image_type, philips_image_type
from vertebrafat.io.dicom.geometry import Broken, tag_int, tag_numbers, tag_value
from vertebrafat.io.dicom.roles import series_role
from vertebrafat.io.dicom.values import image_component

# What each kind of unusable file of a known series is called in messages.
_WHY = {"truncated": "unreadable DICOM file", "unplaced": "ImagePositionPatient missing",
        "no-pixels": "no pixel data"}


@dataclass
class Series:
    """The images of one SeriesInstanceUID (frames of enhanced objects included)."""

    uid: str
    number: int
    description: str
    datasets: list[Any]
    skipped: list[str]
    broken: list[Broken]
    roles: dict[str, str]  # role -> first file that says so (series-level evidence)

    @property
    def label(self) -> str:
        return f"series {self.number} '{self.description}'"

    @property
    def role(self) -> str | None:
        """The one role its files agree on; None when none or several (see ``roles``)."""
        return next(iter(self.roles)) if len(self.roles) == 1 else None


@dataclass
class Stack:
    """Images of one series that form one volume: one role (or none), echo and component.

    ``te_ms``/``echo_number`` are set only for images of no water-fat role, each when every
    such image of the series carries it (EchoTime, EchoNumbers); ``component`` is None when
    no tag says (a classic magnitude image, usually).
    """

    series: Series
    role: str | None
    te_ms: float | None
    echo_number: int | None
    component: str | None
    images: list[Any] = field(default_factory=list)
    split: bool = False  # the series holds other stacks too

    @property
    def label(self) -> str:
        """The series' label, with what sets this stack apart when the series holds several."""
        return f"{self.series.label} ({self.detail})" if self.split else self.series.label

    @property
    def detail(self) -> str:
        parts = [self.role or ""]
        if self.te_ms is not None:
            parts.append(f"TE {self.te_ms:.2f} ms")
        elif self.echo_number is not None:
            parts.append(f"echo {self.echo_number}")
        parts.append(self.component or "")
        return ", ".join(p for p in parts if p) or "images"


def scan_series(folder: Path) -> list[Series]:
    """Every image series below ``folder``, sorted by series number.

    Unreadable DICOM files (truncated, corrupt) are skipped with a warning and remembered in
    their series when their SeriesInstanceUID can be read, as are images without a position or
    without pixels: the series refuses them when no other file holds their slice. A series
    with no usable image at all (its UID may be cut short) is skipped with a warning too,
    unless it is made of unplaced images of no known role (screen saves), ignored as before.

    Raises
    ------
    InputError
        Empty folder, no DICOM image among the files, an image without SeriesInstanceUID or
        with a non-integer SeriesNumber, an enhanced object whose frame count and functional
        groups disagree.
    """
    files = dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: empty folder (no files)")
    groups: dict[str, Series] = {}
    orphans: list[str] = []
    n_non_dicom = 0
    for path in files:
        kind, ds = read_image_file(path)
        if kind == "not-dicom":
            n_non_dicom += 1
        elif kind == "unreadable":
            orphans.append(str(path))
        elif kind == "enhanced":
            _add_enhanced(groups, ds, path)  # ds: the object's frames
        elif kind != "other":
            _add(groups, kind, ds, path)
    for uid in [uid for uid, s in groups.items() if not s.datasets]:
        dropped = groups.pop(uid)
        if dropped.role is None and all(b[2] == _WHY["unplaced"] for b in dropped.broken):
            continue  # images never placed and of no water-fat role: screen saves and the like
        for name, _, why in dropped.broken:
            warnings.warn(f"{name}: {why}, file skipped", stacklevel=2)
            orphans.append(f"{name} ({why})")
    if not groups:
        if n_non_dicom == len(files):
            raise InputError(f"{folder}: no DICOM files ({len(files)} files, none is DICOM)")
        first = f"; first unusable: {orphans[0]}" if orphans else ""
        raise InputError(f"{folder}: no readable DICOM image ({len(files)} files{first})")
    for s in groups.values():
        s.skipped.extend(orphans)
    return sorted(groups.values(), key=lambda s: (s.number, s.uid))


def _series_of(groups: dict[str, Series], ds: Any, path: Path, *, required: bool) -> Series | None:
    uid = str(tag_value(ds, "SeriesInstanceUID") or "")
    if not uid:
        if not required:
            return None
        raise InputError(f"{path}: SeriesInstanceUID missing; cannot tell which series the "
                         "image belongs to")
    s = groups.get(uid)
    if s is None:
        s = groups[uid] = Series(uid, tag_int(ds, "SeriesNumber", 0), "", [], [], [], {})
    description = str(tag_value(ds, "SeriesDescription") or "")
    s.description = s.description or description
    role = series_role(image_type(ds), description)
    if role is not None:
        s.roles.setdefault(role, str(path))
    return s


def _add(groups: dict[str, Series], kind: str, ds: Any, path: Path) -> None:
    """File ``ds`` into its series: an image, or a broken file (``kind`` in ``_WHY``)."""
    s = _series_of(groups, ds, path, required=kind == "image")
    if s is None:
        return
    if kind == "image":
        s.datasets.append(ds)
        return
    where = None
    if kind != "unplaced":
        try:
            where = tag_numbers(ds, "ImagePositionPatient", 3)
        except InputError:
            where = None
    s.broken.append((str(path), where, _WHY[kind]))
    s.skipped.append(str(path))


def _add_enhanced(groups: dict[str, Series], frames: list[FrameView], path: Path) -> None:
    """An enhanced multi-frame object: its frames are the series' images."""
    s = _series_of(groups, frames[0].parent, path, required=True)
    assert s is not None
    s.datasets.extend(frames)


def frame_role(frame: FrameView) -> str | None:
    """The role a frame names itself: its FrameType, else Philips' private ImageTypeMR."""
    own = series_role(image_type(frame), "")
    private = philips_image_type(frame)
    if own is None and private is not None:
        own = series_role(["", "", private], "")
    return own


def image_role(series: Series, image: Any) -> str | None:
    """An image's water-fat role: a frame's own (:func:`frame_role`) first, else its series'."""
    if isinstance(image, FrameView):
        own = frame_role(image)
        return own if own is not None else series.role
    return series.role


def stacks_of(series: Series) -> list[Stack]:
    """The series' images grouped into stacks (module rules), in a fixed order."""
    roles = [image_role(series, ds) for ds in series.datasets]
    echo_images = [ds for ds, role in zip(series.datasets, roles, strict=True) if role is None]
    times = [echo_time(ds) for ds in echo_images]
    numbers = [_echo_number(ds) for ds in echo_images]
    use_time = all(t is not None for t in times)
    use_number = all(n is not None for n in numbers)
    found: dict[tuple[Any, ...], Stack] = {}
    for ds, role in zip(series.datasets, roles, strict=True):
        te = echo_time(ds) if role is None and use_time else None
        number = _echo_number(ds) if role is None and use_number else None
        component = image_component(ds)
        key = (role or "", -1.0 if te is None else te, number or 0, component or "")
        if key not in found:
            found[key] = Stack(series, role, te, number, component)
        found[key].images.append(ds)
    stacks = [found[k] for k in sorted(found)]
    for stack in stacks:
        stack.split = len(stacks) > 1
    return stacks


def echo_time(ds: Any) -> float | None:
    """EchoTime (ms, rounded to the microsecond); None when absent or not one number."""
    try:
        value = tag_numbers(ds, "EchoTime", 1)
    except InputError:
        return None
    return None if value is None else round(float(value[0]), 3)


def _echo_number(ds: Any) -> int | None:
    try:
        value = tag_numbers(ds, "EchoNumbers", 1)
    except InputError:
        return None
    return None if value is None else int(value[0])
