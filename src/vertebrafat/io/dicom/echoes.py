"""Multi-echo gradient-echo DICOM as complex echoes: the DICOM input of a water-fat separation.

Echo images are the stacks of no water-fat role (:mod:`vertebrafat.io.dicom.scan`): several
echoes in one series or one series per echo, classic files or enhanced frames. Echoes are
matched across series by echo time; each echo needs magnitude and phase, or real and
imaginary, images on one voxel grid (magnitude/phase where one series gives both). Phase is
brought to radians (:func:`vertebrafat.io.dicom.values.phase_radians`) and must fill most of a
turn (a phase image's background noise covers all of it), else its scale is not what the tags
say.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.types import Affine, FloatArray, Volume
from vertebrafat.io.dicom.geometry import file_of, series_volume, tag_numbers
from vertebrafat.io.dicom.scan import Stack, echo_time, scan_series, stacks_of
from vertebrafat.io.dicom.values import mapped_pixels, phase_radians, phase_text, value_mapping
from vertebrafat.io.orientation import check_sagittal

MIN_ECHOES = 3
"""Echoes a water-fat separation needs (three unknowns: water, fat, field; R2* adds one)."""
_PAIRS = (("magnitude", "phase"), ("real", "imaginary"))


@dataclass(frozen=True)
class DicomEchoes:
    """Complex multi-echo images read from DICOM.

    Attributes
    ----------
    echoes : complex64, shape (echoes, slices, rows, cols)
        One complex volume per echo, in increasing echo time; phase in radians.
    echo_times_s : float64, shape (echoes,)
        Echo times in seconds, increasing.
    affine : (4, 4) float64
        Voxel ``(slice, row, col)`` -> RAS mm, as every volume of the package.
    field_strength_t : float or None
        MagneticFieldStrength (tesla); None when the files do not say.
    source : str
        The folder read.
    series : tuple of int
        Series numbers the echoes came from.
    notes : tuple of str
        How the values were read (value mappings, phase scaling, assumed components).
    """

    echoes: npt.NDArray[np.complex64]
    echo_times_s: FloatArray
    affine: Affine
    field_strength_t: float | None
    source: str
    series: tuple[int, ...]
    notes: tuple[str, ...]


def load_dicom_echoes(
    folder: str | os.PathLike[str],
    *,
    series: Sequence[int] | None = None,
    min_echoes: int = MIN_ECHOES,
    need_phase: bool = True,
    allow_orientation: bool = False,
) -> DicomEchoes:
    """Read the multi-echo images of a DICOM folder as complex echoes.

    Parameters
    ----------
    folder : path
        Searched recursively, any file names; classic or enhanced multi-frame files.
    series : sequence of int, optional
        Use only these series numbers (when the folder holds other echo series).
    min_echoes : int
        Fewest echoes accepted (3 for a water-fat separation).
    need_phase : bool
        Every echo must have phase (or real and imaginary) images; with False, an echo of
        magnitude alone is read with phase 0 (for a magnitude-only fit).
    allow_orientation : bool
        Accept a non-sagittal acquisition.

    Returns
    -------
    DicomEchoes

    Raises
    ------
    InputError
        No echo images; an echo image without EchoTime; two stacks of one component at one
        echo time, or an echo given as magnitude/phase and as real/imaginary by different
    series; fewer than ``min_echoes`` echoes or an echo without phase (the line says
        how many echoes were found, their times and components); phase values that fill
        less than half a turn; any reading error of the images (one line naming the file).
    GeometryError
        Echo images on different voxel grids; a non-sagittal acquisition without
        ``allow_orientation``.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> e = vf.load_dicom_echoes("P001/dicom-echoes")  # doctest: +SKIP
    >>> e.echoes.shape, e.echoes.dtype, e.echo_times_s[:2], e.field_strength_t  # doctest: +SKIP
    ((6, 23, 256, 256), dtype('complex64'), array([0.0012, 0.0022]), 3.0)
    """
    base = Path(folder)
    stacks = echo_stacks(base, series)
    summary = echo_summary(stacks) or f"{len(stacks)} image stack(s)"
    by_te = _by_echo_time(stacks, base)
    if len(by_te) < min_echoes:
        raise InputError(f"{base}: {summary}: a water-fat separation needs {min_echoes} or more "
                         f"echoes, found {len(by_te)}")
    volumes: list[npt.NDArray[np.complex64]] = []
    grid: tuple[Volume, Affine, Stack] | None = None
    notes: dict[str, None] = {}
    for te, parts in sorted(by_te.items()):
        pair = _pair(parts, te, base)
        arrays = []
        for component in _components(pair, parts, te, need_phase, f"{base}: {summary}"):
            st = parts[component]
            data, affine = _volume(st, component, base, notes)
            if grid is None:
                grid = (data, affine, st)
            elif data.shape != grid[0].shape or not np.allclose(affine, grid[1], atol=1e-2):
                raise GeometryError(f"{base}: {st.label} and {grid[2].label} are on different "
                                    f"voxel grids (shape {data.shape} vs {grid[0].shape}, or "
                                    "position)")
            arrays.append(data)
        volumes.append(_complex(arrays, pair))
    assert grid is not None
    check_sagittal(grid[1], source=str(base), allow_orientation=allow_orientation)
    first = stacks[0].images[0]
    strength = tag_numbers(first, "MagneticFieldStrength", 1)
    return DicomEchoes(
        echoes=np.stack(volumes).astype(np.complex64),
        echo_times_s=np.array(sorted(by_te), dtype=np.float64) / 1000.0,
        affine=grid[1], field_strength_t=None if strength is None else float(strength[0]),
        source=str(base), series=tuple(sorted({st.series.number for st in stacks})),
        notes=tuple(notes),
    )


def echo_stacks(folder: Path, series: Sequence[int] | None = None) -> list[Stack]:
    """The stacks of no water-fat role in ``folder`` (of ``series`` numbers when given).

    Raises
    ------
    InputError
        A given series number absent, or no echo images at all.
    """
    stacks = [st for s in scan_series(folder) for st in stacks_of(s) if st.role is None]
    if series is not None:
        numbers = {st.series.number for st in stacks}
        absent = [n for n in series if n not in numbers]
        if absent:
            raise InputError(f"{folder}: no echo series number {absent[0]} (echo series: "
                             f"{', '.join(str(n) for n in sorted(numbers)) or 'none'})")
        stacks = [st for st in stacks if st.series.number in series]
    if not stacks:
        raise InputError(f"{folder}: no echo images (every image series has a water-fat role)")
    return stacks


def _by_echo_time(stacks: Sequence[Stack], folder: Path) -> dict[float, dict[str, Stack]]:
    found: dict[float, dict[str, Stack]] = {}
    for st in stacks:
        if st.te_ms is None:
            culprit = next((ds for ds in st.series.datasets if echo_time(ds) is None),
                           st.images[0])
            raise InputError(f"{file_of(culprit)}: EchoTime missing or not one number in "
                             f"{st.series.label}; cannot tell its echoes apart")
        component = st.component or "magnitude"
        other = found.setdefault(st.te_ms, {}).get(component)
        if other is not None:
            raise InputError(f"{folder}: two {component} stacks at TE {st.te_ms:.2f} ms "
                             f"({other.label}; {st.label}); choose the series to use")
        found[st.te_ms][component] = st
    return found


def _pair(parts: dict[str, Stack], te: float, folder: Path) -> tuple[str, str] | None:
    """The complete pair of an echo: magnitude/phase, else real/imaginary; both only when the
    same series hold them (one acquisition exported both ways), else the choice is the user's.
    """
    pairs = [p for p in _PAIRS if all(c in parts for c in p)]
    if len(pairs) > 1:
        series = [{parts[c].series.number for c in p} for p in pairs]
        if series[0] != series[1]:
            listing = "; ".join(f"{'/'.join(p)} in series {', '.join(map(str, sorted(n)))}"
                                for p, n in zip(pairs, series, strict=True))
            raise InputError(f"{folder}: the echo at TE {te:.2f} ms is given twice ({listing}); "
                             "choose the series to use")
    return pairs[0] if pairs else None


def _components(pair: tuple[str, str] | None, parts: dict[str, Stack], te: float,
                need_phase: bool, where: str) -> tuple[str, ...]:
    """The components to read for one echo: its pair, or its magnitude when phase may lack."""
    if pair is not None:
        return pair
    if need_phase:
        raise InputError(f"{where}: the echo at TE {te:.2f} ms has no phase (or real and "
                         "imaginary) images; a complex separation needs them")
    if "magnitude" not in parts:
        raise InputError(f"{where}: the echo at TE {te:.2f} ms has no magnitude images")
    return ("magnitude",)


def _volume(
    st: Stack, component: str, folder: Path, notes: dict[str, None]
) -> tuple[Volume, Affine]:
    first = st.images[0]
    phase = component == "phase"
    data, affine = series_volume(st.images, st.series.broken, label=st.label, source=str(folder),
                                 pixels=phase_radians if phase else mapped_pixels)
    if phase:
        span = float(np.max(data) - np.min(data))
        if span < np.pi:
            raise InputError(f"{folder}: {st.label}: phase values span {span:.2f} rad read as "
                             f"{phase_text(first)}, less than half a turn; their scale is not "
                             "what the tags say")
        notes[f"phase: {phase_text(first)}"] = None
    else:
        notes[f"{component}: {value_mapping(first).text}"] = None
    if st.component is None:
        notes[f"{st.series.label}: no tag names the signal component; read as magnitude"] = None
    return data, affine


def _complex(arrays: Sequence[Volume], pair: tuple[str, str] | None) -> npt.NDArray[np.complex64]:
    if pair == ("magnitude", "phase"):
        return (arrays[0] * np.exp(1j * arrays[1].astype(np.float64))).astype(np.complex64)
    if pair == ("real", "imaginary"):
        return (arrays[0] + 1j * arrays[1].astype(np.float64)).astype(np.complex64)
    return arrays[0].astype(np.complex64)


def echo_summary(stacks: Sequence[Stack]) -> str | None:
    """What the echo images hold, e.g. ``2 echoes (TE 2.04, 4.21 ms), magnitude only``; None
    when no stack of no water-fat role has an echo time."""
    by_te: dict[float, set[str]] = {}
    for st in stacks:
        if st.role is None and st.te_ms is not None:
            by_te.setdefault(st.te_ms, set()).add(st.component or "magnitude")
    if not by_te:
        return None
    times = sorted(by_te)
    head = (f"{len(times)} echo{'es' if len(times) > 1 else ''} "
            f"(TE {', '.join(f'{t:.2f}' for t in times)} ms)")
    kinds = {frozenset(c) for c in by_te.values()}
    if len(kinds) == 1:
        parts = sorted(next(iter(kinds)), key=_component_order)
        return f"{head}, {parts[0]} only" if len(parts) == 1 else f"{head}, {' and '.join(parts)}"
    every = sorted({c for cs in by_te.values() for c in cs}, key=_component_order)
    where = "; ".join(f"{c} at TE {', '.join(f'{t:.2f}' for t in times if c in by_te[t])} ms"
                      for c in every)
    return f"{head}: {where}"


def _component_order(component: str) -> int:
    order = ("magnitude", "phase", "real", "imaginary")
    return order.index(component) if component in order else len(order)


def water_fat_gap(stacks: Sequence[Stack]) -> str | None:
    """What the echo images lack for a water-fat study (one clause), or None without echoes:
    ``2 echoes (TE 2.04, 4.21 ms), magnitude only: a water-fat study needs 3 or more echoes
    with phase, or water/fat/FF series``."""
    summary = echo_summary(stacks)
    if summary is None:
        return None
    parts: dict[float, set[str]] = {}
    for st in stacks:
        if st.role is None and st.te_ms is not None:
            parts.setdefault(st.te_ms, set()).add(st.component or "magnitude")
    complete = sum(any(set(p) <= cs for p in _PAIRS) for cs in parts.values())
    if complete >= MIN_ECHOES:
        return (f"{summary}: {complete} complex echoes, enough for a water-fat separation; "
                "no water/fat/FF series")
    return (f"{summary}: a water-fat study needs {MIN_ECHOES} or more echoes with phase, or "
            "water/fat/FF series")
